namespace Tmca.Data.Layouts;

/// <summary>One image, its mask and its report, by file path.</summary>
public sealed record Sample(string Id, string ImagePath, string MaskPath, string Report);

/// <summary>A dataset read from one of the supported layouts: three splits and notes on what was inferred.</summary>
public sealed class Dataset
{
    public required string Root { get; init; }
    public required string Layout { get; init; }
    public required IReadOnlyList<Sample> Train { get; init; }
    public required IReadOnlyList<Sample> Val { get; init; }
    public required IReadOnlyList<Sample> Test { get; init; }
    /// <summary>Things the user should know (a held-out validation split, duplicate ids, …).</summary>
    public List<string> Notes { get; } = new();

    public IReadOnlyList<Sample> Split(string name) => name.ToLowerInvariant() switch
    {
        "train" => Train,
        "val" or "validation" => Val,
        "test" => Test,
        _ => throw new ArgumentException($"unknown split '{name}' (train, val, test)"),
    };

    /// <summary>The last 20 % of the training rows become the validation split (layouts that ship none).</summary>
    internal static (List<Sample> Train, List<Sample> Val, string Note) HoldOut(List<Sample> train, string source)
    {
        int nVal = Math.Max(1, (int)Math.Round(train.Count * 0.2));
        if (train.Count < 2) throw new DataException(source, "too few training rows to hold out a validation split");
        var note = $"no validation split in {source}: held out the last 20 % of the training rows ({nVal} of {train.Count}) for validation";
        return (train[..^nVal], train[^nVal..], note);
    }
}

/// <summary>
/// Finds and reads a dataset folder in one of the three layouts users have (see ../shared/data/README.md):
/// "lvit" (Train_Folder/img, labelcol, .xlsx reports), "csv" (Train/Images, GTs, prompt/*.csv) and "per-id"
/// (images/, masks/, reports/*.txt, split.json). Every problem is a <see cref="DataException"/> that names the file.
/// </summary>
public static class DatasetLoader
{
    public static readonly string[] Layouts = ["lvit", "csv", "per-id"];
    internal static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"];

    public static Dataset Load(string root, string? layout = null)
    {
        root = Path.GetFullPath(root);
        if (!Directory.Exists(root)) throw new DataException(root, "dataset folder not found");
        layout ??= Detect(root);
        var ds = layout switch
        {
            "lvit" => LvitLayout.Load(root),
            "csv" => CsvLayout.Load(root),
            "per-id" => PerIdLayout.Load(root),
            _ => throw new DataException(root, $"unknown layout '{layout}' (expected one of: {string.Join(", ", Layouts)})"),
        };
        foreach (var (name, split) in new[] { ("train", ds.Train), ("val", ds.Val), ("test", ds.Test) })
            if (split.Count == 0) throw new DataException(root, $"the {name} split is empty");
        return ds;
    }

    public static string Detect(string root)
    {
        if (File.Exists(Path.Combine(root, "split.json"))) return "per-id";
        if (Directory.Exists(Path.Combine(root, "prompt")) && Directory.EnumerateFiles(Path.Combine(root, "prompt"), "*.csv").Any()) return "csv";
        if (Directory.Exists(Path.Combine(root, "Train_Folder"))) return "lvit";
        throw new DataException(root, "unknown dataset layout: expected split.json (per-id), prompt/*.csv (csv) or Train_Folder/ (lvit); " +
                                      "see README \"Datasets\", or pass --layout");
    }

    /// <summary>The file in <paramref name="dir"/> with this stem and an image extension, or null.</summary>
    internal static string? FindImage(string dir, string stem)
    {
        foreach (var ext in ImageExtensions)
        {
            var p = Path.Combine(dir, stem + ext);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    internal static string RequireDir(string path)
    {
        if (!Directory.Exists(path)) throw new DataException(path, "folder not found");
        return path;
    }

    internal static bool IsImageFile(string path) => ImageExtensions.Contains(Path.GetExtension(path).ToLowerInvariant());
}
