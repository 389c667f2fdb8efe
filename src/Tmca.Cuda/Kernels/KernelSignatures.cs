using System.Text.RegularExpressions;

namespace Tmca.Cuda.Kernels;

/// <summary>One kernel as declared in a .cu file: its name and its parameters' C types in order.</summary>
public sealed record KernelSignature(string File, string Name, string[] ParamTypes, int Line);

/// <summary>A struct as declared in kernel source: its fields (C type, name, array length) in order.</summary>
public sealed record CStruct(string Name, (string Type, string Name, int Count)[] Fields)
{
    /// <summary>Offsets and size by the x86-64 / CUDA rules for the scalar types the kernels use.</summary>
    public (int[] Offsets, int Size, int Align) Layout()
    {
        var offsets = new int[Fields.Length];
        int off = 0, align = 1;
        for (int i = 0; i < Fields.Length; i++)
        {
            int size = KernelSignatures.SizeOf(Fields[i].Type);
            off = (off + size - 1) / size * size;
            offsets[i] = off;
            off += size * Fields[i].Count;
            align = Math.Max(align, size);
        }
        return (offsets, (off + align - 1) / align * align, align);
    }
}

/// <summary>
/// Reads kernel source text: every <c>KERNEL void name(type a, ...)</c> (KERNEL is common.cuh's
/// <c>extern "C" __global__</c>) and every <c>struct X { ... };</c>. Types are normalised: <c>__restrict__</c> and
/// the parameter name dropped, <c>long long</c> written <c>i64</c>, one space at most, the star attached
/// (<c>const float*</c>). Used by the signature test and by the simulator (which exports every kernel it finds).
/// </summary>
public static partial class KernelSignatures
{
    [GeneratedRegex(@"KERNEL\s+void\s+(\w+)\s*\(([^)]*)\)")] private static partial Regex KernelRx();
    [GeneratedRegex(@"\bstruct\s+(\w+)\s*\{([^}]*)\}\s*;")] private static partial Regex StructRx();
    [GeneratedRegex(@"#define\s+(\w+)\s+(\d+)")] private static partial Regex DefineRx();
    [GeneratedRegex(@"/\*.*?\*/", RegexOptions.Singleline)] private static partial Regex BlockComment();
    [GeneratedRegex(@"//[^\n]*")] private static partial Regex LineComment();

    /// <summary>The source without comments, with line breaks kept (so line numbers stay right).</summary>
    public static string StripComments(string src) =>
        LineComment().Replace(BlockComment().Replace(src, m => new string('\n', m.Value.Count(c => c == '\n'))), "");

    public static List<KernelSignature> Kernels(string file, string source)
    {
        var src = StripComments(source);
        var list = new List<KernelSignature>();
        foreach (Match m in KernelRx().Matches(src))
        {
            var ps = m.Groups[2].Value.Trim();
            var types = ps.Length == 0 || ps == "void" ? [] : ps.Split(',').Select(ParamType).ToArray();
            int line = src[..m.Index].Count(c => c == '\n') + 1;
            list.Add(new KernelSignature(file, m.Groups[1].Value, types, line));
        }
        return list;
    }

    /// <summary>The normalised C type of one parameter declaration ("const float* __restrict__ x" → "const float*").</summary>
    public static string ParamType(string decl)
    {
        var d = decl.Replace("__restrict__", " ").Replace("*", " * ").Replace("&", " & ");
        var tokens = d.Split([' ', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries).ToList();
        if (tokens.Count >= 2 && IsIdentifier(tokens[^1])) tokens.RemoveAt(tokens.Count - 1);   // the name
        return Normalise(string.Join(' ', tokens));
    }

    public static string Normalise(string type)
    {
        var t = Regex.Replace(type.Replace("__restrict__", " "), @"\s+", " ").Trim();
        t = t.Replace("long long", "i64").Replace("unsigned i64", "unsigned long long");
        t = Regex.Replace(t, @"\s*\*", "*");
        return t;
    }

    private static bool IsIdentifier(string s) => s.Length > 0 && (char.IsLetter(s[0]) || s[0] == '_') && s.All(c => char.IsLetterOrDigit(c) || c == '_')
                                                  && s is not ("int" or "float" or "double" or "i64" or "unsigned" or "long" or "char" or "const");

    /// <summary>Every struct in the sources, with <c>#define NAME number</c> array lengths resolved.</summary>
    public static Dictionary<string, CStruct> Structs(IEnumerable<string> sources)
    {
        var all = sources.Select(StripComments).ToList();
        var defines = new Dictionary<string, int>();
        foreach (var s in all)
            foreach (Match m in DefineRx().Matches(s)) defines[m.Groups[1].Value] = int.Parse(m.Groups[2].Value);
        var result = new Dictionary<string, CStruct>();
        foreach (var s in all)
            foreach (Match m in StructRx().Matches(s))
            {
                var fields = new List<(string, string, int)>();
                foreach (var stmt in m.Groups[2].Value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    // "i64 dims[MAX_RANK]", "float* p", or several declarators sharing a type: "int B, C, H"
                    var parts = stmt.Split(',', StringSplitOptions.TrimEntries);
                    var first = Regex.Match(parts[0], @"^(.*?)(\w+)\s*(?:\[(\w+)\])?$");
                    if (!first.Success) throw new FormatException($"struct {m.Groups[1].Value}: cannot read field '{stmt}'");
                    var type = Normalise(first.Groups[1].Value);
                    foreach (var part in parts)
                    {
                        var dm = part == parts[0] ? first : Regex.Match(part, @"^(\**)\s*(\w+)\s*(?:\[(\w+)\])?$");
                        if (!dm.Success) throw new FormatException($"struct {m.Groups[1].Value}: cannot read declarator '{part}'");
                        var t = part == parts[0] ? type : Normalise(type.TrimEnd('*') + dm.Groups[1].Value);
                        int count = 1;
                        if (dm.Groups[3].Success)
                            count = int.TryParse(dm.Groups[3].Value, out var n) ? n : defines.TryGetValue(dm.Groups[3].Value, out var dn) ? dn
                                    : throw new FormatException($"struct {m.Groups[1].Value}: unknown array length {dm.Groups[3].Value}");
                        fields.Add((t, dm.Groups[2].Value, count));
                    }
                }
                result[m.Groups[1].Value] = new CStruct(m.Groups[1].Value, fields.ToArray());
            }
        return result;
    }

    /// <summary>Bytes of a scalar C type as the kernels use them (LP64: pointers and i64 are 8 bytes).</summary>
    public static int SizeOf(string type) => type switch
    {
        _ when type.EndsWith('*') => 8,
        "int" or "unsigned" or "unsigned int" or "float" => 4,
        "i64" or "unsigned long long" or "double" => 8,
        "char" or "unsigned char" or "bool" => 1,
        _ => throw new FormatException($"no size known for C type '{type}' (extend KernelSignatures.SizeOf)"),
    };
}
