namespace Tmca.Engine;

// Shape and layout ops: reshape (a view), permute, concat, narrow, broadcast, reductions, pixel shuffle, pooling.
public static partial class Ops
{
    /// <summary>A view with a new shape (one entry may be −1); the gradient is reshaped back.</summary>
    public static Tensor Reshape(Tensor x, params int[] shape)
    {
        var y = x.View(shape);
        y.RequiresGrad = false;
        Op.Run("reshape", x.Backend, y, Tape.Wants(x), () => { },   // a view: nothing to compute
            () =>
            {
                // the first gradient to reach x is y's, viewed: handed over with no zero fill and no copy (the tape frees
                // y's gradient tensor next; the storage lives on in x's). A later one, or a parameter's, is added.
                if (x.HandOverGradient(y.Grad!)) return;
                using var g = y.Grad!.View(x.Shape);
                var (gx, acc) = x.GradForWrite();
                if (acc) x.Backend.Axpy(1.0, g, gx);
                else x.Backend.Copy(g, gx);
            });
        return y;
    }

    /// <summary>y.shape[i] = x.shape[perm[i]] (a copy).</summary>
    public static Tensor Permute(Tensor x, params int[] perm)
    {
        var shape = new int[perm.Length];
        for (int i = 0; i < perm.Length; i++) shape[i] = x.Shape[perm[i]];
        var y = New(x, shape);
        Op.Run("permute", x.Backend, y, Tape.Wants(x), () => x.Backend.Permute(x, perm, y, accumulate: false), () =>
        {
            var inv = new int[perm.Length];
            for (int i = 0; i < perm.Length; i++) inv[perm[i]] = i;
            var (gx, acc) = x.GradForWrite();
            x.Backend.Permute(y.Grad!, inv, gx, accumulate: acc);
        });
        return y;
    }

    /// <summary>Concatenation along <paramref name="axis"/>.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> xs, int axis)
    {
        if (xs.Count == 0) throw new ArgumentException("concat of nothing");
        var shape = (int[])xs[0].Shape.Clone();
        if (axis < 0) axis += shape.Length;
        shape[axis] = xs.Sum(t => t.Shape[axis]);
        var y = New(xs[0], shape);
        var starts = new int[xs.Count];
        for (int i = 0, at = 0; i < xs.Count; at += xs[i].Shape[axis], i++)
        {
            SameBackend(xs[0], xs[i], "concat");
            starts[i] = at;
        }
        Op.Run("concat", y.Backend, y, Tape.Wants(xs), () =>
            {
                for (int i = 0; i < xs.Count; i++)
                    y.Backend.CopyAxisRange(xs[i], 0, y, starts[i], axis, xs[i].Shape[axis], accumulate: false);
            }, () =>
            {
                for (int i = 0; i < xs.Count; i++)
                    if (xs[i].RequiresGrad)
                    {
                        var (gx, acc) = xs[i].GradForWrite();   // the slice covers all of x's gradient
                        y.Backend.CopyAxisRange(y.Grad!, starts[i], gx, 0, axis, xs[i].Shape[axis], accumulate: acc);
                    }
            });
        return y;
    }

    /// <summary>The slice [start, start+length) along <paramref name="axis"/> (a copy).</summary>
    public static Tensor Narrow(Tensor x, int axis, int start, int length)
    {
        if (axis < 0) axis += x.Rank;
        var shape = (int[])x.Shape.Clone();
        shape[axis] = length;
        var y = New(x, shape);
        Op.Run("narrow", x.Backend, y, Tape.Wants(x),
            () => x.Backend.CopyAxisRange(x, start, y, 0, axis, length, accumulate: false),
            () => x.Backend.CopyAxisRange(y.Grad!, 0, x.GradOrZeros(), start, axis, length, accumulate: true));
        return y;
    }

    public static Tensor BroadcastTo(Tensor x, params int[] shape)
    {
        var y = New(x, shape);
        Op.Run("broadcast", x.Backend, y, Tape.Wants(x),
            () => x.Backend.BroadcastTo(x, y, accumulate: false),
            () => { var (gx, acc) = x.GradForWrite(); x.Backend.SumTo(y.Grad!, gx, accumulate: acc); });
        return y;
    }

    /// <summary>Sums x down to <paramref name="shape"/> (axes of size 1, or missing on the left, are summed).</summary>
    public static Tensor SumTo(Tensor x, params int[] shape)
    {
        var y = New(x, shape);
        Op.Run("sum", x.Backend, y, Tape.Wants(x),
            () => x.Backend.SumTo(x, y, accumulate: false),
            () => { var (gx, acc) = x.GradForWrite(); x.Backend.BroadcastTo(y.Grad!, gx, accumulate: acc); });
        return y;
    }

    /// <summary>The sum of every element, shape [1].</summary>
    public static Tensor Sum(Tensor x) => SumTo(x, 1);
    public static Tensor Mean(Tensor x) => Scale(Sum(x), 1.0 / x.Numel);

    /// <summary>Sum over the given axes; kept as size-1 axes when <paramref name="keepDims"/>.</summary>
    public static Tensor SumAxes(Tensor x, int[] axes, bool keepDims = false)
    {
        var kept = (int[])x.Shape.Clone();
        foreach (var a in axes) kept[a < 0 ? a + x.Rank : a] = 1;
        var s = SumTo(x, kept);
        if (keepDims) return s;
        var squeezed = kept.Where((d, i) => !axes.Select(a => a < 0 ? a + x.Rank : a).Contains(i)).ToArray();
        return Reshape(s, squeezed.Length == 0 ? new[] { 1 } : squeezed);
    }

    /// <summary>PixelShuffle(r): B×(C·r²)×H×W → B×C×(H·r)×(W·r), PyTorch's channel order.</summary>
    public static Tensor PixelShuffle(Tensor x, int r)
    {
        int B = x.Shape[0], Cr = x.Shape[1], H = x.Shape[2], W = x.Shape[3];
        if (Cr % (r * r) != 0) throw new ArgumentException($"pixel shuffle: {Cr} channels not divisible by {r}²");
        int C = Cr / (r * r);
        var t = Reshape(x, B, C, r, r, H, W);
        var p = Permute(t, 0, 1, 4, 2, 5, 3);      // B, C, H, r, W, r
        Discard(t);                                 // the view's hold on x's storage: x is the caller's to free
        return Reshape(p, B, C, H * r, W * r);
    }

    /// <summary>Average pooling with kernel = stride = k (no padding): B×C×H×W → B×C×(H/k)×(W/k).</summary>
    public static Tensor AvgPool2d(Tensor x, int k)
    {
        int B = x.Shape[0], C = x.Shape[1], H = x.Shape[2], W = x.Shape[3];
        if (H % k != 0 || W % k != 0) throw new ArgumentException($"avg pool: {H}×{W} not divisible by {k}");
        var t = Reshape(x, B, C, H / k, k, W / k, k);
        var s = SumTo(t, B, C, H / k, 1, W / k, 1);
        return Scale(Reshape(s, B, C, H / k, W / k), 1.0 / (k * k));
    }
}
