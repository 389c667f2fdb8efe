namespace Tmca.Engine;

/// <summary>
/// The shape and size checks every backend makes before touching memory, in one place: the CPU backend would
/// index out of range, a GPU would write to an illegal address and poison its context, so both reject a bad
/// call on the host with an <see cref="ArgumentException"/> that names the op and the shapes.
/// </summary>
public static class BackendChecks
{
    public static void Same(Tensor a, Tensor b, string what)
    {
        if (a.Numel != b.Numel) throw new ArgumentException($"{what}: {Shape.Format(a.Shape)} vs {Shape.Format(b.Shape)}");
    }

    public static void Binary(Tensor a, Tensor b, Tensor y)
    {
        var shape = Shape.Broadcast(Shape.Broadcast(a.Shape, b.Shape), y.Shape);
        if (!Shape.Equal(shape, y.Shape)) throw new ArgumentException($"binary: {Shape.Format(a.Shape)} op {Shape.Format(b.Shape)} does not give {Shape.Format(y.Shape)}");
    }

    public static void Permute(Tensor x, int[] perm, Tensor y)
    {
        if (perm.Length != x.Rank || y.Rank != x.Rank) throw new ArgumentException($"permute: {perm.Length} axes for a rank-{x.Rank} tensor");
        var seen = new bool[perm.Length];
        foreach (var p in perm)
        {
            if ((uint)p >= (uint)perm.Length || seen[p]) throw new ArgumentException($"permute: [{string.Join(",", perm)}] is not a permutation");
            seen[p] = true;
        }
        for (int i = 0; i < perm.Length; i++)
            if (y.Shape[i] != x.Shape[perm[i]]) throw new ArgumentException($"permute: output shape {Shape.Format(y.Shape)} does not match");
    }

    public static void AxisRange(Tensor src, int srcStart, Tensor dst, int dstStart, int axis, int length)
    {
        if (src.Rank != dst.Rank) throw new ArgumentException("axis copy: ranks differ");
        if ((uint)axis >= (uint)src.Rank) throw new ArgumentException($"axis copy: axis {axis} of a rank-{src.Rank} tensor");
        for (int d = 0; d < src.Rank; d++)
            if (d != axis && src.Shape[d] != dst.Shape[d]) throw new ArgumentException($"axis copy: {Shape.Format(src.Shape)} vs {Shape.Format(dst.Shape)} differ off axis {axis}");
        if (srcStart < 0 || dstStart < 0 || length < 0 || srcStart + length > src.Shape[axis] || dstStart + length > dst.Shape[axis])
            throw new ArgumentException("axis copy: range out of bounds");
    }

    /// <summary>x broadcasts to y (BroadcastTo, and SumTo's reverse direction).</summary>
    public static void Broadcastable(Tensor x, Tensor y, string what)
    {
        if (!Shape.Equal(Shape.Broadcast(x.Shape, y.Shape), y.Shape))
            throw new ArgumentException($"{what}: {Shape.Format(x.Shape)} does not broadcast to {Shape.Format(y.Shape)}");
    }

    public static void Cover(Tensor x, long outer, long c, long inner, string what)
    {
        if (outer * c * inner != x.Numel) throw new ArgumentException($"{what}: {outer}×{c}×{inner} does not cover {Shape.Format(x.Shape)}");
    }

    public static void Count(Tensor? t, long n, string what)
    {
        if (t is not null && t.Numel != n) throw new ArgumentException($"{what}: {Shape.Format(t.Shape)} should hold {n} elements");
    }

    public static void GemmBounds(string name, Tensor t, long off, long stride, int batch, long size)
    {
        if (batch == 0 || size == 0) return;
        long last = off + (batch - 1) * stride + size;
        if (off < 0 || stride < 0 || last > t.Numel) throw new ArgumentException($"gemm: operand {name} ({t.Numel} elements) read up to {last}");
    }
}
