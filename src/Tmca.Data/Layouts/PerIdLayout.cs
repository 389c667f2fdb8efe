using System.Text.Json;
using Tmca.Engine;

namespace Tmca.Data.Layouts;

/// <summary>
/// Per-id layout: images/&lt;id&gt;.*, masks/&lt;id&gt;.*, reports/&lt;id&gt;.txt and split.json {"train": [...], "val": [...],
/// "test": [...]}. Without "val" the last 20 % of the training ids are held out. Ids listed twice are kept as
/// listed (they are acquisition duplicates in QaTa's official split) and noted.
/// </summary>
internal static class PerIdLayout
{
    public const long MaxSplitBytes = 16 << 20, MaxReportBytes = 1 << 20;

    public static Dataset Load(string root)
    {
        string splitPath = Path.Combine(root, "split.json");
        Dictionary<string, List<string>> split;
        try
        {
            split = JsonSerializer.Deserialize<Dictionary<string, List<string>>>(StrictText.Read(splitPath, MaxSplitBytes, "split file"))
                    ?? throw new DataException(splitPath, "empty split file");
        }
        catch (JsonException e) { throw new DataException(splitPath, $"not a JSON object of id lists ({e.Message})", e); }
        foreach (var (k, ids) in split)
        {
            if (ids is null) throw new DataException(splitPath, $"\"{k}\" is null, not a list of ids");
            // An id becomes a file name: nothing that could leave the dataset folder or name no file at all.
            int bad = ids.FindIndex(id => string.IsNullOrWhiteSpace(id) || id.Length > 255 || id.IndexOfAny(['/', '\\', '\0']) >= 0 || id is "." or ".." || id.Any(char.IsControl));
            if (bad >= 0) throw new DataException(splitPath, $"\"{k}\" lists an id that is not a plain file name: {JsonSerializer.Serialize(ids[bad])}");
        }
        foreach (var k in split.Keys)
            if (k is not ("train" or "val" or "test")) throw new DataException(splitPath, $"unknown split '{k}' (train, val, test)");
        if (!split.ContainsKey("train")) throw new DataException(splitPath, "no \"train\" list");
        if (!split.ContainsKey("test")) throw new DataException(splitPath, "no \"test\" list");
        string images = DatasetLoader.RequireDir(Path.Combine(root, "images"));
        string masks = DatasetLoader.RequireDir(Path.Combine(root, "masks"));
        string reports = DatasetLoader.RequireDir(Path.Combine(root, "reports"));
        var notes = new List<string>();

        List<Sample> Read(string name)
        {
            var ids = split[name];
            int dups = ids.Count - ids.Distinct().Count();
            if (dups > 0) notes.Add($"split.json lists {dups} id(s) of \"{name}\" twice; they are kept as listed");
            var list = new List<Sample>(ids.Count);
            foreach (var id in ids)
            {
                var img = DatasetLoader.FindImage(images, id) ?? throw new DataException(Path.Combine(images, id + ".png"), $"image for id '{id}' ({name} split) not found");
                var mask = DatasetLoader.FindImage(masks, id) ?? throw new DataException(Path.Combine(masks, id + ".png"), $"mask for id '{id}' ({name} split) not found");
                var rep = Path.Combine(reports, id + ".txt");
                if (!File.Exists(rep)) throw new DataException(rep, $"report for id '{id}' ({name} split) not found");
                list.Add(new Sample(id, img, mask, StrictText.Read(rep, MaxReportBytes, "report").Trim()));
            }
            return list;
        }

        var train = Read("train");
        List<Sample> val;
        if (split.ContainsKey("val")) val = Read("val");
        else
        {
            (train, val, var note) = Dataset.HoldOut(train, splitPath);
            notes.Add(note);
        }
        var ds = new Dataset { Root = root, Layout = "per-id", Train = train, Val = val, Test = Read("test") };
        ds.Notes.AddRange(notes);
        return ds;
    }
}
