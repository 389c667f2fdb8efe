using System.Runtime.InteropServices;

namespace Tmca.Cuda.Native;

/// <summary>
/// The CUDA driver API (libcuda.so.1), bound to the versioned symbols (cuMemAlloc_v2 and friends: the plain names
/// are the old 32-bit-size ABI). Every call goes through <see cref="Check"/>, which turns an error code into a
/// <see cref="CudaException"/> carrying cuGetErrorName and cuGetErrorString.
/// </summary>
public sealed unsafe class Driver
{
    public string LibraryPath { get; }
    private readonly nint _lib;

    public readonly delegate* unmanaged<uint, int> cuInit;
    public readonly delegate* unmanaged<int*, int> cuDriverGetVersion;
    public readonly delegate* unmanaged<int*, int> cuDeviceGetCount;
    public readonly delegate* unmanaged<int*, int, int> cuDeviceGet;
    public readonly delegate* unmanaged<int*, int, int, int> cuDeviceGetAttribute;
    public readonly delegate* unmanaged<byte*, int, int, int> cuDeviceGetName;
    public readonly delegate* unmanaged<nuint*, int, int> cuDeviceTotalMem_v2;
    public readonly delegate* unmanaged<nint*, int, int> cuDevicePrimaryCtxRetain;
    public readonly delegate* unmanaged<int, int> cuDevicePrimaryCtxRelease_v2;
    public readonly delegate* unmanaged<nint, int> cuCtxSetCurrent;
    public readonly delegate* unmanaged<int> cuCtxSynchronize;
    public readonly delegate* unmanaged<nint*, void*, int> cuModuleLoadData;
    public readonly delegate* unmanaged<nint*, nint, byte*, int> cuModuleGetFunction;
    public readonly delegate* unmanaged<nint, int> cuModuleUnload;
    public readonly delegate* unmanaged<nint, int, int, int> cuFuncSetAttribute;
    public readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> cuLaunchKernel;
    public readonly delegate* unmanaged<ulong*, nuint, int> cuMemAlloc_v2;
    public readonly delegate* unmanaged<ulong, int> cuMemFree_v2;
    public readonly delegate* unmanaged<nuint*, nuint*, int> cuMemGetInfo_v2;
    public readonly delegate* unmanaged<ulong, void*, nuint, nint, int> cuMemcpyHtoDAsync_v2;
    public readonly delegate* unmanaged<void*, ulong, nuint, nint, int> cuMemcpyDtoHAsync_v2;
    public readonly delegate* unmanaged<ulong, ulong, nuint, nint, int> cuMemcpyDtoDAsync_v2;
    public readonly delegate* unmanaged<ulong, byte, nuint, nint, int> cuMemsetD8Async;
    public readonly delegate* unmanaged<nint*, uint, int> cuStreamCreate;
    public readonly delegate* unmanaged<nint, int> cuStreamSynchronize;
    public readonly delegate* unmanaged<nint, int> cuStreamDestroy_v2;
    public readonly delegate* unmanaged<nint*, uint, int> cuEventCreate;
    public readonly delegate* unmanaged<nint, nint, int> cuEventRecord;
    public readonly delegate* unmanaged<nint, int> cuEventSynchronize;
    public readonly delegate* unmanaged<float*, nint, nint, int> cuEventElapsedTime;
    public readonly delegate* unmanaged<nint, int> cuEventDestroy_v2;
    private readonly delegate* unmanaged<int, byte**, int> cuGetErrorName;
    private readonly delegate* unmanaged<int, byte**, int> cuGetErrorString;

    public const int CC_MAJOR = 75, CC_MINOR = 76, SM_COUNT = 16, L2_BYTES = 38, MAX_SMEM_OPTIN = 97;

