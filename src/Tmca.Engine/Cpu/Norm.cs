using System.Numerics;

namespace Tmca.Engine;

// Normalisation.
//   layer norm:  x viewed as outer×C×inner, normalised over C; w, b: C; mean, rstd: outer×inner.
//                inner = 1 is the usual last-axis LayerNorm, inner = H·W the channels-first one (ConvNeXt).
//   batch norm:  x: B×C×H×W, statistics per channel over B·H·W; w, b, running stats: C.
// Statistics are accumulated in float64 (two passes: mean, then centred variance).
public sealed partial class CpuBackend
{
    public void LayerNorm(Tensor x, Tensor? w, Tensor? b, Tensor y, Tensor mean, Tensor rstd, int outer, int c, int inner, double eps)
    {
        BackendChecks.Cover(x, outer, c, inner, "layer norm");
        if (FloatType(x, w, b, y, mean, rstd) == DType.F32) LayerNormRef(A<float>(x), AOpt<float>(w), AOpt<float>(b), A<float>(y), A<float>(mean), A<float>(rstd), outer, c, inner, eps);
        else LayerNormRef(A<double>(x), AOpt<double>(w), AOpt<double>(b), A<double>(y), A<double>(mean), A<double>(rstd), outer, c, inner, eps);
    }

    public void LayerNormBackward(Tensor x, Tensor? w, Tensor mean, Tensor rstd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int outer, int c, int inner, bool accumulate)
    {
        if (FloatType(x, w, mean, rstd, gy, gx, gw, gb) == DType.F32)
            LayerNormBackwardRef(A<float>(x), AOpt<float>(w), A<float>(mean), A<float>(rstd), A<float>(gy), AOpt<float>(gx), AOpt<float>(gw), AOpt<float>(gb), outer, c, inner, accumulate);
        else
            LayerNormBackwardRef(A<double>(x), AOpt<double>(w), A<double>(mean), A<double>(rstd), A<double>(gy), AOpt<double>(gx), AOpt<double>(gw), AOpt<double>(gb), outer, c, inner, accumulate);
    }

    private static void LayerNormRef<T>(HostArray<T> x, HostArray<T>? w, HostArray<T>? b, HostArray<T> y, HostArray<T> mean, HostArray<T> rstd, int outer, int c, int inner, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> xV = x; Span<T> wV = w is null ? default(Span<T>) : w; Span<T> bV = b is null ? default(Span<T>) : b; Span<T> yV = y; Span<T> meanV = mean; Span<T> rstdV = rstd;
        if (inner == 1) LayerNormRows(x, w, b, y, mean, rstd, outer, c, eps);
        else LayerNormChannelsFirst(x, w, b, y, mean, rstd, outer, c, inner, eps);
    }

    // Channels-first (ConvNeXt): one task per outer index; element (o, ch, i) lives at (o·C + ch)·inner + i.
    private static void LayerNormChannelsFirst<T>(HostArray<T> x, HostArray<T>? w, HostArray<T>? b, HostArray<T> y, HostArray<T> mean, HostArray<T> rstd, int outer, int c, int inner, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Par.For(outer, (long)c * inner, o =>
        {
            Span<T> xV = x; Span<T> wV = w is null ? default(Span<T>) : w; Span<T> bV = b is null ? default(Span<T>) : b; Span<T> yV = y; Span<T> meanV = mean; Span<T> rstdV = rstd;
            var mu = new double[inner];
            var var = new double[inner];
            long baseIdx = (long)o * c * inner;
            for (int ch = 0; ch < c; ch++)
            {
                long row = baseIdx + (long)ch * inner;
                for (int i = 0; i < inner; i++) mu[i] += double.CreateTruncating(xV[(int)(row + i)]);
            }
            for (int i = 0; i < inner; i++) mu[i] /= c;
            for (int ch = 0; ch < c; ch++)
            {
                long row = baseIdx + (long)ch * inner;
                for (int i = 0; i < inner; i++) { double d = double.CreateTruncating(xV[(int)(row + i)]) - mu[i]; var[i] += d * d; }
            }
            for (int i = 0; i < inner; i++)
            {
                var[i] = 1.0 / Math.Sqrt(var[i] / c + eps);
                meanV[(int)((long)o * inner + i)] = T.CreateTruncating(mu[i]);
                rstdV[(int)((long)o * inner + i)] = T.CreateTruncating(var[i]);
            }
            for (int ch = 0; ch < c; ch++)
            {
                long row = baseIdx + (long)ch * inner;
                double wv = w is null ? 1.0 : double.CreateTruncating(wV[(int)ch]), bv = b is null ? 0.0 : double.CreateTruncating(bV[(int)ch]);
                for (int i = 0; i < inner; i++)
                    yV[(int)(row + i)] = T.CreateTruncating((double.CreateTruncating(xV[(int)(row + i)]) - mu[i]) * var[i] * wv + bv);
            }
        });
    }

