using System.Text.Json;
using System.Text.RegularExpressions;
using Tmca.Cuda;
using Tmca.Cuda.Kernels;
using Tmca.Cuda.Native;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>`tmca kernels --profile`: declared costs agree with what every lab kernel touches, resources come from the cubin
/// as ptxas reports them, and the occupancy rule reproduces the worked example of gpu-cost.md §5.</summary>
[Collection("device")]
public class KernelProfileTests
{
    [Fact]
    public void EveryLabKernelTouchesItsDeclaredBytesWithinTenPercentAndHasItsResources()
    {
        Device.RequireSimulator(new Tmca.Cuda.Sim.SimOptions()).Dispose();
        var rows = KernelProfile.Run();
        // the lab covers the model's kernels, backward ones included
        foreach (var k in new[] { "conv2d_forward_f32", "conv2d_backward_data_f32", "conv2d_backward_weight_f32", "depthwise_conv_backward_weight_f32",
                                  "layernorm_channels_first_backward_dx_f32", "softmax_backward_f32", "unary_backward_f32", "adamw_multi_f32", "tmca_similarity_lgte_f32" })
            Assert.Contains(rows, r => r.Kernel == k);
        var off = rows.Where(r => r.UniqueOverDeclared is not { } u || Math.Abs(u - 1) > 0.10).Select(r => $"{r.Kernel}: {r.UniqueBytes} touched, {r.DeclaredBytes} declared").ToList();
        Assert.True(off.Count == 0, "declared bytes differ from the measured unique bytes by more than 10 %:\n" + string.Join("\n", off));
        Assert.All(rows, r => Assert.Equal(0, r.Races));
        // issue 17's coalescing and bank-conflict fixes, at the lab's shapes: bias-gradient column sums read 32 consecutive
        // floats a warp (sum_to_f32 read 29 sectors a request), the implicit GEMM stores 16 consecutive columns a half warp
        // (was 14.7 forward, 32.0 transposed), the depthwise weight gradient's partial rows are padded (was 13.3 conflicts)
        KernelProfileRow Row(string k) => rows.Single(r => r.Kernel == k);
        Assert.True(Row("sum_rows_f32").SectorsPerLoadRequest <= 4.5, $"sum_rows_f32 reads {Row("sum_rows_f32").SectorsPerLoadRequest:0.0} sectors a request");
        foreach (var k in new[] { "conv2d_forward_f32", "conv_transpose2d_forward_f32" })
            Assert.True(Row(k).SectorsPerStoreRequest <= 8.5, $"{k} stores {Row(k).SectorsPerStoreRequest:0.0} sectors a request");
        Assert.True(Row("depthwise_conv_backward_weight_f32").BankConflictsPerRequest <= 1.0,
                    $"depthwise_conv_backward_weight_f32: {Row("depthwise_conv_backward_weight_f32").BankConflictsPerRequest:0.00} bank conflicts a request");
        // the TF32 tensor-core convolutions are in the lab, forward and backward
        foreach (var k in new[] { "conv2d_forward_tf32", "conv2d_backward_data_tf32", "conv2d_backward_weight_tf32", "conv_transpose2d_forward_tf32" })
            Assert.Contains(rows, r => r.Kernel == k);
        if (Nvrtc.TryLoad(out _) is null)
        {
            if (Device.InCi) Assert.Fail("CI must have NVRTC for kernel resources");
            return;   // resources need NVRTC: the rest was checked
        }
        Assert.All(rows, r => Assert.True(r.Registers > 0 && r.Occupancy is > 0 and <= 1, $"{r.Kernel}: registers {r.Registers}, occupancy {r.Occupancy}"));
        using var json = JsonDocument.Parse(KernelProfile.Json(rows));
        foreach (var e in json.RootElement.EnumerateArray())
            foreach (var f in new[] { "kernel", "sectors_per_load_request", "sectors_per_store_request", "bank_conflicts_per_request", "unique_bytes", "declared_bytes", "registers", "occupancy" })
                Assert.True(e.TryGetProperty(f, out _), f);
    }

