using System.Text.Json;
using Tmca.Engine;
using Tmca.Engine.Verification;

namespace Tmca.Model.Verification;

/// <summary>
/// Checks the image and text encoders against Hugging Face's own ConvNextModel / BertModel (evaluation mode):
/// the encoder is built from the file's HF "config" metadata with the HF key names (no prefix), loaded with
/// "param.*", and compared on every hidden state, on loss = Σ_i Σ hidden_states[i]·loss_weight.i (× attention
/// mask for BERT) and on the gradient of every parameter (and of the pixels, for ConvNeXt).
/// HF's final pooled layernorm (ConvNeXt) is not part of the spec's encoder and is not compared.
/// </summary>
public static class HfEncoderOracle
{
    public static bool IsHfFile(SafetensorsFile f, out string modelType)
    {
        modelType = "";
        if (!f.Metadata.TryGetValue("config", out var cfg) || f.Metadata.ContainsKey("flags")) return false;
        try
        {
            using var d = JsonDocument.Parse(cfg);
            modelType = d.RootElement.TryGetProperty("model_type", out var mt) ? mt.GetString() ?? "" : "";
            return modelType is "convnext" or "bert";
        }
        catch (JsonException) { return false; }
    }

    public static OracleReport Run(SafetensorsFile f, IBackend? backend = null)
    {
        backend ??= CpuBackend.Instance;
        if (!IsHfFile(f, out var type)) throw new ArgumentException($"{f.Path}: not a Hugging Face ConvNeXt/BERT oracle");
        using var cfg = JsonDocument.Parse(f.Metadata["config"]);
        var c = cfg.RootElement;
        var ps = new ParameterSet(0);
        var report = new OracleReport(f.Path);
        using var scope = new TensorScope();
        using var tape = new Tape();
        Tensor[] states;
        Tensor? pixels = null, mask = null;
        Func<Tensor[]> forward;
        if (type == "convnext")
        {
            var enc = new ConvNeXtEncoder(ps, "", c.GetProperty("num_channels").GetInt32(), Ints(c, "hidden_sizes"), Ints(c, "depths"));
            Load(ps, f, report, backend);
            pixels = f.Load("input.pixel_values", backend);
            pixels.RequiresGrad = true;
            forward = () => { var (stem, st) = enc.Forward(pixels); return [stem, .. st]; };
        }
        else
        {
            var enc = new BertEncoder(ps, "", c.GetProperty("vocab_size").GetInt32(), c.GetProperty("max_position_embeddings").GetInt32(),
                                      c.GetProperty("hidden_size").GetInt32(), c.GetProperty("num_hidden_layers").GetInt32(),
                                      c.GetProperty("num_attention_heads").GetInt32(), c.GetProperty("intermediate_size").GetInt32());
            Load(ps, f, report, backend);
            var ids = f.Load("input.input_ids", backend);
            mask = f.Load("input.attention_mask", backend);
            forward = () => enc.Forward(ids, mask);
        }
        states = forward();
        Tensor? loss = null;
        for (int i = 0; i < states.Length; i++)
        {
            var key = $"out.hidden_states.{i}";
            if (f.Contains(key)) report.Add(Comparison.Of(key, ToleranceKind.Forward, states[i], f.Load(key)));
            var w = f.Load($"loss_weight.{i}", backend);
            var term = Ops.Mul(states[i], w);
            if (mask is not null)
            {
                var m = Tensor.FromArray(Array.ConvertAll(mask.ToArray<long>(), v => (float)v), mask.Shape[0], mask.Shape[1], 1);
                term = Ops.Mul(term, m.Backend == backend ? m : m.To(backend));
            }
            var s = Ops.Sum(term);
            loss = loss is null ? s : Ops.Add(loss, s);
        }
        report.Add(Comparison.Of("loss", ToleranceKind.Forward, loss!, f.Load("loss")));
        tape.Backward(loss!);
        foreach (var p in ps.Trainable)
        {
            var key = $"grad.{p.Name}";
            if (!f.Contains(key)) { report.Add(Comparison.Failed(key, "missing from the oracle file")); continue; }
            report.Add(Comparison.Of(key, ToleranceKind.Gradient, p.Value.Grad ?? Tensor.ZerosLike(p.Value), f.Load(key)));
        }
        if (pixels is not null && f.Contains("grad.input.pixel_values"))
            report.Add(Comparison.Of("grad.input.pixel_values", ToleranceKind.Gradient, pixels.Grad!, f.Load("grad.input.pixel_values")));
        return report;
    }

    /// <summary>Loads "param.&lt;hf key&gt;" into the encoder; HF's pooled final layernorm is skipped, anything else unknown fails.</summary>
    private static void Load(ParameterSet ps, SafetensorsFile f, OracleReport report, IBackend backend)
    {
        foreach (var name in f.Names.Where(n => n.StartsWith("param.")))
        {
            var key = name["param.".Length..];
            if (ps.Contains(key)) ps.Assign(key, f.Load(name), f.Path);
            else if (!HfCheckpoint.IsIgnoredHfKey(key)) report.Add(Comparison.Failed(name, "not a parameter of the encoder"));
        }
        foreach (var p in ps.All)
            if (!f.Contains($"param.{p.Name}")) report.Add(Comparison.Failed($"param.{p.Name}", "missing from the oracle file"));
        ps.To(backend);
    }

    private static int[] Ints(JsonElement e, string key) => e.GetProperty(key).EnumerateArray().Select(x => x.GetInt32()).ToArray();
}
