using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tmca.Engine.Verification;

/// <summary>
/// Runs every case of an ops oracle file (metadata "cases": [{name, op, args, inputs}]) through the engine:
/// the forward output is compared with "&lt;name&gt;.out", then the backward of sum(out·gout) with each
/// "&lt;name&gt;.grad.&lt;input&gt;". Nothing is keyed to particular shapes or values: any file of this format works.
/// </summary>
public static class OpsOracle
{
    public static bool IsOpsFile(SafetensorsFile f) => f.Metadata.ContainsKey("cases");

    public static OracleReport Run(SafetensorsFile file, IBackend? backend = null)
    {
        backend ??= CpuBackend.Instance;
        var report = new OracleReport(file.Path);
        List<JsonElement> cases;
        try { cases = JsonSerializer.Deserialize<List<JsonElement>>(file.Metadata["cases"])!; }
        catch (JsonException e) { throw new SafetensorsException(file.Path, $"metadata 'cases' is not a JSON list ({e.Message})"); }
        foreach (var c in cases)
        {
            string name = c.GetProperty("name").GetString()!;
            string op = c.GetProperty("op").GetString()!;
            var args = c.TryGetProperty("args", out var a) ? a : default;
            var inputs = c.TryGetProperty("inputs", out var i) ? i.EnumerateArray().Select(e => e.GetString()!).ToList() : new List<string>();
            try
            {
                using var scope = new TensorScope();
                RunCase(file, backend, report, name, op, args, inputs);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or InvalidOperationException or KeyNotFoundException or SafetensorsException)
            {
                report.Add(Comparison.Failed($"{name} ({op})", e.Message));
            }
        }
        return report;
    }

    private static void RunCase(SafetensorsFile f, IBackend be, OracleReport report, string name, string op, JsonElement args, List<string> inputs)
    {
        if (op == "adamw") { RunAdamW(f, be, report, name, args); return; }
        var x = new Dictionary<string, Tensor>();
        foreach (var inp in inputs)
        {
            var t = f.Load($"{name}.in.{inp}", be);
            t.RequiresGrad = true;
            x[inp] = t;
        }
        double Arg(string key, double def) => args.ValueKind == JsonValueKind.Object && args.TryGetProperty(key, out var v) ? v.GetDouble() : def;
        int IArg(string key, int def) => (int)Arg(key, def);
        Tensor? Opt(string k) => x.TryGetValue(k, out var t) ? t : null;

        using var tape = new Tape();
        Tensor? runMean = null, runVar = null;
        Tensor output;
        switch (op)
        {
            case "conv2d":
                output = Ops.Conv2d(x["x"], x["w"], Opt("b"), IArg("stride", 1), IArg("padding", 0), IArg("groups", 1)); break;
            case "conv_transpose2d":
                output = Ops.ConvTranspose2d(x["x"], x["w"], Opt("b"), IArg("stride", 2)); break;
            case "linear":
                output = Ops.Linear(x["x"], x["w"], Opt("b")); break;
            case "layer_norm":
                output = Ops.LayerNorm(x["x"], Opt("w"), Opt("b"), Arg("eps", 1e-5)); break;
            case "layer_norm_channels_first":
                output = Ops.LayerNormChannelsFirst(x["x"], Opt("w"), Opt("b"), Arg("eps", 1e-6)); break;
            case "batch_norm_train":
                runMean = f.Load($"{name}.running_mean_before", be);
                runVar = f.Load($"{name}.running_var_before", be);
                output = Ops.BatchNorm2d(x["x"], x["w"], x["b"], runMean, runVar, training: true, Arg("eps", 1e-5), Arg("momentum", 0.1)); break;
            case "gelu_erf": output = Ops.Gelu(x["x"]); break;
            case "leaky_relu": output = Ops.LeakyRelu(x["x"], Arg("slope", 0.01)); break;
            case "sigmoid": output = Ops.Sigmoid(x["x"]); break;
            case "softmax_lastdim": output = Ops.Softmax(x["x"]); break;
            case "multi_head_attention":
                var w = new AttentionWeights(x["q_weight"], Opt("q_bias"), x["k_weight"], Opt("k_bias"), x["v_weight"], Opt("v_bias"), x["o_weight"], Opt("o_bias"));
                output = Ops.MultiHeadAttention(x["q"], x["k"], x["v"], w, IArg("heads", 1)); break;
            case "pixel_shuffle": output = Ops.PixelShuffle(x["x"], IArg("r", 2)); break;
            case "avg_pool2d": output = Ops.AvgPool2d(x["x"], IArg("k", 2)); break;
            case "bce_with_logits_mean": output = Ops.BceWithLogits(x["x"], Target(f, name, x["x"], be)); break;
            case "soft_dice_loss": output = Ops.SoftDiceLoss(x["x"], Target(f, name, x["x"], be), Arg("eps", 1.0)); break;
            case "symmetric_info_nce_masked": output = Ops.InfoNce(x["z"], f.Load($"{name}.same_text", be)); break;
            case "embedding": output = Ops.Embedding(f.Load($"{name}.ids", be), x["w"]); break;
            default: throw new NotSupportedException($"unknown op '{op}'");
        }
        report.Add(Comparison.Of($"{name}.out", ToleranceKind.Forward, output, f.Load($"{name}.out")));
        if (runMean is not null)
        {
            report.Add(Comparison.Of($"{name}.running_mean_after", ToleranceKind.Forward, runMean, f.Load($"{name}.running_mean_after")));
            report.Add(Comparison.Of($"{name}.running_var_after", ToleranceKind.Forward, runVar!, f.Load($"{name}.running_var_after")));
        }
        tape.Backward(output, seed: f.Load($"{name}.gout", be).View(output.Shape));
        foreach (var inp in inputs)
        {
            var key = $"{name}.grad.{inp}";
            if (!f.Contains(key)) continue;
            var g = x[inp].Grad ?? Tensor.ZerosLike(x[inp]);
            report.Add(Comparison.Of(key, ToleranceKind.Gradient, g, f.Load(key)));
        }
    }

