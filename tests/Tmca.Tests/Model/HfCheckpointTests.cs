using Tmca.Engine;
using Tmca.Model;
using Xunit;

namespace Tmca.Tests.Model;

public class HfCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tmca-hf-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static TmcaModel Model() => new(TmcaConfig.Nano with { VocabSize = 50 }, new TmcaFlags(), seed: 1);

    /// <summary>The HF oracle's ConvNeXt (which HF stores without a prefix) under "convnext.", plus its final
    /// layernorm and a stray key: everything lands under image_encoder., the rest is reported.</summary>
    [Fact]
    public void LoadsAConvNextCheckpointWithPrefixIntoTheImageEncoder()
    {
        var src = SafetensorsFile.Open(Paths.RequireShared("oracles/hf/convnext.safetensors"));
        var tensors = src.Names.Where(n => n.StartsWith("param.")).Select(n => new KeyValuePair<string, Tensor>("convnext." + n[6..], src.Load(n))).ToList();
        tensors.Add(new("classifier.weight", Tensor.Zeros([3, 128])));
        tensors.Add(new("convnext.something_else", Tensor.Zeros([2])));
        var path = Path.Combine(_dir, "convnext.safetensors");
        SafetensorsFile.Save(path, tensors);
        // the oracle ConvNeXt has depths 1,1,2,1: the nano model (1,1,1,1) lacks stage 2's second block
        var m = Model();
        var report = HfCheckpoint.Load(m, path);
        Assert.Contains("convnext.encoder.stages.2.layers.1.dwconv.weight", report.Unexpected);
        Assert.Contains("convnext.something_else", report.Unexpected);
        Assert.Contains("convnext.layernorm.weight", report.Ignored);
        Assert.Contains("classifier.weight", report.Ignored);
        Assert.Empty(report.Missing);
        Assert.Equal(src.Load("param.embeddings.patch_embeddings.weight").ToDoubles(), m.Params["image_encoder.embeddings.patch_embeddings.weight"].Value.ToDoubles());
    }

    [Fact]
    public void LoadsABertCheckpointAndRejectsShapeMismatches()
    {
        var m = Model();
        var prefixed = new List<KeyValuePair<string, Tensor>>();
        foreach (var p in m.Params.All.Where(p => p.Name.StartsWith("text_encoder.")))
            prefixed.Add(new("bert." + p.Name["text_encoder.".Length..], Tensor.Full(p.Value.Shape, 0.25)));
        prefixed.Add(new("bert.pooler.dense.weight", Tensor.Zeros([32, 32])));
        prefixed.Add(new("cls.predictions.bias", Tensor.Zeros([50])));
        var path = Path.Combine(_dir, "cxr-bert.safetensors");
        SafetensorsFile.Save(path, prefixed);
        var report = HfCheckpoint.Load(m, path);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        Assert.Equal(2, report.Ignored.Count);
        Assert.All(m.Params["text_encoder.encoder.layer.1.output.dense.weight"].Value.ToDoubles(), v => Assert.Equal(0.25, v));

        var bad = Path.Combine(_dir, "bad.safetensors");
        SafetensorsFile.Save(bad, [new("bert.embeddings.word_embeddings.weight", Tensor.Zeros([50, 16]))]);
        var e = Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(Model(), bad));   // a file that does not fit: bad data, not a bug
        Assert.Contains("word_embeddings", e.Message);
        Assert.Contains("[50, 16]", e.Message);
    }
}
