using Tmca.Cli;
using Tmca.Cuda;
using Xunit;

namespace Tmca.Tests.Reliability;

/// <summary>`tmca kernels` goes through the same guard and exit codes as every command: a bad --arch is a usage error
/// before any work, a machine without NVRTC or without a GPU for --bench --device cuda is exit 2 with one line (a
/// missing device, as `--device cuda` is for every command), never "bad data" or a quiet 0.</summary>
[Collection("cli")]
public class KernelsCommandTests
{
    [Theory]
    [InlineData("8x", "--arch: '8x' is not an integer")]
    [InlineData("80,80", "--arch: a value is listed twice")]
    public void ABadArchIsAUsageErrorNotAStackTrace(string arch, string expected)
    {
        var (code, err) = Cli.Run("kernels", "--compile", "--arch", arch);
        Assert.True(code == ExitCodes.Usage, $"exit {code}: {err}");
        Assert.Single(err.Trim().Split('\n'));
        Assert.StartsWith("error: ", err);
        Assert.Contains(expected, err);
    }

    /// <summary>Without NVRTC `--compile` cannot work on this machine: one line naming the install script, exit 2 (it was 3,
    /// "fix the file"). NVRTC is installed where the tests run, so the command's compile step is given none.</summary>
    [Fact]
    public void WithoutNvrtcCompileIsAMissingToolNotBadData()
    {
        var (code, err) = Guarded(() => KernelsCommand.Compile(null, "none of libnvrtc.so.13, libnvrtc.so.12 could be loaded", [80]));
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("error: cannot compile kernels: NVRTC not found: none of libnvrtc.so.13, libnvrtc.so.12 could be loaded (Debian: tools/install-nvrtc.sh)", err.Trim());
    }

    [Fact]
    public void BenchOnCudaWithoutAGpuFailsWithOneLine()
    {
        if (CudaBackend.TryCreate(out _) is not null) Assert.Skip("this machine has a GPU; the no-GPU path cannot be observed here");
        var (code, err) = Cli.Run("kernels", "--bench", "--device", "cuda");
        Assert.True(code == ExitCodes.Usage, $"exit {code}: {err}");   // it was 3 ("bad data"); never 0
        Assert.Single(err.Trim().Split('\n'));
        Assert.StartsWith("error: kernel lab: no GPU (", err);
        Assert.DoesNotContain("crash", err);
    }

    [Fact]
    public void TheLabOnACpuIsAUsageError()
    {
        var (code, err) = Cli.Run("kernels", "--bench", "--device", "cpu");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("'cpu'", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    private static (int Code, string Err) Guarded(Func<int> body)
    {
        var err = new StringWriter();
        var prev = Console.Error;
        Console.SetError(err);
        try { return (Common.Guard(body), err.ToString()); }
        finally { Console.SetError(prev); }
    }
}
