namespace Tmca.Engine;

// TMCA's fused ops (spec §5, §8): one op, one forward primitive and one backward primitive for all levels.
public static partial class Ops
{
    /// <summary>
    /// Target-weighted contrastive logits of every level at once: gt B×1×S×S, per level the unit pixel embeddings
    /// v[l] (B×h·w×d) on grid grids[l] = (h, w) and unit text embeddings u[l] (B×d), τ [1] → z: L×B×B with
    /// z[l,i,j] = ⟨v̄_l[i], u[l][j]⟩/τ, v̄ the target-weighted mean of i's pixel vectors (uniform when
    /// <paramref name="global"/> or the sample has no target). Differentiable in v, u and τ (not gt).
    /// </summary>
    public static Tensor TargetLogits(Tensor gt, IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, IReadOnlyList<(int H, int W)> grids, Tensor tau, bool global)
    {
        int L = v.Count, B = gt.Shape[0];
        if (grids.Count != L) throw new ArgumentException("target logits: one grid per level");
        var be = gt.Backend;
        var omega = grids.Select(g => New(gt, B, g.H, g.W)).ToArray();
        var vbar = v.Select(x => New(x, B, x.Shape[^1])).ToArray();
        var z = New(gt, L, B, B);
        Op.Run("target_logits", be, z, Tape.Wants([.. v, .. u, tau]),
            () => be.TargetLogits(gt, v, u, tau, global, omega, vbar, z),
            () => be.TargetLogitsBackward(v, u, tau, omega, vbar, z, z.Grad!, v.Select(G).ToArray(), u.Select(G).ToArray(), G(tau)),
            saves: [.. v, .. u, tau, z], scratch: [.. omega, .. vbar]);
        return z;
    }

    /// <summary>
    /// Symmetric masked InfoNCE of every level of z (L×B×B) at once → [L+1]: the mean over levels, then each level's.
    /// <paramref name="sameReport"/> (U8 B×B) marks off-diagonal pairs that share a report (left out of both denominators).
    /// </summary>
    public static Tensor MultiLevelInfoNce(Tensor z, Tensor sameReport)
    {
        var be = z.Backend;
        var loss = New(z, z.Shape[0] + 1);
        var pRow = NewLike(z);
        var pCol = NewLike(z);
        Op.Run("infonce_multilevel", be, loss, Tape.Wants(z),
            () => be.MultiLevelInfoNce(z, sameReport, loss, pRow, pCol),
            () => be.MultiLevelInfoNceBackward(pRow, pCol, loss.Grad!, z.GradOrZeros()), scratch: [pRow, pCol]);
        return loss;
    }

    /// <summary>The outputs of <see cref="SimilarityLgte"/>: the maps are B×1×h×w values; FOut and Pix are differentiable.</summary>
    public sealed record LgteOutputs(Tensor Similarity, Tensor Logits, Tensor Attention, Tensor FOut, Tensor? Pix);

    /// <summary>
    /// One level's similarity map S = ⟨v, u⟩, gate A = σ(a·S + b), enhanced features F̃ = F ⊙ (1 + γ·A) and — with a
    /// <paramref name="target"/> W (B×1×h×w) — the pixel-alignment loss mean BCE(a·S + b, W), in one fused op:
    /// gradients reach v, u, f, a, b and γ from F̃ and from the loss. The maps S, logits and A are values (B×1×h×w).
    /// </summary>
    public static LgteOutputs SimilarityLgte(Tensor v, Tensor u, Tensor f, Tensor a, Tensor b, Tensor gamma, Tensor? target)
    {
        var be = f.Backend;
        int B = f.Shape[0], h = f.Shape[2], w = f.Shape[3];
        var s = New(f, B, 1, h, w); var logits = New(f, B, 1, h, w); var att = New(f, B, 1, h, w);
        var fOut = NewLike(f);
        var pix = target is null ? null : New(f, 1);
        // One op under one name: the pixel loss is part of it (its backward is folded into the fused backward).
        Op.Run("similarity_lgte", be, pix is null ? [fOut] : [fOut, pix], Tape.Wants([v, u, f, a, b, gamma]), () =>
            {
                be.SimilarityLgte(v, u, f, a, b, gamma, s, logits, att, fOut);
                if (pix is not null) be.BceWithLogits(logits, target!, pix);
            },
            () => be.SimilarityLgteBackward(v, u, f, a, gamma, s, att, target, fOut.Grad, pix?.Grad, G(v), G(u), G(f), G(a), G(b), G(gamma)),
            saves: [v, u, f, a, gamma, s, att, target]);   // s, logits and att are values the caller may read: not scratch
        return new LgteOutputs(s, logits, att, fOut, pix);
    }
}
