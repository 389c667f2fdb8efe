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

    private static void L2Ref<T>(T[] x, T[] y, T[] norm, long rows, int d, double eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Par.Ranges(rows, d * 2, (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                long o = r * d;
                double ss = 0;
                for (int j = 0; j < d; j++) { double v = double.CreateTruncating(x[o + j]); ss += v * v; }
                double nrm = Math.Sqrt(ss);
                norm[r] = T.CreateTruncating(nrm);
                double inv = 1.0 / Math.Max(nrm, eps);
                for (int j = 0; j < d; j++) y[o + j] = T.CreateTruncating(double.CreateTruncating(x[o + j]) * inv);
            }
        });
    }

    private static void L2BackRef<T>(T[] y, T[] norm, T[] gy, T[] gx, long rows, int d, double eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Par.Ranges(rows, d * 2, (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                long o = r * d;
                double nrm = double.CreateTruncating(norm[r]);
                if (nrm > eps)
                {
                    double dot = 0;
                    for (int j = 0; j < d; j++) dot += double.CreateTruncating(y[o + j]) * double.CreateTruncating(gy[o + j]);
                    for (int j = 0; j < d; j++)
                        gx[o + j] += T.CreateTruncating((double.CreateTruncating(gy[o + j]) - double.CreateTruncating(y[o + j]) * dot) / nrm);
                }
                else
                    for (int j = 0; j < d; j++) gx[o + j] += T.CreateTruncating(double.CreateTruncating(gy[o + j]) / eps);
            }
        });
    }
}
