using System.Globalization;
using System.Text;
using System.Text.Json;
using Tmca.Data;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>One row of the ablation grid (spec §11).</summary>
public sealed record AblationRow(string Name, string Slug, TmcaFlags Flags);

/// <summary>One row trained with one seed, measured on the test split (per-image scores kept for paired statistics).</summary>
public sealed record AblationRun(int Seed, double BestValDice, MetricSummary Test, IReadOnlyList<string> Ids, double[] Dice, double[] IoU, string Checkpoint);

/// <summary>One row over every seed.</summary>
public sealed record AblationResult(string Name, string Slug, string Flags, IReadOnlyList<AblationRun> Runs)
{
    public double Mean(Func<AblationRun, double> f) => PairedStatistics.Mean(Runs.Select(f).ToList());
    public double Std(Func<AblationRun, double> f) => PairedStatistics.StdDev(Runs.Select(f).ToList());
}

/// <summary>
/// The paper's study in one command (spec §11): every row trained once per seed with the same data and budget (no
/// early stopping), each run's best-validation checkpoint evaluated on the test split, and the shuffled-text control
/// (the full model with each test report swapped for another image's). The table gives mean ± standard deviation over
/// seeds and, for each row, its difference to text guidance with a 95 % paired-bootstrap interval over the test images
/// pooled across seeds; a row whose interval crosses zero is marked as not resolved. A run that finished is not run
/// again (its folder holds done.json), so an interrupted ablation resumes row by row and seed by seed.
/// </summary>
public static class Ablation
{
    public const string Reference = "text-guidance";

    public static IReadOnlyList<AblationRow> Grid(TmcaFlags d) =>
    [
        new("image only", "image-only", d with { Text = false }),
        new("text guidance (GuideDecoder base)", Reference, d with { Text = true, Alignment = "none", Lgte = false, PixelLoss = false }),
        new("+ global contrastive alignment", "global-alignment", d with { Text = true, Alignment = "global", Levels = [3], Lgte = false, PixelLoss = false }),
        new("+ target-sensitive distance", "target-distance", d with { Text = true, Alignment = "target", Levels = [3], Lgte = false, PixelLoss = false }),
        new("+ multi-level", "multi-level", d with { Text = true, Alignment = "target", Levels = [0, 1, 2, 3], Lgte = false, PixelLoss = false }),
        new("+ LGTE (full TMCA)", "full-tmca", d with { Text = true, Alignment = "target", Levels = [0, 1, 2, 3], Lgte = true, PixelLoss = true }),
    ];

    /// <summary>The grid's rows named by <paramref name="rows"/> (slugs), in grid order; all of them when null.</summary>
    public static IReadOnlyList<AblationRow> Select(TmcaFlags d, IReadOnlyList<string>? rows)
    {
        var grid = Grid(d);
        if (rows is null || rows.Count == 0) return grid;
        foreach (var r in rows)
            if (!grid.Any(g => g.Slug == r)) throw new ArgumentException($"unknown ablation row '{r}' (rows: {string.Join(", ", grid.Select(g => g.Slug))})");
        return grid.Where(g => rows.Contains(g.Slug)).ToList();
    }

    public static IReadOnlyList<AblationResult> Run(TrainOptions o, PreparedData data, string outDir, IBackend backend,
                                                    Func<Func<ITrainReporter, TrainResult>, TrainResult> withProgress, ITrainReporter ui,
                                                    CancellationToken interrupt, IReadOnlyList<int>? seeds = null, IReadOnlyList<string>? rows = null)
    {
        seeds ??= [o.Seed];
        if (seeds.Count == 0 || seeds.Distinct().Count() != seeds.Count) throw new ArgumentException("--seeds needs distinct seeds");
        Directory.CreateDirectory(outDir);
        var results = new List<AblationResult>();
        foreach (var row in Select(o.Flags, rows))
        {
            var runs = new List<AblationRun>();
            var shuffled = new List<AblationRun>();
            string flags = "";
            foreach (int seed in seeds)
            {
                string runDir = Path.Combine(outDir, row.Slug, $"seed-{seed}");
                var (run, control, f) = RunOne(row, seed, o, data, runDir, backend, withProgress, ui, interrupt);
                runs.Add(run);
                if (control is not null) shuffled.Add(control);
                flags = f;
            }
            results.Add(new AblationResult(row.Name, row.Slug, flags, runs));
            if (shuffled.Count > 0) results.Add(new AblationResult("shuffled-text control", "shuffled-text", "full TMCA, each test report swapped for another image's", shuffled));
        }
        WriteOutputs(results, o, data, outDir, seeds);
        return results;
    }

