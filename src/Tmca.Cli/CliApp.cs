using System.CommandLine;
using Tmca.Engine;

namespace Tmca.Cli;

/// <summary>The `tmca` command line (also callable in-process, which is how the tests drive it).</summary>
public static class CliApp
{
    public static RootCommand Build()
    {
        var root = new RootCommand("tmca — language-guided medical image segmentation (TMCA) on a hand-written engine");
        root.Subcommands.Add(TrainCommand.Build());
        root.Subcommands.Add(EvalCommand.Build());
        root.Subcommands.Add(PredictCommand.Build());
        root.Subcommands.Add(AblateCommand.Build());
        root.Subcommands.Add(SynthCommand.Build());
        root.Subcommands.Add(OracleCommand.Build());
        root.Subcommands.Add(DoctorCommand.Build());
        root.Subcommands.Add(KernelsCommand.Build());
        root.Subcommands.Add(StepCommand.Build());
        root.Subcommands.Add(PlanCommand.Build());
        root.Subcommands.Add(CompareCommand.Build());
        root.Subcommands.Add(ReplayCommand.Build());
        return root;
    }

    /// <summary>Parses and runs. A command line that does not parse or validate is one line per problem on stderr and exit
    /// code <see cref="ExitCodes.Usage"/>, before any work; so is a TMCA_* variable with a bad value.</summary>
    public static int Run(params string[] args)
    {
        TmcaSettings settings;
        try { settings = TmcaSettings.Current; }
        catch (SettingsException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return ExitCodes.Usage;
        }
        using var hooks = TestHooks.Install(settings);
        var parsed = Build().Parse(args);
        if (parsed.Errors.Count == 0) return parsed.Invoke();
        Console.Out.Flush();
        string help = $"tmca {string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')).Take(1))} --help".Replace("  ", " ");
        // One line, whatever the number of problems (System.CommandLine also puts allowed values on lines of their own).
        var problems = parsed.Errors.Select(e => System.Text.RegularExpressions.Regex.Replace(e.Message.Trim(), @"\s*\n\s*", " ").TrimEnd('.')).Distinct();
        Console.Error.WriteLine($"error: {string.Join("; ", problems)} (see {help})");
        return ExitCodes.Usage;
    }
}
