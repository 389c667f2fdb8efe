using System.Numerics;
using System.Numerics.Tensors;

namespace Tmca.Engine;

// Elementwise ops: activations, scalar maps, broadcasting binary ops, axpy.
// x, y, gy, gx: same shape (any); binary: a, b broadcast to y.
public sealed partial class CpuBackend
{
    public void Unary(UnaryOp op, double alpha, Tensor x, Tensor y)
    {
        CheckSame(x, y, "unary");
        if (FloatType(x, y) == DType.F32) UnaryF32(op, (float)alpha, A<float>(x), A<float>(y), (int)x.Numel);
        else UnaryRef(op, alpha, A<double>(x), A<double>(y), (int)x.Numel);
    }

    public void UnaryBackward(UnaryOp op, double alpha, Tensor x, Tensor y, Tensor gy, Tensor gx)
    {
        CheckSame(x, gx, "unary backward");
        if (FloatType(x, y, gy, gx) == DType.F32)
        {
            if (op == UnaryOp.Gelu) GeluF32.Backward(A<float>(x), A<float>(gy), A<float>(gx), (int)x.Numel);
            else UnaryBackwardRef(op, (float)alpha, A<float>(x), A<float>(y), A<float>(gy), A<float>(gx), (int)x.Numel);
        }
        else UnaryBackwardRef(op, alpha, A<double>(x), A<double>(y), A<double>(gy), A<double>(gx), (int)x.Numel);
    }

    // ---- reference: one readable loop per op, generic over the float type ---------------------------

    internal static void UnaryRef<T>(UnaryOp op, double alpha, HostArray<T> x, HostArray<T> y, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T a = C<T>(alpha);
        Par.Ranges(n, 16, (s, e) =>
        {
            Span<T> xV = x; Span<T> yV = y;
            for (long i = s; i < e; i++)
            {
                T v = xV[(int)i];
                yV[(int)i] = op switch
                {
                    UnaryOp.Gelu => v * Phi(v),
                    UnaryOp.Sigmoid => T.One / (T.One + T.Exp(-v)),
                    UnaryOp.LeakyRelu => v >= T.Zero ? v : a * v,
                    UnaryOp.Exp => T.Exp(v),
                    UnaryOp.Log => T.Log(v),
                    UnaryOp.Sqrt => T.Sqrt(v),
                    UnaryOp.Scale => a * v,
                    UnaryOp.AddScalar => v + a,
                    UnaryOp.ClampMin => v >= a ? v : a,
                    UnaryOp.Square => v * v,
                    UnaryOp.Reciprocal => T.One / v,
                    _ => throw new NotSupportedException(op.ToString()),
                };
            }
        });
    }

    internal static void UnaryBackwardRef<T>(UnaryOp op, double alpha, HostArray<T> x, HostArray<T> y, HostArray<T> gy, HostArray<T> gx, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T a = C<T>(alpha);
        Par.Ranges(n, 16, (s, e) =>
        {
            Span<T> xV = x; Span<T> yV = y; Span<T> gyV = gy; Span<T> gxV = gx;
            for (long i = s; i < e; i++)
            {
                T v = xV[(int)i], o = yV[(int)i];
                T d = op switch
                {
                    UnaryOp.Gelu => Phi(v) + v * C<T>(ErfMath.NormalPdf(D(v))),   // d/dx x·Φ(x) = Φ(x) + x·φ(x)
                    UnaryOp.Sigmoid => o * (T.One - o),
                    UnaryOp.LeakyRelu => v > T.Zero ? T.One : a,                      // PyTorch: slope at x ≤ 0
                    UnaryOp.Exp => o,
                    UnaryOp.Log => T.One / v,
                    UnaryOp.Sqrt => C<T>(0.5) / o,
                    UnaryOp.Scale => a,
                    UnaryOp.AddScalar => T.One,
                    UnaryOp.ClampMin => v >= a ? T.One : T.Zero,
                    UnaryOp.Square => v + v,
                    UnaryOp.Reciprocal => -o * o,
                    _ => throw new NotSupportedException(op.ToString()),
                };
                gxV[(int)i] += d * gyV[(int)i];
            }
        });
    }

    /// <summary>Φ(x) in the precision of T.</summary>
    private static T Phi<T>(T v) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? C<T>(ErfMath.NormalCdf((float)(object)v)) : C<T>(ErfMath.NormalCdf(D(v)));

    // ---- float fast path: TensorPrimitives (SIMD) where it has the op ---------------------------------

