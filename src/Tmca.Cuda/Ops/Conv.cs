using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// Convolutions: kernels/conv.cu (one implicit GEMM, an index map per direction) and kernels/depthwise.cu (direct,
// shared-memory tiles); CPU reference Tmca.Engine/Cpu/Conv.cs. Which path runs:
//   1×1, stride 1, no padding, one group (ConvNeXt's pointwise MLPs, the head) in TF32 mode: strided-batched GEMMs
//     through the device's GEMM (cuBLAS on TF32 tensor cores); in FP32 mode they stay on the FP32 SIMT implicit GEMM
//     (the FP32 path is the reference path and does not change with TF32 work);
//   other dense, grouped and transposed convolutions: the implicit GEMM on TF32 tensor cores (mma.sync) in TF32
//     mode on sm_80+, the FP32 SIMT implicit GEMM otherwise;
//   depthwise (groups = C = O, stride 1, odd k ≤ 7, "same" padding): depthwise.cu in both modes.
//   conv2d:            x: B×C×H×W, w: O×(C/g)×kh×kw, b: O → y: B×O×Ho×Wo
//   conv_transpose2d:  x: B×C×H×W, w: C×O×k×k, b: O → y: B×O×kH×kW   (kernel = stride = k, no padding)
public sealed partial class CudaBackend
{
    private const int GemmTile = 64;

    /// <summary>The tensor-core implicit GEMM: TF32 mode on a device with mma.sync TF32 (sm_80 and later).</summary>
    private bool TensorCoreConv => Tf32 && Arch >= 80;

    /// <summary>The most bytes of per-sample weight-gradient partials a 1×1 convolution's backward holds at once.</summary>
    private const long PointwisePartialBytes = 64L << 20;

    /// <summary>1×1, stride 1, no padding, one group: per sample a plain matrix product (Y_b = W·X_b).</summary>
    private static bool Pointwise(ConvGeom g) => g.Kh == 1 && g.Kw == 1 && g.Stride == 1 && g.Pad == 0 && g.Groups == 1;

    private static ConvGeom Geom(Tensor x, Tensor w, int stride, int pad, int groups)
    {
        var (B, C, H, W, O, kh, kw, Ho, Wo) = BackendChecks.Conv(x, w, stride, pad, groups);
        return new ConvGeom { B = B, C = C, H = H, W = W, O = O, Kh = kh, Kw = kw, Ho = Ho, Wo = Wo, Stride = stride, Pad = pad, Groups = groups };
    }

    /// <summary>The depthwise kernels' case: groups = C = O, stride 1, a square odd kernel up to 7, "same" padding.</summary>
    private static bool DirectDepthwise(ConvGeom g) =>
        g.Groups == g.C && g.Groups == g.O && g.Stride == 1 && g.Kh == g.Kw && g.Kh % 2 == 1 && g.Kh <= 7 && g.Pad == g.Kh / 2;

    private static Dim3 GemmGrid(long m, long n, long z)
    {
        if ((n + GemmTile - 1) / GemmTile > int.MaxValue || (m + GemmTile - 1) / GemmTile > 65535 || z > 65535)
            throw new NotSupportedException($"implicit GEMM of {m}×{n} ({z} groups/splits) exceeds a grid");
        return new Dim3((uint)((n + GemmTile - 1) / GemmTile), (uint)((m + GemmTile - 1) / GemmTile), (uint)z);
    }

    /// <summary>Slices of K for a weight gradient: enough blocks to fill the device, at least 1024 products a slice.</summary>
    private int Splits(long m, long n, long k)
    {
        long tiles = ((m + GemmTile - 1) / GemmTile) * ((n + GemmTile - 1) / GemmTile);
        long want = Math.Max(1, SmCount * 2 / Math.Max(1, tiles));
        return (int)Math.Clamp(Math.Min(want, k / 1024), 1, 64);
    }

