using System.Numerics;

namespace Tmca.Engine;

// Convolutions.
//   conv2d:            x: B×C×H×W, w: O×(C/g)×kh×kw, b: O → y: B×O×Ho×Wo, Ho = (H + 2·pad − kh)/stride + 1
//   conv_transpose2d:  x: B×C×H×W, w: C×O×k×k, b: O → y: B×O×kH×kW   (kernel = stride = k, no padding)
// General conv2d is im2col + one GEMM per image (weights shared: A-stride 0). Depthwise (groups = C = O) is
// direct loops. The transposed conv with kernel = stride is a GEMM followed by a scatter of k×k blocks.
public sealed partial class CpuBackend
{
    private readonly record struct ConvGeom(int B, int C, int H, int W, int O, int Kh, int Kw, int Ho, int Wo, int Stride, int Pad, int Groups)
    {
        public int Cg => C / Groups;
        public int Og => O / Groups;
        public int K => Cg * Kh * Kw;        // GEMM depth per group
        public int P => Ho * Wo;             // output pixels per image
        public bool Depthwise => Groups == C && Groups == O;
        public bool Pointwise => Kh == 1 && Kw == 1 && Stride == 1 && Pad == 0;
    }

    private static ConvGeom Geometry(Tensor x, Tensor w, int stride, int pad, int groups)
    {
        if (x.Rank != 4 || w.Rank != 4) throw new ArgumentException($"conv2d: x {Shape.Format(x.Shape)} and w {Shape.Format(w.Shape)} must be 4-d");
        int B = x.Shape[0], C = x.Shape[1], H = x.Shape[2], W = x.Shape[3];
        int O = w.Shape[0], kh = w.Shape[2], kw = w.Shape[3];
        if (groups < 1 || C % groups != 0 || O % groups != 0 || w.Shape[1] != C / groups)
            throw new ArgumentException($"conv2d: x {Shape.Format(x.Shape)}, w {Shape.Format(w.Shape)} and groups {groups} do not agree");
        int Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
        if (Ho <= 0 || Wo <= 0) throw new ArgumentException($"conv2d: kernel {kh}×{kw} larger than padded input {H}×{W}");
        return new ConvGeom(B, C, H, W, O, kh, kw, Ho, Wo, stride, pad, groups);
    }

    public void Conv2d(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int pad, int groups)
    {
        var g = Geometry(x, w, stride, pad, groups);
        if (y.Numel != (long)g.B * g.O * g.P) throw new ArgumentException($"conv2d: output {Shape.Format(y.Shape)} should be [{g.B}, {g.O}, {g.Ho}, {g.Wo}]");
        if (FloatType(x, w, b, y) == DType.F32) Conv2dRef(g, A<float>(x), A<float>(w), AOpt<float>(b), A<float>(y));
        else Conv2dRef(g, A<double>(x), A<double>(w), AOpt<double>(b), A<double>(y));
    }

