using System.CommandLine;
using Tmca.Model;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>`tmca ablate [DATA]`: the spec §11 grid with one budget, once per seed, and the shuffled-text control; mean ± sd
/// over seeds and each row's paired-bootstrap interval against text guidance.</summary>
internal static class AblateCommand
{
    public static Command Build()
    {
        var data = Common.Data();
        var preset = Common.Preset("nano");
        var config = new Option<string?>("--config") { Description = "config JSON instead of a preset" }.ExistingFile();
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 10, Description = "the same budget for every row" }.Positive();
        var steps = new Option<int?>("--steps") { Description = "cap on optimiser steps per row" }.Positive();
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var seeds = new Option<string?>("--seeds") { Description = "comma-separated seeds, each row trained once per seed (e.g. 1,2,3)" }.IntList();
        var rowSlugs = Ablation.Grid(new TmcaFlags()).Select(r => r.Slug).ToArray();
        var rows = new Option<string?>("--rows") { Description = "comma-separated rows to run: " + string.Join(", ", rowSlugs) }.ListOf(rowSlugs, "ablation row");
        var resume = new Option<bool>("--resume") { Description = "continue an interrupted ablation in --out: finished runs are kept, the rest run (or resume from their last checkpoint)" };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 3e-4 }.Finite(0, 10, minExclusive: true);
        var outDir = new Option<string?>("--out") { Description = "folder for the rows' runs and ablation.md (default runs/<date>-ablate)" };
        var layout = Common.Layout(); var device = Common.Device(); var batch = Common.Batch(min: 2); var vocab = Common.Vocab();
        var cmd = new Command("ablate", "the TMCA ablation grid (spec §11) on one dataset with the same seed and budget") { data, preset, config, epochs, steps, seed, seeds, rows, resume, lr, outDir, layout, device, batch, vocab };
        cmd.Exclusive(preset, config, "the config file gives the model size");
        cmd.Exclusive(seeds, seed, "--seeds lists every seed");
        cmd.Requires(resume, outDir);
        cmd.SetAction(p => Common.Guard(() =>
        {
            var o = new TrainOptions
            {
                Data = p.GetValue(data) is { } d ? Path.GetFullPath(d) : null, Layout = p.GetValue(layout), Preset = p.GetValue(preset)!, ConfigFile = p.GetValue(config),
                Epochs = p.GetValue(epochs), MaxSteps = p.GetValue(steps), Seed = p.GetValue(seed), Lr = p.GetValue(lr), BatchSize = p.GetValue(batch),
                Device = p.GetValue(device)!, Vocab = p.GetValue(vocab) ?? "", Flags = new TmcaFlags(),
            };
            var seedList = p.GetValue(seeds) is { } seedText ? Validation.Ints(seedText, "--seeds") : [o.Seed];
            var rowList = ParseList(p.GetValue(rows));   // checked while parsing: unknown rows fail before any work
            string dir = p.GetValue(outDir) ?? Path.Combine("runs", $"{DateTime.Now:yyyyMMdd-HHmmss}-ablate");
            if (!p.GetValue(resume) && Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
                throw new UsageException($"{dir}: folder exists and is not empty (--resume continues it)");
            var backend = Common.Backend(o.Device);
            var ui = Common.Reporter();
            var prepared = PreparedData.Load(o.Data, o.Layout, o.ResolveConfig().ImageSize, o.Vocab, ui.Info, ui.Warning);
            using var interrupt = ProcessInterrupt.Listen();
            IReadOnlyList<AblationResult> results;
            try { results = Ablation.Run(o, prepared, dir, backend, Common.WithProgress, ui, interrupt.Token, seedList, rowList); }
            catch (TrainingInterruptedException e)
            {
                // the run in flight wrote its checkpoint; the ablation resumes run by run
                throw new TrainingInterruptedException(e.RunDir, $"ablation interrupted in {e.RunDir} (its checkpoint is written; finished runs are kept)",
                    $"`tmca ablate{(p.GetValue(data) is { } dd ? " " + dd : "")} --resume --out {dir}` and the same options");
            }
            Console.WriteLine();
            Console.WriteLine(Ablation.Markdown(results, o, prepared, seedList));
            Console.WriteLine($"written: {dir}/ablation.md, ablation-seeds.csv, ablation.json, ablation.png, one run folder per row and seed");
            return 0;
        }));
        return cmd;
    }

    private static List<string> ParseList(string? s) =>
        string.IsNullOrWhiteSpace(s) ? [] : s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
}
