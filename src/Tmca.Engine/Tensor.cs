using System.Runtime.InteropServices;

namespace Tmca.Engine;

/// <summary>
/// A dense, row-major, contiguous n-d array on one backend. Reshape makes a view that shares the storage;
/// every other layout change (permute, slicing) copies. Autograd state lives here too: <see cref="Grad"/>
/// is accumulated by the <see cref="Tape"/>, <see cref="RequiresGrad"/> marks tensors it must track.
/// </summary>
public sealed class Tensor : IDisposable
{
    public readonly int[] Shape;
    /// <summary>The buffer; reading it after the tensor was freed (by its scope, or by the tape once no backward needs
    /// it) throws, rather than reading memory that may already hold another tensor.</summary>
    public Storage Storage => _disposed ? throw new ObjectDisposedException(Name ?? $"tensor {Engine.Shape.Format(Shape)}",
        "this tensor was freed: by its TensorScope, by Ops.Discard (its maker was done with it), or by the tape's backward (name it in Backward's keep to read it afterwards)") : _storage;
    private readonly Storage _storage;
    public DType DType => _storage.DType;
    public IBackend Backend => _storage.Backend;
    public DeviceKind Device => Backend.Device;
    public int Rank => Shape.Length;
    public long Numel { get; }
    public long[] Strides => Engine.Shape.Strides(Shape);

    /// <summary>Accumulated gradient (same shape, dtype and backend), or null before the first backward.</summary>
    public Tensor? Grad { get; set; }
    public bool RequiresGrad { get; set; }
    /// <summary>Parameters and buffers: survive <see cref="TensorScope"/> disposal, and so do their gradients.</summary>
    public bool Persistent { get; init; }
    public string? Name { get; set; }

    private bool _disposed;

    public Tensor(int[] shape, Storage storage, bool persistent = false)
    {
        long n = Engine.Shape.Numel(shape);
        if (n > storage.Count) throw new ArgumentException($"shape {Engine.Shape.Format(shape)} needs {n} elements, storage has {storage.Count}");
        foreach (var d in shape) if (d < 0) throw new ArgumentException($"negative dimension in {Engine.Shape.Format(shape)}");
        Shape = shape;
        _storage = storage;
        Numel = n;
        Persistent = persistent;
        storage.Retain();
        if (!persistent) TensorScope.Register(this);
    }

    // ---- construction -------------------------------------------------------------------------------

    public static Tensor Zeros(int[] shape, DType dtype = DType.F32, IBackend? backend = null, bool persistent = false)
    {
        backend ??= CpuBackend.Instance;
        return new Tensor((int[])shape.Clone(), backend.Allocate(dtype, Engine.Shape.Numel(shape)), persistent);
    }

    /// <summary>A tensor with undefined contents, for op outputs that the kernel overwrites entirely.</summary>
    public static Tensor Empty(int[] shape, DType dtype, IBackend backend) =>
        new((int[])shape.Clone(), backend.AllocateUninitialized(dtype, Engine.Shape.Numel(shape)));

    public static Tensor ZerosLike(Tensor t, bool persistent = false) => Zeros(t.Shape, t.DType, t.Backend, persistent);

    public static Tensor Full(int[] shape, double value, DType dtype = DType.F32, IBackend? backend = null)
    {
        var t = Zeros(shape, dtype, backend);
        t.Backend.Fill(t, value);
        return t;
    }

    public static Tensor FromArray(float[] data, params int[] shape) => FromHost(data, DType.F32, shape);
    public static Tensor FromArray(double[] data, params int[] shape) => FromHost(data, DType.F64, shape);
    public static Tensor FromArray(long[] data, params int[] shape) => FromHost(data, DType.I64, shape);
    public static Tensor FromArray(byte[] data, params int[] shape) => FromHost(data, DType.U8, shape);

    /// <summary>A CPU tensor holding a copy of a host array (CPU tensors live in native memory: see <see cref="HostArray{T}"/>).</summary>
    private static Tensor FromHost(Array data, DType dtype, int[] shape)
    {
        if (shape.Length == 0) shape = new[] { data.Length };
        if (Engine.Shape.Numel(shape) != data.Length)
            throw new ArgumentException($"{data.Length} values do not fill shape {Engine.Shape.Format(shape)}");
        return new Tensor(shape, CpuStorage.CopyOf(data, dtype));
    }

    public static Tensor Scalar(double v, DType dtype = DType.F32, IBackend? backend = null) => Full(new[] { 1 }, v, dtype, backend);

    // ---- host access --------------------------------------------------------------------------------

