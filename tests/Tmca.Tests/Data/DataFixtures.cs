using System.Buffers.Binary;
using System.IO.Compression;
using MiniExcelLibs;
using Tmca.Data.Images;

namespace Tmca.Tests.Data;

/// <summary>Builds small datasets in temporary folders, in each layout, for the layout and bad-input tests.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("tmca-data-").FullName;
    public string this[string relative] => System.IO.Path.Combine(Path, relative);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}

public static class DataFixtures
{
    public static void Png(string path, int w, int h, Func<int, int, byte> f)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var px = new byte[w * h];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) px[y * w + x] = f(x, y);
        ImageIO.SaveGreyPng(path, px, w, h);
    }

    public static void Image(string path, int w = 40, int h = 40) => Png(path, w, h, (x, y) => (byte)((x * 7 + y * 3) % 256));
    public static void Mask(string path, int w = 40, int h = 40) => Png(path, w, h, (x, y) => x > 10 && x < 25 && y > 5 && y < 30 ? (byte)255 : (byte)0);

    public static void Workbook(string path, IEnumerable<(string Image, string Description)> rows)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        MiniExcel.SaveAs(path, rows.Select(r => new Dictionary<string, object> { ["Image"] = r.Image, ["Description"] = r.Description }).ToList(), overwriteFile: true);
    }

    /// <summary>LViT layout. QaTa style: masks "mask_&lt;image&gt;" and one Train_Val_text.xlsx; MoNuSeg style: same names, one workbook per split.</summary>
    public static void Lvit(string root, bool qataStyle, bool withVal, int train = 6, int test = 3)
    {
        void Split(string folder, string prefix, int n, List<(string, string)> rows)
        {
            for (int i = 0; i < n; i++)
            {
                string name = $"{prefix}{i}.png", mask = qataStyle ? "mask_" + name : name;
                Image(System.IO.Path.Combine(root, folder, "img", name));
                Mask(System.IO.Path.Combine(root, folder, "labelcol", mask));
                rows.Add((mask, $"unilateral pulmonary infection, one infected area, lower left lung {i}."));
            }
        }
        var trainRows = new List<(string, string)>(); var valRows = new List<(string, string)>(); var testRows = new List<(string, string)>();
        Split("Train_Folder", "tr", train, trainRows);
        if (withVal) Split("Val_Folder", "va", 2, valRows);
        Split("Test_Folder", "te", test, testRows);
        if (qataStyle) Workbook(System.IO.Path.Combine(root, "Train_Folder", "Train_Val_text.xlsx"), trainRows.Concat(valRows));
        else
        {
            Workbook(System.IO.Path.Combine(root, "Train_Folder", "Train_text.xlsx"), trainRows);
            if (withVal) Workbook(System.IO.Path.Combine(root, "Val_Folder", "Val_text.xlsx"), valRows);
        }
        Workbook(System.IO.Path.Combine(root, "Test_Folder", "Test_text.xlsx"), testRows);
    }

    public static void Csv(string root, bool withVal, int train = 6, int test = 3)
    {
        void Split(string folder, string csv, string prefix, int n)
        {
            var lines = new List<string> { "Image,Description" };
            for (int i = 0; i < n; i++)
            {
                string name = $"{prefix}{i}.png";
                Image(System.IO.Path.Combine(root, folder, "Images", name));
                Mask(System.IO.Path.Combine(root, folder, "GTs", "mask_" + name));
                lines.Add($"mask_{name},\"bilateral pulmonary infection, two infected areas, upper left lung and lower right lung.\"");
            }
            Directory.CreateDirectory(System.IO.Path.Combine(root, "prompt"));
            File.WriteAllLines(System.IO.Path.Combine(root, "prompt", csv), lines);
        }
        Split("Train", "train.csv", "tr", train);
        if (withVal) Split("Val", "val.csv", "va", 2);
        Split("Test", "test.csv", "te", test);
    }

    public static void PerId(string root, bool withVal, int train = 6, int test = 3)
    {
        var split = new Dictionary<string, List<string>> { ["train"] = new(), ["test"] = new() };
        if (withVal) split["val"] = new();
        int k = 0;
        foreach (var (name, n) in new[] { ("train", train), ("val", withVal ? 2 : 0), ("test", test) })
            for (int i = 0; i < n; i++, k++)
            {
                string id = $"case_{k:D3}";
                Image(System.IO.Path.Combine(root, "images", id + ".png"));
                Mask(System.IO.Path.Combine(root, "masks", id + ".png"));
                Directory.CreateDirectory(System.IO.Path.Combine(root, "reports"));
                File.WriteAllText(System.IO.Path.Combine(root, "reports", id + ".txt"), "unilateral pulmonary infection, one infected area, upper right lung.\n");
                split[name].Add(id);
            }
        File.WriteAllText(System.IO.Path.Combine(root, "split.json"), System.Text.Json.JsonSerializer.Serialize(split));
    }

    /// <summary>A true 16-bit greyscale PNG (colour type 0, bit depth 16), written by hand.</summary>
    public static void Grey16Png(string path, ushort[] px, int w, int h)
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, w); BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), h);
        ihdr[8] = 16; ihdr[9] = 0;
        Chunk(ms, "IHDR", ihdr);
        var raw = new MemoryStream();
        for (int y = 0; y < h; y++)
        {
            raw.WriteByte(0);
            for (int x = 0; x < w; x++) { raw.WriteByte((byte)(px[y * w + x] >> 8)); raw.WriteByte((byte)px[y * w + x]); }
        }
        var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) raw.WriteTo(zs);
        Chunk(ms, "IDAT", z.ToArray());
        Chunk(ms, "IEND", []);
        File.WriteAllBytes(path, ms.ToArray());

        static void Chunk(Stream s, string type, byte[] data)
        {
            var len = new byte[4]; BinaryPrimitives.WriteInt32BigEndian(len, data.Length); s.Write(len);
            var td = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
            s.Write(td);
            var crc = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(td)); s.Write(crc);
        }
        static uint Crc32(byte[] d)
        {
            uint c = 0xFFFFFFFF;
            foreach (var b in d) { c ^= b; for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1; }
            return ~c;
        }
    }
}