    // With x̂ = (x − μ)·r and g = gy·w:  gx = r·(g − mean_C(g) − x̂·mean_C(g·x̂)),  gw += Σ gy·x̂,  gb += Σ gy.
    // acc: the gradients are added to (else assigned: base 0, the same values a zero fill then += gives)
    private static void LayerNormBackwardRef<T>(HostArray<T> x, HostArray<T>? w, HostArray<T> mean, HostArray<T> rstd, HostArray<T> gy, HostArray<T>? gx, HostArray<T>? gw, HostArray<T>? gb, int outer, int c, int inner, bool acc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (inner == 1) LayerNormRowsBackward(x, w, mean, rstd, gy, gx, gw, gb, outer, c, acc);
        else LayerNormChannelsFirstBackward(x, w, mean, rstd, gy, gx, gw, gb, outer, c, inner, acc);
    }

    private static void LayerNormChannelsFirstBackward<T>(HostArray<T> x, HostArray<T>? w, HostArray<T> mean, HostArray<T> rstd, HostArray<T> gy, HostArray<T>? gx, HostArray<T>? gw, HostArray<T>? gb, int outer, int c, int inner, bool acc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var parts = Par.RangesOrdered(outer, (long)c * inner, (o0, o1) =>
        {
            Span<T> xV = x; Span<T> wV = w is null ? default(Span<T>) : w; Span<T> meanV = mean; Span<T> rstdV = rstd; Span<T> gyV = gy; Span<T> gxV = gx is null ? default(Span<T>) : gx; Span<T> gwV = gw is null ? default(Span<T>) : gw; Span<T> gbV = gb is null ? default(Span<T>) : gb;
            var gwAcc = new double[c]; var gbAcc = new double[c];
            var sg = new double[inner]; var sgx = new double[inner];
            for (long o = o0; o < o1; o++)
            {
                long baseIdx = o * c * inner;
                Array.Clear(sg); Array.Clear(sgx);
                for (int ch = 0; ch < c; ch++)
                {
                    long row = baseIdx + (long)ch * inner;
                    double wv = w is null ? 1.0 : double.CreateTruncating(wV[(int)ch]);
                    double accW = 0, accB = 0;
                    for (int i = 0; i < inner; i++)
                    {
                        double xh = (double.CreateTruncating(xV[(int)(row + i)]) - double.CreateTruncating(meanV[(int)(o * inner + i)])) * double.CreateTruncating(rstdV[(int)(o * inner + i)]);
                        double g = double.CreateTruncating(gyV[(int)(row + i)]);
                        accW += g * xh; accB += g;
                        sg[i] += g * wv; sgx[i] += g * wv * xh;
                    }
                    gwAcc[ch] += accW; gbAcc[ch] += accB;
                }
                if (gx is null) continue;
                for (int ch = 0; ch < c; ch++)
                {
                    long row = baseIdx + (long)ch * inner;
                    double wv = w is null ? 1.0 : double.CreateTruncating(wV[(int)ch]);
                    for (int i = 0; i < inner; i++)
                    {
                        double r = double.CreateTruncating(rstdV[(int)(o * inner + i)]);
                        double xh = (double.CreateTruncating(xV[(int)(row + i)]) - double.CreateTruncating(meanV[(int)(o * inner + i)])) * r;
                        double g = double.CreateTruncating(gyV[(int)(row + i)]) * wv;
                        gxV[(int)(row + i)] = (acc ? gxV[(int)(row + i)] : T.Zero) + T.CreateTruncating(r * (g - sg[i] / c - xh * sgx[i] / c));
                    }
                }
            }
            return (gwAcc, gbAcc);
        });
        for (int ch = 0; ch < c; ch++)
        {
            double sw = 0, sb = 0;
            foreach (var (pw, pb) in parts) { sw += pw[ch]; sb += pb[ch]; }
            if (gw is not null) gw[ch] = (acc ? gw[ch] : T.Zero) + T.CreateTruncating(sw);
            if (gb is not null) gb[ch] = (acc ? gb[ch] : T.Zero) + T.CreateTruncating(sb);
        }
    }

