using System.Buffers.Binary;
using System.IO.Compression;
using Encoding = System.Text.Encoding;
using BitMiracle.LibTiff.Classic;
using SkiaSharp;
using Tmca.Data.Images;
using Tmca.Data.Layouts;
using Tmca.Engine;
using Tmca.Model;
using Tmca.Model.Text;
using Tmca.Tests.Data;
using Tmca.Training;

namespace Tmca.Tests.Reliability;

/// <summary>Every reader of the project, with its seed files, its crafted hostile files and its allocation cap.</summary>
public static class FuzzTargets
{
    public const long MiB = 1 << 20;
    private static readonly string Tmp = Directory.CreateTempSubdirectory("tmca-fuzz-seeds-").FullName;

    /// <summary>Cases long runs (TMCA_FUZZ_CASES=5000, random seeds) found failing, kept so that CI replays them every time.</summary>
    public static readonly (string Reader, int Seed, int[] Cases)[] Regressions =
    [
        // StbImageSharp allocated up to 1 GB from a 278-byte 16-bit PNG whose chunk lengths were flipped; chunks are now walked first
        ("png16", 741006423, [561, 1638, 4017]),
        ("png16", 777, [810, 1938, 4232, 4392]),
        ("png16", 4242, [1364, 2993, 3947, 4639]),
    ];

    public static readonly string[] Names = ["png8", "png16", "jpeg", "tiff", "xlsx", "csv", "split.json", "report", "safetensors", "config", "options", "vocab"];

