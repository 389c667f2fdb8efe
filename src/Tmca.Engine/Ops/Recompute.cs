namespace Tmca.Engine;

/// <summary>What a model drops in its forward pass and recomputes in its backward (torch.utils.checkpoint).</summary>
public enum RecomputeMode { None, Stages, Blocks }

/// <summary>
/// Activation checkpointing, as torch.utils.checkpoint does it: a segment's forward runs under no-grad inside its own
/// tensor scope, so its internal activations are freed as soon as it returns; only its inputs are saved (parameters are
/// persistent and captured by the segment). ONE tape entry is recorded for the segment's outputs; its backward re-runs
/// the segment on a fresh inner tape with gradients on (same kernels, same inputs, so the recomputed values are the
/// stored path's values bit for bit), back-propagates the outer outputs' gradients through it — accumulating into the
/// parameters' and the inputs' gradients in the same order the stored path would — and frees the inner tape.
/// A segment must be deterministic: no op in it may draw random numbers (none in ConvNeXt's or BERT's bodies here).
/// </summary>
public static class Recompute
{
    /// <summary>inputs → segment(inputs), with the segment's internals recomputed in the backward.</summary>
    public static Tensor[] Run(string name, Tensor[] inputs, Func<Tensor[], Tensor[]> segment)
    {
        if (!Tape.Recording) return segment(inputs);
        Tensor[] outputs;
        using (Tape.NoGrad())
        using (var scope = new TensorScope())
        {
            outputs = segment(inputs);
            foreach (var o in outputs) TensorScope.Keep(o);
        }
        var saves = inputs;   // the backward reads the inputs' values again; the outputs' values it never reads
        Tape.Record(name, outputs, () =>
        {
            using var _ = Profiler.Time(name + ".backward", inputs[0].Backend);
            using var grad = Tape.EnableGrad();
            Tensor[] again;
            using (var inner = new Tape())
            {
                again = segment(inputs);
                // One seed for several outputs: sum them weighted by their gradients is not bit-identical, so a
                // multi-output segment back-propagates from its last output only when the others got no gradient.
                if (again.Length != 1) throw new NotSupportedException($"recompute segment '{name}' has {again.Length} outputs; one is supported");
                // the outer gradient is handed over, not copied: the inner backward frees it after its first op
                inner.Backward(again[0], seed: outputs[0].Grad!, handOverSeed: true);
            }
            foreach (var t in again) t.Dispose();
        }, saves, []);
        return outputs;
    }

    /// <summary>One input, one output.</summary>
    public static Tensor Run(string name, Tensor x, Func<Tensor, Tensor> segment) => Run(name, [x], xs => [segment(xs[0])])[0];
}
