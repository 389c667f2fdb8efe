namespace Tmca.Engine;

/// <summary>Per-thread scratch arrays, reused across kernel calls (im2col columns, padded planes), by slot. Native like
/// tensors' elements; a slot that grows frees its old array.</summary>
internal static class ScratchBuffers<T> where T : unmanaged
{
    [ThreadStatic] private static HostArray<T>?[]? _slots;

    /// <summary>An array of at least <paramref name="size"/> elements, private to this thread; contents undefined.</summary>
    public static HostArray<T> Get(int slot, long size)
    {
        _slots ??= new HostArray<T>?[4];
        var a = _slots[slot];
        if (a is null || a.LongLength < size)
        {
            long grown = Math.Max(size, (long)((a?.LongLength ?? 0) * 1.5));
            a?.Free();
            _slots[slot] = a = new HostArray<T>(grown, zero: false);
        }
        return a;
    }
}
