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
                using var g = NewLike(u);
                be.Unary(UnaryOp.Gelu, 0, u, g);                                  // recomputed: same kernel, same input
                using var gg = Tensor.Zeros(u.Shape, u.DType, be);               // d/dg, zero-filled as the chain's grad is
                be.Conv2dBackward(g, w, gy, gg, G(w), G(b), 1, 0, 1);
                if (u.RequiresGrad) be.UnaryBackward(UnaryOp.Gelu, 0, u, gg, gg, u.GradOrZeros());   // gu += gelu'(u)·gg
            }, saves: [u, w]);
        return y;
    }
}
