using System.IO.Compression;
using MiniExcelLibs;
using Tmca.Engine;

namespace Tmca.Data.Layouts;

/// <summary>
/// Rows of (Image, Description) from .xlsx workbooks or .csv files, keyed by the Image column. Before MiniExcel sees a
/// file it is checked here: at most <see cref="MaxFileBytes"/>; a CSV must be UTF-8 with lines of at most
/// <see cref="MaxLineBytes"/>; a workbook's zip entries may not claim more than <see cref="MaxEntryBytes"/> each, nor
/// expand more than deflate can (1032:1) — a zip bomb is refused before anything is inflated.
/// </summary>
internal sealed class ReportTable
{
    public const long MaxFileBytes = 64 << 20;
    public const int MaxLineBytes = 1 << 20;
    public const long MaxEntryBytes = 256 << 20;
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
        byte[] bytes;
        try
        {
            if (new FileInfo(path).Length > MaxFileBytes) throw new DataException(path, $"{new FileInfo(path).Length:N0} bytes, more than the {MaxFileBytes:N0} a report table may have");
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e) { throw new DataException(path, $"cannot be read ({e.Message})", e); }
        if (csv) CheckCsv(path, bytes); else CheckZip(path, bytes);
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            rows = MiniExcel.Query(stream, useHeaderRow: true, excelType: csv ? ExcelType.CSV : ExcelType.XLSX)
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

    private static void CheckCsv(string path, byte[] bytes)
    {
        try { StrictText.Validate(bytes, path, "CSV file"); }
        catch (InputFileException e) { throw new DataException(path, e.Problem); }
        int line = 1, start = 0;
        for (int i = 0; i <= bytes.Length; i++)
        {
            if (i < bytes.Length && bytes[i] != (byte)'\n') continue;
            if (i - start > MaxLineBytes) throw new DataException(path, $"line {line} is {i - start:N0} bytes long, more than the {MaxLineBytes:N0} a report row may have");
            line++; start = i + 1;
        }
    }

    /// <summary>An .xlsx is a zip: its central directory is read and judged before any entry is inflated.</summary>
    private static void CheckZip(string path, byte[] bytes)
    {
        try
        {
            using var zip = new ZipArchive(new MemoryStream(bytes, writable: false), ZipArchiveMode.Read);
            long total = 0;
            foreach (var e in zip.Entries)
            {
                if (e.Length > MaxEntryBytes) throw new DataException(path, $"zip entry '{e.FullName}' claims {e.Length:N0} bytes, more than the {MaxEntryBytes:N0} a workbook part may have (a zip bomb?)");
                if (e.Length > 1100 * Math.Max(e.CompressedLength, 1) + 4096) throw new DataException(path, $"zip entry '{e.FullName}' claims to expand {e.CompressedLength:N0} bytes into {e.Length:N0}, more than deflate can (a zip bomb or a corrupt directory)");
                total += e.Length;
            }
            if (total > MaxEntryBytes) throw new DataException(path, $"the workbook's parts claim {total:N0} bytes in all, more than {MaxEntryBytes:N0}");
        }
        catch (InvalidDataException e) { throw new DataException(path, $"unreadable workbook (not a valid zip: {e.Message})", e); }
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
