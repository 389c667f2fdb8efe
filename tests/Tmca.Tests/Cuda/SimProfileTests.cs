using Tmca.Cuda;
using Tmca.Cuda.Kernels;
using Tmca.Cuda.Sim;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>
/// The instrumented simulator (TMCA_SIM_PROFILE / TMCA_SIM_RACECHECK): kernels whose memory behaviour is known by
/// construction give exactly the counts Nsight Compute's model predicts (gpu-cost.md §3), and planted races are
/// reported while the same kernels with the race removed are not.
/// </summary>
[Collection("device")]
public unsafe class SimProfileTests
{
    /// <summary>test.sh's second pass runs the device suite with TMCA_SIM_RACECHECK=1: the shared simulator the device
    /// tests use must then be the race-checking build, or that pass checks nothing.</summary>
    [Fact]
    public void TheSharedSimulatorTakesItsSwitchesFromTheEnvironment()
    {
        var be = Device.Require();
        if (be.Runtime is not Tmca.Cuda.Sim.SimRuntime sim) { Assert.Skip("the device tests run on a GPU here, not the simulator"); return; }
        Assert.Equal(Tmca.Engine.TmcaSettings.Current.SimRaceCheck, sim.Options.RaceCheck);
        Assert.Equal(Tmca.Engine.TmcaSettings.Current.SimProfile, sim.Options.Profile);
    }

    private const string Source = """
        #include "common.cuh"

        // y[i] = x[i]: every warp reads and writes 32 consecutive floats (4 sectors a request)
        KERNEL void copy_contiguous(const float* x, float* y) {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            y[i] = x[i];
        }

        // y[i] = x[32 i]: each lane of a warp reads its own 128-byte line (32 sectors a request)
        KERNEL void gather_stride32(const float* x, float* y) {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            y[i] = x[32 * i];
        }

        // one warp writes and reads shared words t·stride: stride 1 is conflict-free, 2 is two-way, 32 is 32-way
        KERNEL void shared_stride(float* y, int stride) {
            __shared__ float s[32 * 32];
            int t = threadIdx.x;
            s[t * stride] = (float)t;
            __syncthreads();
            y[t] = s[t * stride];
        }

        // y[t] = x[t + 1] through shared memory: without a barrier, lane t reads what lane t + 1 writes
        KERNEL void shared_shift(const float* x, float* y, int barrier) {
            __shared__ float s[64];
            int t = threadIdx.x;
            s[t] = x[t];
            if (barrier) __syncthreads();
            y[t] = s[(t + 1) % blockDim.x];
        }

        // every block adds its x into y[0]: a plain += from several blocks loses updates on a GPU
        KERNEL void sum_blocks(const float* x, float* y, int atomic) {
            if (threadIdx.x != 0) return;
            if (atomic) atomicAdd(y, x[blockIdx.x]);
            else y[0] += x[blockIdx.x];
        }
        """;

    private static readonly (string, string)[] Headers = KernelSources.Headers.ToArray();

    private static (SimRuntime Rt, string Lib) Build(bool profile = true, bool racecheck = false)
    {
        var rt = Device.RequireSimulator(new SimOptions(Profile: profile, RaceCheck: racecheck));
        return (rt, rt.Compiler.Build("sim_profile_selftest.cu", Source, Headers, instrumented: true));
    }

    private static ulong Upload(SimRuntime rt, float[] data)
    {
        var p = rt.Alloc(data.Length * 4L);
        fixed (float* h = data) rt.CopyToDevice(p, h, data.Length * 4L);
        return p;
    }

    /// <summary>Launches with raw arguments: pointers (ulong) and ints.</summary>
    private static void Launch(SimRuntime rt, string lib, string kernel, Dim3 grid, Dim3 block, params object[] args)
    {
        var f = rt.LoadKernel(lib, kernel);
        var values = stackalloc ulong[args.Length];
        var ptrs = stackalloc void*[args.Length];
        for (int i = 0; i < args.Length; i++)
        {
            values[i] = args[i] switch { ulong p => p, int v => (ulong)(uint)v, _ => throw new ArgumentException("ulong or int") };
            ptrs[i] = values + i;
        }
        rt.Launch(f, kernel, grid, block, 0, ptrs);
    }

