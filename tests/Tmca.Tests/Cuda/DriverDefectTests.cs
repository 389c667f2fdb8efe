using Tmca.Cuda;
using Tmca.Cuda.Native;
using Tmca.Engine;
using Tmca.Engine.Verification;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>
/// The real-driver defects a read of the bindings found (issue 15): what only a driver exercises is tested as the
/// pure functions it goes through (result-code classification, messages, cuBLAS's leading dimensions); what the
/// simulator can run (the depthwise grid past 65,535 planes, the pool's synchronise before freeing) runs there.
/// </summary>
public class DriverDefectTests
{
    [Fact]
    public void StickyErrorsAreTheExplicitSetNotTheRange700To719()
    {
        int[] sticky = [214, 700, 702, 710, 714, 715, 716, 717, 718, 719, 999];
        int[] notSticky = [1, 2, 98, 200, 701, 703, 704, 705, 706, 708, 709, 711, 712, 713, 720];
        foreach (var r in sticky) Assert.True(Driver.IsSticky(r), $"{r} poisons the context");
        foreach (var r in notSticky) Assert.False(Driver.IsSticky(r), $"{r} leaves the context usable");
    }

    [Fact]
    public void ADriverErrorIsStickyFromItsResultCode()
    {
        var e = Driver.Error(700, "cuStreamSynchronize", "CUDA_ERROR_ILLEGAL_ADDRESS (700): an illegal memory access was encountered");
        Assert.True(e.Sticky);
        Assert.Contains("unusable", e.Message);
        var oor = Driver.Error(701, "cuLaunchKernel", "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES (701): too many resources requested for launch");
        Assert.False(oor.Sticky);
        Assert.DoesNotContain("unusable", oor.Message);
        Assert.True(Driver.Error(214, "cuMemcpyDtoHAsync_v2", "CUDA_ERROR_ECC_UNCORRECTABLE (214)").Sticky);
    }

    [Fact]
    public void AStickyErrorFromALaunchBlamesAnEarlierKernelAndSaysHowToFindIt()
    {
        var e = Driver.LaunchError(700, "gelu_f32", "CUDA_ERROR_ILLEGAL_ADDRESS (700): an illegal memory access was encountered");
        Assert.True(e.Sticky);
        Assert.Contains("earlier kernel", e.Message);
        Assert.Contains("TMCA_CUDA_SYNC=1", e.Message);
        // a launch refused for itself (out of resources) is this kernel's: no blame elsewhere
        var own = Driver.LaunchError(701, "gelu_f32", "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES (701): too many resources requested for launch");
        Assert.False(own.Sticky);
        Assert.DoesNotContain("earlier kernel", own.Message);
        Assert.Equal("cuLaunchKernel gelu_f32", own.Call);
    }

    private static GemmCall Call(bool ta, bool tb, int m, int n, int k) => new(ta, tb, m, n, k, 1, 0, 0, 0, 0, 0.5f, 0, 0, 1, false);

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void GemmWithKZeroPassesLeadingDimensionsOfAtLeastOne(bool ta, bool tb)
    {
        var (lda, ldb, ldc) = DriverRuntime.LeadingDimensions(Call(ta, tb, 5, 7, 0));
        Assert.True(lda >= 1 && ldb >= 1 && ldc >= 1, $"lda={lda} ldb={ldb} ldc={ldc}");
        // unchanged otherwise: cuBLAS's A is our B (k×n row-major, or n×k transposed), its B our A
        Assert.Equal((tb ? 3 : 7, ta ? 5 : 3, 7), DriverRuntime.LeadingDimensions(Call(ta, tb, 5, 7, 3)));
    }
}

