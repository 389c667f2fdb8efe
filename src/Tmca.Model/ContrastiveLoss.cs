using Tmca.Engine;

namespace Tmca.Model;

/// <summary>
/// The multi-level target-sensitive contrastive loss (spec §5 and §8), two ways that must agree:
/// <see cref="Fused"/>, what the model trains with (two fused ops: every level's target-weighted logits in one
/// kernel, every level's masked InfoNCE in another), and <see cref="Composed"/>, the same quantities from generic
/// ops one level at a time — the readable reference the fused kernels are tested against.
/// Both return [L+1]: the mean over the levels, then each level's loss.
/// </summary>
public static class ContrastiveLoss
{
    /// <param name="gt">B×1×S×S ground truth.</param>
    /// <param name="v">per level, unit pixel embeddings B×(h·w)×d</param>
    /// <param name="u">per level, unit text embeddings B×d</param>
    /// <param name="grids">per level, (h, w)</param>
    /// <param name="tau">τ, [1]</param>
    /// <param name="global">uniform pooling weights (alignment = global)</param>
    /// <param name="same">U8 B×B, 1 where i ≠ j share a report</param>
    public static Tensor Fused(Tensor gt, IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, IReadOnlyList<(int H, int W)> grids,
                               Tensor tau, bool global, Tensor same) =>
        Ops.MultiLevelInfoNce(Ops.TargetLogits(gt, v, u, grids, tau, global), same);

    public static Tensor Composed(Tensor gt, IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, IReadOnlyList<(int H, int W)> grids,
                                  Tensor tau, bool global, Tensor same)
    {
        var perLevel = new List<Tensor>();
        for (int l = 0; l < v.Count; l++)
        {
            Tensor target;
            using (Tape.NoGrad()) target = Ops.AvgPool2d(gt, gt.Shape[2] / grids[l].H);                  // W_l: B×1×h×w
            var omega = PoolingWeights(target, global);                                                       // ω: B×1×N
            int B = omega.Shape[0];
            var vbar = Ops.Reshape(Ops.MatMul(omega, v[l]), B, -1);                                           // v̄ = ω·V: B×d
            var z = Ops.Div(Ops.MatMul(vbar, u[l], transB: true), tau);                                       // z = v̄·Uᵀ/τ: B×B
            perLevel.Add(Ops.InfoNce(z, same));
        }
        var mean = perLevel[0];
        for (int l = 1; l < perLevel.Count; l++) mean = Ops.Add(mean, perLevel[l]);
        return Ops.Concat([Ops.Scale(mean, 1.0 / perLevel.Count), .. perLevel], 0);
    }

    /// <summary>ω_b = W_l[b]/ΣW_l[b], or uniform 1/(h·w) when the sample has no target (ΣW ≤ 1e-6) or alignment is global.
    /// Computed on the host (the reference, not the fast path).</summary>
    private static Tensor PoolingWeights(Tensor wl, bool global)
    {
        int B = wl.Shape[0], n = (int)(wl.Numel / B);
        var x = wl.ToDoubles();
        var omega = new double[x.Length];
        for (int b = 0; b < B; b++)
        {
            double s = 0;
            for (int p = 0; p < n; p++) s += x[b * n + p];
            for (int p = 0; p < n; p++) omega[b * n + p] = global || s <= 1e-6 ? 1.0 / n : x[b * n + p] / s;
        }
        return HostTensor.From(omega, [B, 1, n], wl);
    }
}
