namespace Tmca.Engine;

/// <summary>Weights of one multi-head attention block: q, k, v, o projections E×E with biases.</summary>
public sealed record AttentionWeights(Tensor Wq, Tensor? Bq, Tensor Wk, Tensor? Bk, Tensor Wv, Tensor? Bv, Tensor Wo, Tensor? Bo);

// Multi-head attention, composed from linear, matmul, softmax and permute (their backwards compose too).
public static partial class Ops
{
    /// <summary>
    /// out = o(softmax(q(xq)·k(xk)ᵀ/√d + mask)·v(xv)) per head, heads concatenated. xq: B×Nq×E, xk, xv: B×Nk×E.
    /// <paramref name="keyBias"/>: optional additive B×Nk bias on the scores (BERT's padding mask: 0 for kept
    /// keys, the float minimum for padded ones). <paramref name="wo"/> may be skipped (BERT applies its own output
    /// dense after the attention) by passing <paramref name="project"/> false.
    /// </summary>
    public static Tensor MultiHeadAttention(Tensor xq, Tensor xk, Tensor xv, AttentionWeights w, int heads, Tensor? keyBias = null, bool project = true)
    {
        int B = xq.Shape[0], Nq = xq.Shape[1], Nk = xk.Shape[1], E = w.Wq.Shape[0];
        if (E % heads != 0) throw new ArgumentException($"attention: width {E} not divisible by {heads} heads");
        int dh = E / heads;
        var q = SplitHeads(Linear(xq, w.Wq, w.Bq), heads);      // B×h×Nq×dh
        var k = SplitHeads(Linear(xk, w.Wk, w.Bk), heads);      // B×h×Nk×dh
        var v = SplitHeads(Linear(xv, w.Wv, w.Bv), heads);      // B×h×Nk×dh
        // each intermediate that no backward reads is freed as soon as the next one exists (PyTorch frees them when
        // the last reference goes); the softmax's output, q, k and v stay for the backward
        var raw = MatMul(q, k, transB: true);                   // B×h×Nq×Nk
        var scores = Scale(raw, 1.0 / Math.Sqrt(dh));
        Discard(raw);
        if (keyBias is not null)
        {
            var biased = Add(scores, Reshape(keyBias, B, 1, 1, Nk));
            Discard(scores);
            scores = biased;
        }
        var probs = Softmax(scores);
        Discard(scores);
        var ctx = MatMul(probs, v);                             // B×h×Nq×dh
        var merged = Reshape(Permute(ctx, 0, 2, 1, 3), B, Nq, E);
        Discard(ctx);
        return project ? Linear(merged, w.Wo, w.Bo) : merged;
    }

    /// <summary>B×N×(h·d) → B×h×N×d. Takes x over: a projection's output, which only the permuted copy outlives.</summary>
    private static Tensor SplitHeads(Tensor x, int heads)
    {
        int B = x.Shape[0], N = x.Shape[1], E = x.Shape[2];
        var r = Reshape(x, B, N, heads, E / heads);
        var y = Permute(r, 0, 2, 1, 3);
        Discard(r, x);
        return y;
    }
}
