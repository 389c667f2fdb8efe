using System.Numerics;

namespace Tmca.Engine;

// AdamW, exactly PyTorch's single-tensor algorithm (torch.optim.AdamW, foreach=False):
//   p ← p·(1 − lr·wd)              (decoupled decay; skipped for slots without decay)
//   m ← m + (1 − β1)·(g − m)       (lerp)
//   v ← β2·v + (1 − β2)·g²
//   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)
public sealed partial class CpuBackend
{
    public void AdamW(IReadOnlyList<AdamWSlot> slots, AdamWStep h, Tensor? guard = null)
    {
        if (h.Step < 1) throw new ArgumentException("AdamW step counts from 1");
        if (guard is not null)
        {
            // The step guard (see adamw.cu): count NaN/Inf gradient elements into guard[0]; skip the update unless it is 0.
            if (guard.Numel != 1) throw new ArgumentException($"AdamW guard must have one element, not {guard.Numel}");
            long bad = 0;
            foreach (var s in slots) bad += NonFinite(s.Grad);
            var gd = A<float>(guard);
            gd[0] += bad;
            if (gd[0] != 0) return;
        }
        // Every parameter element is independent: split the concatenation of all slots into even ranges,
        // so one huge slot (the word embeddings) does not sit on a single core.
        long total = slots.Sum(s => s.Param.Numel);
        var starts = new long[slots.Count + 1];
        for (int i = 0; i < slots.Count; i++) starts[i + 1] = starts[i] + slots[i].Param.Numel;
        Par.Ranges(total, 8, (lo, hi) =>
        {
            for (int i = 0; i < slots.Count; i++)
            {
                long s0 = Math.Max(lo, starts[i]), s1 = Math.Min(hi, starts[i + 1]);
                if (s0 >= s1) continue;
                var s = slots[i];
                int a = (int)(s0 - starts[i]), n = (int)(s1 - s0);
                if (FloatType(s.Param, s.Grad, s.M, s.V) == DType.F32)
                    AdamWRef(A<float>(s.Param).AsSpan(a, n), A<float>(s.Grad).AsSpan(a, n), A<float>(s.M).AsSpan(a, n), A<float>(s.V).AsSpan(a, n), s.Decay, h);
                else
                    AdamWRef(A<double>(s.Param).AsSpan(a, n), A<double>(s.Grad).AsSpan(a, n), A<double>(s.M).AsSpan(a, n), A<double>(s.V).AsSpan(a, n), s.Decay, h);
            }
        });
    }

    private static long NonFinite(Tensor t)
    {
        long bad = 0;
        if (t.DType == DType.F32) { foreach (var x in A<float>(t).AsSpan(0, (int)t.Numel)) if (!float.IsFinite(x)) bad++; }
        else foreach (var x in A<double>(t).AsSpan(0, (int)t.Numel)) if (!double.IsFinite(x)) bad++;
        return bad;
    }

    private static void AdamWRef<T>(Span<T> p, Span<T> g, Span<T> m, Span<T> v, bool decay, AdamWStep h) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T decayFactor = T.CreateTruncating(1.0 - h.Lr * h.WeightDecay);
        T oneMinusB1 = T.CreateTruncating(1.0 - h.Beta1), b2 = T.CreateTruncating(h.Beta2), oneMinusB2 = T.CreateTruncating(1.0 - h.Beta2);
        double bc1 = 1.0 - Math.Pow(h.Beta1, h.Step), bc2 = 1.0 - Math.Pow(h.Beta2, h.Step);
        T stepSize = T.CreateTruncating(h.Lr / bc1), bc2Sqrt = T.CreateTruncating(Math.Sqrt(bc2)), eps = T.CreateTruncating(h.Eps);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // The same arithmetic, Vector<T>.Count elements at a time (identical results: no reassociation).
            int vw = Vector<T>.Count;
            var vDecay = new Vector<T>(decay ? decayFactor : T.One);
            Vector<T> vB1 = new(oneMinusB1), vB2 = new(b2), vOmB2 = new(oneMinusB2), vStep = new(stepSize), vBc2 = new(bc2Sqrt), vEps = new(eps);
            for (; i + vw <= p.Length; i += vw)
            {
                var pv = new Vector<T>(p[i..]) * vDecay;
                var gv = new Vector<T>(g[i..]);
                var mv = new Vector<T>(m[i..]);
                mv += vB1 * (gv - mv);
                var vv = vB2 * new Vector<T>(v[i..]) + vOmB2 * gv * gv;
                pv -= vStep * mv / (Vector.SquareRoot(vv) / vBc2 + vEps);
                pv.CopyTo(p[i..]); mv.CopyTo(m[i..]); vv.CopyTo(v[i..]);
            }
        }
        for (; i < p.Length; i++)
        {
            if (decay) p[i] *= decayFactor;
            m[i] += oneMinusB1 * (g[i] - m[i]);
            v[i] = b2 * v[i] + oneMinusB2 * g[i] * g[i];
            T denom = T.Sqrt(v[i]) / bc2Sqrt + eps;
            p[i] -= stepSize * m[i] / denom;
        }
    }
}
