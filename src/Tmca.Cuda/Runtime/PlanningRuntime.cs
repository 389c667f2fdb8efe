using System.Text;
using Tmca.Cuda.Kernels;
using Tmca.Cuda.Native;
using Tmca.Cuda.Plan;

namespace Tmca.Cuda;

/// <summary>What a stream operation on the planning runtime was.</summary>
public enum PlanEventKind { Launch, Gemm, Memset, CopyToDevice, CopyToHost, CopyOnDevice }

/// <summary>
/// One stream operation as the planning runtime recorded it: a kernel launch (its geometry, arguments and declared
/// cost), a cuBLAS GEMM, a memset or a copy. <see cref="Op"/> is the op that asked for it (the engine's op label, or
/// null outside any op). <see cref="Synchronous"/>: the host waits for it (a host → device copy from pageable
/// memory, a device → host read-back) — such an operation also blocks CUDA graph capture.
/// </summary>
public sealed record PlanEvent(int Index, PlanEventKind Kind, string Name, string? Op, Dim3 Grid, Dim3 Block, uint SharedBytes,
                               KernelCost Cost, bool Synchronous, ulong[] Pointers, ConvGeom? Conv, GemmCall? Gemm, string Args);

/// <summary>One rent (or return) of a pool block of <see cref="Size"/> bytes at <see cref="Ptr"/>, made before event
/// <see cref="BeforeEvent"/> was issued (−1: before the planned step), with the pool's live and cached bytes after it.</summary>
public readonly record struct PoolChange(int BeforeEvent, ulong Ptr, long Size, bool Rent, long LiveBytes, long CachedBytes);

/// <summary>
/// An <see cref="IDeviceRuntime"/> that executes nothing: it gives out addresses (a bump allocator over the modelled
/// device's memory, failing like cuMemAlloc when it is full), hands out kernel handles without compiling anything, and
/// records every launch, GEMM, memset and copy with its geometry, arguments and declared cost (<see cref="KernelCosts"/>).
/// Device memory holds no values: a read-back returns zeros, except that small host → device copies are remembered so
/// a cost that depends on device data (AdamW's chunk tables, embedding ids) can read them. `tmca plan` runs a real
/// training step through <see cref="CudaBackend"/> on it.
/// </summary>
public sealed unsafe class PlanningRuntime : IDeviceRuntime
{
    /// <summary>Host → device copies up to this size are remembered (for costs that read device data).</summary>
    private const long ShadowLimit = 4 << 20;
    private const ulong Base = 0x7f00_0000_0000UL, Align = 512;

    public DeviceInfo Info { get; }
    public bool ExactAllocations => false;   // the real DevicePool policy: size classes and caching
    public DeviceModel Model { get; }
    public List<PlanEvent> Events { get; } = new();
    /// <summary>Bytes given out and not freed (what cuMemGetInfo would call used).</summary>
    public long ReservedBytes { get; private set; }
    public long PeakReservedBytes { get; private set; }
    public long Synchronizations { get; private set; }

    private readonly Dictionary<ulong, long> _blocks = new();
    private readonly List<KernelDescriptor> _handles = [null!];   // handle 0 is never given out
    private readonly Dictionary<(string, string), nint> _byName = new();
    private readonly SortedList<ulong, byte[]> _shadow = new();
    private ulong _next = Base;

    public PlanningRuntime(DeviceModel model)
    {
        Model = model;
        Info = new DeviceInfo(model.Name, model.Arch, model.SmCount, model.MemoryBytes, Simulated: false,
                              $"planning runtime for {model.Name} ({model.SmCount} SMs, {model.MemoryBytes >> 30} GiB): nothing executes");
    }

    /// <summary>The op that asked for the current operation: the one place the planner reads the engine's op label.</summary>
    private static string? CurrentOp() => Tmca.Engine.Profiler.CurrentOp;

    /// <summary>The caching pool's rents and returns in order (fed by <see cref="DevicePool.Observer"/>, see
    /// <see cref="ObservePool"/>), from the pool's creation on: what is live at any point of the step, the step's memory
    /// timeline. <see cref="PoolStepStart"/>: the first change of the planned step.</summary>
    public List<PoolChange> PoolChanges { get; } = new();
    public int PoolStepStart { get; private set; }

