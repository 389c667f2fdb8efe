using System.Runtime.InteropServices;
using System.Text;

namespace Tmca.Cuda.Native;

/// <summary>
/// NVRTC, the runtime CUDA C++ compiler (libnvrtc.so.13 / .12 / .11.2). Needs no GPU: CI compiles every kernel
/// with it. Kernels are compiled to a CUBIN for the exact sm_XX when NVRTC supports it (no driver JIT), else to PTX.
/// </summary>
public sealed unsafe partial class Nvrtc
{
    private const string Lib = "nvrtc";
    public string LibraryPath { get; }
    public (int Major, int Minor) Version { get; }
    private readonly bool _hasArchList, _hasCubin;

    [LibraryImport(Lib)] private static partial int nvrtcVersion(int* major, int* minor);
    [LibraryImport(Lib)] private static partial int nvrtcGetNumSupportedArchs(int* count);
    [LibraryImport(Lib)] private static partial int nvrtcGetSupportedArchs(int* archs);
    [LibraryImport(Lib)] private static partial int nvrtcCreateProgram(nint* prog, byte* src, byte* name, int numHeaders, byte** headers, byte** includeNames);
    [LibraryImport(Lib)] private static partial int nvrtcCompileProgram(nint prog, int numOptions, byte** options);
    [LibraryImport(Lib)] private static partial int nvrtcGetProgramLogSize(nint prog, nuint* size);
    [LibraryImport(Lib)] private static partial int nvrtcGetProgramLog(nint prog, byte* log);
    [LibraryImport(Lib)] private static partial int nvrtcGetPTXSize(nint prog, nuint* size);
    [LibraryImport(Lib)] private static partial int nvrtcGetPTX(nint prog, byte* ptx);
    [LibraryImport(Lib)] private static partial int nvrtcGetCUBINSize(nint prog, nuint* size);
    [LibraryImport(Lib)] private static partial int nvrtcGetCUBIN(nint prog, byte* cubin);
    [LibraryImport(Lib)] private static partial int nvrtcDestroyProgram(nint* prog);
    [LibraryImport(Lib)] private static partial byte* nvrtcGetErrorString(int result);

    private Nvrtc(string path)
    {
        LibraryPath = path;
        // Architecture lists and CUBIN output arrived in CUDA 11.2: probe before calling.
        _hasArchList = NativeLibraries.HasExport(Lib, "nvrtcGetSupportedArchs");
        _hasCubin = NativeLibraries.HasExport(Lib, "nvrtcGetCUBIN");
        int major, minor;
        Check(nvrtcVersion(&major, &minor), "nvrtcVersion");
        Version = (major, minor);
    }

    private static Nvrtc? _instance;
    private static string _reason = "";

    public static Nvrtc? TryLoad(out string reason)
    {
        if (_instance is not null || _reason.Length > 0) { reason = _reason; return _instance; }
        var (h, path, why) = NativeLibraries.TryLoad(Lib);
        if (h == 0) { reason = _reason = $"no NVRTC: {why}"; return null; }
        try { _instance = new Nvrtc(path!); }
        catch (Exception e) when (e is CudaException or EntryPointNotFoundException) { reason = _reason = e.Message; return null; }
        reason = "";
        return _instance;
    }

    /// <summary>The compute capabilities this NVRTC can target (e.g. 80, 86, 90), or empty before CUDA 11.2.</summary>
    public int[] SupportedArchs()
    {
        if (!_hasArchList) return [];
        int n;
        Check(nvrtcGetNumSupportedArchs(&n), "nvrtcGetNumSupportedArchs");
        var a = new int[n];
        fixed (int* p = a) Check(nvrtcGetSupportedArchs(p), "nvrtcGetSupportedArchs");
        return a;
    }

    /// <summary>The result of one compilation: the binary (CUBIN or NUL-terminated PTX) and the compiler log.</summary>
    public sealed record Result(byte[] Image, bool IsCubin, string Log);

    /// <summary>Compiles one source; a failure throws with the file name and NVRTC's log (which names the line).</summary>
    public Result Compile(string source, string name, IReadOnlyList<(string Name, string Source)> headers, IReadOnlyList<string> options, bool cubin)
    {
        nint prog;
        var pins = new List<GCHandle>();
        byte* Utf8(string s)
        {
            var b = Encoding.UTF8.GetBytes(s + "\0");
            var h = GCHandle.Alloc(b, GCHandleType.Pinned);
            pins.Add(h);
            return (byte*)h.AddrOfPinnedObject();
        }
        try
        {
            var hdrSrc = stackalloc byte*[Math.Max(1, headers.Count)];
            var hdrNames = stackalloc byte*[Math.Max(1, headers.Count)];
            for (int i = 0; i < headers.Count; i++) { hdrSrc[i] = Utf8(headers[i].Source); hdrNames[i] = Utf8(headers[i].Name); }
            Check(nvrtcCreateProgram(&prog, Utf8(source), Utf8(name), headers.Count, hdrSrc, hdrNames), "nvrtcCreateProgram");
            try
            {
                var opts = stackalloc byte*[Math.Max(1, options.Count)];
                for (int i = 0; i < options.Count; i++) opts[i] = Utf8(options[i]);
                int rc = nvrtcCompileProgram(prog, options.Count, opts);
                string log = Log(prog);
                if (rc != 0) throw new CudaException("nvrtcCompileProgram", $"{name}: {ErrorText(rc)}\n{log}");
                byte[] image;
                nuint size;
                if (cubin && _hasCubin)
                {
                    Check(nvrtcGetCUBINSize(prog, &size), "nvrtcGetCUBINSize");
                    image = new byte[(int)size];
                    fixed (byte* p = image) Check(nvrtcGetCUBIN(prog, p), "nvrtcGetCUBIN");
                    return new Result(image, true, log);
                }
                Check(nvrtcGetPTXSize(prog, &size), "nvrtcGetPTXSize");
                image = new byte[(int)size];
                fixed (byte* p = image) Check(nvrtcGetPTX(prog, p), "nvrtcGetPTX");
                return new Result(image, false, log);
            }
            finally { nvrtcDestroyProgram(&prog); }
        }
        finally { foreach (var h in pins) h.Free(); }
    }

    private static string Log(nint prog)
    {
        nuint size;
        if (nvrtcGetProgramLogSize(prog, &size) != 0 || size <= 1) return "";
        var b = new byte[(int)size];
        fixed (byte* p = b) nvrtcGetProgramLog(prog, p);
        return Encoding.UTF8.GetString(b, 0, (int)size - 1).Trim();
    }

    public static string ErrorText(int code)
    {
        var s = nvrtcGetErrorString(code);
        return $"{(s == null ? "NVRTC error" : Marshal.PtrToStringUTF8((nint)s))} ({code})";
    }

    public static void Check(int code, string call)
    {
        if (code != 0) throw new CudaException(call, ErrorText(code));
    }
}
