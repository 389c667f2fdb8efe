using System.Reflection;

namespace Tmca.Cuda;

/// <summary>The kernel sources embedded in this assembly: the product's kernels/*.cu, the kernel lab's kernels/lab/*.cu and
/// the headers they include (kernels/*.cuh).</summary>
public static class KernelSources
{
    private static readonly Assembly Asm = typeof(KernelSources).Assembly;

    /// <summary>The product's kernel files (what the model launches; every one has its descriptors in KernelTable).</summary>
    public static IReadOnlyList<string> Files => Named("kernels/").Where(f => !f.Contains('/')).ToList();

    /// <summary>The kernel lab's own files, as "lab/NAME.cu" (their descriptors live with the lab: KernelLab.LabKernels).</summary>
    public static IReadOnlyList<string> LabFiles => Named("kernels/").Where(f => f.StartsWith("lab/")).ToList();

    private static IEnumerable<string> Named(string prefix) =>
        Asm.GetManifestResourceNames().Where(n => n.StartsWith(prefix) && n.EndsWith(".cu")).Select(n => n[prefix.Length..]).Order();

    public static IReadOnlyList<(string Name, string Source)> Headers =>
        Asm.GetManifestResourceNames().Where(n => n.StartsWith("kernels/") && n.EndsWith(".cuh"))
           .Select(n => (n["kernels/".Length..], Read(n))).ToList();

    public static string Source(string file) => Read("kernels/" + file);

    private static string Read(string resource)
    {
        using var s = Asm.GetManifestResourceStream(resource) ?? throw new FileNotFoundException($"kernel source {resource} is not embedded");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }
}
