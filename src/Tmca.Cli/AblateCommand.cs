using System.CommandLine;
using Tmca.Model;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>`tmca ablate [DATA]`: the spec §11 grid with one seed and one budget, and the shuffled-text control.</summary>
internal static class AblateCommand
{
    public static Command Build()
    {
        var data = new Argument<string?>("data") { Description = "dataset folder; omitted: the embedded synthetic dataset", Arity = ArgumentArity.ZeroOrOne };
        var preset = new Option<string>("--preset") { DefaultValueFactory = _ => "nano", Description = "model size for every row" };
        var config = new Option<string?>("--config") { Description = "config JSON instead of a preset" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 10, Description = "the same budget for every row" };
        var steps = new Option<int?>("--steps") { Description = "cap on optimiser steps per row" };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 3e-4 };
        var outDir = new Option<string?>("--out") { Description = "folder for the rows' runs and ablation.md (default runs/<date>-ablate)" };
        var layout = Common.Layout(); var device = Common.Device(); var batch = Common.Batch(); var vocab = Common.Vocab();
        var cmd = new Command("ablate", "the TMCA ablation grid (spec §11) on one dataset with the same seed and budget") { data, preset, config, epochs, steps, seed, lr, outDir, layout, device, batch, vocab };
        cmd.SetAction(p => Common.Guard(() =>
        {
            var o = new TrainOptions
            {
                Data = p.GetValue(data) is { } d ? Path.GetFullPath(d) : null, Layout = p.GetValue(layout), Preset = p.GetValue(preset)!, ConfigFile = p.GetValue(config),
                Epochs = p.GetValue(epochs), MaxSteps = p.GetValue(steps), Seed = p.GetValue(seed), Lr = p.GetValue(lr), BatchSize = p.GetValue(batch),
                Device = p.GetValue(device)!, Vocab = p.GetValue(vocab) ?? "", Flags = new TmcaFlags(),
            };
            string dir = p.GetValue(outDir) ?? Path.Combine("runs", $"{DateTime.Now:yyyyMMdd-HHmmss}-ablate");
            if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any()) throw new IOException($"{dir}: folder exists and is not empty");
            var backend = Common.Backend(o.Device);
            var ui = Common.Reporter();
            var prepared = PreparedData.Load(o.Data, o.Layout, o.ResolveConfig().ImageSize, o.Vocab, ui.Info, ui.Warning);
            var results = Ablation.Run(o, prepared, dir, backend, Common.WithProgress, ui);
            Console.WriteLine();
            Console.WriteLine(Ablation.Markdown(results, o, prepared));
            Console.WriteLine($"written: {dir}/ablation.md, ablation.json, one run folder per row");
            return 0;
        }));
        return cmd;
    }
}
