using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

public class OptimTests
{
    /// <summary>AdamW against a hand-expanded PyTorch step (values computed independently in float64).</summary>
    [Fact]
    public void AdamWMatchesTheTorchFormulaAndSkipsDecayOnScalars()
    {
        var w = new Parameter("w", Tensor.FromArray(new[] { 0.5f, -1.0f }, [2]).ToPersistent());
        var s = new Parameter("s", Tensor.FromArray(new[] { 2.0f }, [1]).ToPersistent(), isScalar: true);
        var opt = new AdamW([w, s], new AdamWConfig(Lr: 0.1, WeightDecay: 0.5));
        double[] pw = [0.5, -1.0], ps = [2.0];
        double[] mw = [0, 0], vw = [0, 0], ms = [0], vs = [0];
        for (int step = 1; step <= 3; step++)
        {
            w.Value.GradOrZeros().Backend.Upload(new[] { 0.3f * step, -0.2f }, w.Value.Grad!);
            s.Value.GradOrZeros().Backend.Upload(new[] { 1.0f }, s.Value.Grad!);
            opt.StepOnce();
            Expected(pw, mw, vw, [0.3 * step, -0.2], decay: true, step);
            Expected(ps, ms, vs, [1.0], decay: false, step);
            Assert.Equal(pw[0], w.Value.ToArray<float>()[0], 5);
            Assert.Equal(pw[1], w.Value.ToArray<float>()[1], 5);
            Assert.Equal(ps[0], s.Value.ToArray<float>()[0], 5);
        }
        Assert.Equal(3, opt.Step);

        static void Expected(double[] p, double[] m, double[] v, double[] g, bool decay, int t)
        {
            for (int i = 0; i < p.Length; i++)
            {
                if (decay) p[i] *= 1 - 0.1 * 0.5;
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                p[i] -= 0.1 / (1 - Math.Pow(0.9, t)) * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(1 - Math.Pow(0.999, t)) + 1e-8);
            }
        }
    }

    [Fact]
    public void CosineScheduleDecaysToItsFloor()
    {
        var c = new CosineSchedule(3e-4, 10);
        Assert.Equal(3e-4, c.At(0), 12);
        Assert.Equal(1e-6 + (3e-4 - 1e-6) / 2, c.At(5), 12);
        Assert.Equal(1e-6, c.At(10), 12);
        Assert.True(c.At(3) > c.At(4));
    }
}

internal static class PersistentExtensions
{
    public static Tensor ToPersistent(this Tensor t) => t.Clone(persistent: true);
}
