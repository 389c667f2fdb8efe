using Tmca.Engine;

namespace Tmca.Model;

/// <summary>What loading a Hugging Face checkpoint did: which keys went where, and which did not fit.</summary>
public sealed record HfLoadReport(string Path, string Target, List<string> Loaded, List<string> Ignored, List<string> Unexpected, List<string> Missing)
{
    public override string ToString() =>
        $"{Path}: {Loaded.Count} tensors loaded into {Target}; {Ignored.Count} ignored (HF heads not in the spec); " +
        $"{Unexpected.Count} unexpected{(Unexpected.Count > 0 ? ": " + string.Join(", ", Unexpected.Take(8)) + (Unexpected.Count > 8 ? ", …" : "") : "")}; " +
        $"{Missing.Count} missing{(Missing.Count > 0 ? ": " + string.Join(", ", Missing.Take(8)) + (Missing.Count > 8 ? ", …" : "") : "")}";
}

/// <summary>
/// Loads pretrained Hugging Face weights (safetensors) into the model: a ConvNeXt (keys with the "convnext."
/// prefix or none) into <c>image_encoder.</c>, a BERT / CXR-BERT ("bert." prefix or none) into
/// <c>text_encoder.</c>. The HF pooler, ConvNeXt's final pooled layernorm and CXR-BERT's MLM and projection
/// heads are ignored; other unknown keys and model keys the file lacks are listed; a shape mismatch is an error.
/// </summary>
public static class HfCheckpoint
{
    private static readonly string[] IgnoredPrefixes = ["pooler.", "layernorm.", "cls.", "cls_projection_head.", "classifier.", "lm_head."];

    public static bool IsIgnoredHfKey(string key) => IgnoredPrefixes.Any(key.StartsWith) || key == "embeddings.position_ids";

    public static HfLoadReport Load(TmcaModel model, string path)
    {
        var f = SafetensorsFile.Open(path);
        var names = f.Names.ToList();
        bool isConvNext = names.Any(n => n.StartsWith("convnext.") || n.StartsWith("embeddings.patch_embeddings."));
        bool isBert = names.Any(n => n.StartsWith("bert.") || n.StartsWith("embeddings.word_embeddings."));
        if (isConvNext == isBert) throw new InputFileException(path, $"neither a ConvNeXt nor a BERT checkpoint (no patch or word embeddings found)");
        string strip = isConvNext ? "convnext." : "bert.", target = isConvNext ? "image_encoder." : "text_encoder.";
        if (isBert && !model.Flags.Text) throw new InputFileException(path, $"a BERT checkpoint, but this model has no text encoder (text = false)");
        var report = new HfLoadReport(path, target, new(), new(), new(), new());
        var seen = new HashSet<string>();
        foreach (var name in names)
        {
            var key = name.StartsWith(strip) ? name[strip.Length..] : name;
            if (IsIgnoredHfKey(key) || name.StartsWith("cls.")) { report.Ignored.Add(name); continue; }
            var ours = target + key;
            if (!model.Params.Contains(ours)) { report.Unexpected.Add(name); continue; }
            model.Params.Assign(ours, f.Load(name), path);
            seen.Add(ours);
            report.Loaded.Add(name);
        }
        foreach (var p in model.Params.All.Where(p => p.Name.StartsWith(target) && !seen.Contains(p.Name)))
            report.Missing.Add(p.Name);
        return report;
    }
}
