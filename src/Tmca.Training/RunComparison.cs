using System.Globalization;
using System.Text;
using ScottPlot;
using SkiaSharp;
using Tmca.Data;
using Tmca.Data.Images;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>One side of a comparison: a run's per-image test counts (from its eval-test/per-sample.csv).</summary>
public sealed record ComparedRun(string Label, string? RunDir, List<(string Id, Confusion Counts)> PerSample)
{
    /// <summary>A run folder (its eval-test/per-sample.csv) or a per-sample.csv itself.</summary>
    public static ComparedRun Open(string path)
    {
        string csv, label;
        string? runDir;
        if (Directory.Exists(path))
        {
            csv = Path.Combine(path, "eval-test", "per-sample.csv");
            runDir = path;
            label = Path.GetFileName(Path.GetFullPath(path).TrimEnd('/'));
        }
        else
        {
            csv = path;
            var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
            runDir = Path.GetFileName(dir) == "eval-test" ? Path.GetDirectoryName(dir) : null;
            label = runDir is null ? Path.GetFileName(dir) : Path.GetFileName(runDir);
        }
        // seed folders of a multi-seed run or an ablation ("full-tmca/seed-1"): name the parent too
        if (runDir is not null && label.StartsWith("seed-"))
            label = $"{Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(runDir).TrimEnd('/')))}/{label}";
        return new ComparedRun(label, runDir, PerSampleCsv.Read(csv));
    }
}

/// <summary>One metric compared: both means, the paired difference A − B with its 95 % bootstrap interval, and a sign test.</summary>
public sealed record ComparisonRow(string Metric, double MeanA, double MeanB, double Diff, double Low, double High, int Plus, int Minus, int Ties, double SignP);

/// <summary>Per image, both runs' scores.</summary>
public sealed record PairedImage(string Id, double DiceA, double DiceB, double IoUA, double IoUB);

/// <summary>
/// `tmca compare`: two runs on the same test images, paired image by image — the mean difference of per-image Dice and
/// IoU with a 95 % percentile-bootstrap interval and an exact sign test — written as a table (markdown and CSV), a figure,
/// and a contact sheet of the images where the two differ most (image, ground truth, both predictions, the report).
/// </summary>
public static class RunComparison
{
    public static (List<ComparisonRow> Rows, List<PairedImage> Pairs) Compare(ComparedRun a, ComparedRun b)
    {
        var byId = b.PerSample.GroupBy(x => x.Id).ToDictionary(g => g.Key, g => g.First().Counts);
        var pairs = a.PerSample.Where(x => byId.ContainsKey(x.Id))
                               .Select(x => new PairedImage(x.Id, x.Counts.Dice, byId[x.Id].Dice, x.Counts.IoU, byId[x.Id].IoU)).ToList();
        if (pairs.Count == 0) throw new InvalidDataException($"{a.Label} and {b.Label} share no test image: they were not evaluated on the same split");
        ComparisonRow Row(string name, Func<PairedImage, double> fa, Func<PairedImage, double> fb)
        {
            var va = pairs.Select(fa).ToList(); var vb = pairs.Select(fb).ToList();
            var (diff, lo, hi) = PairedStatistics.BootstrapMeanDifference(va, vb);
            var (plus, minus, ties, p) = PairedStatistics.SignTest(va, vb);
            return new ComparisonRow(name, va.Average(), vb.Average(), diff, lo, hi, plus, minus, ties, p);
        }
        return ([Row("Dice (per image)", p => p.DiceA, p => p.DiceB), Row("IoU (per image)", p => p.IoUA, p => p.IoUB)], pairs);
    }

