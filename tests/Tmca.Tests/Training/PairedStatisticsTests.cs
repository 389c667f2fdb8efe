using Tmca.Training;
using Xunit;

namespace Tmca.Tests.Training;

/// <summary>The paired statistics against values computed independently here.</summary>
public class PairedStatisticsTests
{
    [Fact]
    public void MeanAndSampleStandardDeviation()
    {
        Assert.Equal(5.0, PairedStatistics.Mean([2, 4, 4, 4, 5, 5, 7, 9]));
        Assert.Equal(Math.Sqrt(32.0 / 7), PairedStatistics.StdDev([2, 4, 4, 4, 5, 5, 7, 9]), 12);
        Assert.Equal(0, PairedStatistics.StdDev([3.0]));
    }

    [Fact]
    public void ConstantDifferencesGiveAPointInterval()
    {
        var a = Enumerable.Range(0, 50).Select(i => i / 50.0 + 0.1).ToArray();
        var b = Enumerable.Range(0, 50).Select(i => i / 50.0).ToArray();
        var (m, lo, hi) = PairedStatistics.BootstrapMeanDifference(a, b);
        Assert.Equal(0.1, m, 12); Assert.Equal(0.1, lo, 12); Assert.Equal(0.1, hi, 12);
    }

    [Fact]
    public void TheBootstrapIntervalAgreesWithTheNormalApproximationOnALargeSample()
    {
        // 600 pairs whose differences are a fixed, known sample: mean 0.05, sd ≈ 0.2 — the percentile bootstrap of the
        // mean must agree with mean ± 1.96·sd/√n (the CLT interval, computed here independently) to a few percent
        var r = new Random(5);
        var d = Enumerable.Range(0, 600).Select(_ => 0.05 + 0.2 * Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble())).ToArray();
        var b = Enumerable.Range(0, 600).Select(i => 0.5 + 0.001 * i).ToArray();
        var a = d.Zip(b, (x, y) => x + y).ToArray();
        double mean = d.Average(), sd = Math.Sqrt(d.Sum(x => (x - mean) * (x - mean)) / (d.Length - 1)), half = 1.959964 * sd / Math.Sqrt(d.Length);
        var (m, lo, hi) = PairedStatistics.BootstrapMeanDifference(a, b, resamples: 20000);
        Assert.Equal(mean, m, 12);
        Assert.True(Math.Abs(lo - (mean - half)) < 0.06 * half, $"low {lo} vs {mean - half}");
        Assert.True(Math.Abs(hi - (mean + half)) < 0.06 * half, $"high {hi} vs {mean + half}");
        // the same seed gives the same interval
        Assert.Equal((m, lo, hi), PairedStatistics.BootstrapMeanDifference(a, b, resamples: 20000));
    }

    [Fact]
    public void QuantilesInterpolateLikeNumPy()
    {
        double[] s = [1, 2, 3, 4];
        Assert.Equal(1.0, PairedStatistics.Quantile(s, 0));
        Assert.Equal(2.5, PairedStatistics.Quantile(s, 0.5));
        Assert.Equal(3.25, PairedStatistics.Quantile(s, 0.75));   // numpy.quantile([1,2,3,4], 0.75) = 3.25
    }

    [Fact]
    public void SignTestMatchesTheBinomialByHand()
    {
        // 9 wins, 1 loss, 2 ties: p = 2·(C(10,0) + C(10,1))/2¹⁰ = 22/1024
        double[] a = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 5, 5];
        double[] b = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5, 5];
        var (plus, minus, ties, p) = PairedStatistics.SignTest(a, b);
        Assert.Equal((9, 1, 2), (plus, minus, ties));
        Assert.Equal(22.0 / 1024, p, 12);
        Assert.Equal(1.0, PairedStatistics.SignTest([1, 0], [0, 1]).P);
    }
}
