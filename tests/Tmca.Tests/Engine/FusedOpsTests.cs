using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

public class FusedOpsTests
{
    private static float[] R(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();

    /// <summary>
    /// Runs a fused op and the chain of ops it replaces on the same inputs (each input requires a gradient) and the same
    /// output gradient; asserts the output and every input's gradient are equal bit for bit (and no gradient is all
    /// zero); returns how many more pool bytes the chain holds live than the fused op once the forward is done.
    /// </summary>
    private static long AssertFusedEqualsChain(Func<Tensor[], Tensor> fused, Func<Tensor[], Tensor> chain, float[] dy,
                                               params (float[] Data, int[] Shape)[] inputs)
    {
        (float[] y, float[][] grads, long live) Run(Func<Tensor[], Tensor> op)
        {
            var xs = inputs.Select(i => { var t = Tensor.FromArray(i.Data, i.Shape); t.RequiresGrad = true; return t; }).ToArray();
            using var tape = new Tape();
            long before = CpuArrayPool.ThreadLiveBytes;
            var y = op(xs);
            long live = CpuArrayPool.ThreadLiveBytes - before;
            var yv = y.ToArray<float>();
            tape.Backward(y, Tensor.FromArray(dy, y.Shape), keep: [y]);
            return (yv, xs.Select(x => x.Grad!.ToArray<float>()).ToArray(), live);
        }
        var f = Run(fused);
        var c = Run(chain);
        Assert.Equal(c.y, f.y);
        for (int i = 0; i < inputs.Length; i++)
        {
            Assert.Equal(c.grads[i], f.grads[i]);
            Assert.Contains(f.grads[i], v => v != 0);
        }
        return c.live - f.live;
    }

    [Fact]
    public void GeluConv1x1EqualsTheChainBitForBitAndKeepsNoGeluOutput()
    {
        // u: 2×64×8×8 pre-activation (32 KiB: large enough for the pool), w: 16×64×1×1, b: 16 — the ConvNeXt GELU → pwconv2 shape, small
        var rng = new Random(7);
        var extra = AssertFusedEqualsChain(x => Ops.GeluConv1x1(x[0], x[1], x[2]), x => Ops.Conv2d(Ops.Gelu(x[0]), x[1], x[2]), R(rng, 2 * 16 * 64),
                                           (R(rng, 2 * 64 * 64), [2, 64, 8, 8]), (R(rng, 16 * 64), [16, 64, 1, 1]), (R(rng, 16), [16]));
        Assert.Equal(2 * 64 * 64 * 4, extra);   // the chain also holds gelu(u)
    }

    [Fact]
    public void AddScaledEqualsMulThenAddBitForBitAndKeepsNoProduct()
    {
        var rng = new Random(11);
        var extra = AssertFusedEqualsChain(x => Ops.AddScaled(x[0], x[1], x[2]), x => Ops.Add(x[0], Ops.Mul(x[1], x[2])), R(rng, 2 * 16 * 64),
                                           (R(rng, 2 * 16 * 64), [2, 16, 8, 8]), (R(rng, 2 * 16 * 64), [2, 16, 8, 8]), (R(rng, 16), [16, 1, 1]));
        Assert.Equal(2 * 16 * 64 * 4, extra);   // the chain also holds h ⊙ γ until the backward
    }

    [Fact]
    public void DiscardFreesAValueNoBackwardReadsAndKeepsOneThatIsSaved()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 4096).Select(i => (float)Math.Sin(i)).ToArray(), 4096); x.RequiresGrad = true;
        using var scope = new TensorScope();
        using var tape = new Tape();
        var a = Ops.Scale(x, 2.0);          // scale's backward reads nothing
        var b = Ops.Gelu(a);                // gelu saves its input: a is read by a backward
        var c = Ops.Scale(b, 3.0);
        var y = Ops.Sum(c);
        long before = CpuArrayPool.ThreadLiveBytes;
        Ops.Discard(a, c);                  // a stays (saved by gelu), c goes
        Assert.Equal(4096 * 4, before - CpuArrayPool.ThreadLiveBytes);
        Assert.Throws<ObjectDisposedException>(() => c.ToArray<float>());
        tape.Backward(y);                   // the gradient still flows through c's slot
        var expect = x.ToArray<float>().Select(v => 6 * Gelu1(2 * v)).ToArray();
        var got = x.Grad!.ToArray<float>();
        for (int i = 0; i < got.Length; i++) Assert.Equal(expect[i], got[i], 1e-4f);
    }

    private static float Gelu1(double z) => (float)(0.5 * (1 + Erf(z / Math.Sqrt(2))) + z * Math.Exp(-z * z / 2) / Math.Sqrt(2 * Math.PI));

    private static double Erf(double x)
    {   // Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7)
        double t = 1 / (1 + 0.3275911 * Math.Abs(x));
        double y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
        return x >= 0 ? y : -y;
    }

    [Fact]
    public void GeluLinearEqualsTheChainBitForBitAndKeepsNoGeluOutput()
    {
        var rng = new Random(5);
        var extra = AssertFusedEqualsChain(x => Ops.GeluLinear(x[0], x[1], x[2]), x => Ops.Linear(Ops.Gelu(x[0]), x[1], x[2]), R(rng, 3 * 40 * 24),
                                           (R(rng, 3 * 40 * 64), [3, 40, 64]), (R(rng, 24 * 64), [24, 64]), (R(rng, 24), [24]));
        Assert.Equal(3 * 40 * 64 * 4, extra);   // the chain also holds gelu(u)
    }
}
