namespace Tmca.Engine;

// Linear layers and (batched) matrix products, all through the backend's GEMM.
public static partial class Ops
{
    /// <summary>y = x·wᵀ + b over the last axis. x: …×in, w: out×in, b: out → y: …×out.</summary>
    public static Tensor Linear(Tensor x, Tensor w, Tensor? b = null)
    {
        var (rows, inF, outF, shape) = LinearGeometry("linear", x, w);
        var y = New(x, shape);
        var be = x.Backend;
        Op.Run("linear", be, y, Tape.Wants(x, w, b), () =>
            {
                be.Gemm(false, true, rows, outF, inF, 1.0, x, 0, 0, w, 0, 0, 0.0, y, 0, 0, 1);     // y = x·wᵀ
                if (b is not null) be.BroadcastTo(b, y, accumulate: true);                          // y += b
            }, () =>
            {
                var gy = y.Grad!;
                if (x.RequiresGrad) { var (gx, acc) = x.GradForWrite(); be.Gemm(false, false, rows, inF, outF, 1.0, gy, 0, 0, w, 0, 0, Beta(acc), gx, 0, 0, 1); }   // gx (+)= gy·w
                if (w.RequiresGrad) { var (gw, acc) = w.GradForWrite(); be.Gemm(true, false, outF, inF, rows, 1.0, gy, 0, 0, x, 0, 0, Beta(acc), gw, 0, 0, 1); }   // gw (+)= gyᵀ·x
                if (b is { RequiresGrad: true }) { var (gb, acc) = b.GradForWrite(); be.SumTo(gy, gb, accumulate: acc); }                                        // gb (+)= Σ gy
            }, saves: [x, w]);
        return y;
    }

    /// <summary>A GEMM's β for a gradient from <see cref="Tensor.GradForWrite"/>: 1 adds to it, 0 assigns (a fresh one).</summary>
    internal static double Beta(bool accumulate) => accumulate ? 1.0 : 0.0;

    /// <summary>The shape check and sizes every x·wᵀ op shares (Linear, GeluLinear): x: …×in, w: out×in → the rows of x
    /// as a matrix, in, out, and y's shape …×out.</summary>
    internal static (int Rows, int In, int Out, int[] YShape) LinearGeometry(string op, Tensor x, Tensor w)
    {
        int inF = w.Shape[1], outF = w.Shape[0];
        if (x.Shape[^1] != inF) throw new ArgumentException($"{op}: x {Shape.Format(x.Shape)} vs w {Shape.Format(w.Shape)}");
        SameBackend(x, w, op);
        var shape = (int[])x.Shape.Clone(); shape[^1] = outF;
        return ((int)(x.Numel / inF), inF, outF, shape);
    }

    /// <summary>
    /// Batched matrix product op(a)·op(b) over the last two axes. a: …×m×k (…×k×m when transA), b: …×k×n
    /// (…×n×k when transB). Leading (batch) axes must match, or one side may be a plain matrix that is shared
    /// by every batch entry.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b, bool transA = false, bool transB = false)
    {
        if (a.Rank < 2 || b.Rank < 2) throw new ArgumentException("matmul needs matrices");
        SameBackend(a, b, "matmul");
        int m = transA ? a.Shape[^1] : a.Shape[^2], k = transA ? a.Shape[^2] : a.Shape[^1];
        int kb = transB ? b.Shape[^1] : b.Shape[^2], n = transB ? b.Shape[^2] : b.Shape[^1];
        if (k != kb) throw new ArgumentException($"matmul: {Shape.Format(a.Shape)}{(transA ? "ᵀ" : "")} · {Shape.Format(b.Shape)}{(transB ? "ᵀ" : "")}");
        long batchA = a.Numel / ((long)m * k), batchB = b.Numel / ((long)k * n);
        if (batchA != batchB && batchA != 1 && batchB != 1) throw new ArgumentException($"matmul: batch axes of {Shape.Format(a.Shape)} and {Shape.Format(b.Shape)} differ");
        int batch = (int)Math.Max(batchA, batchB);
        long sA = batchA == 1 ? 0 : (long)m * k, sB = batchB == 1 ? 0 : (long)k * n, sC = (long)m * n;
        var lead = (a.Rank >= b.Rank ? a : b).Shape[..^2];
        var y = New(a, [.. lead, m, n]);
        var be = a.Backend;
        Op.Run("matmul", be, y, Tape.Wants(a, b), () => be.Gemm(transA, transB, m, n, k, 1.0, a, 0, sA, b, 0, sB, 0.0, y, 0, sC, batch), () =>
            {
                var gy = y.Grad!;
                if (a.RequiresGrad)
                {
                    // gA = gC·op(B)ᵀ (stored m×k), or op(B)·gCᵀ when A is stored transposed (k×m). A shared A sums the
                    // batch entries' products one GEMM at a time: only the first may assign.
                    var (ga, acc) = a.GradForWrite();
                    for (int i = 0; i < (sA == 0 ? batch : 1); i++)
                    {
                        int cnt = sA == 0 ? 1 : batch;
                        long offY = sA == 0 ? i * sC : 0, offB = sA == 0 ? i * sB : 0;
                        double beta = Beta(acc || i > 0);
                        if (!transA) be.Gemm(false, !transB, m, k, n, 1.0, gy, offY, sC, b, offB, sB, beta, ga, 0, sA, cnt);
                        else be.Gemm(transB, true, k, m, n, 1.0, b, offB, sB, gy, offY, sC, beta, ga, 0, sA, cnt);
                    }
                }
                if (b.RequiresGrad)
                {
                    // gB = op(A)ᵀ·gC (stored k×n), or gCᵀ·op(A) when B is stored transposed (n×k).
                    var (gb, acc) = b.GradForWrite();
                    for (int i = 0; i < (sB == 0 ? batch : 1); i++)
                    {
                        int cnt = sB == 0 ? 1 : batch;
                        long offY = sB == 0 ? i * sC : 0, offA = sB == 0 ? i * sA : 0;
                        double beta = Beta(acc || i > 0);
                        if (!transB) be.Gemm(!transA, false, k, n, m, 1.0, a, offA, sA, gy, offY, sC, beta, gb, 0, sB, cnt);
                        else be.Gemm(true, transA, n, k, m, 1.0, gy, offY, sC, a, offA, sA, beta, gb, 0, sB, cnt);
                    }
                }
            }, saves: [a, b]);
        return y;
    }
}
