using Tmca.Cuda;
using Tmca.Cuda.Kernels;
using Tmca.Cuda.Native;
using Tmca.Cuda.Sim;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>
/// The CUDA simulator catches the bugs it exists to catch — an out-of-bounds write (memcheck), a missing
/// __syncthreads (a wrong result in one of the two thread orders), a barrier in a divergent branch and a
/// barrier/shuffle deadlock (reported, not hung) — and its warp built-ins follow the CUDA programming guide.
/// Each test builds its own small kernel file and runs it on a fresh simulator.
/// </summary>
[Collection("device")]
public unsafe class SimulatorTests
{
    private const string Source = """
        #include "common.cuh"

        // y[i] = x[i] for i <= n: one element too many, the bug memcheck exists to catch
        KERNEL void copy_off_by_one(const float* x, float* y, i64 n) {
            i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
            if (i <= n) y[i] = x[i < n ? i : 0];
        }

        // y[t] = x[t - 1] through shared memory, without the barrier between the write and the read
        KERNEL void shift_no_barrier(const float* x, float* y) {
            __shared__ float s[256];
            int t = threadIdx.x;
            s[t] = x[t];
            y[t] = t > 0 ? s[t - 1] : 0.0f;
        }

        KERNEL void shift_with_barrier(const float* x, float* y) {
            __shared__ float s[256];
            int t = threadIdx.x;
            s[t] = x[t];
            __syncthreads();
            y[t] = t > 0 ? s[t - 1] : 0.0f;
        }

        // half the block waits at one __syncthreads, the other half at another
        KERNEL void barrier_in_branch(float* y) {
            if (threadIdx.x < 16) {
                y[threadIdx.x] = 1.0f;
                __syncthreads();
            } else {
                __syncthreads();
                y[threadIdx.x] = 2.0f;
            }
        }

        // half the warp waits at __syncthreads, the other half at a shuffle that needs the first half: a GPU hangs
        KERNEL void barrier_vs_shuffle(float* y) {
            float v = threadIdx.x;
            if (threadIdx.x < 16) __syncthreads();
            else v = __shfl_xor_sync(0xffffffffu, v, 1);
            y[threadIdx.x] = v;
        }

        // threads that return before a barrier the others reach (tolerated by GPUs, undefined: a warning)
        KERNEL void exit_before_barrier(float* y) {
            if (threadIdx.x >= 16) return;
            __syncthreads();
            y[threadIdx.x] = 1.0f;
        }

        KERNEL void write_far_away(float* y) { y[(i64)1 << 40] = 1.0f; }

        // every warp built-in, for 64 threads (two warps); out: 8 × 64
        KERNEL void warp_builtins(const float* x, float* out, int width) {
            int t = threadIdx.x;
            float v = x[t];
            out[0 * 64 + t] = __shfl_sync(0xffffffffu, v, 3, width);
            out[1 * 64 + t] = __shfl_up_sync(0xffffffffu, v, 2, width);
            out[2 * 64 + t] = __shfl_down_sync(0xffffffffu, v, 5, width);
            out[3 * 64 + t] = __shfl_xor_sync(0xffffffffu, v, 6, width);
            unsigned b = __ballot_sync(0xffffffffu, v > 0.0f);
            out[4 * 64 + t] = (float)(b & 0xffffu);
            out[5 * 64 + t] = (float)(b >> 16);
            out[6 * 64 + t] = (float)__any_sync(0xffffffffu, v > 1.5f);
            out[7 * 64 + t] = (float)__all_sync(0xffffffffu, v > -2.5f);
        }
        """;

    private static readonly (string, string)[] Headers = KernelSources.Headers.ToArray();

    private static (SimRuntime Rt, string Lib) Build(SimOptions options)
    {
        var rt = Device.RequireSimulator(options);
        return (rt, rt.Compiler.Build("sim_selftest.cu", Source, Headers));
    }

    private static ulong Upload(SimRuntime rt, float[] data)
    {
        var p = rt.Alloc(data.Length * 4L);
        fixed (float* h = data) rt.CopyToDevice(p, h, data.Length * 4L);
        return p;
    }

    private static float[] Download(SimRuntime rt, ulong p, int n)
    {
        var r = new float[n];
        fixed (float* h = r) rt.CopyToHost(h, p, n * 4L);
        return r;
    }

    /// <summary>Launches through a descriptor and KernelArgs, as the backend does.</summary>
    private static void Launch(SimRuntime rt, string lib, KernelDescriptor d, Dim3 grid, Dim3 block, Action<KernelArgsBuilder> args)
    {
        var b = new KernelArgsBuilder(d);
        args(b);
        var f = rt.LoadKernel(lib, d.Name);
        var ptrs = stackalloc void*[d.Params.Length];
        b.Fill(ptrs, () => rt.Launch(f, d.Name, grid, block, 0, ptrs));
    }

