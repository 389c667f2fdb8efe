using System.Globalization;
using System.Text;
using Tmca.Engine;

namespace Tmca.Model.Text;

/// <summary>The token ids and attention mask of one text, padded or truncated to a fixed length.</summary>
public sealed record Encoding(long[] Ids, long[] Mask, int FullLength, bool Truncated);

/// <summary>
/// BERT WordPiece tokenisation exactly as Hugging Face <c>tokenizers</c> does it for BertTokenizerFast
/// (lower-cased, as CXR-BERT): special tokens written in the text are kept whole; the rest is normalised
/// (drop control characters, whitespace → space, spaces around CJK ideographs, strip accents, lowercase),
/// split on whitespace and punctuation, and each word is split greedily into the longest vocabulary pieces
/// ("##" marks a continuation; a word with no split, or over 100 characters, is [UNK]).
/// Encodings are [CLS] … [SEP], truncated to keep [SEP] last, padded with [PAD] = 0.
/// </summary>
public sealed class WordPieceTokenizer
{
    public const int MaxCharsPerWord = 100;
    private static readonly string[] Specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    private readonly Dictionary<string, int> _vocab;
    public int Cls { get; }
    public int Sep { get; }
    public int Pad { get; }
    public int Unk { get; }
    public int VocabSize => _vocab.Count;

    private WordPieceTokenizer(Dictionary<string, int> vocab, string source)
    {
        _vocab = vocab;
        int Id(string t) => vocab.TryGetValue(t, out var i) ? i : throw new InputFileException(source, $"the vocabulary has no {t} token");
        Cls = Id("[CLS]"); Sep = Id("[SEP]"); Pad = Id("[PAD]"); Unk = Id("[UNK]");
    }

    /// <summary>Vocabulary files above this size are refused (BERT's is 230 KB).</summary>
    public const long MaxVocabBytes = 16 << 20;
    public const int MaxTokenChars = 1024;

    /// <summary>Reads a vocab.txt (one token per line, the line number is the id).</summary>
    public static WordPieceTokenizer FromVocabFile(string path)
    {
        var lines = StrictText.Read(path, MaxVocabBytes, "vocabulary file").Split('\n');
        int n = lines.Length > 0 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;   // the newline after the last token
        for (int i = 0; i < n; i++)
            if (lines[i].Length > MaxTokenChars) throw new InputFileException(path, $"line {i + 1} is {lines[i].Length:N0} characters, more than a token may have ({MaxTokenChars})");
        return FromLines(lines.Take(n), path);
    }

    /// <summary>The CXR-BERT vocabulary embedded in this assembly (see Text/Resources/README.md).</summary>
    public static WordPieceTokenizer CxrBert()
    {
        using var s = typeof(WordPieceTokenizer).Assembly.GetManifestResourceStream("Tmca.Model.cxr-bert-vocab.txt")
                      ?? throw new InvalidOperationException("the embedded CXR-BERT vocabulary is missing from Tmca.Model");
        using var r = new StreamReader(s);
        var lines = new List<string>();
        while (r.ReadLine() is { } l) lines.Add(l);
        return FromLines(lines, "embedded CXR-BERT vocabulary");
    }

    /// <summary>The embedded vocabulary's bytes (for the test that compares it with the shared copy).</summary>
    public static byte[] EmbeddedVocabBytes()
    {
        using var s = typeof(WordPieceTokenizer).Assembly.GetManifestResourceStream("Tmca.Model.cxr-bert-vocab.txt")!;
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }

