namespace Tmca.Engine;

/// <summary>Per-thread scratch arrays, reused across kernel calls (im2col columns, padded planes), by slot.</summary>
internal static class ScratchBuffers<T> where T : unmanaged
{
    [ThreadStatic] private static T[]?[]? _slots;

    /// <summary>An array of at least <paramref name="size"/> elements, private to this thread; contents undefined.</summary>
    public static T[] Get(int slot, long size)
    {
        _slots ??= new T[]?[4];
        var a = _slots[slot];
        if (a is null || a.Length < size) _slots[slot] = a = new T[Math.Max(size, (long)((a?.Length ?? 0) * 1.5))];
        return a;
    }
}