    /// <summary>Records <paramref name="pool"/>'s rents and returns against this runtime's events.</summary>
    public void ObservePool(DevicePool pool) =>
        pool.Observer = (ptr, size, rent) => PoolChanges.Add(new PoolChange(Events.Count, ptr, size, rent, pool.InUseBytes, pool.CachedBytes));

    /// <summary>Forgets what was recorded (setup before the planned step: moving the model to the device).</summary>
    public void ClearEvents()
    {
        Events.Clear(); Synchronizations = 0; PeakReservedBytes = ReservedBytes;
        // the changes before stay (they tell what was live when the step began) but point before its first event
        for (int i = PoolStepStart; i < PoolChanges.Count; i++) PoolChanges[i] = PoolChanges[i] with { BeforeEvent = -1 };
        PoolStepStart = PoolChanges.Count;
    }

    // ---- memory ----

    public ulong Alloc(long bytes)
    {
        if (bytes <= 0) bytes = 1;
        if (ReservedBytes + bytes > Model.MemoryBytes)
            throw new DeviceOutOfMemoryException("cuMemAlloc (planned)", bytes, Model.MemoryBytes - ReservedBytes, Model.MemoryBytes, "");
        ulong p = _next;
        _next += ((ulong)bytes + Align - 1) / Align * Align;
        _blocks[p] = bytes;
        ReservedBytes += bytes;
        PeakReservedBytes = Math.Max(PeakReservedBytes, ReservedBytes);
        return p;
    }

    public void Free(ulong ptr)
    {
        if (!_blocks.Remove(ptr, out var bytes)) throw new CudaException("cuMemFree (planned)", $"0x{ptr:x} is not an allocated block");
        ReservedBytes -= bytes;
        Forget(ptr);
    }

    public (long Free, long Total) MemoryInfo() => (Model.MemoryBytes - ReservedBytes, Model.MemoryBytes);

    public void Memset(ulong dst, byte value, long bytes)
    {
        if (bytes <= 0) return;
        Forget(dst);
        if (bytes <= ShadowLimit) { var z = new byte[bytes]; if (value != 0) Array.Fill(z, value); _shadow[dst] = z; }
        Record(PlanEventKind.Memset, "memset", new KernelCost(0, 0, 0, bytes, MathUnit.Fp32Simt), false, [dst], $"{bytes} B = {value}");
    }

    public void CopyToDevice(ulong dst, void* src, long bytes)
    {
        if (bytes <= 0) return;
        Forget(dst);
        if (bytes <= ShadowLimit) _shadow[dst] = new ReadOnlySpan<byte>(src, (int)bytes).ToArray();
        // pageable host memory: DriverRuntime synchronises the stream before the host buffer may be reused
        Record(PlanEventKind.CopyToDevice, "copy host→device", new KernelCost(0, 0, 0, bytes, MathUnit.Fp32Simt), true, [dst], $"{bytes} B");
    }

    public void CopyToHost(void* dst, ulong src, long bytes)
    {
        if (bytes <= 0) return;
        var into = new Span<byte>(dst, (int)bytes);
        if (!Read(src, into)) into.Clear();   // nothing was computed: the values are zeros
        Record(PlanEventKind.CopyToHost, "copy device→host", new KernelCost(0, 0, bytes, 0, MathUnit.Fp32Simt), true, [src], $"{bytes} B");
    }

    public void CopyOnDevice(ulong dst, ulong src, long bytes)
    {
        if (bytes <= 0) return;
        Forget(dst);
        Record(PlanEventKind.CopyOnDevice, "copy device→device", new KernelCost(0, 0, bytes, bytes, MathUnit.Fp32Simt), false, [dst, src], $"{bytes} B");
    }

    // ---- kernels ----

