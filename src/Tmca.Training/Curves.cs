using ScottPlot;

namespace Tmca.Training;

/// <summary>Loss and validation-Dice curves of a run as one PNG (ScottPlot).</summary>
public static class Curves
{
    public static void Write(RunLog log, string path)
    {
        var steps = log.ReadSteps().ToList();
        var epochs = log.ReadEpochs().ToList();
        if (steps.Count == 0) return;
        var multi = new Multiplot();
        multi.AddPlots(2);
        var loss = multi.GetPlot(0);
        double[] xs = steps.Select(s => (double)s.GetProperty("step").GetInt64()).ToArray();
        double[] ys = steps.Select(s => s.GetProperty("loss").GetDouble()).ToArray();
        loss.Add.ScatterLine(xs, ys).LegendText = "training loss (per step)";
        if (ys.Length >= 20) loss.Add.ScatterLine(xs, Smooth(ys, Math.Max(5, ys.Length / 40))).LegendText = "moving average";
        loss.Title("loss"); loss.XLabel("step"); loss.ShowLegend();
        var dice = multi.GetPlot(1);
        if (epochs.Count > 0)
        {
            double[] ex = epochs.Select(e => (double)e.GetProperty("epoch").GetInt32()).ToArray();
            dice.Add.ScatterLine(ex, epochs.Select(e => e.GetProperty("val_dice").GetDouble()).ToArray()).LegendText = "validation Dice (per image)";
            dice.Add.ScatterLine(ex, epochs.Select(e => e.GetProperty("val_dice_micro").GetDouble()).ToArray()).LegendText = "validation Dice (micro)";
        }
        dice.Title("validation Dice"); dice.XLabel("epoch"); dice.Axes.SetLimitsY(0, 1); dice.ShowLegend();
        var tmp = path + ".tmp.png";
        multi.SavePng(tmp, 900, 700);
        File.Move(tmp, path, overwrite: true);
    }

    private static double[] Smooth(double[] y, int w)
    {
        var o = new double[y.Length];
        double s = 0;
        for (int i = 0; i < y.Length; i++)
        {
            s += y[i];
            if (i >= w) s -= y[i - w];
            o[i] = s / Math.Min(i + 1, w);
        }
        return o;
    }
}
