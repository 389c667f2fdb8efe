using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// Convolutions: kernels/conv.cu (one implicit GEMM, an index map per direction) and kernels/depthwise.cu (direct,
// shared-memory tiles); CPU reference Tmca.Engine/Cpu/Conv.cs.
//   conv2d:            x: B×C×H×W, w: O×(C/g)×kh×kw, b: O → y: B×O×Ho×Wo
//   conv_transpose2d:  x: B×C×H×W, w: C×O×k×k, b: O → y: B×O×kH×kW   (kernel = stride = k, no padding)
public sealed partial class CudaBackend
{
    private const int GemmTile = 64;

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
        F32("conv2d", x, w, b, y);
        var g = Geom(x, w, stride, pad, groups);
        BackendChecks.Count(y, (long)g.B * g.O * g.Ho * g.Wo, "conv2d output");
        BackendChecks.Count(b, g.O, "conv2d bias");
        if (y.Numel == 0) return;
        if (DirectDepthwise(g))
        {
            var d = new KernelArgs(K.DepthwiseConv);
            d.Ptr(x).Ptr(w).Ptr(b).Ptr(y).I32(g.C).I32(g.H).I32(g.W).I32(g.Kh).I32(0).I32(0);
            Launch(ref d, DepthwiseGrid(g), g.ToString());
            return;
        }
        var a = new KernelArgs(K.Conv2dForward);
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
        F32("conv2d backward", x, w, gy, gx, gw, gb);
        var g = Geom(x, w, stride, pad, groups);
        BackendChecks.Count(gy, (long)g.B * g.O * g.Ho * g.Wo, "conv2d output gradient");
        BackendChecks.Count(gx, x.Numel, "conv2d input gradient"); BackendChecks.Count(gw, w.Numel, "conv2d weight gradient"); BackendChecks.Count(gb, g.O, "conv2d bias gradient");
        if (gy.Numel == 0) return;
        bool direct = DirectDepthwise(g);
        if (gx is not null)
        {
            if (direct)
            {
                var d = new KernelArgs(K.DepthwiseConv);   // gx += corr(gy, rot180(w))
                d.Ptr(gy).Ptr(w).Ptr((Tensor?)null).Ptr(gx).I32(g.C).I32(g.H).I32(g.W).I32(g.Kh).I32(1).I32(1);
                Launch(ref d, DepthwiseGrid(g), g.ToString());
            }
            else
            {
                var a = new KernelArgs(K.Conv2dBackwardData);
                a.Struct(g).Ptr(w).Ptr(gy).Ptr(gx);
                Launch(ref a, GemmGrid(g.C / g.Groups, (long)g.B * g.H * g.W, g.Groups), g.ToString());
            }
        }
        if (gw is not null)
        {
            if (direct)
            {
                var d = new KernelArgs(K.DepthwiseConvBackwardWeight);
                d.Ptr(x).Ptr(gy).Ptr(gw).I32(g.B).I32(g.C).I32(g.H).I32(g.W).I32(g.Kh);
                Launch(ref d, new Dim3((uint)g.C), g.ToString());
            }
            else
            {
                long m = g.O / g.Groups, n = (long)(g.C / g.Groups) * g.Kh * g.Kw, k = (long)g.B * g.Ho * g.Wo;
                int splits = Splits(m, n, k);
                var (part, size) = Pool.Rent((long)splits * w.Numel * 4);
                try
                {
                    var a = new KernelArgs(K.Conv2dBackwardWeight);
                    a.Struct(g).Ptr(x).Ptr(gy).Ptr(part).I32(splits);
                    Launch(ref a, GemmGrid(m, n, (long)g.Groups * splits), $"{g}, {splits} K slices");
                    AddPartials(part, gw, splits);
                }
                finally { Pool.Return(part, size); }
            }
        }
        if (gb is not null) BiasGradient(gy, gb, g.B, g.O, (long)g.Ho * g.Wo);
    }

    /// <summary>dst += Σ_s part[s] (the K slices of a weight gradient, added in a fixed order).</summary>
    private void AddPartials(ulong part, Tensor dst, int splits)
    {
        var a = new KernelArgs(K.AddSplitPartials);
        a.Ptr(part).Ptr(dst).I32(splits).I64(dst.Numel);
        Launch(ref a, K.AddSplitPartials.Grid(dst.Numel, SmCount), $"{splits} × {dst.Numel}");
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
        F32("conv_transpose2d", x, w, b, y);
        var g = TGeom(x, w, k);
        BackendChecks.Count(y, (long)g.B * g.O * g.H * k * g.W * k, "conv_transpose2d output");
        BackendChecks.Count(b, g.O, "conv_transpose2d bias");
        if (y.Numel == 0) return;
        var a = new KernelArgs(K.ConvTranspose2dForward);
        a.Struct(g).Ptr(x).Ptr(w).Ptr(b).Ptr(y);
        Launch(ref a, GemmGrid((long)g.O * k * k, (long)g.B * g.H * g.W, 1), g.ToString());
    }

    public void ConvTranspose2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int k)
    {
        F32("conv_transpose2d backward", x, w, gy, gx, gw, gb);
        var g = TGeom(x, w, k);
        BackendChecks.Count(gy, (long)g.B * g.O * g.H * k * g.W * k, "conv_transpose2d output gradient");
        BackendChecks.Count(gx, x.Numel, "conv_transpose2d input gradient"); BackendChecks.Count(gw, w.Numel, "conv_transpose2d weight gradient");
        BackendChecks.Count(gb, g.O, "conv_transpose2d bias gradient");
        if (gy.Numel == 0) return;
        if (gx is not null)
        {
            var a = new KernelArgs(K.ConvTranspose2dBackwardData);
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
                var a = new KernelArgs(K.ConvTranspose2dBackwardWeight);
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
