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

    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20;
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

    public static void Unmap(nint p, long bytes) => SysMunmap(p, (nuint)RoundUp(bytes));

    /// <summary>
    /// A mapping of <paramref name="bytes"/> whose first pages are the <paramref name="runs"/>' pages, moved into place
    /// in order (the runs are consumed: their addresses are no longer mapped); the rest is fresh. Returns the address
    /// and how many bytes came from runs (those hold old data: the caller zeroes them if it needs zeros).
    /// </summary>
    public static (nint Ptr, long Reused) Assemble(long bytes, IReadOnlyList<(nint Ptr, long Bytes)> runs)
    {
        long total = RoundUp(bytes);
        nint p = Map(total);
        long off = 0;
        foreach (var (rp, rb) in runs)
        {
            if (off + rb > total) throw new InvalidOperationException("page runs exceed the mapping they fill");
            nint q = SysMremap(rp, (nuint)rb, (nuint)rb, MremapMayMove | MremapFixed, p + (nint)off);
            if (q == -1)
            {
                int errno = Marshal.GetLastPInvokeError();
                SysMunmap(rp, (nuint)rb);   // the run is lost either way; its range in the new mapping stays fresh
                if (errno != 12) throw new InvalidOperationException($"mremap failed (errno {errno})");
                continue;   // ENOMEM (the process's map count): fall back to fresh pages for this run
            }
            off += rb;
        }
        return (p, off);
    }
}
