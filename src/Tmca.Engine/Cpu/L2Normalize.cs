using System.Numerics;

namespace Tmca.Engine;

// L2 normalisation over the last axis. x, y: rows×d, norm: rows.
//   y = x / max(‖x‖, eps).  Backward (‖x‖ > eps): gx += (gy − y·⟨y, gy⟩) / ‖x‖;  clamped rows: gx += gy / eps.
public sealed partial class CpuBackend
{
    public void L2Normalize(Tensor x, Tensor y, Tensor norm, double eps)
    {
        int d = x.Shape[^1];
        if (FloatType(x, y, norm) == DType.F32) L2Ref(A<float>(x), A<float>(y), A<float>(norm), x.Numel / d, d, eps);
        else L2Ref(A<double>(x), A<double>(y), A<double>(norm), x.Numel / d, d, eps);
    }

    public void L2NormalizeBackward(Tensor y, Tensor norm, Tensor gy, Tensor gx, double eps)
    {
        int d = y.Shape[^1];
        if (FloatType(y, norm, gy, gx) == DType.F32) L2BackRef(A<float>(y), A<float>(norm), A<float>(gy), A<float>(gx), y.Numel / d, d, eps);
        else L2BackRef(A<double>(y), A<double>(norm), A<double>(gy), A<double>(gx), y.Numel / d, d, eps);
    }

    private static void L2Ref<T>(HostArray<T> x, HostArray<T> y, HostArray<T> norm, long rows, int d, double eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Par.Ranges(rows, d * 2, (r0, r1) =>
        {
            Span<T> xV = x; Span<T> yV = y; Span<T> normV = norm;
            for (long r = r0; r < r1; r++)
            {
                long o = r * d;
                double ss = 0;
                for (int j = 0; j < d; j++) { double v = double.CreateTruncating(xV[(int)(o + j)]); ss += v * v; }
                double nrm = Math.Sqrt(ss);
                normV[(int)r] = T.CreateTruncating(nrm);
                double inv = 1.0 / Math.Max(nrm, eps);
                for (int j = 0; j < d; j++) yV[(int)(o + j)] = T.CreateTruncating(double.CreateTruncating(xV[(int)(o + j)]) * inv);
            }
        });
    }

    private static void L2BackRef<T>(HostArray<T> y, HostArray<T> norm, HostArray<T> gy, HostArray<T> gx, long rows, int d, double eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Par.Ranges(rows, d * 2, (r0, r1) =>
        {
            Span<T> yV = y; Span<T> normV = norm; Span<T> gyV = gy; Span<T> gxV = gx;
            for (long r = r0; r < r1; r++)
            {
                long o = r * d;
                double nrm = double.CreateTruncating(normV[(int)r]);
                if (nrm > eps)
                {
                    double dot = 0;
                    for (int j = 0; j < d; j++) dot += double.CreateTruncating(yV[(int)(o + j)]) * double.CreateTruncating(gyV[(int)(o + j)]);
                    for (int j = 0; j < d; j++)
                        gxV[(int)(o + j)] += T.CreateTruncating((double.CreateTruncating(gyV[(int)(o + j)]) - double.CreateTruncating(yV[(int)(o + j)]) * dot) / nrm);
                }
                else
                    for (int j = 0; j < d; j++) gxV[(int)(o + j)] += T.CreateTruncating(double.CreateTruncating(gyV[(int)(o + j)]) / eps);
            }
        });
    }
}