    // The last-axis case (inner = 1): each row is contiguous, so work row by row with no scratch arrays.
    private static void LayerNormRows<T>(HostArray<T> x, HostArray<T>? w, HostArray<T>? b, HostArray<T> y, HostArray<T> mean, HostArray<T> rstd, int rows, int c, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Par.Ranges(rows, c * 4, (r0, r1) =>
        {
            Span<T> xV = x; Span<T> wV = w is null ? default(Span<T>) : w; Span<T> bV = b is null ? default(Span<T>) : b; Span<T> yV = y; Span<T> meanV = mean; Span<T> rstdV = rstd;
            for (long r = r0; r < r1; r++)
            {
                var xs = x.AsSpan((int)(r * c), c); var ys = y.AsSpan((int)(r * c), c);
                double s = 0;
                foreach (var v in xs) s += double.CreateTruncating(v);
                double mu = s / c, ss = 0;
                foreach (var v in xs) { double d = double.CreateTruncating(v) - mu; ss += d * d; }
                double rs = 1.0 / Math.Sqrt(ss / c + eps);
                meanV[(int)r] = T.CreateTruncating(mu); rstdV[(int)r] = T.CreateTruncating(rs);
                T tm = T.CreateTruncating(mu), tr = T.CreateTruncating(rs);
                for (int i = 0; i < c; i++)
                {
                    T v = (xs[i] - tm) * tr;
                    if (w is not null) v *= wV[(int)i];
                    if (b is not null) v += bV[(int)i];
                    ys[i] = v;
                }
            }
        });
    }

    private static void LayerNormRowsBackward<T>(HostArray<T> x, HostArray<T>? w, HostArray<T> mean, HostArray<T> rstd, HostArray<T> gy, HostArray<T>? gx, HostArray<T>? gw, HostArray<T>? gb, int rows, int c, bool acc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var parts = Par.RangesOrdered(rows, c * 6, (r0, r1) =>
        {
            Span<T> xV = x; Span<T> wV = w is null ? default(Span<T>) : w; Span<T> meanV = mean; Span<T> rstdV = rstd; Span<T> gyV = gy; Span<T> gxV = gx is null ? default(Span<T>) : gx; Span<T> gwV = gw is null ? default(Span<T>) : gw; Span<T> gbV = gb is null ? default(Span<T>) : gb;
            var pw = new double[c]; var pb = new double[c];
            var xh = new double[c];
            for (long r = r0; r < r1; r++)
            {
                var xs = x.AsSpan((int)(r * c), c); var gys = gy.AsSpan((int)(r * c), c);
                double mu = double.CreateTruncating(meanV[(int)r]), rs = double.CreateTruncating(rstdV[(int)r]);
                double sg = 0, sgx = 0;
                for (int i = 0; i < c; i++)
                {
                    xh[i] = (double.CreateTruncating(xs[i]) - mu) * rs;
                    double g = double.CreateTruncating(gys[i]);
                    pw[i] += g * xh[i]; pb[i] += g;
                    double gw_ = g * (w is null ? 1.0 : double.CreateTruncating(wV[(int)i]));
                    sg += gw_; sgx += gw_ * xh[i];
                }
                if (gx is null) continue;
                var gxs = gx.AsSpan((int)(r * c), c);
                sg /= c; sgx /= c;
                for (int i = 0; i < c; i++)
                {
                    double g = double.CreateTruncating(gys[i]) * (w is null ? 1.0 : double.CreateTruncating(wV[(int)i]));
                    gxs[i] = (acc ? gxs[i] : T.Zero) + T.CreateTruncating(rs * (g - sg - xh[i] * sgx));
                }
            }
            return (pw, pb);
        });
        for (int i = 0; i < c; i++)
        {
            double sw = 0, sb = 0;
            foreach (var (pw, pb) in parts) { sw += pw[i]; sb += pb[i]; }
            if (gw is not null) gw[i] = (acc ? gw[i] : T.Zero) + T.CreateTruncating(sw);
            if (gb is not null) gb[i] = (acc ? gb[i] : T.Zero) + T.CreateTruncating(sb);
        }
    }

