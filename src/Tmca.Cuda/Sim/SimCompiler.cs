using System.Diagnostics;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Tmca.Cuda.Kernels;
using Tmca.Cuda.Native;

namespace Tmca.Cuda.Sim;

/// <summary>
/// Builds a kernel file for the simulator: the same kernels/*.cu text, compiled by the host C++ compiler
/// (g++, or $TMCA_SIM_CXX) with prelude.h force-included and a <c>TMCA_SIM_EXPORT(name)</c> line appended
/// for every kernel in it, into a shared library cached on disk by (source, headers, prelude, options,
/// compiler version) — a compile costs seconds, far more than running the kernels on test shapes.
/// </summary>
public sealed class SimCompiler
{
    /// <summary>The options of every simulator build (see ../shared/docs/cuda-sim.md, "Compile"). -U_FORTIFY_SOURCE:
    /// glibc's checks reject jumps between fiber stacks; -fvisibility=hidden: only the launch_* trampolines are exported.</summary>
    public static readonly string[] Options = ["-std=c++20", "-x", "c++", "-O1", "-fPIC", "-shared", "-fno-strict-aliasing",
                                               "-U_FORTIFY_SOURCE", "-fvisibility=hidden", "-w"];

    public string Compiler { get; }
    public string Version { get; }
    public string CacheDir { get; }

    private SimCompiler(string compiler, string version, string cacheDir) { Compiler = compiler; Version = version; CacheDir = cacheDir; }