/// <summary>The depthwise convolution past a grid's 65,535 rows of planes, on the device (the simulator in CI).</summary>
[Trait("Category", "GPU")]
[Collection("device")]
public class DepthwiseGridTests
{
    [Fact]
    public void DepthwiseConvWithMoreThan65535PlanesMatchesTheCpu()
    {
        var gpu = Device.Require();
        const int B = 2, C = 32769, H = 2, W = 2, k = 3;   // B·C = 65,538 planes: past the 65,535 a grid's y allows
        var r = new Rng(5);
        var x = r.F32([B, C, H, W]);
        var w = r.F32([C, 1, k, k]);
        var b = r.F32([C]);
        using var noGrad = Tape.NoGrad();
        var cpu = Ops.Conv2d(x, w, b, 1, k / 2, C);
        var dev = Ops.Conv2d(x.To(gpu), w.To(gpu), b.To(gpu), 1, k / 2, C).To(CpuBackend.Instance);
        var c = Comparison.Of("depthwise 65,538 planes", ToleranceKind.Forward, dev, cpu);
        Assert.True(c.Pass, $"max|a-b| {c.MaxAbs:E2}");
    }
}

/// <summary>The pool's EmptyCache synchronises the stream before it frees: a cached block may still be in use by
/// queued work. A runtime that records the order of calls (nothing else is asked of it here).</summary>
public class DevicePoolReleaseTests
{
    private sealed unsafe class RecordingRuntime : IDeviceRuntime
    {
        public readonly List<string> Calls = new();
        private ulong _next = 0x1000;
        public DeviceInfo Info { get; } = new("recording", 90, 1, 1L << 30, true, "recording");
        public bool ExactAllocations => false;
        public ulong Alloc(long bytes) { Calls.Add("alloc"); return _next += 0x100000; }
        public void Free(ulong ptr) => Calls.Add("free");
        public void Synchronize() => Calls.Add("sync");
        public (long Free, long Total) MemoryInfo() => (1L << 30, 1L << 30);
        public void Memset(ulong dst, byte value, long bytes) => throw new NotSupportedException();
        public void CopyToDevice(ulong dst, void* src, long bytes) => throw new NotSupportedException();
        public void CopyToHost(void* dst, ulong src, long bytes) => throw new NotSupportedException();
        public void CopyOnDevice(ulong dst, ulong src, long bytes) => throw new NotSupportedException();
        public nint Kernel(string file, string name) => throw new NotSupportedException();
        public void Launch(nint kernel, string name, Dim3 grid, Dim3 block, uint sharedBytes, void** args) => throw new NotSupportedException();
        public void Gemm(in GemmCall g) => throw new NotSupportedException();
        public float Time(Action body) => throw new NotSupportedException();
        public void Dispose() { }
    }

    [Fact]
    public void EmptyCacheSynchronisesBeforeItFrees()
    {
        var rt = new RecordingRuntime();
        var pool = new DevicePool(rt);
        var (a, sa) = pool.Rent(1000);
        var (b, sb) = pool.Rent(5000);
        pool.Return(a, sa); pool.Return(b, sb);
        pool.EmptyCache();
        Assert.Equal(["alloc", "alloc", "sync", "free", "free"], rt.Calls);
        Assert.Equal(0, pool.ReservedBytes);
    }
}

/// <summary>The roofline comes from the device it runs on: the table by name (H200's HBM is ≈4.8 TB/s, not 3.0).</summary>
public class DevicePeaksTests
{
    [Fact]
    public void PeaksAreLookedUpByTheDeviceNameMostSpecificFirst()
    {
        Assert.Equal(4800, DevicePeaks.For("NVIDIA H200")!.HbmGBs);
        Assert.Equal(3350, DevicePeaks.For("NVIDIA H100 80GB HBM3")!.HbmGBs);
        Assert.Equal(2000, DevicePeaks.For("NVIDIA H100 PCIe")!.HbmGBs);
        Assert.Equal(DevicePeaks.For("NVIDIA H200")!.Tf32TFlops, DevicePeaks.For("NVIDIA H100 80GB HBM3")!.Tf32TFlops);
        Assert.Null(DevicePeaks.For("CUDA simulator"));
    }
}
