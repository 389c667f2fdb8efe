namespace Tmca.Engine;

/// <summary>
/// Differentiable ops: each runs its forward primitive on the input's backend and, when the tape wants it,
/// records the backward closure beside it. The op families live in <c>Ops/*.cs</c>; this file holds the
/// small helpers they share.
/// </summary>
public static partial class Ops
{
    /// <summary>Frees forward intermediates the caller is done with (see <see cref="Tape.Discard"/>): a value no
    /// backward reads goes back to the pool now, not when the backward starts.</summary>
    public static void Discard(params Tensor[] ts)
    {
        foreach (var t in ts) Tape.Discard(t);
    }

    /// <summary>The gradient buffer of a tensor that needs one, else null (backward primitives skip nulls).</summary>
    internal static Tensor? G(Tensor? t) => t is { RequiresGrad: true } ? t.GradOrZeros() : null;

    /// <summary>True when t needs no gradient or has none yet (a backward may then assign it).</summary>
    internal static bool Fresh(Tensor? t) => t is not { RequiresGrad: true } || t.Grad is null;

    /// <summary>A fresh, uninitialised gradient to assign, for a tensor that needs one (see <see cref="Fresh"/>), else null.</summary>
    internal static Tensor? W(Tensor? t) => t is { RequiresGrad: true } ? t.GradForWrite().Grad : null;

    // Op outputs are written entirely by their forward kernel, so they need no zero fill.
    internal static Tensor NewLike(Tensor t) => Tensor.Empty(t.Shape, t.DType, t.Backend);
    internal static Tensor New(Tensor like, params int[] shape) => Tensor.Empty(shape, like.DType, like.Backend);

    /// <summary>
    /// Adds sign·full into target's gradient, summing over the axes target was broadcast along. A first gradient is
    /// assigned, not zero-filled and added to; with <paramref name="mayHandOver"/> (full is the op's output gradient,
    /// which the tape frees next, and no other operand takes it) a same-shaped first gradient is full itself, viewed.
    /// </summary>
    internal static void ReduceInto(Tensor full, Tensor target, double sign = 1.0, bool mayHandOver = false)
    {
        if (!target.RequiresGrad) return;
        var be = full.Backend;
        bool same = Shape.Equal(full.Shape, target.Shape);
        if (same && sign == 1.0 && mayHandOver && target.HandOverGradient(full)) return;
        var (g, acc) = target.GradForWrite();
        if (same)
        {
            if (acc) be.Axpy(sign, full, g);
            else if (sign == 1.0) be.Copy(full, g);
            else be.Unary(UnaryOp.Scale, sign, full, g);
        }
        else if (sign == 1.0) be.SumTo(full, g, accumulate: acc);
        else if (!acc)
        {
            be.SumTo(full, g, accumulate: false);
            be.Unary(UnaryOp.Scale, sign, g, g);
        }
        else
        {
            using var tmp = NewLike(target);
            be.SumTo(full, tmp, accumulate: false);
            be.Axpy(sign, tmp, g);
        }
    }

    internal static void SameBackend(Tensor a, Tensor b, string op)
    {
        if (a.Backend != b.Backend) throw new ArgumentException($"{op}: operands on {a.Backend.Name} and {b.Backend.Name}");
    }
}
