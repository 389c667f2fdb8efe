namespace Tmca.Engine.Verification;

/// <summary>How a compared tensor is judged (the tolerance table of ../shared/oracles/README.md).</summary>
public enum ToleranceKind
{
    /// <summary>Forward outputs and losses: |a − b| ≤ 1e-4 + 1e-3·|b| everywhere.</summary>
    Forward,
    /// <summary>Gradients: |a − b| ≤ 1e-4 + 1e-2·|b| everywhere, or ‖a − b‖/‖b‖ ≤ 1e-3.</summary>
    Gradient,
    /// <summary>Exact equality (token ids, counters).</summary>
    Exact,
}

/// <summary>The result of comparing one engine tensor with its reference.</summary>
public sealed record Comparison(string Name, ToleranceKind Kind, double MaxAbs, double MaxRel, double RelL2, bool Pass, string? Note = null)
{
    public static Comparison Of(string name, ToleranceKind kind, double[] actual, double[] expected, double scale = 1.0)
    {
        if (actual.Length != expected.Length)
            return new Comparison(name, kind, double.NaN, double.NaN, double.NaN, false, $"size {actual.Length} vs expected {expected.Length}");
        double maxAbs = 0, maxRel = 0, diff2 = 0, ref2 = 0;
        bool elementwise = true;
        (double abs, double rel) = kind switch
        {
            ToleranceKind.Forward => (1e-4, 1e-3),
            ToleranceKind.Gradient => (1e-4, 1e-2),
            _ => (0.0, 0.0),
        };
        abs *= scale;
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i], b = expected[i], d = Math.Abs(a - b);
            if (double.IsNaN(a) || double.IsNaN(b)) { if (!(double.IsNaN(a) && double.IsNaN(b))) { d = double.PositiveInfinity; } else d = 0; }
            maxAbs = Math.Max(maxAbs, d);
            if (Math.Abs(b) > 1e-6) maxRel = Math.Max(maxRel, d / Math.Abs(b));
            diff2 += d * d; ref2 += b * b;
            if (!(d <= abs + rel * Math.Abs(b))) elementwise = false;
        }
        double relL2 = ref2 > 0 ? Math.Sqrt(diff2 / ref2) : Math.Sqrt(diff2);
        bool pass = kind switch
        {
            ToleranceKind.Forward => elementwise,
            ToleranceKind.Gradient => elementwise || relL2 <= 1e-3,
            _ => maxAbs == 0,
        };
        return new Comparison(name, kind, maxAbs, maxRel, relL2, pass);
    }

    public static Comparison Of(string name, ToleranceKind kind, Tensor actual, Tensor expected)
    {
        if (!Shape.Equal(actual.Shape, expected.Shape) || actual.Numel != expected.Numel)
            return new Comparison(name, kind, double.NaN, double.NaN, double.NaN, false, $"shape {Shape.Format(actual.Shape)} vs expected {Shape.Format(expected.Shape)}");
        return Of(name, kind, actual.ToDoubles(), expected.ToDoubles());
    }

    public static Comparison Failed(string name, string why) => new(name, ToleranceKind.Exact, double.NaN, double.NaN, double.NaN, false, why);
}

/// <summary>All comparisons of one oracle run, with a printable table and a verdict.</summary>
public sealed class OracleReport
{
    public string Source { get; }
    public List<Comparison> Items { get; } = new();
    public OracleReport(string source) => Source = source;

    public bool Pass => Items.Count > 0 && Items.All(i => i.Pass);
    public int Failed => Items.Count(i => !i.Pass);

    public void Add(Comparison c) => Items.Add(c);

    public void Write(TextWriter w, bool onlyFailures = false)
    {
        int width = Math.Max(24, Items.Count == 0 ? 0 : Items.Max(i => i.Name.Length));
        w.WriteLine($"{"tensor".PadRight(width)}  {"kind",-8} {"max|a-b|",11} {"max rel",11} {"rel L2",11}  result");
        foreach (var c in Items)
        {
            if (onlyFailures && c.Pass) continue;
            w.WriteLine($"{c.Name.PadRight(width)}  {c.Kind.ToString().ToLowerInvariant(),-8} {Fmt(c.MaxAbs),11} {Fmt(c.MaxRel),11} {Fmt(c.RelL2),11}  {(c.Pass ? "pass" : "FAIL")}{(c.Note is null ? "" : "  " + c.Note)}");
        }
    }

    public string Verdict => Pass
        ? $"{Source}: PASS ({Items.Count} checks)"
        : $"{Source}: FAIL ({Failed} of {Items.Count} checks failed)";

    private static string Fmt(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.00e+00");
}
