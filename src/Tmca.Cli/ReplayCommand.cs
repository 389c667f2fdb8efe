using System.CommandLine;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>`tmca replay FILE`: runs again the training step a run stopped on for a non-finite value (the parameters,
/// optimiser state and batch of that step, saved as nonfinite-step-N.safetensors) and says where the NaN/Inf first
/// shows — on any device, so a GPU failure can be compared with the CPU.</summary>
internal static class ReplayCommand
{
    public static Command Build()
    {
        var file = new Argument<string>("file") { Description = "nonfinite-step-N.safetensors from a run folder" }.ExistingFile();
        var device = Common.Device();
        var cmd = new Command("replay", "run again a training step that produced a NaN/Inf, and say where it first shows") { file, device };
        cmd.SetAction(p => Common.Guard(() =>
        {
            var backend = Common.Backend(p.GetValue(device)!);
            var (reproduced, report) = NonFiniteDiagnosis.Replay(p.GetValue(file)!, backend);
            Console.WriteLine(reproduced ? $"reproduced: {report}" : $"not reproduced: {report}");
            return reproduced ? ExitCodes.RuntimeFailure : ExitCodes.Ok;
        }));
        return cmd;
    }
}
