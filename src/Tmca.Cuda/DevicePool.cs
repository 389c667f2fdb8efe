using Tmca.Cuda.Native;

namespace Tmca.Cuda;

/// <summary>
/// A caching device allocator: freed blocks go to a free list per size class and are handed out again, so a
/// training step reuses the previous step's memory instead of calling cuMemAlloc/cuMemFree hundreds of times.
/// Reuse is safe because all work runs on one stream (a block is freed only after the work queued before it).
/// Sizes: multiples of 512 B below 1 MiB, above that 2^k·{1, 1.25, 1.5, 1.75}. Reports in-use and peak bytes.
/// </summary>
public sealed unsafe class DevicePool
{
    private readonly Dictionary<long, Stack<ulong>> _free = new();
    public long InUseBytes { get; private set; }
    public long PeakBytes { get; private set; }
    public long ReservedBytes { get; private set; }

    public static long SizeClass(long bytes)
    {
        if (bytes <= 0) return 512;
        if (bytes < (1 << 20)) return (bytes + 511) / 512 * 512;
        long p = 1L << (int)(63 - long.LeadingZeroCount(bytes - 1));   // largest power of two below bytes
        for (int q = 4; q <= 8; q++) if (p / 4 * q >= bytes) return p / 4 * q;
        return p * 2;
    }

    public (ulong Ptr, long Size) Rent(long bytes)
    {
        long size = SizeClass(bytes);
        if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
        {
            Track(size);
            return (stack.Pop(), size);
        }
        ulong ptr;
        int r = Driver.cuMemAlloc_v2(&ptr, (nuint)size);
        if (r == 2 /* CUDA_ERROR_OUT_OF_MEMORY */)
        {
            EmptyCache();
            r = Driver.cuMemAlloc_v2(&ptr, (nuint)size);
        }
        Driver.Check(r, $"cuMemAlloc_v2({size} bytes; {InUseBytes} in use, {ReservedBytes} reserved)");
        ReservedBytes += size;
        Track(size);
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
        if (!_free.TryGetValue(size, out var stack)) _free[size] = stack = new Stack<ulong>();
        stack.Push(ptr);
    }

    /// <summary>Gives every cached (free) block back to the driver.</summary>
    public void EmptyCache()
    {
        foreach (var (size, stack) in _free)
            while (stack.Count > 0)
            {
                Driver.Check(Driver.cuMemFree_v2(stack.Pop()), "cuMemFree_v2");
                ReservedBytes -= size;
            }
    }

}

/// <summary>A device buffer from the pool; going back to the pool when its last tensor is disposed.</summary>
public sealed class CudaStorage : Tmca.Engine.Storage
{
    private readonly CudaBackend _backend;
    private readonly Tmca.Engine.DType _dtype;
    private readonly long _count;
    public ulong Ptr { get; }
    public long Reserved { get; }

    internal CudaStorage(CudaBackend backend, Tmca.Engine.DType dtype, long count, ulong ptr, long reserved)
    {
        _backend = backend; _dtype = dtype; _count = count; Ptr = ptr; Reserved = reserved;
    }

    public override Tmca.Engine.IBackend Backend => _backend;
    public override Tmca.Engine.DType DType => _dtype;
    public override long Count => _count;
    protected override void Free() => _backend.Pool.Return(Ptr, Reserved);
}
