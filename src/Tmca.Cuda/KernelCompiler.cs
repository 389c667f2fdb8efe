using System.Security.Cryptography;
using System.Text;
using Tmca.Cuda.Native;

namespace Tmca.Cuda;

/// <summary>
/// Compiles kernel files with NVRTC and caches the binaries on disk, keyed by a hash of (source, headers,
/// options, NVRTC version, architecture): a kernel compiles once per machine, not once per run.
/// The options here are the ones used at run time; `tmca kernels --compile` and CI use the same ones.
/// </summary>
public sealed class KernelCompiler(Nvrtc nvrtc, string? cacheDir = null)
{
    public Nvrtc Nvrtc { get; } = nvrtc;
    public string CacheDir { get; } = cacheDir ?? DefaultCacheDir();

    public static string DefaultCacheDir() => Path.Combine(Tmca.Engine.CacheDirectory.Root, "kernels");

    /// <summary>The NVRTC options for an architecture: a CUBIN for sm_XX when NVRTC can target it, else PTX for compute_XX.</summary>
    public (List<string> Options, bool Cubin) OptionsFor(int arch)
    {
        var supported = Nvrtc.SupportedArchs();
        bool cubin = supported.Length == 0 || supported.Contains(arch);
        int target = cubin ? arch : supported.Where(a => a <= arch).DefaultIfEmpty(supported.Min()).Max();
        return ([cubin ? $"--gpu-architecture=sm_{target}" : $"--gpu-architecture=compute_{target}", "--std=c++17", "-default-device", "-lineinfo", "-DNDEBUG"], cubin);
    }

    /// <summary>Compiles (or loads from the cache) one kernel file for an architecture.</summary>
    public Nvrtc.Result Compile(string file, int arch, bool useCache = true)
    {
        var src = KernelSources.Source(file);
        var headers = KernelSources.Headers;
        var (options, cubin) = OptionsFor(arch);
        var key = Hash(src, headers, options, Nvrtc.Version, arch);
        var path = Path.Combine(CacheDir, $"{Path.GetFileNameWithoutExtension(file)}-sm{arch}-{key}.{(cubin ? "cubin" : "ptx")}");
        if (useCache && File.Exists(path)) return new Nvrtc.Result(File.ReadAllBytes(path), cubin, "");
        var result = Nvrtc.Compile(src, file, headers, options, cubin);
        if (useCache)
        {
            try { Directory.CreateDirectory(CacheDir); Tmca.Engine.AtomicFile.WriteAllBytes(path, result.Image); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* an unwritable cache only costs a recompile next time */ }
        }
        return result;
    }

    private static string Hash(string src, IReadOnlyList<(string Name, string Source)> headers, List<string> options, (int, int) version, int arch)
    {
        var sb = new StringBuilder(src);
        foreach (var (n, s) in headers) sb.Append('\0').Append(n).Append('\0').Append(s);
        sb.Append('\0').Append(string.Join(' ', options)).Append('\0').Append(version).Append('\0').Append(arch);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16].ToLowerInvariant();
    }
}
