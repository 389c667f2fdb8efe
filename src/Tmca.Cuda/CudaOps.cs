using System.Runtime.InteropServices;
using Tmca.Cuda.Native;
using Tmca.Engine;

namespace Tmca.Cuda;

/// <summary>Up to 8 axes with two stride sets, passed to kernels by value (layout matches common.cuh's Shape8).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct Shape8
{
    public int Rank;
    private int _pad;
    public fixed long Dims[8];
    public fixed long S0[8];
    public fixed long S1[8];

    public static Shape8 Of(int[] dims, long[] s0, long[]? s1 = null)
    {
        if (dims.Length > 8) throw new NotSupportedException($"tensors of rank {dims.Length} on CUDA (at most 8)");
        var s = new Shape8 { Rank = dims.Length };
        for (int i = 0; i < dims.Length; i++) { s.Dims[i] = dims[i]; s.S0[i] = s0[i]; s.S1[i] = s1?[i] ?? 0; }
        return s;
    }
}

/// <summary>Slot of the multi-tensor AdamW kernel (layout matches adamw.cu's AdamSlot).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct AdamSlotNative { public ulong P, G, M, V; public long N; public int Decay; public int Pad; }

// The ops. Shapes in the comments of kernels/*.cu; the CPU reference in Tmca.Engine/Cpu.
public sealed unsafe partial class CudaBackend
{
    private static void F32(string op, params Tensor?[] ts)
    {
        foreach (var t in ts)
            if (t is not null && t.DType != DType.F32) throw new NotSupportedException($"{op} of {t.DType} tensors on CUDA (float32 only)");
    }

    // ---- elementwise --------------------------------------------------------------------------------

    public void Unary(UnaryOp op, double alpha, Tensor x, Tensor y)
    {
        F32("unary", x, y);
        int o = (int)op; float a = (float)alpha; ulong px = P(x), py = P(y); long n = x.Numel;
        void** args = stackalloc void*[] { &o, &a, &px, &py, &n };
        Launch("elementwise.cu", "unary_f32", Grid(n), 256, 0, args, $"{op} n={n}");
    }

