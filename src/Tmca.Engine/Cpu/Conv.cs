using System.Numerics;
using System.Numerics.Tensors;

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
        var (B, C, H, W, O, kh, kw, Ho, Wo) = BackendChecks.Conv(x, w, stride, pad, groups);
        return new ConvGeom(B, C, H, W, O, kh, kw, Ho, Wo, stride, pad, groups);
    }

    public void Conv2d(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int pad, int groups)
    {
        var g = Geometry(x, w, stride, pad, groups);
        if (y.Numel != (long)g.B * g.O * g.P) throw new ArgumentException($"conv2d: output {Shape.Format(y.Shape)} should be [{g.B}, {g.O}, {g.Ho}, {g.Wo}]");
        if (FloatType(x, w, b, y) == DType.F32) Conv2dFast(g, A<float>(x), A<float>(w), AOpt<float>(b), A<float>(y));
        else Conv2dFast(g, A<double>(x), A<double>(w), AOpt<double>(b), A<double>(y));
    }

    public void Conv2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int stride, int pad, int groups)
    {
        var g = Geometry(x, w, stride, pad, groups);
        if (FloatType(x, w, gy, gx, gw, gb) == DType.F32) Conv2dBackwardFast(g, A<float>(x), A<float>(w), A<float>(gy), AOpt<float>(gx), AOpt<float>(gw), AOpt<float>(gb));
        else Conv2dBackwardFast(g, A<double>(x), A<double>(w), A<double>(gy), AOpt<double>(gx), AOpt<double>(gw), AOpt<double>(gb));
    }

    // The fast paths (im2col + blocked GEMM, or the depthwise loops), generic over float and double; the PyTorch
    // oracles and the finite-difference checks are their reference.
    private static void Conv2dFast<T>(ConvGeom g, HostArray<T> x, HostArray<T> w, HostArray<T>? b, HostArray<T> y, bool accumulate = false) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (g.Depthwise && !g.Pointwise)
        {
            if (accumulate) throw new NotSupportedException("accumulating depthwise convolution");
            DepthwiseForward(g, x, w, b, y);
            return;
        }
        // Per image: col (C·kh·kw × P) = im2col(x_b); per group: y_bg (Og×P) = w_g (Og×K) · col_g (K×P).
        // Images run in parallel, each with its own col buffer (which stays in cache) and a serial GEMM.
        long colSize = (long)g.C * g.Kh * g.Kw * g.P;
        bool threadsInGemm = g.B == 1;
        Par.For(g.B, (long)g.O * g.K * g.P, bi =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> bV = b is null ? default(Span<T>) : b; Span<T> yV = y;
            HostArray<T> col = g.Pointwise ? x : ColBuffer<T>(colSize);
            long colOff = g.Pointwise ? bi * colSize : 0;
            if (!g.Pointwise) Im2ColImage(g, x, bi, col);
            for (int gi = 0; gi < g.Groups; gi++)
                GemmT(false, false, g.Og, g.P, g.K, 1.0, w, (long)gi * g.Og * g.K, 0, col, colOff + (long)gi * g.K * g.P, 0,
                      accumulate ? 1.0 : 0.0, y, (long)bi * g.O * g.P + (long)gi * g.Og * g.P, 0, 1, threadsInGemm);
            if (b is not null)
                for (int o = 0; o < g.O; o++)
                {
                    var row = y.AsSpan((int)(((long)bi * g.O + o) * g.P), g.P);
                    T bias = bV[(int)o];
                    for (int p = 0; p < row.Length; p++) row[p] += bias;
                }
        });
    }

    private static void Conv2dBackwardFast<T>(ConvGeom g, HostArray<T> x, HostArray<T> w, HostArray<T> gy, HostArray<T>? gx, HostArray<T>? gw, HostArray<T>? gb) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (gb is not null) BiasGrad(gy, gb, g.B, g.O, g.P);
        if (g.Depthwise && !g.Pointwise) { DepthwiseBackward(g, x, w, gy, gx, gw); return; }
        if (gx is not null && DataGradientAsConvolution(g, w, gy, gx)) gx = null;
        if (gx is null && gw is null) return;
        // Per image, in parallel: col = im2col(x_b); gw_partial += gy_b·colᵀ; gcol = wᵀ·gy_b; gx_b += col2im(gcol).
        // Each thread accumulates its own weight-gradient partial; they are summed at the end.
        long colSize = (long)g.C * g.Kh * g.Kw * g.P;
        bool threadsInGemm = g.B == 1;
        var partials = Par.RangesOrdered(g.B, (long)g.O * g.K * g.P * 2, (b0, b1) =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> gyV = gy; Span<T> gxV = gx is null ? default(Span<T>) : gx; Span<T> gwV = gw is null ? default(Span<T>) : gw; Span<T> gbV = gb is null ? default(Span<T>) : gb;
            var gwPart = gw is null ? null : CpuArrayPool.RentTemp<T>(gw.LongLength, zero: true);
            var gcol = gx is null || g.Pointwise ? null : CpuArrayPool.RentTemp<T>(colSize, zero: false);
            for (long bl = b0; bl < b1; bl++)
            {
                int bi = (int)bl;
                HostArray<T> col = g.Pointwise ? x : ColBuffer<T>(colSize);
                long colOff = g.Pointwise ? bi * colSize : 0;
                if (gwPart is not null && !g.Pointwise) Im2ColImage(g, x, bi, col);
                for (int gi = 0; gi < g.Groups; gi++)
                {
                    long gyOff = (long)bi * g.O * g.P + (long)gi * g.Og * g.P;
                    if (gwPart is not null)
                        GemmT(false, true, g.Og, g.K, g.P, 1.0, gy, gyOff, 0, col, colOff + (long)gi * g.K * g.P, 0,
                              1.0, gwPart, (long)gi * g.Og * g.K, 0, 1, threadsInGemm);
                    if (gx is not null)
                    {
                        // 1×1 stride-1 convs scatter nothing: the column gradient is the image gradient.
                        if (g.Pointwise)
                            GemmT(true, false, g.K, g.P, g.Og, 1.0, w, (long)gi * g.Og * g.K, 0, gy, gyOff, 0,
                                  1.0, gx, bi * colSize + (long)gi * g.K * g.P, 0, 1, threadsInGemm);
                        else
                            GemmT(true, false, g.K, g.P, g.Og, 1.0, w, (long)gi * g.Og * g.K, 0, gy, gyOff, 0,
                                  0.0, gcol!, (long)gi * g.K * g.P, 0, 1, threadsInGemm);
                    }
                }
                if (gx is not null && !g.Pointwise) Col2ImAddImage(g, gcol!, gx, bi);
            }
            CpuArrayPool.ReturnTemp(gcol);
            return gwPart;
        });
        if (gw is not null)
            foreach (var part in partials)
            {
                Span<T> gwV = gw, partV = part!;
                for (int i = 0; i < gwV.Length; i++) gwV[i] += partV[i];
                CpuArrayPool.ReturnTemp(part);
            }
    }

    /// <summary>
    /// For stride 1 the data gradient is itself a convolution: gx += conv(gy, w′) with w′[c, o, i, j] =
    /// w[o, c, k−1−i, k−1−j] and padding k−1−pad. That reads an im2col of gy (O·k² rows) instead of writing a
    /// C·k²-row column gradient and scattering it back: less memory traffic and no scatter — as long as O ≤ C
    /// (a conv that widens, like the segmentation head's, would read a larger im2col instead). Returns false (and
    /// does nothing) where it does not pay or apply: O &gt; C, strides, groups, 1×1, non-square kernels, padding beyond k−1.
    /// </summary>
    private static bool DataGradientAsConvolution<T>(ConvGeom g, HostArray<T> w, HostArray<T> gy, HostArray<T> gx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> wV = w; Span<T> gyV = gy; Span<T> gxV = gx;
        if (g.O > g.C || g.Stride != 1 || g.Groups != 1 || g.Pointwise || g.Kh != g.Kw || g.Pad > g.Kh - 1) return false;
        int k = g.Kh;
        var flipped = CpuArrayPool.RentTemp<T>(w.LongLength, zero: false);
        for (int o = 0; o < g.O; o++)
            for (int c = 0; c < g.C; c++)
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++)
                        flipped[((c * g.O + o) * k + (k - 1 - i)) * k + (k - 1 - j)] = wV[(int)(((o * g.C + c) * k + i) * k + j)];
        var transposed = new ConvGeom(g.B, g.O, g.Ho, g.Wo, g.C, k, k, g.H, g.W, 1, k - 1 - g.Pad, 1);
        Conv2dFast(transposed, gy, flipped, null, gx, accumulate: true);
        CpuArrayPool.ReturnTemp(flipped);
        return true;
    }

    /// <summary>A per-thread scratch buffer for one image's columns (reused across calls).</summary>
    private static HostArray<T> ColBuffer<T>(long size) where T : unmanaged => ScratchBuffers<T>.Get(0, size);

    /// <summary>col[(c·kh + i)·kw + j, oh·Wo + ow] = x[b, c, oh·s − pad + i, ow·s − pad + j] (0 outside), one image.</summary>
    private static void Im2ColImage<T>(ConvGeom g, HostArray<T> x, int bi, HostArray<T> col) where T : unmanaged, INumberBase<T>
    {
        Span<T> xV = x; Span<T> colV = col;
        for (int c = 0; c < g.C; c++)
        {
            var plane = x.AsSpan((int)(((long)bi * g.C + c) * g.H * g.W), g.H * g.W);
            for (int i = 0; i < g.Kh; i++)
                for (int j = 0; j < g.Kw; j++)
                {
                    var row = col.AsSpan(((c * g.Kh + i) * g.Kw + j) * g.P, g.P);
                    var (lo, hi) = ValidOutputs(j, g.Stride, g.Pad, g.W, g.Wo);
                    for (int oh = 0; oh < g.Ho; oh++)
                    {
                        var dst = row.Slice(oh * g.Wo, g.Wo);
                        int ih = oh * g.Stride - g.Pad + i;
                        if ((uint)ih >= (uint)g.H || lo >= hi) { dst.Clear(); continue; }
                        dst[..lo].Clear();
                        dst[hi..].Clear();
                        int x0 = ih * g.W + lo * g.Stride - g.Pad + j;
                        if (g.Stride == 1) plane.Slice(x0, hi - lo).CopyTo(dst[lo..hi]);
                        else for (int ow = lo; ow < hi; ow++) dst[ow] = plane[x0 + (ow - lo) * g.Stride];
                    }
                }
        }
    }

    /// <summary>The adjoint of <see cref="Im2ColImage{T}"/>: gx[b, c, ih, iw] += every column entry that read it.</summary>
    private static void Col2ImAddImage<T>(ConvGeom g, HostArray<T> col, HostArray<T> gx, int bi) where T : unmanaged, INumberBase<T>
    {
        Span<T> colV = col; Span<T> gxV = gx;
        for (int c = 0; c < g.C; c++)
        {
            var plane = gx.AsSpan((int)(((long)bi * g.C + c) * g.H * g.W), g.H * g.W);
            for (int i = 0; i < g.Kh; i++)
                for (int j = 0; j < g.Kw; j++)
                {
                    var row = col.AsSpan(((c * g.Kh + i) * g.Kw + j) * g.P, g.P);
                    var (lo, hi) = ValidOutputs(j, g.Stride, g.Pad, g.W, g.Wo);
                    if (lo >= hi) continue;
                    for (int oh = 0; oh < g.Ho; oh++)
                    {
                        int ih = oh * g.Stride - g.Pad + i;
                        if ((uint)ih >= (uint)g.H) continue;
                        var src = row.Slice(oh * g.Wo + lo, hi - lo);
                        int x0 = ih * g.W + lo * g.Stride - g.Pad + j;
                        if (g.Stride == 1) TensorPrimitives.Add(plane.Slice(x0, hi - lo), src, plane.Slice(x0, hi - lo));
                        else for (int ow = 0; ow < src.Length; ow++) plane[x0 + ow * g.Stride] += src[ow];
                    }
                }
        }
    }

    /// <summary>gb[o] += Σ_{b,p} gy[b, o, p], accumulated in float64.</summary>
    private static void BiasGrad<T>(HostArray<T> gy, HostArray<T> gb, int B, int O, int P) where T : unmanaged, INumberBase<T>
    {
        Par.For(O, (long)B * P, o =>
        {
            Span<T> gyV = gy; Span<T> gbV = gb;
            double s = 0;
            for (int bi = 0; bi < B; bi++)
            {
                long off = ((long)bi * O + o) * P;
                for (int p = 0; p < P; p++) s += double.CreateTruncating(gyV[(int)(off + p)]);
            }
            gbV[(int)o] += T.CreateTruncating(s);
        });
    }

    // ---- depthwise: one k×k filter per channel ------------------------------------------------------
    // Each (image, channel) plane is copied into a zero-padded scratch plane, so the inner loops have no
    // bounds logic and run over whole output rows with SIMD. Stride 1 (ConvNeXt) takes that path; other
    // strides use the direct loops below it.

    private static void DepthwiseForward<T>(ConvGeom g, HostArray<T> x, HostArray<T> w, HostArray<T>? b, HostArray<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (g.Stride == 1 && g.Kh == g.Kw) { DepthwiseForwardPadded(g, x, w, b, y); return; }
        Par.For(g.B * g.C, (long)g.P * g.Kh * g.Kw, bc =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> bV = b is null ? default(Span<T>) : b; Span<T> yV = y;
            int c = bc % g.C;
            long xo = (long)bc * g.H * g.W, yo = (long)bc * g.P, wo = (long)c * g.Kh * g.Kw;
            T bias = b is null ? T.Zero : bV[(int)c];
            for (int p = 0; p < g.P; p++) yV[(int)(yo + p)] = bias;
            for (int oh = 0; oh < g.Ho; oh++)
                for (int i = 0; i < g.Kh; i++)
                {
                    int ih = oh * g.Stride - g.Pad + i;
                    if ((uint)ih >= (uint)g.H) continue;
                    for (int j = 0; j < g.Kw; j++)
                    {
                        T wv = wV[(int)(wo + i * g.Kw + j)];
                        var (ow0, ow1) = ValidOutputs(j, g.Stride, g.Pad, g.W, g.Wo);
                        long yr = yo + (long)oh * g.Wo, xr = xo + (long)ih * g.W - g.Pad + j;
                        for (int ow = ow0; ow < ow1; ow++) yV[(int)(yr + ow)] += wv * xV[(int)(xr + (long)ow * g.Stride)];
                    }
                }
        });
    }

    private static void DepthwiseBackward<T>(ConvGeom g, HostArray<T> x, HostArray<T> w, HostArray<T> gy, HostArray<T>? gx, HostArray<T>? gw) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (g.Stride == 1 && g.Kh == g.Kw) { DepthwiseBackwardPadded(g, x, w, gy, gx, gw); return; }
        // One task per channel so the weight gradient needs no locking; images loop inside.
        Par.For(g.C, (long)g.B * g.P * g.Kh * g.Kw, c =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> gyV = gy; Span<T> gxV = gx is null ? default(Span<T>) : gx; Span<T> gwV = gw is null ? default(Span<T>) : gw;
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
                                for (int ow = ow0; ow < ow1; ow++) s += gyV[(int)(yr + ow)] * xV[(int)(xr + (long)ow * g.Stride)];
                                acc[i * g.Kw + j] += double.CreateTruncating(s);
                            }
                            if (gx is not null)
                            {
                                T wv = wV[(int)(wo + i * g.Kw + j)];
                                for (int ow = ow0; ow < ow1; ow++) gxV[(int)(xr + (long)ow * g.Stride)] += wv * gyV[(int)(yr + ow)];
                            }
                        }
                    }
            }
            if (gw is not null) for (int t = 0; t < acc.Length; t++) gwV[(int)(wo + t)] += T.CreateTruncating(acc[t]);
        });
    }

    /// <summary>Copies an H×W plane into the middle of a zeroed (H+2p)×(W+2p) scratch plane.</summary>
    private static void PadPlane<T>(ReadOnlySpan<T> src, int H, int W, int pad, Span<T> dst) where T : unmanaged
    {
        int Wp = W + 2 * pad;
        dst.Clear();
        for (int r = 0; r < H; r++) src.Slice(r * W, W).CopyTo(dst.Slice((r + pad) * Wp + pad, W));
    }

    /// <summary>y[oh, ow] (+)= Σ_{i,j} f[i, j]·xp[oh + i, ow + j] over a padded plane (stride 1, k×k filter),
    /// vectorised over ow. With the filter flipped this is also the data gradient of a depthwise conv.</summary>
    private static void CorrelatePlane<T>(ReadOnlySpan<T> xp, int Wp, ReadOnlySpan<T> f, int k, Span<T> y, int Ho, int Wo, T init, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int vw = Vector<T>.Count;
        for (int oh = 0; oh < Ho; oh++)
        {
            var yrow = y.Slice(oh * Wo, Wo);
            int ow = 0;
            for (; ow + vw <= Wo; ow += vw)
            {
                var acc = accumulate ? new Vector<T>(yrow.Slice(ow)) : new Vector<T>(init);
                for (int i = 0; i < k; i++)
                {
                    var xrow = xp.Slice((oh + i) * Wp + ow);
                    var frow = f.Slice(i * k, k);
                    for (int j = 0; j < k; j++) acc += new Vector<T>(frow[j]) * new Vector<T>(xrow.Slice(j));
                }
                acc.CopyTo(yrow.Slice(ow));
            }
            for (; ow < Wo; ow++)
            {
                T s = accumulate ? yrow[ow] : init;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) s += f[i * k + j] * xp[(oh + i) * Wp + ow + j];
                yrow[ow] = s;
            }
        }
    }

    private static void DepthwiseForwardPadded<T>(ConvGeom g, HostArray<T> x, HostArray<T> w, HostArray<T>? b, HostArray<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int k = g.Kh, Hp = g.H + 2 * g.Pad, Wp = g.W + 2 * g.Pad;
        // The vector loads stay inside the padded plane: its last row/column is exactly the last one read.
        Par.For(g.B * g.C, (long)g.P * k * k, bc =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> bV = b is null ? default(Span<T>) : b; Span<T> yV = y;
            int c = bc % g.C;
            var xp = ScratchBuffers<T>.Get(1, (long)Hp * Wp).AsSpan(0, Hp * Wp);
            PadPlane<T>(x.AsSpan((int)((long)bc * g.H * g.W), g.H * g.W), g.H, g.W, g.Pad, xp);
            CorrelatePlane<T>(xp, Wp, w.AsSpan(c * k * k, k * k), k, y.AsSpan((int)((long)bc * g.P), g.P), g.Ho, g.Wo,
                              b is null ? T.Zero : bV[(int)c], accumulate: false);
        });
    }

    private static void DepthwiseBackwardPadded<T>(ConvGeom g, HostArray<T> x, HostArray<T> w, HostArray<T> gy, HostArray<T>? gx, HostArray<T>? gw) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int k = g.Kh, pad = g.Pad, Hp = g.H + 2 * pad, Wp = g.W + 2 * pad;
        int qpad = k - 1 - pad, Hq = g.Ho + 2 * qpad, Wq = g.Wo + 2 * qpad;
        int vw = Vector<T>.Count;
        // One task per channel: the weight gradient is private to it; images loop inside.
        Par.For(g.C, (long)g.B * g.P * k * k * 2, c =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> gyV = gy; Span<T> gxV = gx is null ? default(Span<T>) : gx; Span<T> gwV = gw is null ? default(Span<T>) : gw;
            var flipped = new T[k * k];
            for (int t = 0; t < k * k; t++) flipped[t] = wV[(int)(c * k * k + (k * k - 1 - t))];
            var acc = new Vector<T>[k * k];
            var xp = ScratchBuffers<T>.Get(1, (long)Hp * Wp).AsSpan(0, Hp * Wp);
            var gq = ScratchBuffers<T>.Get(2, (long)Hq * Wq).AsSpan(0, Hq * Wq);
            var tail = new T[k * k];
            for (int bi = 0; bi < g.B; bi++)
            {
                long bc = (long)bi * g.C + c;
                var gyPlane = gy.AsSpan((int)(bc * g.P), g.P);
                if (gx is not null)
                {
                    // gx = correlate(pad(gy, k−1−pad), flip(w))
                    PadPlane<T>(gyPlane, g.Ho, g.Wo, qpad, gq);
                    CorrelatePlane<T>(gq, Wq, flipped, k, gx.AsSpan((int)(bc * g.H * g.W), g.H * g.W), g.H, g.W, T.Zero, accumulate: true);
                }
                if (gw is null) continue;
                // gwV[(int)(i, j)] += Σ_{oh, ow} gyV[(int)(oh, ow)]·xp[oh + i, ow + j]
                PadPlane<T>(x.AsSpan((int)(bc * g.H * g.W), g.H * g.W), g.H, g.W, pad, xp);
                for (int oh = 0; oh < g.Ho; oh++)
                {
                    var gyrow = gyPlane.Slice(oh * g.Wo, g.Wo);
                    for (int i = 0; i < k; i++)
                    {
                        var xrow = xp.Slice((oh + i) * Wp);
                        for (int j = 0; j < k; j++)
                        {
                            int ow = 0;
                            var a = acc[i * k + j];
                            for (; ow + vw <= g.Wo; ow += vw) a += new Vector<T>(gyrow.Slice(ow)) * new Vector<T>(xrow.Slice(ow + j));
                            acc[i * k + j] = a;
                            for (; ow < g.Wo; ow++) tail[i * k + j] += gyrow[ow] * xrow[ow + j];
                        }
                    }
                }
            }
            if (gw is not null)
                for (int t = 0; t < k * k; t++) gwV[(int)(c * k * k + t)] += Vector.Sum(acc[t]) + tail[t];
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

    private static (int, int, int, int, int) TransposeGeometry(Tensor x, Tensor w, int k) => BackendChecks.ConvTranspose(x, w, k);

    // z_b [(o,di,dj) × (i,j)] = wᵀ [(o,di,dj) × c] · x_b [c × (i,j)], then y[b, o, k·i+di, k·j+dj] = z_b + bias[o].
    private static void ConvTRef<T>(int B, int C, int H, int W, int O, int k, HostArray<T> x, HostArray<T> w, HostArray<T>? b, HostArray<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int HW = H * W, OKK = O * k * k;
        var z = CpuArrayPool.RentTemp<T>((long)B * OKK * HW, zero: false);
        GemmT(true, false, OKK, HW, C, 1.0, w, 0, 0, x, 0, (long)C * HW, 0.0, z, 0, (long)OKK * HW, B);
        Par.For(B * O, (long)k * k * HW, bo =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> bV = b is null ? default(Span<T>) : b; Span<T> yV = y;
            int o = bo % O, bi = bo / O;
            T bias = b is null ? T.Zero : bV[(int)o];
            for (int di = 0; di < k; di++)
                for (int dj = 0; dj < k; dj++)
                {
                    long zr = ((long)bi * OKK + (o * k + di) * k + dj) * HW;
                    for (int i = 0; i < H; i++)
                    {
                        long yr = ((long)bo * H * k + i * k + di) * W * k + dj;
                        for (int j = 0; j < W; j++) yV[(int)(yr + j * k)] = z[zr + i * W + j] + bias;
                    }
                }
        });
        CpuArrayPool.ReturnTemp(z);
    }

    private static void ConvTBackwardRef<T>(int B, int C, int H, int W, int O, int k, HostArray<T> x, HostArray<T> w, HostArray<T> gy, HostArray<T>? gx, HostArray<T>? gw, HostArray<T>? gb) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int HW = H * W, OKK = O * k * k;
        if (gb is not null) BiasGrad(gy, gb, B, O, HW * k * k);
        if (gx is null && gw is null) return;
        // gather gz_b [(o,di,dj) × (i,j)] = gyV[(int)(b, o, k·i+di, k·j+dj)]
        var gz = CpuArrayPool.RentTemp<T>((long)B * OKK * HW, zero: false);
        Par.For(B * O, (long)k * k * HW, bo =>
        {
            Span<T> xV = x; Span<T> wV = w; Span<T> gyV = gy; Span<T> gxV = gx is null ? default(Span<T>) : gx; Span<T> gwV = gw is null ? default(Span<T>) : gw; Span<T> gbV = gb is null ? default(Span<T>) : gb;
            int o = bo % O, bi = bo / O;
            for (int di = 0; di < k; di++)
                for (int dj = 0; dj < k; dj++)
                {
                    long zr = ((long)bi * OKK + (o * k + di) * k + dj) * HW;
                    for (int i = 0; i < H; i++)
                    {
                        long yr = ((long)bo * H * k + i * k + di) * W * k + dj;
                        for (int j = 0; j < W; j++) gz[zr + i * W + j] = gyV[(int)(yr + j * k)];
                    }
                }
        });
        // gx_b (C×HW) += w (C×OKK) · gz_b (OKK×HW)
        if (gx is not null) GemmT(false, false, C, HW, OKK, 1.0, w, 0, 0, gz, 0, (long)OKK * HW, 1.0, gx, 0, (long)C * HW, B);
        // gw (C×OKK) += Σ_b x_b (C×HW) · gz_bᵀ (HW×OKK)
        if (gw is not null)
            for (int bi = 0; bi < B; bi++)
                GemmT(false, true, C, OKK, HW, 1.0, x, (long)bi * C * HW, 0, gz, (long)bi * OKK * HW, 0, 1.0, gw, 0, 0, 1);
        CpuArrayPool.ReturnTemp(gz);
    }

    /// <summary>GEMM on raw arrays in the kernel's float type: the float fast path or the reference.</summary>
    internal static void GemmT<T>(bool ta, bool tb, int m, int n, int k, double alpha, HostArray<T> a, long offA, long sA, HostArray<T> b, long offB, long sB,
                                  double beta, HostArray<T> c, long offC, long sC, int batch, bool threads = true) where T : unmanaged, INumberBase<T>
    {
        if (typeof(T) == typeof(float))
            GemmF32.Run(ta, tb, m, n, k, (float)alpha, (HostArray<float>)(object)a, offA, sA, (HostArray<float>)(object)b, offB, sB, (float)beta, (HostArray<float>)(object)c, offC, sC, batch, threads);
        else GemmRef(ta, tb, m, n, k, alpha, a, offA, sA, b, offB, sB, beta, c, offC, sC, batch);
    }
}