    /// <summary>KernelArgs is a ref struct; tests collect the values first, then build it in one frame.</summary>
    private sealed class KernelArgsBuilder(KernelDescriptor d)
    {
        private readonly List<object> _values = new();
        public KernelArgsBuilder Ptr(ulong p) { _values.Add(p); return this; }
        public KernelArgsBuilder I64(long v) { _values.Add(v); return this; }
        public KernelArgsBuilder I32(int v) { _values.Add(v); return this; }
        public void Fill(void** ptrs, Action launch)
        {
            var a = new KernelArgs(d);
            foreach (var v in _values)
                switch (v)
                {
                    case ulong p: a.Ptr(p); break;
                    case long l: a.I64(l); break;
                    case int i: a.I32(i); break;
                }
            a.Pointers(ptrs);
            launch();
        }
    }

    private static KernelDescriptor D(string name, params string[] ps) => new("sim_selftest.cu", name, ps, LaunchRule.Explicit);

    [Fact]
    public void MemcheckCatchesAnOutOfBoundsWriteAndNamesTheBuffer()
    {
        var (rt, lib) = Build(new SimOptions(Memcheck: true));
        const int n = 1000;
        var x = Upload(rt, new float[n]);
        var y = rt.Alloc(n * 4L);
        var e = Assert.Throws<CudaException>(() =>
            Launch(rt, lib, D("copy_off_by_one", "const float*", "float*", "i64"), new Dim3(4), new Dim3(256), a => a.Ptr(x).Ptr(y).I64(n)));
        Assert.Contains("ILLEGAL_ADDRESS", e.Message);
        Assert.Contains("copy_off_by_one", e.Message);
        Assert.Contains("thread (232,0,0)", e.Message);   // block 3, thread 232 is element 1000
        Assert.Contains($"offset {n * 4} of a {n * 4}-byte device buffer", e.Message);
        Assert.True(e.Sticky);
        // The context is poisoned, as a GPU's would be: the next call fails with the first error.
        var again = Assert.Throws<CudaException>(() => rt.Alloc(16));
        Assert.Contains("unusable", again.Message);
    }

    [Fact]
    public void MemcheckCatchesAUseAfterFree()
    {
        var (rt, lib) = Build(new SimOptions(Memcheck: true));
        var x = Upload(rt, new float[64]);
        var y = rt.Alloc(64 * 4L);
        rt.Free(y);
        var e = Assert.Throws<CudaException>(() =>
            Launch(rt, lib, D("copy_off_by_one", "const float*", "float*", "i64"), new Dim3(1), new Dim3(32), a => a.Ptr(x).Ptr(y).I64(16)));
        Assert.Contains("already freed", e.Message);
    }

    [Fact]
    public void WithoutMemcheckAWildWriteIsStillAnIllegalAddressNotACrash()
    {
        var (rt, lib) = Build(new SimOptions());
        var y = rt.Alloc(64);
        var e = Assert.Throws<CudaException>(() => Launch(rt, lib, D("write_far_away", "float*"), new Dim3(1), new Dim3(32), a => a.Ptr(y)));
        Assert.Contains("ILLEGAL_ADDRESS", e.Message);
        Assert.Contains("write_far_away", e.Message);
    }

    [Fact]
    public void AMissingBarrierGivesAWrongResultInOneOfTheTwoThreadOrders()
    {
        var x = Enumerable.Range(0, 256).Select(i => (float)(i + 1)).ToArray();
        var expected = Enumerable.Range(0, 256).Select(i => i == 0 ? 0f : i).ToArray();
        float[] Run(bool reverse, string kernel)
        {
            var (rt, lib) = Build(new SimOptions(ReverseThreadOrder: reverse));
            var px = Upload(rt, x);
            var py = rt.Alloc(256 * 4L);
            Launch(rt, lib, D(kernel, "const float*", "float*"), new Dim3(1), new Dim3(256), a => a.Ptr(px).Ptr(py));
            return Download(rt, py, 256);
        }
        // With the barrier: right in both orders.
        Assert.Equal(expected, Run(false, "shift_with_barrier"));
        Assert.Equal(expected, Run(true, "shift_with_barrier"));
        // Without it: the forward order happens to run the writer before the reader; the reverse order does not,
        // and reads shared memory nobody wrote in this block (NaN).
        Assert.Equal(expected, Run(false, "shift_no_barrier"));
        var reverse = Run(true, "shift_no_barrier");
        Assert.NotEqual(expected, reverse);
        Assert.True(float.IsNaN(reverse[255]), $"y[255] = {reverse[255]}");
    }