    private Driver(nint lib, string path)
    {
        _lib = lib; LibraryPath = path;
        nint E(string s) => NativeLibraries.Export(lib, "libcuda.so.1", s);
        cuInit = (delegate* unmanaged<uint, int>)E("cuInit");
        cuDriverGetVersion = (delegate* unmanaged<int*, int>)E("cuDriverGetVersion");
        cuDeviceGetCount = (delegate* unmanaged<int*, int>)E("cuDeviceGetCount");
        cuDeviceGet = (delegate* unmanaged<int*, int, int>)E("cuDeviceGet");
        cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)E("cuDeviceGetAttribute");
        cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)E("cuDeviceGetName");
        cuDeviceTotalMem_v2 = (delegate* unmanaged<nuint*, int, int>)E("cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, int>)E("cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease_v2 = (delegate* unmanaged<int, int>)E("cuDevicePrimaryCtxRelease_v2");
        cuCtxSetCurrent = (delegate* unmanaged<nint, int>)E("cuCtxSetCurrent");
        cuCtxSynchronize = (delegate* unmanaged<int>)E("cuCtxSynchronize");
        cuModuleLoadData = (delegate* unmanaged<nint*, void*, int>)E("cuModuleLoadData");
        cuModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)E("cuModuleGetFunction");
        cuModuleUnload = (delegate* unmanaged<nint, int>)E("cuModuleUnload");
        cuFuncSetAttribute = (delegate* unmanaged<nint, int, int, int>)E("cuFuncSetAttribute");
        cuLaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)E("cuLaunchKernel");
        cuMemAlloc_v2 = (delegate* unmanaged<ulong*, nuint, int>)E("cuMemAlloc_v2");
        cuMemFree_v2 = (delegate* unmanaged<ulong, int>)E("cuMemFree_v2");
        cuMemGetInfo_v2 = (delegate* unmanaged<nuint*, nuint*, int>)E("cuMemGetInfo_v2");
        cuMemcpyHtoDAsync_v2 = (delegate* unmanaged<ulong, void*, nuint, nint, int>)E("cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync_v2 = (delegate* unmanaged<void*, ulong, nuint, nint, int>)E("cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync_v2 = (delegate* unmanaged<ulong, ulong, nuint, nint, int>)E("cuMemcpyDtoDAsync_v2");
        cuMemsetD8Async = (delegate* unmanaged<ulong, byte, nuint, nint, int>)E("cuMemsetD8Async");
        cuStreamCreate = (delegate* unmanaged<nint*, uint, int>)E("cuStreamCreate");
        cuStreamSynchronize = (delegate* unmanaged<nint, int>)E("cuStreamSynchronize");
        cuStreamDestroy_v2 = (delegate* unmanaged<nint, int>)E("cuStreamDestroy_v2");
        cuEventCreate = (delegate* unmanaged<nint*, uint, int>)E("cuEventCreate");
        cuEventRecord = (delegate* unmanaged<nint, nint, int>)E("cuEventRecord");
        cuEventSynchronize = (delegate* unmanaged<nint, int>)E("cuEventSynchronize");
        cuEventElapsedTime = (delegate* unmanaged<float*, nint, nint, int>)E("cuEventElapsedTime");
        cuEventDestroy_v2 = (delegate* unmanaged<nint, int>)E("cuEventDestroy_v2");
        cuGetErrorName = (delegate* unmanaged<int, byte**, int>)E("cuGetErrorName");
        cuGetErrorString = (delegate* unmanaged<int, byte**, int>)E("cuGetErrorString");
    }

    /// <summary>Loads libcuda.so.1 and initialises the driver, or returns null with the reason.</summary>
    public static Driver? TryLoad(out string reason)
    {
        var (h, path, why) = NativeLibraries.TryLoad(NativeLibraries.Driver);
        if (h == 0) { reason = $"no CUDA driver: {why}"; return null; }
        Driver d;
        try { d = new Driver(h, path!); }
        catch (CudaException e) { reason = e.Message; return null; }
        int r = d.cuInit(0);
        if (r != 0) { reason = $"cuInit failed: {d.ErrorText(r)}"; return null; }
        reason = "";
        return d;
    }

    public string ErrorText(int code)
    {
        byte* name = null, text = null;
        cuGetErrorName(code, &name);
        cuGetErrorString(code, &text);
        return $"{(name == null ? $"CUDA error {code}" : Marshal.PtrToStringUTF8((nint)name))} ({code}): {(text == null ? "unknown error" : Marshal.PtrToStringUTF8((nint)text))}";
    }

    /// <summary>Throws <see cref="CudaException"/> for a non-zero result. Errors 700–719 poison the context:
    /// the message says so, because every later call in this process will fail too.</summary>
    public void Check(int result, string call)
    {
        if (result == 0) return;
        string sticky = result is >= 700 and <= 719 ? " — the CUDA context is now unusable; restart the process" : "";
        throw new CudaException(call, ErrorText(result) + sticky);
    }
}