    /// <summary>The compiler named by $TMCA_SIM_CXX, else g++ on the PATH; null with the reason when there is none.</summary>
    public static SimCompiler? TryCreate(out string reason, string? cacheDir = null)
    {
        var cxx = Tmca.Engine.TmcaSettings.Current.SimCxx ?? "g++";
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64)
        {
            reason = "the CUDA simulator runs on x86-64 Linux only (its fiber switch is x86-64 assembly)";
            return null;
        }
        try
        {
            var (code, output, _) = Run(cxx, ["-dumpfullversion"], Environment.CurrentDirectory, TimeSpan.FromSeconds(30));
            if (code != 0) { reason = $"{cxx} -dumpfullversion failed (exit {code})"; return null; }
            reason = "";
            return new SimCompiler(cxx, output.Trim(), cacheDir ?? Path.Combine(Tmca.Engine.CacheDirectory.Root, "sim"));
        }
        catch (System.ComponentModel.Win32Exception)
        {
            reason = $"no C++ compiler: '{cxx}' is not on the PATH (Debian: apt-get install g++; or set TMCA_SIM_CXX)";
            return null;
        }
    }

    public static string Prelude { get; } = ReadResource("sim/prelude.h");
    /// <summary>The profiler and race checker of instrumented builds (built without the sanitizer) and what it shares with the prelude.</summary>
    public static string Hooks { get; } = ReadResource("sim/hooks.cpp");
    public static string ProfHeader { get; } = ReadResource("sim/prof.h");

    /// <summary>What an instrumented build adds: the kernel file compiled with -fsanitize=thread (every load and store
    /// calls a hook), the scheduler told to call the profiler at its meeting points.</summary>
    public static readonly string[] InstrumentedOptions = ["-fsanitize=thread", "-DTMCA_SIM_INSTRUMENTED", "-g"];

    private static string ReadResource(string name)
    {
        using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream(name) ?? throw new FileNotFoundException($"{name} is not embedded in Tmca.Cuda");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    /// <summary>The kernel file's text as the simulator compiles it: the source, then one export per kernel.</summary>
    public static string SimSource(string file, string source)
    {
        var sb = new StringBuilder(source);
        sb.Append("\n\n// ---- appended by the CUDA simulator: one launch_<kernel> trampoline per kernel ----\n");
        foreach (var k in KernelSignatures.Kernels(file, source)) sb.Append("TMCA_SIM_EXPORT(").Append(k.Name).Append(")\n");
        return sb.ToString();
    }

    private static readonly object BuildLock = new();

    /// <summary>The shared library for kernels/<paramref name="file"/> (built, or found in the cache).</summary>
    public string Build(string file, bool instrumented = false) => Build(file, KernelSources.Source(file), KernelSources.Headers, instrumented);

    /// <summary>Builds any kernel source (tests build deliberately broken kernels through this).</summary>
    /// <param name="instrumented">the profiling, race-checking build (hooks.cpp; TMCA_SIM_PROFILE / TMCA_SIM_RACECHECK), cached
    /// apart from the plain one: it is several times slower.</param>
    public string Build(string file, string source, IReadOnlyList<(string Name, string Source)> headers, bool instrumented = false)
    {
        var text = SimSource(file, source);
        var key = Hash(text, headers, instrumented);
        var stem = Path.GetFileNameWithoutExtension(file) + (instrumented ? "-instrumented" : "");
        lock (BuildLock)
        {
            foreach (var dir in CacheDirs())
            {
                var target = Path.Combine(dir, $"{stem}-{key}.so");
                if (File.Exists(target)) return target;
                string work;
                try
                {
                    work = Path.Combine(dir, $"build-{stem}-{key}-{Environment.ProcessId}");
                    Directory.CreateDirectory(work);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }   // not writable: next place
                try
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(work, file))!);   // lab/*.cu: a folder below the headers
                    File.WriteAllText(Path.Combine(work, file), text);
                    File.WriteAllText(Path.Combine(work, "prelude.h"), Prelude);
                    foreach (var (name, src) in headers) File.WriteAllText(Path.Combine(work, name), src);
                    if (!instrumented) Compile(Options.Concat(["-include", "prelude.h", "-I.", file, "-o", "out.so"]), work, file);
                    else
                    {
                        // kernel.o (instrumented) + hooks.o (not) → out.so; no libtsan: hooks.cpp defines the __tsan_* calls
                        File.WriteAllText(Path.Combine(work, "prof.h"), ProfHeader);
                        File.WriteAllText(Path.Combine(work, "hooks.cpp"), Hooks);
                        var compileOnly = Options.Where(o => o != "-shared").Append("-c").ToArray();
                        Compile(compileOnly.Concat(InstrumentedOptions).Concat(["-include", "prelude.h", "-I.", file, "-o", "kernel.o"]), work, file);
                        Compile(compileOnly.Append("-O2").Concat(["-I.", "hooks.cpp", "-o", "hooks.o"]), work, "hooks.cpp");
                        Compile(["-shared", "-fPIC", "kernel.o", "hooks.o", "-o", "out.so", "-ldl"], work, file);
                    }
                    File.Move(Path.Combine(work, "out.so"), target, overwrite: true);
                    return target;
                }
                finally { try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { } }
            }
        }
        throw new IOException($"no writable directory for simulator builds (tried {string.Join(", ", CacheDirs())})");
    }

    /// <summary>The cache, then a per-user temporary folder when the cache is not writable.</summary>
    private IEnumerable<string> CacheDirs()
    {
        yield return CacheDir;
        yield return Path.Combine(Path.GetTempPath(), $"tmca-sim-{Environment.UserName}");
    }

    private void Compile(IEnumerable<string> args, string work, string file)
    {
        var (code, stdout, stderr) = Run(Compiler, args.ToArray(), work, TimeSpan.FromMinutes(3));
        if (code != 0)
            throw new CudaException($"{Compiler} {file} (CUDA simulator)", $"compile failed (exit {code}):\n{Trim(stderr + stdout)}");
    }

    private string Hash(string text, IReadOnlyList<(string Name, string Source)> headers, bool instrumented)
    {
        var sb = new StringBuilder(text);
        if (instrumented) sb.Append('\0').Append(Hooks).Append('\0').Append(ProfHeader).Append('\0').Append(string.Join(' ', InstrumentedOptions));
        foreach (var (n, s) in headers) sb.Append('\0').Append(n).Append('\0').Append(s);
        sb.Append('\0').Append(Prelude).Append('\0').Append(string.Join(' ', Options)).Append('\0').Append(Compiler).Append('\0').Append(Version);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16].ToLowerInvariant();
    }

    private static string Trim(string s) => s.Length <= 4000 ? s.Trim() : s[..4000].Trim() + "\n…";

    private static (int Code, string Stdout, string Stderr) Run(string exe, string[] args, string cwd, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(exe) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new IOException($"could not start {exe}");
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new CudaException($"{exe} (CUDA simulator)", $"the compiler did not finish within {timeout.TotalSeconds:0} s");
        }
        return (p.ExitCode, so.Result, se.Result);
    }
}
