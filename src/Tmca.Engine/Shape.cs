namespace Tmca.Engine;

/// <summary>Helpers over shapes, which are plain <c>int[]</c> (row-major, outermost first).</summary>
public static class Shape
{
    public static long Numel(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    /// <summary>Row-major (C-contiguous) strides in elements.</summary>
    public static long[] Strides(ReadOnlySpan<int> shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    public static bool Equal(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    /// <summary>NumPy broadcasting of two shapes; throws with both shapes when they do not broadcast.</summary>
    public static int[] Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int r = Math.Max(a.Length, b.Length);
        var o = new int[r];
        for (int i = 0; i < r; i++)
        {
            int da = i < r - a.Length ? 1 : a[i - (r - a.Length)];
            int db = i < r - b.Length ? 1 : b[i - (r - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"shapes {Format(a)} and {Format(b)} do not broadcast");
            o[i] = da == 1 ? db : da;
        }
        return o;
    }

    /// <summary>Strides of <paramref name="shape"/> read as if broadcast to <paramref name="target"/>
    /// (right-aligned; 0 on broadcast axes); throws when it does not broadcast.</summary>
    public static long[] BroadcastStrides(int[] shape, int[] target)
    {
        var own = Strides(shape);
        var s = new long[target.Length];
        int off = target.Length - shape.Length;
        for (int i = 0; i < target.Length; i++)
        {
            if (i < off) { s[i] = 0; continue; }
            int d = shape[i - off];
            if (d != target[i] && d != 1) throw new ArgumentException($"{Format(shape)} does not broadcast to {Format(target)}");
            s[i] = d == 1 && target[i] != 1 ? 0 : own[i - off];
        }
        return s;
    }

    /// <summary>Resolves one -1 entry of a reshape target against a known element count.</summary>
    public static int[] Resolve(ReadOnlySpan<int> target, long numel)
    {
        var o = target.ToArray();
        int neg = -1; long known = 1;
        for (int i = 0; i < o.Length; i++)
        {
            if (o[i] == -1) { if (neg >= 0) throw new ArgumentException("reshape: more than one -1"); neg = i; }
            else known *= o[i];
        }
        if (neg >= 0)
        {
            if (known == 0 || numel % known != 0) throw new ArgumentException($"reshape: cannot infer -1 in {Format(target)} for {numel} elements");
            o[neg] = (int)(numel / known);
        }
        if (Numel(o) != numel) throw new ArgumentException($"reshape: {Format(target)} does not hold {numel} elements");
        return o;
    }
}
