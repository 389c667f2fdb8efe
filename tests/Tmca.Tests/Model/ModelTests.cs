using Tmca.Engine;
using Tmca.Model;
using Xunit;

namespace Tmca.Tests.Model;

public class ModelTests
{
    [Theory]
    [InlineData("nano", 1_639_134)]
    [InlineData("small", 3_569_746)]
    [InlineData("tiny", 152_752_334)]
    public void ParameterCountsMatchTheSpec(string preset, long expected)
    {
        var m = new TmcaModel(TmcaConfig.Preset(preset), new TmcaFlags(), initialize: false);
        Assert.Equal(expected, m.Params.TrainableCount);
    }

    [Fact]
    public void ParametersExistOnlyForThePartsThatAreOn()
    {
        var cfg = TmcaConfig.Nano with { VocabSize = 64 };
        var none = new TmcaModel(cfg, new TmcaFlags { Text = false }, initialize: false);
        Assert.DoesNotContain(none.Params.All, p => p.Name.StartsWith("text_encoder.") || p.Name.StartsWith("align.") || p.Name.StartsWith("lgte.") || p.Name.Contains("cross_attn") || p.Name.Contains("text_proj"));
        var guide = new TmcaModel(cfg, new TmcaFlags { Alignment = "none", Lgte = false, PixelLoss = false }, initialize: false);
        Assert.DoesNotContain(guide.Params.All, p => p.Name.StartsWith("align.") || p.Name.StartsWith("lgte."));
        Assert.Contains(guide.Params.All, p => p.Name.Contains("cross_attn_scale"));
        var lgteOnly = new TmcaModel(cfg, new TmcaFlags { Alignment = "none", Lgte = true, PixelLoss = false }, initialize: false);
        Assert.True(lgteOnly.Params.Contains("align.image.0.fc1.weight") && lgteOnly.Params.Contains("lgte.3.gamma"));
        // scalars are flagged (no weight decay) and initialised as the spec says
        var full = new TmcaModel(cfg, new TmcaFlags(), seed: 1);
        Assert.True(full.Params["align.log_tau"].IsScalar);
        Assert.Equal(Math.Log(0.07), full.Params["align.log_tau"].Value.Item(), 6);
        Assert.Equal(10.0, full.Params["lgte.2.a"].Value.Item());
        Assert.Equal(1.421, full.Params["decoder.stages.1.cross_attn_scale"].Value.Item(), 5);
        Assert.Equal(1e-6, full.Params["image_encoder.encoder.stages.0.layers.0.layer_scale_parameter"].Value.ToDoubles()[0], 9);
        Assert.False(full.Params["decoder.head.out.bias"].IsScalar);
        var w = full.Params["image_encoder.encoder.stages.1.layers.0.pwconv1.weight"].Value.ToDoubles();
        double std = Math.Sqrt(w.Select(v => v * v).Average());
        Assert.InRange(std, 0.018, 0.022);   // normal(0, 0.02)
        Assert.All(full.Params["text_encoder.embeddings.word_embeddings.weight"].Value.ToDoubles().Take(cfg.TextHidden), v => Assert.Equal(0.0, v));
    }

    [Fact]
    public void ConfigAndFlagsJsonHoldExactlyTheSpecKeys()
    {
        using var flags = System.Text.Json.JsonDocument.Parse(new TmcaFlags().ToJson());
        Assert.Equal(["text", "alignment", "levels", "lgte", "pixel_loss", "lambda_nce", "lambda_pix", "tau_init", "tau_min", "gamma_init", "a_init", "b_init", "bn_momentum"],
                     flags.RootElement.EnumerateObject().Select(p => p.Name));
        using var cfg = System.Text.Json.JsonDocument.Parse(TmcaConfig.Small.ToJson());
        Assert.Equal(16, cfg.RootElement.EnumerateObject().Count());
        var e = Assert.Throws<System.Text.Json.JsonException>(() => TmcaFlags.FromJson("{\"lgtee\": true}"));
        Assert.Contains("lgtee", e.Message);
    }

