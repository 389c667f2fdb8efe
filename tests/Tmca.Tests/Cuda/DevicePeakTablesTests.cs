using Tmca.Cuda;
using Tmca.Cuda.Plan;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>
/// Two tables name each GPU's peaks: DevicePeaks (keyed by the name the driver reports; `tmca doctor` and the kernel
/// lab's roofline fractions) and Plan/DeviceModels (keyed by `--gpu` id; the planner's bounds). A figure changed in one
/// and not the other would make the lab's "% of peak" and the plan's bound disagree about the same device.
/// </summary>
public sealed class DevicePeakTablesTests
{
    // the name cuDeviceGetName reports for each planner device
    public static TheoryData<string, string> DriverNames => new()
    {
        { "h100", "NVIDIA H100 80GB HBM3" },
        { "h200", "NVIDIA H200" },
        { "a100", "NVIDIA A100-SXM4-80GB" },
        { "l4", "NVIDIA L4" },
        { "rtx4090", "NVIDIA GeForce RTX 4090" },
    };

    [Theory, MemberData(nameof(DriverNames))]
    public void ThePlannersDeviceAndTheDriverNamesPeaksAgree(string id, string driverName)
    {
        var model = DeviceModels.Get(id);
        var peaks = DevicePeaks.For(driverName);
        Assert.NotNull(peaks);
        Assert.Equal(model.DatasheetBandwidth / 1e9, peaks!.HbmGBs, 0.5);
        Assert.Equal(model.Fp32Peak / 1e12, peaks.Fp32TFlops, 0.05);
        Assert.Equal(model.Tf32Peak / 1e12, peaks.Tf32TFlops, 0.05);
    }

    [Fact]
    public void EveryPlannerDeviceHasADriverName()
    {
        var named = DriverNames.Select(r => r.Data.Item1).ToHashSet();
        Assert.All(DeviceModels.All, d => Assert.Contains(d.Id, named));
    }
}
