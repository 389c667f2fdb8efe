namespace Tmca.Data;

/// <summary>Pixel counts of one prediction against its ground truth.</summary>
public readonly record struct Confusion(long Tp, long Fp, long Fn, long Tn)
{
    public long Total => Tp + Fp + Fn + Tn;
    public bool BothEmpty => Tp + Fp + Fn == 0;
    /// <summary>2|P∩G|/(|P|+|G|); 1 when both are empty (per-image protocol).</summary>
    public double Dice => BothEmpty ? 1.0 : 2.0 * Tp / (2.0 * Tp + Fp + Fn);
    /// <summary>|P∩G|/|P∪G|; 1 when both are empty.</summary>
    public double IoU => BothEmpty ? 1.0 : (double)Tp / (Tp + Fp + Fn);
    public double Accuracy => Total == 0 ? 1.0 : (double)(Tp + Tn) / Total;
    public static Confusion operator +(Confusion a, Confusion b) => new(a.Tp + b.Tp, a.Fp + b.Fp, a.Fn + b.Fn, a.Tn + b.Tn);

    /// <summary>Prediction = logit &gt; 0 (σ(logit) &gt; 0.5) against gt ∈ {0, 1}.</summary>
    public static Confusion Of(ReadOnlySpan<float> logits, ReadOnlySpan<byte> gt)
    {
        long tp = 0, fp = 0, fn = 0, tn = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            bool p = logits[i] > 0, g = gt[i] != 0;
            if (p && g) tp++; else if (p) fp++; else if (g) fn++; else tn++;
        }
        return new Confusion(tp, fp, fn, tn);
    }
}

/// <summary>
/// Both protocols of spec §10 from one set of predictions: per-image means of Dice and IoU (LViT line; an image
/// whose prediction and ground truth are both empty scores 1) and micro Dice/IoU from pixel counts summed over
/// the whole split (GuideDecoder line), plus pixel accuracy.
/// </summary>
public sealed record MetricSummary(int Images, int BothEmpty, double DicePerImage, double IoUPerImage, double DiceMicro, double IoUMicro, double Accuracy)
{
    public static MetricSummary Of(IReadOnlyList<Confusion> perImage)
    {
        if (perImage.Count == 0) throw new ArgumentException("no predictions to summarise");
        var total = perImage.Aggregate(default(Confusion), (a, b) => a + b);
        return new MetricSummary(perImage.Count, perImage.Count(c => c.BothEmpty), perImage.Average(c => c.Dice), perImage.Average(c => c.IoU),
                                 total.Tp + total.Fp + total.Fn == 0 ? 1.0 : 2.0 * total.Tp / (2.0 * total.Tp + total.Fp + total.Fn),
                                 total.Tp + total.Fp + total.Fn == 0 ? 1.0 : (double)total.Tp / (total.Tp + total.Fp + total.Fn),
                                 total.Accuracy);
    }
}
