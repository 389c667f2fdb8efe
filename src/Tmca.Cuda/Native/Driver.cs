using System.Runtime.InteropServices;

namespace Tmca.Cuda.Native;

/// <summary>
/// The CUDA driver API (libcuda.so.1), bound to the versioned symbols (cuMemAlloc_v2 and friends: the plain names
/// are the old 32-bit-size ABI). Every call goes through <see cref="Check"/>, which turns an error code into a
/// <see cref="CudaException"/> carrying cuGetErrorName and cuGetErrorString. Not [SuppressGCTransition]: driver
/// calls may block.
/// </summary>
public sealed unsafe partial class Driver
{
    private const string Lib = "cuda";
    public string LibraryPath { get; }

    [LibraryImport(Lib)] public static partial int cuInit(uint flags);
    [LibraryImport(Lib)] public static partial int cuDriverGetVersion(int* version);
    [LibraryImport(Lib)] public static partial int cuDeviceGetCount(int* count);
    [LibraryImport(Lib)] public static partial int cuDeviceGet(int* device, int ordinal);
    [LibraryImport(Lib)] public static partial int cuDeviceGetAttribute(int* value, int attribute, int device);
    [LibraryImport(Lib)] public static partial int cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] public static partial int cuDeviceTotalMem_v2(nuint* bytes, int device);
    [LibraryImport(Lib)] public static partial int cuDevicePrimaryCtxRetain(nint* context, int device);
    [LibraryImport(Lib)] public static partial int cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(Lib)] public static partial int cuCtxSetCurrent(nint context);
    [LibraryImport(Lib)] public static partial int cuCtxSynchronize();
    [LibraryImport(Lib)] public static partial int cuModuleLoadData(nint* module, void* image);
    [LibraryImport(Lib)] public static partial int cuModuleGetFunction(nint* function, nint module, byte* name);
    [LibraryImport(Lib)] public static partial int cuModuleUnload(nint module);
    [LibraryImport(Lib)] public static partial int cuFuncSetAttribute(nint function, int attribute, int value);
    [LibraryImport(Lib)] public static partial int cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
                                                                 uint sharedBytes, nint stream, void** kernelParams, void** extra);
    [LibraryImport(Lib)] public static partial int cuMemAlloc_v2(ulong* ptr, nuint bytes);
    [LibraryImport(Lib)] public static partial int cuMemFree_v2(ulong ptr);
    [LibraryImport(Lib)] public static partial int cuMemGetInfo_v2(nuint* free, nuint* total);
    [LibraryImport(Lib)] public static partial int cuMemcpyHtoDAsync_v2(ulong dst, void* src, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial int cuMemcpyDtoHAsync_v2(void* dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial int cuMemcpyDtoDAsync_v2(ulong dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial int cuMemsetD8Async(ulong dst, byte value, nuint count, nint stream);
    [LibraryImport(Lib)] public static partial int cuStreamCreate(nint* stream, uint flags);
    [LibraryImport(Lib)] public static partial int cuStreamSynchronize(nint stream);
    [LibraryImport(Lib)] public static partial int cuStreamDestroy_v2(nint stream);
    [LibraryImport(Lib)] public static partial int cuEventCreate(nint* ev, uint flags);
    [LibraryImport(Lib)] public static partial int cuEventRecord(nint ev, nint stream);
    [LibraryImport(Lib)] public static partial int cuEventSynchronize(nint ev);
    [LibraryImport(Lib)] public static partial int cuEventElapsedTime(float* ms, nint start, nint end);
    [LibraryImport(Lib)] public static partial int cuEventElapsedTime_v2(float* ms, nint start, nint end);
    [LibraryImport(Lib)] public static partial int cuEventDestroy_v2(nint ev);
    [LibraryImport(Lib)] private static partial int cuGetErrorName(int error, byte** name);
    [LibraryImport(Lib)] private static partial int cuGetErrorString(int error, byte** text);

    public const int CC_MAJOR = 75, CC_MINOR = 76, SM_COUNT = 16, L2_BYTES = 38, MAX_SMEM_OPTIN = 97;
    /// <summary>CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: dynamic shared memory above 48 KiB must be opted in per function.</summary>
    public const int FUNC_MAX_DYNAMIC_SHARED = 8;
    public const int DefaultSharedLimit = 48 * 1024;

    private Driver(string path) => LibraryPath = path;

    /// <summary>Loads libcuda.so.1 and initialises the driver, or returns null with the reason.</summary>
    public static Driver? TryLoad(out string reason)
    {
        var (h, path, why) = NativeLibraries.TryLoad("cuda");
        if (h == 0) { reason = $"no CUDA driver: {why}"; return null; }
        var d = new Driver(path!);
        int r = cuInit(0);
        if (r != 0) { reason = $"cuInit failed: {ErrorText(r)}"; return null; }
        reason = "";
        return d;
    }

    public static string ErrorText(int code)
    {
        byte* name = null, text = null;
        cuGetErrorName(code, &name);
        cuGetErrorString(code, &text);
        return $"{(name == null ? $"CUDA error {code}" : Marshal.PtrToStringUTF8((nint)name))} ({code}): {(text == null ? "unknown error" : Marshal.PtrToStringUTF8((nint)text))}";
    }

    /// <summary>
    /// Whether a result code poisons the context (every later call in the process fails too). Not the range 700–719:
    /// 701 (out of resources: the launch never ran), 704/705 (peer access), 708, 709, 711, 712/713 leave the context
    /// usable; 214 (uncorrectable ECC) and 999 (unknown) do not. The set, from cuda.h's descriptions:
    /// 214 ECC_UNCORRECTABLE, 700 ILLEGAL_ADDRESS, 702 LAUNCH_TIMEOUT, 710 ASSERT, 714 HARDWARE_STACK_ERROR,
    /// 715 ILLEGAL_INSTRUCTION, 716 MISALIGNED_ADDRESS, 717 INVALID_ADDRESS_SPACE, 718 INVALID_PC, 719 LAUNCH_FAILED,
    /// 999 UNKNOWN.
    /// </summary>
    public static bool IsSticky(int result) => result is 214 or 700 or 702 or 710 or (>= 714 and <= 719) or 999;

    /// <summary>The exception for a non-zero result: sticky from the code, and then the message says so.</summary>
    public static CudaException Error(int result, string call, string text)
    {
        bool sticky = IsSticky(result);
        return new CudaException(call, text + (sticky ? " — the CUDA context is now unusable; restart the process" : ""), sticky);
    }

    /// <summary>
    /// cuLaunchKernel reports errors of work queued before it (launches are asynchronous): a sticky code there is
    /// an earlier kernel's fault, not this one's. The message says so and how to find the culprit.
    /// </summary>
    public static CudaException LaunchError(int result, string kernel, string text)
    {
        if (!IsSticky(result)) return new CudaException($"cuLaunchKernel {kernel}", text);
        return new CudaException($"cuLaunchKernel {kernel}",
            $"{text} — reported when launching {kernel}, but raised by an earlier kernel (launches are asynchronous); " +
            "rerun with TMCA_CUDA_SYNC=1 to stop at the kernel that faulted. The CUDA context is now unusable; restart the process", sticky: true);
    }

    /// <summary>Throws <see cref="CudaException"/> for a non-zero result (sticky per <see cref="IsSticky"/>).</summary>
    public static void Check(int result, string call)
    {
        if (result == 0) return;
        throw Error(result, call, ErrorText(result));
    }
}
