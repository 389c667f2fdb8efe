using System.Globalization;
using System.Text;
using System.Text.Json;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>One row of the ablation grid (spec §11).</summary>
public sealed record AblationRow(string Name, string Slug, TmcaFlags Flags);

/// <summary>One measured row.</summary>
public sealed record AblationResult(string Name, string Flags, double BestValDice, Evaluation Test, string Checkpoint);

/// <summary>
/// The paper's study in one command (spec §11): every row trained with the same seed, data and budget (no early
/// stopping), its best-validation checkpoint evaluated on the test split, and the shuffled-text control — the full
/// model evaluated with each test report swapped for another image's. The table reports what it measures; no
/// ordering is assumed.
/// </summary>
public static class Ablation
{
    public static IReadOnlyList<AblationRow> Grid(TmcaFlags d) =>
    [
        new("image only", "image-only", d with { Text = false }),
        new("text guidance (GuideDecoder base)", "text-guidance", d with { Text = true, Alignment = "none", Lgte = false, PixelLoss = false }),
        new("+ global contrastive alignment", "global-alignment", d with { Text = true, Alignment = "global", Levels = [3], Lgte = false, PixelLoss = false }),
        new("+ target-sensitive distance", "target-distance", d with { Text = true, Alignment = "target", Levels = [3], Lgte = false, PixelLoss = false }),
        new("+ multi-level", "multi-level", d with { Text = true, Alignment = "target", Levels = [0, 1, 2, 3], Lgte = false, PixelLoss = false }),
        new("+ LGTE (full TMCA)", "full-tmca", d with { Text = true, Alignment = "target", Levels = [0, 1, 2, 3], Lgte = true, PixelLoss = true }),
    ];

    public static IReadOnlyList<AblationResult> Run(TrainOptions o, PreparedData data, string outDir, IBackend backend, Func<Func<ITrainReporter, TrainResult>, TrainResult> withProgress, ITrainReporter ui)
    {
        Directory.CreateDirectory(outDir);
        var results = new List<AblationResult>();
        AblationResult? full = null;
        foreach (var row in Grid(o.Flags))
        {
            ui.Info($"── {row.Name} ──");
            var opts = o with { Flags = row.Flags, Patience = 0 };
            string runDir = Path.Combine(outDir, row.Slug);
            Directory.CreateDirectory(runDir);
            var tr = withProgress(r => Trainer.Run(opts, data, runDir, r, backend));
            var model = Checkpoint.Load(tr.BestCheckpoint, backend);
            var ev = Evaluator.Run(model, data.Test, Math.Max(o.BatchSize, 8));
            Evaluator.Write(ev, Path.Combine(runDir, "eval-test"), row.Name, tr.BestCheckpoint);
            var r = new AblationResult(row.Name, model.Flags.ToJson(), tr.BestValDice, ev, tr.BestCheckpoint);
            results.Add(r);
            ui.Info($"{row.Name}: test Dice {ev.Summary.DicePerImage * 100:0.00} (per image), {ev.Summary.DiceMicro * 100:0.00} (micro)");
            if (row.Slug == "full-tmca")
            {
                full = r;
                var shuffled = Evaluator.Run(model, data.Test, Math.Max(o.BatchSize, 8), shuffleText: true, seed: o.Seed);
                Evaluator.Write(shuffled, Path.Combine(runDir, "eval-test-shuffled"), "shuffled-text control", tr.BestCheckpoint);
                results.Add(new AblationResult("shuffled-text control", "full TMCA, each test report swapped for another image's", tr.BestValDice, shuffled, tr.BestCheckpoint));
            }
        }
        AtomicFile.WriteAllText(Path.Combine(outDir, "ablation.md"), Markdown(results, o, data));
        AtomicFile.WriteAllText(Path.Combine(outDir, "ablation.json"), JsonSerializer.Serialize(results.Select(r => new
        {
            row = r.Name, flags = r.Flags, best_val_dice = r.BestValDice, checkpoint = r.Checkpoint,
            test = new { r.Test.Summary.Images, dice = r.Test.Summary.DicePerImage, iou = r.Test.Summary.IoUPerImage, dice_micro = r.Test.Summary.DiceMicro, iou_micro = r.Test.Summary.IoUMicro, accuracy = r.Test.Summary.Accuracy },
        }), new JsonSerializerOptions { WriteIndented = true }));
        return results;
    }

    public static string Markdown(IReadOnlyList<AblationResult> results, TrainOptions o, PreparedData data)
    {
        var ic = CultureInfo.InvariantCulture;
        var baseRow = results.FirstOrDefault(r => r.Name == "image only");
        var sb = new StringBuilder();
        sb.AppendLine("| row | test Dice (per image) | Δ vs image only | IoU (per image) | Dice (micro) | IoU (micro) | best val Dice |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var s = r.Test.Summary;
            string delta = baseRow is null || r == baseRow ? "—" : ((s.DicePerImage - baseRow.Test.Summary.DicePerImage) * 100).ToString("+0.00;-0.00", ic);
            string val = r.Name == "shuffled-text control" ? "(full TMCA's model)" : (r.BestValDice * 100).ToString("0.00", ic);
            sb.AppendLine(string.Create(ic, $"| {r.Name} | {s.DicePerImage * 100:0.00} | {delta} | {s.IoUPerImage * 100:0.00} | {s.DiceMicro * 100:0.00} | {s.IoUMicro * 100:0.00} | {val} |"));
        }
        sb.AppendLine();
        sb.AppendLine(string.Create(ic, $"Same seed ({o.Seed}), data and budget for every row: {o.ConfigFile ?? o.Preset} preset, {o.Epochs} epochs of {data.Train.Count} training images, batch {o.BatchSize}, " +
                                        $"lr {o.Lr}, no early stopping; each row's best-validation checkpoint is evaluated on {data.Test.Count} test images " +
                                        $"({(data.Synthetic ? "the embedded synthetic dataset" : data.Dataset.Root)}). From scratch (no pretrained weights)."));
        return sb.ToString();
    }
}
