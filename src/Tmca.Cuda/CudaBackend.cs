using System.Runtime.InteropServices;
using Tmca.Cuda.Kernels;
using Tmca.Cuda.Native;
using Tmca.Cuda.Sim;
using Tmca.Engine;

namespace Tmca.Cuda;

/// <summary>
/// The CUDA backend behind <see cref="IBackend"/>: device tensors in a caching pool, kernels from kernels/*.cu
/// launched through typed descriptors (<see cref="KernelTable"/>), GEMMs through the device's GEMM (cuBLAS on a GPU, TF32
/// off by default so results match the CPU to float32 precision; <see cref="Tf32"/> turns it on). It talks to
/// the device only through <see cref="IDeviceRuntime"/>: a real GPU (<see cref="DriverRuntime"/>) or the CUDA
/// simulator (<see cref="SimRuntime"/>, `--device cuda-sim`), which runs the same kernels on the CPU.
/// The ops live in Ops/, one file per family, mirroring Tmca.Engine/Cpu/: every IBackend primitive has a kernel.
/// What a kernel cannot do (float64, InfoNCE over more than 1024 pairs) throws <see cref="NotSupportedException"/>
/// naming itself — no silent CPU fallback.
/// </summary>
public sealed unsafe partial class CudaBackend : IBackend, IDeviceMemory, IDisposable
{
    long IDeviceMemory.InUseBytes => Pool.InUseBytes;
    long IDeviceMemory.PeakBytes => Pool.PeakBytes;
    long IDeviceMemory.CachedBytes => Pool.CachedBytes;
    void IDeviceMemory.ResetPeak() => Pool.ResetPeak();
    void IDeviceMemory.ReleaseCache() => Pool.EmptyCache();

    public IDeviceRuntime Runtime { get; }
    public DevicePool Pool { get; }
    public DeviceInfo Info => Runtime.Info;
    public int SmCount => Info.SmCount;
    public int Arch => Info.Arch;
    public long TotalMemory => Info.TotalMemory;
    public bool Simulated => Info.Simulated;
    /// <summary>TensorFloat-32 GEMMs: faster, with a 10-bit mantissa in the products (tolerance: relative L2 1e-2).</summary>
    public bool Tf32 { get; set; }
    /// <summary>Synchronise and check after every launch (TMCA_CUDA_SYNC=1): errors surface at the launch that caused them.</summary>
    public bool SyncEveryLaunch { get; set; } = TmcaSettings.Current.CudaSync;
    /// <summary>Print every launch — kernel, grid, block, shared bytes, the op that asked (TMCA_CUDA_TRACE=1).</summary>
    public bool Trace
    {
        get => _trace;
        set => _trace = value;
    }
    public TextWriter TraceWriter { get; set; } = Console.Error;

    /// <summary>Kernel launches and GEMM calls so far (a GEMM counts as one launch).</summary>
    public long Launches { get; private set; }
    /// <summary>Device → host copies so far: each is a synchronisation point inside a step.</summary>
    public long DeviceToHostCopies { get; private set; }
    public long HostToDeviceCopies { get; private set; }

    public string Name => Simulated ? "cuda-sim" : "cuda:0";
    public DeviceKind Device => DeviceKind.Cuda;

    private bool _trace;

    public CudaBackend(IDeviceRuntime runtime)
    {
        Runtime = runtime;
        Pool = new DevicePool(Runtime, caching: !Runtime.ExactAllocations);   // on the runtime given: a fault injector under it reaches the pool's allocations
        Trace = TmcaSettings.Current.CudaTrace;
    }

    /// <summary>The backend for GPU <paramref name="ordinal"/>, or null with the reason (no driver, no GPU, no NVRTC, no cuBLAS).</summary>
    public static CudaBackend? TryCreate(out string reason, int ordinal = 0)
    {
        var rt = DriverRuntime.TryCreate(out reason, ordinal);
        return rt is null ? null : new CudaBackend(rt);
    }

    /// <summary>The backend on the CUDA simulator, or null with the reason (no C++ compiler, not x86-64 Linux).</summary>
    public static CudaBackend? TryCreateSimulator(out string reason, SimOptions? options = null)
    {
        var rt = SimRuntime.TryCreate(out reason, options);
        return rt is null ? null : new CudaBackend(rt);
    }

    /// <summary>The sticky error that made this device unusable (illegal address, deadlock, launch failure), or null. After
    /// one, the process must stop: every later call on the context would fail, or worse, read garbage.</summary>
    public CudaException? Poisoned { get; private set; }

    private void ThrowIfPoisoned()
    {
        if (Poisoned is { } p) throw new CudaException(p.Call, $"{p.Message.Split(": ", 2)[^1]} — the device context is unusable after this error; restart the process", sticky: true);
    }

    public void Synchronize()
    {
        ThrowIfPoisoned();
        try { Runtime.Synchronize(); }
        catch (CudaException e) when (e.Sticky) { Poisoned ??= e; throw; }
    }

    public void Dispose()
    {
        if (Poisoned is null) Runtime.Synchronize();   // a poisoned context can only be torn down
        Pool.EmptyCache();
        Runtime.Dispose();
    }

    public string Describe() => Info.Description;

    /// <summary>Milliseconds of device time for the work <paramref name="body"/> queues.</summary>
    public float Time(Action body) => Runtime.Time(body);

    // ---- memory -------------------------------------------------------------------------------------

