using ScottPlot;

namespace Tmca.Training;

/// <summary>The ablation as one figure: per-image test Dice of every row, mean over seeds with ± one standard deviation,
/// and above each bar its paired difference to text guidance with the 95 % interval (as in ablation.md).</summary>
public static class AblationFigure
{
    public static void Write(IReadOnlyList<AblationResult> results, string path)
    {
        var plot = new Plot();
        var bars = results.Select((r, i) => new Bar
        {
            Position = i, Value = r.Mean(x => x.Test.DicePerImage) * 100, Error = r.Std(x => x.Test.DicePerImage) * 100,
        }).ToList();
        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(results.Select((_, i) => (double)i).ToArray(), results.Select(r => r.Slug).ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 20;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Margins(bottom: 0, top: 0.25);   // room above the bars for the Δ labels
        // Rotated labels hang below the axis: reserve their height, or the longer slugs are cut at the image's edge.
        plot.Axes.Bottom.MinimumSize = 18 + 7.5f * results.Select(r => r.Slug.Length).DefaultIfEmpty(0).Max() * MathF.Sin(20 * MathF.PI / 180);
        plot.Axes.Right.MinimumSize = 40;   // the last label runs to the right of its tick
        var ic = System.Globalization.CultureInfo.InvariantCulture;
        for (int i = 0; i < results.Count; i++)
        {
            var d = Ablation.DiceVsReference(results[i], results);
            if (d is null && results[i].Slug != Ablation.Reference) continue;
            string text = d is { } x ? string.Create(ic, $"Δ {x.Mean * 100:+0.00;-0.00}\n[{x.Low * 100:+0.00;-0.00}, {x.High * 100:+0.00;-0.00}]") : "Δ reference";
            var label = plot.Add.Text(text, i, bars[i].Value + bars[i].Error);
            label.LabelFontSize = 11;
            label.LabelAlignment = Alignment.LowerCenter;
        }
        int seeds = results.Count == 0 ? 0 : results.Max(r => r.Runs.Count);
        plot.Title($"test Dice (per image), mean ± sd over {seeds} seed{(seeds == 1 ? "" : "s")}");
        plot.YLabel("Dice ×100");
        var tmp = path + ".tmp.png";
        plot.SavePng(tmp, 900, 520);
        File.Move(tmp, path, overwrite: true);
    }
}