    public void Conv2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int stride, int pad, int groups)
    {
        var g = Geometry(x, w, stride, pad, groups);
        if (FloatType(x, w, gy, gx, gw, gb) == DType.F32) Conv2dBackwardRef(g, A<float>(x), A<float>(w), A<float>(gy), AOpt<float>(gx), AOpt<float>(gw), AOpt<float>(gb));
        else Conv2dBackwardRef(g, A<double>(x), A<double>(w), A<double>(gy), AOpt<double>(gx), AOpt<double>(gw), AOpt<double>(gb));
    }

    private static void Conv2dRef<T>(ConvGeom g, T[] x, T[] w, T[]? b, T[] y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (g.Depthwise && !g.Pointwise) { DepthwiseForward(g, x, w, b, y); return; }
        // col: B × (C·kh·kw) × P ; then per image and group: y_bg (Og×P) = w_g (Og×K) · col_bg (K×P)
        T[] col = g.Pointwise ? x : Im2Col(g, x);
        for (int gi = 0; gi < g.Groups; gi++)
            GemmT(false, false, g.Og, g.P, g.K, 1.0,
                  w, (long)gi * g.Og * g.K, 0,
                  col, (long)gi * g.K * g.P, (long)g.C * g.Kh * g.Kw * g.P,
                  0.0, y, (long)gi * g.Og * g.P, (long)g.O * g.P, g.B);
        if (b is not null)
            Par.For(g.B * g.O, g.P, bo =>
            {
                T bias = b[bo % g.O];
                var row = y.AsSpan(bo * g.P, g.P);
                for (int p = 0; p < row.Length; p++) row[p] += bias;
            });
    }

    private static void Conv2dBackwardRef<T>(ConvGeom g, T[] x, T[] w, T[] gy, T[]? gx, T[]? gw, T[]? gb) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (gb is not null) BiasGrad(gy, gb, g.B, g.O, g.P);
        if (g.Depthwise && !g.Pointwise) { DepthwiseBackward(g, x, w, gy, gx, gw); return; }
        long colPerImage = (long)g.C * g.Kh * g.Kw * g.P;
        if (gw is not null)
        {
            // gw_g (Og×K) += Σ_b gy_bg (Og×P) · col_bgᵀ (P×K)
            T[] col = g.Pointwise ? x : Im2Col(g, x);
            for (int bi = 0; bi < g.B; bi++)
                for (int gi = 0; gi < g.Groups; gi++)
                    GemmT(false, true, g.Og, g.K, g.P, 1.0,
                          gy, (long)bi * g.O * g.P + (long)gi * g.Og * g.P, 0,
                          col, bi * colPerImage + (long)gi * g.K * g.P, 0,
                          1.0, gw, (long)gi * g.Og * g.K, 0, 1);
        }
        if (gx is not null)
        {
            // gcol_bg (K×P) = w_gᵀ (K×Og) · gy_bg (Og×P), then scatter-add back to the image (col2im).
            var gcol = new T[g.B * colPerImage];
            for (int gi = 0; gi < g.Groups; gi++)
                GemmT(true, false, g.K, g.P, g.Og, 1.0,
                      w, (long)gi * g.Og * g.K, 0,
                      gy, (long)gi * g.Og * g.P, (long)g.O * g.P,
                      0.0, gcol, (long)gi * g.K * g.P, colPerImage, g.B);
            if (g.Pointwise) for (long i = 0; i < gcol.Length; i++) gx[i] += gcol[i];
            else Col2ImAdd(g, gcol, gx);
        }
    }

    /// <summary>col[b, (c·kh + i)·kw + j, oh·Wo + ow] = x[b, c, oh·s − pad + i, ow·s − pad + j] (0 outside).</summary>
    private static T[] Im2Col<T>(ConvGeom g, T[] x) where T : unmanaged, INumberBase<T>
    {
        int rows = g.C * g.Kh * g.Kw;
        var col = new T[(long)g.B * rows * g.P];
        Par.For(g.B * g.C, (long)g.Kh * g.Kw * g.P, bc =>
        {
            int bi = bc / g.C, c = bc % g.C;
            long xo = (long)bc * g.H * g.W;
            for (int i = 0; i < g.Kh; i++)
                for (int j = 0; j < g.Kw; j++)
                {
                    long co = ((long)bi * rows + (c * g.Kh + i) * g.Kw + j) * g.P;
                    for (int oh = 0; oh < g.Ho; oh++)
                    {
                        int ih = oh * g.Stride - g.Pad + i;
                        long rowOut = co + (long)oh * g.Wo;
                        if ((uint)ih >= (uint)g.H) continue;   // stays zero
                        long rowIn = xo + (long)ih * g.W;
                        for (int ow = 0; ow < g.Wo; ow++)
                        {
                            int iw = ow * g.Stride - g.Pad + j;
                            if ((uint)iw < (uint)g.W) col[rowOut + ow] = x[rowIn + iw];
                        }
                    }
                }
        });
        return col;
    }

    /// <summary>The adjoint of <see cref="Im2Col{T}"/>: gx[b, c, ih, iw] += every col entry that read it.</summary>
    private static void Col2ImAdd<T>(ConvGeom g, T[] col, T[] gx) where T : unmanaged, INumberBase<T>
    {
        int rows = g.C * g.Kh * g.Kw;
        Par.For(g.B * g.C, (long)g.Kh * g.Kw * g.P, bc =>
        {
            int bi = bc / g.C, c = bc % g.C;
            long xo = (long)bc * g.H * g.W;
            for (int i = 0; i < g.Kh; i++)
                for (int j = 0; j < g.Kw; j++)
                {
                    long co = ((long)bi * rows + (c * g.Kh + i) * g.Kw + j) * g.P;
                    for (int oh = 0; oh < g.Ho; oh++)
                    {
                        int ih = oh * g.Stride - g.Pad + i;
                        if ((uint)ih >= (uint)g.H) continue;
                        long rowIn = co + (long)oh * g.Wo, rowOut = xo + (long)ih * g.W;
                        for (int ow = 0; ow < g.Wo; ow++)
                        {
                            int iw = ow * g.Stride - g.Pad + j;
                            if ((uint)iw < (uint)g.W) gx[rowOut + iw] += col[rowIn + ow];
                        }
                    }
                }
        });
    }

    /// <summary>gb[o] += Σ_{b,p} gy[b, o, p], accumulated in float64.</summary>
    private static void BiasGrad<T>(T[] gy, T[] gb, int B, int O, int P) where T : unmanaged, INumberBase<T>
    {
        Par.For(O, (long)B * P, o =>
        {
            double s = 0;
            for (int bi = 0; bi < B; bi++)
            {
                long off = ((long)bi * O + o) * P;
                for (int p = 0; p < P; p++) s += double.CreateTruncating(gy[off + p]);
            }
            gb[o] += T.CreateTruncating(s);
        });
    }

    // ---- depthwise: one k×k filter per channel, direct loops ----------------------------------------

    private static void DepthwiseForward<T>(ConvGeom g, T[] x, T[] w, T[]? b, T[] y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Par.For(g.B * g.C, (long)g.P * g.Kh * g.Kw, bc =>
        {
            int c = bc % g.C;
            long xo = (long)bc * g.H * g.W, yo = (long)bc * g.P, wo = (long)c * g.Kh * g.Kw;
            T bias = b is null ? T.Zero : b[c];
            for (int p = 0; p < g.P; p++) y[yo + p] = bias;
            for (int oh = 0; oh < g.Ho; oh++)
                for (int i = 0; i < g.Kh; i++)
                {
                    int ih = oh * g.Stride - g.Pad + i;
                    if ((uint)ih >= (uint)g.H) continue;
                    for (int j = 0; j < g.Kw; j++)
                    {
                        T wv = w[wo + i * g.Kw + j];
                        var (ow0, ow1) = ValidOutputs(j, g.Stride, g.Pad, g.W, g.Wo);
                        long yr = yo + (long)oh * g.Wo, xr = xo + (long)ih * g.W - g.Pad + j;
                        for (int ow = ow0; ow < ow1; ow++) y[yr + ow] += wv * x[xr + (long)ow * g.Stride];
                    }
                }
        });
    }

    private static void DepthwiseBackward<T>(ConvGeom g, T[] x, T[] w, T[] gy, T[]? gx, T[]? gw) where T : unmanaged, IFloatingPointIeee754<T>
    {
        // One task per channel so the weight gradient needs no locking; images loop inside.
        Par.For(g.C, (long)g.B * g.P * g.Kh * g.Kw, c =>
        {
            long wo = (long)c * g.Kh * g.Kw;
            Span<double> acc = stackalloc double[g.Kh * g.Kw];
            acc.Clear();
            for (int bi = 0; bi < g.B; bi++)
            {
                long bc = (long)bi * g.C + c;
                long xo = bc * g.H * g.W, yo = bc * g.P;
                for (int oh = 0; oh < g.Ho; oh++)
                    for (int i = 0; i < g.Kh; i++)
                    {
                        int ih = oh * g.Stride - g.Pad + i;
                        if ((uint)ih >= (uint)g.H) continue;
                        for (int j = 0; j < g.Kw; j++)
                        {
                            var (ow0, ow1) = ValidOutputs(j, g.Stride, g.Pad, g.W, g.Wo);
                            long yr = yo + (long)oh * g.Wo, xr = xo + (long)ih * g.W - g.Pad + j;
                            if (gw is not null)
                            {
                                T s = T.Zero;
                                for (int ow = ow0; ow < ow1; ow++) s += gy[yr + ow] * x[xr + (long)ow * g.Stride];
                                acc[i * g.Kw + j] += double.CreateTruncating(s);
                            }
                            if (gx is not null)
                            {
                                T wv = w[wo + i * g.Kw + j];
                                for (int ow = ow0; ow < ow1; ow++) gx[xr + (long)ow * g.Stride] += wv * gy[yr + ow];
                            }
                        }
                    }
            }
            if (gw is not null) for (int t = 0; t < acc.Length; t++) gw[wo + t] += T.CreateTruncating(acc[t]);
        });
    }

    /// <summary>The output columns ow whose input column ow·s − pad + j lies inside [0, W).</summary>
    private static (int, int) ValidOutputs(int j, int stride, int pad, int W, int Wo)
    {
        if (W - 1 + pad - j < 0) return (0, 0);
        int lo = Math.Max(0, (pad - j + stride - 1) / stride);
        int hi = Math.Min(Wo, (W - 1 + pad - j) / stride + 1);
        return (lo, Math.Max(lo, hi));
    }

    // ---- transposed convolution, kernel = stride = k -------------------------------------------------

    public void ConvTranspose2d(Tensor x, Tensor w, Tensor? b, Tensor y, int k)
    {
        var (B, C, H, W, O) = TransposeGeometry(x, w, k);
        if (y.Numel != (long)B * O * H * k * W * k) throw new ArgumentException($"conv_transpose2d: output {Shape.Format(y.Shape)} should be [{B}, {O}, {H * k}, {W * k}]");
        if (FloatType(x, w, b, y) == DType.F32) ConvTRef(B, C, H, W, O, k, A<float>(x), A<float>(w), AOpt<float>(b), A<float>(y));
        else ConvTRef(B, C, H, W, O, k, A<double>(x), A<double>(w), AOpt<double>(b), A<double>(y));
    }

    public void ConvTranspose2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int k)
    {
        var (B, C, H, W, O) = TransposeGeometry(x, w, k);
        if (FloatType(x, w, gy, gx, gw, gb) == DType.F32) ConvTBackwardRef(B, C, H, W, O, k, A<float>(x), A<float>(w), A<float>(gy), AOpt<float>(gx), AOpt<float>(gw), AOpt<float>(gb));
        else ConvTBackwardRef(B, C, H, W, O, k, A<double>(x), A<double>(w), A<double>(gy), AOpt<double>(gx), AOpt<double>(gw), AOpt<double>(gb));
    }

    private static (int, int, int, int, int) TransposeGeometry(Tensor x, Tensor w, int k)
    {
        if (x.Rank != 4 || w.Rank != 4 || w.Shape[0] != x.Shape[1] || w.Shape[2] != k || w.Shape[3] != k)
            throw new ArgumentException($"conv_transpose2d: x {Shape.Format(x.Shape)}, w {Shape.Format(w.Shape)}, k {k} do not agree");
        return (x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], w.Shape[1]);
    }

    // z_b [(o,di,dj) × (i,j)] = wᵀ [(o,di,dj) × c] · x_b [c × (i,j)], then y[b, o, k·i+di, k·j+dj] = z_b + bias[o].
    private static void ConvTRef<T>(int B, int C, int H, int W, int O, int k, T[] x, T[] w, T[]? b, T[] y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int HW = H * W, OKK = O * k * k;
        var z = new T[(long)B * OKK * HW];
        GemmT(true, false, OKK, HW, C, 1.0, w, 0, 0, x, 0, (long)C * HW, 0.0, z, 0, (long)OKK * HW, B);
        Par.For(B * O, (long)k * k * HW, bo =>
        {
            int o = bo % O, bi = bo / O;
            T bias = b is null ? T.Zero : b[o];
            for (int di = 0; di < k; di++)
                for (int dj = 0; dj < k; dj++)
                {
                    long zr = ((long)bi * OKK + (o * k + di) * k + dj) * HW;
                    for (int i = 0; i < H; i++)
                    {
                        long yr = ((long)bo * H * k + i * k + di) * W * k + dj;
                        for (int j = 0; j < W; j++) y[yr + j * k] = z[zr + i * W + j] + bias;
                    }
                }
        });
    }

    private static void ConvTBackwardRef<T>(int B, int C, int H, int W, int O, int k, T[] x, T[] w, T[] gy, T[]? gx, T[]? gw, T[]? gb) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int HW = H * W, OKK = O * k * k;
        if (gb is not null) BiasGrad(gy, gb, B, O, HW * k * k);
        if (gx is null && gw is null) return;
        // gather gz_b [(o,di,dj) × (i,j)] = gy[b, o, k·i+di, k·j+dj]
        var gz = new T[(long)B * OKK * HW];
        Par.For(B * O, (long)k * k * HW, bo =>
        {
            int o = bo % O, bi = bo / O;
            for (int di = 0; di < k; di++)
                for (int dj = 0; dj < k; dj++)
                {
                    long zr = ((long)bi * OKK + (o * k + di) * k + dj) * HW;
                    for (int i = 0; i < H; i++)
                    {
                        long yr = ((long)bo * H * k + i * k + di) * W * k + dj;
                        for (int j = 0; j < W; j++) gz[zr + i * W + j] = gy[yr + j * k];
                    }
                }
        });
        // gx_b (C×HW) += w (C×OKK) · gz_b (OKK×HW)
        if (gx is not null) GemmT(false, false, C, HW, OKK, 1.0, w, 0, 0, gz, 0, (long)OKK * HW, 1.0, gx, 0, (long)C * HW, B);
        // gw (C×OKK) += Σ_b x_b (C×HW) · gz_bᵀ (HW×OKK)
        if (gw is not null)
            for (int bi = 0; bi < B; bi++)
                GemmT(false, true, C, OKK, HW, 1.0, x, (long)bi * C * HW, 0, gz, (long)bi * OKK * HW, 0, 1.0, gw, 0, 0, 1);
    }

    /// <summary>GEMM on raw arrays in the kernel's float type: the float fast path or the reference.</summary>
    internal static void GemmT<T>(bool ta, bool tb, int m, int n, int k, double alpha, T[] a, long offA, long sA, T[] b, long offB, long sB,
                                  double beta, T[] c, long offC, long sC, int batch) where T : unmanaged, INumberBase<T>
    {
        if (typeof(T) == typeof(float))
            GemmF32.Run(ta, tb, m, n, k, (float)alpha, (float[])(object)a, offA, sA, (float[])(object)b, offB, sB, (float)beta, (float[])(object)c, offC, sC, batch);
        else GemmRef(ta, tb, m, n, k, alpha, a, offA, sA, b, offB, sB, beta, c, offC, sC, batch);
    }
}