    // y = conv(x, w) + b
    public void Conv2d(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int pad, int groups)
    {
        RequireF32("conv2d", x, w, b, y);
        var g = Geom(x, w, stride, pad, groups);
        BackendChecks.Count(y, (long)g.B * g.O * g.Ho * g.Wo, "conv2d output");
        BackendChecks.Count(b, g.O, "conv2d bias");
        if (y.Numel == 0) return;
        if (DirectDepthwise(g))
        {
            var d = new KernelArgs(KernelTable.DepthwiseConv);
            d.Ptr(x).Ptr(w).Ptr(b).Ptr(y).I32(g.C).I32(g.H).I32(g.W).I32(g.Kh).I32(0).I32(0);
            Launch(ref d, DepthwiseGrid(g), g.ToString());
            return;
        }
        if (Tf32 && Pointwise(g)) { PointwiseForward(g, x, w, b, y); return; }
        var a = new KernelArgs(TensorCoreConv ? KernelTable.Conv2dForwardTf32 : KernelTable.Conv2dForward);
        a.Struct(g).Ptr(x).Ptr(w).Ptr(b).Ptr(y);
        Launch(ref a, GemmGrid(g.O / g.Groups, (long)g.B * g.Ho * g.Wo, g.Groups), g.ToString());
    }

    // every (plane, tile) in x: y would be B·C, over the 65,535 limit for C = 768 from batch 86
    private static Dim3 DepthwiseGrid(ConvGeom g)
    {
        long blocks = (long)((g.W + 15) / 16) * ((g.H + 15) / 16) * g.B * g.C;
        if (blocks > int.MaxValue) throw new NotSupportedException($"depthwise convolution of {g}: {blocks} tiles exceed a grid");
        return new Dim3((uint)blocks);
    }

