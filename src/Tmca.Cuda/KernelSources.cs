using System.Reflection;

namespace Tmca.Cuda;

/// <summary>The kernel sources embedded in this assembly (kernels/*.cu and the headers they include).</summary>
public static class KernelSources
{
    private static readonly Assembly Asm = typeof(KernelSources).Assembly;

    public static IReadOnlyList<string> Files =>
        Asm.GetManifestResourceNames().Where(n => n.StartsWith("kernels/") && n.EndsWith(".cu")).Select(n => n["kernels/".Length..]).Order().ToList();

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
