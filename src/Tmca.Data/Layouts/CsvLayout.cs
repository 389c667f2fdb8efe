namespace Tmca.Data.Layouts;

/// <summary>
/// LanGuideMedSeg / MMI-UNet layout: &lt;Split&gt;/Images, &lt;Split&gt;/GTs and prompt/&lt;split&gt;.csv with columns
/// Image (the mask file name, "mask_&lt;image&gt;") and Description. Without prompt/val.csv the last 20 % of the
/// training rows are the validation split. Rows drive the samples; images without a row are errors.
/// </summary>
internal static class CsvLayout
{
    public static Dataset Load(string root)
    {
        string prompt = Path.Combine(root, "prompt");
        string Csv(string split) => Path.Combine(prompt, split + ".csv");
        if (!File.Exists(Csv("train"))) throw new DataException(Csv("train"), "file not found");
        if (!File.Exists(Csv("test"))) throw new DataException(Csv("test"), "file not found");
        var notes = new List<string>();
        var train = ReadSplit(root, "Train", Csv("train"));
        List<Sample> val;
        if (File.Exists(Csv("val"))) val = ReadSplit(root, Directory.Exists(Path.Combine(root, "Val")) ? "Val" : "Train", Csv("val"));
        else
        {
            (train, val, var note) = Dataset.HoldOut(train, Csv("train"));
            notes.Add(note);
        }
        var test = ReadSplit(root, "Test", Csv("test"));
        var ds = new Dataset { Root = root, Layout = "csv", Train = train, Val = val, Test = test };
        ds.Notes.AddRange(notes);
        return ds;
    }

    private static List<Sample> ReadSplit(string root, string folder, string csv)
    {
        string images = DatasetLoader.RequireDir(Path.Combine(root, folder, "Images"));
        string gts = DatasetLoader.RequireDir(Path.Combine(root, folder, "GTs"));
        var table = ReportTable.Read([csv]);
        var samples = new List<Sample>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, _) in table.Order)
        {
            string maskName = key;
            string maskPath = Path.Combine(gts, maskName);
            if (!File.Exists(maskPath)) maskPath = DatasetLoader.FindImage(gts, Path.GetFileNameWithoutExtension(maskName)) ?? maskPath;
            if (!File.Exists(maskPath)) throw new DataException(csv, $"row '{key}': mask not found in {gts}");
            string imageName = maskName.StartsWith("mask_") ? maskName["mask_".Length..] : maskName;
            string? imagePath = File.Exists(Path.Combine(images, imageName)) ? Path.Combine(images, imageName)
                              : DatasetLoader.FindImage(images, Path.GetFileNameWithoutExtension(imageName));
            if (imagePath is null) throw new DataException(csv, $"row '{key}' has no image: {imageName} not found in {images}");
            used.Add(Path.GetFileName(imagePath));
            samples.Add(new Sample(Path.GetFileNameWithoutExtension(imagePath), imagePath, maskPath, table.Rows[key].Description));
        }
        // The validation CSV may cover only part of Train/Images; only the train and test CSVs must cover their folders.
        if (!csv.EndsWith("val.csv", StringComparison.OrdinalIgnoreCase) && folder != "Train")
            foreach (var f in Directory.EnumerateFiles(images).Where(DatasetLoader.IsImageFile))
                if (!used.Contains(Path.GetFileName(f))) throw new DataException(f, $"no report row for this image in {csv}");
        return samples;
    }
}
