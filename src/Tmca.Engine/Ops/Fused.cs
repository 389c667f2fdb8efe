namespace Tmca.Engine;

// Composite ops that save less than the chain they replace: the same backend primitives on the same inputs, so the
// results are bit-identical to the unfused chain; the backward recomputes a cheap intermediate instead of keeping it.
public static partial class Ops
{
    /// <summary>
    /// y = conv1x1(gelu(u), w, b) — ConvNeXt's GELU → pwconv2. u: B×I×H×W, w: O×I×1×1, b: O → B×O×H×W.
    /// Saves u alone: the unfused chain kept gelu(u) (4C wide in ConvNeXt) for the conv's weight gradient; here the
    /// backward recomputes it into a temporary, and the forward frees it as soon as the conv has read it.
    /// </summary>
    public static Tensor GeluConv1x1(Tensor u, Tensor w, Tensor? b)
    {
        SameBackend(u, w, "gelu_conv1x1");
        if (w.Shape[2] != 1 || w.Shape[3] != 1) throw new ArgumentException($"gelu_conv1x1: w {Shape.Format(w.Shape)} is not 1×1");
        var be = u.Backend;
        var y = New(u, u.Shape[0], w.Shape[0], u.Shape[2], u.Shape[3]);
        Op.Run("gelu_conv2d.1x1", be, y, Tape.Wants(u, w, b), () =>
            {
                using var g = NewLike(u);
                be.Unary(UnaryOp.Gelu, 0, u, g);                                  // g = gelu(u), B×I×H×W
                be.Conv2d(g, w, b, y, 1, 0, 1);                                   // y = w·g + b
            }, () =>
            {
                var gy = y.Grad!;
                var g = NewLike(u);
                be.Unary(UnaryOp.Gelu, 0, u, g);                                  // recomputed: same kernel, same input
                using (var gg = Tensor.Zeros(u.Shape, u.DType, be))              // d/dg, zero-filled as the chain's grad is
                {
                    be.Conv2dBackward(g, w, gy, gg, G(w), G(b), 1, 0, 1);
                    if (u.RequiresGrad) GeluBackwardInto(u, gg, g);
                }
                g.Dispose();
            }, saves: [u, w]);
        return y;
    }

    /// <summary>
    /// y = x + h ⊙ γ, γ broadcast over h (ConvNeXt's layer scale and residual: h B×C×H×W, γ C×1×1). The unfused
    /// Mul → Add kept the product h ⊙ γ, which no backward reads, until the backward started (tiny, batch 32: 285 MiB of
    /// the device peak). Forward: y = x, then y += h ⊙ γ in one accumulating broadcast multiply. Backward: gx += gy,
    /// gh += gy ⊙ γ, gγ += Σ gy ⊙ h — the unfused backwards without the product's gradient in between. Saves h and γ.
    /// </summary>
    public static Tensor AddScaled(Tensor x, Tensor h, Tensor gamma)
    {
        SameBackend(x, h, "add_scaled");
        SameBackend(h, gamma, "add_scaled");
        if (!Shape.Equal(x.Shape, h.Shape) || !Shape.Equal(Shape.Broadcast(h.Shape, gamma.Shape), h.Shape))
            throw new ArgumentException($"add_scaled: x {Shape.Format(x.Shape)}, h {Shape.Format(h.Shape)} and γ {Shape.Format(gamma.Shape)} do not fit");
        var be = x.Backend;
        var y = NewLike(x);
        Op.Run("add_scaled", be, y, Tape.Wants(x, h, gamma), () =>
            {
                be.Copy(x, y);
                be.Binary(BinaryOp.Mul, h, gamma, y, accumulate: true);
            }, () =>
            {
                var gy = y.Grad!;
                if (h.RequiresGrad) MulInto(gy, gamma, h);
                if (gamma.RequiresGrad) MulInto(gy, h, gamma);
                ReduceInto(gy, x, mayHandOver: true);   // last: from here on x's gradient may be gy itself
            }, saves: [h, gamma]);
        return y;
    }

    /// <summary>
    /// y = gelu(u)·wᵀ + b over the last axis — an MLP's GELU → second linear (the alignment heads, BERT's FFN). u: …×in,
    /// w: out×in, b: out → …×out. Saves u alone, as <see cref="GeluConv1x1"/> does: the chain kept gelu(u) for the
    /// weight gradient (tiny, batch 32: the level-0 alignment head's is 100 MiB); the backward recomputes it.
    /// </summary>
    public static Tensor GeluLinear(Tensor u, Tensor w, Tensor? b)
    {
        var (rows, inF, outF, shape) = LinearGeometry("gelu_linear", u, w);
        var y = New(u, shape);
        var be = u.Backend;
        Op.Run("gelu_linear", be, y, Tape.Wants(u, w, b), () =>
            {
                using var g = NewLike(u);
                be.Unary(UnaryOp.Gelu, 0, u, g);                                                     // g = gelu(u)
                be.Gemm(false, true, rows, outF, inF, 1.0, g, 0, 0, w, 0, 0, 0.0, y, 0, 0, 1);       // y = g·wᵀ
                if (b is not null) be.BroadcastTo(b, y, accumulate: true);                            // y += b
            }, () =>
            {
                var gy = y.Grad!;
                var g = NewLike(u);
                be.Unary(UnaryOp.Gelu, 0, u, g);                                                     // recomputed: same kernel, same input
                if (w.RequiresGrad) { var (gw, acc) = w.GradForWrite(); be.Gemm(true, false, outF, inF, rows, 1.0, gy, 0, 0, g, 0, 0, Beta(acc), gw, 0, 0, 1); }   // gw (+)= gyᵀ·g
                if (b is { RequiresGrad: true }) { var (gb, acc) = b.GradForWrite(); be.SumTo(gy, gb, accumulate: acc); }                                        // gb (+)= Σ gy
                if (u.RequiresGrad)
                {
                    using var gg = NewLike(u);                                                        // d/dg, assigned (the chain's first writer assigns too)
                    be.Gemm(false, false, rows, inF, outF, 1.0, gy, 0, 0, w, 0, 0, 0.0, gg, 0, 0, 1);   // gg = gy·w
                    GeluBackwardInto(u, gg, g);
                }
                g.Dispose();
            }, saves: [u, w]);
        return y;
    }

    /// <summary>
    /// gu += gelu'(u)·gg, reusing <paramref name="spare"/> (the recomputed GELU output, read by then) for the product:
    /// zero-filled, it receives gelu'(u)·gg and becomes u's gradient when u has none yet — so the backward of a fused
    /// GELU op holds two u-sized buffers besides u, not three (tiny's stage-1 recompute peak: −152 MiB). Values are the
    /// chain's: 0 + gelu'(u)·gg either way. <paramref name="spare"/> is the caller's to dispose (a handed-over one lives on).
    /// </summary>
    private static void GeluBackwardInto(Tensor u, Tensor gg, Tensor spare)
    {
        var be = u.Backend;
        if (u.Grad is not null || u.Persistent) { be.UnaryBackward(UnaryOp.Gelu, 0, u, gg, gg, u.GradOrZeros()); return; }
        be.Fill(spare, 0);
        be.UnaryBackward(UnaryOp.Gelu, 0, u, gg, gg, spare);
        u.HandOverGradient(spare);   // a second tensor over the storage: the caller's dispose of spare leaves it alive
    }
}
