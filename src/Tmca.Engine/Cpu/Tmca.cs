using System.Numerics;

namespace Tmca.Engine;

// TMCA's fused ops (spec §5, §8): the readable CPU twins of kernels/tmca.cu. The same quantities composed from
// generic ops are the reference the tests compare against (Tmca.Model's ContrastiveLoss.Composed and Lgte.Composed in
// Alignment.cs, checked by FusedTmcaTests).
//
//   Target-weighted logits, every level at once. gt: B×1×S×Sw; per level l: v[l]: B×N×d unit pixel embeddings on an
//   h×w grid (N = h·w; the grid is omega[l]'s shape B×h×w), u[l]: B×d unit text embeddings; tau: 1.
//     W(p)      = mean of gt over p's (S/h)×(Sw/w) cell (the fraction of the cell covered by target)
//     ω_b(p)    = W(p)/Σ_p W(p), or 1/N when the sample has no target (Σ ≤ 1e-6) or alignment is global
//     v̄_l[b]   = Σ_p ω_b(p)·v[l][b, p]            (saved: vbar[l], B×d; omega[l] too)
//     z[l, i, j] = ⟨v̄_l[i], u[l][j]⟩ / τ          (z: L×B×B)
//   backward: g_v̄[i] = Σ_j gz[l,i,j]·u[j]/τ;  gv[i,p] += ω_i(p)·g_v̄[i];  gu[j] += Σ_i gz[l,i,j]·v̄[i]/τ;
//             gτ += −Σ_(l,i,j) gz·z/τ
//
//   Multi-level masked symmetric InfoNCE over z: L×B×B (one InfoNCE per level, as InfoNce): loss[0] = the mean over
//   levels, loss[1 + l] = level l's. backward: gz[l] += (gLoss[0]/L + gLoss[1 + l])/(2B)·((pRow − δ) + (pCol − δ)).
public sealed partial class CpuBackend
{
    public void TargetLogits(Tensor gt, IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, Tensor tau, bool global,
                             IReadOnlyList<Tensor> omega, IReadOnlyList<Tensor> vbar, Tensor z)
    {
        BackendChecks.TargetLogits(gt, v, u, tau, omega, vbar, z);
        if (FloatType([gt, tau, z, .. v, .. u, .. omega, .. vbar]) == DType.F32)
            TargetLogitsRef<float>(gt, v, u, tau, global, omega, vbar, z);
        else
            TargetLogitsRef<double>(gt, v, u, tau, global, omega, vbar, z);
    }

