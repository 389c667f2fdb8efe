using System.Numerics;

namespace Tmca.Engine;

// TMCA's fused ops (spec §5, §8): the readable CPU twins of kernels/tmca.cu. The same quantities composed from
// generic ops are the reference the tests compare against (Tmca.Model's TmcaLossTerms.ContrastiveComposed).
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
        int B = gt.Shape[0], S = gt.Shape[2], Sw = gt.Shape[3];
        double t = D(A<T>(tau)[0]);
        for (int l = 0; l < v.Count; l++)
        {
            var vl = A<T>(v[l]); var ul = A<T>(u[l]); var om = A<T>(omega[l]); var vb = A<T>(vbar[l]);
            int h = omega[l].Shape[1], w = omega[l].Shape[2], n = h * w, d = v[l].Shape[2], kh = S / h, kw = Sw / w;
            for (int b = 0; b < B; b++)
            {
                var cell = new double[n];
                double sum = 0;
                for (int p = 0; p < n; p++)
                {
                    int y0 = p / w * kh, x0 = p % w * kw;
                    double c = 0;
                    for (int i = 0; i < kh; i++) for (int j = 0; j < kw; j++) c += D(g[((long)b * S + y0 + i) * Sw + x0 + j]);
                    cell[p] = c / (kh * kw);
                    sum += cell[p];
                }
                bool uniform = global || sum <= 1e-6;
                for (int p = 0; p < n; p++) om[(long)b * n + p] = C<T>(uniform ? 1.0 / n : cell[p] / sum);
                for (int c = 0; c < d; c++)
                {
                    double acc = 0;
                    for (int p = 0; p < n; p++) acc += D(om[(long)b * n + p]) * D(vl[((long)b * n + p) * d + c]);
                    vb[(long)b * d + c] = C<T>(acc);
                }
            }
            for (int i = 0; i < B; i++)
                for (int j = 0; j < B; j++)
                {
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += D(vb[(long)i * d + c]) * D(ul[(long)j * d + c]);
                    zz[((long)l * B + i) * B + j] = C<T>(dot / t);
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
        int B = z.Shape[1];
        double t = D(A<T>(tau)[0]), tauSum = 0;
        for (int l = 0; l < v.Count; l++)
        {
            var ul = A<T>(u[l]); var om = A<T>(omega[l]); var vb = A<T>(vbar[l]);
            var gvl = AOpt<T>(gv[l]); var gul = AOpt<T>(gu[l]);
            int n = omega[l].Shape[1] * omega[l].Shape[2], d = v[l].Shape[2];
            for (int i = 0; i < B; i++)
            {
                if (gvl is not null)
                {
                    var gvb = new double[d];
                    for (int c = 0; c < d; c++)
                    {
                        double s = 0;
                        for (int j = 0; j < B; j++) s += D(g[((long)l * B + i) * B + j]) * D(ul[(long)j * d + c]);
                        gvb[c] = s / t;
                    }
                    for (int p = 0; p < n; p++)
                    {
                        double wgt = D(om[(long)i * n + p]);
                        for (int c = 0; c < d; c++) gvl[((long)i * n + p) * d + c] += C<T>(wgt * gvb[c]);
                    }
                }
                if (gul is not null)
                    for (int c = 0; c < d; c++)
                    {
                        double s = 0;
                        for (int k = 0; k < B; k++) s += D(g[((long)l * B + k) * B + i]) * D(vb[(long)k * d + c]);
                        gul[(long)i * d + c] += C<T>(s / t);
                    }
                for (int j = 0; j < B; j++) tauSum += D(g[((long)l * B + i) * B + j]) * D(zz[((long)l * B + i) * B + j]);
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

    private static void MultiLevelRef<T>(T[] z, byte[] same, T[] loss, T[] pRow, T[] pCol, int L, int B) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double mean = 0;
        var one = new T[1];
        for (int l = 0; l < L; l++)
        {
            int o = l * B * B;
            var zl = z.AsSpan(o, B * B).ToArray();
            var pr = new T[B * B]; var pc = new T[B * B];
            InfoNceRef(zl, same, one, pr, pc, B);
            pr.CopyTo(pRow, o); pc.CopyTo(pCol, o);
            loss[1 + l] = one[0];
            mean += D(one[0]);
        }
        loss[0] = C<T>(mean / L);
    }

    public void MultiLevelInfoNceBackward(Tensor pRow, Tensor pCol, Tensor gLoss, Tensor gz)
    {
        int L = pRow.Shape[0], B = pRow.Shape[1];
        if (FloatType(pRow, pCol, gLoss, gz) == DType.F32) MultiLevelBackRef(A<float>(pRow), A<float>(pCol), A<float>(gLoss), A<float>(gz), L, B);
        else MultiLevelBackRef(A<double>(pRow), A<double>(pCol), A<double>(gLoss), A<double>(gz), L, B);
    }

    private static void MultiLevelBackRef<T>(T[] pRow, T[] pCol, T[] gLoss, T[] gz, int L, int B) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int l = 0; l < L; l++)
        {
            double g = (D(gLoss[0]) / L + D(gLoss[1 + l])) / (2.0 * B);
            for (int i = 0; i < B; i++)
                for (int j = 0; j < B; j++)
                {
                    long at = ((long)l * B + i) * B + j;
                    double dlt = i == j ? 1.0 : 0.0;
                    gz[at] += C<T>(g * (D(pRow[at]) - dlt + D(pCol[at]) - dlt));
                }
        }
    }
}
