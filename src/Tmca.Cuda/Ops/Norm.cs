using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// Normalisation: kernels/norm.cu; CPU reference Tmca.Engine/Cpu/Norm.cs.
public sealed partial class CudaBackend
{
    // x, y: outer×C×inner, normalised over C (inner = 1: last axis, a warp per row; inner > 1: channels-first, a thread
    // per position, LayerNormChannelsFirst); w, b: C or null; mean, rstd: outer×inner.
    public void LayerNorm(Tensor x, Tensor? w, Tensor? b, Tensor y, Tensor mean, Tensor rstd, int outer, int c, int inner, double eps)
    {
        RequireF32("layer norm", x, w, b, y, mean, rstd);
        BackendChecks.Cover(x, outer, c, inner, "layer norm");
        BackendChecks.Same(x, y, "layer norm"); BackendChecks.Count(w, c, "layer norm weight"); BackendChecks.Count(b, c, "layer norm bias");
        BackendChecks.Count(mean, (long)outer * inner, "layer norm mean"); BackendChecks.Count(rstd, (long)outer * inner, "layer norm rstd");
        if (x.Numel == 0) return;
        if (inner != 1) { LayerNormChannelsFirst(x, w, b, y, mean, rstd, outer, c, inner, eps); return; }
        var a = new KernelArgs(KernelTable.LayerNorm);
        a.Ptr(x).Ptr(w).Ptr(b).Ptr(y).Ptr(mean).Ptr(rstd).I64(outer).I32(c).F32(eps);
        Launch(ref a, KernelTable.LayerNorm.Grid(outer, SmCount), $"{outer}×{c}");
    }

    // channels-first: a thread per (outer, inner) position, looping over C
    private void LayerNormChannelsFirst(Tensor x, Tensor? w, Tensor? b, Tensor y, Tensor mean, Tensor rstd, int outer, int c, int inner, double eps)
    {
        long positions = (long)outer * inner;
        var a = new KernelArgs(KernelTable.LayerNormChannelsFirst);
        a.Ptr(x).Ptr(w).Ptr(b).Ptr(y).Ptr(mean).Ptr(rstd).I64(outer).I32(c).I64(inner).F32(eps);
        Launch(ref a, KernelTable.LayerNormChannelsFirst.Grid(positions, SmCount), $"{outer}×{c}×{inner}");
    }

    // gx (+)= r·(g − mean(g) − x̂·mean(g·x̂)), g = gy·w; gw (+)= Σ gy·x̂, gb (+)= Σ gy (deterministic two-stage sums);
    // accumulate = false assigns fresh gradients
    public void LayerNormBackward(Tensor x, Tensor? w, Tensor mean, Tensor rstd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int outer, int c, int inner, bool accumulate)
    {
        RequireF32("layer norm backward", x, w, mean, rstd, gy, gx, gw, gb);
        BackendChecks.Cover(x, outer, c, inner, "layer norm backward");
        BackendChecks.Same(x, gy, "layer norm backward"); BackendChecks.Count(gx, x.Numel, "layer norm input gradient");
        BackendChecks.Count(w, c, "layer norm weight"); BackendChecks.Count(gw, c, "layer norm weight gradient"); BackendChecks.Count(gb, c, "layer norm bias gradient");
        BackendChecks.Count(mean, (long)outer * inner, "layer norm mean"); BackendChecks.Count(rstd, (long)outer * inner, "layer norm rstd");
        long rows = outer;
        if (rows == 0 || c == 0 || inner == 0) return;
        int acc = accumulate ? 1 : 0;
        if (inner != 1) { LayerNormChannelsFirstBackward(x, w, mean, rstd, gy, gx, gw, gb, outer, c, inner, acc); return; }
        if (gx is not null)
        {
            var a = new KernelArgs(KernelTable.LayerNormBackwardDx);
            a.Ptr(x).Ptr(w).Ptr(mean).Ptr(rstd).Ptr(gy).Ptr(gx).I64(rows).I32(c).I32(acc);
            Launch(ref a, KernelTable.LayerNormBackwardDx.Grid(rows, SmCount), $"{rows}×{c}");
        }
        if (gw is null && gb is null) return;
        long perChunk = Math.Max(32, (rows + SmCount * 4 - 1) / (SmCount * 4));
        int chunks = (int)((rows + perChunk - 1) / perChunk);
        var (partW, sizeW) = Pool.Rent((long)chunks * c * 4);
        var (partB, sizeB) = Pool.Rent((long)chunks * c * 4);
        try
        {
            var p = new KernelArgs(KernelTable.LayerNormBackwardDwDbPartial);
            p.Ptr(x).Ptr(mean).Ptr(rstd).Ptr(gy).Ptr(partW).Ptr(partB).I64(rows).I32(c).I64(perChunk);
            Launch(ref p, new Dim3((uint)((c + 31) / 32), (uint)chunks), $"{rows}×{c}");
            var f = new KernelArgs(KernelTable.LayerNormBackwardDwDbFinal);
            f.Ptr(partW).Ptr(partB).Ptr(gw).Ptr(gb).I32(chunks).I32(c).I32(acc);
            Launch(ref f, KernelTable.LayerNormBackwardDwDbFinal.Grid(c, SmCount), $"{chunks}×{c}");
        }
        finally { Pool.Return(partW, sizeW); Pool.Return(partB, sizeB); }
    }