    private static void TargetLogitsRef<T>(Tensor gt, IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, Tensor tau, bool global,
                                           IReadOnlyList<Tensor> omega, IReadOnlyList<Tensor> vbar, Tensor z) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = A<T>(gt); var zz = A<T>(z);
        Span<T> gV = g, zzV = zz;
        int B = gt.Shape[0], S = gt.Shape[2], Sw = gt.Shape[3];
        double t = D(A<T>(tau)[0]);
        for (int l = 0; l < v.Count; l++)
        {
            var vl = A<T>(v[l]); var ul = A<T>(u[l]); var om = A<T>(omega[l]); var vb = A<T>(vbar[l]);
            Span<T> vlV = vl, ulV = ul, omV = om, vbV = vb;
            int h = omega[l].Shape[1], w = omega[l].Shape[2], n = h * w, d = v[l].Shape[2], kh = S / h, kw = Sw / w;
            for (int b = 0; b < B; b++)
            {
                var cell = new double[n];
                double sum = 0;
                for (int p = 0; p < n; p++)
                {
                    int y0 = p / w * kh, x0 = p % w * kw;
                    double c = 0;
                    for (int i = 0; i < kh; i++) for (int j = 0; j < kw; j++) c += D(gV[(int)(((long)b * S + y0 + i) * Sw + x0 + j)]);
                    cell[p] = c / (kh * kw);
                    sum += cell[p];
                }
                bool uniform = global || sum <= 1e-6;
                for (int p = 0; p < n; p++) omV[(int)((long)b * n + p)] = C<T>(uniform ? 1.0 / n : cell[p] / sum);
                for (int c = 0; c < d; c++)
                {
                    double acc = 0;
                    for (int p = 0; p < n; p++) acc += D(omV[(int)((long)b * n + p)]) * D(vlV[(int)(((long)b * n + p) * d + c)]);
                    vbV[(int)((long)b * d + c)] = C<T>(acc);
                }
            }
            for (int i = 0; i < B; i++)
                for (int j = 0; j < B; j++)
                {
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += D(vbV[(int)((long)i * d + c)]) * D(ulV[(int)((long)j * d + c)]);
                    zzV[(int)(((long)l * B + i) * B + j)] = C<T>(dot / t);
                }
        }
    }

    public void TargetLogitsBackward(IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, Tensor tau, IReadOnlyList<Tensor> omega, IReadOnlyList<Tensor> vbar,
                                     Tensor z, Tensor gz, IReadOnlyList<Tensor?> gv, IReadOnlyList<Tensor?> gu, Tensor? gtau)
    {
        if (FloatType([tau, z, gz, gtau, .. v, .. u, .. omega, .. vbar]) == DType.F32)
            TargetLogitsBackwardRef<float>(v, u, tau, omega, vbar, z, gz, gv, gu, gtau);
        else
            TargetLogitsBackwardRef<double>(v, u, tau, omega, vbar, z, gz, gv, gu, gtau);
    }

    private static void TargetLogitsBackwardRef<T>(IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, Tensor tau, IReadOnlyList<Tensor> omega,
                                                   IReadOnlyList<Tensor> vbar, Tensor z, Tensor gz, IReadOnlyList<Tensor?> gv, IReadOnlyList<Tensor?> gu, Tensor? gtau)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = A<T>(gz); var zz = A<T>(z);
        Span<T> gV = g, zzV = zz;
        int B = z.Shape[1];
        double t = D(A<T>(tau)[0]), tauSum = 0;
        for (int l = 0; l < v.Count; l++)
        {
            var ul = A<T>(u[l]); var om = A<T>(omega[l]); var vb = A<T>(vbar[l]);
            var gvl = AOpt<T>(gv[l]); var gul = AOpt<T>(gu[l]);
            Span<T> ulV = ul, omV = om, vbV = vb, gvlV = gvl is null ? default(Span<T>) : gvl, gulV = gul is null ? default(Span<T>) : gul;
            int n = omega[l].Shape[1] * omega[l].Shape[2], d = v[l].Shape[2];
            for (int i = 0; i < B; i++)
            {
                if (gvl is not null)
                {
                    var gvb = new double[d];
                    for (int c = 0; c < d; c++)
                    {
                        double s = 0;
                        for (int j = 0; j < B; j++) s += D(gV[(int)(((long)l * B + i) * B + j)]) * D(ulV[(int)((long)j * d + c)]);
                        gvb[c] = s / t;
                    }
                    for (int p = 0; p < n; p++)
                    {
                        double wgt = D(omV[(int)((long)i * n + p)]);
                        for (int c = 0; c < d; c++) gvlV[(int)(((long)i * n + p) * d + c)] += C<T>(wgt * gvb[c]);
                    }
                }
                if (gul is not null)
                    for (int c = 0; c < d; c++)
                    {
                        double s = 0;
                        for (int k = 0; k < B; k++) s += D(gV[(int)(((long)l * B + k) * B + i)]) * D(vbV[(int)((long)k * d + c)]);
                        gulV[(int)((long)i * d + c)] += C<T>(s / t);
                    }
                for (int j = 0; j < B; j++) tauSum += D(gV[(int)(((long)l * B + i) * B + j)]) * D(zzV[(int)(((long)l * B + i) * B + j)]);
            }
        }
        if (gtau is not null) A<T>(gtau)[0] += C<T>(-tauSum / t);
    }

    public void MultiLevelInfoNce(Tensor z, Tensor same, Tensor loss, Tensor pRow, Tensor pCol)
    {
        BackendChecks.MultiLevelInfoNce(z, same, loss, pRow, pCol);
        int L = z.Shape[0], B = z.Shape[1];
        if (FloatType(z, loss, pRow, pCol) == DType.F32) MultiLevelRef(A<float>(z), A<byte>(same), A<float>(loss), A<float>(pRow), A<float>(pCol), L, B);
        else MultiLevelRef(A<double>(z), A<byte>(same), A<double>(loss), A<double>(pRow), A<double>(pCol), L, B);
    }

    private static void MultiLevelRef<T>(HostArray<T> z, HostArray<byte> same, HostArray<T> loss, HostArray<T> pRow, HostArray<T> pCol, int L, int B) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double mean = 0;
        var one = new HostArray<T>(1);
        var pr = new HostArray<T>(B * B); var pc = new HostArray<T>(B * B);
        for (int l = 0; l < L; l++)
        {
            int o = l * B * B;
            var zl = new HostArray<T>(z.AsSpan(o, B * B));
            InfoNceRef(zl, same, one, pr, pc, B);
            zl.Free();
            pr.AsSpan().CopyTo(pRow.AsSpan(o)); pc.AsSpan().CopyTo(pCol.AsSpan(o));
            loss[1 + l] = one[0];
            mean += D(one[0]);
        }
        one.Free(); pr.Free(); pc.Free();
        loss[0] = C<T>(mean / L);
    }

    public void MultiLevelInfoNceBackward(Tensor pRow, Tensor pCol, Tensor gLoss, Tensor gz)
    {
        int L = pRow.Shape[0], B = pRow.Shape[1];
        if (FloatType(pRow, pCol, gLoss, gz) == DType.F32) MultiLevelBackRef(A<float>(pRow), A<float>(pCol), A<float>(gLoss), A<float>(gz), L, B);
        else MultiLevelBackRef(A<double>(pRow), A<double>(pCol), A<double>(gLoss), A<double>(gz), L, B);
    }

    private static void MultiLevelBackRef<T>(HostArray<T> pRow, HostArray<T> pCol, HostArray<T> gLoss, HostArray<T> gz, int L, int B) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> pRowV = pRow; Span<T> pColV = pCol; Span<T> gLossV = gLoss; Span<T> gzV = gz;
        for (int l = 0; l < L; l++)
        {
            double g = (D(gLossV[(int)0]) / L + D(gLossV[(int)(1 + l)])) / (2.0 * B);
            for (int i = 0; i < B; i++)
                for (int j = 0; j < B; j++)
                {
                    long at = ((long)l * B + i) * B + j;
                    double dlt = i == j ? 1.0 : 0.0;
                    gzV[(int)at] += C<T>(g * (D(pRowV[(int)at]) - dlt + D(pColV[(int)at]) - dlt));
                }
        }
    }

    // ---- similarity + LGTE (spec §5, §6) and the pixel-alignment loss's gradient (§8) ----
    //   s = ⟨v_p, u⟩, logits = a·s + b, A = σ(logits), F̃_c = F_c·(1 + γA)
    //   backward: gF_c += gF̃_c·(1 + γA); gA = γ·Σ_c gF̃_c·F_c; gγ += Σ gF̃·F·A; gz = gA·A(1−A) + gPix·(A − W)/(B·N);
    //             ga += Σ gz·s; gb += Σ gz; gs = a·gz; gv_p += gs·u; gu += Σ_p gs·v_p

    public void SimilarityLgte(Tensor v, Tensor u, Tensor f, Tensor a, Tensor b, Tensor gamma, Tensor s, Tensor logits, Tensor att, Tensor fOut)
    {
        var (B, Ch, N, Dim) = BackendChecks.SimilarityLgte(v, u, f, a, gamma, s, att, null);
        if (FloatType(v, u, f, a, b, gamma, s, logits, att, fOut) == DType.F32)
            SimilarityLgteRef(A<float>(v), A<float>(u), A<float>(f), A<float>(a)[0], A<float>(b)[0], A<float>(gamma)[0], A<float>(s), A<float>(logits), A<float>(att), A<float>(fOut), B, Ch, N, Dim);
        else
            SimilarityLgteRef(A<double>(v), A<double>(u), A<double>(f), A<double>(a)[0], A<double>(b)[0], A<double>(gamma)[0], A<double>(s), A<double>(logits), A<double>(att), A<double>(fOut), B, Ch, N, Dim);
    }

    private static void SimilarityLgteRef<T>(HostArray<T> v, HostArray<T> u, HostArray<T> f, T a, T b, T gamma, HostArray<T> s, HostArray<T> logits, HostArray<T> att, HostArray<T> fOut, int B, int Ch, int N, int Dim)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> vV = v; Span<T> uV = u; Span<T> fV = f; Span<T> sV = s; Span<T> logitsV = logits; Span<T> attV = att; Span<T> fOutV = fOut;
        for (int bi = 0; bi < B; bi++)
            for (int p = 0; p < N; p++)
            {
                double dot = 0;
                for (int k = 0; k < Dim; k++) dot += D(vV[(int)(((long)bi * N + p) * Dim + k)]) * D(uV[(int)((long)bi * Dim + k)]);
                double z = D(a) * dot + D(b), A = 1.0 / (1.0 + Math.Exp(-z));
                long at = (long)bi * N + p;
                sV[(int)at] = C<T>(dot); logitsV[(int)at] = C<T>(z); attV[(int)at] = C<T>(A);
                double scale = 1.0 + D(gamma) * A;
                for (int c = 0; c < Ch; c++) { long fi = ((long)bi * Ch + c) * N + p; fOutV[(int)fi] = C<T>(D(fV[(int)fi]) * scale); }
            }
    }

    public void SimilarityLgteBackward(Tensor v, Tensor u, Tensor f, Tensor a, Tensor gamma, Tensor s, Tensor att, Tensor? target,
                                       Tensor? gFOut, Tensor? gPix, Tensor? gv, Tensor? gu, Tensor? gf, Tensor? ga, Tensor? gb, Tensor? gGamma)
    {
        var (B, Ch, N, Dim) = BackendChecks.SimilarityLgte(v, u, f, a, gamma, s, att, target);
        if (FloatType(v, u, f, a, gamma, s, att, target, gFOut, gPix, gv, gu, gf, ga, gb, gGamma) == DType.F32)
            SimilarityLgteBackRef(A<float>(v), A<float>(u), A<float>(f), A<float>(a)[0], A<float>(gamma)[0], A<float>(s), A<float>(att), AOpt<float>(target),
                                  AOpt<float>(gFOut), AOpt<float>(gPix), AOpt<float>(gv), AOpt<float>(gu), AOpt<float>(gf), AOpt<float>(ga), AOpt<float>(gb), AOpt<float>(gGamma), B, Ch, N, Dim);
        else
            SimilarityLgteBackRef(A<double>(v), A<double>(u), A<double>(f), A<double>(a)[0], A<double>(gamma)[0], A<double>(s), A<double>(att), AOpt<double>(target),
                                  AOpt<double>(gFOut), AOpt<double>(gPix), AOpt<double>(gv), AOpt<double>(gu), AOpt<double>(gf), AOpt<double>(ga), AOpt<double>(gb), AOpt<double>(gGamma), B, Ch, N, Dim);
    }

    private static void SimilarityLgteBackRef<T>(HostArray<T> v, HostArray<T> u, HostArray<T> f, T a, T gamma, HostArray<T> s, HostArray<T> att, HostArray<T>? target, HostArray<T>? gFOut, HostArray<T>? gPix,
                                                 HostArray<T>? gv, HostArray<T>? gu, HostArray<T>? gf, HostArray<T>? ga, HostArray<T>? gb, HostArray<T>? gGamma, int B, int Ch, int N, int Dim)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> vV = v; Span<T> uV = u; Span<T> fV = f; Span<T> sV = s; Span<T> attV = att; Span<T> targetV = target is null ? default(Span<T>) : target; Span<T> gFOutV = gFOut is null ? default(Span<T>) : gFOut; Span<T> gPixV = gPix is null ? default(Span<T>) : gPix; Span<T> gvV = gv is null ? default(Span<T>) : gv; Span<T> guV = gu is null ? default(Span<T>) : gu; Span<T> gfV = gf is null ? default(Span<T>) : gf; Span<T> gaV = ga is null ? default(Span<T>) : ga; Span<T> gbV = gb is null ? default(Span<T>) : gb; Span<T> gGammaV = gGamma is null ? default(Span<T>) : gGamma;
        double sa = 0, sb = 0, sg = 0, gam = D(gamma), av = D(a);
        double gp = gPix is not null && target is not null ? D(gPixV[(int)0]) / ((double)B * N) : 0;
        for (int bi = 0; bi < B; bi++)
        {
            var guAcc = new double[Dim];
            for (int p = 0; p < N; p++)
            {
                long at = (long)bi * N + p;
                double A = D(attV[(int)at]), gA = 0;
                if (gFOut is not null)
                    for (int c = 0; c < Ch; c++)
                    {
                        long fi = ((long)bi * Ch + c) * N + p;
                        double g = D(gFOutV[(int)fi]), x = D(fV[(int)fi]);
                        gA += g * x * gam;
                        sg += g * x * A;
                        if (gf is not null) gfV[(int)fi] += C<T>(g * (1.0 + gam * A));
                    }
                double gz = gA * A * (1 - A) + (gp != 0 ? gp * (A - D(target![at])) : 0);
                sa += gz * D(sV[(int)at]); sb += gz;
                double gs = av * gz;
                for (int k = 0; k < Dim; k++)
                {
                    long vi = at * Dim + k;
                    if (gv is not null) gvV[(int)vi] += C<T>(gs * D(uV[(int)((long)bi * Dim + k)]));
                    guAcc[k] += gs * D(vV[(int)vi]);
                }
            }
            if (gu is not null) for (int k = 0; k < Dim; k++) guV[(int)((long)bi * Dim + k)] += C<T>(guAcc[k]);
        }
        if (ga is not null) gaV[(int)0] += C<T>(sa);
        if (gb is not null) gbV[(int)0] += C<T>(sb);
        if (gGamma is not null) gGammaV[(int)0] += C<T>(sg);
    }
}
