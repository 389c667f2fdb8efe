using System.Text.Json;
using Tmca.Engine;
using Tmca.Engine.Verification;

namespace Tmca.Model.Verification;

/// <summary>
/// Checks the whole model against a "model-*" oracle file: the model is built from the file's own config and
/// flags metadata, loaded with its "param.*" checkpoint, and run on its inputs. Compared: logits, encoder
/// features, S and A maps, every loss term, the gradient of every parameter, the BatchNorm buffers after the
/// training forward, the evaluation-mode logits, and the losses and checkpoint after the AdamW steps.
/// </summary>
public static class ModelOracle
{
    public static bool IsModelFile(SafetensorsFile f) => f.Metadata.ContainsKey("config") && f.Metadata.ContainsKey("flags") && f.Names.Any(n => n.StartsWith("param."));

    public static OracleReport Run(SafetensorsFile f, IBackend? backend = null)
    {
        backend ??= CpuBackend.Instance;
        var report = new OracleReport(f.Path);
        var config = TmcaConfig.FromJson(f.Metadata["config"]);
        var flags = TmcaFlags.FromJson(f.Metadata["flags"]);
        var model = new TmcaModel(config, flags);
        model.To(backend);
        LoadParams(model, f, report);
        var batch = new TmcaBatch(f.Load("input.image", backend), f.Load("input.ids", backend), f.Load("input.mask", backend), f.Load("input.gt", backend));

        // 1. training-mode forward, losses, backward
        using (var scope = new TensorScope())
        {
            using var tape = new Tape();
            var o = model.Forward(batch, training: true);
            var losses = model.Losses(o, batch);
            Compare(report, f, "out.logits", o.Logits, ToleranceKind.Forward);
            for (int l = 0; l < 4; l++)
            {
                Compare(report, f, $"out.feat{l}", o.Features[l], ToleranceKind.Forward);
                Compare(report, f, $"out.sim{l}", o.Similarity[l], ToleranceKind.Forward);
                Compare(report, f, $"out.attn{l}", o.Attention[l], ToleranceKind.Forward);
            }
            foreach (var (name, value) in losses.Named()) Compare(report, f, $"loss.{name}", value, ToleranceKind.Forward);
            foreach (var key in f.Names.Where(n => n.StartsWith("loss.")))
                if (!losses.Named().Any(x => $"loss.{x.Name}" == key)) report.Add(Comparison.Failed(key, "the engine does not compute this loss term for these flags"));
            tape.Backward(losses.Total);
            foreach (var p in model.Params.Trainable)
            {
                var key = $"grad.{p.Name}";
                if (!f.Contains(key)) { report.Add(Comparison.Failed(key, "missing from the oracle file")); continue; }
                var g = p.Value.Grad ?? Tensor.ZerosLike(p.Value);
                report.Add(Comparison.Of(key, ToleranceKind.Gradient, g, f.Load(key)));
            }
        }
        foreach (var key in f.Names.Where(n => n.StartsWith("after_forward.")))
            CompareParam(report, f, model, key, key["after_forward.".Length..]);

        // 2. evaluation mode with the running statistics updated once
        using (var scope = new TensorScope())
        using (Tape.NoGrad())
            Compare(report, f, "out.logits_eval", model.Forward(batch, training: false).Logits, ToleranceKind.Forward);

        // 3. AdamW steps on the same batch, starting again from param.*
        if (f.Metadata.TryGetValue("optimizer", out var optJson) && f.Contains("train.losses"))
        {
            LoadParams(model, f, null);
            model.Params.ZeroGrad();
            using var opt = JsonDocument.Parse(optJson);
            var o = opt.RootElement;
            var betas = o.GetProperty("betas").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            var adam = new AdamW(model.Params.Trainable, new AdamWConfig(o.GetProperty("lr").GetDouble(), betas[0], betas[1], o.GetProperty("eps").GetDouble(), o.GetProperty("weight_decay").GetDouble()));
            int steps = o.GetProperty("steps").GetInt32();
            var lossesSeen = new List<double>();
            for (int s = 0; s <= steps; s++)
            {
                using var scope = new TensorScope();
                using var tape = new Tape();
                var losses = model.Losses(model.Forward(batch, training: true), batch);
                lossesSeen.Add(losses.Total.Item());
                if (s == steps) break;
                adam.ZeroGrad();
                tape.Backward(losses.Total);
                adam.StepOnce();
            }
            report.Add(Comparison.Of("train.losses", ToleranceKind.Forward, lossesSeen.ToArray(), f.Load("train.losses").ToDoubles()));
            foreach (var key in f.Names.Where(n => n.StartsWith("after_steps.")))
                CompareParam(report, f, model, key, key["after_steps.".Length..], ToleranceKind.Gradient);
        }
        return report;
    }

    /// <summary>Loads every "param.*" tensor; keys the model lacks, or parameters the file lacks, are failures.</summary>
    private static void LoadParams(TmcaModel model, SafetensorsFile f, OracleReport? report)
    {
        var fileKeys = f.Names.Where(n => n.StartsWith("param.")).Select(n => n["param.".Length..]).ToHashSet();
        foreach (var p in model.Params.All)
        {
            if (!fileKeys.Contains(p.Name)) { report?.Add(Comparison.Failed($"param.{p.Name}", "the model has this parameter, the file does not")); continue; }
            model.Params.Assign(p.Name, f.Load($"param.{p.Name}"), f.Path);
        }
        foreach (var k in fileKeys.Where(k => !model.Params.Contains(k)))
            report?.Add(Comparison.Failed($"param.{k}", "the file has this parameter, the model (for these flags) does not"));
        foreach (var p in model.Params.All) p.Value.Grad = null;
    }

    private static void Compare(OracleReport report, SafetensorsFile f, string key, Tensor? actual, ToleranceKind kind)
    {
        bool inFile = f.Contains(key);
        if (actual is null && !inFile) return;
        if (actual is null) { report.Add(Comparison.Failed(key, "in the oracle file but not produced by the engine for these flags")); return; }
        if (!inFile) return;   // the engine computes more than this file records
        report.Add(Comparison.Of(key, kind, actual, f.Load(key)));
    }

    private static void CompareParam(OracleReport report, SafetensorsFile f, TmcaModel model, string fileKey, string param, ToleranceKind kind = ToleranceKind.Forward)
    {
        if (!model.Params.Contains(param)) { report.Add(Comparison.Failed(fileKey, "no such parameter in the model")); return; }
        var t = model.Params[param].Value;
        report.Add(Comparison.Of(fileKey, t.DType == DType.I64 ? ToleranceKind.Exact : kind, t, f.Load(fileKey)));
    }
}
