using Tmca.Engine;
using Tmca.Engine.Verification;
using Tmca.Model.Verification;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>
/// The reference files on the CUDA backend (the GPU, or the simulator in CI; TF32 off), with the tolerances of
/// ../shared/oracles/README.md: every op case, the whole model with every gradient and three AdamW steps, the
/// Hugging Face encoders. The same checks as on the CPU, the same number of them.
/// </summary>
[Trait("Category", "GPU")]
[Collection("device")]
public class DeviceOracleTests
{
    [Theory]
    [InlineData("model-tmca-full.safetensors", 562)]
    [InlineData("model-tmca-global-deepest.safetensors", 526)]
    [InlineData("model-notext.safetensors", 278)]
    public void ModelMatchesTheReference(string file, int expectedChecks)
    {
        var device = Device.Require();
        var report = ModelOracle.Run(SafetensorsFile.Open(Paths.RequireShared($"oracles/{file}")), device);
        Assert.True(report.Pass, OracleFailures.Describe(report));
        Assert.Equal(expectedChecks, report.Items.Count);
    }

    /// <summary>Other configs, flags, batch sizes and seeds (committed fixtures: these run even without ../shared).</summary>
    [Theory]
    [InlineData("model-global-pixonly.safetensors")]
    [InlineData("model-target-lgte-b2.safetensors")]
    public void ModelMatchesOtherReferenceFiles(string file)
    {
        var device = Device.Require();
        var report = ModelOracle.Run(SafetensorsFile.Open(Paths.Fixture(file)), device);
        Assert.True(report.Pass, OracleFailures.Describe(report));
        Assert.True(report.Items.Count > 500);
    }

    [Theory]
    [InlineData("hf/convnext.safetensors")]
    [InlineData("hf/bert.safetensors")]
    public void EncodersMatchHuggingFace(string file)
    {
        var device = Device.Require();
        var report = HfEncoderOracle.Run(SafetensorsFile.Open(Paths.RequireShared($"oracles/{file}")), device);
        Assert.True(report.Pass, OracleFailures.Describe(report));
        Assert.Contains(report.Items, i => i.Name.StartsWith("grad.embeddings."));
    }

    [Fact]
    public void OpsOraclesPassEveryCase()
    {
        var device = Device.Require();
        var shipped = OpsOracle.Run(SafetensorsFile.Open(Paths.RequireShared("oracles/ops.safetensors")), device);
        Assert.True(shipped.Pass, OracleFailures.Describe(shipped));
        Assert.Equal(OpsOracle.Run(SafetensorsFile.Open(Paths.Oracle("ops.safetensors"))).Items.Count, shipped.Items.Count);
        var other = OpsOracle.Run(SafetensorsFile.Open(Paths.Fixture("ops-seed7.safetensors")), device);
        Assert.True(other.Pass, OracleFailures.Describe(other));
    }
}