    [Fact]
    public void ContiguousFloatLoadsAndStoresTouchFourSectorsPerRequest()
    {
        var (rt, lib) = Build();
        using var _ = rt;
        ulong x = Upload(rt, new float[1024]), y = rt.Alloc(1024 * 4);
        Launch(rt, lib, "copy_contiguous", new Dim3(4), new Dim3(256), x, y);
        var p = Assert.Single(rt.Profiles);
        Assert.Equal(32UL, p.Counts.LoadRequests);     // 4 blocks × 8 warps, one load instruction each
        Assert.Equal(32UL, p.Counts.StoreRequests);
        Assert.Equal(4.0, p.SectorsPerLoadRequest);
        Assert.Equal(4.0, p.SectorsPerStoreRequest);
        Assert.Equal(4096UL, p.Counts.UniqueRead);
        Assert.Equal(4096UL, p.Counts.UniqueWritten);
        Assert.Equal(0.0, p.BankConflictsPerRequest);
    }

    [Fact]
    public void AStride32GatherTouchesThirtyTwoSectorsPerRequest()
    {
        var (rt, lib) = Build();
        using var _ = rt;
        ulong x = Upload(rt, new float[256 * 32]), y = rt.Alloc(256 * 4);
        Launch(rt, lib, "gather_stride32", new Dim3(1), new Dim3(256), x, y);
        var p = Assert.Single(rt.Profiles);
        Assert.Equal(32.0, p.SectorsPerLoadRequest);
        Assert.Equal(4.0, p.SectorsPerStoreRequest);
        Assert.Equal(256UL * 4, p.Counts.UniqueRead);   // one float of each line is read
    }

    [Theory]
    [InlineData(1, 0.0)]
    [InlineData(2, 1.0)]     // words 0, 2, …, 62: each even bank serves two words
    [InlineData(32, 31.0)]   // every lane in bank 0
    public void SharedStridesGiveTheirBankConflicts(int stride, double conflictsPerRequest)
    {
        var (rt, lib) = Build();
        using var _ = rt;
        ulong y = rt.Alloc(32 * 4);
        Launch(rt, lib, "shared_stride", new Dim3(1), new Dim3(32), y, stride);
        var p = Assert.Single(rt.Profiles);
        Assert.Equal(1UL, p.Counts.SharedStoreRequests);
        Assert.Equal(1UL, p.Counts.SharedLoadRequests);
        Assert.Equal(conflictsPerRequest, p.BankConflictsPerRequest);
    }

    [Fact]
    public void ASharedMemoryRaceInsideOneWarpIsReportedAndTheBarrierRemovesIt()
    {
        var (rt, lib) = Build(profile: false, racecheck: true);
        using (rt)
        {
            ulong x = Upload(rt, new float[32]), y = rt.Alloc(32 * 4);
            Launch(rt, lib, "shared_shift", new Dim3(1), new Dim3(32), x, y, 1);   // with the barrier: ordered
        }
        var (rt2, lib2) = Build(profile: false, racecheck: true);
        using (rt2)
        {
            ulong x = Upload(rt2, new float[32]), y = rt2.Alloc(32 * 4);
            var e = Assert.Throws<Tmca.Cuda.Native.CudaException>(() => Launch(rt2, lib2, "shared_shift", new Dim3(1), new Dim3(32), x, y, 0));
            // lane 0 runs first (lanes run one after another between meeting points): it reads s[1] before lane 1 writes it
            Assert.Contains("race (write after read) on shared memory at offset 4: read by block 0, thread 0", e.Message);
            Assert.Contains("then written by block 0, thread 1", e.Message);
            Assert.Contains("shared_shift", e.Message);
            Assert.True(e.Sticky);
        }
    }

    [Fact]
    public void ACrossBlockGlobalRaceIsReportedAndAtomicsRemoveIt()
    {
        var (rt, lib) = Build(profile: false, racecheck: true);
        using (rt)
        {
            ulong x = Upload(rt, [1, 2, 3, 4]), y = Upload(rt, [0]);
            Launch(rt, lib, "sum_blocks", new Dim3(4), new Dim3(32), x, y, 1);
            var r = new float[1];
            fixed (float* h = r) rt.CopyToHost(h, y, 4);
            Assert.Equal(10f, r[0]);
        }
        var (rt2, lib2) = Build(profile: false, racecheck: true);
        using (rt2)
        {
            ulong x = Upload(rt2, [1, 2, 3, 4]), y = Upload(rt2, [0]);
            var e = Assert.Throws<Tmca.Cuda.Native.CudaException>(() => Launch(rt2, lib2, "sum_blocks", new Dim3(4), new Dim3(32), x, y, 0));
            Assert.Contains("race (read after write) on global memory", e.Message);
            Assert.Contains("offset 0 of the device buffer", e.Message);
            Assert.Contains("written by block 0, thread 0", e.Message);
            Assert.Contains("read by block 1, thread 0", e.Message);
        }
    }
}
