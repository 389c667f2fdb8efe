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
    private readonly int _device, _sharedOptInLimit;
    private readonly Dictionary<nint, uint> _sharedOptedIn = new();   // function → dynamic shared bytes it may use
    private static readonly bool HasElapsedTimeV2 = NativeLibraries.HasExport("cuda", "cuEventElapsedTime_v2");
    private readonly KernelCompiler _compiler;
    private readonly Dictionary<string, nint> _modules = new();
    private readonly Dictionary<(string, string), nint> _functions = new();
    [ThreadStatic] private static nint _currentContext;

    private DriverRuntime(Driver d, Nvrtc nv, Cublas blas, int ordinal)
    {
        Driver = d; Nvrtc = nv; Cublas = blas;
        int dev, v, maj, min, sms, optIn;
        Driver.Check(Driver.cuDeviceGet(&dev, ordinal), "cuDeviceGet");
        var name = stackalloc byte[256];
        Driver.Check(Driver.cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
        Driver.Check(Driver.cuDeviceGetAttribute(&maj, Driver.CC_MAJOR, dev), "cuDeviceGetAttribute");
        Driver.Check(Driver.cuDeviceGetAttribute(&min, Driver.CC_MINOR, dev), "cuDeviceGetAttribute");
        Driver.Check(Driver.cuDeviceGetAttribute(&sms, Driver.SM_COUNT, dev), "cuDeviceGetAttribute");
        Driver.Check(Driver.cuDeviceGetAttribute(&optIn, Driver.MAX_SMEM_OPTIN, dev), "cuDeviceGetAttribute");
        _device = dev; _sharedOptInLimit = optIn;
        nuint total;
        Driver.Check(Driver.cuDeviceTotalMem_v2(&total, dev), "cuDeviceTotalMem_v2");
        Driver.Check(Driver.cuDriverGetVersion(&v), "cuDriverGetVersion");
        DriverVersion = v;
        nint ctx, stream;
        Driver.Check(Driver.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
        _context = ctx;
        try
        {
            MakeCurrent();
            stream = 0;
            Driver.Check(Driver.cuStreamCreate(&stream, 1 /* non-blocking */), "cuStreamCreate");
            _stream = stream;
            _blas = CreateBlas(blas, stream);
        }
        catch
        {
            // a failure after the retain must release what it took, or the primary context leaks for the process
            if (_stream != 0) Driver.cuStreamDestroy_v2(_stream);
            Driver.cuDevicePrimaryCtxRelease_v2(dev);
            _currentContext = 0;
            throw;
        }
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

    /// <summary>cuBLAS's handle (and its workspace): CUBLAS_STATUS_ALLOC_FAILED is the device being out of memory.</summary>
    private nint CreateBlas(Cublas blas, nint stream)
    {
        try { return blas.Create(stream); }
        catch (CudaException e) when (e.Message.Contains("CUBLAS_STATUS_ALLOC_FAILED"))
        {
            var (free, total) = MemoryInfo();
            throw new DeviceOutOfMemoryException("cublasCreate_v2 (its workspace)", 0, free, total, "");
        }
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
        if (sharedBytes > Driver.DefaultSharedLimit) OptInSharedMemory(kernel, name, sharedBytes);
        int r = Driver.cuLaunchKernel(kernel, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, sharedBytes, _stream, args, null);
        if (r != 0) throw Driver.LaunchError(r, name, Driver.ErrorText(r));
    }

    /// <summary>Dynamic shared memory above 48 KiB is refused by cuLaunchKernel unless the function opts in
    /// (cuFuncSetAttribute), up to the device's opt-in limit; above that the launch is refused here, by name.</summary>
    private void OptInSharedMemory(nint kernel, string name, uint sharedBytes)
    {
        if (_sharedOptedIn.TryGetValue(kernel, out var done) && done >= sharedBytes) return;
        if (sharedBytes > _sharedOptInLimit)
            throw new CudaException($"cuLaunchKernel {name}", $"{sharedBytes} bytes of dynamic shared memory: more than this GPU's opt-in limit of {_sharedOptInLimit} bytes");
        Driver.Check(Driver.cuFuncSetAttribute(kernel, Driver.FUNC_MAX_DYNAMIC_SHARED, (int)sharedBytes), $"cuFuncSetAttribute({name}, max dynamic shared = {sharedBytes})");
        _sharedOptedIn[kernel] = sharedBytes;
    }

    /// <summary>cuBLAS's leading dimensions for the row-major mapping (see <see cref="Gemm"/>). With k = 0 one of them
    /// would be 0, which cuBLAS refuses (INVALID_VALUE: ld ≥ max(1, rows)) where the CPU computes β·C: at least 1.</summary>
    public static (int Lda, int Ldb, int Ldc) LeadingDimensions(in GemmCall g) =>
        (Math.Max(1, g.TransB ? g.K : g.N), Math.Max(1, g.TransA ? g.M : g.K), Math.Max(1, g.N));

    /// <summary>
    /// Row-major C = α·op(A)·op(B) + β·C as cuBLAS's column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: a row-major matrix read
    /// column-major is its transpose, so B goes first and the transpose flags carry over unchanged.
    /// </summary>
    public void Gemm(in GemmCall g)
    {
        MakeCurrent();
        float al = g.Alpha, be = g.Beta;
        var (lda, ldb, ldc) = LeadingDimensions(g);
        int status = Cublas.cublasGemmStridedBatchedEx(_blas, g.TransB ? Cublas.OP_T : Cublas.OP_N, g.TransA ? Cublas.OP_T : Cublas.OP_N, g.N, g.M, g.K,
            &al, (void*)g.B, Cublas.R_32F, lda, g.StrideB, (void*)g.A, Cublas.R_32F, ldb, g.StrideA, &be, (void*)g.C, Cublas.R_32F, ldc, g.StrideC, g.Batch,
            g.Tf32 ? Cublas.COMPUTE_32F_FAST_TF32 : Cublas.COMPUTE_32F, Cublas.GEMM_DEFAULT);
        if (status == 3 /* CUBLAS_STATUS_ALLOC_FAILED: its workspace */)
        {
            var (free, total) = MemoryInfo();
            throw new DeviceOutOfMemoryException("cublasGemmStridedBatchedEx (its workspace)", 0, free, total, $" [m={g.M} n={g.N} k={g.K} batch={g.Batch}]");
        }
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
            // cuEventElapsedTime is deprecated from CUDA 12.8 (and may go); its _v2 has the same signature
            if (HasElapsedTimeV2) Driver.Check(Driver.cuEventElapsedTime_v2(&ms, start, end), "cuEventElapsedTime_v2");
            else Driver.Check(Driver.cuEventElapsedTime(&ms, start, end), "cuEventElapsedTime");
            return ms;
        }
        finally { Driver.cuEventDestroy_v2(start); Driver.cuEventDestroy_v2(end); }
    }

    private bool _disposed;

    /// <summary>Gives back everything the constructor took: modules, the cuBLAS handle, the stream and the primary
    /// context's reference. After a sticky error the synchronise fails; the teardown still runs.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { Synchronize(); }
        finally
        {
            foreach (var m in _modules.Values) Driver.cuModuleUnload(m);
            _modules.Clear(); _functions.Clear();
            Cublas.Destroy(_blas);
            Driver.cuStreamDestroy_v2(_stream);
            Driver.cuDevicePrimaryCtxRelease_v2(_device);
            _currentContext = 0;
        }
    }
}
