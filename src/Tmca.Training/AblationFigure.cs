using ScottPlot;

namespace Tmca.Training;

/// <summary>The ablation as one figure: per-image test Dice of every row, mean over seeds with ± one standard deviation.</summary>
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
        plot.Axes.Margins(bottom: 0);
        int seeds = results.Count == 0 ? 0 : results.Max(r => r.Runs.Count);
        plot.Title($"test Dice (per image), mean ± sd over {seeds} seed{(seeds == 1 ? "" : "s")}");
        plot.YLabel("Dice ×100");
        var tmp = path + ".tmp.png";
        plot.SavePng(tmp, 900, 520);
        File.Move(tmp, path, overwrite: true);
    }
}
