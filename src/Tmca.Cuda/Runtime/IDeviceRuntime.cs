namespace Tmca.Cuda;

/// <summary>A launch's grid or block size (CUDA's dim3).</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public override string ToString() => Y == 1 && Z == 1 ? $"{X}" : $"{X}×{Y}×{Z}";
}

/// <summary>What a device is: its name, architecture (e.g. 90 for sm_90), SM count and memory.</summary>
public sealed record DeviceInfo(string Name, int Arch, int SmCount, long TotalMemory, bool Simulated, string Description);

/// <summary>One strided batched row-major GEMM: C_i = α·op(A_i)·op(B_i) + β·C_i (see IBackend.Gemm); pointers in bytes.</summary>
public readonly record struct GemmCall(bool TransA, bool TransB, int M, int N, int K, float Alpha, ulong A, long StrideA,
                                       ulong B, long StrideB, float Beta, ulong C, long StrideC, int Batch, bool Tf32);

/// <summary>
/// The seam between the CUDA backend and a device: everything <see cref="CudaBackend"/>, its ops and
/// <see cref="DevicePool"/> ask of one. Two implementations: <see cref="DriverRuntime"/> (the CUDA driver API,
/// NVRTC and cuBLAS on a real GPU) and <see cref="Sim.SimRuntime"/> (the same kernels/*.cu compiled by the host
/// C++ compiler and run on the CPU). Nothing above this interface knows which one runs. Device pointers are
/// 64-bit addresses (CUdeviceptr); work is queued on one stream, in order.
/// </summary>
public unsafe interface IDeviceRuntime : IDisposable
{
    DeviceInfo Info { get; }
    /// <summary>True when every buffer must be allocated at its exact size and freed at once (memory checking:
    /// the pool must neither round sizes up nor cache freed blocks, or an overrun would land in slack).</summary>
    bool ExactAllocations { get; }

    // ---- memory ----
    /// <summary>A device buffer of at least <paramref name="bytes"/> bytes; <see cref="Native.DeviceOutOfMemoryException"/> when none fits.</summary>
    ulong Alloc(long bytes);
    void Free(ulong ptr);
    (long Free, long Total) MemoryInfo();
    void Memset(ulong dst, byte value, long bytes);
    /// <summary>Host → device; returns when the host memory may be reused.</summary>
    void CopyToDevice(ulong dst, void* src, long bytes);
    /// <summary>Device → host; waits for the work queued before it.</summary>
    void CopyToHost(void* dst, ulong src, long bytes);
    void CopyOnDevice(ulong dst, ulong src, long bytes);

    // ---- kernels ----
    /// <summary>The kernel <paramref name="name"/> of kernels/<paramref name="file"/>, compiled at first use (cached on disk).</summary>
    nint Kernel(string file, string name);
    /// <summary>Queues one launch. <paramref name="args"/>: one pointer per kernel parameter, to its value (cuLaunchKernel's kernelParams).</summary>
    void Launch(nint kernel, string name, Dim3 grid, Dim3 block, uint sharedBytes, void** args);
    void Gemm(in GemmCall g);

    // ---- ordering and timing ----
    void Synchronize();
    /// <summary>Milliseconds the work queued by <paramref name="body"/> took (device events; wall time on the simulator).</summary>
    float Time(Action body);
}
