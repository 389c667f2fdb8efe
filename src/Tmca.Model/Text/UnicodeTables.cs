using System.Text;

namespace Tmca.Model.Text;

/// <summary>Lookups over the generated tables (see tools/gen_unicode_tables.py for why they exist).</summary>
internal static partial class UnicodeTables
{
    // In a nested class so that they are built after the generated arrays (static initialisers of partial
    // classes run in an unspecified file order).
    private static class Maps
    {
        public static readonly Dictionary<int, string> Strip = Build(StripAccentsCodes, StripAccentsValues);
        public static readonly Dictionary<int, string> Lower = Build(LowercaseCodes, LowercaseValues);
    }

    private static Dictionary<int, string> Build(int[] codes, string[] values)
    {
        var d = new Dictionary<int, string>(codes.Length);
        for (int i = 0; i < codes.Length; i++) d[codes[i]] = values[i];
        return d;
    }

    /// <summary>NFD, then drop nonspacing marks: "Café" → "Cafe". Hangul syllables decompose into their jamo.</summary>
    public static void AppendStripped(StringBuilder sb, Rune r)
    {
        int cp = r.Value;
        if (cp is >= 0xAC00 and <= 0xD7A3)
        {
            // Hangul: syllable = 0xAC00 + (L·21 + V)·28 + T
            int s = cp - 0xAC00;
            sb.Append((char)(0x1100 + s / (21 * 28))).Append((char)(0x1161 + s % (21 * 28) / 28));
            if (s % 28 != 0) sb.Append((char)(0x11A7 + s % 28));
            return;
        }
        if (Maps.Strip.TryGetValue(cp, out var rep)) sb.Append(rep);
        else sb.Append(r.ToString());
    }

    /// <summary>The full lowercase mapping of one code point (may be longer than one character).</summary>
    public static string ToLower(Rune r) => Maps.Lower.TryGetValue(r.Value, out var l) ? l : r.ToString();
}
