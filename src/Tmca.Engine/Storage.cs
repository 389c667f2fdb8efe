namespace Tmca.Engine;

/// <summary>
/// A flat buffer owned by one backend. Tensors are views (shape + dtype) over a storage; the storage counts
/// the tensors that hold it and is given back to its backend when the last one is disposed. On the CPU it goes back to the CPU array pool (or gives its native memory back); on a GPU it returns the block to the pool.
/// </summary>
public abstract class Storage
{
    public abstract IBackend Backend { get; }
    public abstract DType DType { get; }
    public abstract long Count { get; }
    public long Bytes => Count * DType.SizeOf();

    private int _refs;
    internal void Retain() => Interlocked.Increment(ref _refs);
    internal void Release() { if (Interlocked.Decrement(ref _refs) == 0) Free(); }
    protected virtual void Free() { }
}

/// <summary>Host memory: a native array of the element type (<see cref="HostArray{T}"/>).</summary>
public sealed class CpuStorage : Storage
{
    /// <summary>The elements. After the storage is freed it lets go of them (back to the pool, or given back), so that
    /// a freed tensor still referenced from a closure or a list does not keep its memory alive.</summary>
    public HostBuffer Data { get; private set; }
    private readonly DType _dtype;
    private readonly long _count;

    /// <summary>True when the buffer came from <see cref="CpuArrayPool"/> and goes back to it when freed.</summary>
    internal bool Pooled { get; init; }

    protected override void Free()
    {
        var a = Data;
        Data = null!;   // a read after this is a bug the tensor's own disposed check reports first
        if (Pooled) CpuArrayPool.Return(a, _dtype);
        else a.Free();
    }

    public CpuStorage(HostBuffer data, DType dtype)
    {
        var expected = ElementType(dtype);
        if (data.GetType() != expected) throw new ArgumentException($"a {dtype} storage needs {expected.Name}, got {data.GetType().Name}");
        Data = data;
        _dtype = dtype;
        _count = data.LongLength;
    }

    public override IBackend Backend => CpuBackend.Instance;
    public override DType DType => _dtype;
    public override long Count => _count;

    internal static Type ElementType(DType dtype) => dtype switch
    {
        DType.F32 => typeof(HostArray<float>),
        DType.F64 => typeof(HostArray<double>),
        DType.I64 => typeof(HostArray<long>),
        DType.U8 => typeof(HostArray<byte>),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    public static CpuStorage Allocate(DType dtype, long count, bool zero = true) => new(NewBuffer(dtype, count, zero, pressure: true), dtype);

    internal static HostBuffer NewBuffer(DType dtype, long count, bool zero, bool pressure) => dtype switch
    {
        DType.F32 => new HostArray<float>(count, zero, pressure),
        DType.F64 => new HostArray<double>(count, zero, pressure),
        DType.I64 => new HostArray<long>(count, zero, pressure),
        DType.U8 => new HostArray<byte>(count, zero, pressure),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>A native copy of a managed array (the tensor's elements from a host array).</summary>
    public static CpuStorage CopyOf(Array data, DType dtype) => data switch
    {
        float[] f when dtype == DType.F32 => new(new HostArray<float>(f), dtype),
        double[] d when dtype == DType.F64 => new(new HostArray<double>(d), dtype),
        long[] l when dtype == DType.I64 => new(new HostArray<long>(l), dtype),
        byte[] b when dtype == DType.U8 => new(new HostArray<byte>(b), dtype),
        _ => throw new ArgumentException($"a {dtype} storage cannot hold {data.GetType().Name}"),
    };
}
