using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

/// <summary>
/// Issue 17's first writer assigns: a backward that writes a whole gradient allocates it without the zero fill and
/// assigns (GEMM β = 0, permute / sum-to / copy without accumulate, or the output gradient handed over as a view).
/// Each case runs twice — every input's gradient fresh (the assigning path; the pool fills uninitialised memory with NaN
/// in the tests, so an element a kernel skips shows), and every input's gradient preset to zeros (the accumulating path
/// the engine used before) — and the gradients must be equal bit for bit.
/// </summary>
public class FirstWriterAssignsTests
{
    private static float[] R(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();

    private static void AssertAssignEqualsAccumulate(Func<Tensor[], Tensor> f, params int[][] shapes)
    {
        var rng = new Random(3);
        var data = shapes.Select(s => R(rng, (int)Shape.Numel(s))).ToArray();
        float[][] Run(bool preset)
        {
            var xs = shapes.Select((s, i) => { var t = Tensor.FromArray(data[i], s); t.RequiresGrad = true; return t; }).ToArray();
            if (preset) foreach (var x in xs) x.Grad = Tensor.Zeros(x.Shape);
            using var tape = new Tape();
            var y = f(xs);
            var dy = Tensor.FromArray(R(new Random(9), (int)y.Numel), y.Shape);
            tape.Backward(y, dy);
            return xs.Select(x => x.Grad!.ToArray<float>()).ToArray();
        }
        var assigned = Run(preset: false);
        var accumulated = Run(preset: true);
        for (int i = 0; i < shapes.Length; i++)
        {
            Assert.All(assigned[i], v => Assert.True(float.IsFinite(v), "an element of a fresh gradient was never written"));
            Assert.Equal(accumulated[i], assigned[i]);
        }
    }

    [Fact] public void Linear() => AssertAssignEqualsAccumulate(x => Ops.Linear(x[0], x[1], x[2]), [3, 5, 8], [6, 8], [6]);
    [Fact] public void GeluLinear() => AssertAssignEqualsAccumulate(x => Ops.GeluLinear(x[0], x[1], x[2]), [3, 5, 8], [6, 8], [6]);
    [Fact] public void MatMulBatched() => AssertAssignEqualsAccumulate(x => Ops.MatMul(x[0], x[1], transB: true), [2, 4, 5], [2, 3, 5]);
    // a shared operand sums the batch entries' products one GEMM at a time: only the first may assign
    [Fact] public void MatMulSharedRight() => AssertAssignEqualsAccumulate(x => Ops.MatMul(x[0], x[1]), [3, 4, 5], [5, 2]);
    [Fact] public void MatMulSharedLeft() => AssertAssignEqualsAccumulate(x => Ops.MatMul(x[0], x[1], transA: true), [5, 4], [3, 5, 2]);
    [Fact] public void Permute() => AssertAssignEqualsAccumulate(x => Ops.Permute(x[0], 2, 0, 1), [2, 3, 4]);
    [Fact] public void Concat() => AssertAssignEqualsAccumulate(x => Ops.Concat([x[0], x[1]], 1), [2, 3, 4], [2, 5, 4]);
    [Fact] public void BroadcastAndSum() => AssertAssignEqualsAccumulate(x => Ops.Mul(Ops.BroadcastTo(x[0], 3, 4), Ops.SumTo(x[1], 3, 1)), [1, 4], [3, 6]);
    [Fact] public void AddHandsOverAndCopies() => AssertAssignEqualsAccumulate(x => Ops.Mul(Ops.Add(x[0], x[1]), x[0]), [4, 6], [4, 6]);
    [Fact] public void AddOfATensorToItself() => AssertAssignEqualsAccumulate(x => Ops.Add(x[0], x[0]), [4, 6]);
    [Fact] public void AddBroadcastAndSub() => AssertAssignEqualsAccumulate(x => Ops.Sub(Ops.Add(x[0], x[1]), x[2]), [4, 6], [6], [1, 6]);
    [Fact] public void MulSameShape() => AssertAssignEqualsAccumulate(x => Ops.Mul(x[0], x[1]), [5, 7], [5, 7]);
    [Fact] public void AddScaled() => AssertAssignEqualsAccumulate(x => Ops.AddScaled(x[0], x[1], x[2]), [2, 3, 4, 4], [2, 3, 4, 4], [3, 1, 1]);
    // x is also h: its gradient is handed gy only after the product's gradient has read gy
    [Fact] public void AddScaledOfATensorToItsOwnScale() => AssertAssignEqualsAccumulate(x => Ops.AddScaled(x[0], x[0], x[1]), [2, 3, 4, 4], [3, 1, 1]);

    [Fact] public void LayerNorm() => AssertAssignEqualsAccumulate(x => Ops.LayerNorm(x[0], x[1], x[2], 1e-6), [3, 5, 8], [8], [8]);
    [Fact] public void LayerNormChannelsFirst() => AssertAssignEqualsAccumulate(x => Ops.LayerNormChannelsFirst(x[0], x[1], x[2], 1e-6), [2, 6, 3, 3], [6], [6]);
    // a layer norm whose input already has a gradient (a residual stream) takes the accumulating path for all three
    [Fact] public void LayerNormOfATensorUsedTwice() => AssertAssignEqualsAccumulate(x => Ops.Add(Ops.LayerNorm(x[0], x[1], x[2], 1e-6), x[0]), [3, 5, 8], [8], [8]);

    [Fact]
    public void AParameterReshapedGetsACopyNotAZeroFill()
    {
        var p = Tensor.Zeros([12], persistent: true);
        R(new Random(1), 12).CopyTo(p.Span<float>());
        p.RequiresGrad = true;
        using var tape = new Tape();
        var y = Ops.Mul(Ops.Reshape(p, 3, 4), Tensor.FromArray(R(new Random(2), 12), 3, 4));
        tape.Backward(y, Tensor.FromArray(Enumerable.Repeat(1f, 12).ToArray(), 3, 4));
        var expect = R(new Random(2), 12);
        Assert.Equal(expect, p.Grad!.ToArray<float>());
    }
}
