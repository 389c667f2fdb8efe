using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tmca.Engine;

namespace Tmca.Cuda.Kernels;

/// <summary>How a kernel's grid follows from the work it is given.</summary>
public enum LaunchRule
{
    /// <summary>A grid-stride loop over n items (common.cuh's FOR_EACH): ceil(n / block) blocks, at most SMs·32.</summary>
    GridStride,
    /// <summary>One thread per item, no loop: ceil(n / block) blocks.</summary>
    ThreadPerItem,
    /// <summary>One warp per row: ceil(rows / (block / 32)) blocks.</summary>
    WarpPerRow,
    /// <summary>One block per item, looping over items: min(n, 65535) blocks.</summary>
    BlockPerItem,
    /// <summary>The launcher computes the grid (the kernel's comment says how).</summary>
    Explicit,
}

/// <summary>
/// One kernel, declared once: its file, its name, its parameters' C types in order (as normalised by
/// <see cref="KernelSignatures"/>), its block shape and its launch rule. Launchers build their arguments
/// through <see cref="KernelArgs"/> from the descriptor, which checks each argument's kind as it is added; the
/// signature test checks every descriptor against the kernel source.
/// </summary>
public sealed record KernelDescriptor(string File, string Name, string[] Params, LaunchRule Rule, uint Block = 256, uint BlockY = 1)
{
    public Dim3 BlockDim => new(Block, BlockY);

    /// <summary>The cost model of a kernel outside <see cref="KernelTable"/> (the kernel lab's own versions declare theirs with
    /// their descriptor); null for the table's kernels, whose costs are <see cref="KernelCosts"/>'.</summary>
    public Func<KernelLaunch, KernelCost>? CostModel { get; init; }

    /// <summary>The grid for <paramref name="work"/> items (elements, rows or outputs, by the rule).</summary>
    public Dim3 Grid(long work, int smCount, uint block = 0)
    {
        long b = block == 0 ? Block : block;
        long blocks = Rule switch
        {
            LaunchRule.GridStride => Math.Min((work + b - 1) / b, (long)smCount * 32),
            LaunchRule.ThreadPerItem => (work + b - 1) / b,
            LaunchRule.WarpPerRow => (work + b / 32 - 1) / (b / 32),
            LaunchRule.BlockPerItem => Math.Min(work, 65535),
            _ => throw new InvalidOperationException($"{Name}: the launcher gives the grid (LaunchRule.Explicit)"),
        };
        if (blocks > int.MaxValue) throw new ArgumentException($"{Name}: {work} items need {blocks} blocks, more than a grid holds");
        return new Dim3((uint)Math.Max(1, blocks));
    }

    /// <summary>What one launch of this kernel must do, declared from its arguments (<see cref="KernelCosts"/>).</summary>
    public KernelCost Cost(in KernelLaunch launch) => KernelCosts.Of(this, launch);

    /// <summary>The same, from a runtime's launch call (kernelParams: one pointer per parameter to its value).</summary>
    public unsafe KernelCost Cost(Dim3 grid, Dim3 block, uint sharedBytes, void** args, DeviceReader? read = null) =>
        KernelCosts.Of(this, new KernelLaunch(this, grid, block, sharedBytes, args, read));

    public override string ToString() => $"{File}:{Name}({string.Join(", ", Params)})";
}

/// <summary>Structs passed to kernels (by value or through a pointer): the C# side of each, by its C name.</summary>
public static class NativeStructs
{
    public static readonly IReadOnlyDictionary<string, Type> ByName = new Dictionary<string, Type>
    {
        ["Shape8"] = typeof(Shape8),
        ["AdamSlot"] = typeof(AdamSlotNative),
        ["ConvGeom"] = typeof(ConvGeom),
        ["TmcaLevels"] = typeof(TmcaLevels),
    };

    public static string NameOf(Type t) => ByName.FirstOrDefault(kv => kv.Value == t).Key
                                           ?? throw new ArgumentException($"{t.Name} is not a registered kernel struct (NativeStructs.ByName)");
}

/// <summary>Up to 8 axes with two stride sets, passed to kernels by value (common.cuh's Shape8).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct Shape8
{
    public int Rank;
    private int _pad;
    public fixed long Dims[8];
    public fixed long S0[8];
    public fixed long S1[8];

    public static Shape8 Of(int[] dims, long[] s0, long[]? s1 = null)
    {
        if (dims.Length > 8) throw new NotSupportedException($"tensors of rank {dims.Length} on CUDA (at most 8)");
        var s = new Shape8 { Rank = dims.Length };
        for (int i = 0; i < dims.Length; i++) { s.Dims[i] = dims[i]; s.S0[i] = s0[i]; s.S1[i] = s1?[i] ?? 0; }
        return s;
    }
}

/// <summary>A convolution's geometry, passed to the conv.cu kernels by value (conv.cu's ConvGeom). For a transposed
/// convolution C, O, H, W are the input's and Kh = Kw = Stride = k.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct ConvGeom
{
    public int B, C, H, W, O, Kh, Kw, Ho, Wo, Stride, Pad, Groups;
    public override string ToString() => $"x {B}×{C}×{H}×{W}, w {O}×{C / Math.Max(1, Groups)}×{Kh}×{Kw}, stride {Stride}, pad {Pad}, groups {Groups} → {B}×{O}×{Ho}×{Wo}";
}

