namespace Tmca.Engine;

// Layer norm (last axis, or channels-first) and 2-d batch norm.
public static partial class Ops
{
    /// <summary>LayerNorm over the last axis. x: …×C, w, b: C.</summary>
    public static Tensor LayerNorm(Tensor x, Tensor? w, Tensor? b, double eps)
    {
        int c = x.Shape[^1];
        return LayerNormCore(x, w, b, eps, (int)(x.Numel / c), c, 1);
    }

    /// <summary>LayerNorm over axis 1 of B×C×H×W (ConvNeXt's channels_first LayerNorm).</summary>
    public static Tensor LayerNormChannelsFirst(Tensor x, Tensor? w, Tensor? b, double eps)
    {
        int inner = (int)(x.Numel / (x.Shape[0] * (long)x.Shape[1]));
        return LayerNormCore(x, w, b, eps, x.Shape[0], x.Shape[1], inner);
    }

    private static Tensor LayerNormCore(Tensor x, Tensor? w, Tensor? b, double eps, int outer, int c, int inner)
    {
        if (w is not null && w.Numel != c) throw new ArgumentException($"layer norm: weight of {w.Numel} for {c} channels");
        var be = x.Backend;
        var y = NewLike(x);
        var mean = New(x, outer, inner);
        var rstd = New(x, outer, inner);
        Op.Run("layer_norm", be, y, Tape.Wants(x, w, b),
            () => be.LayerNorm(x, w, b, y, mean, rstd, outer, c, inner, eps),
            () =>
            {
                // the first writer assigns: when every gradient this backward writes is fresh, none is zero-filled
                if (Fresh(x) && Fresh(w) && Fresh(b))
                    be.LayerNormBackward(x, w, mean, rstd, y.Grad!, W(x), W(w), W(b), outer, c, inner, accumulate: false);
                else be.LayerNormBackward(x, w, mean, rstd, y.Grad!, G(x), G(w), G(b), outer, c, inner, accumulate: true);
            }, saves: [x, w], scratch: [mean, rstd]);
        return y;
    }

    /// <summary>
    /// BatchNorm2d. Training: normalise with the batch statistics (biased variance) and update the running
    /// buffers in place (unbiased variance, PyTorch's momentum). Evaluation: use the running statistics.
    /// </summary>
    public static Tensor BatchNorm2d(Tensor x, Tensor w, Tensor b, Tensor runMean, Tensor runVar, bool training, double eps, double momentum)
    {
        var be = x.Backend;
        int C = x.Shape[1];
        if (training)
        {
            var y = NewLike(x);
            var mean = New(x, C);
            var inv = New(x, C);
            Op.Run("batch_norm", be, y, Tape.Wants(x, w, b),
                () => be.BatchNormTrain(x, w, b, y, mean, inv, runMean, runVar, eps, momentum),
                () => be.BatchNormBackward(x, w, mean, inv, y.Grad!, G(x), G(w), G(b)), saves: [x, w], scratch: [mean, inv]);
            return y;
        }
        if (!Tape.Wants(x, w, b))
        {
            var y = NewLike(x);
            Op.Run("batch_norm.eval", be, y, record: false, () => be.BatchNormEval(x, w, b, y, runMean, runVar, eps), () => { });
            return y;
        }
        // Evaluation mode with gradients (rare: fine-tuning with frozen statistics) is an affine map per
        // channel; composing it from differentiable ops keeps one implementation of its backward.
        var invStd = Reciprocal(Sqrt(AddScalar(runVar, eps)));
        var scale = Reshape(Mul(w, invStd), 1, C, 1, 1);
        var shift = Reshape(Sub(b, Mul(runMean, Mul(w, invStd))), 1, C, 1, 1);
        return Add(Mul(x, scale), shift);
    }
}
