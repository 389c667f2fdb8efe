using System.Runtime.InteropServices;

namespace Tmca.Cuda.Native;

/// <summary>
/// cuBLAS (libcublas.so.13/.12, which needs libcublasLt loaded first). Row-major products are computed as
/// column-major ones with the operands swapped: C = A·B (row-major) is Cᵀ = Bᵀ·Aᵀ (column-major).
/// </summary>
public sealed unsafe partial class Cublas
{
    private const string Lib = "cublas";
    public string LibraryPath { get; }

    [LibraryImport(Lib)] private static partial int cublasCreate_v2(nint* handle);
    [LibraryImport(Lib)] private static partial int cublasDestroy_v2(nint handle);
    [LibraryImport(Lib)] private static partial int cublasSetStream_v2(nint handle, nint stream);
    [LibraryImport(Lib)] private static partial int cublasSetMathMode(nint handle, int mode);
    [LibraryImport(Lib)] private static partial int cublasGetVersion_v2(nint handle, int* version);
    /// <summary>Strided batched GEMM with explicit data and compute types (CUBLAS_COMPUTE_32F or _32F_FAST_TF32).</summary>
    [LibraryImport(Lib)] public static partial int cublasGemmStridedBatchedEx(nint handle, int transa, int transb, int m, int n, int k,
        void* alpha, void* a, int aType, int lda, long strideA, void* b, int bType, int ldb, long strideB,
        void* beta, void* c, int cType, int ldc, long strideC, int batchCount, int computeType, int algo);

    public const int OP_N = 0, OP_T = 1, R_32F = 0, COMPUTE_32F = 68, COMPUTE_32F_PEDANTIC = 69, COMPUTE_32F_FAST_TF32 = 77, GEMM_DEFAULT = -1;
    public const int MATH_DEFAULT = 0, MATH_PEDANTIC = 2, MATH_TF32 = 3;

    private Cublas(string path) => LibraryPath = path;

    public static Cublas? TryLoad(out string reason)
    {
        var (h, path, why) = NativeLibraries.TryLoad(Lib);
        if (h == 0) { reason = why.StartsWith("no cuBLASLt") ? why : $"no cuBLAS: {why}"; return null; }
        reason = "";
        return new Cublas(path!);
    }

    public nint Create(nint stream)
    {
        nint handle;
        Check(cublasCreate_v2(&handle), "cublasCreate_v2");
        int r = cublasSetStream_v2(handle, stream);
        if (r != 0) { cublasDestroy_v2(handle); Check(r, "cublasSetStream_v2"); }
        return handle;
    }

    /// <summary>Destroys a handle (and its workspace); the status is ignored: this runs during teardown.</summary>
    public void Destroy(nint handle) { if (handle != 0) cublasDestroy_v2(handle); }

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
public sealed unsafe partial class Cudnn
{
    private const string Lib = "cudnn";
    public string LibraryPath { get; }

    [LibraryImport(Lib)] private static partial nuint cudnnGetVersion();

    private Cudnn(string path) => LibraryPath = path;

    public static Cudnn? TryLoad(out string reason)
    {
        var (h, path, why) = NativeLibraries.TryLoad(Lib);
        if (h == 0) { reason = $"no cuDNN: {why}"; return null; }
        reason = "";
        return new Cudnn(path!);
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
