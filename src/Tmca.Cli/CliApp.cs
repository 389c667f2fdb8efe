using System.CommandLine;

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
        root.Subcommands.Add(CompareCommand.Build());
        return root;
    }

    public static int Run(params string[] args) => Build().Parse(args).Invoke();
}
