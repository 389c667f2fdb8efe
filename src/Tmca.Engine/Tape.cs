namespace Tmca.Engine;

/// <summary>
/// The autograd tape (micrograd's idea, llm.c's explicit backward passes). While a tape is open on a thread,
/// every op whose inputs require gradients appends a closure that knows how to push the output's gradient
/// back to those inputs. <see cref="Backward"/> seeds d(loss)/d(loss) = 1 and replays the closures in reverse
/// recording order — a valid topological order, because an op is recorded after all of its inputs exist.
/// Gradients accumulate with += into <see cref="Tensor.Grad"/>; parameters keep theirs until zeroed.
/// The backward frees what it no longer needs as it goes (see <see cref="Backward"/>); after it the closures are dropped.
/// </summary>
public sealed class Tape : IDisposable
{
    [ThreadStatic] private static Tape? _current;
    [ThreadStatic] private static int _noGrad;

    private readonly Tape? _parent;
    private readonly List<Entry> _entries = new();
    /// <summary>Every tensor a recorded backward reads (saves and scratch): what <see cref="Discard"/> must keep.</summary>
    private readonly HashSet<Tensor> _saved = new(ReferenceEqualityComparer.Instance);

    /// <summary>One recorded op: its outputs, its backward, its name, the tensors its backward reads and its scratch
    /// buffers (see <see cref="Op"/>).</summary>
    private readonly record struct Entry(Tensor[] Outputs, Action Backward, string Op, Tensor[] Saves, Tensor[] Scratch);

    /// <summary>
    /// Watches the tape on this thread (diagnostics, fault injection; null in normal runs): called with each op as it is
    /// recorded, and after each op's backward has run. Each entry carries the name its op passed to <see cref="Op"/>.
    /// </summary>
    [ThreadStatic] public static ITapeInspector? Inspector;
    private bool _done;

    public Tape() { _parent = _current; _current = this; }

    /// <summary>The number of recorded ops (for tests and diagnostics).</summary>
    public int Count => _entries.Count;

    /// <summary>True when an op with these inputs must record its backward.</summary>
    public static bool Wants(Tensor? a) => _current is not null && _noGrad == 0 && a is { RequiresGrad: true };
    public static bool Wants(Tensor? a, Tensor? b) => Wants(a) || Wants(b);
    public static bool Wants(Tensor? a, Tensor? b, Tensor? c) => Wants(a) || Wants(b) || Wants(c);
    public static bool Wants(IEnumerable<Tensor?> xs) => _current is not null && _noGrad == 0 && xs.Any(x => x is { RequiresGrad: true });

    /// <summary>Records op <paramref name="op"/>'s <paramref name="backward"/> for its <paramref name="outputs"/>, which now
    /// require grad (ops call this through <see cref="Op"/>). It runs
    /// once, after every output's gradient is complete, if a gradient reached any of them; the closure reads each output's
    /// Grad (null if none).</summary>
    internal static void Record(string op, Tensor[] outputs, Action backward, Tensor[]? saves = null, Tensor[]? scratch = null)
    {
        var tape = _current ?? throw new InvalidOperationException("no tape is open");
        if (tape._done) throw new InvalidOperationException("this tape has already run backward; open a new one");
        foreach (var o in outputs) o.RequiresGrad = true;
        tape._entries.Add(new Entry(outputs, backward, op, saves ?? [], scratch ?? []));
        if (saves is not null) foreach (var t in saves) tape._saved.Add(t);
        if (scratch is not null) foreach (var t in scratch) tape._saved.Add(t);
        Inspector?.Recorded(tape._entries.Count - 1, op, outputs);
    }

    /// <summary>
    /// Frees the value of a forward intermediate that the caller will not read again, now instead of when the backward
    /// starts — unless a recorded backward reads it (then the tape frees it after that backward). PyTorch frees such a
    /// tensor when its last Python reference goes; here the composite op or the model that made it says so. The tensor
    /// stays usable as a gradient slot (the tape still sends its gradient through it); reading its value throws. A view
    /// frees the storage only once every tensor over it is disposed, so discarding one of two views frees nothing.
    /// </summary>
    public static void Discard(Tensor t)
    {
        if (t.Persistent) return;
        for (var tape = _current; tape is not null; tape = tape._parent)
            if (tape._saved.Contains(t)) return;
        t.Dispose();
    }

    /// <summary>True when a tape is open and recording is on (a checkpointed segment records even when its input needs no
    /// gradient, since its parameters do).</summary>
    internal static bool Recording => _current is not null && _noGrad == 0;

    /// <summary>Turns recording back on inside a backward (a checkpointed segment's recompute, <see cref="Recompute"/>)
    /// until the handle is disposed.</summary>
    internal static GradHandle EnableGrad() { var h = new GradHandle(_noGrad); _noGrad = 0; return h; }

    public readonly struct GradHandle : IDisposable
    {
        private readonly int _saved;
        internal GradHandle(int saved) => _saved = saved;
        public void Dispose() => _noGrad = _saved;
    }

