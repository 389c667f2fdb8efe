using System.Runtime.InteropServices;
using Tmca.Cuda.Native;

namespace Tmca.Cuda;

/// <summary>
/// The real device: the CUDA driver API on the device's primary context, one non-blocking stream, kernels
/// compiled by NVRTC (cached on disk by <see cref="KernelCompiler"/>), GEMMs through cuBLAS.
/// </summary>
public sealed unsafe class DriverRuntime : IDeviceRuntime
{
    public Driver Driver { get; }
    public Nvrtc Nvrtc { get; }
    public Cublas Cublas { get; }
    public DeviceInfo Info { get; }
    public bool ExactAllocations => false;
    public int DriverVersion { get; }

    private readonly nint _context, _stream, _blas;
    private readonly KernelCompiler _compiler;
    private readonly Dictionary<string, nint> _modules = new();
    private readonly Dictionary<(string, string), nint> _functions = new();
    [ThreadStatic] private static nint _currentContext;

    private DriverRuntime(Driver d, Nvrtc nv, Cublas blas, int ordinal)
    {
        Driver = d; Nvrtc = nv; Cublas = blas;
        int dev, v, maj, min, sms;
        Driver.Check(Driver.cuDeviceGet(&dev, ordinal), "cuDeviceGet");
        var name = stackalloc byte[256];
        Driver.Check(Driver.cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
        Driver.Check(Driver.cuDeviceGetAttribute(&maj, Driver.CC_MAJOR, dev), "cuDeviceGetAttribute");
        Driver.Check(Driver.cuDeviceGetAttribute(&min, Driver.CC_MINOR, dev), "cuDeviceGetAttribute");
        Driver.Check(Driver.cuDeviceGetAttribute(&sms, Driver.SM_COUNT, dev), "cuDeviceGetAttribute");
        nuint total;
        Driver.Check(Driver.cuDeviceTotalMem_v2(&total, dev), "cuDeviceTotalMem_v2");
        Driver.Check(Driver.cuDriverGetVersion(&v), "cuDriverGetVersion");
        DriverVersion = v;
        nint ctx, stream;
        Driver.Check(Driver.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
        _context = ctx;
        MakeCurrent();
        Driver.Check(Driver.cuStreamCreate(&stream, 1 /* non-blocking */), "cuStreamCreate");
        _stream = stream;
        _blas = blas.Create(stream);
        _compiler = new KernelCompiler(nv);
        string devName = Marshal.PtrToStringUTF8((nint)name) ?? "?";
        int arch = maj * 10 + min;
        Info = new DeviceInfo(devName, arch, sms, (long)total, false,
            $"{devName} (sm_{arch}, {sms} SMs, {(long)total / (1L << 30)} GiB), driver {v / 1000}.{v % 1000 / 10}, " +
            $"NVRTC {nv.Version.Major}.{nv.Version.Minor} ({nv.LibraryPath}), cuBLAS {blas.GetVersion(_blas)} ({blas.LibraryPath})");
    }

    /// <summary>The runtime for GPU <paramref name="ordinal"/>, or null with the reason (no driver, no GPU, no NVRTC, no cuBLAS).</summary>
    public static DriverRuntime? TryCreate(out string reason, int ordinal = 0)
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
        try { return new DriverRuntime(d, nv, blas, ordinal); }
        catch (CudaException e) { reason = e.Message; return null; }
    }

    private void MakeCurrent()
    {
        if (_currentContext == _context) return;
        Driver.Check(Driver.cuCtxSetCurrent(_context), "cuCtxSetCurrent");
        _currentContext = _context;
    }

    // ---- memory ----

    public ulong Alloc(long bytes)
    {
        MakeCurrent();
        ulong ptr;
        int r = Driver.cuMemAlloc_v2(&ptr, (nuint)bytes);
        if (r == 2 /* CUDA_ERROR_OUT_OF_MEMORY */)
        {
            var (free, total) = MemoryInfo();
            throw new DeviceOutOfMemoryException("cuMemAlloc_v2", bytes, free, total, "");
        }
        Driver.Check(r, $"cuMemAlloc_v2({bytes} bytes)");
        return ptr;
    }

    public void Free(ulong ptr) { MakeCurrent(); Driver.Check(Driver.cuMemFree_v2(ptr), "cuMemFree_v2"); }

    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        nuint free, total;
        Driver.Check(Driver.cuMemGetInfo_v2(&free, &total), "cuMemGetInfo_v2");
        return ((long)free, (long)total);
    }