    private static WordPieceTokenizer FromLines(IEnumerable<string> lines, string path)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int id = 0;
        foreach (var line in lines)
        {
            var token = line.TrimEnd('\r');
            vocab.TryAdd(token, id);   // HF keeps the first occurrence of a repeated line
            id++;
        }
        if (vocab.Count == 0) throw new InputFileException(path, "empty vocabulary");
        return new WordPieceTokenizer(vocab, path);
    }

    /// <summary>The word pieces of a text, without [CLS]/[SEP].</summary>
    public List<string> Tokenize(string text)
    {
        var pieces = new List<string>();
        foreach (var (segment, isSpecial) in SplitSpecials(text))
        {
            if (isSpecial) { pieces.Add(segment); continue; }
            foreach (var word in PreTokenize(Normalize(segment))) WordPiece(word, pieces);
        }
        return pieces;
    }

    /// <summary>[CLS] pieces [SEP] as ids, without truncation.</summary>
    public List<int> EncodeFull(string text)
    {
        var ids = new List<int> { Cls };
        foreach (var p in Tokenize(text)) ids.Add(_vocab.TryGetValue(p, out var i) ? i : Unk);
        ids.Add(Sep);
        return ids;
    }

    /// <summary>Fixed-length ids and mask: truncated keeping [SEP] last, padded with 0.</summary>
    public Encoding Encode(string text, int length = 24)
    {
        if (length < 2) throw new ArgumentException("an encoding needs room for [CLS] and [SEP]");
        var full = EncodeFull(text);
        var ids = new long[length];
        var mask = new long[length];
        bool truncated = full.Count > length;
        int n = Math.Min(full.Count, length);
        for (int i = 0; i < n; i++) { ids[i] = full[i]; mask[i] = 1; }
        if (truncated) ids[length - 1] = Sep;
        for (int i = n; i < length; i++) ids[i] = Pad;
        return new Encoding(ids, mask, full.Count, truncated);
    }

    // ---- the pipeline ---------------------------------------------------------------------------------

    /// <summary>Splits out the special tokens written literally in the text (they are not normalised).</summary>
    private static IEnumerable<(string, bool)> SplitSpecials(string text)
    {
        int start = 0, i = 0;
        while (i < text.Length)
        {
            string? hit = null;
            if (text[i] == '[')
                foreach (var s in Specials)
                    if (string.CompareOrdinal(text, i, s, 0, s.Length) == 0) { hit = s; break; }
            if (hit is null) { i++; continue; }
            if (i > start) yield return (text[start..i], false);
            yield return (hit, true);
            i += hit.Length;
            start = i;
        }
        if (start < text.Length) yield return (text[start..], false);
    }

    /// <summary>BertNormalizer: clean text, pad CJK ideographs with spaces, strip accents, lowercase.</summary>
    public static string Normalize(string text)
    {
        var cleaned = new StringBuilder(text.Length);
        foreach (var r in text.EnumerateRunes())
        {
            int cp = r.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(r)) continue;
            if (IsWhitespace(r)) { cleaned.Append(' '); continue; }
            if (IsCjk(cp)) cleaned.Append(' ').Append(r.ToString()).Append(' ');
            else cleaned.Append(r.ToString());
        }
        var stripped = new StringBuilder(cleaned.Length);
        foreach (var r in cleaned.ToString().EnumerateRunes()) UnicodeTables.AppendStripped(stripped, r);
        return ToLower(stripped.ToString());
    }

    /// <summary>Full Unicode lowercase, with Greek capital sigma becoming final sigma at the end of a word.</summary>
    private static string ToLower(string s)
    {
        var sb = new StringBuilder(s.Length);
        var runes = s.EnumerateRunes().ToArray();
        for (int i = 0; i < runes.Length; i++)
        {
            if (runes[i].Value == 0x03A3)
            {
                bool before = i > 0 && Rune.IsLetter(runes[i - 1]);
                bool after = i + 1 < runes.Length && Rune.IsLetter(runes[i + 1]);
                sb.Append(before && !after ? 'ς' : 'σ');
                continue;
            }
            sb.Append(UnicodeTables.ToLower(runes[i]));
        }
        return sb.ToString();
    }

    /// <summary>BertPreTokenizer: split on whitespace (dropped) and on punctuation (kept as single-character words).</summary>
    public static List<string> PreTokenize(string text)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        void Flush() { if (cur.Length > 0) { words.Add(cur.ToString()); cur.Clear(); } }
        foreach (var r in text.EnumerateRunes())
        {
            if (Rune.IsWhiteSpace(r)) { Flush(); continue; }
            if (IsPunctuation(r)) { Flush(); words.Add(r.ToString()); continue; }
            cur.Append(r.ToString());
        }
        Flush();
        return words;
    }

    /// <summary>Greedy longest-match-first WordPiece of one word.</summary>
    private void WordPiece(string word, List<string> output)
    {
        var runes = word.EnumerateRunes().Select(r => r.ToString()).ToArray();
        if (runes.Length > MaxCharsPerWord) { output.Add("[UNK]"); return; }
        var pieces = new List<string>();
        int start = 0;
        while (start < runes.Length)
        {
            string? found = null;
            int end = runes.Length;
            for (; end > start; end--)
            {
                var piece = string.Concat(runes[start..end]);
                if (start > 0) piece = "##" + piece;
                if (_vocab.ContainsKey(piece)) { found = piece; break; }
            }
            if (found is null) { output.Add("[UNK]"); return; }
            pieces.Add(found);
            start = end;
        }
        output.AddRange(pieces);
    }

    // ---- character classes (as in tokenizers' normalizers/bert.rs and pre_tokenizers/bert.rs) ------------

    private static bool IsWhitespace(Rune r) => r.Value is '\t' or '\n' or '\r' || Rune.IsWhiteSpace(r);

    private static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        var c = Rune.GetUnicodeCategory(r);
        return c is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned
            or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;
    }

    private static bool IsPunctuation(Rune r)
    {
        if (r.Value < 128 && char.IsAsciiLetterOrDigit((char)r.Value) == false && r.Value > 32 && r.Value < 127) return true;   // ASCII punctuation
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    private static bool IsCjk(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
           or >= 0x2B740 and <= 0x2B81F or >= 0x2B920 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
