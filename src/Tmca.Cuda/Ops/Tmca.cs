using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// TMCA's fused ops: kernels/tmca.cu, every level in one launch per direction; CPU twins in Tmca.Engine/Cpu/Tmca.cs.
public sealed unsafe partial class CudaBackend
{
    /// <summary>The levels' grids, sizes and pointers for one launch; (S, Sw) is the ground truth's size (forward only); the kernel lab's v1 launches with them too.</summary>
    internal static TmcaLevels Levels(int B, int S, int Sw, IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, IReadOnlyList<Tensor> omega, IReadOnlyList<Tensor> vbar,
                                     bool global, IReadOnlyList<Tensor?>? gv = null, IReadOnlyList<Tensor?>? gu = null)
    {
        if (v.Count > 4) throw new NotSupportedException($"{v.Count} levels in one fused TMCA launch (at most 4)");
        var t = new TmcaLevels { Count = v.Count, B = B, S = S, Sw = Sw, Global = global ? 1 : 0 };
        for (int l = 0; l < v.Count; l++)
        {
            t.H[l] = omega[l].Shape[1]; t.W[l] = omega[l].Shape[2]; t.D[l] = v[l].Shape[2];
            t.V[l] = P(v[l]); t.U[l] = P(u[l]); t.Omega[l] = P(omega[l]); t.Vbar[l] = P(vbar[l]);
            t.Gv[l] = POpt(gv?[l]); t.Gu[l] = POpt(gu?[l]);
        }
        return t;
    }

    public void TargetLogits(Tensor gt, IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, Tensor tau, bool global,
                             IReadOnlyList<Tensor> omega, IReadOnlyList<Tensor> vbar, Tensor z)
    {
        RequireF32("target logits", [gt, tau, z, .. v, .. u, .. omega, .. vbar]);
        BackendChecks.TargetLogits(gt, v, u, tau, omega, vbar, z);
        var t = Levels(gt.Shape[0], gt.Shape[2], gt.Shape[3], v, u, omega, vbar, global);
        var a = new KernelArgs(KernelTable.TargetLogits);
        a.Struct(t).Ptr(gt).Ptr(tau).Ptr(z);
        Launch(ref a, new Dim3((uint)gt.Shape[0], (uint)v.Count), $"{v.Count} levels, B={gt.Shape[0]}");
    }

    public void TargetLogitsBackward(IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, Tensor tau, IReadOnlyList<Tensor> omega, IReadOnlyList<Tensor> vbar,
                                     Tensor z, Tensor gz, IReadOnlyList<Tensor?> gv, IReadOnlyList<Tensor?> gu, Tensor? gtau)
    {
        RequireF32("target logits backward", [tau, z, gz, gtau, .. v, .. u, .. omega, .. vbar, .. gv, .. gu]);
        BackendChecks.Same(z, gz, "target logits backward");
        for (int l = 0; l < v.Count; l++) { BackendChecks.Count(gv[l], v[l].Numel, "target logits gv"); BackendChecks.Count(gu[l], u[l].Numel, "target logits gu"); }
        BackendChecks.Count(gtau, 1, "target logits gτ");
        int B = z.Shape[1];
        var t = Levels(B, 0, 0, v, u, omega, vbar, false, gv, gu);
        int maxD = v.Max(x => x.Shape[2]);
        var a = new KernelArgs(KernelTable.TargetLogitsBackward);
        a.Struct(t).Ptr(tau).Ptr(z).Ptr(gz).Ptr(gtau);
        Launch(ref a, new Dim3((uint)B, (uint)v.Count), $"{v.Count} levels, B={B}", shared: (uint)(maxD * 4));
    }

    public void MultiLevelInfoNce(Tensor z, Tensor same, Tensor loss, Tensor pRow, Tensor pCol)
    {
        RequireF32("multi-level InfoNCE", z, loss, pRow, pCol);
        BackendChecks.MultiLevelInfoNce(z, same, loss, pRow, pCol);
        int L = z.Shape[0], B = z.Shape[1];
        if (B > 1024) throw new NotSupportedException($"InfoNCE over a batch of {B} on CUDA (one block: at most 1024)");
        var a = new KernelArgs(KernelTable.MultiLevelInfoNce);
        a.Ptr(z).Ptr(same).Ptr(loss).Ptr(pRow).Ptr(pCol).I32(L).I32(B);
        Launch(ref a, new Dim3(1), $"{L} levels, B={B}", block: (uint)Math.Max(32, (B + 31) / 32 * 32));
    }