    public void Memset(ulong dst, byte value, long bytes)
    {
        MakeCurrent();
        if (bytes > 0) Driver.Check(Driver.cuMemsetD8Async(dst, value, (nuint)bytes, _stream), "cuMemsetD8Async");
    }

    public void CopyToDevice(ulong dst, void* src, long bytes)
    {
        MakeCurrent();
        if (bytes == 0) return;
        Driver.Check(Driver.cuMemcpyHtoDAsync_v2(dst, src, (nuint)bytes, _stream), "cuMemcpyHtoDAsync_v2");
        Driver.Check(Driver.cuStreamSynchronize(_stream), "cuStreamSynchronize");   // the host buffer is pageable
    }

    public void CopyToHost(void* dst, ulong src, long bytes)
    {
        MakeCurrent();
        if (bytes == 0) return;
        Driver.Check(Driver.cuMemcpyDtoHAsync_v2(dst, src, (nuint)bytes, _stream), "cuMemcpyDtoHAsync_v2");
        Driver.Check(Driver.cuStreamSynchronize(_stream), "cuStreamSynchronize");
    }

    public void CopyOnDevice(ulong dst, ulong src, long bytes)
    {
        MakeCurrent();
        if (bytes > 0) Driver.Check(Driver.cuMemcpyDtoDAsync_v2(dst, src, (nuint)bytes, _stream), "cuMemcpyDtoDAsync_v2");
    }

    // ---- kernels ----

    public nint Kernel(string file, string name)
    {
        MakeCurrent();
        if (_functions.TryGetValue((file, name), out var f)) return f;
        if (!_modules.TryGetValue(file, out var module))
        {
            var image = _compiler.Compile(file, Info.Arch);
            fixed (byte* p = image.Image) Driver.Check(Driver.cuModuleLoadData(&module, p), $"cuModuleLoadData({file}, sm_{Info.Arch})");
            _modules[file] = module;
        }
        var nameBytes = System.Text.Encoding.ASCII.GetBytes(name + "\0");
        fixed (byte* n = nameBytes) Driver.Check(Driver.cuModuleGetFunction(&f, module, n), $"cuModuleGetFunction({name})");
        _functions[(file, name)] = f;
        return f;
    }

    public void Launch(nint kernel, string name, Dim3 grid, Dim3 block, uint sharedBytes, void** args)
    {
        MakeCurrent();
        int r = Driver.cuLaunchKernel(kernel, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, sharedBytes, _stream, args, null);
        if (r != 0) throw new CudaException($"cuLaunchKernel {name}", Driver.ErrorText(r), sticky: r is >= 700 and <= 719);
    }

    /// <summary>
    /// Row-major C = α·op(A)·op(B) + β·C as cuBLAS's column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: a row-major matrix read
    /// column-major is its transpose, so B goes first and the transpose flags carry over unchanged.
    /// </summary>
    public void Gemm(in GemmCall g)
    {
        MakeCurrent();
        float al = g.Alpha, be = g.Beta;
        int lda = g.TransB ? g.K : g.N, ldb = g.TransA ? g.M : g.K, ldc = g.N;
        int status = Cublas.cublasGemmStridedBatchedEx(_blas, g.TransB ? Cublas.OP_T : Cublas.OP_N, g.TransA ? Cublas.OP_T : Cublas.OP_N, g.N, g.M, g.K,
            &al, (void*)g.B, Cublas.R_32F, lda, g.StrideB, (void*)g.A, Cublas.R_32F, ldb, g.StrideA, &be, (void*)g.C, Cublas.R_32F, ldc, g.StrideC, g.Batch,
            g.Tf32 ? Cublas.COMPUTE_32F_FAST_TF32 : Cublas.COMPUTE_32F, Cublas.GEMM_DEFAULT);
        if (status != 0) throw new CudaException($"cublasGemmStridedBatchedEx [m={g.M} n={g.N} k={g.K} batch={g.Batch} ta={g.TransA} tb={g.TransB}]", Cublas.StatusName(status));
    }

    // ---- ordering and timing ----

    public void Synchronize()
    {
        MakeCurrent();
        Driver.Check(Driver.cuStreamSynchronize(_stream), "cuStreamSynchronize");
    }

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

    public void Dispose()
    {
        Synchronize();
        foreach (var m in _modules.Values) Driver.cuModuleUnload(m);
    }
}
