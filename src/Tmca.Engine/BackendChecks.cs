namespace Tmca.Engine;

/// <summary>
/// The shape and size checks every backend makes before touching memory, in one place: the CPU backend would
/// index out of range, a GPU would write to an illegal address and poison its context, so both reject a bad
/// call on the host with an <see cref="ArgumentException"/> that names the op and the shapes.
/// </summary>
public static class BackendChecks
{
    public static void Same(Tensor a, Tensor b, string what)
    {
        if (a.Numel != b.Numel) throw new ArgumentException($"{what}: {Shape.Format(a.Shape)} vs {Shape.Format(b.Shape)}");
    }

    public static void Binary(Tensor a, Tensor b, Tensor y)
    {
        var shape = Shape.Broadcast(Shape.Broadcast(a.Shape, b.Shape), y.Shape);
        if (!Shape.Equal(shape, y.Shape)) throw new ArgumentException($"binary: {Shape.Format(a.Shape)} op {Shape.Format(b.Shape)} does not give {Shape.Format(y.Shape)}");
    }

    public static void Permute(Tensor x, int[] perm, Tensor y)
    {
        if (perm.Length != x.Rank || y.Rank != x.Rank) throw new ArgumentException($"permute: {perm.Length} axes for a rank-{x.Rank} tensor");
        var seen = new bool[perm.Length];
        foreach (var p in perm)
        {
            if ((uint)p >= (uint)perm.Length || seen[p]) throw new ArgumentException($"permute: [{string.Join(",", perm)}] is not a permutation");
            seen[p] = true;
        }
        for (int i = 0; i < perm.Length; i++)
            if (y.Shape[i] != x.Shape[perm[i]]) throw new ArgumentException($"permute: output shape {Shape.Format(y.Shape)} does not match");
    }

    public static void AxisRange(Tensor src, int srcStart, Tensor dst, int dstStart, int axis, int length)
    {
        if (src.Rank != dst.Rank) throw new ArgumentException("axis copy: ranks differ");
        if ((uint)axis >= (uint)src.Rank) throw new ArgumentException($"axis copy: axis {axis} of a rank-{src.Rank} tensor");
        for (int d = 0; d < src.Rank; d++)
            if (d != axis && src.Shape[d] != dst.Shape[d]) throw new ArgumentException($"axis copy: {Shape.Format(src.Shape)} vs {Shape.Format(dst.Shape)} differ off axis {axis}");
        if (srcStart < 0 || dstStart < 0 || length < 0 || srcStart + length > src.Shape[axis] || dstStart + length > dst.Shape[axis])
            throw new ArgumentException("axis copy: range out of bounds");
    }

    /// <summary>x broadcasts to y (BroadcastTo, and SumTo's reverse direction).</summary>
    public static void Broadcastable(Tensor x, Tensor y, string what)
    {
        if (!Shape.Equal(Shape.Broadcast(x.Shape, y.Shape), y.Shape))
            throw new ArgumentException($"{what}: {Shape.Format(x.Shape)} does not broadcast to {Shape.Format(y.Shape)}");
    }

    public static void Cover(Tensor x, long outer, long c, long inner, string what)
    {
        if (outer * c * inner != x.Numel) throw new ArgumentException($"{what}: {outer}×{c}×{inner} does not cover {Shape.Format(x.Shape)}");
    }

    public static void Count(Tensor? t, long n, string what)
    {
        if (t is not null && t.Numel != n) throw new ArgumentException($"{what}: {Shape.Format(t.Shape)} should hold {n} elements");
    }

    public static void GemmBounds(string name, Tensor t, long off, long stride, int batch, long size)
    {
        if (batch == 0 || size == 0) return;
        long last = off + (batch - 1) * stride + size;
        if (off < 0 || stride < 0 || last > t.Numel) throw new ArgumentException($"gemm: operand {name} ({t.Numel} elements) read up to {last}");
    }

    /// <summary>conv2d geometry: x: B×C×H×W, w: O×(C/groups)×kh×kw → (B, C, H, W, O, kh, kw, Ho, Wo).</summary>
    public static (int B, int C, int H, int W, int O, int Kh, int Kw, int Ho, int Wo) Conv(Tensor x, Tensor w, int stride, int pad, int groups)
    {
        if (x.Rank != 4 || w.Rank != 4) throw new ArgumentException($"conv2d: x {Shape.Format(x.Shape)} and w {Shape.Format(w.Shape)} must be 4-d");
        int B = x.Shape[0], C = x.Shape[1], H = x.Shape[2], W = x.Shape[3];
        int O = w.Shape[0], kh = w.Shape[2], kw = w.Shape[3];
        if (groups < 1 || C % groups != 0 || O % groups != 0 || w.Shape[1] != C / groups)
            throw new ArgumentException($"conv2d: x {Shape.Format(x.Shape)}, w {Shape.Format(w.Shape)} and groups {groups} do not agree");
        if (stride < 1 || pad < 0) throw new ArgumentException($"conv2d: stride {stride}, pad {pad}");
        int Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
        if (Ho <= 0 || Wo <= 0) throw new ArgumentException($"conv2d: kernel {kh}×{kw} larger than padded input {H}×{W}");
        return (B, C, H, W, O, kh, kw, Ho, Wo);
    }

