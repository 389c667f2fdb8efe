using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tmca.Engine;

/// <summary>
/// The elements of a CPU tensor, in native memory outside the garbage-collected heap (issue 19).
///
/// Why not a managed array: a training step time-shares memory between activations (freed during backward) and
/// parameter gradients (allocated during backward, released at the next step's start), and the two never have the same
/// sizes. In the GC heap the freed arrays left holes the other sizes did not fit: the tiny step (batch 4) held ≈300 MiB
/// of fragmentation above its live peak, growing step by step, and needed ~20 forced full collections a step. Native
/// arrays of 64 KiB or more are anonymous mappings of their own (Linux): unmapping one gives its pages back at once, and
/// the pool moves a freed array's pages into an array of another size without copying or faulting them
/// (<see cref="PageRuns"/>). What the process holds is what is live plus what <see cref="CpuArrayPool"/> caches.
/// Smaller arrays come from the C heap.
///
/// Lifetime: freed by its storage when the last tensor over it is disposed (through the pool), or by the finalizer when
/// it becomes garbage undisposed. A span taken from it (<see cref="AsSpan()"/>, <see cref="Tensor.Span{T}"/>) does not
/// keep it alive: hold the array or the tensor while the span is in use (kernels index the array itself).
/// Reads and writes are bounds-checked like an array's.
/// </summary>
public abstract unsafe class HostBuffer
{
    /// <summary>Allocations of at least this many bytes are mapped straight from the kernel (Linux), so freeing them
    /// gives the pages back at once; smaller ones come from the C heap.</summary>
    private const long MapAtBytes = 64 << 10;

    /// <summary>True where an allocation of <paramref name="bytes"/> is a mapping of its own.</summary>
    internal static bool Maps(long bytes) => OperatingSystem.IsLinux() && bytes >= MapAtBytes;

    private void* _ptr;
    private readonly long _bytes;
    private readonly int _elementSize;
    private readonly bool _mapped, _pressure;

    public long LongLength { get; }
    public long Bytes => _bytes;
    internal void* Pointer => _ptr;
    /// <summary>True once the memory has been given back (the array is then empty: every access throws).</summary>
    public bool IsFreed => _ptr == null;

    private protected HostBuffer(long count, int elementSize, bool zero, bool pressure)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        LongLength = count;
        _elementSize = elementSize;
        _bytes = Math.Max(1, count * elementSize);
        if (Maps(_bytes))
        {
            _ptr = (void*)PageRuns.Map(_bytes);
            _mapped = true;   // anonymous mappings come zeroed
        }
        else
        {
            _ptr = NativeMemory.AlignedAlloc((nuint)_bytes, 64);
            if (zero) NativeMemory.Clear(_ptr, (nuint)_bytes);
        }
        _pressure = pressure;
        if (pressure) GC.AddMemoryPressure(_bytes);
    }

    /// <summary>For an array assembled from page runs: its kernel mappings, in order (null: one mapping, the whole array).</summary>
    private readonly (nint Ptr, long Bytes)[]? _pieces;

    /// <summary>Adopts pages assembled by <see cref="PageRuns"/> (a mapping of <paramref name="bytes"/>, page-rounded, made
    /// of <paramref name="pieces"/>).</summary>
    private protected HostBuffer(void* ptr, long count, int elementSize, long bytes, (nint, long)[] pieces)
    {
        _ptr = ptr;
        _pieces = pieces;
        LongLength = count;
        _elementSize = elementSize;
        _bytes = bytes;
        _mapped = true;
    }

    /// <summary>True when this buffer is a mapping of its own (Linux, ≥ 64 KiB) whose pages the pool can move into
    /// another array (<see cref="PageRuns"/>).</summary>
    internal bool Movable => _mapped && _ptr != null && !_pressure;

    /// <summary>How many kernel mappings the array is made of (1 unless assembled from page runs).</summary>
    internal int PieceCount => _pieces?.Length ?? 1;

    /// <summary>The mapping's length: the bytes rounded up to whole pages.</summary>
    internal long MapBytes => _mapped ? PageRuns.RoundUp(_bytes) : _bytes;

    /// <summary>Gives up the pages without unmapping them, as runs that are each one kernel mapping (the pool keeps them
    /// as spare runs); this buffer is left freed.</summary>
    internal (nint Ptr, long Bytes)[] Detach()
    {
        if (!Movable) throw new InvalidOperationException("only the pool's own mappings can be detached");
        var runs = _pieces ?? [((nint)_ptr, MapBytes)];
        _ptr = null;
        ZeroLength();
        GC.SuppressFinalize(this);
        return runs;
    }

    internal static HostBuffer Adopt(DType dtype, nint p, long count, long bytes, (nint, long)[] pieces) => dtype switch
    {
        DType.F32 => new HostArray<float>((void*)p, count, bytes, pieces),
        DType.F64 => new HostArray<double>((void*)p, count, bytes, pieces),
        DType.I64 => new HostArray<long>((void*)p, count, bytes, pieces),
        DType.U8 => new HostArray<byte>((void*)p, count, bytes, pieces),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>Gives the memory back now (idempotent). Later accesses throw as out of range.</summary>
    public void Free()
    {
        var p = _ptr;
        if (p == null) return;
        _ptr = null;
        ZeroLength();
        Release(p);
        GC.SuppressFinalize(this);
    }

    private protected abstract void ZeroLength();

    ~HostBuffer()
    {
        if (_ptr != null) Release(_ptr);
    }

    private void Release(void* p)
    {
        if (_mapped) PageRuns.Unmap((nint)p, MapBytes);
        else NativeMemory.AlignedFree(p);
        if (_pressure) GC.RemoveMemoryPressure(_bytes);
    }

    /// <summary>The bytes (IO: safetensors, uploads).</summary>
    public Span<byte> ByteSpan() => new(_ptr, checked((int)(IsFreed ? 0 : LongLength * _elementSize)));

    /// <summary>A managed copy of the elements (uploads to a device backend, <see cref="Tensor.ToArray{T}"/>).</summary>
    public abstract Array ToManagedArray();
}

