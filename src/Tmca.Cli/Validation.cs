using System.CommandLine;
using System.CommandLine.Parsing;

namespace Tmca.Cli;

/// <summary>
/// Command-line checks that run while parsing, before any command starts work: a failure is one line naming the
/// option and the problem, and exit code <see cref="ExitCodes.Usage"/>. Files named on the command line must exist
/// here; what is inside them is checked by their readers (exit code <see cref="ExitCodes.BadData"/>).
/// </summary>
internal static class Validation
{
    public static Option<int> Positive(this Option<int> o, int min = 1)
    {
        o.Validators.Add(r => { if (Value<int>(r, out var v) && v < min) r.AddError($"{o.Name} must be at least {min}, not {v}"); });
        return o;
    }

    public static Option<int?> Positive(this Option<int?> o)
    {
        o.Validators.Add(r => { if (Value<int?>(r, out var n) && n is { } v && v < 1) r.AddError($"{o.Name} must be at least 1, not {v}"); });
        return o;
    }

    /// <summary>A finite number in [min, max] (NaN and ±Inf parse as doubles; they are refused here).</summary>
    public static Option<double> Finite(this Option<double> o, double min, double max, bool minExclusive = false)
    {
        o.Validators.Add(r =>
        {
            if (!Value<double>(r, out var v)) return;
            if (!double.IsFinite(v) || v > max || (minExclusive ? v <= min : v < min))
                r.AddError($"{o.Name} must be a finite number {(minExclusive ? ">" : "≥")} {min} and ≤ {max}, not {v}");
        });
        return o;
    }

    /// <summary>The value, unless it did not convert (that error is already reported, and reading it would throw).</summary>
    private static bool Value<T>(OptionResult r, out T value)
    {
        try { value = r.GetValueOrDefault<T>(); return true; }
        catch (InvalidOperationException) { value = default!; return false; }
    }

    public static Option<string> OneOf(this Option<string> o, params string[] values)
    {
        o.AcceptOnlyFromAmong(values);
        return o;
    }

    public static Option<string?> ExistingFile(this Option<string?> o) { o.Validators.Add(r => File(r, r.GetValueOrDefault<string?>(), o.Name)); return o; }
    public static Option<string?> ExistingDirectory(this Option<string?> o) { o.Validators.Add(r => Directory(r, r.GetValueOrDefault<string?>(), o.Name)); return o; }
    public static Argument<string?> ExistingDirectory(this Argument<string?> a) { a.Validators.Add(r => Directory(r, r.GetValueOrDefault<string?>(), a.Name.ToUpperInvariant())); return a; }
    public static Argument<string> ExistingFile(this Argument<string> a) { a.Validators.Add(r => File(r, r.GetValueOrDefault<string>(), a.Name.ToUpperInvariant())); return a; }

    private static void File(SymbolResult r, string? path, string name)
    {
        if (path is null) return;
        if (System.IO.Directory.Exists(path)) r.AddError($"{name}: {path} is a folder, not a file");
        else if (!System.IO.File.Exists(path)) r.AddError($"{name}: {path} not found");
    }

    private static void Directory(SymbolResult r, string? path, string name)
    {
        if (path is null) return;
        if (path.StartsWith('-')) { r.AddError($"unknown option {path}"); return; }
        if (System.IO.File.Exists(path)) r.AddError($"{name}: {path} is a file, not a folder");
        else if (!System.IO.Directory.Exists(path)) r.AddError($"{name}: folder {path} not found");
    }

    /// <summary>Comma-separated distinct integers ("1,2,3").</summary>
    public static Option<string?> IntList(this Option<string?> o)
    {
        o.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is not { } s) return;
            var parts = s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0) r.AddError($"{o.Name} needs one or more comma-separated integers");
            else if (parts.FirstOrDefault(p => !int.TryParse(p, out _)) is { } bad) r.AddError($"{o.Name}: '{bad}' is not an integer");
            else if (parts.Distinct().Count() != parts.Length) r.AddError($"{o.Name}: a value is listed twice");
        });
        return o;
    }

    /// <summary>The integers of a list <see cref="IntList"/> has checked while parsing; checked again here, so that a caller
    /// that skipped the validator still gets a usage error, not a crash.</summary>
    public static List<int> Ints(string s, string option)
    {
        var parts = s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var values = parts.Select(v => int.TryParse(v, out var n) ? n : throw new UsageException($"{option}: '{v}' is not an integer")).ToList();
        if (values.Count == 0 || values.Distinct().Count() != values.Count) throw new UsageException($"{option} needs one or more distinct integers");
        return values;
    }

    /// <summary>Comma-separated names, each one of <paramref name="allowed"/> ("full-tmca,text-guidance").</summary>
    public static Option<string?> ListOf(this Option<string?> o, string[] allowed, string what)
    {
        o.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is not { } s) return;
            var parts = s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (parts.FirstOrDefault(p => !allowed.Contains(p)) is { } bad) r.AddError($"{o.Name}: unknown {what} '{bad}' (one of {string.Join(", ", allowed)})");
        });
        return o;
    }

    /// <summary>Refuses options given together that exclude each other.</summary>
    public static void Exclusive(this Command cmd, Symbol a, Symbol b, string why)
    {
        cmd.Validators.Add(r =>
        {
            if (Given(r, a) && Given(r, b)) r.AddError($"{Name(a)} and {Name(b)} cannot be used together: {why}");
        });
    }

    /// <summary>Refuses <paramref name="dependent"/> without <paramref name="needs"/>.</summary>
    public static void Requires(this Command cmd, Symbol dependent, Symbol needs)
    {
        cmd.Validators.Add(r =>
        {
            if (Given(r, dependent) && !Given(r, needs)) r.AddError($"{Name(dependent)} needs {Name(needs)}");
        });
    }

    private static string Name(Symbol s) => s is Argument a ? a.Name.ToUpperInvariant() : s.Name;

    private static bool Given(CommandResult r, Symbol s) => s switch
    {
        Option o => r.GetResult(o) is { Implicit: false },
        Argument a => r.GetResult(a) is { } ar && ar.Tokens.Count > 0,
        _ => false,
    };
}