    /// <summary>conv_transpose2d geometry (kernel = stride = k): x: B×C×H×W, w: C×O×k×k → (B, C, H, W, O).</summary>
    public static (int B, int C, int H, int W, int O) ConvTranspose(Tensor x, Tensor w, int k)
    {
        if (x.Rank != 4 || w.Rank != 4 || w.Shape[0] != x.Shape[1] || w.Shape[2] != k || w.Shape[3] != k || k < 1)
            throw new ArgumentException($"conv_transpose2d: x {Shape.Format(x.Shape)}, w {Shape.Format(w.Shape)}, k {k} do not agree");
        return (x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], w.Shape[1]);
    }

    /// <summary>The fused target-weighted logits: gt B×1×S×Sw; per level v B×N×d, u B×d, omega B×h×w (N = h·w, h | S,
    /// w | Sw), vbar B×d; tau 1; z L×B×B.</summary>
    public static void TargetLogits(Tensor gt, IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, Tensor tau,
                                    IReadOnlyList<Tensor> omega, IReadOnlyList<Tensor> vbar, Tensor z)
    {
        int L = v.Count;
        if (L == 0 || u.Count != L || omega.Count != L || vbar.Count != L) throw new ArgumentException("target logits: one v, u, omega and vbar per level");
        if (gt.Rank != 4 || gt.Shape[1] != 1) throw new ArgumentException($"target logits: gt {Shape.Format(gt.Shape)} must be B×1×S×S");
        int B = gt.Shape[0];
        Count(tau, 1, "target logits τ");
        if (z.Rank != 3 || z.Shape[0] != L || z.Shape[1] != B || z.Shape[2] != B) throw new ArgumentException($"target logits: z {Shape.Format(z.Shape)} should be [{L}, {B}, {B}]");
        for (int l = 0; l < L; l++)
        {
            if (v[l].Rank != 3 || v[l].Shape[0] != B) throw new ArgumentException($"target logits: v[{l}] {Shape.Format(v[l].Shape)} should be B×N×d");
            int d = v[l].Shape[2];
            if (u[l].Rank != 2 || u[l].Shape[0] != B || u[l].Shape[1] != d) throw new ArgumentException($"target logits: u[{l}] {Shape.Format(u[l].Shape)} should be [{B}, {d}]");
            if (omega[l].Rank != 3 || omega[l].Shape[0] != B || (long)omega[l].Shape[1] * omega[l].Shape[2] != v[l].Shape[1])
                throw new ArgumentException($"target logits: omega[{l}] {Shape.Format(omega[l].Shape)} is not the B×h×w grid of v[{l}] {Shape.Format(v[l].Shape)}");
            if (gt.Shape[2] % omega[l].Shape[1] != 0 || gt.Shape[3] % omega[l].Shape[2] != 0)
                throw new ArgumentException($"target logits: gt {Shape.Format(gt.Shape)} does not pool evenly to the {omega[l].Shape[1]}×{omega[l].Shape[2]} grid of level {l}");
            if (vbar[l].Numel != (long)B * d) throw new ArgumentException($"target logits: vbar[{l}] {Shape.Format(vbar[l].Shape)} should be [{B}, {d}]");
        }
    }

    /// <summary>The fused multi-level InfoNCE: z L×B×B, same U8 B×B, loss L+1, pRow/pCol L×B×B.</summary>
    public static void MultiLevelInfoNce(Tensor z, Tensor same, Tensor loss, Tensor pRow, Tensor pCol)
    {
        if (z.Rank != 3 || z.Shape[1] != z.Shape[2]) throw new ArgumentException($"multi-level InfoNCE: z must be L×B×B, got {Shape.Format(z.Shape)}");
        int B = z.Shape[1];
        if (same.DType != DType.U8 || same.Numel != (long)B * B) throw new ArgumentException("multi-level InfoNCE: same-report mask must be U8 B×B");
        Count(loss, z.Shape[0] + 1, "multi-level InfoNCE losses");
        Same(z, pRow, "multi-level InfoNCE"); Same(z, pCol, "multi-level InfoNCE");
    }

    /// <summary>The fused similarity + LGTE op: v B×N×d, u B×d, f B×C×h×w with h·w = N, scalars [1], maps B×N.</summary>
    public static (int B, int C, int N, int D) SimilarityLgte(Tensor v, Tensor u, Tensor f, Tensor a, Tensor gamma, Tensor s, Tensor att, Tensor? target)
    {
        if (v.Rank != 3 || f.Rank != 4 || v.Shape[0] != f.Shape[0] || (long)f.Shape[2] * f.Shape[3] != v.Shape[1])
            throw new ArgumentException($"similarity/LGTE: v {Shape.Format(v.Shape)} is not the pixel embedding of f {Shape.Format(f.Shape)}");
        int B = v.Shape[0], N = v.Shape[1], D = v.Shape[2];
        if (u.Numel != (long)B * D) throw new ArgumentException($"similarity/LGTE: u {Shape.Format(u.Shape)} should be [{B}, {D}]");
        Count(a, 1, "LGTE a"); Count(gamma, 1, "LGTE γ");
        Count(s, (long)B * N, "similarity map"); Count(att, (long)B * N, "LGTE map"); Count(target, (long)B * N, "pixel-alignment target");
        return (B, f.Shape[1], N, D);
    }
}