/// <summary>Every level of a fused TMCA op, passed by value (tmca.cu's TmcaLevels): up to 4 levels' grids, sizes and pointers.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct TmcaLevels
{
    public int Count, B, S, Sw, Global, Pad;
    public fixed int H[4];
    public fixed int W[4];
    public fixed int D[4];
    public fixed ulong V[4];
    public fixed ulong U[4];
    public fixed ulong Omega[4];
    public fixed ulong Vbar[4];
    public fixed ulong Gv[4];
    public fixed ulong Gu[4];
}

/// <summary>Slot of the multi-tensor AdamW kernel (adamw.cu's AdamSlot).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct AdamSlotNative { public ulong P, G, M, V; public long N; public int Decay; public int Pad; }

[InlineArray(96)]
public struct ArgSlots { private ulong _e; }

/// <summary>
/// A kernel's argument list, built in order and checked against its descriptor as it grows: an int where the
/// kernel takes an i64, a float tensor where it takes an i64 pointer, one argument too many or too few — each is
/// an <see cref="ArgumentException"/> naming the kernel and the parameter, raised on the host before anything is
/// launched (on a GPU such a mismatch would corrupt memory silently). Values live in the struct itself (8-byte
/// slots; structs take several), so building one allocates nothing.
/// </summary>
public unsafe ref struct KernelArgs
{
    public readonly KernelDescriptor Descriptor;
    private ArgSlots _slots;
    private fixed int _start[24];
    private int _count, _used;

    public KernelArgs(KernelDescriptor d)
    {
        if (d.Params.Length > 24) throw new ArgumentException($"{d.Name}: more than 24 parameters");
        Descriptor = d;
    }

    private string Expect(string kind)
    {
        if (_count >= Descriptor.Params.Length)
            throw new ArgumentException($"kernel {Descriptor.Name}: argument {_count + 1} ({kind}) given, but it takes {Descriptor.Params.Length}: {Descriptor}");
        return Descriptor.Params[_count];
    }

    private ulong* Next(int slots)
    {
        if (_used + slots > 96) throw new ArgumentException($"kernel {Descriptor.Name}: arguments exceed {96 * 8} bytes");
        _start[_count++] = _used;
        fixed (ulong* p = &_slots[0]) { ulong* at = p + _used; _used += slots; return at; }
    }

    private ArgumentException Mismatch(string given, string expected) =>
        new($"kernel {Descriptor.Name}: parameter {_count + 1} is {expected}, given {given}: {Descriptor}");

    [UnscopedRef]
    public ref KernelArgs I32(int v)
    {
        var t = Expect("int");
        if (t is not ("int" or "unsigned" or "unsigned int")) throw Mismatch("int", t);
        *(int*)Next(1) = v;
        return ref this;
    }

    [UnscopedRef]
    public ref KernelArgs Flag(bool v) => ref I32(v ? 1 : 0);

    [UnscopedRef]
    public ref KernelArgs I64(long v)
    {
        var t = Expect("i64");
        if (t is not ("i64" or "unsigned long long")) throw Mismatch("i64", t);
        *(long*)Next(1) = v;
        return ref this;
    }

    [UnscopedRef]
    public ref KernelArgs F32(float v)
    {
        var t = Expect("float");
        if (t != "float") throw Mismatch("float", t);
        *(float*)Next(1) = v;
        return ref this;
    }

    [UnscopedRef]
    public ref KernelArgs F32(double v) => ref F32((float)v);

    /// <summary>A device pointer to scratch memory (the element type is the launcher's business).</summary>
    [UnscopedRef]
    public ref KernelArgs Ptr(ulong p)
    {
        var t = Expect("pointer");
        if (!t.EndsWith('*')) throw Mismatch("a pointer", t);
        *Next(1) = p;
        return ref this;
    }

    /// <summary>A tensor's device pointer, or null (0); its element type must be the parameter's.</summary>
    [UnscopedRef]
    public ref KernelArgs Ptr(Tensor? tensor)
    {
        var t = Expect("pointer");
        if (!t.EndsWith('*')) throw Mismatch($"a {tensor?.DType.ToString() ?? "null"} tensor", t);
        if (tensor is not null)
        {
            var elem = t.Replace("const ", "").TrimEnd('*').Trim();
            DType? want = elem switch { "float" => DType.F32, "i64" => DType.I64, "unsigned char" => DType.U8, "double" => DType.F64, _ => null };
            if (want is { } w && w != tensor.DType) throw Mismatch($"a {tensor.DType} tensor", t);
        }
        *Next(1) = CudaBackend.POpt(tensor);
        return ref this;
    }

    /// <summary>A struct by value; T must be the registered C# twin of the parameter's struct (<see cref="NativeStructs"/>).</summary>
    [UnscopedRef]
    public ref KernelArgs Struct<T>(in T v) where T : unmanaged
    {
        var t = Expect(typeof(T).Name);
        if (!NativeStructs.ByName.TryGetValue(t, out var type) || type != typeof(T)) throw Mismatch(typeof(T).Name, t);
        var dst = Next((sizeof(T) + 7) / 8);
        *(T*)dst = v;
        return ref this;
    }

    /// <summary>Fills <paramref name="pointers"/> (one per parameter) with the addresses of the values — valid while this
    /// struct lives (it is on the caller's stack, which does not move). Every parameter must have been given.</summary>
    public void Pointers(void** pointers)
    {
        if (_count != Descriptor.Params.Length)
            throw new ArgumentException($"kernel {Descriptor.Name}: {_count} arguments given, it takes {Descriptor.Params.Length}: {Descriptor}");
        fixed (ulong* p = &_slots[0])
            for (int i = 0; i < _count; i++) pointers[i] = p + _start[i];
    }
}
