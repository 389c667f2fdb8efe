using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tmca.Engine;

/// <summary>A file that is not valid safetensors: the message names the file and what is wrong.</summary>
public sealed class SafetensorsException(string path, string problem) : InputFileException(path, problem);

/// <summary>One tensor entry of a safetensors header.</summary>
public sealed record SafetensorsEntry(string Name, DType DType, int[] Shape, long Begin, long End);

/// <summary>
/// safetensors: an 8-byte little-endian header length N, N bytes of JSON
/// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}), then the data,
/// with offsets relative to the start of the data. Opening validates the whole header against the file size
/// (as the reference implementation does: entries must tile the data exactly, without gaps or overlaps);
/// tensors are read on demand.
/// </summary>
public sealed class SafetensorsFile
{
    /// <summary>Headers above this size are refused (the reference library uses 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    public IEnumerable<string> Names => Entries.Keys;
    private readonly long _dataStart;

    private SafetensorsFile(string path, Dictionary<string, string> meta, Dictionary<string, SafetensorsEntry> entries, long dataStart)
    {
        Path = path; Metadata = meta; Entries = entries; _dataStart = dataStart;
    }

    public bool Contains(string name) => Entries.ContainsKey(name);

    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new SafetensorsException(path, "file not found");
        using var fs = OpenRead(path);
        long length = fs.Length;
        if (length < 8) throw new SafetensorsException(path, $"truncated: {length} bytes, too short for the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        fs.ReadExactly(lenBytes);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (n > (ulong)(length - 8)) throw new SafetensorsException(path, $"header length {n} runs past the end of the file ({length} bytes)");
        if (n > MaxHeaderBytes) throw new SafetensorsException(path, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit");
        if (n < 2) throw new SafetensorsException(path, $"header length {n} is too small for a JSON object");
        var header = new byte[n];
        fs.ReadExactly(header);
        long dataStart = 8 + (long)n, dataLength = length - dataStart;

        if (!System.Text.Unicode.Utf8.IsValid(header)) throw new SafetensorsException(path, "header is not valid UTF-8");
        JsonObject root;
        try
        {
            root = JsonNode.Parse(header) as JsonObject ?? throw new SafetensorsException(path, "header is not a JSON object");
        }
        catch (JsonException e) { throw new SafetensorsException(path, $"header is not valid JSON ({e.Message})"); }
        catch (ArgumentException e) { throw new SafetensorsException(path, $"header is not valid UTF-8 JSON ({e.Message})"); }

        var meta = new Dictionary<string, string>();
        var entries = new Dictionary<string, SafetensorsEntry>();
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__")
            {
                if (node is not JsonObject mo) throw new SafetensorsException(path, "__metadata__ is not an object");
                foreach (var (k, v) in mo)
                {
                    if (v is not JsonValue jv || !jv.TryGetValue<string>(out var s)) throw new SafetensorsException(path, $"metadata '{k}' is not a string");
                    meta[k] = s;
                }
                continue;
            }
            entries[name] = ParseEntry(path, name, node, dataLength);
        }

        // Entries must tile [0, dataLength) exactly: sorted by offset, each starts where the previous ended.
        long at = 0;
        foreach (var e in entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin < at) throw new SafetensorsException(path, $"tensor '{e.Name}' [{e.Begin}, {e.End}) overlaps the previous tensor (ends at {at})");
            if (e.Begin > at) throw new SafetensorsException(path, $"gap in the data before tensor '{e.Name}' (bytes {at}..{e.Begin} unused)");
            at = e.End;
        }
        if (at != dataLength) throw new SafetensorsException(path, $"data section is {dataLength} bytes but the tensors cover {at}");
        return new SafetensorsFile(path, meta, entries, dataStart);
    }

    private static SafetensorsEntry ParseEntry(string path, string name, JsonNode? node, long dataLength)
    {
        if (node is not JsonObject o) throw new SafetensorsException(path, $"entry '{name}' is not an object");
        string? dt = (o["dtype"] as JsonValue)?.TryGetValue<string>(out var s) == true ? s : null;
        if (dt is null) throw new SafetensorsException(path, $"tensor '{name}' has no dtype");
        if (!DTypes.TryParseSafetensors(dt, out var dtype)) throw new SafetensorsException(path, $"tensor '{name}' has unsupported dtype '{dt}' (supported: F32, F64, I64, U8)");
        if (o["shape"] is not JsonArray sa) throw new SafetensorsException(path, $"tensor '{name}' has no shape");
        var shape = new int[sa.Count];
        for (int i = 0; i < sa.Count; i++)
        {
            if (sa[i] is not JsonValue v || !v.TryGetValue<long>(out var d) || d < 0 || d > int.MaxValue)
                throw new SafetensorsException(path, $"tensor '{name}' has an invalid dimension {sa[i]?.ToJsonString() ?? "null"}");
            shape[i] = (int)d;
        }
        if (o["data_offsets"] is not JsonArray oa || oa.Count != 2) throw new SafetensorsException(path, $"tensor '{name}' needs data_offsets [begin, end]");
        if (oa[0] is not JsonValue b0 || !b0.TryGetValue<long>(out var begin) || oa[1] is not JsonValue b1 || !b1.TryGetValue<long>(out var end))
            throw new SafetensorsException(path, $"tensor '{name}' has non-integer data_offsets");
        if (begin < 0 || end < begin) throw new SafetensorsException(path, $"tensor '{name}' has data_offsets [{begin}, {end}] out of order");
        if (end > dataLength) throw new SafetensorsException(path, $"tensor '{name}' data_offsets [{begin}, {end}] run past the data section ({dataLength} bytes; file truncated?)");
        long numel = 1;
        foreach (var d in shape) { numel *= d; if (numel > long.MaxValue / 16) throw new SafetensorsException(path, $"tensor '{name}' shape is too large"); }
        long expected = numel * dtype.SizeOf();
        if (end - begin != expected)
            throw new SafetensorsException(path, $"tensor '{name}' of shape {Engine.Shape.Format(shape)} {dt} needs {expected} bytes, data_offsets give {end - begin}");
        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    /// <summary>Reads one tensor onto the CPU (or the given backend).</summary>
    public Tensor Load(string name, IBackend? backend = null, bool persistent = false)
    {
        if (!Entries.TryGetValue(name, out var e)) throw new SafetensorsException(Path, $"no tensor named '{name}'");
        long bytes = e.End - e.Begin;
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts");
        if (e.DType is not (DType.F32 or DType.F64 or DType.I64 or DType.U8)) throw new SafetensorsException(Path, $"tensor '{name}': unsupported dtype");
        var storage = CpuStorage.Allocate(e.DType, bytes / e.DType.SizeOf(), zero: false);   // read straight into native memory
        using (var fs = OpenRead(Path))
        {
            fs.Seek(_dataStart + e.Begin, SeekOrigin.Begin);
            try { fs.ReadExactly(storage.Data.ByteSpan()); }
            catch (EndOfStreamException) { storage.Data.Free(); throw new SafetensorsException(Path, $"file ended while reading tensor '{name}' (changed since it was opened?)"); }
        }
        var shape = e.Shape.Length == 0 ? new[] { 1 } : (int[])e.Shape.Clone();
        Tensor t;
        using (persistent ? TensorScope.Suspend() : default)
            t = new Tensor(shape, storage, persistent);
        if (backend is null || backend is CpuBackend) return t;
        return t.To(backend, persistent);
    }

    /// <summary>The metadata key of the data section's SHA-256 (hex), written by <see cref="Save"/> and checked by <see cref="Verify"/>.</summary>
    public const string ChecksumKey = "data_sha256";

    /// <summary>True when the file carries a checksum of its tensors (every file this engine writes does).</summary>
    public bool HasChecksum => Metadata.ContainsKey(ChecksumKey);

    /// <summary>
    /// Reads the whole data section and compares its SHA-256 with the one in the metadata, so that a bit flip or a
    /// half-copied file is refused before any tensor is loaded. Files without a checksum (other tools') pass. Once
    /// verified, a file object is not hashed again.
    /// </summary>
    public void Verify()
    {
        if (_verified || !Metadata.TryGetValue(ChecksumKey, out var expected)) return;
        using var fs = OpenRead(Path);
        fs.Seek(_dataStart, SeekOrigin.Begin);
        string actual;
        try { actual = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(fs)); }
        catch (IOException e) { throw new SafetensorsException(Path, $"cannot be read ({e.Message})"); }
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
            throw new SafetensorsException(Path, $"checksum mismatch: the tensors hash to {actual[..12]}…, the metadata says {expected[..Math.Min(12, expected.Length)]}… (the file is corrupt: a flipped bit or an incomplete copy)");
        _verified = true;
    }

    private bool _verified;

    /// <summary>
    /// Writes tensors (in the given order) and string metadata, plus the SHA-256 of the data section under
    /// <see cref="ChecksumKey"/>. The file appears atomically: it is written to a temporary file in the same folder and
    /// renamed over the target, so a crash never leaves half a file. The hold point "safetensors-write" sits halfway
    /// through the data (the hard-kill tests stop a process there).
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var names = new HashSet<string>();
        foreach (var (name, _) in list)
        {
            if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved");
            if (!names.Add(name)) throw new ArgumentException($"duplicate tensor name '{name}'");
        }
        // The data first (device tensors are read back here), so that its checksum can go into the header.
        var data = new List<byte[]>(list.Count);
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var (_, t) in list)
        {
            int bytes = checked((int)(t.Numel * t.DType.SizeOf()));
            var buf = new byte[bytes];
            if (t.Storage is CpuStorage) CpuBackend.Arr(t).ByteSpan()[..bytes].CopyTo(buf);
            else Buffer.BlockCopy(t.Backend.Download(t), 0, buf, 0, bytes);
            sha.AppendData(buf);
            data.Add(buf);
        }
        var header = new JsonObject();
        var mo = new JsonObject();
        if (metadata is not null) foreach (var (k, v) in metadata) mo[k] = v;
        mo[ChecksumKey] = Convert.ToHexStringLower(sha.GetHashAndReset());
        header["__metadata__"] = mo;
        long offset = 0;
        foreach (var (name, t) in list)
        {
            long bytes = t.Numel * t.DType.SizeOf();
            header[name] = new JsonObject
            {
                ["dtype"] = t.DType.SafetensorsName(),
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int pad = (8 - json.Length % 8) % 8;   // align the data to 8 bytes, padding the JSON with spaces
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';

        AtomicFile.Write(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
            fs.Write(len);
            fs.Write(headerBytes);
            var hold = HoldPoints.Installed;   // a test's: a normal write neither flushes halfway nor stops
            for (int i = 0; i < data.Count; i++)
            {
                // flushed first, so that a process killed while held leaves the first half on disk: a torn file, as a crash would
                if (hold is not null && i == data.Count / 2) { fs.Flush(); hold.Reach("safetensors-write"); }
                fs.Write(data[i]);
            }
        });
    }

    private static FileStream OpenRead(string path)
    {
        try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new SafetensorsException(path, $"cannot be read ({e.Message})"); }
    }
}