    /// <summary>The elements as a span; CPU tensors only (device tensors: use <see cref="ToArray{T}"/>). The span points
    /// into native memory the tensor owns: keep the tensor referenced (or undisposed) while the span is in use.</summary>
    public Span<T> Span<T>() where T : unmanaged
    {
        if (Storage is not CpuStorage cpu)
            throw new InvalidOperationException($"tensor {Name ?? Engine.Shape.Format(Shape)} lives on {Backend.Name}; copy it to the CPU first");
        if (cpu.Data is not HostArray<T> arr)
            throw new InvalidOperationException($"tensor is {DType}, not {typeof(T).Name}");
        return arr.AsSpan(0, checked((int)Numel));
    }

    /// <summary>A fresh host copy of the elements (any backend).</summary>
    public T[] ToArray<T>() where T : unmanaged
    {
        if (Storage is CpuStorage) { var a = Span<T>().ToArray(); GC.KeepAlive(this); return a; }
        var host = Backend.Download(this);
        if (host is not T[] arr) throw new InvalidOperationException($"tensor is {DType}, not {typeof(T).Name}");
        return arr;
    }

    /// <summary>The elements as float64 whatever the float type (for comparisons and printing).</summary>
    public double[] ToDoubles()
    {
        return DType switch
        {
            DType.F32 => Array.ConvertAll(ToArray<float>(), v => (double)v),
            DType.F64 => ToArray<double>(),
            DType.I64 => Array.ConvertAll(ToArray<long>(), v => (double)v),
            DType.U8 => Array.ConvertAll(ToArray<byte>(), v => (double)v),
            _ => throw new NotSupportedException(),
        };
    }

    public double Item()
    {
        if (Numel != 1) throw new InvalidOperationException($"Item() on a tensor of shape {Engine.Shape.Format(Shape)}");
        return ToDoubles()[0];
    }

    /// <summary>A copy on another backend (or the same one).</summary>
    public Tensor To(IBackend backend, bool persistent = false)
    {
        var t = Zeros(Shape, DType, backend, persistent);
        if (backend == Backend) Backend.Copy(this, t);
        else if (Storage is CpuStorage cpu) backend.Upload(cpu.Data.ToManagedArray(), t);
        else if (backend is CpuBackend) backend.Upload(Backend.Download(this), t);
        else backend.Upload(Backend.Download(this), t);
        return t;
    }

    /// <summary>A copy in another float type (F32 ↔ F64), on the same backend.</summary>
    public Tensor ToDType(DType dtype)
    {
        var t = Zeros(Shape, dtype, Backend);
        Backend.Convert(this, t);
        return t;
    }

    public Tensor Clone(bool persistent = false)
    {
        var t = Zeros(Shape, DType, Backend, persistent);
        Backend.Copy(this, t);
        return t;
    }

    /// <summary>A view with another shape over the same storage (no autograd; see <see cref="Ops.Reshape"/>).</summary>
    public Tensor View(params int[] shape) => new(Engine.Shape.Resolve(shape, Numel), Storage);

    /// <summary>
    /// Makes <paramref name="g"/>'s storage this tensor's first gradient, as a view in this tensor's shape — no zero fill,
    /// no copy — and returns true; false (nothing done) where this tensor already has a gradient or is persistent (a
    /// parameter's gradient outlives the step and is accumulated into). The view is a second reference to the storage,
    /// so the caller may still dispose <paramref name="g"/>. Used by backwards whose result is the whole gradient of
    /// their input (reshape, the fused GELU ops).
    /// </summary>
    public bool HandOverGradient(Tensor g)
    {
        if (Grad is not null || Persistent) return false;
        Grad = g.View(Shape);
        return true;
    }

    /// <summary>
    /// The gradient buffer a backward is about to write, and whether it must add to it. Where this tensor has no
    /// gradient yet, a fresh one that is <em>not</em> zero-filled, and false: the backward assigns every element (a GEMM
    /// with β = 0, a permute or sum-to without accumulate) — the first writer assigns, and the memset a zero-filled
    /// gradient costs (one stream operation and a full write on a device) is gone (issue 17). Else the existing gradient
    /// and true. Only for backwards that write the whole gradient; the others use <see cref="GradOrZeros"/>.
    /// </summary>
    public (Tensor Grad, bool Accumulate) GradForWrite()
    {
        if (Grad is not null) return (Grad, true);
        using var _ = Persistent ? TensorScope.Suspend() : default;
        Grad = new Tensor((int[])Shape.Clone(), Backend.AllocateUninitialized(DType, Numel), Persistent);
        return (Grad, false);
    }

    public Tensor GradOrZeros()
    {
        if (Grad is null)
        {
            using var _ = Persistent ? TensorScope.Suspend() : default;
            Grad = Zeros(Shape, DType, Backend, Persistent);
        }
        return Grad;
    }

    public override string ToString() => $"Tensor{Engine.Shape.Format(Shape)} {DType} on {Backend.Name}{(Name is null ? "" : " " + Name)}";

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _storage.Release();
    }
}
