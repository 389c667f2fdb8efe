namespace Tmca.Engine;

// Elementwise ops and broadcasting arithmetic.
public static partial class Ops
{
    private static Tensor UnaryOpFn(UnaryOp op, Tensor x, double alpha = 0)
    {
        var y = NewLike(x);
        var reads = UnaryReads(op);
        // save only what the backward reads, so the tape frees the rest (a GELU's output, a scale's input) at once;
        // the backend's unused slot gets a live tensor of the same shape (the gradient) whose values it ignores
        Op.Run(UnaryNames[(int)op], x.Backend, y, Tape.Wants(x),
            () => x.Backend.Unary(op, alpha, x, y),
            () =>
            {
                var gy = y.Grad!;
                x.Backend.UnaryBackward(op, alpha, reads == UnaryRead.X ? x : gy, reads == UnaryRead.Y ? y : gy, gy, x.GradOrZeros());
            }, saves: reads switch { UnaryRead.X => [x], UnaryRead.Y => [y], _ => [] });
        return y;
    }

    private enum UnaryRead { None, X, Y }

    /// <summary>Which value each unary backward reads (Cpu/Elementwise.cs UnaryBackwardRef, elementwise.cu): the
    /// derivative is written in x, in y, or is a constant.</summary>
    private static UnaryRead UnaryReads(UnaryOp op) => op switch
    {
        UnaryOp.Gelu or UnaryOp.LeakyRelu or UnaryOp.Log or UnaryOp.ClampMin or UnaryOp.Square => UnaryRead.X,
        UnaryOp.Sigmoid or UnaryOp.Exp or UnaryOp.Sqrt or UnaryOp.Reciprocal => UnaryRead.Y,
        UnaryOp.Scale or UnaryOp.AddScalar => UnaryRead.None,
        _ => throw new NotSupportedException(op.ToString()),
    };

    private static readonly string[] UnaryNames = Enum.GetNames<UnaryOp>().Select(n => n.ToLowerInvariant()).ToArray();
    private static readonly string[] BinaryNames = Enum.GetNames<BinaryOp>().Select(n => n.ToLowerInvariant()).ToArray();

    /// <summary>GELU, exact erf form: x·Φ(x).</summary>
    public static Tensor Gelu(Tensor x) => UnaryOpFn(UnaryOp.Gelu, x);
    public static Tensor Sigmoid(Tensor x) => UnaryOpFn(UnaryOp.Sigmoid, x);
    public static Tensor LeakyRelu(Tensor x, double slope = 0.01) => UnaryOpFn(UnaryOp.LeakyRelu, x, slope);
    public static Tensor Exp(Tensor x) => UnaryOpFn(UnaryOp.Exp, x);
    public static Tensor Log(Tensor x) => UnaryOpFn(UnaryOp.Log, x);
    public static Tensor Sqrt(Tensor x) => UnaryOpFn(UnaryOp.Sqrt, x);
    public static Tensor Square(Tensor x) => UnaryOpFn(UnaryOp.Square, x);
    public static Tensor Reciprocal(Tensor x) => UnaryOpFn(UnaryOp.Reciprocal, x);
    public static Tensor Scale(Tensor x, double s) => UnaryOpFn(UnaryOp.Scale, x, s);
    public static Tensor Neg(Tensor x) => UnaryOpFn(UnaryOp.Scale, x, -1.0);
    public static Tensor AddScalar(Tensor x, double s) => UnaryOpFn(UnaryOp.AddScalar, x, s);
    /// <summary>max(x, min); the gradient passes where x ≥ min (PyTorch's clamp_min).</summary>
    public static Tensor ClampMin(Tensor x, double min) => UnaryOpFn(UnaryOp.ClampMin, x, min);

    public static Tensor Add(Tensor a, Tensor b) => BinaryOpFn(BinaryOp.Add, a, b);
    public static Tensor Sub(Tensor a, Tensor b) => BinaryOpFn(BinaryOp.Sub, a, b);
    public static Tensor Mul(Tensor a, Tensor b) => BinaryOpFn(BinaryOp.Mul, a, b);
    public static Tensor Div(Tensor a, Tensor b) => BinaryOpFn(BinaryOp.Div, a, b);

    /// <summary>a op b with NumPy broadcasting; the backward sums each gradient back to its operand's shape.</summary>
    private static Tensor BinaryOpFn(BinaryOp op, Tensor a, Tensor b)
    {
        SameBackend(a, b, op.ToString());
        var be = a.Backend;
        var y = New(a, Shape.Broadcast(a.Shape, b.Shape));
        Op.Run(BinaryNames[(int)op], be, y, Tape.Wants(a, b), () => be.Binary(op, a, b, y, accumulate: false), () =>
        {
            var gy = y.Grad!;
            switch (op)
            {
                case BinaryOp.Add: ReduceInto(gy, a, mayHandOver: true); ReduceInto(gy, b); break;   // b copies gy before anything adds to a's
                case BinaryOp.Sub: ReduceInto(gy, a); ReduceInto(gy, b, -1.0); break;
                case BinaryOp.Mul:
                    if (a.RequiresGrad) MulInto(gy, b, a);
                    if (b.RequiresGrad) MulInto(gy, a, b);
                    break;
                case BinaryOp.Div:
                    if (a.RequiresGrad)
                    {
                        using var t = NewLike(y); be.Binary(BinaryOp.Div, gy, b, t, false); ReduceInto(t, a);
                    }
                    if (b.RequiresGrad)
                    {   // d(a/b)/db = −a/b² = −y/b
                        using var t = NewLike(y); be.Binary(BinaryOp.Mul, gy, y, t, false);
                        using var u = NewLike(y); be.Binary(BinaryOp.Div, t, b, u, false); ReduceInto(u, b, -1.0);
                    }
                    break;
            }
        }, saves: op switch { BinaryOp.Mul => [a, b], BinaryOp.Div => [b, y], _ => [] });   // add and sub read only the gradient
        return y;
    }

    /// <summary>target.grad += Σ_broadcast(gy·other).</summary>
    private static void MulInto(Tensor gy, Tensor other, Tensor target)
    {
        var be = gy.Backend;
        if (Shape.Equal(target.Shape, gy.Shape))
        {
            var (g, acc) = target.GradForWrite();
            be.Binary(BinaryOp.Mul, gy, other, g, accumulate: acc);
            return;
        }
        using var t = NewLike(gy);   // freed now, not at the step's end (a full-size temporary per broadcast operand)
        be.Binary(BinaryOp.Mul, gy, other, t, false);
        ReduceInto(t, target);
    }
}