    /// <summary>The case's own "&lt;name&gt;.target", else the file's only "*.target" of the right shape.</summary>
    private static Tensor Target(SafetensorsFile f, string name, Tensor like, IBackend be)
    {
        if (f.Contains($"{name}.target")) return f.Load($"{name}.target", be);
        var candidates = f.Entries.Values.Where(e => e.Name.EndsWith(".target") && Shape.Numel(e.Shape) == like.Numel).ToList();
        if (candidates.Count != 1) throw new KeyNotFoundException($"case {name}: no unambiguous target tensor");
        return f.Load(candidates[0].Name, be);
    }

    /// <summary>AdamW case: "param_before", "grad_step1", "param_after&lt;N&gt;"; the gradient at step k is k·grad_step1.</summary>
    private static void RunAdamW(SafetensorsFile f, IBackend be, OracleReport report, string name, JsonElement args)
    {
        var afterKey = f.Names.FirstOrDefault(n => n.StartsWith($"{name}.param_after")) ?? throw new KeyNotFoundException($"{name}: no param_after tensor");
        int steps = int.Parse(Regex.Match(afterKey, @"(\d+)$").Groups[1].Value);
        var p = f.Load($"{name}.param_before", be);
        var g1 = f.Load($"{name}.grad_step1", be);
        var betas = args.GetProperty("betas").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var m = Tensor.ZerosLike(p); var v = Tensor.ZerosLike(p); var g = Tensor.ZerosLike(p);
        for (int k = 1; k <= steps; k++)
        {
            be.Fill(g, 0); be.Axpy(k, g1, g);
            be.AdamW(new[] { new AdamWSlot(p, g, m, v, Decay: true) },
                     new AdamWStep(args.GetProperty("lr").GetDouble(), betas[0], betas[1], args.GetProperty("eps").GetDouble(), args.GetProperty("weight_decay").GetDouble(), k));
        }
        report.Add(Comparison.Of(afterKey, ToleranceKind.Forward, p, f.Load(afterKey)));
    }
}
