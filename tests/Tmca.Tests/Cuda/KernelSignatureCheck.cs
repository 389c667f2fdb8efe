using System.Reflection;
using System.Runtime.InteropServices;
using Tmca.Cuda;
using Tmca.Cuda.Kernels;

namespace Tmca.Tests.Cuda;

/// <summary>
/// Checks the launchers' side against the kernels' side without any compiler: every KERNEL in the sources has
/// exactly one descriptor with the same file, name and parameter types in order, every descriptor has its kernel,
/// and every struct passed to a kernel has the same field order, offsets and size in C (by the x86-64/CUDA layout
/// rules) and in its C# twin (by the marshaller). Each problem is one line naming the kernel or struct. Only the
/// tests run it (<see cref="KernelSignatureTests"/>), so it lives with them; the parser it uses
/// (<see cref="KernelSignatures"/>) ships, because the descriptors and the simulator need it.
/// </summary>
public static class KernelSignatureCheck
{
    public static List<string> Problems(IReadOnlyList<KernelDescriptor> descriptors, IReadOnlyList<(string File, string Source)> files,
                                        IReadOnlyList<(string Name, string Source)> headers)
    {
        var problems = new List<string>();
        var kernels = files.SelectMany(f => KernelSignatures.Kernels(f.File, f.Source)).ToList();
        foreach (var dup in descriptors.GroupBy(d => (d.File, d.Name)).Where(g => g.Count() > 1))
            problems.Add($"{dup.Key.File}:{dup.Key.Name}: {dup.Count()} descriptors");
        foreach (var k in kernels)
        {
            var d = descriptors.FirstOrDefault(x => x.Name == k.Name && x.File == k.File);
            if (d is null)
            {
                var elsewhere = descriptors.FirstOrDefault(x => x.Name == k.Name);
                problems.Add(elsewhere is null ? $"{k.File}:{k.Line}: kernel {k.Name} has no descriptor (add one to Kernels/KernelTable.cs)"
                                               : $"{k.File}:{k.Line}: kernel {k.Name} is described as being in {elsewhere.File}");
                continue;
            }
            var want = k.ParamTypes;
            var have = d.Params.Select(KernelSignatures.Normalise).ToArray();
            if (want.Length != have.Length)
                problems.Add($"{k.File}:{k.Line}: kernel {k.Name} takes {want.Length} parameters ({string.Join(", ", want)}), its descriptor {have.Length} ({string.Join(", ", have)})");
            else
                for (int i = 0; i < want.Length; i++)
                    if (want[i] != have[i])
                        problems.Add($"{k.File}:{k.Line}: kernel {k.Name} parameter {i + 1} is '{want[i]}', its descriptor says '{have[i]}'");
        }
        foreach (var d in descriptors)
            if (!kernels.Any(k => k.Name == d.Name && k.File == d.File))
                problems.Add($"descriptor {d.Name} names a kernel that {d.File} does not have");

        // Structs passed to kernels: by value ("Shape8") or through a pointer ("const AdamSlot*").
        var structs = KernelSignatures.Structs(files.Select(f => f.Source).Concat(headers.Select(h => h.Source)));
        var used = descriptors.SelectMany(d => d.Params).Select(p => p.Replace("const ", "").TrimEnd('*').Trim())
                              .Where(t => char.IsUpper(t[0])).Distinct();
        foreach (var name in used)
        {
            if (!structs.TryGetValue(name, out var c)) { problems.Add($"struct {name} is passed to a kernel but not declared in the sources"); continue; }
            if (!NativeStructs.ByName.TryGetValue(name, out var cs)) { problems.Add($"struct {name} has no C# twin in NativeStructs.ByName"); continue; }
            problems.AddRange(CompareLayout(c, cs));
        }
        return problems;
    }

    /// <summary>The C struct's fields against the C# struct's (padding fields named _pad/Pad on the C# side only
    /// when C has no field of that name), offset by offset, and the two sizes.</summary>
    public static IEnumerable<string> CompareLayout(CStruct c, Type cs)
    {
        var (offsets, size, _) = c.Layout();
        var fields = cs.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                       .OrderBy(f => (long)Marshal.OffsetOf(cs, f.Name)).ToList();
        var cNames = c.Fields.Select(f => f.Name.ToLowerInvariant()).ToHashSet();
        fields = fields.Where(f => !IsPadding(f.Name) || cNames.Contains(Plain(f.Name))).ToList();
        int csSize = Marshal.SizeOf(cs);
        if (csSize != size) yield return $"struct {c.Name}: {size} bytes in C, {csSize} in C# ({cs.Name})";
        if (fields.Count != c.Fields.Length)
        {
            yield return $"struct {c.Name}: {c.Fields.Length} fields in C ({string.Join(", ", c.Fields.Select(f => f.Name))}), {fields.Count} in C# ({string.Join(", ", fields.Select(f => f.Name))})";
            yield break;
        }
        for (int i = 0; i < fields.Count; i++)
        {
            long off = (long)Marshal.OffsetOf(cs, fields[i].Name);
            if (Plain(fields[i].Name) != c.Fields[i].Name.ToLowerInvariant())
                yield return $"struct {c.Name}: field {i + 1} is '{c.Fields[i].Name}' in C, '{fields[i].Name}' in C#";
            if (off != offsets[i])
                yield return $"struct {c.Name}: field '{c.Fields[i].Name}' at byte {offsets[i]} in C, {off} in C#";
        }
    }

    private static bool IsPadding(string name) => Plain(name).StartsWith("pad");
    /// <summary>The field's name as C spells it: no backing-field decoration, no leading underscore, lower case.</summary>
    private static string Plain(string name)
    {
        var n = name.StartsWith('<') ? name[1..name.IndexOf('>')] : name;
        if (n.EndsWith("e__FixedBuffer")) n = n[..^"e__FixedBuffer".Length];
        return n.TrimStart('_').ToLowerInvariant();
    }

    /// <summary>The check on this assembly's kernels and descriptors: the product's (kernels/*.cu, KernelTable) and the kernel
    /// lab's own (kernels/lab/*.cu, KernelLab.LabKernels), each table against its own files.</summary>
    public static List<string> ProblemsInThisBuild() =>
    [
        .. Problems(KernelTable.All, KernelSources.Files.Select(f => (f, KernelSources.Source(f))).ToList(), KernelSources.Headers),
        .. Problems(KernelLab.LabKernels.All, KernelSources.LabFiles.Select(f => (f, KernelSources.Source(f))).ToList(), KernelSources.Headers),
    ];
}