    private static void UnaryF32(UnaryOp op, float alpha, HostArray<float> x, HostArray<float> y, int n)
    {
        var xs = x.AsSpan(0, n); var ys = y.AsSpan(0, n);
        switch (op)
        {
            case UnaryOp.Gelu: GeluF32.Forward(x, y, n); break;
            case UnaryOp.Sigmoid: TensorPrimitives.Sigmoid(xs, ys); break;
            case UnaryOp.Exp: TensorPrimitives.Exp(xs, ys); break;
            case UnaryOp.Log: TensorPrimitives.Log(xs, ys); break;
            case UnaryOp.Sqrt: TensorPrimitives.Sqrt(xs, ys); break;
            case UnaryOp.Scale: TensorPrimitives.Multiply(xs, alpha, ys); break;
            case UnaryOp.AddScalar: TensorPrimitives.Add(xs, alpha, ys); break;
            case UnaryOp.ClampMin: TensorPrimitives.Max(xs, alpha, ys); break;
            case UnaryOp.Square: TensorPrimitives.Multiply(xs, xs, ys); break;
            case UnaryOp.Reciprocal: TensorPrimitives.Reciprocal(xs, ys); break;
            default: UnaryRef(op, alpha, x, y, n); break;
        }
    }

    // ---- binary with broadcasting -------------------------------------------------------------------

    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, bool accumulate)
    {
        BackendChecks.Binary(a, b, y);
        if (FloatType(a, b, y) == DType.F32) BinaryRef(op, A<float>(a), a.Shape, A<float>(b), b.Shape, A<float>(y), y.Shape, accumulate);
        else BinaryRef(op, A<double>(a), a.Shape, A<double>(b), b.Shape, A<double>(y), y.Shape, accumulate);
    }

    internal static void BinaryRef<T>(BinaryOp op, HostArray<T> a, int[] aShape, HostArray<T> b, int[] bShape, HostArray<T> y, int[] yShape, bool acc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        long n = Shape.Numel(yShape);
        if (n == 0) return;
        // Same shapes (the common case): one flat SIMD-friendly loop.
        if (Shape.Numel(aShape) == n && Shape.Numel(bShape) == n)
        {
            Par.Ranges(n, 1, (s, e) =>
            {
                Span<T> aV = a; Span<T> bV = b; Span<T> yV = y;
                for (long i = s; i < e; i++)
                {
                    T v = Apply(op, aV[(int)i], bV[(int)i]);
                    yV[(int)i] = acc ? yV[(int)i] + v : v;
                }
            });
            return;
        }
        // General case: walk y row by row (all axes but the last), with 0-strides on broadcast axes.
        var sa = Shape.BroadcastStrides(aShape, yShape);
        var sb = Shape.BroadcastStrides(bShape, yShape);
        int r = yShape.Length, inner = yShape[r - 1];
        long rows = n / inner, ia = sa[r - 1], ib = sb[r - 1];
        Par.Ranges(rows, inner, (s, e) =>
        {
            Span<T> aV = a; Span<T> bV = b; Span<T> yV = y;
            for (long row = s; row < e; row++)
            {
                long oa = 0, ob = 0, rem = row;
                for (int d = r - 2; d >= 0; d--) { long q = rem % yShape[d]; rem /= yShape[d]; oa += q * sa[d]; ob += q * sb[d]; }
                long oy = row * inner;
                for (int j = 0; j < inner; j++)
                {
                    T v = Apply(op, aV[(int)(oa + j * ia)], bV[(int)(ob + j * ib)]);
                    yV[(int)(oy + j)] = acc ? yV[(int)(oy + j)] + v : v;
                }
            }
        });
    }

    private static T Apply<T>(BinaryOp op, T x, T z) where T : unmanaged, IFloatingPointIeee754<T> => op switch
    {
        BinaryOp.Add => x + z,
        BinaryOp.Sub => x - z,
        BinaryOp.Mul => x * z,
        BinaryOp.Div => x / z,
        _ => throw new NotSupportedException(op.ToString()),
    };

    public void Axpy(double alpha, Tensor x, Tensor y)
    {
        CheckSame(x, y, "axpy");
        if (FloatType(x, y) == DType.F32)
        {
            var xs = x.Span<float>(); var ys = y.Span<float>();
            if (alpha == 1.0) TensorPrimitives.Add(ys, xs, ys);
            else TensorPrimitives.MultiplyAdd(xs, (float)alpha, ys, ys);
        }
        else
        {
            var xs = x.Span<double>(); var ys = y.Span<double>();
            for (int i = 0; i < xs.Length; i++) ys[i] += alpha * xs[i];
        }
    }

    public void AddI64(Tensor t, long value)
    {
        if (t.DType != DType.I64) throw new ArgumentException($"AddI64 on a {t.DType} tensor");
        var s = t.Span<long>();
        for (int i = 0; i < s.Length; i++) s[i] += value;
    }

    internal static void CheckSame(Tensor a, Tensor b, string what) => BackendChecks.Same(a, b, what);
}