    [Fact]
    public void ABarrierInADivergentBranchIsReportedNotHung()
    {
        var (rt, lib) = Build(new SimOptions());
        var y = rt.Alloc(32 * 4L);
        var e = Assert.Throws<CudaException>(() => Launch(rt, lib, D("barrier_in_branch", "float*"), new Dim3(1), new Dim3(32), a => a.Ptr(y)));
        Assert.Contains("divergent __syncthreads", e.Message);
        Assert.Contains("barrier_in_branch", e.Message);
        Assert.Contains("sim_selftest.cu:29", e.Message);   // the first half's barrier
        Assert.Contains("sim_selftest.cu:31", e.Message);   // the second half's
    }

    [Fact]
    public void ABarrierAgainstAShuffleIsADeadlockReportedNotHung()
    {
        var (rt, lib) = Build(new SimOptions());
        var y = rt.Alloc(32 * 4L);
        var e = Assert.Throws<CudaException>(() => Launch(rt, lib, D("barrier_vs_shuffle", "float*"), new Dim3(1), new Dim3(32), a => a.Ptr(y)));
        Assert.Contains("deadlock in kernel barrier_vs_shuffle, block (0,0,0)", e.Message);
        Assert.Contains("15@sim_selftest.cu:39", e.Message);
        Assert.Contains("16@__shfl_xor_sync", e.Message);
    }

    [Fact]
    public void ExitingBeforeABarrierIsAWarning()
    {
        var (rt, lib) = Build(new SimOptions());
        var y = Upload(rt, new float[32]);
        Launch(rt, lib, D("exit_before_barrier", "float*"), new Dim3(1), new Dim3(32), a => a.Ptr(y));
        Assert.Equal(Enumerable.Range(0, 32).Select(i => i < 16 ? 1f : 0f).ToArray(), Download(rt, y, 32));
        Assert.Contains(rt.Warnings, w => w.Contains("16 thread(s) exited while 16 wait at __syncthreads"));
    }

    [Theory]
    [InlineData(32)]
    [InlineData(8)]
    [InlineData(4)]
    public void WarpBuiltinsFollowTheProgrammingGuide(int width)
    {
        var (rt, lib) = Build(new SimOptions());
        var x = Enumerable.Range(0, 64).Select(i => (float)(i % 7 - 3)).ToArray();   // -3..3
        var px = Upload(rt, x);
        var po = rt.Alloc(8 * 64 * 4L);
        Launch(rt, lib, D("warp_builtins", "const float*", "float*", "int"), new Dim3(1), new Dim3(64), a => a.Ptr(px).Ptr(po).I32(width));
        var o = Download(rt, po, 8 * 64);
        for (int t = 0; t < 64; t++)
        {
            int warp = t / 32 * 32, lane = t % 32, sub = lane / width * width, pos = lane % width;
            float At(int l) => x[warp + l];
            Assert.Equal(At(sub + 3 % width), o[t]);
            Assert.Equal(pos - 2 < 0 ? x[t] : At(lane - 2), o[64 + t]);
            Assert.Equal(pos + 5 >= width ? x[t] : At(lane + 5), o[128 + t]);
            int src = lane ^ 6;
            Assert.Equal(src >= sub + width ? x[t] : At(src), o[192 + t]);
            uint ballot = 0;
            for (int l = 0; l < 32; l++) if (At(l) > 0) ballot |= 1u << l;
            Assert.Equal(ballot & 0xffff, (uint)o[256 + t]);
            Assert.Equal(ballot >> 16, (uint)o[320 + t]);
            Assert.Equal(Enumerable.Range(0, 32).Any(l => At(l) > 1.5f) ? 1f : 0f, o[384 + t]);
            Assert.Equal(Enumerable.Range(0, 32).All(l => At(l) > -2.5f) ? 1f : 0f, o[448 + t]);
        }
    }

    [Fact]
    public void SimulatedMemoryHasACap()
    {
        var rt = Device.RequireSimulator(new SimOptions(MemoryBytes: 1 << 20));
        rt.Alloc(600_000);
        var e = Assert.Throws<DeviceOutOfMemoryException>(() => rt.Alloc(600_000));
        Assert.Equal(600_000, e.Requested);
        Assert.True(e.Free < 600_000);
        Assert.Contains("TMCA_SIM_MEMORY", e.Message);
    }

    [Fact]
    public void CompileErrorsNameTheFileAndLine()
    {
        var rt = Device.RequireSimulator(new SimOptions());
        var e = Assert.Throws<CudaException>(() => rt.Compiler.Build("broken_sim.cu", "#include \"common.cuh\"\nKERNEL void k(float* x) {\n  x[0] = undefined_thing;\n}\n", Headers));
        Assert.Contains("broken_sim.cu:3", e.Message);
        Assert.Contains("undefined_thing", e.Message);
    }
}
