using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// Normalisation: kernels/norm.cu; CPU reference Tmca.Engine/Cpu/Norm.cs.
public sealed partial class CudaBackend
{
    // x, y: outer×C (inner = 1: last axis); w, b: C or null; mean, rstd: outer. One warp per row.
    public void LayerNorm(Tensor x, Tensor? w, Tensor? b, Tensor y, Tensor mean, Tensor rstd, int outer, int c, int inner, double eps)
    {
        if (inner != 1) throw Unsupported("layer norm over a non-last axis (channels-first)");
        F32("layer norm", x, w, b, y, mean, rstd);
        BackendChecks.Cover(x, outer, c, inner, "layer norm");
        BackendChecks.Same(x, y, "layer norm"); BackendChecks.Count(w, c, "layer norm weight"); BackendChecks.Count(b, c, "layer norm bias");
        BackendChecks.Count(mean, outer, "layer norm mean"); BackendChecks.Count(rstd, outer, "layer norm rstd");
        if (x.Numel == 0) return;
        var a = new KernelArgs(K.LayerNorm);
        a.Ptr(x).Ptr(w).Ptr(b).Ptr(y).Ptr(mean).Ptr(rstd).I64(outer).I32(c).F32(eps);
        Launch(ref a, K.LayerNorm.Grid(outer, SmCount), $"{outer}×{c}");
    }

    // gx += r·(g − mean(g) − x̂·mean(g·x̂)), g = gy·w; gw += Σ gy·x̂, gb += Σ gy (deterministic two-stage sums)
    public void LayerNormBackward(Tensor x, Tensor? w, Tensor mean, Tensor rstd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int outer, int c, int inner)
    {
        if (inner != 1) throw Unsupported("layer norm backward over a non-last axis (channels-first)");
        F32("layer norm backward", x, w, mean, rstd, gy, gx, gw, gb);
        BackendChecks.Cover(x, outer, c, inner, "layer norm backward");
        BackendChecks.Same(x, gy, "layer norm backward"); BackendChecks.Count(gx, x.Numel, "layer norm input gradient");
        BackendChecks.Count(w, c, "layer norm weight"); BackendChecks.Count(gw, c, "layer norm weight gradient"); BackendChecks.Count(gb, c, "layer norm bias gradient");
        BackendChecks.Count(mean, outer, "layer norm mean"); BackendChecks.Count(rstd, outer, "layer norm rstd");
        long rows = outer;
        if (rows == 0 || c == 0) return;
        if (gx is not null)
        {
            var a = new KernelArgs(K.LayerNormBackwardDx);
            a.Ptr(x).Ptr(w).Ptr(mean).Ptr(rstd).Ptr(gy).Ptr(gx).I64(rows).I32(c);
            Launch(ref a, K.LayerNormBackwardDx.Grid(rows, SmCount), $"{rows}×{c}");
        }
        if (gw is null && gb is null) return;
        long perChunk = Math.Max(32, (rows + SmCount * 4 - 1) / (SmCount * 4));
        int chunks = (int)((rows + perChunk - 1) / perChunk);
        var (partW, sizeW) = Pool.Rent((long)chunks * c * 4);
        var (partB, sizeB) = Pool.Rent((long)chunks * c * 4);
        try
        {
            var p = new KernelArgs(K.LayerNormBackwardDwDbPartial);
            p.Ptr(x).Ptr(mean).Ptr(rstd).Ptr(gy).Ptr(partW).Ptr(partB).I64(rows).I32(c).I64(perChunk);
            Launch(ref p, new Dim3((uint)((c + 31) / 32), (uint)chunks), $"{rows}×{c}");
            var f = new KernelArgs(K.LayerNormBackwardDwDbFinal);
            f.Ptr(partW).Ptr(partB).Ptr(gw).Ptr(gb).I32(chunks).I32(c);
            Launch(ref f, K.LayerNormBackwardDwDbFinal.Grid(c, SmCount), $"{chunks}×{c}");
        }
        finally { Pool.Return(partW, sizeW); Pool.Return(partB, sizeB); }
    }

    public void BatchNormTrain(Tensor x, Tensor w, Tensor b, Tensor y, Tensor saveMean, Tensor saveInvStd, Tensor? runMean, Tensor? runVar, double eps, double momentum) => throw Unsupported("batch norm");
    public void BatchNormEval(Tensor x, Tensor w, Tensor b, Tensor y, Tensor runMean, Tensor runVar, double eps) => throw Unsupported("batch norm (evaluation)");
    public void BatchNormBackward(Tensor x, Tensor w, Tensor saveMean, Tensor saveInvStd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb) => throw Unsupported("batch norm backward");
}
