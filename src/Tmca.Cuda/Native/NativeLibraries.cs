using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tmca.Cuda.Native;

/// <summary>
/// Where CUDA's shared libraries come from. The bindings are [LibraryImport] declarations against logical names
/// ("cuda", "nvrtc", "cublas", "cudnn"); this resolver maps each to the first of its versioned file names that
/// loads — runtime-only installs have no unversioned symlink, and a toolkit's stub libcuda.so must never be used:
/// libcuda.so.1 (the driver); libnvrtc.so.13/.12/.11.2; libcublas.so.13/.12 after libcublasLt; libcudnn.so.9.
/// $TMCA_CUDA_LIB_DIR is searched first. A machine without CUDA loads nothing: callers check <see cref="TryLoad"/>
/// before the first call and fall back to the CPU backend with the reason.
/// </summary>
public static class NativeLibraries
{
    public static readonly string[] Driver = ["libcuda.so.1"];
    public static readonly string[] Nvrtc = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"];
    public static readonly string[] CublasLt = ["libcublasLt.so.13", "libcublasLt.so.12"];
    public static readonly string[] Cublas = ["libcublas.so.13", "libcublas.so.12"];
    public static readonly string[] Cudnn = ["libcudnn.so.9"];

    private static readonly Dictionary<string, (nint Handle, string? Path, string Reason)> Loaded = new();

    // CA2255 warns that module initializers are for applications: this one is on purpose. The resolver must be in place
    // before the first [LibraryImport] call from this assembly, whichever type makes it, and a library has no Main to
    // register it from; SetDllImportResolver affects this assembly only.
#pragma warning disable CA2255
    [ModuleInitializer]
    internal static void Register() => NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
#pragma warning restore CA2255

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path) => name switch
    {
        "cuda" => TryLoad("cuda").Handle,
        "nvrtc" => TryLoad("nvrtc").Handle,
        "cublas" => TryLoad("cublas").Handle,
        "cudnn" => TryLoad("cudnn").Handle,
        _ => 0,
    };

    /// <summary>Loads a library by its logical name (once), or says why it cannot.</summary>
    public static (nint Handle, string? Path, string Reason) TryLoad(string logical)
    {
        lock (Loaded)
        {
            if (Loaded.TryGetValue(logical, out var r)) return r;
            if (logical == "cublas")
            {
                // cuBLAS needs cuBLASLt; load it first so the dynamic loader finds it.
                var lt = TryLoadFiles(CublasLt);
                if (lt.Handle == 0) return Loaded[logical] = (0, null, $"no cuBLASLt: {lt.Reason}");
            }
            var files = logical switch
            {
                "cuda" => Driver, "nvrtc" => Nvrtc, "cublas" => Cublas, "cudnn" => Cudnn,
                _ => throw new ArgumentException($"unknown CUDA library '{logical}'"),
            };
            var loaded = TryLoadFiles(files);
            if (logical == "nvrtc" && loaded.Path is { } p && Path.GetDirectoryName(p) is { Length: > 0 } dir) PreloadBuiltins(dir);
            return Loaded[logical] = loaded;
        }
    }

    /// <summary>
    /// NVRTC opens libnvrtc-builtins.so.MAJOR.MINOR itself at the first compilation, through the dynamic loader's
    /// search path, which does not include $TMCA_CUDA_LIB_DIR: compilation then fails with a builtin-operation
    /// error. Loading it from NVRTC's own directory first makes the loader reuse it (same soname).
    /// </summary>
    private static void PreloadBuiltins(string dir)
    {
        try
        {
            foreach (var f in Directory.EnumerateFiles(dir, "libnvrtc-builtins.so*").OrderByDescending(f => f.Length))
                if (NativeLibrary.TryLoad(f, out _)) return;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static (nint Handle, string? Path, string Reason) TryLoadFiles(string[] candidates)
    {
        var tried = new List<string>();
        var dirs = new List<string?>();
        if (Tmca.Engine.TmcaSettings.Current.CudaLibDir is { } d) dirs.Add(d);
        dirs.Add(null);
        foreach (var dir in dirs)
            foreach (var file in candidates)
            {
                var path = dir is null ? file : Path.Combine(dir, file);
                if (NativeLibrary.TryLoad(path, out var h)) return (h, path, "");
                tried.Add(path);
            }
        return (0, null, $"none of {string.Join(", ", tried)} could be loaded");
    }

    /// <summary>Whether an optional symbol exists (NVRTC's CUBIN functions arrived in 11.2).</summary>
    public static bool HasExport(string logical, string symbol) =>
        TryLoad(logical).Handle is var h and not 0 && NativeLibrary.TryGetExport(h, symbol, out _);
}

/// <summary>A failed CUDA, NVRTC, cuBLAS or cuDNN call (or a simulated launch): names the call, the error name and
/// its description. <see cref="Sticky"/>: the error poisoned the context (illegal address, deadlock, launch
/// failure) and every later call on this device fails too — stop, do not retry.</summary>
public class CudaException(string call, string message, bool sticky = false) : Exception($"{call}: {message}")
{
    public string Call { get; } = call;
    public bool Sticky { get; } = sticky;
}

/// <summary>The device could not satisfy an allocation: how much was asked, how much is free, and what holds it.</summary>
public sealed class DeviceOutOfMemoryException(string call, long requested, long free, long total, string detail, string? op = null)
    : CudaException(call, $"out of device memory{(op is null ? "" : $" in {op}")}: {Bytes(requested)} requested, {Bytes(free)} free of {Bytes(total)}{detail}"),
      Tmca.Engine.IOutOfDeviceMemory
{
    /// <summary>Where it happened: "op 'conv2d.3x3'", or "the op after 'gelu' (allocating its output)".</summary>
    public string? Op { get; } = op;
    public long Requested { get; } = requested;
    public long Free { get; } = free;
    public long Total { get; } = total;
    public static string Bytes(long b) => Tmca.Engine.ByteSize.Format(b);
}
