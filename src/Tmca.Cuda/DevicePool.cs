using Tmca.Cuda.Native;

namespace Tmca.Cuda;

/// <summary>
/// A caching device allocator: freed blocks go to a free list per size class and are handed out again, so a
/// training step reuses the previous step's memory instead of calling cuMemAlloc/cuMemFree hundreds of times.
/// Reuse is safe because all work runs on one stream (a block is freed only after the work queued before it).
/// Sizes: multiples of 512 B below 1 MiB, above that 2^k·(1 + j/16) (<see cref="SizeClass"/>). Reports live (in-use), cached and peak bytes.
/// Without caching (the simulator's memory checking) every block has its exact size and is freed at once.
/// </summary>
public sealed class DevicePool(IDeviceRuntime runtime, bool caching = true)
{
    private readonly Dictionary<long, Stack<ulong>> _free = new();
    public bool Caching { get; } = caching;
    /// <summary>Told of every block rented (true) and returned (false), after the pool's counters moved: the planner's
    /// memory timeline (`tmca plan`). Null in normal runs.</summary>
    public Action<ulong, long, bool>? Observer { get; set; }
    public long InUseBytes { get; private set; }
    public long PeakBytes { get; private set; }
    public long ReservedBytes { get; private set; }
    /// <summary>Free blocks kept for reuse: held from the device, not live.</summary>
    public long CachedBytes => ReservedBytes - InUseBytes;

    /// <summary>The block size a request of <paramref name="bytes"/> gets: a multiple of 512 B below 1 MiB, above that a
    /// multiple of a sixteenth of the power of two below it (2^k·(1 + j/16)), so that a block wastes at most 6.25 % — the
    /// live peak counts whole blocks (quarters wasted up to 25 %: a 36.75 MiB stage-1 activation took a 40 MiB block) —
    /// while the classes stay few enough (16 an octave) for a step's same-shaped tensors to share them.</summary>
    public static long SizeClass(long bytes)
    {
        if (bytes <= 0) return 512;
        if (bytes < (1 << 20)) return (bytes + 511) / 512 * 512;
        long p = 1L << (int)(63 - long.LeadingZeroCount(bytes - 1));   // largest power of two below bytes
        long step = p / 16;
        return (bytes + step - 1) / step * step;
    }

    public (ulong Ptr, long Size) Rent(long bytes)
    {
        long size = Caching ? SizeClass(bytes) : Math.Max(1, bytes);
        if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
        {
            Track(size);
            var reused = stack.Pop();
            Observer?.Invoke(reused, size, true);
            return (reused, size);
        }
        ulong ptr;
        try { ptr = runtime.Alloc(size); }
        catch (DeviceOutOfMemoryException)
        {
            EmptyCache();   // cached blocks of other sizes may make room
            try { ptr = runtime.Alloc(size); }
            catch (DeviceOutOfMemoryException e)
            {
                throw new DeviceOutOfMemoryException(e.Call, size, e.Free, e.Total,
                    $"; the pool holds {DeviceOutOfMemoryException.Bytes(InUseBytes)} in live tensors (peak {DeviceOutOfMemoryException.Bytes(PeakBytes)})",
                    Tmca.Engine.Profiler.CurrentOp is { } op ? $"op '{op}'" : null);   // an op's outputs are allocated before its region opens: TMCA_CUDA_TRACE=1 shows which
            }
        }
        ReservedBytes += size;
        Track(size);
        Observer?.Invoke(ptr, size, true);
        return (ptr, size);
    }

    private void Track(long size)
    {
        InUseBytes += size;
        if (InUseBytes > PeakBytes) PeakBytes = InUseBytes;
    }

    public void Return(ulong ptr, long size)
    {
        InUseBytes -= size;
        if (!Caching)
        {
            runtime.Free(ptr);
            ReservedBytes -= size;
        }
        else
        {
            if (!_free.TryGetValue(size, out var stack)) _free[size] = stack = new Stack<ulong>();
            stack.Push(ptr);
        }
        Observer?.Invoke(ptr, size, false);
    }

    /// <summary>Gives every cached (free) block back to the device. A cached block may still be read or written by
    /// queued work (it was returned in stream order, not after it ran), so the stream is synchronised first; after a
    /// sticky error the context is gone and the blocks are only forgotten.</summary>
    public void EmptyCache()
    {
        if (_free.Values.All(s => s.Count == 0)) return;
        try { runtime.Synchronize(); }
        catch (CudaException e) when (e.Sticky) { _free.Clear(); return; }
        foreach (var (size, stack) in _free)
            while (stack.Count > 0)
            {
                runtime.Free(stack.Pop());
                ReservedBytes -= size;
            }
    }

    public void ResetPeak() => PeakBytes = InUseBytes;
}

/// <summary>A device buffer from the pool; going back to the pool when its last tensor is disposed.</summary>
public sealed class CudaStorage : Tmca.Engine.Storage
{
    private readonly CudaBackend _backend;
    private readonly Tmca.Engine.DType _dtype;
    private readonly long _count;
    public ulong Ptr { get; }
    public long Reserved { get; }
    /// <summary>For I64 storages: the smallest and largest value, when known on the host (uploaded or zero-filled and
    /// not written by a kernel since). Lets the embedding check its ids without reading them back.</summary>
    internal (long Min, long Max)? KnownRange { get; set; }

    internal CudaStorage(CudaBackend backend, Tmca.Engine.DType dtype, long count, ulong ptr, long reserved)
    {
        _backend = backend; _dtype = dtype; _count = count; Ptr = ptr; Reserved = reserved;
    }

    public override Tmca.Engine.IBackend Backend => _backend;
    public override Tmca.Engine.DType DType => _dtype;
    public override long Count => _count;
    protected override void Free() => _backend.Pool.Return(Ptr, Reserved);
}