    public static string Markdown(ComparedRun a, ComparedRun b, List<ComparisonRow> rows, List<PairedImage> pairs)
    {
        var ic = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine($"| metric | A: {a.Label} | B: {b.Label} | A − B [95 % CI] | A better / B better / ties | sign test p |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(ic, $"| {r.Metric} | {r.MeanA * 100:0.00} | {r.MeanB * 100:0.00} | {r.Diff * 100:+0.00;-0.00} [{r.Low * 100:+0.00;-0.00}, {r.High * 100:+0.00;-0.00}]" +
                                            $"{(r.Low <= 0 && r.High >= 0 ? " not resolved" : "")} | {r.Plus} / {r.Minus} / {r.Ties} | {r.SignP:0.####} |"));
        sb.AppendLine();
        sb.AppendLine($"{pairs.Count} test images evaluated by both runs, paired by id. Interval: percentile bootstrap of the mean paired difference " +
                      "(4,000 resamples, fixed seed); \"not resolved\": it contains 0. Sign test: exact, two-sided, ties dropped.");
        return sb.ToString();
    }

    public static string Csv(List<PairedImage> pairs)
    {
        var sb = new StringBuilder("id,dice_a,dice_b,dice_diff,iou_a,iou_b,iou_diff\n");
        foreach (var p in pairs)
            sb.Append(string.Create(CultureInfo.InvariantCulture, $"\"{p.Id.Replace("\"", "\"\"")}\",{p.DiceA:0.######},{p.DiceB:0.######},{p.DiceA - p.DiceB:0.######},{p.IoUA:0.######},{p.IoUB:0.######},{p.IoUA - p.IoUB:0.######}\n"));
        return sb.ToString();
    }

    /// <summary>The mean paired differences with their intervals (bar: the mean; error bar: half the interval's width).</summary>
    public static void Figure(List<ComparisonRow> rows, string title, string path)
    {
        var plot = new Plot();
        plot.Add.Bars(rows.Select((r, i) => new Bar { Position = i, Value = r.Diff * 100, Error = (r.High - r.Low) * 50 }).ToList());
        plot.Axes.Bottom.SetTicks(rows.Select((_, i) => (double)i).ToArray(), rows.Select(r => r.Metric).ToArray());
        plot.Add.HorizontalLine(0, 1, Colors.Gray);
        plot.Title(title);
        plot.YLabel("A − B, ×100 (error bar: half the 95 % interval)");
        var tmp = path + ".tmp.png";
        plot.SavePng(tmp, 700, 450);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// One row per image (the <paramref name="count"/> largest |ΔDice|): the image, its ground truth, A's prediction and
    /// B's, at the model's resolution, with the report and both scores as the caption.
    /// </summary>
    public static void ContactSheet(TmcaModel modelA, TmcaModel modelB, PreparedSplit split, List<PairedImage> pairs, int count, string labelA, string labelB, string path)
    {
        var worst = pairs.OrderByDescending(p => Math.Abs(p.DiceA - p.DiceB)).Take(count).ToList();
        var byId = split.Samples.ToDictionary(s => s.Source.Id);
        var chosen = worst.Where(p => byId.ContainsKey(p.Id)).Select(p => byId[p.Id]).ToList();
        if (chosen.Count == 0) return;
        var sub = new PreparedSplit(split.Name, split.Size, chosen);
        var la = Evaluator.Logits(modelA, sub, 8).ToDictionary(x => x.Sample.Source.Id, x => x.Logits);
        var lb = Evaluator.Logits(modelB, sub, 8).ToDictionary(x => x.Sample.Source.Id, x => x.Logits);
        int S = split.Size, zoom = S < 192 ? 2 : 1, panel = S * zoom, caption = 42, pad = 6;
        int width = 4 * panel + 5 * pad, height = chosen.Count * (panel + caption + pad) + pad + 24;
        using var bmp = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using var canvas = new SKCanvas(bmp);
        canvas.Clear(new SKColor(20, 20, 20));
        using var text = new SKPaint { Color = SKColors.White, IsAntialias = true };
        using var font = new SKFont(SKTypeface.Default, 12);
        canvas.DrawText($"image | ground truth | A: {labelA} | B: {labelB}", pad, 16, SKTextAlign.Left, font, text);
        for (int r = 0; r < chosen.Count; r++)
        {
            var s = chosen[r];
            int y0 = 24 + pad + r * (panel + caption + pad);
            var grey = s.Image.AsSpan(0, S * S).ToArray();
            float lo = grey.Min(), hi = grey.Max();
            byte G(int i) => (byte)Math.Clamp((grey[i] - lo) / Math.Max(1e-6f, hi - lo) * 255, 0, 255);
            var panels = new Func<int, SKColor>[]
            {
                i => new SKColor(G(i), G(i), G(i)),
                i => s.Mask[i] != 0 ? new SKColor(40, 220, 60) : new SKColor((byte)(G(i) / 3), (byte)(G(i) / 3), (byte)(G(i) / 3)),
                i => la[s.Source.Id][i] > 0 ? new SKColor(240, 40, 40) : new SKColor((byte)(G(i) / 3), (byte)(G(i) / 3), (byte)(G(i) / 3)),
                i => lb[s.Source.Id][i] > 0 ? new SKColor(60, 120, 250) : new SKColor((byte)(G(i) / 3), (byte)(G(i) / 3), (byte)(G(i) / 3)),
            };
            for (int k = 0; k < 4; k++)
            {
                int x0 = pad + k * (panel + pad);
                for (int y = 0; y < panel; y++)
                    for (int x = 0; x < panel; x++) bmp.SetPixel(x0 + x, y0 + y, panels[k]((y / zoom) * S + x / zoom));
            }
            var p = worst.First(w => w.Id == s.Source.Id);
            string cap = string.Create(CultureInfo.InvariantCulture, $"{s.Source.Id}: Dice A {p.DiceA * 100:0.0}, B {p.DiceB * 100:0.0} — {s.Source.Report}");
            var lines = Predictor.Wrap(cap, font, width - 2 * pad, 2);
            for (int i = 0; i < lines.Count; i++) canvas.DrawText(lines[i], pad, y0 + panel + 16 + 16 * i, SKTextAlign.Left, font, text);
        }
        canvas.Flush();
        ImageIO.SavePng(path, bmp);
    }
}