    private static (AblationRun Run, AblationRun? Control, string Flags) RunOne(AblationRow row, int seed, TrainOptions o, PreparedData data, string runDir, IBackend backend,
                                                                               Func<Func<ITrainReporter, TrainResult>, TrainResult> withProgress, ITrainReporter ui,
                                                                               CancellationToken interrupt)
    {
        string done = Path.Combine(runDir, "done.json");
        bool full = row.Slug == "full-tmca";
        if (File.Exists(done))
        {
            using var j = JsonDocument.Parse(File.ReadAllText(done));
            double bestVal = j.RootElement.GetProperty("best_val_dice").GetDouble();
            string ckpt = j.RootElement.GetProperty("checkpoint").GetString()!;
            ui.Info($"── {row.Name}, seed {seed}: done earlier ({runDir}) ──");
            return (Load(Path.Combine(runDir, "eval-test"), seed, bestVal, ckpt),
                    full ? Load(Path.Combine(runDir, "eval-test-shuffled"), seed, bestVal, ckpt) : null, j.RootElement.GetProperty("flags").GetString()!);
        }
        ui.Info($"── {row.Name}, seed {seed} ──");
        bool resume = Trainer.PrepareRunFolder(runDir);
        var opts = o with { Flags = row.Flags, Patience = 0, Seed = seed };
        var tr = withProgress(r => Trainer.Run(opts, data, runDir, r, backend, interrupt, resume));
        var model = Checkpoint.Load(tr.BestCheckpoint, backend);
        var ev = Evaluator.Run(model, data.Test, Math.Max(o.BatchSize, 8));
        Evaluator.Write(ev, Path.Combine(runDir, "eval-test"), row.Name, tr.BestCheckpoint);
        AblationRun? control = null;
        if (full)
        {
            var sh = Evaluator.Run(model, data.Test, Math.Max(o.BatchSize, 8), shuffleText: true, seed: seed);
            Evaluator.Write(sh, Path.Combine(runDir, "eval-test-shuffled"), "shuffled-text control", tr.BestCheckpoint);
            control = FromEvaluation(sh, seed, tr.BestValDice, tr.BestCheckpoint);
        }
        string flags = model.Flags.ToJson();
        AtomicFile.WriteAllText(done, JsonSerializer.Serialize(new { row = row.Name, seed, best_val_dice = tr.BestValDice, checkpoint = tr.BestCheckpoint, flags }));
        ui.Info($"{row.Name}, seed {seed}: test Dice {ev.Summary.DicePerImage * 100:0.00} (per image), {ev.Summary.DiceMicro * 100:0.00} (micro)");
        return (FromEvaluation(ev, seed, tr.BestValDice, tr.BestCheckpoint), control, flags);
    }

    private static AblationRun FromEvaluation(Evaluation e, int seed, double bestVal, string ckpt) =>
        new(seed, bestVal, e.Summary, e.PerSample.Select(p => p.Sample.Source.Id).ToList(),
            e.PerSample.Select(p => p.Counts.Dice).ToArray(), e.PerSample.Select(p => p.Counts.IoU).ToArray(), ckpt);

    /// <summary>A finished run's test evaluation, from its per-sample.csv (the pixel counts of every image).</summary>
    private static AblationRun Load(string evalDir, int seed, double bestVal, string ckpt)
    {
        var per = PerSampleCsv.Read(Path.Combine(evalDir, "per-sample.csv"));
        return new AblationRun(seed, bestVal, MetricSummary.Of(per.Select(p => p.Counts).ToList()), per.Select(p => p.Id).ToList(),
                               per.Select(p => p.Counts.Dice).ToArray(), per.Select(p => p.Counts.IoU).ToArray(), ckpt);
    }

    /// <summary>The difference of a row to text guidance in per-image Dice: mean and 95 % paired-bootstrap interval over
    /// (seed, image) pairs; null when either row is missing or they share no seed.</summary>
    public static (double Mean, double Low, double High)? DiceVsReference(AblationResult row, IReadOnlyList<AblationResult> all)
    {
        var reference = all.FirstOrDefault(r => r.Slug == Reference);
        if (reference is null || row == reference) return null;
        var a = new List<double>(); var b = new List<double>();
        foreach (var run in row.Runs)
        {
            var other = reference.Runs.FirstOrDefault(r => r.Seed == run.Seed);
            if (other is null) continue;
            var byId = other.Ids.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
            for (int i = 0; i < run.Ids.Count; i++)
                if (byId.TryGetValue(run.Ids[i], out int j)) { a.Add(run.Dice[i]); b.Add(other.Dice[j]); }
        }
        return a.Count == 0 ? null : PairedStatistics.BootstrapMeanDifference(a, b);
    }

