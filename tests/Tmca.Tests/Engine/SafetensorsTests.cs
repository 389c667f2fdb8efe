using System.Buffers.Binary;
using System.Text;
using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

public class SafetensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tmca-st-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    [Fact]
    public void RoundTripsEveryDTypeAndMetadata()
    {
        var f32 = Tensor.FromArray(new[] { 1.5f, -2f, float.MaxValue, float.Epsilon, 0f, 3f }, 2, 3);
        var f64 = Tensor.FromArray(new[] { Math.PI, -1e-300 }, 2);
        var i64 = Tensor.FromArray(new long[] { long.MinValue, 0, 42 }, 3);
        var u8 = Tensor.FromArray(new byte[] { 0, 255, 7, 1 }, 2, 2);
        var empty = Tensor.Zeros([0, 4]);
        var meta = new Dictionary<string, string> { ["config"] = "{\"a\": [1,2]}", ["note"] = "ünïcödé" };
        SafetensorsFile.Save(P("a.safetensors"), [new("f32", f32), new("f64", f64), new("i64", i64), new("u8", u8), new("empty", empty)], meta);
        var f = SafetensorsFile.Open(P("a.safetensors"));
        Assert.Equal(meta, f.Metadata.Where(kv => kv.Key != SafetensorsFile.ChecksumKey).ToDictionary());
        Assert.Equal(64, f.Metadata[SafetensorsFile.ChecksumKey].Length);   // SHA-256 of the data, hex
        f.Verify();
        Assert.Equal(f32.ToArray<float>(), f.Load("f32").ToArray<float>());
        Assert.Equal([2, 3], f.Load("f32").Shape);
        Assert.Equal(f64.ToArray<double>(), f.Load("f64").ToArray<double>());
        Assert.Equal(i64.ToArray<long>(), f.Load("i64").ToArray<long>());
        Assert.Equal(u8.ToArray<byte>(), f.Load("u8").ToArray<byte>());
        Assert.Equal(0, f.Load("empty").Numel);
        // the data section is 8-byte aligned
        var bytes = File.ReadAllBytes(P("a.safetensors"));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes) % 8);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void ReadsTheSharedOracleFiles()
    {
        var f = SafetensorsFile.Open(Paths.RequireShared("oracles/ops.safetensors"));
        Assert.True(f.Contains("conv2d_0.in.x"));
        Assert.Equal([2, 3, 12, 12], f.Load("conv2d_0.in.x").Shape);
        Assert.Equal(DType.U8, f.Entries["info_nce_0.same_text"].DType);
    }

    public static TheoryData<string, string, string> Malformed => new()
    {
        // name, header JSON (data is 8 bytes unless stated), expected fragment of the message
        { "bad json", "{\"a\": ", "not valid JSON" },
        { "not object", "[1,2]", "not a JSON object" },
        { "unknown dtype", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", "unsupported dtype 'BF16'" },
        { "no dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "has no dtype" },
        { "shape mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "needs 12 bytes, data_offsets give 8" },
        { "offsets past end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "run past the data section" },
        { "reversed offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", "out of order" },
        { "overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "overlaps" },
        { "gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "gap in the data" },
        { "negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "invalid dimension" },
        { "metadata not string", "{\"__metadata__\":{\"k\":3},\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", "metadata 'k' is not a string" },
        { "trailing bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "data section is 8 bytes but the tensors cover 4" },
    };

    [Theory, MemberData(nameof(Malformed))]
    public void MalformedHeadersGiveClearErrors(string name, string header, string expected)
    {
        var path = P(name.Replace(' ', '_') + ".safetensors");
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + 8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith(path, e.Message);
    }

    [Fact]
    public void TruncatedAndOversizedHeaderLengthsAreNamed()
    {
        File.WriteAllBytes(P("tiny"), [1, 2, 3]);
        Assert.Contains("too short", Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(P("tiny"))).Message);
        var b = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(b, 1000);
        File.WriteAllBytes(P("past"), b);
        Assert.Contains("runs past the end", Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(P("past"))).Message);
        Assert.Contains("file not found", Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(P("missing"))).Message);
    }

    /// <summary>Random bytes, every truncation and random byte flips of a valid file: only SafetensorsException,
    /// never another exception type, and a file that opens must load every tensor.</summary>
    [Fact]
    public void FuzzRandomTruncatedAndCorruptedFiles()
    {
        var r = new Random(1234);
        var t = Tensor.FromArray(Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), 2, 3, 4);
        SafetensorsFile.Save(P("valid"), [new("x", t), new("ids", Tensor.FromArray(new long[] { 1, 2 }, 2))], new Dictionary<string, string> { ["m"] = "v" });
        var valid = File.ReadAllBytes(P("valid"));
        var candidates = new List<byte[]>();
        for (int len = 0; len < valid.Length; len++) candidates.Add(valid[..len]);
        for (int i = 0; i < 400; i++)
        {
            var c = (byte[])valid.Clone();
            int flips = r.Next(1, 4);
            for (int f = 0; f < flips; f++) c[r.Next(c.Length)] = (byte)r.Next(256);
            candidates.Add(c);
        }
        for (int i = 0; i < 200; i++)
        {
            var c = new byte[r.Next(0, 300)];
            r.NextBytes(c);
            if (c.Length >= 8 && r.Next(2) == 0) BinaryPrimitives.WriteUInt64LittleEndian(c, (ulong)r.Next(0, c.Length));
            candidates.Add(c);
        }
        int opened = 0, rejected = 0;
        foreach (var c in candidates)
        {
            File.WriteAllBytes(P("fuzz"), c);
            try
            {
                var f = SafetensorsFile.Open(P("fuzz"));
                foreach (var n in f.Names) f.Load(n);
                opened++;
            }
            catch (SafetensorsException) { rejected++; }
        }
        Assert.True(rejected > candidates.Count / 2, $"only {rejected} of {candidates.Count} rejected");
        Assert.True(opened >= 1);   // the untouched full-length file is not among the truncations, but flips of padding bytes may still parse
    }
}