/// <summary>A <see cref="HostBuffer"/> of <typeparamref name="T"/>: indexed like an array (bounds-checked), viewed as spans.</summary>
public sealed unsafe class HostArray<T> : HostBuffer where T : unmanaged
{
    private long _length;   // 0 once freed, so that a stale access throws instead of touching unmapped memory

    /// <param name="pressure">Tell the GC about the native bytes (<see cref="GC.AddMemoryPressure"/>), so that an undisposed
    /// array's finalizer runs in time. Off for the pool's arrays: they are freed explicitly, and the pressure of a step's
    /// churn would make the GC run a full collection every few tensors.</param>
    public HostArray(long count, bool zero = true, bool pressure = true) : base(count, sizeof(T), zero, pressure) => _length = count;

    internal HostArray(void* ptr, long count, long bytes, (nint, long)[] pieces) : base(ptr, count, sizeof(T), bytes, pieces) => _length = count;

    /// <summary>A native copy of <paramref name="source"/>.</summary>
    public HostArray(ReadOnlySpan<T> source) : this(source.Length, zero: false) => source.CopyTo(AsSpan());

    private protected override void ZeroLength() => _length = 0;

    public int Length => checked((int)_length);

    public ref T this[long i]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if ((ulong)i >= (ulong)_length) ThrowIndex(i);
            return ref ((T*)Pointer)[i];
        }
    }

    public ref T this[int i]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if ((ulong)(uint)i >= (ulong)_length) ThrowIndex(i);
            return ref ((T*)Pointer)[i];
        }
    }

    public Span<T> AsSpan() => new(Pointer, Length);
    public Span<T> AsSpan(int start) => AsSpan().Slice(start);
    public Span<T> AsSpan(int start, int length) => AsSpan().Slice(start, length);
    public Span<T> AsSpan(long start, int length)
    {
        if ((ulong)start > (ulong)_length || (ulong)length > (ulong)(_length - start)) ThrowIndex(start);
        return new Span<T>((T*)Pointer + start, length);
    }

    /// <summary>For <c>fixed (T* p = array)</c>.</summary>
    public ref T GetPinnableReference() => ref _length == 0 ? ref Unsafe.NullRef<T>() : ref ((T*)Pointer)[0];

    public Span<T>.Enumerator GetEnumerator() => AsSpan().GetEnumerator();

    /// <summary>Like <see cref="Array.Copy(Array, long, Array, long, long)"/>.</summary>
    public static void Copy(HostArray<T> src, long srcIndex, HostArray<T> dst, long dstIndex, int length) =>
        src.AsSpan(srcIndex, length).CopyTo(dst.AsSpan(dstIndex, length));

    public static implicit operator Span<T>(HostArray<T> a) => a.AsSpan();
    public static implicit operator ReadOnlySpan<T>(HostArray<T> a) => a.AsSpan();

    public override Array ToManagedArray() => AsSpan().ToArray();

    private void ThrowIndex(long i) => throw new IndexOutOfRangeException(IsFreed
        ? $"index {i} into a freed host array (its tensor was disposed)"
        : $"index {i} outside a host array of {_length} elements");
}
