using System.Text.Json;

namespace Tmca.Training;

/// <summary>Append-only JSON-lines logs of a run: one line per step (steps.jsonl) and per epoch (epochs.jsonl).</summary>
public sealed class RunLog(string dir)
{
    public string StepsPath { get; } = Path.Combine(dir, "steps.jsonl");
    public string EpochsPath { get; } = Path.Combine(dir, "epochs.jsonl");
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    public void Step(object record) => Append(StepsPath, record);
    public void Epoch(object record) => Append(EpochsPath, record);

    private static void Append(string path, object record)
    {
        using var w = new StreamWriter(path, append: true);
        w.WriteLine(JsonSerializer.Serialize(record, Json));
    }

    /// <summary>Drops log lines written after a checkpoint (a resumed run continues from the checkpoint, not from
    /// where a crash interrupted the log).</summary>
    public void TruncateAfter(int epoch, long step)
    {
        Filter(StepsPath, e => e.GetProperty("step").GetInt64() <= step);
        Filter(EpochsPath, e => e.GetProperty("epoch").GetInt32() <= epoch);
    }

    private static void Filter(string path, Func<JsonElement, bool> keep)
    {
        if (!File.Exists(path)) return;
        // A process killed while appending leaves a partial last line: it does not parse, and goes.
        var lines = File.ReadAllLines(path).Where(l => Parse(l) is { } e && keep(e)).ToList();
        Tmca.Engine.AtomicFile.WriteAllText(path, string.Join("\n", lines) + (lines.Count > 0 ? "\n" : ""));
    }

    public IEnumerable<JsonElement> ReadSteps() => Read(StepsPath);
    public IEnumerable<JsonElement> ReadEpochs() => Read(EpochsPath);

    private static IEnumerable<JsonElement> Read(string path) =>
        File.Exists(path) ? File.ReadLines(path).Select(Parse).OfType<JsonElement>().ToList() : [];

    private static JsonElement? Parse(string line)
    {
        if (line.Length == 0) return null;
        try
        {
            using var d = JsonDocument.Parse(line);
            return d.RootElement.ValueKind == JsonValueKind.Object && d.RootElement.TryGetProperty("step", out _) ? d.RootElement.Clone() : null;
        }
        catch (JsonException) { return null; }
    }
}
