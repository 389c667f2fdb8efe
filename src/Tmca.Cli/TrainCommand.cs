using System.CommandLine;
using System.Text.Json;
using Tmca.Data;
using Tmca.Engine;
using Tmca.Model;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>`tmca train [DATA]`: trains, keeps the best checkpoint, then evaluates it on the test split.</summary>
internal static class TrainCommand
{
    public static Command Build()
    {
        var data = Common.Data();
        var layout = Common.Layout();
        var preset = Common.Preset("small");
        var config = new Option<string?>("--config") { Description = "config JSON (spec keys) instead of a preset" }.ExistingFile();
        var flags = new Option<string?>("--flags") { Description = "flags JSON (spec keys), e.g. '{\"text\": false}'" };
        flags.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is not { } f) return;
            try { TmcaFlags.FromJson(f); }
            catch (Exception e) when (e is InvalidDataException or JsonException) { r.AddError($"--flags: {e.Message}"); }
        });
        var epochs = new Option<int>("--epochs") { Description = "epochs", DefaultValueFactory = _ => 16 }.Positive();
        var steps = new Option<int?>("--steps") { Description = "stop after this many optimiser steps" }.Positive();
        var batch = Common.Batch(min: 2);
        var lr = new Option<double>("--lr") { Description = "AdamW learning rate", DefaultValueFactory = _ => 3e-4 }.Finite(0, 10, minExclusive: true);
        var wd = new Option<double>("--weight-decay") { DefaultValueFactory = _ => 0.01 }.Finite(0, 1);
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var seeds = new Option<string?>("--seeds") { Description = "comma-separated seeds: one run per seed in --out/seed-N, then their mean ± sd (finished seeds are kept)" }.IntList();
        var device = Common.Device();
        var patience = new Option<int>("--patience") { Description = "early stopping: epochs without a better validation Dice (0: off)", DefaultValueFactory = _ => 8 }.Positive(min: 0);
        var noAug = new Option<bool>("--no-augment") { Description = "no random zoom" };
        var outDir = new Option<string?>("--out") { Description = "run folder (default runs/<date>-<data>)" };
        var resume = new Option<string?>("--resume") { Description = "continue a run folder from its last checkpoint (also after a crash, a kill or Ctrl-C)" }.ExistingDirectory();
        var from = new Option<string>("--from") { Description = "with --resume: last (default) or previous, the checkpoint before it", DefaultValueFactory = _ => "last" }.OneOf("last", "previous");
        var onNonFinite = new Option<string>("--on-nonfinite")
        {
            Description = "a NaN/Inf in the loss or a gradient: stop (diagnose, save the step for `tmca replay`) or skip (leave the parameters, count the step)",
            DefaultValueFactory = _ => "stop",
        }.OneOf("stop", "skip");
        var imageWeights = new Option<string?>("--image-weights") { Description = "pretrained ConvNeXt (Hugging Face safetensors)" }.ExistingFile();
        var textWeights = new Option<string?>("--text-weights") { Description = "pretrained BERT / CXR-BERT (Hugging Face safetensors)" }.ExistingFile();
        var vocab = Common.Vocab();
        var recompute = Common.Recompute();
        var cmd = new Command("train", "train TMCA on a dataset folder, or on the embedded synthetic dataset when none is given")
        {
            data, layout, preset, config, flags, epochs, steps, batch, lr, wd, seed, seeds, device, patience, noAug, outDir, resume, from, onNonFinite, imageWeights, textWeights, vocab, recompute,
        };
        const string resumeWhy = "a resumed run keeps the options it was started with (only --epochs may change)";
        foreach (var s in new Symbol[] { data, layout, preset, config, flags, steps, batch, lr, wd, seed, seeds, patience, noAug, outDir, onNonFinite, imageWeights, textWeights, vocab, device })
            cmd.Exclusive(resume, s, resumeWhy);
        cmd.Exclusive(preset, config, "the config file gives the model size");
        cmd.Exclusive(seeds, seed, "--seeds lists every seed");
        cmd.Requires(from, resume);
        cmd.SetAction(p => Common.Guard(() =>
        {
            TrainOptions o;
            string runDir;
            bool isResume = p.GetValue(resume) is not null;
            if (isResume)
            {
                runDir = p.GetValue(resume)!;
                var optPath = Path.Combine(runDir, "options.json");
                if (!File.Exists(optPath)) throw new InputFileException(optPath, "not a run folder (no options.json)");
                o = TrainOptions.Load(optPath);
                if (p.GetResult(epochs) is { Implicit: false }) o = o with { Epochs = p.GetValue(epochs) };
                // recompute changes memory and time, never a value: a resume may switch it
                if (p.GetResult(recompute) is { Implicit: false }) o = o with { Recompute = p.GetValue(recompute) };
            }
            else
            {
                o = new TrainOptions
                {
                    Data = p.GetValue(data) is { } d ? Path.GetFullPath(d) : null, Layout = p.GetValue(layout), Preset = p.GetValue(preset)!,
                    ConfigFile = p.GetValue(config), Flags = p.GetValue(flags) is { } f ? TmcaFlags.FromJson(f) : new TmcaFlags(),
                    Epochs = p.GetValue(epochs), MaxSteps = p.GetValue(steps), BatchSize = p.GetValue(batch), Lr = p.GetValue(lr),
                    WeightDecay = p.GetValue(wd), Seed = p.GetValue(seed), Device = p.GetValue(device)!, Patience = p.GetValue(patience),
                    Augment = !p.GetValue(noAug), ImageWeights = p.GetValue(imageWeights), TextWeights = p.GetValue(textWeights), Vocab = p.GetValue(vocab) ?? "",
                    OnNonFinite = p.GetValue(onNonFinite)!, Recompute = p.GetValue(recompute),
                };
                runDir = p.GetValue(outDir) ?? Path.Combine("runs", $"{DateTime.Now:yyyyMMdd-HHmmss}-{(o.Data is null ? "synthetic" : Path.GetFileName(o.Data.TrimEnd('/')))}");
                if (p.GetValue(seeds) is { } seedText) return TrainSeeds(o, runDir, seedText);
                if (Directory.Exists(runDir) && Directory.EnumerateFileSystemEntries(runDir).Any())
                    throw new UsageException($"{runDir}: run folder exists and is not empty (use --resume to continue it, or --out for a new one)");
            }
            var backend = Common.Backend(o.Device);
            var cfg = o.ResolveConfig();
            var ui = Common.Reporter();
            // Read and check every input before the run folder is created: bad data leaves nothing behind.
            var prepared = PreparedData.Load(o.Data, o.Layout, cfg.ImageSize, o.Vocab, ui.Info, ui.Warning);
            Directory.CreateDirectory(runDir);
            TrainResult result;
            using (var interrupt = ProcessInterrupt.Listen())
                result = Common.WithProgress(r => Trainer.Run(o, prepared, runDir, r, backend, interrupt.Token, isResume, p.GetValue(from)!));
            Console.WriteLine($"trained {result.EpochsRun} epochs ({result.Steps} steps) in {result.Seconds / 60:0.0} min; best validation Dice {result.BestValDice:0.0000} at epoch {result.BestEpoch}");
            var model = Common.LoadModel(result.BestCheckpoint, backend);
            var ev = Evaluator.Run(model, prepared.Test, Math.Max(o.BatchSize, 8));
            Evaluator.Write(ev, Path.Combine(runDir, "eval-test"), "TMCA (this run)", result.BestCheckpoint);
            Console.WriteLine();
            Console.WriteLine($"test split, best checkpoint ({result.BestCheckpoint}):");
            Console.WriteLine(Evaluator.Markdown(ev, $"TMCA {(o.ConfigFile ?? o.Preset)}, from scratch"));
            Console.WriteLine($"run folder: {runDir} (curves.png, steps.jsonl, epochs.jsonl, eval-test/)");
            return 0;
        }));
        return cmd;
    }

    /// <summary>One run per seed in runDir/seed-N (a seed whose run was evaluated is kept), then seeds.md and seeds.csv.</summary>
    private static int TrainSeeds(TrainOptions o, string runDir, string seedText)
    {
        var seedList = Validation.Ints(seedText, "--seeds");
        var backend = Common.Backend(o.Device);
        var ui = Common.Reporter();
        var prepared = PreparedData.Load(o.Data, o.Layout, o.ResolveConfig().ImageSize, o.Vocab, ui.Info, ui.Warning);
        var runs = new List<SeedRun>();
        foreach (int s in seedList)
        {
            string dir = Path.Combine(runDir, $"seed-{s}");
            string evalDir = Path.Combine(dir, "eval-test"), best = Path.Combine(dir, "checkpoints", "best.safetensors");
            if (File.Exists(Path.Combine(evalDir, "per-sample.csv")) && File.Exists(best))
            {
                ui.Info($"seed {s}: evaluated earlier ({dir})");
                var counts = PerSampleCsv.Read(Path.Combine(evalDir, "per-sample.csv")).Select(x => x.Counts).ToList();
                double val = new RunLog(dir).ReadEpochs().Select(e => e.GetProperty("val_dice").GetDouble()).DefaultIfEmpty(double.NaN).Max();
                runs.Add(new SeedRun(s, val, MetricSummary.Of(counts), dir));
                continue;
            }
            bool resume = Trainer.PrepareRunFolder(dir);
            ui.Info($"── seed {s} ──");
            var so = o with { Seed = s };
            TrainResult result;
            try
            {
                using (var interrupt = ProcessInterrupt.Listen())
                    result = Common.WithProgress(r => Trainer.Run(so, prepared, dir, r, backend, interrupt.Token, resume));
            }
            catch (TrainingInterruptedException e)
            {
                throw new TrainingInterruptedException(e.RunDir, $"seed {s} interrupted in {e.RunDir} (its checkpoint is written; finished seeds are kept)",
                    $"`tmca train {(o.Data is null ? "" : o.Data + " ")}--seeds {seedText} --out {runDir}` and the same options");
            }
            var model = Common.LoadModel(result.BestCheckpoint, backend);
            var ev = Evaluator.Run(model, prepared.Test, Math.Max(o.BatchSize, 8));
            Evaluator.Write(ev, evalDir, $"TMCA (seed {s})", result.BestCheckpoint);
            runs.Add(new SeedRun(s, result.BestValDice, ev.Summary, dir));
        }
        string label = $"TMCA {(o.ConfigFile ?? o.Preset)}, from scratch";
        var md = SeedSummary.Markdown(runs, label) + $"\n{prepared.Test.Count} test images; one run per seed, everything else equal (`{string.Join(",", seedList)}`).\n";
        Tmca.Engine.AtomicFile.WriteAllText(Path.Combine(runDir, "seeds.md"), md);
        Tmca.Engine.AtomicFile.WriteAllText(Path.Combine(runDir, "seeds.csv"), SeedSummary.Csv(runs));
        Console.WriteLine();
        Console.WriteLine(md);
        Console.WriteLine($"written: {runDir}/seeds.md, seeds.csv, one run folder per seed");
        return 0;
    }
}
