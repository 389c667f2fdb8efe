using System.Numerics;

namespace Tmca.Engine;

// AdamW, exactly PyTorch's single-tensor algorithm (torch.optim.AdamW, foreach=False):
//   p ← p·(1 − lr·wd)              (decoupled decay; skipped for slots without decay)
//   m ← m + (1 − β1)·(g − m)       (lerp)
//   v ← β2·v + (1 − β2)·g²
//   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)
public sealed partial class CpuBackend
{
    public void AdamW(IReadOnlyList<AdamWSlot> slots, AdamWStep h)
    {
        if (h.Step < 1) throw new ArgumentException("AdamW step counts from 1");
        Par.For(slots.Count, 1 << 14, i =>
        {
            var s = slots[i];
            if (FloatType(s.Param, s.Grad, s.M, s.V) == DType.F32) AdamWRef(A<float>(s.Param), A<float>(s.Grad), A<float>(s.M), A<float>(s.V), s.Decay, h);
            else AdamWRef(A<double>(s.Param), A<double>(s.Grad), A<double>(s.M), A<double>(s.V), s.Decay, h);
        });
    }

    private static void AdamWRef<T>(T[] p, T[] g, T[] m, T[] v, bool decay, AdamWStep h) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T decayFactor = T.CreateTruncating(1.0 - h.Lr * h.WeightDecay);
        T oneMinusB1 = T.CreateTruncating(1.0 - h.Beta1), b2 = T.CreateTruncating(h.Beta2), oneMinusB2 = T.CreateTruncating(1.0 - h.Beta2);
        double bc1 = 1.0 - Math.Pow(h.Beta1, h.Step), bc2 = 1.0 - Math.Pow(h.Beta2, h.Step);
        T stepSize = T.CreateTruncating(h.Lr / bc1), bc2Sqrt = T.CreateTruncating(Math.Sqrt(bc2)), eps = T.CreateTruncating(h.Eps);
        for (int i = 0; i < p.Length; i++)
        {
            if (decay) p[i] *= decayFactor;
            m[i] += oneMinusB1 * (g[i] - m[i]);
            v[i] = b2 * v[i] + oneMinusB2 * g[i] * g[i];
            T denom = T.Sqrt(v[i]) / bc2Sqrt + eps;
            p[i] -= stepSize * m[i] / denom;
        }
    }
}
