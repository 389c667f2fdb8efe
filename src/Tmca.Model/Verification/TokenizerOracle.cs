using System.Text.Json;
using Tmca.Engine.Verification;
using Tmca.Model.Text;

namespace Tmca.Model.Verification;

/// <summary>
/// Checks the WordPiece tokenizer against a Hugging Face tokenizer dump: {"vocab", "max_length", "rows": [{text,
/// tokens, ids_full, input_ids, attention_mask}]}. Every row must match exactly (pieces, full ids, padded ids, mask).
/// </summary>
public static class TokenizerOracle
{
    public static bool IsTokenizerFile(string path)
    {
        if (!path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return false;
        try
        {
            using var d = JsonDocument.Parse(File.ReadAllText(path));
            return d.RootElement.ValueKind == JsonValueKind.Object && d.RootElement.TryGetProperty("rows", out _);
        }
        catch (JsonException) { return false; }
    }

    /// <summary>The vocabulary is the file's "vocab" resolved against <paramref name="modelsDir"/> (../shared/models).</summary>
    public static OracleReport Run(string path, string? modelsDir = null)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        var vocabRel = root.GetProperty("vocab").GetString()!;
        modelsDir ??= Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "..", "..", "models"));
        var tok = WordPieceTokenizer.FromVocabFile(Path.Combine(modelsDir, vocabRel));
        int maxLen = root.TryGetProperty("max_length", out var ml) ? ml.GetInt32() : 24;
        var report = new OracleReport(path);
        int row = 0;
        foreach (var r in root.GetProperty("rows").EnumerateArray())
        {
            var text = r.GetProperty("text").GetString()!;
            var pieces = tok.Tokenize(text);
            var full = tok.EncodeFull(text);
            var enc = tok.Encode(text, maxLen);
            var expPieces = r.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()!).ToList();
            var expFull = r.GetProperty("ids_full").EnumerateArray().Select(e => e.GetInt32()).ToList();
            var expIds = r.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var expMask = r.GetProperty("attention_mask").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var problems = new List<string>();
            if (!pieces.SequenceEqual(expPieces)) problems.Add($"tokens [{string.Join(" ", pieces)}] vs [{string.Join(" ", expPieces)}]");
            if (!full.SequenceEqual(expFull)) problems.Add("ids_full differ");
            if (!enc.Ids.SequenceEqual(expIds)) problems.Add("input_ids differ");
            if (!enc.Mask.SequenceEqual(expMask)) problems.Add("attention_mask differs");
            string name = $"row {row++}: {Shorten(text)}";
            report.Add(problems.Count == 0
                ? new Comparison(name, ToleranceKind.Exact, 0, 0, 0, true)
                : Comparison.Failed(name, string.Join("; ", problems)));
        }
        return report;
    }

    private static string Shorten(string s)
    {
        s = s.Replace("\n", "\\n").Replace("\t", "\\t");
        return s.Length <= 48 ? $"\"{s}\"" : $"\"{s[..45]}...\"";
    }
}