    public nint Kernel(string file, string name)
    {
        if (_byName.TryGetValue((file, name), out var h)) return h;
        var d = KernelCosts.Descriptor(name) ?? throw new CudaException($"kernel {name} (planned)", $"no descriptor for {file}:{name}");
        h = _handles.Count;
        _handles.Add(d);
        _byName[(file, name)] = h;
        return h;
    }

    public void Launch(nint kernel, string name, Dim3 grid, Dim3 block, uint sharedBytes, void** args)
    {
        var d = kernel > 0 && kernel < _handles.Count ? _handles[(int)kernel] : throw new CudaException($"cuLaunchKernel {name} (planned)", "not a kernel handle");
        var cost = d.Cost(grid, block, sharedBytes, args, Read);
        var pointers = new List<ulong>();
        ConvGeom? conv = null;
        var text = new StringBuilder();
        for (int i = 0; i < d.Params.Length; i++)
        {
            string t = d.Params[i];
            string v = t switch
            {
                _ when t.EndsWith('*') => $"0x{*(ulong*)args[i]:x}",
                "int" or "unsigned" or "unsigned int" => (*(int*)args[i]).ToString(),
                "i64" or "unsigned long long" => (*(long*)args[i]).ToString(),
                "float" => (*(float*)args[i]).ToString("g6"),
                "ConvGeom" => (conv = *(ConvGeom*)args[i]).ToString()!,
                _ => t,
            };
            if (t.EndsWith('*'))
            {
                ulong p = *(ulong*)args[i];
                pointers.Add(p);
                if (!t.StartsWith("const ")) Forget(p);   // the kernel writes there: a remembered copy is stale
            }
            if (i > 0) text.Append(", ");
            text.Append(v);
        }
        Events.Add(new PlanEvent(Events.Count, PlanEventKind.Launch, name, CurrentOp(), grid, block, sharedBytes, cost, false, pointers.ToArray(), conv, null, text.ToString()));
    }

    public void Gemm(in GemmCall g)
    {
        Forget(g.C);
        Events.Add(new PlanEvent(Events.Count, PlanEventKind.Gemm, g.Tf32 ? "gemm (tf32)" : "gemm", CurrentOp(), new Dim3(1), new Dim3(1), 0,
                                 KernelCosts.Gemm(g), false, [g.A, g.B, g.C], null, g,
                                 $"m={g.M} n={g.N} k={g.K} batch={g.Batch} ta={g.TransA} tb={g.TransB} β={g.Beta} A=0x{g.A:x} B=0x{g.B:x} C=0x{g.C:x}"));
    }

    // ---- ordering and timing ----

    public void Synchronize() => Synchronizations++;

    /// <summary>Nothing runs: no time passes (the plan's bounds are computed from the recorded events instead).</summary>
    public float Time(Action body) { body(); return 0f; }

    public void Dispose() { }

    private void Record(PlanEventKind kind, string name, KernelCost cost, bool sync, ulong[] pointers, string args) =>
        Events.Add(new PlanEvent(Events.Count, kind, name, CurrentOp(), new Dim3(1), new Dim3(1), 0, cost, sync, pointers, null, null, args));

    // ---- remembered host → device copies ----

    /// <summary>Device bytes at <paramref name="address"/> from a remembered copy that holds all of them; false otherwise.</summary>
    public bool Read(ulong address, Span<byte> into)
    {
        int i = Floor(address);
        if (i < 0) return false;
        ulong start = _shadow.Keys[i];
        var data = _shadow.Values[i];
        long off = (long)(address - start);
        if (off + into.Length > data.Length) return false;
        data.AsSpan((int)off, into.Length).CopyTo(into);
        return true;
    }

    private void Forget(ulong address)
    {
        int i = Floor(address);
        if (i >= 0 && address - _shadow.Keys[i] < (ulong)_shadow.Values[i].Length) _shadow.RemoveAt(i);
    }

    /// <summary>The index of the last remembered copy starting at or below <paramref name="address"/>, or −1.</summary>
    private int Floor(ulong address)
    {
        var keys = _shadow.Keys;
        int lo = 0, hi = keys.Count - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) / 2;
            if (keys[mid] <= address) { found = mid; lo = mid + 1; } else hi = mid - 1;
        }
        return found;
    }
}
