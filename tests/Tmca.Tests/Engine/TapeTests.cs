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