    /// <summary>Turns recording off until the handle is disposed (inference, optimiser updates).</summary>
    public static NoGradHandle NoGrad() { _noGrad++; return new NoGradHandle(true); }

    public readonly struct NoGradHandle : IDisposable
    {
        private readonly bool _active;
        internal NoGradHandle(bool active) => _active = active;
        public void Dispose() { if (_active) _noGrad--; }
    }

    /// <summary>
    /// Back-propagates from a one-element loss (or from <paramref name="seed"/> as its gradient), freeing memory as it
    /// goes: the outputs that no backward reads when it starts, each saved tensor and scratch buffer after the last
    /// backward that reads it, each output's gradient once its backward has consumed it. Tensors the caller reads after
    /// the backward must be named in <paramref name="keep"/> (the loss always is); reading a freed one throws.
    /// </summary>
    /// <param name="handOverSeed">The seed becomes the loss's gradient (no copy) and is freed once the loss's own backward
    /// has run: a recompute segment passes the outer output's gradient this way (<see cref="Recompute"/>).</param>
    public void Backward(Tensor loss, Tensor? seed = null, IEnumerable<Tensor?>? keep = null, bool handOverSeed = false)
    {
        if (_done) throw new InvalidOperationException("backward has already run on this tape");
        if (!loss.RequiresGrad) throw new InvalidOperationException("the loss does not depend on any tensor that requires grad");
        if (seed is null && loss.Numel != 1) throw new InvalidOperationException($"backward from a non-scalar {Shape.Format(loss.Shape)} needs a seed gradient");
        var freeAt = FreeSchedule(loss, keep, out var unread);
        foreach (var t in unread) t.Dispose();
        using (NoGrad())
        {
            if (handOverSeed && seed is not null && loss.Grad is null && Shape.Equal(seed.Shape, loss.Shape)) loss.Grad = seed;
            else
            {
                var (g, _) = loss.GradForWrite();   // overwritten whole: no zero fill first
                if (seed is null) g.Backend.Fill(g, 1.0);
                else g.Backend.Copy(seed, g);
            }
            for (int i = _entries.Count - 1; i >= 0; i--)
            {
                var e = _entries[i];
                bool reached = e.Outputs.Any(o => o.Grad is not null);
                if (reached)
                {
                    Inspector?.BeforeBackward(i, e.Op, e.Outputs);
                    e.Backward();
                }
                foreach (var o in e.Outputs)
                    if (!o.Persistent && o.Grad is { } og) { og.Dispose(); o.Grad = null; }
                if (freeAt[i] is { } free) foreach (var t in free) t.Dispose();
                if (reached) Inspector?.AfterBackward(i, e.Op);
            }
        }
        _entries.Clear();   // every non-persistent output's gradient was freed after its op's backward
        _saved.Clear();
        _done = true;
    }

    /// <summary>
    /// When each tensor the tape made can go: <c>freeAt[i]</c> lists those whose last reader is op i's backward (the
    /// backward runs from the last op to the first, so a tensor's last reader is the earliest op that saves it);
    /// <paramref name="unread"/> the outputs no backward reads. The tape owns its ops' outputs and scratch buffers,
    /// except the loss, <paramref name="keep"/> and persistent tensors; inputs from outside the tape are never freed.
    /// </summary>
    private List<Tensor>?[] FreeSchedule(Tensor loss, IEnumerable<Tensor?>? keep, out List<Tensor> unread)
    {
        var kept = new HashSet<Tensor>(ReferenceEqualityComparer.Instance) { loss };
        if (keep is not null) foreach (var k in keep) if (k is not null) kept.Add(k);
        var lastReader = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < _entries.Count; i++)
        {
            foreach (var t in _entries[i].Saves) lastReader.TryAdd(t, i);
            foreach (var t in _entries[i].Scratch) lastReader.TryAdd(t, i);
        }
        var freeAt = new List<Tensor>?[_entries.Count];
        unread = new List<Tensor>();
        foreach (var e in _entries)
        {
            foreach (var t in e.Outputs.Concat(e.Scratch))
            {
                if (t.Persistent || kept.Contains(t)) continue;
                if (lastReader.TryGetValue(t, out int i)) (freeAt[i] ??= new List<Tensor>()).Add(t);
                else unread.Add(t);
            }
        }
        return freeAt;
    }

    public void Dispose()
    {
        if (_current != this) throw new InvalidOperationException("tapes must be closed in the order they were opened");
        _current = _parent;
        _entries.Clear();
        _saved.Clear();
    }
}

/// <summary>Sees every op a tape records and every backward it runs (see <see cref="Tape.Inspector"/>).</summary>
public interface ITapeInspector
{
    /// <summary>Op number <paramref name="index"/> (forward order) was recorded; its outputs hold their forward values.</summary>
    void Recorded(int index, string op, Tensor[] outputs);
    /// <summary>The backward of op <paramref name="index"/> is about to run; the outputs' gradients are complete.</summary>
    void BeforeBackward(int index, string op, Tensor[] outputs);
    /// <summary>The backward of op <paramref name="index"/> has run.</summary>
    void AfterBackward(int index, string op);
}
