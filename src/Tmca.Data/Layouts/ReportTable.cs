using MiniExcelLibs;

namespace Tmca.Data.Layouts;

/// <summary>Rows of (Image, Description) from .xlsx workbooks or .csv files, keyed by the Image column.</summary>
internal sealed class ReportTable
{
    public readonly Dictionary<string, (string Description, string Source)> Rows = new(StringComparer.Ordinal);
    public readonly List<(string Key, string Source)> Order = new();

    public static ReportTable Read(IEnumerable<string> files)
    {
        var t = new ReportTable();
        foreach (var f in files) t.Add(f);
        return t;
    }

    public void Add(string path)
    {
        IEnumerable<IDictionary<string, object?>> rows;
        bool csv = path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase);
        try
        {
            rows = MiniExcel.Query(path, useHeaderRow: true, excelType: csv ? ExcelType.CSV : ExcelType.XLSX)
                            .Cast<IDictionary<string, object?>>().ToList();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new DataException(path, $"unreadable {(csv ? "CSV file" : "workbook")} ({e.GetType().Name}: {e.Message})", e);
        }
        int line = 1;
        foreach (var r in rows)
        {
            line++;
            string? Col(string name) => r.FirstOrDefault(kv => string.Equals(kv.Key?.Trim(), name, StringComparison.OrdinalIgnoreCase)).Value?.ToString();
            if (line == 2 && (!r.Keys.Any(k => string.Equals(k?.Trim(), "Image", StringComparison.OrdinalIgnoreCase)) ||
                              !r.Keys.Any(k => string.Equals(k?.Trim(), "Description", StringComparison.OrdinalIgnoreCase))))
                throw new DataException(path, $"needs columns 'Image' and 'Description', found: {string.Join(", ", r.Keys)}");
            var key = Col("Image")?.Trim();
            var desc = Col("Description")?.Trim() ?? "";
            if (string.IsNullOrEmpty(key)) continue;   // blank rows at the end of a sheet
            if (Rows.TryGetValue(key, out var prev) && prev.Description != desc)
                throw new DataException(path, $"row {line}: '{key}' already has a different description in {prev.Source}");
            if (Rows.TryAdd(key, (desc, path))) Order.Add((key, path));
        }
    }

    /// <summary>The report for a mask (the key), also trying the image name and the stems.</summary>
    public bool TryFind(string maskName, string imageName, out string description, out string key)
    {
        foreach (var k in new[] { maskName, imageName, Path.GetFileNameWithoutExtension(maskName), Path.GetFileNameWithoutExtension(imageName) })
            if (Rows.TryGetValue(k, out var v)) { description = v.Description; key = k; return true; }
        description = ""; key = "";
        return false;
    }
}
