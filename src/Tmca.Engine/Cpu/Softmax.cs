using System.Numerics;

namespace Tmca.Engine;

// Softmax over the last axis. x, y: rows×n.  y = exp(x − max) / Σ exp(x − max);  gx += y·(gy − Σ gy·y).
public sealed partial class CpuBackend
{
    public void Softmax(Tensor x, Tensor y)
    {
        CheckSame(x, y, "softmax");
        int n = x.Shape[^1];
        if (FloatType(x, y) == DType.F32) SoftmaxRef(A<float>(x), A<float>(y), x.Numel / n, n);
        else SoftmaxRef(A<double>(x), A<double>(y), x.Numel / n, n);
    }

    public void SoftmaxBackward(Tensor y, Tensor gy, Tensor gx)
    {
        int n = y.Shape[^1];
        if (FloatType(y, gy, gx) == DType.F32) SoftmaxBackwardRef(A<float>(y), A<float>(gy), A<float>(gx), y.Numel / n, n);
        else SoftmaxBackwardRef(A<double>(y), A<double>(gy), A<double>(gx), y.Numel / n, n);
    }

    private static void SoftmaxRef<T>(HostArray<T> x, HostArray<T> y, long rows, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Par.Ranges(rows, n * 4, (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                var xs = x.AsSpan((int)(r * n), n); var ys = y.AsSpan((int)(r * n), n);
                T max = T.NegativeInfinity;
                foreach (var v in xs) if (v > max) max = v;
                double sum = 0;
                for (int i = 0; i < n; i++) { ys[i] = T.Exp(xs[i] - max); sum += double.CreateTruncating(ys[i]); }
                T inv = T.CreateTruncating(1.0 / sum);
                for (int i = 0; i < n; i++) ys[i] *= inv;
            }
        });
    }

    private static void SoftmaxBackwardRef<T>(HostArray<T> y, HostArray<T> gy, HostArray<T> gx, long rows, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Par.Ranges(rows, n * 4, (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                int o = (int)(r * n);
                var ys = y.AsSpan(o, n); var gys = gy.AsSpan(o, n); var gxs = gx.AsSpan(o, n);
                double dot = 0;
                for (int i = 0; i < n; i++) dot += double.CreateTruncating(gys[i]) * double.CreateTruncating(ys[i]);
                T d = T.CreateTruncating(dot);
                for (int i = 0; i < n; i++) gxs[i] += ys[i] * (gys[i] - d);
            }
        });
    }
}
