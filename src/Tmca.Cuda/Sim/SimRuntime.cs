using System.Diagnostics;
using System.Runtime.InteropServices;
using Tmca.Cuda.Native;
using Tmca.Engine;

namespace Tmca.Cuda.Sim;

/// <summary>Switches of the simulator; <see cref="FromEnvironment"/> takes TMCA_SIM_REVERSE=1, TMCA_SIM_MEMCHECK=1,
/// TMCA_SIM_MEMORY (bytes, or with a K/M/G suffix), TMCA_SIM_PROFILE=1 and TMCA_SIM_RACECHECK=1. Profile and RaceCheck run
/// the instrumented build of the kernels (hooks.cpp): every load and store is seen, several times slower.</summary>
public sealed record SimOptions(bool ReverseThreadOrder = false, bool Memcheck = false, long MemoryBytes = 16L << 30, bool Profile = false, bool RaceCheck = false)
{
    public bool Instrumented => Profile || RaceCheck;

    /// <summary>The switches as <see cref="TmcaSettings.Current"/> has them (TMCA_SIM_*).</summary>
    public static SimOptions FromEnvironment()
    {
        var s = TmcaSettings.Current;
        return new SimOptions(s.SimReverse, s.SimMemcheck, s.SimMemoryBytes ?? 16L << 30, s.SimProfile, s.SimRaceCheck);
    }
}

/// <summary>The launch record shared with prelude.h's TmcaSimLaunch (same fields, same order).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SimLaunch
{
    public fixed uint Grid[3];
    public fixed uint Block[3];
    public uint SharedBytes;
    public int Flags;
    public byte* Message;
    public int MessageCapacity;
    public int Pad;
    public ulong FaultAddress;
}

/// <summary>
/// The CUDA simulator behind <see cref="IDeviceRuntime"/>: device memory is host memory (so the compiled kernels
/// dereference device pointers directly), a kernel file is compiled by <see cref="SimCompiler"/> and loaded as a
/// shared library, a launch runs synchronously (blocks in order, a block's threads as fibers: prelude.h), and
/// GEMMs run on the CPU backend's GEMM (with TF32 emulated by rounding the operands to 10 mantissa bits).
/// One simulated launch at a time in a process (<see cref="Gate"/>). Errors that would poison a GPU context —
/// an illegal address, a deadlock — poison this one too: every later call fails with the first error.
/// With <see cref="SimOptions.Memcheck"/> every buffer has its exact size and ends at an inaccessible page, and
/// freed buffers stay inaccessible for a while, so an out-of-bounds or use-after-free access by a kernel is
/// reported with the buffer it missed (compute-sanitizer's memcheck, by guard pages).
/// </summary>
public sealed unsafe class SimRuntime : IDeviceRuntime
{
    /// <summary>Held for every simulated launch: the prelude's scheduler and __shared__ arrays are process-wide.</summary>
    public static readonly object Gate = new();

    public SimOptions Options { get; }
    public SimCompiler Compiler { get; }
    public DeviceInfo Info { get; }
    /// <summary>Warnings the kernels raised (undefined behaviour the GPU tolerates, e.g. exiting before a barrier), once per kernel.</summary>
    public List<string> Warnings { get; } = new();
    /// <summary>Whether memory checking requires every buffer at its exact size (the pool must neither round nor cache).</summary>
    public bool ExactAllocations => Options.Memcheck;

    private sealed record Block(ulong Start, long Bytes, nint MapBase, long MapBytes, bool Mapped);
    private readonly Dictionary<ulong, Block> _blocks = new();
    private readonly Queue<Block> _quarantine = new();
    private readonly Dictionary<string, nint> _libraries = new();
    private readonly Dictionary<(string, string), nint> _kernels = new();
    private readonly HashSet<string> _warned = new();
    private readonly Dictionary<nint, (nint Configure, nint Result)> _profilers = new();
    private readonly Dictionary<nint, int> _staticShared = new();
    private readonly Dictionary<string, Dictionary<string, int>> _staticByFile = new();
    private KernelCompiler? _cubinCompiler;
    /// <summary>With <see cref="SimOptions.Profile"/>: every launch's measured memory counts, in order.</summary>
    public List<SimProfile> Profiles { get; } = new();
    private long _used;
    private string? _poisoned;
    private static readonly long Page = Environment.SystemPageSize;

