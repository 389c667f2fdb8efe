using System.Buffers.Binary;

namespace Tmca.Data.Images;

/// <summary>
/// Walks a TIFF's directory before LibTiff does. LibTiff.NET allocates what a tag claims — a StripOffsets tag claiming
/// 2^28 values is a 2 GB array, a StripByteCounts entry of 2 GB a 2 GB buffer — before it reads a byte of it; the
/// fuzz suite found cases allocating 2.4 GB from a 600-byte file. Here every tag's values must fit in the file, and
/// every strip or tile must lie inside it, so nothing a file claims can be larger than the file.
/// </summary>
internal static class TiffPrecheck
{
    private const int MaxDirectories = 64, MaxEntries = 4096;

    public static void Check(string path)
    {
        byte[] b;
        using (var f = File.OpenRead(path))
        {
            if (f.Length > int.MaxValue) throw new DataException(path, "TIFF files over 2 GB are not supported");
            b = new byte[f.Length];
            f.ReadExactly(b);
        }
        if (b.Length < 8) throw new DataException(path, "not a TIFF file (shorter than its 8-byte header)");
        bool le = b[0] == 'I' && b[1] == 'I';
        if (!le && !(b[0] == 'M' && b[1] == 'M')) throw new DataException(path, "not a TIFF file (no II/MM byte order mark)");
        ushort U16(long at) => le ? BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan((int)at)) : BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan((int)at));
        uint U32(long at) => le ? BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan((int)at)) : BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan((int)at));
        int magic = U16(2);
        if (magic == 43) throw new DataException(path, "BigTIFF is not supported (convert it to a classic TIFF or a PNG)");
        if (magic != 42) throw new DataException(path, $"not a TIFF file (magic {magic}, expected 42)");

        var seen = new HashSet<long>();
        long ifd = U32(4);
        for (int d = 0; ifd != 0; d++)
        {
            if (d >= MaxDirectories) throw new DataException(path, $"more than {MaxDirectories} TIFF directories");
            if (!seen.Add(ifd)) throw new DataException(path, $"TIFF directory at offset {ifd} links back to an earlier one (a loop)");
            if (ifd + 2 > b.Length) throw new DataException(path, $"TIFF directory offset {ifd} is past the end of the file ({b.Length} bytes)");
            int n = U16(ifd);
            if (n > MaxEntries) throw new DataException(path, $"TIFF directory with {n} entries (more than {MaxEntries})");
            if (ifd + 2 + 12L * n + 4 > b.Length) throw new DataException(path, $"TIFF directory at {ifd} runs past the end of the file");
            var values = new Dictionary<int, (int Type, long Count, long At)>();
            for (int i = 0; i < n; i++)
            {
                long e = ifd + 2 + 12L * i;
                int tag = U16(e), type = U16(e + 2);
                long count = U32(e + 4);
                int size = type switch { 1 or 2 or 6 or 7 => 1, 3 or 8 => 2, 4 or 9 or 11 or 13 => 4, 5 or 10 or 12 => 8, _ => 0 };
                if (size == 0) continue;   // unknown types are skipped by LibTiff too
                long bytes = count * size;
                if (bytes > b.Length) throw new DataException(path, $"TIFF tag {tag} claims {count:N0} values ({bytes:N0} bytes), more than the whole file ({b.Length:N0} bytes)");
                long at = bytes <= 4 ? e + 8 : U32(e + 8);
                if (at + bytes > b.Length) throw new DataException(path, $"TIFF tag {tag} points at bytes {at:N0}..{at + bytes:N0}, past the end of the file ({b.Length:N0} bytes)");
                values[tag] = (type, count, at);
            }
            // Strips (273 offsets, 279 counts) and tiles (324, 325) must lie inside the file.
            foreach (var (offTag, cntTag) in new[] { (273, 279), (324, 325) })
            {
                if (!values.TryGetValue(offTag, out var off) || !values.TryGetValue(cntTag, out var cnt)) continue;
                if (off.Count != cnt.Count) throw new DataException(path, $"TIFF tags {offTag} and {cntTag} list {off.Count} and {cnt.Count} values");
                long Value((int Type, long Count, long At) v, long k) => v.Type == 3 ? U16(v.At + 2 * k) : U32(v.At + 4 * k);
                for (long k = 0; k < off.Count; k++)
                {
                    long o = Value(off, k), c = Value(cnt, k);
                    if (o + c > b.Length) throw new DataException(path, $"TIFF {(offTag == 273 ? "strip" : "tile")} {k} at bytes {o:N0}..{o + c:N0} runs past the end of the file ({b.Length:N0} bytes)");
                }
            }
            ifd = U32(ifd + 2 + 12L * n);
        }
    }
}
