using Tmca.Engine;
using Tmca.Model.Verification;
using Xunit;

namespace Tmca.Tests.Model;

/// <summary>The whole model, the HF encoders and the tokenizer against their reference files.</summary>
public class ModelOracleTests
{
    [Theory]
    [InlineData("model-tmca-full.safetensors", 562)]
    [InlineData("model-tmca-global-deepest.safetensors", 526)]
    [InlineData("model-notext.safetensors", 278)]
    public void ModelMatchesTheReference(string file, int expectedChecks)
    {
        var report = ModelOracle.Run(SafetensorsFile.Open(Paths.RequireShared($"oracles/{file}")));
        Assert.True(report.Pass, OracleFailures.Describe(report));
        // every output, loss term, gradient, buffer and step the file records was compared
        Assert.Equal(expectedChecks, report.Items.Count);
    }

    /// <summary>Other configs, flags, batch sizes and seeds (tests/fixtures/make_model_oracle.py, PyTorch 1.13):
    /// nothing in the oracle runner or the model is keyed to the shipped files.</summary>
    [Theory]
    [InlineData("model-global-pixonly.safetensors")]
    [InlineData("model-target-lgte-b2.safetensors")]
    public void ModelMatchesOtherReferenceFiles(string file)
    {
        var report = ModelOracle.Run(SafetensorsFile.Open(Paths.Fixture(file)));
        Assert.True(report.Pass, OracleFailures.Describe(report));
        Assert.True(report.Items.Count > 500);
    }

    [Theory]
    [InlineData("hf/convnext.safetensors")]
    [InlineData("hf/bert.safetensors")]
    public void EncodersMatchHuggingFace(string file)
    {
        var report = HfEncoderOracle.Run(SafetensorsFile.Open(Paths.RequireShared($"oracles/{file}")));
        Assert.True(report.Pass, OracleFailures.Describe(report));
        Assert.Contains(report.Items, i => i.Name == "loss");
        Assert.Contains(report.Items, i => i.Name.StartsWith("grad.embeddings."));
    }

    [Fact]
    public void TokenizerMatchesHuggingFaceOnEveryRow()
    {
        var report = TokenizerOracle.Run(Paths.RequireShared("oracles/hf/tokenizer.json"));
        Assert.True(report.Pass, OracleFailures.Describe(report));
        Assert.Equal(166, report.Items.Count);
    }
}
