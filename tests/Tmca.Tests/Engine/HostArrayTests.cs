using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

/// <summary>CPU tensors' native arrays (issue 19): indexed like arrays, bounds-checked, and safe to touch after freeing
/// (an exception, not a crash).</summary>
public class HostArrayTests
{
    [Theory]
    [InlineData(10)]          // from the C heap
    [InlineData(1 << 20)]     // a mapping of its own
    public void IndexesLikeAnArrayAndChecksBounds(int n)
    {
        var a = new HostArray<float>(n);
        Assert.All(a.AsSpan().ToArray(), v => Assert.Equal(0f, v));   // zeroed
        a[n - 1] = 3f; a[0L] = 2f;
        Assert.Equal(3f, a.AsSpan()[n - 1]);
        Assert.Equal(2f, a[0]);
        Assert.Throws<IndexOutOfRangeException>(() => a[n]);
        Assert.Throws<IndexOutOfRangeException>(() => a[-1]);
        Assert.Throws<IndexOutOfRangeException>(() => a.AsSpan((long)n - 1, 2));
        a.Free();
        Assert.True(a.IsFreed);
        var e = Assert.Throws<IndexOutOfRangeException>(() => a[0]);
        Assert.Contains("freed", e.Message);
        a.Free();   // idempotent
    }

    [Fact]
    public void TensorsCopyHostArraysInAndOut()
    {
        var src = new float[] { 1, 2, 3, 4, 5, 6 };
        var t = Tensor.FromArray(src, 2, 3);
        src[0] = 99;   // the tensor holds a copy
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, t.ToArray<float>());
        var c = t.Clone();
        t.Span<float>()[1] = 20;
        Assert.Equal(2f, c.ToArray<float>()[1]);
        t.Dispose(); c.Dispose();
    }
}
