using System.Text;
using Tmca.Data;

namespace Tmca.Training;

/// <summary>Reads an evaluation's per-sample.csv (written by <see cref="Evaluator.Write"/>): each image's id and pixel counts.</summary>
public static class PerSampleCsv
{
    public static List<(string Id, Confusion Counts)> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no per-sample.csv (evaluate the run first)", path);
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0 || !lines[0].StartsWith("id,tp,fp,fn,tn")) throw new InvalidDataException($"{path}: not a per-sample.csv (expected the header id,tp,fp,fn,tn,…)");
        var rows = new List<(string, Confusion)>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            var f = Fields(lines[i], 5);
            if (f.Count < 5 || !long.TryParse(f[1], out var tp) || !long.TryParse(f[2], out var fp) || !long.TryParse(f[3], out var fn) || !long.TryParse(f[4], out var tn))
                throw new InvalidDataException($"{path}: line {i + 1} is not id,tp,fp,fn,tn,…");
            rows.Add((f[0], new Confusion(tp, fp, fn, tn)));
        }
        return rows;
    }

    /// <summary>The first <paramref name="count"/> comma-separated fields of a CSV line (double quotes honoured).</summary>
    private static List<string> Fields(string line, int count)
    {
        var fields = new List<string>();
        var sb = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length && fields.Count < count; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else sb.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(sb.ToString()); sb.Clear(); }
            else sb.Append(c);
        }
        if (fields.Count < count) fields.Add(sb.ToString());
        return fields;
    }
}
