using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

public class TapeTests
{
    [Fact]
    public void ParameterGradientsAccumulateAcrossBackwardPasses()
    {
        var w = Tensor.FromArray(new[] { 1.0, 2.0, 3.0 }, 3);
        w.RequiresGrad = true;
        for (int pass = 1; pass <= 2; pass++)
        {
            using var tape = new Tape();
            var loss = Ops.Sum(Ops.Square(w));
            tape.Backward(loss);
            Assert.Equal(new[] { 2.0 * pass, 4.0 * pass, 6.0 * pass }, w.Grad!.ToArray<double>());
        }
    }

    [Fact]
    public void ATensorUsedTwiceGetsBothContributions()
    {
        var x = Tensor.FromArray(new[] { 3.0 }, 1);
        x.RequiresGrad = true;
        using var tape = new Tape();
        var y = Ops.Mul(x, Ops.Exp(x));                 // d/dx x·eˣ = eˣ(1 + x)
        tape.Backward(y);
        Assert.Equal(Math.Exp(3) * 4, x.Grad!.Item(), 10);
    }

    [Fact]
    public void NoGradRecordsNothingAndIntermediateGradsAreFreed()
    {
        var x = Tensor.FromArray(new[] { 1.0, 2.0 }, 2);
        x.RequiresGrad = true;
        using var tape = new Tape();
        using (Tape.NoGrad())
        {
            var y = Ops.Exp(x);
            Assert.False(y.RequiresGrad);
        }
        Assert.Equal(0, tape.Count);
        var h = Ops.Exp(x);
        var loss = Ops.Sum(h);
        Assert.Equal(2, tape.Count);
        tape.Backward(loss);
        Assert.Null(h.Grad);                             // freed after backward
        Assert.NotNull(x.Grad);
        Assert.Equal(0, tape.Count);                     // closures (and their saved tensors) dropped
        Assert.Throws<InvalidOperationException>(() => tape.Backward(loss));
    }

    [Fact]
    public void ReshapeIsAViewAndPermuteACopy()
    {
        var x = Tensor.FromArray(new float[] { 0, 1, 2, 3, 4, 5 }, 2, 3);
        var v = Ops.Reshape(x, 3, 2);
        Assert.Same(x.Storage, v.Storage);
        var p = Ops.Permute(x, 1, 0);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, p.ToArray<float>());
        Assert.Equal(new long[] { 3, 1 }, x.Strides);
    }

    [Fact]
    public void BackwardWithoutTrackedInputsIsAnError()
    {
        using var tape = new Tape();
        var y = Ops.Exp(Tensor.FromArray(new[] { 1.0 }, 1));
        Assert.Throws<InvalidOperationException>(() => tape.Backward(y));
    }

    [Fact]
    public void MismatchedShapesGiveClearErrors()
    {
        var e = Assert.Throws<ArgumentException>(() => Ops.Add(Tensor.Zeros([2, 3]), Tensor.Zeros([4])));
        Assert.Contains("[2, 3]", e.Message);
        Assert.Throws<ArgumentException>(() => Ops.Linear(Tensor.Zeros([2, 3]), Tensor.Zeros([4, 5])));
        Assert.Throws<ArgumentException>(() => Ops.Conv2d(Tensor.Zeros([1, 3, 8, 8]), Tensor.Zeros([4, 2, 3, 3])));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Embedding(Tensor.FromArray(new long[] { 9 }, 1), Tensor.Zeros([4, 2])));
    }

    [Fact]
    public void ScopeDisposesTemporariesButKeepsPersistentAndKeptTensors()
    {
        var p = Tensor.Zeros([2], persistent: true);
        Tensor kept, temp;
        using (new TensorScope())
        {
            temp = Tensor.Zeros([2]);
            kept = TensorScope.Keep(Tensor.Zeros([2]));
        }
        // the temporary's storage went back (its array to the pool): reading it now throws instead of reading memory that
        // another tensor may own
        Assert.NotNull(p.Storage); Assert.NotNull(kept.Storage);
        Assert.Throws<ObjectDisposedException>(() => temp.Storage);
    }
}

/// <summary>The tape frees as the backward goes (issue 19): live bytes after every backward node of a two-op model,
/// against the schedule derived by hand.</summary>
public class TapeFreeingTests
{
    private sealed class LiveBytes : ITapeInspector
    {
        public readonly List<(string Op, long Bytes)> After = new();
        public void Recorded(int index, string op, Tensor[] outputs) { }
        public void BeforeBackward(int index, string op, Tensor[] outputs) { }
        public void AfterBackward(int index, string op) => After.Add((op, CpuArrayPool.ThreadLiveBytes));
    }

    [Fact]
    public void LiveBytesAfterEachBackwardNodeFollowTheHandDerivedSchedule()
    {
        const long K = 1024;
        var x = Tensor.FromArray(new float[64 * 32], 64, 32);             // batch input: not from the pool, never freed by the tape
        var w = Tensor.Zeros([64, 32], persistent: true);                  // 8 KiB, a parameter
        w.RequiresGrad = true;
        var watch = new LiveBytes();
        long before = CpuArrayPool.ThreadLiveBytes;
        using (new TensorScope())
        {
            using var tape = new Tape();
            var h = Ops.Linear(x, w);                                      // 64×64: 16 KiB, saved by gelu (its input)
            var g = Ops.Gelu(h);                                           // 16 KiB, read by no backward
            var s = Ops.Sum(g);                                            // [1]: not pooled
            Assert.Equal(8 * K + 32 * K, CpuArrayPool.ThreadLiveBytes - before + 8 * K);
            Tape.Inspector = watch;
            try { tape.Backward(s); } finally { Tape.Inspector = null; }
        }
        // start:  − g 16 (no backward reads it: gelu's backward reads its input h)
        // sum:    + g.grad 16                                  → w 8 + h 16 + g.grad 16             = 40 KiB
        // gelu:   + h.grad 16, − g.grad 16, − h 16            → w 8 + h.grad 16                    = 24 KiB
        // linear: + w.grad 8, − h.grad 16 (x is not the tape's) → w 8 + w.grad 8                   = 16 KiB
        // (without the freeing: 56, 72, 80)
        Assert.Equal([("sum", 40 * K), ("gelu", 24 * K), ("linear", 16 * K)],
                     watch.After.Select(a => (a.Op, a.Bytes - before + 8 * K)).ToArray());
    }

    [Fact]
    public void ATensorFreedByTheTapeThrowsWhenRead_AndKeepKeepsIt()
    {
        var w = Tensor.Full([4], 1.0); w.RequiresGrad = true;
        using var scope = new TensorScope();
        using var tape = new Tape();
        var a = Ops.Scale(w, 2.0);          // read by nothing after its backward
        var b = Ops.Scale(w, 3.0);
        var loss = Ops.Sum(Ops.Add(a, b));
        tape.Backward(loss, keep: [b]);
        Assert.Throws<ObjectDisposedException>(() => a.ToArray<float>());
        Assert.Equal([3f, 3f, 3f, 3f], b.ToArray<float>());
        Assert.Equal([5f, 5f, 5f, 5f], w.Grad!.ToArray<float>());
    }
}
