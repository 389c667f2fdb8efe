using System.Globalization;
using System.Text;
using System.Text.Json;
using Tmca.Data;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>The metrics of one split under both protocols, with the per-sample counts behind them.</summary>
public sealed record Evaluation(string Split, MetricSummary Summary, IReadOnlyList<(PreparedSample Sample, Confusion Counts)> PerSample, bool ShuffledText)
{
    /// <summary>The one-row markdown table of spec §10's numbers.</summary>
    public string MarkdownRow(string label) =>
        string.Create(CultureInfo.InvariantCulture, $"| {label} | {Summary.DicePerImage * 100:0.00} | {Summary.IoUPerImage * 100:0.00} | {Summary.DiceMicro * 100:0.00} | {Summary.IoUMicro * 100:0.00} | {Summary.Accuracy * 100:0.00} |");

    public const string MarkdownHeader = "| model | Dice (per image) | IoU (per image) | Dice (micro) | IoU (micro) | pixel accuracy |\n|---|---|---|---|---|---|";
}

/// <summary>
/// Runs a model in evaluation mode over a split and scores it (spec §10): prediction = σ(logits) &gt; 0.5 at the
/// model resolution; per-image Dice and IoU averaged over images (an image whose prediction and ground truth are
/// both empty counts as 1 — the output says how many), micro Dice and IoU from pixel counts summed over the split,
/// and pixel accuracy. The shuffled-text control gives each image another image's report.
/// </summary>
public static class Evaluator
{
    public static Evaluation Run(TmcaModel model, PreparedSplit split, int batchSize, bool shuffleText = false, int seed = 0)
    {
        int[]? reportFrom = shuffleText ? Derangement(split.Count, seed) : null;
        var results = new List<(PreparedSample, Confusion)>(split.Count);
        foreach (var (sample, logits) in Logits(model, split, batchSize, reportFrom))
            results.Add((sample, Confusion.Of(logits, sample.Mask)));
        return new Evaluation(split.Name, MetricSummary.Of(results.Select(r => r.Item2).ToList()), results, shuffleText);
    }

    /// <summary>
    /// Evaluation-mode logits (S×S) for every sample of a split, in order, computed a batch at a time;
    /// <paramref name="reportFrom"/> optionally gives sample i the report of sample reportFrom[i].
    /// </summary>
    public static IEnumerable<(PreparedSample Sample, float[] Logits)> Logits(TmcaModel model, PreparedSplit split, int batchSize, int[]? reportFrom = null)
    {
        var samples = split.Samples;
        int S = split.Size;
        for (int start = 0; start < samples.Count; start += batchSize)
        {
            var idx = Enumerable.Range(start, Math.Min(batchSize, samples.Count - start)).ToArray();
            float[] logits = [];
            Exception? outOfMemory = null;
            using (var scope = new TensorScope())
            using (Tape.NoGrad())
            {
                try
                {
                    var batch = Batches.Make(samples, idx, model.Config.InChannels, model.Backend, reportFrom: reportFrom is null ? null : idx.Select(i => reportFrom[i]).ToArray()).ForModel();
                    logits = model.Forward(batch, training: false).Logits.ToArray<float>();
                }
                catch (Exception e) when (e is IOutOfDeviceMemory && model.Backend is IDeviceMemory) { outOfMemory = e; }
            }
            if (outOfMemory is not null) throw BatchFit.Exhausted(outOfMemory, $"evaluating {split.Name}", idx.Length, model, split, training: false);
            for (int b = 0; b < idx.Length; b++)
                yield return (samples[idx[b]], logits.AsSpan(b * S * S, S * S).ToArray());
        }
    }

    /// <summary>A permutation with no fixed point (each image gets another image's report), seeded.</summary>
    public static int[] Derangement(int n, int seed)
    {
        var p = Enumerable.Range(0, n).ToArray();
        if (n < 2) return p;
        var rng = new Xoshiro((ulong)seed + 0xD1CE);
        // Sattolo's algorithm: a uniformly random single cycle, hence no fixed point.
        for (int i = n - 1; i > 0; i--) { int j = rng.Next(i); (p[i], p[j]) = (p[j], p[i]); }
        return p;
    }

    /// <summary>Writes per-sample.csv, metrics.json and results.md into <paramref name="dir"/> (each file atomically).</summary>
    public static void Write(Evaluation e, string dir, string modelLabel, string? checkpoint = null)
    {
        Directory.CreateDirectory(dir);
        var csv = new StringBuilder("id,tp,fp,fn,tn,dice,iou,accuracy,both_empty,report\n");
        foreach (var (s, c) in e.PerSample)
            csv.Append(string.Create(CultureInfo.InvariantCulture,
                $"{Csv(s.Source.Id)},{c.Tp},{c.Fp},{c.Fn},{c.Tn},{c.Dice:0.######},{c.IoU:0.######},{c.Accuracy:0.######},{(c.BothEmpty ? 1 : 0)},{Csv(s.Source.Report)}\n"));
        AtomicFile.WriteAllText(Path.Combine(dir, "per-sample.csv"), csv.ToString());
        var summary = new
        {
            split = e.Split, shuffled_text = e.ShuffledText, checkpoint, images = e.Summary.Images,
            per_image = new { dice = e.Summary.DicePerImage, iou = e.Summary.IoUPerImage, both_empty_images_scored_1 = e.Summary.BothEmpty },
            micro = new { dice = e.Summary.DiceMicro, iou = e.Summary.IoUMicro },
            pixel_accuracy = e.Summary.Accuracy,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "metrics.json"), JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.WriteAllText(Path.Combine(dir, "results.md"), Markdown(e, modelLabel));
    }

    public static string Markdown(Evaluation e, string modelLabel) =>
        $"{Evaluation.MarkdownHeader}\n{e.MarkdownRow(modelLabel)}\n\n" +
        $"{e.Summary.Images} {e.Split} images{(e.ShuffledText ? ", each with another image's report" : "")}. Per-image protocol (LViT): means over images; " +
        $"{e.Summary.BothEmpty} image(s) with empty prediction and empty ground truth scored 1. Micro protocol (GuideDecoder, torchmetrics): " +
        "pixel counts summed over the split. Prediction: σ(logits) > 0.5 at the model resolution.\n";

    private static string Csv(string s) => s.Contains(',') || s.Contains('"') || s.Contains('\n') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
}
