using System.Globalization;
using System.Text;
using Tmca.Data;

namespace Tmca.Training;

/// <summary>One training run of a multi-seed `tmca train --seeds`.</summary>
public sealed record SeedRun(int Seed, double BestValDice, MetricSummary Test, string RunDir);

/// <summary>A multi-seed training as one table: each seed's test metrics (both protocols) and their mean ± standard deviation.</summary>
public static class SeedSummary
{
    public static string Markdown(IReadOnlyList<SeedRun> runs, string label)
    {
        var ic = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| model | seed | Dice (per image) | IoU (per image) | Dice (micro) | IoU (micro) | pixel accuracy | best val Dice |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in runs)
            sb.AppendLine(string.Create(ic, $"| {label} | {r.Seed} | {r.Test.DicePerImage * 100:0.00} | {r.Test.IoUPerImage * 100:0.00} | {r.Test.DiceMicro * 100:0.00} | {r.Test.IoUMicro * 100:0.00} | {r.Test.Accuracy * 100:0.00} | {r.BestValDice * 100:0.00} |"));
        string Ms(Func<SeedRun, double> f)
        {
            var v = runs.Select(f).ToList();
            return string.Create(ic, $"{PairedStatistics.Mean(v) * 100:0.00} ± {PairedStatistics.StdDev(v) * 100:0.00}");
        }
        sb.AppendLine($"| **{label}** | **mean ± sd ({runs.Count} seeds)** | {Ms(r => r.Test.DicePerImage)} | {Ms(r => r.Test.IoUPerImage)} | {Ms(r => r.Test.DiceMicro)} | " +
                      $"{Ms(r => r.Test.IoUMicro)} | {Ms(r => r.Test.Accuracy)} | {Ms(r => r.BestValDice)} |");
        return sb.ToString();
    }

    public static string Csv(IReadOnlyList<SeedRun> runs)
    {
        var sb = new StringBuilder("seed,dice,iou,dice_micro,iou_micro,accuracy,best_val_dice,run\n");
        foreach (var r in runs)
            sb.Append(string.Create(CultureInfo.InvariantCulture,
                $"{r.Seed},{r.Test.DicePerImage:0.######},{r.Test.IoUPerImage:0.######},{r.Test.DiceMicro:0.######},{r.Test.IoUMicro:0.######},{r.Test.Accuracy:0.######},{r.BestValDice:0.######},{r.RunDir}\n"));
        return sb.ToString();
    }
}