    [Fact]
    public void CheckpointsRoundTripExactly()
    {
        var dir = Directory.CreateTempSubdirectory("tmca-ckpt-").FullName;
        try
        {
            var cfg = TmcaConfig.Nano with { VocabSize = 100 };
            var m = new TmcaModel(cfg, new TmcaFlags { Levels = [1, 3], LambdaPix = 0.25 }, seed: 5);
            var path = Path.Combine(dir, "m.safetensors");
            Checkpoint.Save(m, path, new Dictionary<string, string> { ["note"] = "hello" });
            var back = Checkpoint.Load(path);
            Assert.Equal(m.Config.ToJson(), back.Config.ToJson());
            Assert.Equal(m.Flags.ToJson(), back.Flags.ToJson());
            Assert.Equal(m.Params.All.Select(p => p.Name), back.Params.All.Select(p => p.Name));
            foreach (var p in m.Params.All)
            {
                var q = back.Params[p.Name].Value;
                Assert.Equal(p.Value.Shape, q.Shape);
                Assert.Equal(p.Value.DType, q.DType);
                Assert.Equal(p.Value.ToDoubles(), q.ToDoubles());     // bit-exact
            }
            Assert.Equal("hello", SafetensorsFile.Open(path).Metadata["note"]);

            // a checkpoint missing keys is refused with the keys named
            SafetensorsFile.Save(Path.Combine(dir, "partial.safetensors"),
                m.Params.All.Where(p => !p.Name.StartsWith("lgte.")).Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Value)),
                new Dictionary<string, string> { ["config"] = m.Config.ToJson(), ["flags"] = m.Flags.ToJson() });
            var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(Path.Combine(dir, "partial.safetensors")));
            Assert.Contains("lgte.0.a", e.Message);
            // a config with an unknown key is refused with the file named
            SafetensorsFile.Save(Path.Combine(dir, "badcfg.safetensors"), [new("x", Tensor.Zeros([1]))],
                new Dictionary<string, string> { ["config"] = "{\"dimz\": [1]}", ["flags"] = "{}" });
            e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(Path.Combine(dir, "badcfg.safetensors")));
            Assert.Contains("badcfg.safetensors", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>The whole model in float64: the tape's gradients against central differences for a sample of
    /// parameters from every part (encoders, alignment scalars, LGTE, decoder, BatchNorm, head).</summary>
    [Fact]
    public void WholeModelGradientsMatchFiniteDifferencesInDouble()
    {
        var cfg = new TmcaConfig
        {
            ImageSize = 32, Dims = [4, 8, 8, 8], Depths = [1, 1, 1, 1], TextHidden = 8, TextLayers = 1, TextHeads = 2,
            TextIntermediate = 8, VocabSize = 20, MaxPositions = 24, AlignDim = 4, HeadChannels = 2, CrossHeads = 2,
        };
        var m = new TmcaModel(cfg, new TmcaFlags { GammaInit = 0.7, AInit = 3.0 }, seed: 3, dtype: DType.F64);
        // layer scale 1e-6 would make the ConvNeXt blocks invisible to the check: use O(1) values
        foreach (var p in m.Params.All.Where(p => p.Name.EndsWith("layer_scale_parameter"))) p.Value.Backend.Fill(p.Value, 0.5);
        var r = new Rng(11);
        int B = 3;
        var image = r.F64([B, 3, 32, 32], grad: false);
        var ids = new long[B * 24]; var mask = new long[B * 24];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < 24; t++)
            {
                int len = 10 + 3 * b;
                ids[b * 24 + t] = t < len ? (b == 1 ? ids[t] : r.Int(1, 19)) : 0;   // sample 1 repeats sample 0's report
                mask[b * 24 + t] = t < len && (b != 1 || t < 10) ? 1 : 0;
            }
        for (int t = 0; t < 24; t++) { ids[24 + t] = ids[t]; mask[24 + t] = mask[t]; }
        var gt = new double[B * 32 * 32];
        for (int i = 0; i < 32 * 32; i++) { int y = i / 32, x = i % 32; gt[i] = x > 8 && x < 20 && y > 4 && y < 14 ? 1 : 0; gt[1024 + i] = x < 16 ? 1 : 0; }
        var batch = new TmcaBatch(image, Tensor.FromArray(ids, B, 24), Tensor.FromArray(mask, B, 24), Tensor.FromArray(gt, B, 1, 32, 32));

        double Loss()
        {
            using var _ = Tape.NoGrad();
            return m.Losses(m.Forward(batch, training: true), batch).Total.Item();
        }
        using (var tape = new Tape())
            tape.Backward(m.Losses(m.Forward(batch, training: true), batch).Total);

        string[] names =
        [
            "image_encoder.embeddings.patch_embeddings.weight", "image_encoder.encoder.stages.2.layers.0.dwconv.weight",
            "image_encoder.encoder.stages.3.downsampling_layer.0.weight", "text_encoder.embeddings.word_embeddings.weight",
            "text_encoder.encoder.layer.0.attention.self.key.weight", "align.image.1.fc2.weight", "align.text.3.fc1.bias",
            "align.log_tau", "lgte.0.a", "lgte.2.b", "lgte.1.gamma", "decoder.stages.0.text_proj.token_mix.weight",
            "decoder.stages.1.cross_attn.v.weight", "decoder.stages.2.self_attn_norm_in.weight", "decoder.stages.0.cross_attn_scale",
            "decoder.stages.2.bn1.weight", "decoder.stages.1.up.weight", "decoder.head.conv.weight", "decoder.head.out.bias",
        ];
        var rng = new Random(4);
        foreach (var name in names)
        {
            var p = m.Params[name].Value;
            var grad = p.Grad!.ToArray<double>();
            for (int trial = 0; trial < 3; trial++)
            {
                int i = rng.Next((int)p.Numel);
                if (name.Contains("word_embeddings")) i = (int)(ids[rng.Next(10)] * cfg.TextHidden + rng.Next(cfg.TextHidden));
                var d = p.Span<double>();
                double orig = d[i], h = 1e-6;
                d[i] = orig + h; double lp = Loss();
                d[i] = orig - h; double lm = Loss();
                d[i] = orig;
                double num = (lp - lm) / (2 * h);
                Assert.True(Math.Abs(num - grad[i]) <= 1e-6 + 1e-5 * Math.Abs(num), $"{name}[{i}]: analytic {grad[i]:G10}, numeric {num:G10}");
            }
        }
    }
}
