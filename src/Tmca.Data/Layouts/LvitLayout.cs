namespace Tmca.Data.Layouts;

/// <summary>
/// LViT layout: &lt;Split&gt;_Folder/img, &lt;Split&gt;_Folder/labelcol and .xlsx workbooks (columns Image, Description)
/// keyed by the mask file name. Masks are named like the image (MoNuSeg, any image extension) or
/// "mask_&lt;image name&gt;" (QaTa). QaTa's single Train_Val_text.xlsx serves train and val. Without a Val_Folder
/// the last 20 % of the training images are held out.
/// </summary>
internal static class LvitLayout
{
    public static Dataset Load(string root)
    {
        string train = DatasetLoader.RequireDir(Path.Combine(root, "Train_Folder"));
        string test = DatasetLoader.RequireDir(Path.Combine(root, "Test_Folder"));
        string? val = Directory.Exists(Path.Combine(root, "Val_Folder")) ? Path.Combine(root, "Val_Folder") : null;
        static IEnumerable<string> Books(string dir) => Directory.Exists(dir) ? Directory.EnumerateFiles(dir, "*.xlsx").Where(f => !Path.GetFileName(f).StartsWith("~$")).Order() : [];
        var rootBooks = Books(root).ToList();
        var trainBooks = Books(train).Concat(rootBooks).ToList();
        var allRows = new List<(ReportTable Table, string Split)>();

        var trainTable = ReportTable.Read(trainBooks);
        var testTable = ReportTable.Read(Books(test).Concat(rootBooks));
        var trainSamples = ReadSplit(train, trainTable);
        List<Sample> valSamples;
        var notes = new List<string>();
        if (val is not null)
        {
            var valTable = ReportTable.Read(Books(val).Concat(trainBooks));
            valSamples = ReadSplit(val, valTable);
            CheckRowsHaveImages(valTable, [.. trainSamples, .. valSamples]);
        }
        else
        {
            (trainSamples, valSamples, var note) = Dataset.HoldOut(trainSamples, Path.Combine(root, "Train_Folder"));
            notes.Add(note);
        }
        var testSamples = ReadSplit(test, testTable);
        CheckRowsHaveImages(trainTable, [.. trainSamples, .. valSamples]);
        CheckRowsHaveImages(testTable, testSamples);
        var ds = new Dataset { Root = root, Layout = "lvit", Train = trainSamples, Val = valSamples, Test = testSamples };
        ds.Notes.AddRange(notes);
        return ds;
    }

    private static List<Sample> ReadSplit(string folder, ReportTable table)
    {
        string img = DatasetLoader.RequireDir(Path.Combine(folder, "img"));
        string lab = DatasetLoader.RequireDir(Path.Combine(folder, "labelcol"));
        var samples = new List<Sample>();
        foreach (var imagePath in Directory.EnumerateFiles(img).Where(DatasetLoader.IsImageFile).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(imagePath), stem = Path.GetFileNameWithoutExtension(imagePath);
            string? mask = DatasetLoader.FindImage(lab, stem) ?? DatasetLoader.FindImage(lab, "mask_" + stem);
            if (mask is null) throw new DataException(imagePath, $"no mask for this image in {lab} (looked for {stem}.* and mask_{stem}.*)");
            if (!table.TryFind(Path.GetFileName(mask), name, out var report, out _))
                throw new DataException(imagePath, $"no report row for mask '{Path.GetFileName(mask)}' in {string.Join(", ", table.Order.Select(o => o.Source).Distinct().DefaultIfEmpty("(no workbook found)"))}");
            samples.Add(new Sample(stem, imagePath, mask, report));
        }
        return samples;
    }

    /// <summary>Every workbook row must belong to an image of its splits: a row without an image is an error.</summary>
    private static void CheckRowsHaveImages(ReportTable table, List<Sample> samples)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in samples)
        {
            keys.Add(Path.GetFileName(s.MaskPath)); keys.Add(Path.GetFileName(s.ImagePath));
            keys.Add(Path.GetFileNameWithoutExtension(s.MaskPath)); keys.Add(Path.GetFileNameWithoutExtension(s.ImagePath));
        }
        foreach (var (key, source) in table.Order)
            if (!keys.Contains(key)) throw new DataException(source, $"row '{key}' has no image (no such mask or image in the dataset)");
    }
}