    private SimRuntime(SimCompiler compiler, SimOptions options)
    {
        Compiler = compiler; Options = options;
        string modes = (options.ReverseThreadOrder ? ", reverse thread order" : "") + (options.Memcheck ? ", memcheck" : "") +
                       (options.Profile ? ", profiling" : "") + (options.RaceCheck ? ", race check" : "");
        Info = new DeviceInfo("CUDA simulator", 90, 8, options.MemoryBytes, true,
            $"CUDA simulator: kernels/*.cu compiled by {compiler.Compiler} {compiler.Version}, run on the CPU one block at a time" +
            $" (threads as fibers{modes}), {DeviceOutOfMemoryException.Bytes(options.MemoryBytes)} of simulated memory, GEMM on the CPU backend");
    }

    public static SimRuntime? TryCreate(out string reason, SimOptions? options = null)
    {
        var c = SimCompiler.TryCreate(out reason);
        return c is null ? null : new SimRuntime(c, options ?? SimOptions.FromEnvironment());
    }

    private void ThrowIfPoisoned()
    {
        if (_poisoned is not null) throw new CudaException("CUDA simulator", $"the simulated context is unusable after an earlier error: {_poisoned}", sticky: true);
    }

    // ---- memory ----

    public ulong Alloc(long bytes)
    {
        ThrowIfPoisoned();
        if (bytes <= 0) bytes = 1;
        if (_used + bytes > Options.MemoryBytes)
            throw new DeviceOutOfMemoryException("cuMemAlloc_v2 (simulated)", bytes, Options.MemoryBytes - _used, Options.MemoryBytes,
                                                 Options.MemoryBytes < 16L << 30 ? " (TMCA_SIM_MEMORY caps the simulated device)" : "");
        Block b;
        if (Options.Memcheck)
        {
            // [guard page][data, ending exactly at][guard page]: one element past the end faults.
            long dataPages = (bytes + Page - 1) / Page * Page, map = dataPages + 2 * Page;
            var m = Libc.mmap(0, (nuint)map, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
            if (m == -1) throw new DeviceOutOfMemoryException("mmap (simulated device memory)", bytes, 0, Options.MemoryBytes, "");
            Libc.mprotect(m, (nuint)Page, Libc.PROT_NONE);
            Libc.mprotect(m + (nint)(Page + dataPages), (nuint)Page, Libc.PROT_NONE);
            ulong start = (ulong)(m + (nint)(Page + dataPages - bytes));
            b = new Block(start, bytes, m, map, true);
            new Span<byte>((void*)start, checked((int)Math.Min(bytes, int.MaxValue))).Fill(0xff);   // NaN: memory nobody wrote
        }
        else
        {
            var p = NativeMemory.AlignedAlloc((nuint)bytes, 256);
            if (p == null) throw new DeviceOutOfMemoryException("cuMemAlloc_v2 (simulated)", bytes, Options.MemoryBytes - _used, Options.MemoryBytes, " (host memory)");
            b = new Block((ulong)p, bytes, 0, 0, false);
        }
        _blocks[b.Start] = b;
        _used += bytes;
        return b.Start;
    }

    public void Free(ulong ptr)
    {
        if (!_blocks.Remove(ptr, out var b)) throw new CudaException("cuMemFree_v2 (simulated)", $"0x{ptr:x} is not a live device allocation");
        _used -= b.Bytes;
        if (!b.Mapped) { NativeMemory.AlignedFree((void*)ptr); return; }
        // Keep freed buffers inaccessible for a while, so a use after free is caught and named.
        Libc.mprotect(b.MapBase, (nuint)b.MapBytes, Libc.PROT_NONE);
        _quarantine.Enqueue(b);
        while (_quarantine.Count > 256) { var old = _quarantine.Dequeue(); Libc.munmap(old.MapBase, (nuint)old.MapBytes); }
    }

    public (long Free, long Total) MemoryInfo() => (Options.MemoryBytes - _used, Options.MemoryBytes);

    public void Memset(ulong dst, byte value, long bytes)
    {
        ThrowIfPoisoned();
        CheckRange(dst, bytes, "cuMemsetD8Async");
        NativeMemory.Fill((void*)dst, (nuint)bytes, value);
    }

    public void CopyToDevice(ulong dst, void* src, long bytes)
    {
        ThrowIfPoisoned();
        CheckRange(dst, bytes, "cuMemcpyHtoDAsync_v2");
        Buffer.MemoryCopy(src, (void*)dst, bytes, bytes);
    }

    public void CopyToHost(void* dst, ulong src, long bytes)
    {
        ThrowIfPoisoned();
        CheckRange(src, bytes, "cuMemcpyDtoHAsync_v2");
        Buffer.MemoryCopy((void*)src, dst, bytes, bytes);
    }

    public void CopyOnDevice(ulong dst, ulong src, long bytes)
    {
        ThrowIfPoisoned();
        CheckRange(src, bytes, "cuMemcpyDtoDAsync_v2 (source)");
        CheckRange(dst, bytes, "cuMemcpyDtoDAsync_v2 (destination)");
        Buffer.MemoryCopy((void*)src, (void*)dst, bytes, bytes);
    }

    /// <summary>Copies and memsets stay inside one live allocation (the driver would fail them with an invalid value).</summary>
    private void CheckRange(ulong p, long bytes, string call)
    {
        if (bytes == 0) return;
        foreach (var b in _blocks.Values)
            if (p >= b.Start && p + (ulong)bytes <= b.Start + (ulong)b.Bytes) return;
        throw new CudaException($"{call} (simulated)", $"CUDA_ERROR_INVALID_VALUE: {bytes} bytes at 0x{p:x} are not inside one device allocation");
    }

    // ---- kernels ----

    public nint Kernel(string file, string name)
    {
        ThrowIfPoisoned();
        if (_kernels.TryGetValue((file, name), out var f)) return f;
        if (!_libraries.TryGetValue(file, out var lib))
        {
            var path = Compiler.Build(file, Options.Instrumented);
            lib = NativeLibrary.Load(path);
            _libraries[file] = lib;
        }
        if (!NativeLibrary.TryGetExport(lib, "launch_" + name, out f))
            throw new CudaException($"cuModuleGetFunction({name}) (simulated)", $"CUDA_ERROR_NOT_FOUND: {file} has no kernel {name}");
        _kernels[(file, name)] = f;
        if (Options.Instrumented) RegisterProfiler(lib, f, $"{file}:{name}");
        if (StaticSharedBytes(file, name) is { } st) _staticShared[f] = st;
        return f;
    }

    /// <summary>What a launch's shared memory breaks, or null: static + dynamic must fit the 48 KiB a block gets without
    /// an opt-in (the runtime opts in only for dynamic memory, which the simulator does not model).</summary>
    public static string? SharedMemoryProblem(long staticBytes, long dynamicBytes) =>
        staticBytes + dynamicBytes > 48 * 1024
            ? $"{staticBytes} bytes of static + {dynamicBytes} bytes of dynamic shared memory exceed the 48 KiB a block gets without an opt-in"
            : null;

    /// <summary>A kernel's static shared memory, from NVRTC's sm_90 cubin of its file (the simulator puts every kernel's
    /// __shared__ arrays of a file in one section, so it cannot tell them apart itself); null without NVRTC.</summary>
    private int? StaticSharedBytes(string file, string name)
    {
        _cubinCompiler ??= Nvrtc.TryLoad(out _) is { } nv ? new KernelCompiler(nv) : null;
        if (_cubinCompiler is null) return null;
        if (!_staticByFile.TryGetValue(file, out var table))
        {
            try
            {
                var r = _cubinCompiler.Compile(file, 90);
                table = r.IsCubin ? Kernels.CubinResources.Read(r.Image, 90).ToDictionary(k => k.Kernel, k => k.StaticSharedBytes) : new();
            }
            catch (CudaException) { table = new(); }   // the simulator's own compile reports kernel errors
            _staticByFile[file] = table;
        }
        return table.TryGetValue(name, out var b) ? b : null;
    }

    private void RegisterProfiler(nint lib, nint kernel, string what)
    {
        if (!NativeLibrary.TryGetExport(lib, "tmca_prof_configure", out var cfg) || !NativeLibrary.TryGetExport(lib, "tmca_prof_result", out var res))
            throw new CudaException("CUDA simulator", $"{what}: the library is not an instrumented build (no tmca_prof_configure)");
        _profilers[kernel] = (cfg, res);
    }

    /// <summary>Loads a library built from any source (tests of the simulator itself) and returns its kernel.</summary>
    public nint LoadKernel(string libraryPath, string name)
    {
        var lib = NativeLibrary.Load(libraryPath);
        var f = NativeLibrary.TryGetExport(lib, "launch_" + name, out var k) ? k : throw new CudaException("simulator", $"{libraryPath} has no kernel {name}");
        if (Options.Instrumented) RegisterProfiler(lib, f, $"{libraryPath}:{name}");
        return f;
    }

    public void Launch(nint kernel, string name, Dim3 grid, Dim3 block, uint sharedBytes, void** args)
    {
        ThrowIfPoisoned();
        long threads = (long)block.X * block.Y * block.Z;
        if (threads is < 1 or > 1024 || block.Z > 64 || grid.X == 0 || grid.Y is 0 or > 65535 || grid.Z is 0 or > 65535)
            throw new CudaException($"cuLaunchKernel {name} (simulated)", $"CUDA_ERROR_INVALID_VALUE: grid {grid}, block {block}");
        if (SharedMemoryProblem(_staticShared.GetValueOrDefault(kernel), sharedBytes) is { } problem)
            throw new CudaException($"cuLaunchKernel {name} (simulated)", $"CUDA_ERROR_INVALID_VALUE: {problem}");
        const int cap = 8192;
        var message = stackalloc byte[cap];
        message[0] = 0;
        var l = new SimLaunch { SharedBytes = sharedBytes, Flags = Options.ReverseThreadOrder ? 1 : 0, Message = message, MessageCapacity = cap };
        l.Grid[0] = grid.X; l.Grid[1] = grid.Y; l.Grid[2] = grid.Z;
        l.Block[0] = block.X; l.Block[1] = block.Y; l.Block[2] = block.Z;
        int rc;
        var profiler = Options.Instrumented ? _profilers.GetValueOrDefault(kernel) : default;
        var measured = new SimCounts();
        lock (Gate)
        {
            if (profiler.Configure != 0)
            {
                // the device buffers: what the hooks count as global memory (everything else is locals or the simulator's state)
                var ranges = new ulong[_blocks.Count * 2];
                int i = 0;
                foreach (var b in _blocks.Values) { ranges[i++] = b.Start; ranges[i++] = (ulong)b.Bytes; }
                fixed (ulong* r = ranges)
                    ((delegate* unmanaged<int, int, ulong*, int, void>)profiler.Configure)(Options.Profile ? 1 : 0, Options.RaceCheck ? 1 : 0, r, _blocks.Count);
            }
            rc = ((delegate* unmanaged<SimLaunch*, void**, int>)kernel)(&l, args);
            if (profiler.Result != 0) ((delegate* unmanaged<SimCounts*, void>)profiler.Result)(&measured);
        }
        if (Options.Profile && profiler.Result != 0 && rc is 0 or 3)
            Profiles.Add(new SimProfile(name, grid, block, sharedBytes, measured, Declared(name, grid, block, sharedBytes, args)));
        string text = Marshal.PtrToStringUTF8((nint)message) ?? "";
        switch (rc)
        {
            case 0: return;
            case 3:
                if (_warned.Add(name))
                {
                    Warnings.Add(text.Trim());
                    Console.Error.WriteLine($"warning: CUDA simulator: {text.Trim()}");
                }
                return;
            case 2:
                _poisoned = $"{text}{DescribeAddress(l.FaultAddress)}";
                throw new CudaException($"{name} (simulated)", $"CUDA_ERROR_ILLEGAL_ADDRESS: {_poisoned}", sticky: true);
            default:
                _poisoned = text;
                throw new CudaException($"{name} (simulated)", text, sticky: true);
        }
    }

    /// <summary>The launch's declared cost (Kernels/KernelCosts.cs), read with the simulated memory (all of it is readable).</summary>
    private Kernels.KernelCost? Declared(string name, Dim3 grid, Dim3 block, uint shared, void** args)
    {
        var d = Kernels.KernelCosts.Descriptor(name);
        if (d is null || !Kernels.KernelCosts.Declares(d)) return null;
        return d.Cost(grid, block, shared, args, (address, into) =>
        {
            foreach (var b in _blocks.Values)
                if (address >= b.Start && address + (ulong)into.Length <= b.Start + (ulong)b.Bytes)
                {
                    new ReadOnlySpan<byte>((void*)address, into.Length).CopyTo(into);
                    return true;
                }
            return false;
        });
    }

    /// <summary>Which buffer an illegal address missed, and by how much.</summary>
    private string DescribeAddress(ulong a)
    {
        foreach (var b in _blocks.Values)
        {
            ulong end = b.Start + (ulong)b.Bytes;
            if (a >= end && a < end + (ulong)Page)
                return $" — offset {a - b.Start} of a {b.Bytes}-byte device buffer at 0x{b.Start:x}, {a - end + 1} byte(s) past its end " +
                       $"(float index {(long)(a - b.Start) / 4} of {b.Bytes / 4})";
            if (b.Mapped && a < b.Start && a >= (ulong)b.MapBase)
                return $" — {b.Start - a} bytes before the start of a {b.Bytes}-byte device buffer at 0x{b.Start:x}";
        }
        foreach (var b in _quarantine)
            if (a >= (ulong)b.MapBase && a < (ulong)b.MapBase + (ulong)b.MapBytes)
                return $" — inside a {b.Bytes}-byte device buffer at 0x{b.Start:x} that was already freed (use after free)";
        return Options.Memcheck ? " — not inside any device buffer" : " (TMCA_SIM_MEMCHECK=1 names the buffer)";
    }

    public void Gemm(in GemmCall g)
    {
        ThrowIfPoisoned();
        if (g.M == 0 || g.N == 0 || g.Batch == 0) return;
        float* a = (float*)g.A, b = (float*)g.B;
        float[]? ta = null, tb = null;
        if (g.Tf32)
        {
            // TF32 keeps 10 of float32's 23 mantissa bits in the products' inputs (round to nearest).
            ta = RoundTf32(a, g.StrideA, g.Batch, (long)g.M * g.K);
            tb = RoundTf32(b, g.StrideB, g.Batch, (long)g.K * g.N);
        }
        fixed (float* ra = ta, rb = tb)
            CpuBackend.GemmF32Raw(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, ta is null ? a : ra, ta is null ? g.StrideA : (long)g.M * g.K,
                                  tb is null ? b : rb, tb is null ? g.StrideB : (long)g.K * g.N, g.Beta, (float*)g.C, g.StrideC, g.Batch);
    }

    private static float[] RoundTf32(float* src, long stride, int batch, long size)
    {
        var r = new float[batch * size];
        for (int i = 0; i < batch; i++)
            for (long j = 0; j < size; j++)
            {
                uint bits = BitConverter.SingleToUInt32Bits(src[i * stride + j]);
                bits = (bits + 0x1000u) & 0xffffe000u;   // round half away from zero at bit 13
                r[i * size + j] = BitConverter.UInt32BitsToSingle(bits);
            }
        return r;
    }

    // ---- ordering and timing: launches run synchronously ----

    public void Synchronize() => ThrowIfPoisoned();

    public float Time(Action body)
    {
        var sw = Stopwatch.StartNew();
        body();
        return (float)sw.Elapsed.TotalMilliseconds;
    }

    public void Dispose()
    {
        foreach (var b in _blocks.Values.ToList()) Free(b.Start);
        while (_quarantine.Count > 0) { var q = _quarantine.Dequeue(); Libc.munmap(q.MapBase, (nuint)q.MapBytes); }
    }
}

/// <summary>One launch's counts from the instrumented build (prof.h's TmcaProfResult: same fields, same order).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SimCounts
{
    public ulong LoadRequests, LoadSectors, StoreRequests, StoreSectors;
    public ulong SharedLoadRequests, SharedStoreRequests, SharedWavefronts, SharedIdealWavefronts;
    public ulong UniqueRead, UniqueWritten;
    public ulong WarpOps, DivergentWarpOps;
}

/// <summary>
/// What the profiling simulator measured for one launch (Nsight Compute's first page, from every access the kernel made):
/// 32-byte sectors per global load and store request (4 for contiguous 4-byte lanes, 32 for a 32-way gather), shared
/// bank conflicts per request (wavefronts − ideal), unique device bytes read and written (the compulsory traffic, to
/// hold against <see cref="Declared"/>), and the share of warp operations that met with fewer lanes than were alive.
/// </summary>
public sealed record SimProfile(string Kernel, Dim3 Grid, Dim3 Block, uint SharedBytes, SimCounts Counts, Kernels.KernelCost? Declared)
{
    public double SectorsPerLoadRequest => Counts.LoadRequests == 0 ? 0 : (double)Counts.LoadSectors / Counts.LoadRequests;
    public double SectorsPerStoreRequest => Counts.StoreRequests == 0 ? 0 : (double)Counts.StoreSectors / Counts.StoreRequests;
    public ulong SharedRequests => Counts.SharedLoadRequests + Counts.SharedStoreRequests;
    public double BankConflictsPerRequest => SharedRequests == 0 ? 0 : (double)(Counts.SharedWavefronts - Counts.SharedIdealWavefronts) / SharedRequests;
    public long UniqueBytes => (long)(Counts.UniqueRead + Counts.UniqueWritten);
    public double DivergentWarpOpShare => Counts.WarpOps == 0 ? 0 : (double)Counts.DivergentWarpOps / Counts.WarpOps;
}

/// <summary>The three libc calls the simulator's memory checking needs.</summary>
internal static unsafe partial class Libc
{
    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
    [LibraryImport("libc.so.6", SetLastError = true)] public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);
    [LibraryImport("libc.so.6", SetLastError = true)] public static partial int mprotect(nint addr, nuint length, int prot);
    [LibraryImport("libc.so.6", SetLastError = true)] public static partial int munmap(nint addr, nuint length);
}