    public Storage Allocate(DType dtype, long count)
    {
        var s = (CudaStorage)AllocateUninitialized(dtype, count);
        if (count > 0) Runtime.Memset(s.Ptr, 0, count * dtype.SizeOf());
        if (dtype == DType.I64) s.KnownRange = (0, 0);
        return s;
    }

    public Storage AllocateUninitialized(DType dtype, long count)
    {
        ThrowIfPoisoned();
        if (dtype == DType.F64) throw new NotSupportedException("F64 tensors are CPU-only (they exist for finite-difference gradient checks)");
        if (count < 0) throw new ArgumentException($"a negative element count ({count})");
        var (ptr, size) = Pool.Rent(Math.Max(1, count) * dtype.SizeOf());
        return new CudaStorage(this, dtype, count, ptr, size);
    }

    internal static ulong P(Tensor t) => t.Storage is CudaStorage c ? c.Ptr : throw new ArgumentException($"{t} is not a CUDA tensor");
    internal static ulong POpt(Tensor? t) => t is null ? 0 : P(t);

    public void Upload(Array host, Tensor dst)
    {
        long bytes = dst.Numel * dst.DType.SizeOf();
        if (Buffer.ByteLength(host) < bytes) throw new ArgumentException($"upload of {Buffer.ByteLength(host)} bytes into {bytes}");
        var h = GCHandle.Alloc(host, GCHandleType.Pinned);
        try { Runtime.CopyToDevice(P(dst), (void*)h.AddrOfPinnedObject(), bytes); }
        finally { h.Free(); }
        HostToDeviceCopies++;
        if (dst.Storage is CudaStorage cs && host is long[] ids && dst.DType == DType.I64)
            cs.KnownRange = MinMax(ids.AsSpan(0, (int)dst.Numel));
    }

    public Array Download(Tensor src)
    {
        Array host = src.DType switch
        {
            DType.F32 => new float[src.Numel], DType.I64 => new long[src.Numel], DType.U8 => new byte[src.Numel],
            _ => throw new NotSupportedException($"{src.DType} on CUDA"),
        };
        Download(src, host);
        return host;
    }

    public void Download(Tensor src, Array host)
    {
        long bytes = src.Numel * src.DType.SizeOf();
        if (Buffer.ByteLength(host) < bytes) throw new ArgumentException($"download of {bytes} bytes into a {Buffer.ByteLength(host)}-byte array");
        ThrowIfPoisoned();
        var h = GCHandle.Alloc(host, GCHandleType.Pinned);
        try { Runtime.CopyToHost((void*)h.AddrOfPinnedObject(), P(src), bytes); }
        catch (CudaException e) when (e.Sticky) { Poisoned ??= e; throw; }
        finally { h.Free(); }
        DeviceToHostCopies++;
    }

    public void Copy(Tensor src, Tensor dst)
    {
        if (src.DType != dst.DType || src.Numel != dst.Numel) throw new ArgumentException($"copy {src} → {dst}: dtype or size differ");
        Runtime.CopyOnDevice(P(dst), P(src), src.Numel * src.DType.SizeOf());
        if (dst.Storage is CudaStorage d) d.KnownRange = src.Storage is CudaStorage s && src.Numel == dst.Storage.Count ? s.KnownRange : null;
    }

    public void Fill(Tensor dst, double value)
    {
        if (value == 0) { Runtime.Memset(P(dst), 0, dst.Numel * dst.DType.SizeOf()); return; }
        if (dst.DType != DType.F32) throw new NotSupportedException($"filling a {dst.DType} CUDA tensor with {value}");
        long n = dst.Numel;
        var a = new KernelArgs(KernelTable.Fill);
        a.F32(value).Ptr(dst).I64(n);
        Launch(ref a, KernelTable.Fill.Grid(n, SmCount), $"n={n}");
    }

    public void Convert(Tensor src, Tensor dst) => throw new NotSupportedException("dtype conversion on CUDA (F64 is CPU-only)");

    // ---- launching ----------------------------------------------------------------------------------

    /// <summary>Launches the kernel <paramref name="a"/> was built for; a failure names the kernel and the shapes it was given.</summary>
    internal void Launch(ref KernelArgs a, Dim3 grid, string shapes, uint shared = 0, uint block = 0)
    {
        var d = a.Descriptor;
        var blockDim = block == 0 ? d.BlockDim : new Dim3(block, d.BlockY);
        var pointers = stackalloc void*[Math.Max(1, d.Params.Length)];
        a.Pointers(pointers);
        ThrowIfPoisoned();
        var f = Runtime.Kernel(d.File, d.Name);
        Launches++;
        if (_trace) TraceWriter.WriteLine($"[cuda] {Launches,6} {d.Name,-36} grid {grid,-12} block {blockDim,-8} smem {shared,6}  {Profiler.CurrentOp ?? "-",-22} {shapes}");
        try
        {
            Runtime.Launch(f, d.Name, grid, blockDim, shared, pointers);
            if (SyncEveryLaunch) Runtime.Synchronize();
        }
        catch (CudaException e) when (!e.Message.Contains(shapes, StringComparison.Ordinal))
        {
            var named = new CudaException($"{d.Name} [{shapes}]{(Profiler.CurrentOp is { } op ? $" in op '{op}'" : "")}", e.Message, e.Sticky);
            if (e.Sticky) Poisoned = named;
            throw named;
        }
    }

}