    // gx += conv_data(gy, w); gw += Σ gy ⊗ x; gb += Σ gy
    public void Conv2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int stride, int pad, int groups)
    {
        RequireF32("conv2d backward", x, w, gy, gx, gw, gb);
        var g = Geom(x, w, stride, pad, groups);
        BackendChecks.Count(gy, (long)g.B * g.O * g.Ho * g.Wo, "conv2d output gradient");
        BackendChecks.Count(gx, x.Numel, "conv2d input gradient"); BackendChecks.Count(gw, w.Numel, "conv2d weight gradient"); BackendChecks.Count(gb, g.O, "conv2d bias gradient");
        if (gy.Numel == 0) return;
        bool direct = DirectDepthwise(g);
        if (Tf32 && Pointwise(g))
        {
            PointwiseBackward(g, x, w, gy, gx, gw);
            if (gb is not null) BiasGradient(gy, gb, g.B, g.O, (long)g.Ho * g.Wo);
            return;
        }
        if (gx is not null)
        {
            if (direct)
            {
                var d = new KernelArgs(KernelTable.DepthwiseConv);   // gx += corr(gy, rot180(w))
                d.Ptr(gy).Ptr(w).Ptr((Tensor?)null).Ptr(gx).I32(g.C).I32(g.H).I32(g.W).I32(g.Kh).I32(1).I32(1);
                Launch(ref d, DepthwiseGrid(g), g.ToString());
            }
            else
            {
                var a = new KernelArgs(TensorCoreConv ? KernelTable.Conv2dBackwardDataTf32 : KernelTable.Conv2dBackwardData);
                a.Struct(g).Ptr(w).Ptr(gy).Ptr(gx);
                Launch(ref a, GemmGrid(g.C / g.Groups, (long)g.B * g.H * g.W, g.Groups), g.ToString());
            }
        }
        if (gw is not null)
        {
            if (direct)
            {
                DepthwiseWeightGradient(g, x, gy, gw);
            }
            else
            {
                long m = g.O / g.Groups, n = (long)(g.C / g.Groups) * g.Kh * g.Kw, k = (long)g.B * g.Ho * g.Wo;
                int splits = Splits(m, n, k);
                var (part, size) = Pool.Rent((long)splits * w.Numel * 4);
                try
                {
                    var a = new KernelArgs(TensorCoreConv ? KernelTable.Conv2dBackwardWeightTf32 : KernelTable.Conv2dBackwardWeight);
                    a.Struct(g).Ptr(x).Ptr(gy).Ptr(part).I32(splits);
                    Launch(ref a, GemmGrid(m, n, (long)g.Groups * splits), $"{g}, {splits} K slices");
                    AddPartials(part, gw, splits);
                }
                finally { Pool.Return(part, size); }
            }
        }
        if (gb is not null) BiasGradient(gy, gb, g.B, g.O, (long)g.Ho * g.Wo);
    }

    /// <summary>gw += Σ gy ⊗ x for a depthwise convolution: C × splits blocks, the splits chosen so that the grid fills
    /// every SM twice over while each block still has ≥ 4,096 positions to sum (fewer channels than SMs at ConvNeXt's
    /// first stage); partials summed in a fixed order after, when there is more than one split.</summary>
    private void DepthwiseWeightGradient(ConvGeom g, Tensor x, Tensor gy, Tensor gw)
    {
        int splits = DepthwiseWeightSplits(g, SmCount);
        var d = new KernelArgs(KernelTable.DepthwiseConvBackwardWeight);
        if (splits == 1)
        {
            d.Ptr(x).Ptr(gy).Ptr(gw).I32(g.B).I32(g.C).I32(g.H).I32(g.W).I32(g.Kh).I32(1);
            Launch(ref d, new Dim3((uint)g.C), g.ToString());
            return;
        }
        var (part, size) = Pool.Rent((long)splits * gw.Numel * 4);
        try
        {
            d.Ptr(x).Ptr(gy).Ptr(part).I32(g.B).I32(g.C).I32(g.H).I32(g.W).I32(g.Kh).I32(splits);
            Launch(ref d, new Dim3((uint)g.C, (uint)splits), $"{g}, {splits} splits");
            AddPartials(part, gw, splits);
        }
        finally { Pool.Return(part, size); }
    }

    internal static int DepthwiseWeightSplits(ConvGeom g, int smCount)
    {
        long positions = (long)g.B * g.H * g.W;
        long wanted = (2L * smCount + g.C - 1) / g.C, most = Math.Max(1, positions / 4096);
        return (int)Math.Clamp(Math.Min(wanted, most), 1, 64);
    }

    // ---- 1×1 convolutions as strided-batched GEMMs (x_b: C×P, w: O×C, y_b: O×P with P = H·W) ----

    // y_b = W·x_b (+ b broadcast over P): the bias is written first and the GEMM adds onto it (β = 1), one pass fewer
    // than a separate bias add after it.
    private void PointwiseForward(ConvGeom g, Tensor x, Tensor w, Tensor? b, Tensor y)
    {
        int hw = g.H * g.W;
        if (b is not null)
        {
            using var bias = b.View(g.O, 1);
            using var target = y.View(g.B, g.O, hw);
            BroadcastTo(bias, target, accumulate: false);
        }
        Gemm(false, false, g.O, hw, g.C, 1.0, w, 0, 0, x, 0, (long)g.C * hw, b is null ? 0.0 : 1.0, y, 0, (long)g.O * hw, g.B);
    }

    // gx_b += Wᵀ·gy_b (one batched GEMM, β = 1: the backward accumulates); gw += Σ_b gy_b·x_bᵀ. The batch is not
    // contiguous along K (B×O×P), so gw takes whichever of two routes moves fewer bytes:
    //  - per-sample products into partials (batched GEMM, groups of samples accumulated with β = 1 while the partials
    //    would pass PointwisePartialBytes), then one fixed-order sum: cheap where the weight is small beside the
    //    activations (early stages: many pixels, few channels);
    //  - x and gy permuted to C×(B·P) and O×(B·P), then ONE GEMM with K = B·P: cheap where the weight is large beside
    //    the activations (late stages: ConvNeXt-T stage 3's 3072×768 weight is 9.4 MB against 4.8 MB of x, and the
    //    partials route rewrote six 9.4 MB partials six times, ≈ 0.7 GB for one weight gradient).
    private void PointwiseBackward(ConvGeom g, Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw)
    {
        int hw = g.H * g.W;
        long xs = (long)g.C * hw, ys = (long)g.O * hw;
        if (gx is not null) Gemm(true, false, g.C, hw, g.O, 1.0, w, 0, 0, gy, 0, ys, 1.0, gx, 0, xs, g.B);
        if (gw is null) return;
        if (g.B == 1) { Gemm(false, true, g.O, g.C, hw, 1.0, gy, 0, ys, x, 0, xs, 1.0, gw, 0, 0, 1); return; }
        if (PointwiseWeightGradientByPermute(g, w.Numel)) { PointwiseWeightGradientPermuted(g, x, gy, gw); return; }
        int slots = PointwisePartialSlots(g, w.Numel);
        var (part, size) = Pool.Rent((long)slots * w.Numel * 4);
        try
        {
            // round r: samples r·slots … r·slots + slots − 1 into partials 0 … slots − 1
            for (int r = 0; r * slots < g.B; r++)
            {
                int n = Math.Min(slots, g.B - r * slots);
                long first = (long)r * slots;
                PartialGemm(new GemmCall(false, true, g.O, g.C, hw, 1f, P(gy) + (ulong)(first * ys * 4), ys, P(x) + (ulong)(first * xs * 4), xs,
                                         r == 0 ? 0f : 1f, part, w.Numel, n, Tf32), $"1×1 weight gradient, samples {first}…{first + n - 1}");
            }
            AddPartials(part, gw, slots);
        }
        finally { Pool.Return(part, size); }
    }

    private static int PointwisePartialSlots(ConvGeom g, long weightNumel) =>
        (int)Math.Clamp(PointwisePartialBytes / Math.Max(1, weightNumel * 4), 1, g.B);

    /// <summary>True when permuting x and gy (each read once and written once) moves fewer bytes than the partials:
    /// round 0 writes its partials, every later sample reads and rewrites one, the sum reads them all.</summary>
    internal static bool PointwiseWeightGradientByPermute(ConvGeom g, long weightNumel)
    {
        if (g.B == 1) return false;   // one sample: one plain GEMM into gw, no partials
        long slots = PointwisePartialSlots(g, weightNumel);
        long partialElements = weightNumel * (slots + 2 * (g.B - slots) + slots);
        long permuteElements = 2L * g.B * (g.C + g.O) * g.H * g.W;
        return permuteElements < partialElements;
    }

    // gw[O×C] += gyᵀ'·x' with x' = x permuted B×C×P → C×B×P and gy' = gy permuted B×O×P → O×B×P: one GEMM, K = B·P.
    private void PointwiseWeightGradientPermuted(ConvGeom g, Tensor x, Tensor gy, Tensor gw)
    {
        int hw = g.H * g.W;
        using var x3 = x.View(g.B, g.C, hw);
        using var gy3 = gy.View(g.B, g.O, hw);
        using var xt = Tensor.Empty([g.C, g.B, hw], DType.F32, this);
        using var gyt = Tensor.Empty([g.O, g.B, hw], DType.F32, this);
        Permute(x3, [1, 0, 2], xt, accumulate: false);
        Permute(gy3, [1, 0, 2], gyt, accumulate: false);
        Gemm(false, true, g.O, g.C, g.B * hw, 1.0, gyt, 0, 0, xt, 0, 0, 1.0, gw, 0, 0, 1);
    }

    /// <summary>A GEMM into pool memory (no tensor around it), counted and traced like <see cref="Gemm"/>.</summary>
    private void PartialGemm(in GemmCall c, string what)
    {
        ThrowIfPoisoned();
        Launches++;
        if (Trace) TraceWriter.WriteLine($"[cuda] {Launches,6} {"gemm" + (c.Tf32 ? " (tf32)" : ""),-36} {"",-30} {Profiler.CurrentOp ?? "-",-22} m={c.M} n={c.N} k={c.K} batch={c.Batch} ta={c.TransA} tb={c.TransB} ({what})");
        Runtime.Gemm(c);
        if (SyncEveryLaunch) Runtime.Synchronize();
    }

    /// <summary>dst += Σ_s part[s] (the K slices of a weight gradient, added in a fixed order).</summary>
    private void AddPartials(ulong part, Tensor dst, int splits)
    {
        var a = new KernelArgs(KernelTable.AddSplitPartials);
        a.Ptr(part).Ptr(dst).I32(splits).I64(dst.Numel);
        Launch(ref a, KernelTable.AddSplitPartials.Grid(dst.Numel, SmCount), $"{splits} × {dst.Numel}");
    }

    /// <summary>gb[o] += Σ_(b,p) gy[b, o, p]: the sum-to kernel on B×O×P viewed down to O×1.</summary>
    private void BiasGradient(Tensor gy, Tensor gb, int B, int O, long P)
    {
        using var view = gy.View(B, O, (int)P);
        using var target = gb.View(O, 1);
        SumTo(view, target, accumulate: true);
    }

    // y[b, o, k·i + di, k·j + dj] = b[o] + Σ_c w[c, o, di, dj]·x[b, c, i, j]
    public void ConvTranspose2d(Tensor x, Tensor w, Tensor? b, Tensor y, int k)
    {
        RequireF32("conv_transpose2d", x, w, b, y);
        var g = TGeom(x, w, k);
        BackendChecks.Count(y, (long)g.B * g.O * g.H * k * g.W * k, "conv_transpose2d output");
        BackendChecks.Count(b, g.O, "conv_transpose2d bias");
        if (y.Numel == 0) return;
        var a = new KernelArgs(TensorCoreConv ? KernelTable.ConvTranspose2dForwardTf32 : KernelTable.ConvTranspose2dForward);
        a.Struct(g).Ptr(x).Ptr(w).Ptr(b).Ptr(y);
        Launch(ref a, GemmGrid((long)g.O * k * k, (long)g.B * g.H * g.W, 1), g.ToString());
    }

    public void ConvTranspose2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int k)
    {
        RequireF32("conv_transpose2d backward", x, w, gy, gx, gw, gb);
        var g = TGeom(x, w, k);
        BackendChecks.Count(gy, (long)g.B * g.O * g.H * k * g.W * k, "conv_transpose2d output gradient");
        BackendChecks.Count(gx, x.Numel, "conv_transpose2d input gradient"); BackendChecks.Count(gw, w.Numel, "conv_transpose2d weight gradient");
        BackendChecks.Count(gb, g.O, "conv_transpose2d bias gradient");
        if (gy.Numel == 0) return;
        if (gx is not null)
        {
            var a = new KernelArgs(TensorCoreConv ? KernelTable.ConvTranspose2dBackwardDataTf32 : KernelTable.ConvTranspose2dBackwardData);
            a.Struct(g).Ptr(w).Ptr(gy).Ptr(gx);
            Launch(ref a, GemmGrid(g.C, (long)g.B * g.H * g.W, 1), g.ToString());
        }
        if (gw is not null)
        {
            long m = g.C, n = (long)g.O * k * k, kk = (long)g.B * g.H * g.W;
            int splits = Splits(m, n, kk);
            var (part, size) = Pool.Rent((long)splits * w.Numel * 4);
            try
            {
                var a = new KernelArgs(TensorCoreConv ? KernelTable.ConvTranspose2dBackwardWeightTf32 : KernelTable.ConvTranspose2dBackwardWeight);
                a.Struct(g).Ptr(x).Ptr(gy).Ptr(part).I32(splits);
                Launch(ref a, GemmGrid(m, n, splits), $"{g}, {splits} K slices");
                AddPartials(part, gw, splits);
            }
            finally { Pool.Return(part, size); }
        }
        if (gb is not null) BiasGradient(gy, gb, g.B, g.O, (long)g.H * k * g.W * k);
    }

    private static ConvGeom TGeom(Tensor x, Tensor w, int k)
    {
        var (B, C, H, W, O) = BackendChecks.ConvTranspose(x, w, k);
        return new ConvGeom { B = B, C = C, H = H, W = W, O = O, Kh = k, Kw = k, Ho = H * k, Wo = W * k, Stride = k, Pad = 0, Groups = 1 };
    }
}
