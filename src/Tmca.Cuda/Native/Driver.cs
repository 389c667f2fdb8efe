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
    [LibraryImport(Lib)] public static partial int cuEventDestroy_v2(nint ev);
    [LibraryImport(Lib)] private static partial int cuGetErrorName(int error, byte** name);
    [LibraryImport(Lib)] private static partial int cuGetErrorString(int error, byte** text);

    public const int CC_MAJOR = 75, CC_MINOR = 76, SM_COUNT = 16, L2_BYTES = 38, MAX_SMEM_OPTIN = 97;

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

    /// <summary>Throws <see cref="CudaException"/> for a non-zero result. Errors 700–719 poison the context:
    /// the message says so, because every later call in this process will fail too.</summary>
    public static void Check(int result, string call)
    {
        if (result == 0) return;
        string sticky = result is >= 700 and <= 719 ? " — the CUDA context is now unusable; restart the process" : "";
        throw new CudaException(call, ErrorText(result) + sticky);
    }
}