    // ---- batch norm ---------------------------------------------------------------------------------

    private static (int B, int C, int HW) BnGeometry(Tensor x)
    {
        if (x.Rank < 2) throw new ArgumentException($"batch norm: x {Shape.Format(x.Shape)} needs a channel axis");
        int hw = 1;
        for (int i = 2; i < x.Rank; i++) hw *= x.Shape[i];
        return (x.Shape[0], x.Shape[1], hw);
    }

    public void BatchNormTrain(Tensor x, Tensor w, Tensor b, Tensor y, Tensor saveMean, Tensor saveInvStd, Tensor? runMean, Tensor? runVar, double eps, double momentum)
    {
        var (B, C, HW) = BnGeometry(x);
        if ((long)B * HW < 2) throw new ArgumentException($"batch norm in training needs more than one value per channel, got x {Shape.Format(x.Shape)}");
        if (FloatType(x, w, b, y, saveMean, saveInvStd, runMean, runVar) == DType.F32)
            BatchNormTrainRef(B, C, HW, A<float>(x), A<float>(w), A<float>(b), A<float>(y), A<float>(saveMean), A<float>(saveInvStd), AOpt<float>(runMean), AOpt<float>(runVar), eps, momentum);
        else
            BatchNormTrainRef(B, C, HW, A<double>(x), A<double>(w), A<double>(b), A<double>(y), A<double>(saveMean), A<double>(saveInvStd), AOpt<double>(runMean), AOpt<double>(runVar), eps, momentum);
    }