    public static FuzzTarget Get(string name) => name switch
    {
        "png8" => Image(name, ".png", [Png8Grey(), Png8Rgb()], [("100000×100000 IHDR", PngWithSize(100_000, 100_000, 8)), ("65535×65535 IHDR, no data", PngWithSize(65535, 65535, 8)), ("zero width", PngWithSize(0, 16, 8))]),
        "png16" => Image(name, ".png", [Png16()], [("100000×100000 16-bit IHDR", PngWithSize(100_000, 100_000, 16)), ("3000×3000 16-bit, 1 IDAT byte", PngWithSize(3000, 3000, 16)),
                                                  ("an IDAT claiming 1 GB", WithIdatLength(Png16(), 0x4000_0000))]),
        "jpeg" => Image(name, ".jpg", [Jpeg()], [("SOF 65000×65000", JpegWithSize(65000, 65000)), ("SOF 0×0", JpegWithSize(0, 0))]),
        "tiff" => Image(name, ".tif", [Tiff8Rgb(), Tiff16Grey()], TiffCrafted()),
        "xlsx" => Table(name, "reports.xlsx", [Xlsx()], XlsxCrafted()),
        "csv" => Table(name, "reports.csv", [Encoding.UTF8.GetBytes("Image,Description\nmask_a.png,\"left lung, lower zone\"\nmask_b.png,bilateral\n")], CsvCrafted()),
        "split.json" => PerId(name, "split.json", [Encoding.UTF8.GetBytes("{\"train\": [\"case_000\", \"case_001\"], \"val\": [\"case_002\"], \"test\": [\"case_003\"]}")], JsonCrafted()
            .Concat([("id escaping the folder", Encoding.UTF8.GetBytes("{\"train\": [\"../../etc/passwd\", \"a\"], \"test\": [\"b\"]}")), ("null id", Encoding.UTF8.GetBytes("{\"train\": [null, \"case_000\"], \"test\": [\"case_003\"]}"))]).ToArray()),
        "report" => PerId(name, "reports/case_000.txt", [Encoding.UTF8.GetBytes("unilateral pulmonary infection, one infected area, upper right lung.\n")], TextCrafted()),
        "safetensors" => Checkpoint(),
        "config" => Text(name, [Encoding.UTF8.GetBytes(SmallConfig().ToJson())], JsonCrafted(), p => new TrainOptions { ConfigFile = p }.ResolveConfig(), 1 * MiB, 48),
        "options" => Text(name, [Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new TrainOptions { Data = "/data/qata", Epochs = 3 }))], JsonCrafted(), p => TrainOptions.Load(p), 1 * MiB, 48),
        "vocab" => Text(name, [Vocab()], [.. TextCrafted(), ("no [CLS]", Encoding.UTF8.GetBytes("[PAD]\n[UNK]\n[SEP]\nlung\n")), ("a 4 KB token", Encoding.UTF8.GetBytes("[PAD]\n[UNK]\n[CLS]\n[SEP]\n" + new string('x', 4096) + "\n"))],
                        p => WordPieceTokenizer.FromVocabFile(p), 1 * MiB, 64),
        _ => throw new ArgumentException(name),
    };

    // ---- readers ----------------------------------------------------------------------------------------

    private static FuzzTarget Image(string name, string ext, byte[][] seeds, (string, byte[])[] crafted) =>
        new(name, seeds, crafted, p => ImageIO.Load(p), len => 2 * MiB + ImageIO.BytesPerPixel * ImageIO.PixelLimit(len),
            $"2 MiB + {ImageIO.BytesPerPixel} B × the pixels a file of this size may declare", "image" + ext);

    private static FuzzTarget Table(string name, string file, byte[][] seeds, (string, byte[])[] crafted) =>
        new(name, seeds, crafted, p => ReportTable.Read([p]), len => 16 * MiB + 64 * len, "16 MiB + 64 B per file byte", file);

    private static FuzzTarget Text(string name, byte[][] seeds, (string, byte[])[] crafted, Action<string> read, long fixedCap, int perByte) =>
        new(name, seeds, crafted, read, len => fixedCap + perByte * len, $"{fixedCap / MiB} MiB + {perByte} B per file byte", name + ".txt");

    /// <summary>The fuzzed file inside a small per-id dataset (images, masks, reports present): the whole loader runs.</summary>
    private static FuzzTarget PerId(string name, string file, byte[][] seeds, (string, byte[])[] crafted) =>
        new(name, seeds, crafted, p => DatasetLoader.Load(Path.GetDirectoryName(p)!.EndsWith("reports") ? Path.GetDirectoryName(Path.GetDirectoryName(p))! : Path.GetDirectoryName(p)!),
            len => 4 * MiB + 48 * len, "4 MiB + 48 B per file byte", file, dir => DataFixtures.PerId(dir, withVal: true, train: 2, test: 1), ErrorMayNameAnotherFile: true);

    private static FuzzTarget Checkpoint()
    {
        var model = new TmcaModel(SmallConfig(), new TmcaFlags(), seed: 3);
        string p = Path.Combine(Tmp, "model.safetensors");
        Tmca.Model.Checkpoint.Save(model, p);
        var valid = File.ReadAllBytes(p);
        return new FuzzTarget("safetensors", [valid], SafetensorsCrafted(valid),
            path => TrainingCheckpoint.LoadModel(path), len => 4 * MiB + 16 * len, "4 MiB + 16 B per file byte", "model.safetensors");
    }

    /// <summary>A model small enough to fuzz its checkpoint quickly (about 60 KB).</summary>
    private static TmcaConfig SmallConfig() => TestConfigs.Tiny with { VocabSize = 64 };

    // ---- seed files -------------------------------------------------------------------------------------

    private static byte[] Encode(SKBitmap bmp, SKEncodedImageFormat f, int q = 100) { using var d = bmp.Encode(f, q); return d.ToArray(); }

    private static byte[] Png8Grey()
    {
        string p = Path.Combine(Tmp, "g.png");
        DataFixtures.Png(p, 16, 12, (x, y) => (byte)(x * 13 + y * 7));
        return File.ReadAllBytes(p);
    }

    private static SKBitmap Rgb(int w, int h)
    {
        var bmp = new SKBitmap(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) bmp.SetPixel(x, y, new SKColor((byte)(x * 16), (byte)(y * 16), (byte)(x ^ y)));
        return bmp;
    }

    private static byte[] Png8Rgb() { using var b = Rgb(12, 10); return Encode(b, SKEncodedImageFormat.Png); }
    private static byte[] Jpeg() { using var b = Rgb(16, 16); return Encode(b, SKEncodedImageFormat.Jpeg, 80); }

    private static byte[] Png16()
    {
        string p = Path.Combine(Tmp, "g16.png");
        DataFixtures.Grey16Png(p, Enumerable.Range(0, 100).Select(i => (ushort)(i * 650)).ToArray(), 10, 10);
        return File.ReadAllBytes(p);
    }

    /// <summary>A PNG whose IHDR declares w×h (valid CRCs) followed by one tiny IDAT.</summary>
    private static byte[] PngWithSize(int w, int h, int depth)
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, w); BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), h);
        ihdr[8] = (byte)depth;
        Chunk(ms, "IHDR", ihdr);
        Chunk(ms, "IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var td = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(td);
        BinaryPrimitives.WriteUInt32BigEndian(len, Crc(td));
        s.Write(len);
    }

    private static uint Crc(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data) { c ^= b; for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1; }
        return c ^ 0xFFFFFFFF;
    }

    private static byte[] WithIdatLength(byte[] png, uint length)
    {
        var b = (byte[])png.Clone();
        for (int at = 8; at + 8 <= b.Length; at += 12 + (int)BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(at)))
            if (b.AsSpan(at + 4, 4).SequenceEqual("IDAT"u8)) { BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(at), length); return b; }
        throw new InvalidOperationException("no IDAT");
    }

    /// <summary>The seed JPEG with its SOF0 frame size patched.</summary>
    private static byte[] JpegWithSize(int w, int h)
    {
        var b = Jpeg();
        for (int i = 0; i + 8 < b.Length; i++)
            if (b[i] == 0xFF && b[i + 1] is 0xC0 or 0xC2)
            {
                BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(i + 5), (ushort)h);
                BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(i + 7), (ushort)w);
                return b;
            }
        throw new InvalidOperationException("no SOF marker");
    }

    private static byte[] WriteTiff(int w, int h, int bps, int spp, Compression c, Action<Tiff>? tweak = null)
    {
        string p = Path.Combine(Tmp, $"t{Guid.NewGuid():N}.tif");
        using (var t = BitMiracle.LibTiff.Classic.Tiff.Open(p, "w"))
        {
            t.SetField(TiffTag.IMAGEWIDTH, w); t.SetField(TiffTag.IMAGELENGTH, h);
            t.SetField(TiffTag.BITSPERSAMPLE, bps); t.SetField(TiffTag.SAMPLESPERPIXEL, spp);
            t.SetField(TiffTag.PHOTOMETRIC, spp == 3 ? Photometric.RGB : Photometric.MINISBLACK);
            t.SetField(TiffTag.PLANARCONFIG, PlanarConfig.CONTIG); t.SetField(TiffTag.COMPRESSION, c);
            t.SetField(TiffTag.ROWSPERSTRIP, 4);
            tweak?.Invoke(t);
            var line = new byte[w * spp * bps / 8];
            for (int y = 0; y < h; y++)
            {
                for (int i = 0; i < line.Length; i++) line[i] = (byte)(i * 5 + y * 3);
                t.WriteScanline(line, y);
            }
        }
        return File.ReadAllBytes(p);
    }

    private static byte[] Tiff8Rgb() => WriteTiff(12, 10, 8, 3, Compression.LZW);
    private static byte[] Tiff16Grey() => WriteTiff(10, 8, 16, 1, Compression.NONE);

    private static (string, byte[])[] TiffCrafted()
    {
        var big = Tiff8Rgb();
        PatchTiffTag(big, 256, 100_000); PatchTiffTag(big, 257, 100_000);
        var pastEnd = Tiff16Grey();
        PatchTiffTag(pastEnd, 273, 0x7FFF_0000);   // StripOffsets far past the end of the file
        var counts = Tiff16Grey();
        PatchTiffTag(counts, 279, int.MaxValue);   // StripByteCounts: 2 GB
        var manyStrips = Tiff8Rgb();
        PatchTiffCount(manyStrips, 273, 1 << 28);  // 268 M strip offsets
        return [("100000×100000 TIFF", big), ("strip offsets past the end", pastEnd), ("2 GB strip byte count", counts), ("268 M strips", manyStrips)];
    }

    /// <summary>Sets the value of a one-value tag in the first IFD of a little-endian TIFF.</summary>
    private static void PatchTiffTag(byte[] b, int tag, uint value)
    {
        foreach (int at in IfdEntries(b))
            if (BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at)) == tag)
            {
                if (BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at + 2)) == 3) { BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at + 2), 4); }
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 8), value);
                return;
            }
    }

    private static void PatchTiffCount(byte[] b, int tag, uint count)
    {
        foreach (int at in IfdEntries(b))
            if (BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at)) == tag) { BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 4), count); return; }
    }

    private static IEnumerable<int> IfdEntries(byte[] b)
    {
        int ifd = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(4));
        int n = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(ifd));
        for (int i = 0; i < n; i++) yield return ifd + 2 + 12 * i;
    }

    private static byte[] Xlsx()
    {
        string p = Path.Combine(Tmp, "r.xlsx");
        DataFixtures.Workbook(p, [("mask_a.png", "left lung"), ("mask_b.png", "bilateral, lower zones")]);
        return File.ReadAllBytes(p);
    }

    private static (string, byte[])[] XlsxCrafted()
    {
        // central-directory sizes claiming 4 GB (the entries themselves are the small valid ones)
        var claims = Xlsx();
        for (int i = 0; i + 46 < claims.Length; i++)
            if (BinaryPrimitives.ReadUInt32LittleEndian(claims.AsSpan(i)) == 0x02014b50) BinaryPrimitives.WriteUInt32LittleEndian(claims.AsSpan(i + 24), 0xFFFF_FFF0);
        // a real bomb: one part inflating 200 MB of zeros from ~200 KB
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            using var s = zip.CreateEntry("xl/sharedStrings.xml", CompressionLevel.SmallestSize).Open();
            var zeros = new byte[1 << 20];
            for (int k = 0; k < 200; k++) s.Write(zeros);
        }
        return [("zip entries claiming 4 GB", claims), ("zip bomb: 200 MB of zeros", ms.ToArray()), ("not a zip", Encoding.UTF8.GetBytes("Image,Description\n"))];
    }

    private static (string, byte[])[] CsvCrafted() =>
    [
        ("a 100 MB line", Encoding.UTF8.GetBytes("Image,Description\nmask_a.png," + new string('x', 100_000_000) + "\n")),
        ("a 2 MB line", Encoding.UTF8.GetBytes("Image,Description\nmask_a.png," + new string('x', 2_000_000) + "\n")),
        ("invalid UTF-8", [.. Encoding.UTF8.GetBytes("Image,Description\nmask_a.png,le"), 0xC3, 0x28, .. Encoding.UTF8.GetBytes("ft\n")]),
        ("unterminated quote", Encoding.UTF8.GetBytes("Image,Description\nmask_a.png,\"left lung\n")),
    ];

    private static (string, byte[])[] JsonCrafted() =>
    [
        ("JSON nested 10,000 deep", Encoding.UTF8.GetBytes(new string('[', 10_000) + new string(']', 10_000))),
        ("objects nested 10,000 deep", Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", 10_000)) + "1" + new string('}', 10_000))),
        ("invalid UTF-8", [.. Encoding.UTF8.GetBytes("{\"train\": [\"a"), 0xFF, 0xFE, .. Encoding.UTF8.GetBytes("\"]}")]),
        ("a 20 MB string", Encoding.UTF8.GetBytes("{\"x\": \"" + new string('y', 20_000_000) + "\"}")),
        ("huge numbers", Encoding.UTF8.GetBytes("{\"image_size\": 1e400, \"dims\": [99999999999, 2, 3, 4], \"epochs\": -5}")),
        ("nulls", Encoding.UTF8.GetBytes("{\"dims\": null, \"depths\": null, \"train\": null, \"Flags\": null}")),
    ];

    private static (string, byte[])[] TextCrafted() =>
    [
        ("invalid UTF-8", [.. Encoding.UTF8.GetBytes("left lung "), 0xC0, 0xAF, 0xED, 0xA0, 0x80]),
        ("a 20 MB file", Encoding.UTF8.GetBytes(new string('a', 20_000_000))),
        ("NUL bytes", new byte[64]),
    ];

    private static byte[] Vocab() => Encoding.UTF8.GetBytes(string.Join("\n", new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "left", "right", "lung", "##s", "upper", "lower", "zone", "bilateral", "infection", "," }) + "\n");

    private static (string, byte[])[] SafetensorsCrafted(byte[] valid)
    {
        byte[] Header(string json)
        {
            var h = Encoding.UTF8.GetBytes(json);
            var b = new byte[8 + h.Length + 16];
            BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
            h.CopyTo(b, 8);
            return b;
        }
        var hugeLen = (byte[])valid.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(hugeLen, ulong.MaxValue - 7);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var header = Encoding.UTF8.GetString(valid, 8, n);
        // a valid file whose config claims a paper-scale model
        var bigConfig = Encoding.UTF8.GetBytes(header.Replace("\\u0022dims\\u0022:[8,16,16,16]", "\\u0022dims\\u0022:[4096,4096,4096,4096]").Replace("\"dims\\\":[8,16,16,16]", "\"dims\\\":[4096,4096,4096,4096]"));
        return
        [
            ("header length 2^64 - 8", hugeLen),
            ("header nested 10,000 deep", Header(new string('[', 10_000) + new string(']', 10_000))),
            ("a tensor claiming 2^40 elements", Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],\"data_offsets\":[0,16]}}")),
            ("header that is not UTF-8", Header("{\"a\":\"\u00ff\"}").Select((x, i) => i == 14 ? (byte)0xFF : x).ToArray()),
            ("config claiming a huge model", [.. valid[..8].Select((x, i) => i == 0 ? (byte)(bigConfig.Length & 0xFF) : i == 1 ? (byte)(bigConfig.Length >> 8) : i == 2 ? (byte)(bigConfig.Length >> 16) : (byte)0), .. bigConfig, .. valid[(8 + n)..]]),
        ];
    }
}
