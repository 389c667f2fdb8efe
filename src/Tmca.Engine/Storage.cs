namespace Tmca.Engine;

/// <summary>
/// A flat buffer owned by one backend. Tensors are views (shape + dtype) over a storage; the storage counts
/// the tensors that hold it and is given back to its backend when the last one is disposed. On the CPU the
/// garbage collector does that job, so release is a no-op there; on a GPU it returns the block to the pool.
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

/// <summary>Host memory: a managed array of the element type.</summary>
public sealed class CpuStorage : Storage
{
    /// <summary>The elements. After the storage is freed it lets go of the array (back to the pool, or to the GC), so
    /// that a freed tensor still referenced from a closure or a list does not keep its memory alive.</summary>
    public Array Data { get; private set; }
    private readonly DType _dtype;

    /// <summary>True when the array came from <see cref="CpuArrayPool"/> and goes back to it when freed.</summary>
    internal bool Pooled { get; init; }

    protected override void Free()
    {
        var a = Data;
        Data = null!;   // a read after this is a bug the tensor's own disposed check reports first
        if (Pooled) CpuArrayPool.Return(a, _dtype);
    }

    public CpuStorage(Array data, DType dtype)
    {
        var expected = dtype switch
        {
            DType.F32 => typeof(float[]),
            DType.F64 => typeof(double[]),
            DType.I64 => typeof(long[]),
            DType.U8 => typeof(byte[]),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
        };
        if (data.GetType() != expected) throw new ArgumentException($"a {dtype} storage needs {expected.Name}, got {data.GetType().Name}");
        Data = data;
        _dtype = dtype;
    }

    public override IBackend Backend => CpuBackend.Instance;
    public override DType DType => _dtype;
    public override long Count => Data.Length;

    public static CpuStorage Allocate(DType dtype, long count) => dtype switch
    {
        DType.F32 => new CpuStorage(new float[count], dtype),
        DType.F64 => new CpuStorage(new double[count], dtype),
        DType.I64 => new CpuStorage(new long[count], dtype),
        DType.U8 => new CpuStorage(new byte[count], dtype),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };
}
