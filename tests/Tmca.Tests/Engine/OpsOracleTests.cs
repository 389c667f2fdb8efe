using Tmca.Engine;
using Tmca.Engine.Verification;
using Xunit;

namespace Tmca.Tests;

/// <summary>The CPU backend against PyTorch, op by op.</summary>
public class OpsOracleTests
{
    [Fact]
    public void SharedOpsOraclePassesEveryCase()
    {
        var report = OpsOracle.Run(SafetensorsFile.Open(Paths.RequireShared("oracles/ops.safetensors")));
        var failures = string.Join("\n", report.Items.Where(i => !i.Pass).Select(i => $"{i.Name}: {i.MaxAbs:E2} {i.Note}"));
        Assert.True(report.Pass, failures);
        // every one of the 23 cases contributed its output
        Assert.Equal(23, report.Items.Count(i => i.Name.EndsWith(".out") || i.Name.Contains(".param_after")));
    }

    [Fact]
    public void SecondOracleWithOtherShapesAndSeedPasses()
    {
        // tests/fixtures/make_ops_oracle.py (PyTorch 1.13): odd sizes, batch 1, strided depthwise, groups, 4 AdamW steps
        var report = OpsOracle.Run(SafetensorsFile.Open(Paths.Fixture("ops-seed7.safetensors")));
        Assert.True(report.Pass, string.Join("\n", report.Items.Where(i => !i.Pass).Select(i => i.Name)));
        Assert.Equal(20, report.Items.Count(i => i.Name.EndsWith(".out") || i.Name.Contains(".param_after")));
    }

    [Fact]
    public void ComparisonFailsOutsideTolerance()
    {
        double[] b = [1.0, -2.0, 0.5];
        Assert.True(Comparison.Of("x", ToleranceKind.Forward, [1.0009, -2.0, 0.5], b).Pass);
        Assert.False(Comparison.Of("x", ToleranceKind.Forward, [1.0012, -2.0, 0.5], b).Pass);
        // gradients: elementwise 1e-4 + 1e-2|b| ...
        Assert.True(Comparison.Of("g", ToleranceKind.Gradient, [1.009, -2.0, 0.5], b).Pass);
        Assert.False(Comparison.Of("g", ToleranceKind.Gradient, [1.2, -2.0, 0.5], b).Pass);
        // ... or relative L2 ≤ 1e-3 when a near-zero entry is off elementwise
        Assert.True(Comparison.Of("g", ToleranceKind.Gradient, [1.0, -2.0, 0.5, 0.0015], [1.0, -2.0, 0.5, 0.0]).Pass);
        Assert.False(Comparison.Of("g", ToleranceKind.Gradient, [1.0, -2.0], [1.0, -2.0, 0.5]).Pass);
        Assert.False(Comparison.Of("n", ToleranceKind.Forward, [double.NaN], [1.0]).Pass);
    }
}