    [Fact]
    public void RegistersReadFromTheCubinAreThosePtxasReports()
    {
        var nv = Nvrtc.TryLoad(out var why);
        if (nv is null)
        {
            if (Device.InCi) Assert.Fail($"CI must have NVRTC: {why}");
            Assert.Skip($"no NVRTC: {why}");
        }
        var compiler = new KernelCompiler(nv!);
        var (options, cubin) = compiler.OptionsFor(90);
        Assert.True(cubin, "NVRTC targets sm_90 with a cubin");
        var r = nv!.Compile(KernelSources.Source("norm.cu"), "norm.cu", KernelSources.Headers, [.. options, "--ptxas-options=-v"], cubin: true);
        var fromElf = CubinResources.Read(r.Image, 90).ToDictionary(k => k.Kernel);
        // ptxas: "Compiling entry function 'NAME' for 'sm_90'" … "Used N registers"
        var reported = Regex.Matches(r.Log, @"Compiling entry function '(\w+)'[\s\S]*?Used (\d+) registers").ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value));
        Assert.NotEmpty(reported);
        foreach (var (name, regs) in reported) Assert.Equal(regs, fromElf[name].Registers);
        Assert.Equal(KernelTable.All.Count(d => d.File == "norm.cu"), fromElf.Count);
    }

    [Theory]
    [InlineData(90, 256, 72, 26 * 1024, 3, 0.375, "registers")]   // gpu-cost.md §5's worked example
    [InlineData(80, 256, 72, 26 * 1024, 3, 0.375, "registers")]
    [InlineData(90, 256, 32, 0, 8, 1.0, "registers")]              // 32 regs: 64 warps by registers, 8 blocks of 8 warps
    [InlineData(90, 128, 40, 100 * 1024, 2, 0.125, "shared memory")]
    public void OccupancyFollowsTheOccupancyCalculatorsRules(int arch, int threads, int regs, int shared, int blocks, double fraction, string by)
    {
        var o = Occupancy.Of(arch, threads, regs, shared);
        Assert.Equal((blocks, fraction), (o.BlocksPerSm, o.Fraction));
        Assert.Equal(by, o.LimitedBy);
    }
}

/// <summary>The simulator refuses what a GPU refuses: static + dynamic shared memory past 48 KiB without an opt-in.</summary>
[Collection("device")]
public class SimSharedMemoryLimitTests
{
    [Fact]
    public void StaticPlusDynamicSharedMemoryIsCheckedAgainstTheLimit()
    {
        Assert.Null(Tmca.Cuda.Sim.SimRuntime.SharedMemoryProblem(0, 48 * 1024));
        Assert.Null(Tmca.Cuda.Sim.SimRuntime.SharedMemoryProblem(25088, 8 * 1024));
        Assert.Contains("25088 bytes of static + 24576 bytes of dynamic", Tmca.Cuda.Sim.SimRuntime.SharedMemoryProblem(25088, 24 * 1024));
    }

    [Fact]
    public unsafe void ADepthwiseWeightGradientLaunchWithTooMuchDynamicSharedMemoryIsRefused()
    {
        if (Nvrtc.TryLoad(out var why) is null)
        {
            if (Device.InCi) Assert.Fail($"CI must have NVRTC: {why}");
            Assert.Skip($"static shared memory comes from the cubin: no NVRTC ({why})");
        }
        using var rt = Device.RequireSimulator(new Tmca.Cuda.Sim.SimOptions());
        var k = rt.Kernel("depthwise.cu", "depthwise_conv_backward_weight_f32");   // 25,088 bytes of static shared memory
        var args = stackalloc void*[8];
        // 30 KiB of dynamic memory is under the old dynamic-only check (48 KiB) but over the limit with the static part
        var e = Assert.Throws<CudaException>(() => rt.Launch(k, "depthwise_conv_backward_weight_f32", new Dim3(1), new Dim3(128), 30 * 1024, args));
        Assert.Contains("static + 30720 bytes of dynamic shared memory", e.Message);
    }
}
