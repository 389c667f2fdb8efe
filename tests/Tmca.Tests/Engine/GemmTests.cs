using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

/// <summary>The packed float GEMM against the float64 reference, over edge tiles, transposes, batches and beta.</summary>
public class GemmTests
{
    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(7, 33, 5, 1)]
    [InlineData(64, 64, 64, 1)]
    [InlineData(97, 131, 300, 1)]     // edge tiles in every direction, K beyond one KC block
    [InlineData(13, 257, 9, 3)]       // batched small products
    [InlineData(200, 40, 70, 2)]
    [InlineData(300, 2100, 17, 1)]    // N beyond one NC block
    [InlineData(16, 100, 300, 2)]     // short M: B read in place, K beyond one block, N tail
    [InlineData(32, 64, 40, 1)]       // short M, no N tail
    [InlineData(3, 500, 20, 1)]       // a single partial row panel
    public void FastPathMatchesReference(int m, int n, int k, int batch)
    {
        var r = new Rng(m + n + k);
        foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) })
            foreach (var beta in new[] { 0.0, 1.0, 0.5 })
            {
                var a = r.F32([batch, m, k]); var b = r.F32([batch, k, n]); var c = r.F32([batch, m, n]);
                var expected = Reference(ta, tb, m, n, k, 1.5, a, b, beta, c, batch);
                CpuBackend.Instance.Gemm(ta, tb, m, n, k, 1.5, a, 0, (long)m * k, b, 0, (long)k * n, beta, c, 0, (long)m * n, batch);
                var got = c.ToArray<float>();
                for (int i = 0; i < got.Length; i++)
                    Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-4 * (1 + Math.Abs(expected[i])) * Math.Sqrt(k),
                        $"ta={ta} tb={tb} beta={beta} element {i}: {got[i]} vs {expected[i]}");
            }
    }

    [Fact]
    public void BroadcastOperandAndOffsets()
    {
        var r = new Rng(2);
        int m = 9, n = 40, k = 11, batch = 4;
        var a = r.F32([m * k + 5]);                 // one shared A, starting at offset 5
        var b = r.F32([batch, k, n]);
        var c = Tensor.Zeros([batch, m, n]);
        CpuBackend.Instance.Gemm(false, false, m, n, k, 1.0, a, 5, 0, b, 0, (long)k * n, 0.0, c, 0, (long)m * n, batch);
        var av = a.ToArray<float>(); var bv = b.ToArray<float>(); var cv = c.ToArray<float>();
        for (int bi = 0; bi < batch; bi++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++) s += av[5 + i * k + p] * (double)bv[bi * k * n + p * n + j];
                    Assert.Equal(s, cv[bi * m * n + i * n + j], 3);
                }
    }

    [Fact]
    public void BetaZeroIgnoresNaNInC()
    {
        var a = Tensor.FromArray(Enumerable.Repeat(1f, 64 * 64).ToArray(), 64, 64);
        var c = Tensor.FromArray(Enumerable.Repeat(float.NaN, 64 * 64).ToArray(), 64, 64);
        CpuBackend.Instance.Gemm(false, false, 64, 64, 64, 1.0, a, 0, 0, a, 0, 0, 0.0, c, 0, 0, 1);
        Assert.All(c.ToArray<float>(), v => Assert.Equal(64f, v));
    }

    [Fact]
    public void OutOfBoundsOperandIsRejected()
    {
        var a = Tensor.Zeros([4, 4]);
        var e = Assert.Throws<ArgumentException>(() => CpuBackend.Instance.Gemm(false, false, 4, 4, 4, 1, a, 0, 16, a, 0, 0, 0, a, 0, 0, 2));
        Assert.Contains("operand A", e.Message);
    }

    private static double[] Reference(bool ta, bool tb, int m, int n, int k, double alpha, Tensor a, Tensor b, double beta, Tensor c, int batch)
    {
        var av = a.ToArray<float>(); var bv = b.ToArray<float>(); var cv = c.ToArray<float>();
        var o = new double[cv.Length];
        for (int bi = 0; bi < batch; bi++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                    {
                        double x = ta ? av[bi * m * k + p * m + i] : av[bi * m * k + i * k + p];
                        double y = tb ? bv[bi * k * n + j * k + p] : bv[bi * k * n + p * n + j];
                        s += x * y;
                    }
                    int idx = bi * m * n + i * n + j;
                    o[idx] = alpha * s + (beta == 0 ? 0 : beta * cv[idx]);
                }
        return o;
    }
}
