using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

public class FusedOpsTests
{
    // u: 2×64×8×8 pre-activation (32 KiB: large enough for the pool), w: 16×64×1×1, b: 16 — the ConvNeXt GELU → pwconv2 shape, small
    private static (Tensor u, Tensor w, Tensor b, Tensor dy) Inputs()
    {
        var rng = new Random(7);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var u = Tensor.FromArray(R(2 * 64 * 64), 2, 64, 8, 8); u.RequiresGrad = true;
        var w = Tensor.FromArray(R(16 * 64), 16, 64, 1, 1); w.RequiresGrad = true;
        var b = Tensor.FromArray(R(16), 16); b.RequiresGrad = true;
        var dy = Tensor.FromArray(R(2 * 16 * 64), 2, 16, 8, 8);
        return (u, w, b, dy);
    }

    private static (float[] y, float[] gu, float[] gw, float[] gb) Run(bool fused)
    {
        var (u, w, b, dy) = Inputs();
        using var tape = new Tape();
        var y = fused ? Ops.GeluConv1x1(u, w, b) : Ops.Conv2d(Ops.Gelu(u), w, b);
        var yv = y.ToArray<float>();
        tape.Backward(y, dy, keep: [y]);
        return (yv, u.Grad!.ToArray<float>(), w.Grad!.ToArray<float>(), b.Grad!.ToArray<float>());
    }

    [Fact]
    public void GeluConv1x1EqualsTheChainBitForBit()
    {
        var f = Run(fused: true);
        var c = Run(fused: false);
        Assert.Equal(c.y, f.y);
        Assert.Equal(c.gu, f.gu);
        Assert.Equal(c.gw, f.gw);
        Assert.Equal(c.gb, f.gb);
        Assert.Contains(f.gu, v => v != 0);
    }

    [Fact]
    public void GeluConv1x1KeepsNoGeluOutputAfterTheForward()
    {
        long Live(bool fused)
        {
            var (u, w, b, _) = Inputs();
            long before = CpuArrayPool.ThreadLiveBytes;
            using (new TensorScope())
            {
                using var tape = new Tape();
                var y = fused ? Ops.GeluConv1x1(u, w, b) : Ops.Conv2d(Ops.Gelu(u), w, b);
                return CpuArrayPool.ThreadLiveBytes - before;
            }
        }
        // the chain also holds gelu(u): 2×64×8×8 floats
        Assert.Equal(2 * 64 * 64 * 4, Live(fused: false) - Live(fused: true));
    }

    [Fact]
    public void AddScaledEqualsMulThenAddBitForBitAndKeepsNoProduct()
    {
        var rng = new Random(11);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        float[] xs = R(2 * 16 * 64), hs = R(2 * 16 * 64), gs = R(16), dys = R(2 * 16 * 64);
        (float[] y, float[] gx, float[] gh, float[] gg, long live) Run(bool fused)
        {
            var x = Tensor.FromArray(xs, 2, 16, 8, 8); x.RequiresGrad = true;
            var h = Tensor.FromArray(hs, 2, 16, 8, 8); h.RequiresGrad = true;
            var g = Tensor.FromArray(gs, 16, 1, 1); g.RequiresGrad = true;
            using var tape = new Tape();
            long before = CpuArrayPool.ThreadLiveBytes;
            var y = fused ? Ops.AddScaled(x, h, g) : Ops.Add(x, Ops.Mul(h, g));
            long live = CpuArrayPool.ThreadLiveBytes - before;
            var yv = y.ToArray<float>();
            tape.Backward(y, Tensor.FromArray(dys, 2, 16, 8, 8), keep: [y]);
            return (yv, x.Grad!.ToArray<float>(), h.Grad!.ToArray<float>(), g.Grad!.ToArray<float>(), live);
        }
        var f = Run(fused: true);
        var c = Run(fused: false);
        Assert.Equal(c.y, f.y);
        Assert.Equal(c.gx, f.gx);
        Assert.Equal(c.gh, f.gh);
        Assert.Equal(c.gg, f.gg);
        Assert.Contains(f.gg, v => v != 0);
        Assert.Equal(2 * 16 * 64 * 4, c.live - f.live);   // the chain also holds h ⊙ γ until the backward
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
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        float[] us = R(3 * 40 * 64), ws = R(24 * 64), bs = R(24), dys = R(3 * 40 * 24);
        (float[] y, float[] gu, float[] gw, float[] gb, long live) Run(bool fused)
        {
            var u = Tensor.FromArray(us, 3, 40, 64); u.RequiresGrad = true;
            var w = Tensor.FromArray(ws, 24, 64); w.RequiresGrad = true;
            var b = Tensor.FromArray(bs, 24); b.RequiresGrad = true;
            using var tape = new Tape();
            long before = CpuArrayPool.ThreadLiveBytes;
            var y = fused ? Ops.GeluLinear(u, w, b) : Ops.Linear(Ops.Gelu(u), w, b);
            long live = CpuArrayPool.ThreadLiveBytes - before;
            var yv = y.ToArray<float>();
            tape.Backward(y, Tensor.FromArray(dys, 3, 40, 24), keep: [y]);
            return (yv, u.Grad!.ToArray<float>(), w.Grad!.ToArray<float>(), b.Grad!.ToArray<float>(), live);
        }
        var f = Run(fused: true);
        var c = Run(fused: false);
        Assert.Equal(c.y, f.y);
        Assert.Equal(c.gu, f.gu);
        Assert.Equal(c.gw, f.gw);
        Assert.Equal(c.gb, f.gb);
        Assert.Contains(f.gu, v => v != 0);
        Assert.Equal(3 * 40 * 64 * 4, c.live - f.live);   // the chain also holds gelu(u)
    }
}
