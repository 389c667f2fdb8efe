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
}