    public static string Markdown(IReadOnlyList<AblationResult> results, TrainOptions o, PreparedData data, IReadOnlyList<int>? seeds = null)
    {
        seeds ??= [o.Seed];
        var ic = CultureInfo.InvariantCulture;
        string Ms(AblationResult r, Func<AblationRun, double> f) =>
            r.Runs.Count > 1 ? string.Create(ic, $"{r.Mean(f) * 100:0.00} ± {r.Std(f) * 100:0.00}") : string.Create(ic, $"{r.Mean(f) * 100:0.00}");
        var sb = new StringBuilder();
        sb.AppendLine("| row | Dice (per image) | Δ Dice vs text guidance [95 % CI] | IoU (per image) | Dice (micro) | IoU (micro) | best val Dice |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var d = DiceVsReference(r, results);
            string delta = d is not { } x ? "—"
                : string.Create(ic, $"{x.Mean * 100:+0.00;-0.00} [{x.Low * 100:+0.00;-0.00}, {x.High * 100:+0.00;-0.00}]{(x.Low <= 0 && x.High >= 0 ? " not resolved" : "")}");
            string val = r.Slug == "shuffled-text" ? "(full TMCA's models)" : Ms(r, x => x.BestValDice);
            sb.AppendLine($"| {r.Name} | {Ms(r, x => x.Test.DicePerImage)} | {delta} | {Ms(r, x => x.Test.IoUPerImage)} | {Ms(r, x => x.Test.DiceMicro)} | {Ms(r, x => x.Test.IoUMicro)} | {val} |");
        }
        sb.AppendLine();
        sb.AppendLine(string.Create(ic, $"Seeds {string.Join(", ", seeds)}: every row trained once per seed with the same data and budget: {o.ConfigFile ?? o.Preset} preset, {o.Epochs} epochs of " +
                                        $"{data.Train.Count} training images, batch {o.BatchSize}, lr {o.Lr}, no early stopping; each run's best-validation checkpoint evaluated on " +
                                        $"{data.Test.Count} test images ({(data.Synthetic ? "the embedded synthetic dataset" : data.Dataset.Root)}). From scratch. " +
                                        $"Values are mean{(seeds.Count > 1 ? " ± standard deviation over seeds" : " (one seed)")} ×100. Δ: per-image Dice minus text guidance's on the same " +
                                        $"image and seed, mean and 95 % percentile-bootstrap interval over the {data.Test.Count * seeds.Count} pairs (4,000 resamples, fixed seed); " +
                                        $"\"not resolved\": the interval contains 0."));
        return sb.ToString();
    }

    private static void WriteOutputs(IReadOnlyList<AblationResult> results, TrainOptions o, PreparedData data, string outDir, IReadOnlyList<int> seeds)
    {
        var ic = CultureInfo.InvariantCulture;
        AtomicFile.WriteAllText(Path.Combine(outDir, "ablation.md"), Markdown(results, o, data, seeds));
        var csv = new StringBuilder("row,slug,seed,dice,iou,dice_micro,iou_micro,best_val_dice\n");
        foreach (var r in results)
            foreach (var x in r.Runs)
                csv.Append(string.Create(ic, $"\"{r.Name}\",{r.Slug},{x.Seed},{x.Test.DicePerImage:0.######},{x.Test.IoUPerImage:0.######},{x.Test.DiceMicro:0.######},{x.Test.IoUMicro:0.######},{x.BestValDice:0.######}\n"));
        AtomicFile.WriteAllText(Path.Combine(outDir, "ablation-seeds.csv"), csv.ToString());
        AtomicFile.WriteAllText(Path.Combine(outDir, "ablation.json"), JsonSerializer.Serialize(results.Select(r => new
        {
            row = r.Name, slug = r.Slug, flags = r.Flags, seeds = r.Runs.Select(x => x.Seed),
            dice = new { mean = r.Mean(x => x.Test.DicePerImage), std = r.Std(x => x.Test.DicePerImage) },
            iou = new { mean = r.Mean(x => x.Test.IoUPerImage), std = r.Std(x => x.Test.IoUPerImage) },
            dice_micro = new { mean = r.Mean(x => x.Test.DiceMicro), std = r.Std(x => x.Test.DiceMicro) },
            iou_micro = new { mean = r.Mean(x => x.Test.IoUMicro), std = r.Std(x => x.Test.IoUMicro) },
            dice_vs_text_guidance = DiceVsReference(r, results) is { } d ? new { mean = d.Mean, low = d.Low, high = d.High, resolved = !(d.Low <= 0 && d.High >= 0) } : null,
            checkpoints = r.Runs.Select(x => x.Checkpoint),
        }), new JsonSerializerOptions { WriteIndented = true }));
        try { AblationFigure.Write(results, Path.Combine(outDir, "ablation.png")); }
        catch (Exception e) when (e is not OutOfMemoryException) { Console.Error.WriteLine($"warning: ablation.png not written ({e.Message})"); }
    }
}
