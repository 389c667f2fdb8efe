using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// Layout ops and reductions: kernels/layout.cu; CPU reference Tmca.Engine/Cpu/Layout.cs.
public sealed partial class CudaBackend
{
    // y (+)= x permuted: y.shape[i] = x.shape[perm[i]]
    public void Permute(Tensor x, int[] perm, Tensor y, bool accumulate)
    {
        RequireF32("permute", x, y);
        BackendChecks.Permute(x, perm, y);
        var xs = x.Strides;
        var s = Shape8.Of(y.Shape, perm.Select(p => xs[p]).ToArray());
        long n = y.Numel;
        var a = new KernelArgs(KernelTable.Permute);
        a.Ptr(x).Ptr(y).I64(n).Flag(accumulate).Struct(s);
        Launch(ref a, KernelTable.Permute.Grid(n, SmCount), $"{Shape.Format(x.Shape)} perm [{string.Join(",", perm)}]");
    }

    // dst[o, dstStart + j, :] (+)= src[o, srcStart + j, :], both viewed as outer × axis × inner
    public void CopyAxisRange(Tensor src, int srcStart, Tensor dst, int dstStart, int axis, int length, bool accumulate)
    {
        RequireF32("axis copy", src, dst);
        BackendChecks.AxisRange(src, srcStart, dst, dstStart, axis, length);
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= src.Shape[i];
        for (int i = axis + 1; i < src.Rank; i++) inner *= src.Shape[i];
        long n = outer * length * inner;
        var a = new KernelArgs(KernelTable.CopyAxisRange);
        a.Ptr(src).I64(src.Shape[axis]).I64(srcStart).Ptr(dst).I64(dst.Shape[axis]).I64(dstStart).I64(outer).I64(length).I64(inner).Flag(accumulate);
        Launch(ref a, KernelTable.CopyAxisRange.Grid(n, SmCount), $"{Shape.Format(src.Shape)} → {Shape.Format(dst.Shape)} axis {axis}");
    }

    // y (+)= x broadcast to y's shape
    public void BroadcastTo(Tensor x, Tensor y, bool accumulate)
    {
        RequireF32("broadcast", x, y);
        BackendChecks.Broadcastable(x, y, "broadcast");
        var s = Shape8.Of(y.Shape, Shape.BroadcastStrides(x.Shape, y.Shape));
        long n = y.Numel;
        var a = new KernelArgs(KernelTable.BroadcastTo);
        a.Ptr(x).Ptr(y).I64(n).Flag(accumulate).Struct(s);
        Launch(ref a, KernelTable.BroadcastTo.Grid(n, SmCount), $"{Shape.Format(x.Shape)} → {Shape.Format(y.Shape)}");
    }

    // y (+)= Σ x over the axes where y has size 1 or is missing: one block per output element
    public void SumTo(Tensor x, Tensor y, bool accumulate)
    {
        RequireF32("sum", x, y);
        BackendChecks.Broadcastable(y, x, "sum-to");
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
        long outputs = y.Numel, reducedCount = redDims.Aggregate(1L, (p, q) => p * q);
        if (outputs == 0) return;
        if (x.Numel == 0) { if (!accumulate) Fill(y, 0); return; }
        if (ColumnSum(x, keptDims, outputs, reducedCount)) { SumRows(x, y, reducedCount, outputs, accumulate); return; }
        uint block = reducedCount >= 4096 ? 256u : reducedCount >= 512 ? 128u : 32u;
        var a = new KernelArgs(KernelTable.SumTo);
        a.Ptr(x).Ptr(y).I64(outputs).I64(reducedCount).Flag(accumulate).Struct(Shape8.Of(keptDims, keptStrides)).Struct(Shape8.Of(redDims, redStrides));
        Launch(ref a, KernelTable.SumTo.Grid(outputs, SmCount), $"{Shape.Format(x.Shape)} → {Shape.Format(y.Shape)}", block: block);
    }

    /// <summary>x is contiguous, its reduced axes all lead and its kept ones are the trailing suffix: x is a
    /// reduced × kept row-major matrix and y its column sums (a linear layer's bias gradient). Narrow outputs stay on
    /// sum_to_f32 (a 32-wide warp would mostly idle over them).</summary>
    private static bool ColumnSum(Tensor x, int[] keptDims, long outputs, long reduced)
    {
        if (outputs < 16 || reduced < 2 || !x.Strides.AsSpan().SequenceEqual(Shape.Strides(x.Shape))) return false;
        int first = Array.FindIndex(keptDims, d => d != 1);
        for (int d = first; d < keptDims.Length; d++)
            if (keptDims[d] != x.Shape[d]) return false;   // a reduced axis after a kept one
        return true;
    }

    /// <summary>y[c] (+)= Σ_r x[r, c] for a rows × cols row-major x (sum_rows_f32): the widest column block (32, 16,
    /// 8, then 4 columns) that still gives every SM a block, 4 when none does.</summary>
    private void SumRows(Tensor x, Tensor y, long rows, long cols, bool accumulate)
    {
        int width = 32;
        while (width > 4 && (cols + width - 1) / width < SmCount) width /= 2;
        var a = new KernelArgs(KernelTable.SumRows);
        a.Ptr(x).Ptr(y).I64(rows).I64(cols).I32(width).Flag(accumulate);
        Launch(ref a, new Dim3((uint)((cols + width - 1) / width)), $"{rows}×{cols} → {cols}, {width} columns a block");
    }
}
