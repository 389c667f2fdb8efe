using System.Runtime.InteropServices;
using Tmca.Cuda.Native;
using Tmca.Engine;

namespace Tmca.Cuda;

/// <summary>
/// The CUDA backend behind <see cref="IBackend"/>: device tensors in a caching pool, one stream on the device's
/// primary context, kernels from kernels/*.cu compiled by NVRTC at first use (cached on disk), GEMMs through
/// cuBLAS (TF32 off by default, so results match the CPU to float32 precision; <see cref="Tf32"/> turns it on).
/// Part 1 covers elementwise ops, reductions, softmax, last-axis layer norm, embedding, permute/concat, AdamW
/// and GEMM; every other op throws <see cref="NotSupportedException"/> naming itself — no silent CPU fallback.
/// </summary>
public sealed unsafe partial class CudaBackend : IBackend, IDisposable
{
    public Driver Driver { get; }
    public Nvrtc Nvrtc { get; }
    public Cublas Cublas { get; }
    public DevicePool Pool { get; }
    public int DeviceOrdinal { get; }
    public string DeviceName { get; }
    public (int Major, int Minor) ComputeCapability { get; }
    public int Arch => ComputeCapability.Major * 10 + ComputeCapability.Minor;
    public int SmCount { get; }
    public long TotalMemory { get; }
    public int DriverVersion { get; }
    /// <summary>TensorFloat-32 GEMMs: faster, with a 10-bit mantissa in the products (tolerance: relative L2 1e-2).</summary>
    public bool Tf32 { get; set; }
    /// <summary>Synchronise and check after every launch (TMCA_CUDA_SYNC=1): errors surface at the launch that caused them.</summary>
    public bool SyncEveryLaunch { get; set; } = Environment.GetEnvironmentVariable("TMCA_CUDA_SYNC") == "1";

    public string Name => $"cuda:{DeviceOrdinal}";
    public DeviceKind Device => DeviceKind.Cuda;

    private readonly nint _context, _stream, _blas;
    private readonly KernelCompiler _compiler;
    private readonly Dictionary<string, nint> _modules = new();
    private readonly Dictionary<(string, string), nint> _functions = new();
    [ThreadStatic] private static nint _currentContext;

