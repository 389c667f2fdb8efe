namespace Tmca.Engine;

/// <summary>
/// Collects every non-persistent tensor created on this thread while it is open and disposes them when it
/// closes: a training step opens one, so activations, saved tensors and intermediate gradients go back to
/// the device pool at the end of the step instead of waiting for the garbage collector. Tensors that must
/// outlive the scope are made <see cref="Tensor.Persistent"/> or copied out with <see cref="Keep"/>. The outermost
/// scope's end is where the CPU pool trims its cache (<see cref="CpuArrayPool.EndOfWork"/>).
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? _current;
    [ThreadStatic] private static int _suspended;

    private readonly TensorScope? _parent;
    private readonly List<Tensor> _tensors = new();
    private readonly HashSet<Tensor> _kept = new(ReferenceEqualityComparer.Instance);

    public TensorScope() { _parent = _current; _current = this; }

    internal static void Register(Tensor t)
    {
        if (_suspended == 0) _current?._tensors.Add(t);
    }

    /// <summary>Marks a tensor created inside the scope to survive it (it moves to the enclosing scope, if any).</summary>
    public static Tensor Keep(Tensor t)
    {
        if (_current is { } s && s._kept.Add(t)) s._parent?._tensors.Add(t);
        return t;
    }

    /// <summary>Stops registering tensors until the returned handle is disposed.</summary>
    public static SuspendHandle Suspend() { _suspended++; return new SuspendHandle(true); }

    public readonly struct SuspendHandle : IDisposable
    {
        private readonly bool _active;
        internal SuspendHandle(bool active) => _active = active;
        public void Dispose() { if (_active) _suspended--; }
    }

    public void Dispose()
    {
        if (_current != this) throw new InvalidOperationException("tensor scopes must be closed in the order they were opened");
        _current = _parent;
        foreach (var t in _tensors)
            if (!_kept.Contains(t)) t.Dispose();
        _tensors.Clear();
        // The outermost scope is a unit of work (a training step, an evaluation batch): the CPU pool trims its cache to
        // what such a unit needs.
        if (_parent is null) CpuArrayPool.EndOfWork();
    }
}