    public void UnaryBackward(UnaryOp op, double alpha, Tensor x, Tensor y, Tensor gy, Tensor gx)
    {
        F32("unary backward", x, y, gy, gx);
        int o = (int)op; float a = (float)alpha; ulong px = P(x), py = P(y), pg = P(gy), pgx = P(gx); long n = x.Numel;
        void** args = stackalloc void*[] { &o, &a, &px, &py, &pg, &pgx, &n };
        Launch("elementwise.cu", "unary_backward_f32", Grid(n), 256, 0, args, $"{op} n={n}");
    }

    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, bool accumulate)
    {
        F32("binary", a, b, y);
        int o = (int)op, acc = accumulate ? 1 : 0; ulong pa = P(a), pb = P(b), py = P(y); long n = y.Numel;
        if (a.Numel == n && b.Numel == n)
        {
            void** args = stackalloc void*[] { &o, &pa, &pb, &py, &n, &acc };
            Launch("elementwise.cu", "binary_same_f32", Grid(n), 256, 0, args, $"{op} n={n}");
            return;
        }
        var s = Shape8.Of(y.Shape, Shape.BroadcastStrides(a.Shape, y.Shape), Shape.BroadcastStrides(b.Shape, y.Shape));
        void** bargs = stackalloc void*[] { &o, &pa, &pb, &py, &n, &acc, &s };
        Launch("elementwise.cu", "binary_broadcast_f32", Grid(n), 256, 0, bargs, $"{op} {Shape.Format(a.Shape)} op {Shape.Format(b.Shape)} → {Shape.Format(y.Shape)}");
    }

    public void Axpy(double alpha, Tensor x, Tensor y)
    {
        F32("axpy", x, y);
        float a = (float)alpha; ulong px = P(x), py = P(y); long n = x.Numel;
        void** args = stackalloc void*[] { &a, &px, &py, &n };
        Launch("elementwise.cu", "axpy_f32", Grid(n), 256, 0, args, $"n={n}");
    }

    // ---- layout and reductions ----------------------------------------------------------------------

    public void Permute(Tensor x, int[] perm, Tensor y, bool accumulate)
    {
        F32("permute", x, y);
        var xs = x.Strides;
        var s = Shape8.Of(y.Shape, perm.Select(p => xs[p]).ToArray());
        ulong px = P(x), py = P(y); long n = y.Numel; int acc = accumulate ? 1 : 0;
        void** args = stackalloc void*[] { &px, &py, &n, &acc, &s };
        Launch("layout.cu", "permute_f32", Grid(n), 256, 0, args, $"{Shape.Format(x.Shape)} perm [{string.Join(",", perm)}]");
    }

    public void CopyAxisRange(Tensor src, int srcStart, Tensor dst, int dstStart, int axis, int length, bool accumulate)
    {
        F32("axis copy", src, dst);
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= src.Shape[i];
        for (int i = axis + 1; i < src.Rank; i++) inner *= src.Shape[i];
        ulong ps = P(src), pd = P(dst); long sa = src.Shape[axis], s0 = srcStart, da = dst.Shape[axis], d0 = dstStart, len = length; int acc = accumulate ? 1 : 0;
        void** args = stackalloc void*[] { &ps, &sa, &s0, &pd, &da, &d0, &outer, &len, &inner, &acc };
        Launch("layout.cu", "copy_axis_range_f32", Grid(outer * len * inner), 256, 0, args, $"{Shape.Format(src.Shape)} → {Shape.Format(dst.Shape)} axis {axis}");
    }

    public void BroadcastTo(Tensor x, Tensor y, bool accumulate)
    {
        F32("broadcast", x, y);
        var s = Shape8.Of(y.Shape, Shape.BroadcastStrides(x.Shape, y.Shape));
        ulong px = P(x), py = P(y); long n = y.Numel; int acc = accumulate ? 1 : 0;
        void** args = stackalloc void*[] { &px, &py, &n, &acc, &s };
        Launch("reduce.cu", "broadcast_to_f32", Grid(n), 256, 0, args, $"{Shape.Format(x.Shape)} → {Shape.Format(y.Shape)}");
    }

    public void SumTo(Tensor x, Tensor y, bool accumulate)
    {
        F32("sum", x, y);
        int r = x.Rank;
        var xs = x.Strides;
        var keptDims = new int[r]; var keptStrides = new long[r]; var redDims = new int[r]; var redStrides = new long[r];
        int off = r - y.Rank;
        for (int d = 0; d < r; d++)
        {
            int yd = d < off ? 1 : y.Shape[d - off];
            bool reduced = yd == 1 && x.Shape[d] != 1;
            keptDims[d] = reduced ? 1 : x.Shape[d];
            keptStrides[d] = reduced ? 0 : xs[d];
            redDims[d] = reduced ? x.Shape[d] : 1;
            redStrides[d] = xs[d];
        }
        var kept = Shape8.Of(keptDims, keptStrides);
        var red = Shape8.Of(redDims, redStrides);
        long outputs = y.Numel, reducedCount = redDims.Aggregate(1L, (a, b) => a * b);
        ulong px = P(x), py = P(y); int acc = accumulate ? 1 : 0;
        uint block = reducedCount >= 4096 ? 256u : reducedCount >= 512 ? 128u : 32u;
        void** args = stackalloc void*[] { &px, &py, &outputs, &reducedCount, &acc, &kept, &red };
        Launch("reduce.cu", "sum_to_f32", (uint)Math.Min(outputs, 65535), block, 0, args, $"{Shape.Format(x.Shape)} → {Shape.Format(y.Shape)}");
    }

    // ---- softmax, layer norm, embedding -------------------------------------------------------------

    public void Softmax(Tensor x, Tensor y)
    {
        F32("softmax", x, y);
        int n = x.Shape[^1]; long rows = x.Numel / n; ulong px = P(x), py = P(y);
        void** args = stackalloc void*[] { &px, &py, &rows, &n };
        Launch("softmax.cu", "softmax_f32", (uint)((rows + 7) / 8), 256, 0, args, $"{rows}×{n}");
    }

    public void SoftmaxBackward(Tensor y, Tensor gy, Tensor gx)
    {
        F32("softmax backward", y, gy, gx);
        int n = y.Shape[^1]; long rows = y.Numel / n; ulong py = P(y), pg = P(gy), pgx = P(gx);
        void** args = stackalloc void*[] { &py, &pg, &pgx, &rows, &n };
        Launch("softmax.cu", "softmax_backward_f32", (uint)((rows + 7) / 8), 256, 0, args, $"{rows}×{n}");
    }

    public void LayerNorm(Tensor x, Tensor? w, Tensor? b, Tensor y, Tensor mean, Tensor rstd, int outer, int c, int inner, double eps)
    {
        if (inner != 1) throw Unsupported("layer norm over a non-last axis (channels-first)");
        F32("layer norm", x, w, b, y, mean, rstd);
        ulong px = P(x), pw = POpt(w), pb = POpt(b), py = P(y), pm = P(mean), pr = P(rstd); long rows = outer; float e = (float)eps;
        void** args = stackalloc void*[] { &px, &pw, &pb, &py, &pm, &pr, &rows, &c, &e };
        Launch("layernorm.cu", "layernorm_f32", (uint)((rows + 7) / 8), 256, 0, args, $"{rows}×{c}");
    }

    public void LayerNormBackward(Tensor x, Tensor? w, Tensor mean, Tensor rstd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int outer, int c, int inner)
    {
        if (inner != 1) throw Unsupported("layer norm backward over a non-last axis (channels-first)");
        F32("layer norm backward", x, w, mean, rstd, gy, gx, gw, gb);
        ulong px = P(x), pw = POpt(w), pm = P(mean), pr = P(rstd), pg = P(gy); long rows = outer;
        if (gx is not null)
        {
            ulong pgx = P(gx);
            void** a = stackalloc void*[] { &px, &pw, &pm, &pr, &pg, &pgx, &rows, &c };
            Launch("layernorm.cu", "layernorm_backward_dx_f32", (uint)((rows + 7) / 8), 256, 0, a, $"{rows}×{c}");
        }
        if (gw is null && gb is null) return;
        long perChunk = Math.Max(32, (rows + SmCount * 4 - 1) / (SmCount * 4));
        int chunks = (int)((rows + perChunk - 1) / perChunk);
        var (partW, sizeW) = Pool.Rent((long)chunks * c * 4);
        var (partB, sizeB) = Pool.Rent((long)chunks * c * 4);
        try
        {
            void** a1 = stackalloc void*[] { &px, &pm, &pr, &pg, &partW, &partB, &rows, &c, &perChunk };
            Launch("layernorm.cu", "layernorm_backward_dwdb_partial_f32", (uint)((c + 31) / 32), 32, 0, a1, $"{rows}×{c}", gridY: (uint)chunks, blockY: 8);
            ulong pgw = POpt(gw), pgb = POpt(gb);
            void** a2 = stackalloc void*[] { &partW, &partB, &pgw, &pgb, &chunks, &c };
            Launch("layernorm.cu", "layernorm_backward_dwdb_final_f32", (uint)((c + 255) / 256), 256, 0, a2, $"{chunks}×{c}");
        }
        finally { Pool.Return(partW, sizeW); Pool.Return(partB, sizeB); }
    }

    public void Embedding(Tensor ids, Tensor w, Tensor y)
    {
        F32("embedding", w, y);
        CheckIds(ids, w.Shape[0]);
        ulong pi = P(ids), pw = P(w), py = P(y); long n = ids.Numel; int d = w.Shape[1];
        void** args = stackalloc void*[] { &pi, &pw, &py, &n, &d };
        Launch("embedding.cu", "embedding_f32", Grid(n * d), 256, 0, args, $"{n} ids × {d}");
    }

    public void EmbeddingBackward(Tensor ids, Tensor gy, Tensor gw)
    {
        F32("embedding backward", gy, gw);
        CheckIds(ids, gw.Shape[0]);
        ulong pi = P(ids), pg = P(gy), pw = P(gw); long n = ids.Numel; int d = gw.Shape[1];
        void** args = stackalloc void*[] { &pi, &pg, &pw, &n, &d };
        Launch("embedding.cu", "embedding_backward_f32", Grid(n * d), 256, 0, args, $"{n} ids × {d}");
    }

    /// <summary>An id outside the table would be an illegal address (fatal to the context): check on the host first.</summary>
    private void CheckIds(Tensor ids, int vocab)
    {
        if (ids.DType != DType.I64) throw new ArgumentException($"embedding: ids must be I64, got {ids.DType}");
        foreach (var id in ids.ToArray<long>())
            if ((ulong)id >= (ulong)vocab) throw new ArgumentOutOfRangeException(nameof(ids), $"embedding: id {id} outside the table of {vocab} rows");
    }

    // ---- AdamW: every parameter in one launch -------------------------------------------------------

    public void AdamW(IReadOnlyList<AdamWSlot> slots, AdamWStep h)
    {
        if (h.Step < 1) throw new ArgumentException("AdamW step counts from 1");
        if (slots.Count == 0) return;
        const int chunk = 4096;
        var table = new AdamSlotNative[slots.Count];
        var chunkSlot = new List<int>();
        var chunkStart = new List<long>();
        for (int i = 0; i < slots.Count; i++)
        {
            var s = slots[i];
            F32("AdamW", s.Param, s.Grad, s.M, s.V);
            table[i] = new AdamSlotNative { P = P(s.Param), G = P(s.Grad), M = P(s.M), V = P(s.V), N = s.Param.Numel, Decay = s.Decay ? 1 : 0 };
            for (long st = 0; st < s.Param.Numel; st += chunk) { chunkSlot.Add(i); chunkStart.Add(st); }
        }
        var (pt, st1) = UploadTemp(table);
        var (pc, st2) = UploadTemp(chunkSlot.ToArray());
        var (ps, st3) = UploadTemp(chunkStart.ToArray());
        try
        {
            int cs = chunk;
            float lr = (float)h.Lr, b1 = (float)h.Beta1, b2 = (float)h.Beta2, eps = (float)h.Eps, wd = (float)h.WeightDecay;
            float bc1 = (float)(1 - Math.Pow(h.Beta1, h.Step)), bc2 = (float)Math.Sqrt(1 - Math.Pow(h.Beta2, h.Step));
            void** args = stackalloc void*[] { &pt, &pc, &ps, &cs, &lr, &b1, &b2, &eps, &wd, &bc1, &bc2 };
            Launch("adamw.cu", "adamw_multi_f32", (uint)chunkSlot.Count, 256, 0, args, $"{slots.Count} tensors, {chunkSlot.Count} chunks");
        }
        finally { Pool.Return(pt, st1); Pool.Return(pc, st2); Pool.Return(ps, st3); }
    }

    /// <summary>Copies a small host array into a pool block (returned by the caller after the launch that reads it).</summary>
    private (ulong Ptr, long Size) UploadTemp<T>(T[] data) where T : unmanaged
    {
        long bytes = (long)data.Length * sizeof(T);
        var (ptr, size) = Pool.Rent(bytes);
        fixed (T* p = data)
        {
            Driver.Check(Driver.cuMemcpyHtoDAsync_v2(ptr, p, (nuint)bytes, _stream), "cuMemcpyHtoDAsync_v2");
            Driver.Check(Driver.cuStreamSynchronize(_stream), "cuStreamSynchronize");
        }
        return (ptr, size);
    }

    // ---- GEMM through cuBLAS ------------------------------------------------------------------------

    /// <summary>
    /// Row-major C = α·op(A)·op(B) + β·C as cuBLAS's column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: a row-major matrix read
    /// column-major is its transpose, so B goes first and the transpose flags carry over unchanged.
    /// </summary>
    public void Gemm(bool transA, bool transB, int m, int n, int k, double alpha, Tensor a, long offA, long strideA,
                     Tensor b, long offB, long strideB, double beta, Tensor c, long offC, long strideC, int batch)
    {
        F32("gemm", a, b, c);
        MakeCurrent();
        if (m == 0 || n == 0 || batch == 0) return;
        float al = (float)alpha, be = (float)beta;
        void* pA = (void*)(P(b) + (ulong)offB * 4), pB = (void*)(P(a) + (ulong)offA * 4), pC = (void*)(P(c) + (ulong)offC * 4);
        int lda = transB ? k : n, ldb = transA ? m : k, ldc = n;
        int status = Native.Cublas.cublasGemmStridedBatchedEx(_blas, transB ? Cublas.OP_T : Cublas.OP_N, transA ? Cublas.OP_T : Cublas.OP_N, n, m, k,
            &al, pA, Cublas.R_32F, lda, strideB, pB, Cublas.R_32F, ldb, strideA, &be, pC, Cublas.R_32F, ldc, strideC, batch,
            Tf32 ? Cublas.COMPUTE_32F_FAST_TF32 : Cublas.COMPUTE_32F, Cublas.GEMM_DEFAULT);
        if (status != 0) throw new CudaException($"cublasGemmStridedBatchedEx [m={m} n={n} k={k} batch={batch} ta={transA} tb={transB}]", Cublas.StatusName(status));
        if (SyncEveryLaunch) Synchronize();
    }

    // ---- not in part 1 ------------------------------------------------------------------------------

    public void Conv2d(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int pad, int groups) => throw Unsupported("conv2d");
    public void Conv2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int stride, int pad, int groups) => throw Unsupported("conv2d backward");
    public void ConvTranspose2d(Tensor x, Tensor w, Tensor? b, Tensor y, int k) => throw Unsupported("conv_transpose2d");
    public void ConvTranspose2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int k) => throw Unsupported("conv_transpose2d backward");
    public void BatchNormTrain(Tensor x, Tensor w, Tensor b, Tensor y, Tensor saveMean, Tensor saveInvStd, Tensor? runMean, Tensor? runVar, double eps, double momentum) => throw Unsupported("batch norm");
    public void BatchNormEval(Tensor x, Tensor w, Tensor b, Tensor y, Tensor runMean, Tensor runVar, double eps) => throw Unsupported("batch norm (evaluation)");
    public void BatchNormBackward(Tensor x, Tensor w, Tensor saveMean, Tensor saveInvStd, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb) => throw Unsupported("batch norm backward");
    public void L2Normalize(Tensor x, Tensor y, Tensor norm, double eps) => throw Unsupported("L2 normalisation");
    public void L2NormalizeBackward(Tensor x, Tensor y, Tensor norm, Tensor gy, Tensor gx, double eps) => throw Unsupported("L2 normalisation backward");
    public void BceWithLogits(Tensor x, Tensor t, Tensor loss) => throw Unsupported("BCE with logits");
    public void BceWithLogitsBackward(Tensor x, Tensor t, Tensor gLoss, Tensor gx) => throw Unsupported("BCE with logits backward");
    public void InfoNce(Tensor z, Tensor same, Tensor loss, Tensor pRow, Tensor pCol) => throw Unsupported("InfoNCE");
    public void InfoNceBackward(Tensor pRow, Tensor pCol, Tensor gLoss, Tensor gz) => throw Unsupported("InfoNCE backward");
}