    private static void BatchNormTrainRef<T>(int B, int C, int HW, HostArray<T> x, HostArray<T> w, HostArray<T> b, HostArray<T> y, HostArray<T> sMean, HostArray<T> sInv, HostArray<T>? rMean, HostArray<T>? rVar, double eps, double momentum)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        long n = (long)B * HW;
        Par.For(C, n, c =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> bV = b; Span<T> yV = y; Span<T> sMeanV = sMean; Span<T> sInvV = sInv; Span<T> rMeanV = rMean is null ? default(Span<T>) : rMean; Span<T> rVarV = rVar is null ? default(Span<T>) : rVar;
            double s = 0;
            for (int bi = 0; bi < B; bi++) { long o = ((long)bi * C + c) * HW; for (int p = 0; p < HW; p++) s += double.CreateTruncating(xV[(int)(o + p)]); }
            double mu = s / n, v = 0;
            for (int bi = 0; bi < B; bi++) { long o = ((long)bi * C + c) * HW; for (int p = 0; p < HW; p++) { double d = double.CreateTruncating(xV[(int)(o + p)]) - mu; v += d * d; } }
            double inv = 1.0 / Math.Sqrt(v / n + eps);
            sMeanV[(int)c] = T.CreateTruncating(mu); sInvV[(int)c] = T.CreateTruncating(inv);
            double scale = double.CreateTruncating(wV[(int)c]) * inv, shift = double.CreateTruncating(bV[(int)c]) - mu * scale;
            for (int bi = 0; bi < B; bi++) { long o = ((long)bi * C + c) * HW; for (int p = 0; p < HW; p++) yV[(int)(o + p)] = T.CreateTruncating(double.CreateTruncating(xV[(int)(o + p)]) * scale + shift); }
            // Running statistics: biased mean, unbiased variance (PyTorch).
            if (rMean is not null) rMeanV[(int)c] = T.CreateTruncating((1 - momentum) * double.CreateTruncating(rMeanV[(int)c]) + momentum * mu);
            if (rVar is not null) rVarV[(int)c] = T.CreateTruncating((1 - momentum) * double.CreateTruncating(rVarV[(int)c]) + momentum * v / (n - 1));
        });
    }

    public void BatchNormEval(Tensor x, Tensor w, Tensor b, Tensor y, Tensor runMean, Tensor runVar, double eps)
    {
        var (B, C, HW) = BnGeometry(x);
        if (FloatType(x, w, b, y, runMean, runVar) == DType.F32) BatchNormEvalRef(B, C, HW, A<float>(x), A<float>(w), A<float>(b), A<float>(y), A<float>(runMean), A<float>(runVar), eps);
        else BatchNormEvalRef(B, C, HW, A<double>(x), A<double>(w), A<double>(b), A<double>(y), A<double>(runMean), A<double>(runVar), eps);
    }

    private static void BatchNormEvalRef<T>(int B, int C, int HW, HostArray<T> x, HostArray<T> w, HostArray<T> b, HostArray<T> y, HostArray<T> rMean, HostArray<T> rVar, double eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Par.For(B * C, HW, bc =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> bV = b; Span<T> yV = y; Span<T> rMeanV = rMean; Span<T> rVarV = rVar;
            int c = bc % C;
            double inv = 1.0 / Math.Sqrt(double.CreateTruncating(rVarV[(int)c]) + eps);
            double scale = double.CreateTruncating(wV[(int)c]) * inv, shift = double.CreateTruncating(bV[(int)c]) - double.CreateTruncating(rMeanV[(int)c]) * scale;
            long o = (long)bc * HW;
            for (int p = 0; p < HW; p++) yV[(int)(o + p)] = T.CreateTruncating(double.CreateTruncating(xV[(int)(o + p)]) * scale + shift);
        });
    }

    // gx = w·r/N · (N·gy − Σgy − x̂·Σ(gy·x̂)),  gw += Σ gy·x̂,  gb += Σ gy   (sums over B·H·W per channel)
    public void BatchNormBackward(Tensor x, Tensor w, Tensor saveMean, Tensor saveInvStd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb)
    {
        var (B, C, HW) = BnGeometry(x);
        if (FloatType(x, w, saveMean, saveInvStd, gy, gx, gw, gb) == DType.F32)
            BatchNormBackwardRef(B, C, HW, A<float>(x), A<float>(w), A<float>(saveMean), A<float>(saveInvStd), A<float>(gy), AOpt<float>(gx), AOpt<float>(gw), AOpt<float>(gb));
        else
            BatchNormBackwardRef(B, C, HW, A<double>(x), A<double>(w), A<double>(saveMean), A<double>(saveInvStd), A<double>(gy), AOpt<double>(gx), AOpt<double>(gw), AOpt<double>(gb));
    }

    private static void BatchNormBackwardRef<T>(int B, int C, int HW, HostArray<T> x, HostArray<T> w, HostArray<T> sMean, HostArray<T> sInv, HostArray<T> gy, HostArray<T>? gx, HostArray<T>? gw, HostArray<T>? gb)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        long n = (long)B * HW;
        Par.For(C, n, c =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> sMeanV = sMean; Span<T> sInvV = sInv; Span<T> gyV = gy; Span<T> gxV = gx is null ? default(Span<T>) : gx; Span<T> gwV = gw is null ? default(Span<T>) : gw; Span<T> gbV = gb is null ? default(Span<T>) : gb;
            double mu = double.CreateTruncating(sMeanV[(int)c]), r = double.CreateTruncating(sInvV[(int)c]);
            double sg = 0, sgx = 0;
            for (int bi = 0; bi < B; bi++)
            {
                long o = ((long)bi * C + c) * HW;
                for (int p = 0; p < HW; p++) { double g = double.CreateTruncating(gyV[(int)(o + p)]); sg += g; sgx += g * (double.CreateTruncating(xV[(int)(o + p)]) - mu) * r; }
            }
            if (gw is not null) gwV[(int)c] += T.CreateTruncating(sgx);
            if (gb is not null) gbV[(int)c] += T.CreateTruncating(sg);
            if (gx is null) return;
            double k = double.CreateTruncating(wV[(int)c]) * r / n;
            for (int bi = 0; bi < B; bi++)
            {
                long o = ((long)bi * C + c) * HW;
                for (int p = 0; p < HW; p++)
                {
                    double xh = (double.CreateTruncating(xV[(int)(o + p)]) - mu) * r;
                    gxV[(int)(o + p)] += T.CreateTruncating(k * (n * double.CreateTruncating(gyV[(int)(o + p)]) - sg - xh * sgx));
                }
            }
        });
    }
}
