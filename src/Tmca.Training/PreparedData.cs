using Tmca.Data;
using Tmca.Data.Layouts;
using Tmca.Data.Synthetic;
using Tmca.Model.Text;

namespace Tmca.Training;

/// <summary>A dataset read, decoded and preprocessed at the model's resolution, with the tokenizer that encoded it.</summary>
public sealed class PreparedData
{
    public required Dataset Dataset { get; init; }
    public required PreparedSplit Train { get; init; }
    public required PreparedSplit Val { get; init; }
    public required PreparedSplit Test { get; init; }
    public required WordPieceTokenizer Tokenizer { get; init; }
    public bool Synthetic { get; init; }

    public PreparedSplit Split(string name) => name.ToLowerInvariant() switch
    {
        "train" => Train,
        "val" or "validation" => Val,
        "test" => Test,
        _ => throw new ArgumentException($"unknown split '{name}' (train, val, test)"),
    };

    /// <summary>
    /// Reads the dataset at <paramref name="data"/> (null: the embedded synthetic set, generated once and cached),
    /// prepares all three splits at <paramref name="size"/> px and reports notes and truncated reports.
    /// </summary>
    public static PreparedData Load(string? data, string? layout, int size, string? vocab, Action<string> info, Action<string> warn)
    {
        bool synthetic = data is null;
        string root = data ?? SyntheticCxr.EnsureCached(new SyntheticOptions(), info);
        var ds = DatasetLoader.Load(root, synthetic ? "per-id" : layout);
        foreach (var n in ds.Notes) warn(n);
        var tok = string.IsNullOrEmpty(vocab) ? WordPieceTokenizer.CxrBert() : WordPieceTokenizer.FromVocabFile(vocab);
        info($"{(synthetic ? "synthetic dataset" : ds.Layout + " dataset")} {root}: {ds.Train.Count} train, {ds.Val.Count} val, {ds.Test.Count} test; preparing at {size} px");
        var tokenize = tok.ForData();
        var pd = new PreparedData
        {
            Dataset = ds, Tokenizer = tok, Synthetic = synthetic,
            Train = Preprocess.Prepare("train", ds.Train, size, tokenize),
            Val = Preprocess.Prepare("val", ds.Val, size, tokenize),
            Test = Preprocess.Prepare("test", ds.Test, size, tokenize),
        };
        foreach (var s in new[] { pd.Train, pd.Val, pd.Test })
            if (s.TruncatedReports > 0) warn($"{s.TruncatedReports} of {s.Count} {s.Name} reports are longer than 24 tokens and were truncated");
        return pd;
    }
}

/// <summary>Adapters between Data's model-free types and the model's (Data depends on the engine alone).</summary>
public static class DataAdapters
{
    /// <summary>The WordPiece tokenizer as the delegate that <see cref="Preprocess"/> takes.</summary>
    public static Tokenize ForData(this WordPieceTokenizer tok) => (report, length) =>
    {
        var e = tok.Encode(report, length);
        return new TokenizedReport(e.Ids, e.Mask, e.Truncated);
    };

    public static Tmca.Model.TmcaBatch ForModel(this Batch b) => new(b.Image, b.Ids, b.Mask, b.Gt) { HostIds = b.HostIds, HostMask = b.HostMask };
}
