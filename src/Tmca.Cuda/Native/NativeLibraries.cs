using System.Runtime.InteropServices;

namespace Tmca.Cuda.Native;

/// <summary>
/// Finds CUDA's shared libraries by their versioned names (runtime-only installs have no unversioned symlink):
/// libcuda.so.1 (the driver), libnvrtc.so.13/.12/.11.2, libcublasLt + libcublas .13/.12, libcudnn.so.9.
/// TMCA_CUDA_LIB_DIR adds a folder to search first. A machine without CUDA loads nothing and says so.
/// </summary>
public static class NativeLibraries
{
    public static readonly string[] Driver = ["libcuda.so.1"];
    public static readonly string[] Nvrtc = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"];
    public static readonly string[] CublasLt = ["libcublasLt.so.13", "libcublasLt.so.12"];
    public static readonly string[] Cublas = ["libcublas.so.13", "libcublas.so.12"];
    public static readonly string[] Cudnn = ["libcudnn.so.9"];

    /// <summary>The first candidate that loads (from $TMCA_CUDA_LIB_DIR, then the loader path), or null with the reason.</summary>
    public static (nint Handle, string? Name, string Reason) TryLoad(string[] candidates)
    {
        var tried = new List<string>();
        var dirs = new List<string?>();
        if (Environment.GetEnvironmentVariable("TMCA_CUDA_LIB_DIR") is { Length: > 0 } d) dirs.Add(d);
        dirs.Add(null);
        foreach (var dir in dirs)
            foreach (var name in candidates)
            {
                var path = dir is null ? name : Path.Combine(dir, name);
                if (NativeLibrary.TryLoad(path, out var h)) return (h, path, "");
                tried.Add(path);
            }
        return (0, null, $"none of {string.Join(", ", tried)} could be loaded");
    }

    /// <summary>A required export as a raw function pointer.</summary>
    public static nint Export(nint lib, string library, string symbol) =>
        NativeLibrary.TryGetExport(lib, symbol, out var p) ? p : throw new CudaException(symbol, $"{library} has no symbol {symbol}");

    public static nint ExportOrZero(nint lib, string symbol) => NativeLibrary.TryGetExport(lib, symbol, out var p) ? p : 0;
}

/// <summary>A failed CUDA, NVRTC, cuBLAS or cuDNN call: names the call, the error name and its description.</summary>
public sealed class CudaException(string call, string message) : Exception($"{call}: {message}")
{
    public string Call { get; } = call;
}
