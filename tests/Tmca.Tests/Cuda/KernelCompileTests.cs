using Tmca.Cuda;
using Tmca.Cuda.Native;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>Every kernel compiles with NVRTC for sm_80 and sm_90 with the run-time options. Needs NVRTC, not a GPU:
/// CI installs Debian's NVRTC 11.8 (tools/install-nvrtc.sh); the GPU machine has NVRTC 13.</summary>
public class KernelCompileTests
{
    /// <summary>NVRTC, or a skip that says why — a failure in CI, where ./test.sh installs it.</summary>
    private static Nvrtc RequireNvrtc()
    {
        var nv = Nvrtc.TryLoad(out var why);
        if (nv is null)
        {
            if (Device.InCi) Assert.Fail($"CI must compile every kernel: NVRTC not installed ({why})");
            Assert.Skip($"NVRTC not installed ({why}); tools/install-nvrtc.sh installs Debian's NVRTC 11.8");
        }
        return nv!;
    }

    [Theory]
    [InlineData(80)]
    [InlineData(90)]
    public void EveryKernelCompiles(int arch)
    {
        var nv = RequireNvrtc();
        var compiler = new KernelCompiler(nv!, Path.Combine(Path.GetTempPath(), "tmca-kernel-test-cache"));
        var files = KernelSources.Files.Concat(KernelSources.LabFiles).ToList();
        Assert.Contains("elementwise.cu", files);
        Assert.Contains("lab/tmca_v1.cu", files);
        Assert.Contains("adamw.cu", files);
        foreach (var f in files)
        {
            var r = compiler.Compile(f, arch, useCache: false);
            Assert.True(r.Image.Length > 1000, $"{f}: empty binary");
            Assert.DoesNotContain("warning", r.Log, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public void CompileErrorsNameTheFileAndLine()
    {
        var nv = RequireNvrtc();
        var e = Assert.Throws<CudaException>(() => nv!.Compile("extern \"C\" __global__ void k(float* x) { x[0] = undefined_thing; }", "broken.cu", [], ["--gpu-architecture=sm_80"], cubin: true));
        Assert.Contains("broken.cu", e.Message);
        Assert.Contains("undefined_thing", e.Message);
    }

    [Fact]
    public void AnUnwritableCacheOnlyCostsARecompile()
    {
        var nv = RequireNvrtc();
        var file = Path.GetTempFileName();   // a file where the cache folder should be: nothing can be created under it
        try
        {
            var compiler = new KernelCompiler(nv, Path.Combine(file, "cache"));
            Assert.True(compiler.Compile("softmax.cu", 80).Image.Length > 1000);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void DevicePoolSizeClasses()
    {
        Assert.Equal(512, DevicePool.SizeClass(1));
        Assert.Equal(1024, DevicePool.SizeClass(513));
        Assert.Equal(1L << 20, DevicePool.SizeClass((1L << 20) - 100));
        Assert.Equal(17L << 16, DevicePool.SizeClass((1L << 20) + 1));   // 1 + 1/16 MiB
        Assert.Equal(2L << 20, DevicePool.SizeClass((31L << 16) + 1));   // above 1 + 15/16 MiB → 2 MiB
        Assert.Equal(38L << 20, DevicePool.SizeClass(38_535_168));       // tiny's 32×96×56×56 activation (36.75 MiB): 38, not 40
        Assert.Equal(1L << 30, DevicePool.SizeClass(1L << 30));          // a power of two is its own class
        for (long b = 1; b < 1L << 34; b = b * 3 / 2 + 1)
        {
            long c = DevicePool.SizeClass(b);
            Assert.True(c >= b && (b < 1 << 20 || c - b <= b / 16), $"{b} B → {c} B");   // fits, wastes at most 1/16 above 1 MiB
        }
    }

    [Fact]
    public void WithoutADriverTheBackendSaysWhy()
    {
        var b = CudaBackend.TryCreate(out var why);
        if (b is not null) Assert.Skip("this machine has a GPU; the no-driver path cannot be observed here");
        Assert.False(string.IsNullOrWhiteSpace(why));
    }
}
