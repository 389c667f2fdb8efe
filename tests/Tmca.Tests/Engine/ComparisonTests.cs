using Tmca.Engine;
using Tmca.Engine.Verification;
using Xunit;

namespace Tmca.Tests.Engine;

/// <summary>The comparison every parity and oracle check relies on must be able to fail.</summary>
public class ComparisonTests
{
    [Fact]
    public void AWrongShapeWithTheSameElementCountFails()
    {
        var a = Tensor.FromArray(new float[6], 2, 3);
        var b = Tensor.FromArray(new float[6], 3, 2);
        var c = Comparison.Of("t", ToleranceKind.Forward, a, b);
        Assert.False(c.Pass);
        Assert.Contains("shape", c.Note);
    }

    [Fact]
    public void ToleranceEdges()
    {
        var b = Tensor.FromArray(new[] { 1f, -2f, 100f }, 3);
        Assert.True(Comparison.Of("ok", ToleranceKind.Forward, Tensor.FromArray(new[] { 1.00105f, -2f, 100.09f }, 3), b).Pass);
        Assert.False(Comparison.Of("off", ToleranceKind.Forward, Tensor.FromArray(new[] { 1.0013f, -2f, 100f }, 3), b).Pass);
        Assert.False(Comparison.Of("nan", ToleranceKind.Gradient, Tensor.FromArray(new[] { float.NaN, -2f, 100f }, 3), b).Pass);
        Assert.False(Comparison.Of("exact", ToleranceKind.Exact, Tensor.FromArray(new[] { 1f, -2f, 100.0001f }, 3), b).Pass);
    }
}