    public void MultiLevelInfoNceBackward(Tensor pRow, Tensor pCol, Tensor gLoss, Tensor gz)
    {
        RequireF32("multi-level InfoNCE backward", pRow, pCol, gLoss, gz);
        BackendChecks.Same(pRow, pCol, "multi-level InfoNCE backward"); BackendChecks.Same(pRow, gz, "multi-level InfoNCE backward");
        int L = pRow.Shape[0], B = pRow.Shape[1];
        BackendChecks.Count(gLoss, L + 1, "multi-level InfoNCE loss gradient");
        var a = new KernelArgs(KernelTable.MultiLevelInfoNceBackward);
        a.Ptr(pRow).Ptr(pCol).Ptr(gLoss).Ptr(gz).I32(L).I32(B);
        Launch(ref a, KernelTable.MultiLevelInfoNceBackward.Grid((long)L * B * B, SmCount), $"{L} levels, B={B}");
    }

    // s = ⟨v, u⟩, logits = a·s + b, att = σ(logits), fOut = f ⊙ (1 + γ·att): a block per sample
    public void SimilarityLgte(Tensor v, Tensor u, Tensor f, Tensor a, Tensor b, Tensor gamma, Tensor s, Tensor logits, Tensor att, Tensor fOut)
    {
        RequireF32("similarity/LGTE", v, u, f, a, b, gamma, s, logits, att, fOut);
        var (B, C, N, D) = BackendChecks.SimilarityLgte(v, u, f, a, gamma, s, att, null);
        BackendChecks.Count(b, 1, "LGTE b"); BackendChecks.Same(s, logits, "similarity/LGTE"); BackendChecks.Same(f, fOut, "similarity/LGTE");
        if (B == 0 || N == 0) return;
        var k = new KernelArgs(KernelTable.SimilarityLgte);
        k.Ptr(v).Ptr(u).Ptr(f).Ptr(a).Ptr(b).Ptr(gamma).Ptr(s).Ptr(logits).Ptr(att).Ptr(fOut).I32(C).I32(N).I32(D);
        Launch(ref k, new Dim3((uint)LgteTiles(N), (uint)B), $"B={B} C={C} N={N} d={D}");
    }

    public void SimilarityLgteBackward(Tensor v, Tensor u, Tensor f, Tensor a, Tensor gamma, Tensor s, Tensor att, Tensor? target,
                                       Tensor? gFOut, Tensor? gPix, Tensor? gv, Tensor? gu, Tensor? gf, Tensor? ga, Tensor? gb, Tensor? gGamma)
    {
        RequireF32("similarity/LGTE backward", v, u, f, a, gamma, s, att, target, gFOut, gPix, gv, gu, gf, ga, gb, gGamma);
        var (B, C, N, D) = BackendChecks.SimilarityLgte(v, u, f, a, gamma, s, att, target);
        BackendChecks.Count(gFOut, f.Numel, "LGTE output gradient"); BackendChecks.Count(gPix, 1, "pixel loss gradient");
        BackendChecks.Count(gv, v.Numel, "gv"); BackendChecks.Count(gu, u.Numel, "gu"); BackendChecks.Count(gf, f.Numel, "gf");
        BackendChecks.Count(ga, 1, "ga"); BackendChecks.Count(gb, 1, "gb"); BackendChecks.Count(gGamma, 1, "gγ");
        if (B == 0 || N == 0) return;
        // per (pixel tile, sample): gu's partial rows and the three scalar partials, added in tile order after
        int tiles = LgteTiles(N);
        var (guPart, gSize) = gu is null ? (0ul, 0L) : Pool.Rent((long)tiles * B * D * 4);
        var (partial, pSize) = Pool.Rent((long)tiles * B * 3 * 4);
        try
        {
            var k = new KernelArgs(KernelTable.SimilarityLgteBackward);
            k.Ptr(v).Ptr(u).Ptr(f).Ptr(a).Ptr(gamma).Ptr(s).Ptr(att).Ptr(target).Ptr(gFOut).Ptr(gPix)
             .Ptr(gv).Ptr(guPart).Ptr(gf).Ptr(partial).I32(B).I32(C).I32(N).I32(D);
            Launch(ref k, new Dim3((uint)tiles, (uint)B), $"B={B} C={C} N={N} d={D}, {tiles} tiles");
            if (gu is not null) AddPartials(guPart, gu, tiles);
            var fin = new KernelArgs(KernelTable.LgteFinish);
            fin.Ptr(partial).Ptr(ga).Ptr(gb).Ptr(gGamma).I32(tiles * B);
            Launch(ref fin, new Dim3(1), $"{tiles} tiles × B={B}");
        }
        finally
        {
            if (gu is not null) Pool.Return(guPart, gSize);
            Pool.Return(partial, pSize);
        }
    }

    /// <summary>The similarity/LGTE kernels' pixel tiles (32 pixels a block, tmca.cu's LGTE_TILE).</summary>
    private static int LgteTiles(int n) => (n + 31) / 32;
}
