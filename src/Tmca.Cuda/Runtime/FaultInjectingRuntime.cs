using Tmca.Cuda.Native;
using Tmca.Engine;

namespace Tmca.Cuda;

/// <summary>
/// Device faults on demand, at the seam (any runtime underneath; the tests use the simulator): the n-th allocation
/// fails with out-of-memory, or the n-th launch of a kernel fails — plainly, or stickily, after which every call fails
/// as a real driver's would. A test hook: the tests build it, and the CLI puts it under its backends only when TMCA_DEVICE_FAULT is set (Backends.cs):
/// "oom:N" (the N-th allocation and every later one), "launch:KERNEL:N" or "sticky:KERNEL:N" (the N-th launch of KERNEL; "*" is any kernel).
/// </summary>
public sealed unsafe class FaultInjectingRuntime(IDeviceRuntime inner, DeviceFault plan) : IDeviceRuntime
{
    private long _allocs, _launches;
    private CudaException? _sticky;

    public DeviceInfo Info => inner.Info;
    public bool ExactAllocations => inner.ExactAllocations;

    private void Check() { if (_sticky is not null) throw new CudaException(_sticky.Call, "an earlier error left the context unusable (injected)", sticky: true); }

    public ulong Alloc(long bytes)
    {
        Check();
        if (plan.Kind == "oom" && ++_allocs >= plan.Count)   // and every one after: a full device stays full (the pool retries once)
        {
            var (free, total) = inner.MemoryInfo();
            throw new DeviceOutOfMemoryException("cuMemAlloc (injected)", bytes, free, total, "");
        }
        return inner.Alloc(bytes);
    }

    public void Launch(nint kernel, string name, Dim3 grid, Dim3 block, uint sharedBytes, void** args)
    {
        Check();
        if (plan.Kind is "launch" or "sticky" && (plan.Kernel == "*" || plan.Kernel == name) && ++_launches == plan.Count)
        {
            bool sticky = plan.Kind == "sticky";
            var e = new CudaException("cuLaunchKernel", sticky ? "CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered (injected)"
                                                               : "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: too many resources requested for launch (injected)", sticky);
            if (sticky) _sticky = e;
            throw e;
        }
        inner.Launch(kernel, name, grid, block, sharedBytes, args);
    }

    public void Free(ulong ptr) { if (_sticky is null) inner.Free(ptr); }
    public (long Free, long Total) MemoryInfo() => inner.MemoryInfo();
    public void Memset(ulong dst, byte value, long bytes) { Check(); inner.Memset(dst, value, bytes); }
    public void CopyToDevice(ulong dst, void* src, long bytes) { Check(); inner.CopyToDevice(dst, src, bytes); }
    public void CopyToHost(void* dst, ulong src, long bytes) { Check(); inner.CopyToHost(dst, src, bytes); }
    public void CopyOnDevice(ulong dst, ulong src, long bytes) { Check(); inner.CopyOnDevice(dst, src, bytes); }
    public nint Kernel(string file, string name) => inner.Kernel(file, name);
    public void Gemm(in GemmCall g) { Check(); inner.Gemm(g); }
    public void Synchronize() { Check(); inner.Synchronize(); }
    public float Time(Action body) => inner.Time(body);
    public void Dispose() => inner.Dispose();
}
