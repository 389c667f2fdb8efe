namespace Tmca.Engine;

/// <summary>
/// Recycles the large arrays behind CPU tensors. A training step allocates hundreds of megabytes of
/// activations and gradients with the same shapes every step; handing them back to the garbage collector
/// means large-object-heap collections and zeroing on every step. Tensors disposed by a <see cref="TensorScope"/>
/// return their arrays here, keyed by (type, length); the next step rents them back. Small arrays are left to
/// the GC. TMCA_POISON=1 fills uninitialised rentals with NaN so that a kernel that forgets to write an element
/// cannot go unnoticed (the test suite runs with it on).
/// </summary>
public static class CpuArrayPool
{
    private const long MinElements = 1024;
    private const long MaxPooledBytes = 4L << 30;
    private static readonly Dictionary<(DType, long), Stack<Array>> Free = new();
    private static readonly object Lock = new();
    private static long _pooledBytes;
    [ThreadStatic] private static long _threadLive;

    /// <summary>Bytes of pooled arrays (≥ 1,024 elements) rented on this thread and not yet given back: the live
    /// tensors of the work this thread runs (tests of the tape's freeing read it; other threads' work does not show).</summary>
    public static long ThreadLiveBytes => _threadLive;

    public static bool Poison { get; set; } = TmcaSettings.Current.Poison;

    internal static CpuStorage Rent(DType dtype, long count, bool zero)
    {
        if (count >= MinElements)
        {
            Array? a = null;
            lock (Lock)
            {
                if (Free.TryGetValue((dtype, count), out var stack) && stack.Count > 0)
                {
                    a = stack.Pop();
                    _pooledBytes -= count * dtype.SizeOf();
                }
            }
            if (a is not null)
            {
                _threadLive += count * dtype.SizeOf();
                if (zero) Array.Clear(a);
                else if (Poison) FillNaN(a);
                return new CpuStorage(a, dtype) { Pooled = true };
            }
        }
        var fresh = CpuStorage.Allocate(dtype, count);
        if (!zero && Poison) FillNaN(fresh.Data);
        if (count < MinElements) return fresh;
        _threadLive += count * dtype.SizeOf();
        return new CpuStorage(fresh.Data, dtype) { Pooled = true };
    }

    internal static void Return(Array a, DType dtype)
    {
        long bytes = (long)a.Length * dtype.SizeOf();
        _threadLive -= bytes;
        lock (Lock)
        {
            if (_pooledBytes + bytes > MaxPooledBytes) return;   // let the GC have it
            if (!Free.TryGetValue((dtype, a.Length), out var stack)) Free[(dtype, a.Length)] = stack = new Stack<Array>();
            stack.Push(a);
            _pooledBytes += bytes;
        }
    }

    private static void FillNaN(Array a)
    {
        switch (a)
        {
            case float[] f: f.AsSpan().Fill(float.NaN); break;
            case double[] d: d.AsSpan().Fill(double.NaN); break;
            case long[] l: l.AsSpan().Fill(long.MinValue); break;
            case byte[] b: b.AsSpan().Fill(0xCD); break;
        }
    }
}