    // channels-first: gx a thread per position; gw, gb one block per channel, in a fixed order
    private void LayerNormChannelsFirstBackward(Tensor x, Tensor? w, Tensor mean, Tensor rstd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int outer, int c, int inner, int acc)
    {
        long positions = (long)outer * inner;
        if (gx is not null)
        {
            var d = new KernelArgs(KernelTable.LayerNormChannelsFirstBackwardDx);
            d.Ptr(x).Ptr(w).Ptr(mean).Ptr(rstd).Ptr(gy).Ptr(gx).I64(outer).I32(c).I64(inner).I32(acc);
            Launch(ref d, KernelTable.LayerNormChannelsFirstBackwardDx.Grid(positions, SmCount), $"{outer}×{c}×{inner}");
        }
        if (gw is null && gb is null) return;
        var p = new KernelArgs(KernelTable.LayerNormChannelsFirstBackwardDwDb);
        p.Ptr(x).Ptr(mean).Ptr(rstd).Ptr(gy).Ptr(gw).Ptr(gb).I64(outer).I32(c).I64(inner).I32(acc);
        Launch(ref p, new Dim3((uint)c), $"{outer}×{c}×{inner}");
    }

    // x: B×C×HW; statistics per channel over B·HW (one block per channel); w, b, saved and running stats: C
    public void BatchNormTrain(Tensor x, Tensor w, Tensor b, Tensor y, Tensor saveMean, Tensor saveInvStd, Tensor? runMean, Tensor? runVar, double eps, double momentum)
    {
        RequireF32("batch norm", x, w, b, y, saveMean, saveInvStd, runMean, runVar);
        var (B, C, HW) = BnGeometry(x, y, w, b, saveMean, saveInvStd, runMean, runVar);
        if ((long)B * HW < 2) throw new ArgumentException($"batch norm in training needs more than one value per channel, got x {Shape.Format(x.Shape)}");
        var a = new KernelArgs(KernelTable.BatchNormTrain);
        a.Ptr(x).Ptr(w).Ptr(b).Ptr(y).Ptr(saveMean).Ptr(saveInvStd).Ptr(runMean).Ptr(runVar).I32(B).I32(C).I64(HW).F32(eps).F32(momentum);
        Launch(ref a, new Dim3((uint)C), $"{B}×{C}×{HW}");
    }

    public void BatchNormEval(Tensor x, Tensor w, Tensor b, Tensor y, Tensor runMean, Tensor runVar, double eps)
    {
        RequireF32("batch norm (evaluation)", x, w, b, y, runMean, runVar);
        var (B, C, HW) = BnGeometry(x, y, w, b, runMean, runVar);
        if (x.Numel == 0) return;
        var a = new KernelArgs(KernelTable.BatchNormEval);
        a.Ptr(x).Ptr(w).Ptr(b).Ptr(y).Ptr(runMean).Ptr(runVar).I32(C).I64(HW).I64(x.Numel).F32(eps);
        Launch(ref a, KernelTable.BatchNormEval.Grid(x.Numel, SmCount), $"{B}×{C}×{HW}");
    }

    // gx += w·r/N·(N·gy − Σgy − x̂·Σ(gy·x̂)), gw += Σ gy·x̂, gb += Σ gy
    public void BatchNormBackward(Tensor x, Tensor w, Tensor saveMean, Tensor saveInvStd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb)
    {
        RequireF32("batch norm backward", x, w, saveMean, saveInvStd, gy, gx, gw, gb);
        var (B, C, HW) = BnGeometry(x, gy, w, saveMean, saveInvStd, gw, gb);
        BackendChecks.Same(x, gy, "batch norm backward"); BackendChecks.Count(gx, x.Numel, "batch norm input gradient");
        if (x.Numel == 0) return;
        var a = new KernelArgs(KernelTable.BatchNormBackward);
        a.Ptr(x).Ptr(w).Ptr(saveMean).Ptr(saveInvStd).Ptr(gy).Ptr(gx).Ptr(gw).Ptr(gb).I32(B).I32(C).I64(HW);
        Launch(ref a, new Dim3((uint)C), $"{B}×{C}×{HW}");
    }

    /// <summary>x: B×C×… → (B, C, HW); <paramref name="sameAsX"/> (the output, or the output gradient) holds x's count,
    /// every <paramref name="perChannel"/> tensor given (weight, bias, saved and running statistics, their gradients) C values.</summary>
    private static (int B, int C, long HW) BnGeometry(Tensor x, Tensor sameAsX, params Tensor?[] perChannel)
    {
        if (x.Rank < 2) throw new ArgumentException($"batch norm: x {Shape.Format(x.Shape)} needs a channel axis");
        int B = x.Shape[0], C = x.Shape[1];
        long hw = 1;
        for (int i = 2; i < x.Rank; i++) hw *= x.Shape[i];
        BackendChecks.Count(sameAsX, x.Numel, "batch norm output (or its gradient)");
        foreach (var t in perChannel) BackendChecks.Count(t, C, "batch norm per-channel tensor");
        return (B, C, hw);
    }
}
