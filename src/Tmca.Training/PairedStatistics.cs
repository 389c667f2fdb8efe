using Tmca.Data;

namespace Tmca.Training;

/// <summary>
/// Statistics for comparing two models on the same test images: per-image scores are paired (the same image under
/// both models), so the question is the mean of the differences and how sure it is.
/// </summary>
public static class PairedStatistics
{
    public static double Mean(IReadOnlyList<double> x) => x.Count == 0 ? double.NaN : x.Average();

    /// <summary>The sample standard deviation (n − 1); 0 for fewer than two values.</summary>
    public static double StdDev(IReadOnlyList<double> x)
    {
        if (x.Count < 2) return 0;
        double m = x.Average();
        return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Count - 1));
    }

    /// <summary>
    /// Percentile bootstrap of mean(a − b) over the pairs (a[i], b[i]): <paramref name="resamples"/> resamples of the
    /// pairs with replacement (a seeded generator, so the interval is reproducible), the (1 − level)/2 and
    /// (1 + level)/2 quantiles of their means (linear interpolation between order statistics).
    /// </summary>
    public static (double Mean, double Low, double High) BootstrapMeanDifference(IReadOnlyList<double> a, IReadOnlyList<double> b,
                                                                                 int resamples = 4000, double level = 0.95, ulong seed = 20261202)
    {
        if (a.Count != b.Count) throw new ArgumentException($"paired samples of different sizes ({a.Count} and {b.Count})");
        int n = a.Count;
        if (n == 0) throw new ArgumentException("no pairs to compare");
        var d = new double[n];
        for (int i = 0; i < n; i++) d[i] = a[i] - b[i];
        var rng = new Xoshiro(seed);
        var means = new double[resamples];
        for (int r = 0; r < resamples; r++)
        {
            double s = 0;
            for (int i = 0; i < n; i++) s += d[rng.Next(n)];
            means[r] = s / n;
        }
        Array.Sort(means);
        return (d.Average(), Quantile(means, (1 - level) / 2), Quantile(means, (1 + level) / 2));
    }

    /// <summary>The q-quantile of sorted values, linear between order statistics (NumPy's default).</summary>
    public static double Quantile(double[] sorted, double q)
    {
        double pos = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>Two-sided exact sign test of a against b: ties dropped, p = min(1, 2·P(X ≤ min(n₊, n₋))) with X ~ Binomial(n, ½).</summary>
    public static (int Plus, int Minus, int Ties, double P) SignTest(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count != b.Count) throw new ArgumentException($"paired samples of different sizes ({a.Count} and {b.Count})");
        int plus = 0, minus = 0, ties = 0;
        for (int i = 0; i < a.Count; i++)
        {
            if (a[i] > b[i]) plus++; else if (a[i] < b[i]) minus++; else ties++;
        }
        int n = plus + minus, k = Math.Min(plus, minus);
        if (n == 0) return (plus, minus, ties, 1.0);
        // P(X ≤ k) in log space (n can be thousands)
        double logHalfN = -n * Math.Log(2), cdf = 0, logC = 0;
        for (int i = 0; i <= k; i++)
        {
            if (i > 0) logC += Math.Log(n - i + 1) - Math.Log(i);
            cdf += Math.Exp(logC + logHalfN);
        }
        return (plus, minus, ties, Math.Min(1.0, 2 * cdf));
    }
}
