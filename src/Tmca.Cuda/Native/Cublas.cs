namespace Tmca.Cuda.Native;

/// <summary>
/// cuBLAS (libcublas.so.13/.12, which needs libcublasLt loaded first). Row-major products are computed as
/// column-major ones with the operands swapped: C = A·B (row-major) is Cᵀ = Bᵀ·Aᵀ (column-major).
/// </summary>
public sealed unsafe class Cublas
{
    public string LibraryPath { get; }
    private readonly delegate* unmanaged<nint*, int> cublasCreate_v2;
    private readonly delegate* unmanaged<nint, int> cublasDestroy_v2;
    private readonly delegate* unmanaged<nint, nint, int> cublasSetStream_v2;
    private readonly delegate* unmanaged<nint, int, int> cublasSetMathMode;
    private readonly delegate* unmanaged<nint, int*, int> cublasGetVersion_v2;
    public readonly delegate* unmanaged<nint, int, int, int, int, int, void*, void*, int, int, long, void*, int, int, long, void*, void*, int, int, long, int, int, int, int> cublasGemmStridedBatchedEx;

    public const int OP_N = 0, OP_T = 1, R_32F = 0, COMPUTE_32F = 68, COMPUTE_32F_PEDANTIC = 69, COMPUTE_32F_FAST_TF32 = 77, GEMM_DEFAULT = -1;
    public const int MATH_DEFAULT = 0, MATH_PEDANTIC = 2, MATH_TF32 = 3;

    private Cublas(nint lib, string path)
    {
        LibraryPath = path;
        nint E(string s) => NativeLibraries.Export(lib, path, s);
        cublasCreate_v2 = (delegate* unmanaged<nint*, int>)E("cublasCreate_v2");
        cublasDestroy_v2 = (delegate* unmanaged<nint, int>)E("cublasDestroy_v2");
        cublasSetStream_v2 = (delegate* unmanaged<nint, nint, int>)E("cublasSetStream_v2");
        cublasSetMathMode = (delegate* unmanaged<nint, int, int>)E("cublasSetMathMode");
        cublasGetVersion_v2 = (delegate* unmanaged<nint, int*, int>)E("cublasGetVersion_v2");
        cublasGemmStridedBatchedEx = (delegate* unmanaged<nint, int, int, int, int, int, void*, void*, int, int, long, void*, int, int, long, void*, void*, int, int, long, int, int, int, int>)E("cublasGemmStridedBatchedEx");
    }

    public static Cublas? TryLoad(out string reason)
    {
        var lt = NativeLibraries.TryLoad(NativeLibraries.CublasLt);
        if (lt.Handle == 0) { reason = $"no cuBLASLt: {lt.Reason}"; return null; }
        var (h, path, why) = NativeLibraries.TryLoad(NativeLibraries.Cublas);
        if (h == 0) { reason = $"no cuBLAS: {why}"; return null; }
        try { reason = ""; return new Cublas(h, path!); }
        catch (CudaException e) { reason = e.Message; return null; }
    }

    public nint Create(nint stream)
    {
        nint handle;
        Check(cublasCreate_v2(&handle), "cublasCreate_v2");
        Check(cublasSetStream_v2(handle, stream), "cublasSetStream_v2");
        return handle;
    }

    public void SetMathMode(nint handle, int mode) => Check(cublasSetMathMode(handle, mode), "cublasSetMathMode");

    public int GetVersion(nint handle)
    {
        int v;
        Check(cublasGetVersion_v2(handle, &v), "cublasGetVersion_v2");
        return v;
    }

    public static string StatusName(int s) => s switch
    {
        0 => "CUBLAS_STATUS_SUCCESS", 1 => "CUBLAS_STATUS_NOT_INITIALIZED", 3 => "CUBLAS_STATUS_ALLOC_FAILED", 7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH", 11 => "CUBLAS_STATUS_MAPPING_ERROR", 13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR", 15 => "CUBLAS_STATUS_NOT_SUPPORTED", _ => $"cuBLAS status {s}",
    };

    public static void Check(int status, string call)
    {
        if (status != 0) throw new CudaException(call, StatusName(status));
    }
}

/// <summary>cuDNN 9 (libcudnn.so.9): only what `tmca doctor` reports in this part (version); convolutions come later.</summary>
public sealed unsafe class Cudnn
{
    public string LibraryPath { get; }
    private readonly delegate* unmanaged<nuint> cudnnGetVersion;

    private Cudnn(nint lib, string path)
    {
        LibraryPath = path;
        cudnnGetVersion = (delegate* unmanaged<nuint>)NativeLibraries.Export(lib, path, "cudnnGetVersion");
    }

    public static Cudnn? TryLoad(out string reason)
    {
        var (h, path, why) = NativeLibraries.TryLoad(NativeLibraries.Cudnn);
        if (h == 0) { reason = $"no cuDNN: {why}"; return null; }
        try { reason = ""; return new Cudnn(h, path!); }
        catch (CudaException e) { reason = e.Message; return null; }
    }

    /// <summary>cuDNN 9 encodes its version as major·10000 + minor·100 + patch (v8 used ·1000).</summary>
    public string Version
    {
        get
        {
            ulong v = cudnnGetVersion();
            return v >= 90000 ? $"{v / 10000}.{v / 100 % 100}.{v % 100}" : $"{v / 1000}.{v / 100 % 10}.{v % 100}";
        }
    }
}
