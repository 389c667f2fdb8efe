namespace Tmca.Engine;

/// <summary>
/// The autograd tape (micrograd's idea, llm.c's explicit backward passes). While a tape is open on a thread,
/// every op whose inputs require gradients appends a closure that knows how to push the output's gradient
/// back to those inputs. <see cref="Backward"/> seeds d(loss)/d(loss) = 1 and replays the closures in reverse
/// recording order — a valid topological order, because an op is recorded after all of its inputs exist.
/// Gradients accumulate with += into <see cref="Tensor.Grad"/>; parameters keep theirs until zeroed.
/// After backward the closures (and with them every saved activation) are dropped.
/// </summary>
public sealed class Tape : IDisposable
{
    [ThreadStatic] private static Tape? _current;
    [ThreadStatic] private static int _noGrad;

    private readonly Tape? _parent;
    private readonly List<(Tensor[] Outputs, Action Backward, string Op)> _entries = new();

    /// <summary>
    /// Watches the tape on this thread (diagnostics, fault injection; null in normal runs): called with each op as it is
    /// recorded, and after each op's backward has run. Each entry carries the name its op passed to <see cref="Op.Run(string, IBackend, Tensor[], bool, Action, Action)"/>.
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
    /// require grad (ops call this through <see cref="Op.Run(string, IBackend, Tensor[], bool, Action, Action)"/>). It runs
    /// once, after every output's gradient is complete, if a gradient reached any of them; the closure reads each output's
    /// Grad (null if none).</summary>
    internal static void Record(string op, Tensor[] outputs, Action backward)
    {
        var tape = _current ?? throw new InvalidOperationException("no tape is open");
        if (tape._done) throw new InvalidOperationException("this tape has already run backward; open a new one");
        foreach (var o in outputs) o.RequiresGrad = true;
        tape._entries.Add((outputs, backward, op));
        Inspector?.Recorded(tape._entries.Count - 1, op, outputs);
    }

    /// <summary>Turns recording off until the handle is disposed (inference, optimiser updates).</summary>
    public static NoGradHandle NoGrad() { _noGrad++; return new NoGradHandle(true); }

    public readonly struct NoGradHandle : IDisposable
    {
        private readonly bool _active;
        internal NoGradHandle(bool active) => _active = active;
        public void Dispose() { if (_active) _noGrad--; }
    }

    /// <summary>Back-propagates from a one-element loss (or from <paramref name="seed"/> as its gradient).</summary>
    public void Backward(Tensor loss, Tensor? seed = null)
    {
        if (_done) throw new InvalidOperationException("backward has already run on this tape");
        if (!loss.RequiresGrad) throw new InvalidOperationException("the loss does not depend on any tensor that requires grad");
        if (seed is null && loss.Numel != 1) throw new InvalidOperationException($"backward from a non-scalar {Shape.Format(loss.Shape)} needs a seed gradient");
        using (NoGrad())
        {
            var g = loss.GradOrZeros();
            if (seed is null) g.Backend.Fill(g, 1.0);
            else g.Backend.Copy(seed, g);
            for (int i = _entries.Count - 1; i >= 0; i--)
            {
                var (outputs, backward, op) = _entries[i];
                if (!outputs.Any(o => o.Grad is not null)) continue;
                Inspector?.BeforeBackward(i, op, outputs);
                backward();
                Inspector?.AfterBackward(i, op);
            }
        }
        // Intermediate gradients and saved activations are no longer needed: drop them.
        foreach (var (outputs, _, _) in _entries)
            foreach (var output in outputs)
                if (!output.Persistent) output.Grad = null;
        _entries.Clear();
        _done = true;
    }

    public void Dispose()
    {
        if (_current != this) throw new InvalidOperationException("tapes must be closed in the order they were opened");
        _current = _parent;
        _entries.Clear();
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