    private CudaBackend(Driver d, Nvrtc nv, Cublas blas, int ordinal)
    {
        Driver = d; Nvrtc = nv; Cublas = blas; DeviceOrdinal = ordinal;
        int dev, v;
        Driver.Check(Driver.cuDeviceGet(&dev, ordinal), "cuDeviceGet");
        var name = stackalloc byte[256];
        Driver.Check(Driver.cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
        DeviceName = Marshal.PtrToStringUTF8((nint)name) ?? "?";
        int maj, min, sms;
        Driver.Check(Driver.cuDeviceGetAttribute(&maj, Driver.CC_MAJOR, dev), "cuDeviceGetAttribute");
        Driver.Check(Driver.cuDeviceGetAttribute(&min, Driver.CC_MINOR, dev), "cuDeviceGetAttribute");
        Driver.Check(Driver.cuDeviceGetAttribute(&sms, Driver.SM_COUNT, dev), "cuDeviceGetAttribute");
        ComputeCapability = (maj, min); SmCount = sms;
        nuint total;
        Driver.Check(Driver.cuDeviceTotalMem_v2(&total, dev), "cuDeviceTotalMem_v2");
        TotalMemory = (long)total;
        Driver.Check(Driver.cuDriverGetVersion(&v), "cuDriverGetVersion");
        DriverVersion = v;
        nint ctx, stream;
        Driver.Check(Driver.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
        _context = ctx;
        MakeCurrent();
        Driver.Check(Driver.cuStreamCreate(&stream, 1 /* non-blocking */), "cuStreamCreate");
        _stream = stream;
        _blas = blas.Create(stream);
        Pool = new DevicePool();
        _compiler = new KernelCompiler(nv);
    }

    /// <summary>The backend for GPU <paramref name="ordinal"/>, or null with the reason (no driver, no GPU, no NVRTC, no cuBLAS).</summary>
    public static CudaBackend? TryCreate(out string reason, int ordinal = 0)
    {
        var d = Driver.TryLoad(out reason);
        if (d is null) return null;
        int count;
        if (Driver.cuDeviceGetCount(&count) != 0 || count == 0) { reason = "the CUDA driver found no GPU"; return null; }
        if (ordinal >= count) { reason = $"GPU {ordinal} requested, {count} present"; return null; }
        var nv = Nvrtc.TryLoad(out reason);
        if (nv is null) return null;
        var blas = Cublas.TryLoad(out reason);
        if (blas is null) return null;
        try { return new CudaBackend(d, nv, blas, ordinal); }
        catch (CudaException e) { reason = e.Message; return null; }
    }

    private void MakeCurrent()
    {
        if (_currentContext == _context) return;
        Driver.Check(Driver.cuCtxSetCurrent(_context), "cuCtxSetCurrent");
        _currentContext = _context;
    }

    public void Synchronize()
    {
        MakeCurrent();
        Driver.Check(Driver.cuStreamSynchronize(_stream), "cuStreamSynchronize");
    }

    public void Dispose()
    {
        Synchronize();
        foreach (var m in _modules.Values) Driver.cuModuleUnload(m);
        Pool.EmptyCache();
    }

    // ---- memory -------------------------------------------------------------------------------------

    public Storage Allocate(DType dtype, long count)
    {
        var s = (CudaStorage)AllocateUninitialized(dtype, count);
        if (count > 0) Driver.Check(Driver.cuMemsetD8Async(s.Ptr, 0, (nuint)(count * dtype.SizeOf()), _stream), "cuMemsetD8Async");
        return s;
    }

    public Storage AllocateUninitialized(DType dtype, long count)
    {
        MakeCurrent();
        if (dtype == DType.F64) throw new NotSupportedException("F64 tensors are CPU-only (they exist for finite-difference gradient checks)");
        var (ptr, size) = Pool.Rent(Math.Max(1, count) * dtype.SizeOf());
        return new CudaStorage(this, dtype, count, ptr, size);
    }

    internal static ulong P(Tensor t) => t.Storage is CudaStorage c ? c.Ptr : throw new ArgumentException($"{t} is not a CUDA tensor");
    internal static ulong POpt(Tensor? t) => t is null ? 0 : P(t);

    public void Upload(Array host, Tensor dst)
    {
        MakeCurrent();
        long bytes = dst.Numel * dst.DType.SizeOf();
        if (Buffer.ByteLength(host) < bytes) throw new ArgumentException($"upload of {Buffer.ByteLength(host)} bytes into {bytes}");
        var h = GCHandle.Alloc(host, GCHandleType.Pinned);
        try
        {
            Driver.Check(Driver.cuMemcpyHtoDAsync_v2(P(dst), (void*)h.AddrOfPinnedObject(), (nuint)bytes, _stream), "cuMemcpyHtoDAsync_v2");
            Driver.Check(Driver.cuStreamSynchronize(_stream), "cuStreamSynchronize");
        }
        finally { h.Free(); }
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
        MakeCurrent();
        long bytes = src.Numel * src.DType.SizeOf();
        var h = GCHandle.Alloc(host, GCHandleType.Pinned);
        try
        {
            Driver.Check(Driver.cuMemcpyDtoHAsync_v2((void*)h.AddrOfPinnedObject(), P(src), (nuint)bytes, _stream), "cuMemcpyDtoHAsync_v2");
            Driver.Check(Driver.cuStreamSynchronize(_stream), "cuStreamSynchronize");
        }
        finally { h.Free(); }
    }

    public void Copy(Tensor src, Tensor dst)
    {
        MakeCurrent();
        if (src.DType != dst.DType || src.Numel != dst.Numel) throw new ArgumentException($"copy {src} → {dst}: dtype or size differ");
        Driver.Check(Driver.cuMemcpyDtoDAsync_v2(P(dst), P(src), (nuint)(src.Numel * src.DType.SizeOf()), _stream), "cuMemcpyDtoDAsync_v2");
    }

    public void Fill(Tensor dst, double value)
    {
        MakeCurrent();
        if (value == 0) { Driver.Check(Driver.cuMemsetD8Async(P(dst), 0, (nuint)(dst.Numel * dst.DType.SizeOf()), _stream), "cuMemsetD8Async"); return; }
        if (dst.DType != DType.F32) throw new NotSupportedException($"filling a {dst.DType} CUDA tensor with {value}");
        float v = (float)value; ulong y = P(dst); long n = dst.Numel;
        void** a = stackalloc void*[] { &v, &y, &n };
        Launch("elementwise.cu", "fill_f32", Grid(n), 256, 0, a, $"n={n}");
    }

    public void Convert(Tensor src, Tensor dst) => throw new NotSupportedException("dtype conversion on CUDA (F64 is CPU-only)");

    // ---- launching ----------------------------------------------------------------------------------

    /// <summary>Blocks for a grid-stride loop over n elements: enough to fill the GPU, never more than needed.</summary>
    internal uint Grid(long n, int block = 256) => (uint)Math.Max(1, Math.Min((n + block - 1) / block, (long)SmCount * 32));

    private nint Function(string file, string kernel)
    {
        if (_functions.TryGetValue((file, kernel), out var f)) return f;
        if (!_modules.TryGetValue(file, out var module))
        {
            var image = _compiler.Compile(file, Arch);
            fixed (byte* p = image.Image) Driver.Check(Driver.cuModuleLoadData(&module, p), $"cuModuleLoadData({file}, sm_{Arch})");
            _modules[file] = module;
        }
        var nameBytes = System.Text.Encoding.ASCII.GetBytes(kernel + "\0");
        fixed (byte* n = nameBytes) Driver.Check(Driver.cuModuleGetFunction(&f, module, n), $"cuModuleGetFunction({kernel})");
        _functions[(file, kernel)] = f;
        return f;
    }

    /// <summary>Launches a kernel; a failure names the kernel and the shapes it was given.</summary>
    internal void Launch(string file, string kernel, uint grid, uint block, uint shared, void** args, string shapes, uint gridY = 1, uint blockY = 1)
    {
        MakeCurrent();
        var f = Function(file, kernel);
        int r = Driver.cuLaunchKernel(f, grid, gridY, 1, block, blockY, 1, shared, _stream, args, null);
        if (r != 0) throw new CudaException($"cuLaunchKernel {kernel} [{shapes}]", Driver.ErrorText(r));
        if (SyncEveryLaunch)
        {
            r = Driver.cuStreamSynchronize(_stream);
            if (r != 0) throw new CudaException($"{kernel} [{shapes}]", Driver.ErrorText(r));
        }
    }

    /// <summary>Milliseconds of GPU time for the work <paramref name="body"/> queues (CUDA events on the stream).</summary>
    public float Time(Action body)
    {
        MakeCurrent();
        nint start, end;
        Driver.Check(Driver.cuEventCreate(&start, 0), "cuEventCreate");
        Driver.Check(Driver.cuEventCreate(&end, 0), "cuEventCreate");
        try
        {
            Driver.Check(Driver.cuEventRecord(start, _stream), "cuEventRecord");
            body();
            Driver.Check(Driver.cuEventRecord(end, _stream), "cuEventRecord");
            Driver.Check(Driver.cuEventSynchronize(end), "cuEventSynchronize");
            float ms;
            Driver.Check(Driver.cuEventElapsedTime(&ms, start, end), "cuEventElapsedTime");
            return ms;
        }
        finally { Driver.cuEventDestroy_v2(start); Driver.cuEventDestroy_v2(end); }
    }

    internal static NotSupportedException Unsupported(string op) =>
        new($"{op} has no CUDA kernel yet: CUDA part 1 covers elementwise ops, reductions, softmax, last-axis layer norm, " +
            "embedding, permute/concat, AdamW and GEMM (use --device cpu for the rest)");

    public string Describe() =>
        $"{DeviceName} (sm_{Arch}, {SmCount} SMs, {TotalMemory / (1L << 30)} GiB), driver {DriverVersion / 1000}.{DriverVersion % 1000 / 10}, " +
        $"NVRTC {Nvrtc.Version.Major}.{Nvrtc.Version.Minor} ({Nvrtc.LibraryPath}), cuBLAS {Cublas.GetVersion(_blas)} ({Cublas.LibraryPath})";
}
