using System.Runtime.InteropServices;

namespace Tmca.Engine;

/// <summary>
/// Anonymous memory mappings for the CPU pool's arrays (Linux), and the one trick that makes them cheap to recycle:
/// pages already touched can be moved from one array into another with mremap, without copying and without a page
/// fault. A training step frees activations of some sizes and allocates gradients of others; a cache keyed by size
/// alone would free the one and fault in fresh pages for the other (≈0.45 ms per MiB here, a quarter of a second a step
/// on tiny). Instead the pool keeps freed pages as <em>spare runs</em> and assembles a new array from them:
/// <see cref="Assemble"/> maps the new array's address range, then moves each run into place (MREMAP_FIXED), so only
/// the part no run covers is fresh. Everything here runs under the pool's lock or on memory nobody else holds.
/// </summary>
internal static class PageRuns
{
    public static readonly long PageSize = Environment.SystemPageSize;

    public static long RoundUp(long bytes) => (bytes + PageSize - 1) / PageSize * PageSize;

    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapFixed = 0x10, MapAnonymous = 0x20;
    private const int MremapMayMove = 1, MremapFixed = 2;

    [DllImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static extern nint SysMmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static extern int SysMunmap(nint addr, nuint length);

    [DllImport("libc", EntryPoint = "mremap", SetLastError = true)]
    private static extern nint SysMremap(nint oldAddress, nuint oldSize, nuint newSize, int flags, nint newAddress);

    /// <summary>A fresh zero mapping of at least <paramref name="bytes"/> (whole pages; nothing resident until touched).</summary>
    public static nint Map(long bytes)
    {
        nint p = SysMmap(0, (nuint)RoundUp(bytes), ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (p == -1) throw new OutOfMemoryException($"mmap of {bytes / 1048576.0:0.0} MiB failed (errno {Marshal.GetLastPInvokeError()})");
        return p;
    }

    /// <summary>Unmaps whole pages (a range may span several mappings: munmap takes them all).</summary>
    public static void Unmap(nint p, long bytes) => SysMunmap(p, (nuint)RoundUp(bytes));

    /// <summary>
    /// The process's kernel mappings, against a budget of half of vm.max_map_count. Every run an assembled array is
    /// made of stays a mapping of its own and nothing merges them again, so a long run of steps would otherwise creep
    /// towards the limit (tiny: ≈300 more a step), where every mmap in the process — the GC's, the JIT's — fails.
    /// </summary>
    public static (int Count, int Budget) Mappings()
    {
        int count = 0;
        foreach (var _ in File.ReadLines("/proc/self/maps")) count++;
        return (count, Budget);
    }

    private static readonly int Budget = ReadBudget();

    private static int ReadBudget()
    {
        try { return Math.Max(1024, int.Parse(File.ReadAllText("/proc/sys/vm/max_map_count").Trim()) / 2); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return 32_765; }
    }

    /// <summary>At most this many runs go into one array: each run stays a separate kernel mapping (VMA) of the array,
    /// and the process's mapping count is limited (vm.max_map_count, 65,530 by default).</summary>
    public const int MaxRunsPerArray = 32;

    /// <summary>
    /// A mapping of <paramref name="bytes"/> whose first pages are the <paramref name="runs"/>' pages, moved into place
    /// in order; the rest is fresh. The runs are consumed whatever happens (moved, or unmapped where a move fails: that
    /// range of the new array is then mapped fresh). Returns the address, the array's <em>pieces</em> — each a single
    /// kernel mapping, which is what mremap can move again (before Linux 6.17 it cannot move a range spanning
    /// mappings) — and whether any piece holds old data (the caller zeroes the moved part if it needs zeros).
    /// </summary>
    public static (nint Ptr, (nint Ptr, long Bytes)[] Pieces, long Reused) Assemble(long bytes, IReadOnlyList<(nint Ptr, long Bytes)> runs)
    {
        long total = RoundUp(bytes);
        nint p;
        try { p = Map(total); }
        catch { foreach (var (rp, rb) in runs) SysMunmap(rp, (nuint)rb); throw; }
        var pieces = new List<(nint, long)>(runs.Count + 1);
        long off = 0, reused = 0;
        foreach (var (rp, rb) in runs)
        {
            nint q = off + rb <= total ? SysMremap(rp, (nuint)rb, (nuint)rb, MremapMayMove | MremapFixed, p + (nint)off) : -1;
            if (q == -1)
            {
                // The move failed (the map-count limit, or an old kernel): the target may already have been unmapped, so
                // map it fresh again, and give the run's pages back.
                SysMunmap(rp, (nuint)rb);
                if (off + rb > total) continue;
                if (SysMmap(p + (nint)off, (nuint)rb, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapFixed, -1, 0) == -1)
                {
                    SysMunmap(p, (nuint)total);
                    throw new OutOfMemoryException($"mmap of {rb / 1048576.0:0.0} MiB failed (errno {Marshal.GetLastPInvokeError()})");
                }
            }
            else reused += rb;
            pieces.Add((p + (nint)off, rb));
            off += rb;
        }
        if (off < total) pieces.Add((p + (nint)off, total - off));
        return (p, pieces.ToArray(), reused == 0 ? 0 : off);
    }
}
