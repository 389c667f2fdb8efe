using Tmca.Cuda;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>The kernel lab validates every kernel (the fused TMCA kernels' naive v1 and tuned v2 included) against the
/// CPU before timing it. On the simulator (CI) the validation is the point; the times are the CPU's.</summary>
[Collection("device")]
public class KernelLabTests
{
    [Fact]
    public void EveryKernelInTheLabValidates()
    {
        var device = Device.Require();
        var rows = KernelLab.Run(device, repeats: 1);
        Assert.True(rows.Count >= 24, $"{rows.Count} rows");
        var failed = rows.Where(r => !(r.Validation.StartsWith("ok") || r.Validation == "parity test")).ToList();
        Assert.True(failed.Count == 0, string.Join("\n", failed.Select(r => $"{r.Kernel}: {r.Validation}")));
        Assert.Contains(rows, r => r.Kernel.Contains("v1 naive") && r.Kernel.Contains("target logits"));
        Assert.Contains(rows, r => r.Kernel.Contains("v2 tuned") && r.Kernel.Contains("similarity"));
        Assert.Contains("| kernel | shape |", KernelLab.Markdown(rows, device, 3000, 67, 495));
    }
}
