using System.Numerics;

namespace Tmca.Engine;

// Layout ops: permute, copy of an axis range (concat / split), broadcast and its adjoint sum-to.
// They move elements only, so they are generic over any unmanaged element type.
public sealed partial class CpuBackend
{
    public void Permute(Tensor x, int[] perm, Tensor y, bool accumulate)
    {
        BackendChecks.Permute(x, perm, y);
        switch (x.DType)
        {
            case DType.F32: PermuteRef(A<float>(x), x.Shape, perm, A<float>(y), accumulate); break;
            case DType.F64: PermuteRef(A<double>(x), x.Shape, perm, A<double>(y), accumulate); break;
            default:
                if (accumulate) throw new NotSupportedException("permute-accumulate of integer tensors");
                if (x.DType == DType.I64) PermuteCopy(A<long>(x), x.Shape, perm, A<long>(y));
                else PermuteCopy(A<byte>(x), x.Shape, perm, A<byte>(y));
                break;
        }
    }

    /// <summary>y (+)= x permuted: a strided gather through x's strides taken in y's axis order.</summary>
    internal static void PermuteRef<T>(HostArray<T> x, int[] xShape, int[] perm, HostArray<T> y, bool acc) where T : unmanaged, INumberBase<T>
    {
        var xs = Shape.Strides(xShape);
        StridedGather(x, perm.Select(p => xShape[p]).ToArray(), perm.Select(p => xs[p]).ToArray(), y, acc);
    }

    /// <summary>
    /// y[i] (+)= x[Σ_d index_d(i)·strides[d]] over y's shape, row by row (all axes but the last), inner axis in a
    /// tight loop. Permute (x's strides in y's axis order) and broadcast (0 strides on broadcast axes) are both this.
    /// </summary>
    private static void StridedGather<T>(HostArray<T> x, int[] yShape, long[] strides, HostArray<T> y, bool acc) where T : unmanaged, INumberBase<T>
    {
        int r = yShape.Length;
        long n = Shape.Numel(yShape);
        if (r == 0 || n == 0) return;
        int inner = yShape[r - 1];
        long rows = n / inner, innerStride = strides[r - 1];
        Par.Ranges(rows, inner, (s, e) =>
        {
            Span<T> xv = x, yv = y;
            for (long row = s; row < e; row++)
            {
                long ox = 0, rem = row;
                for (int d = r - 2; d >= 0; d--) { long q = rem % yShape[d]; rem /= yShape[d]; ox += q * strides[d]; }
                var yr = yv.Slice((int)(row * inner), inner);
                if (acc) for (int j = 0; j < inner; j++) yr[j] += xv[(int)(ox + j * innerStride)];
                else for (int j = 0; j < inner; j++) yr[j] = xv[(int)(ox + j * innerStride)];
            }
        });
    }

    private static void PermuteCopy<T>(HostArray<T> x0, int[] xShape, int[] perm, HostArray<T> y0) where T : unmanaged
    {
        int r = xShape.Length;
        var xs = Shape.Strides(xShape);
        var yShape = new int[r];
        for (int i = 0; i < r; i++) yShape[i] = xShape[perm[i]];
        long n = Shape.Numel(yShape);
        var idx = new int[r];
        Span<T> x = x0, y = y0;
        for (long o = 0; o < n; o++)
        {
            long ox = 0;
            for (int d = 0; d < r; d++) ox += idx[d] * xs[perm[d]];
            y[(int)o] = x[(int)ox];
            for (int d = r - 1; d >= 0; d--) { if (++idx[d] < yShape[d]) break; idx[d] = 0; }
        }
    }

    public void CopyAxisRange(Tensor src, int srcStart, Tensor dst, int dstStart, int axis, int length, bool accumulate)
    {
        BackendChecks.AxisRange(src, srcStart, dst, dstStart, axis, length);
        switch (src.DType)
        {
            case DType.F32: AxisCopy(A<float>(src), src.Shape, srcStart, A<float>(dst), dst.Shape, dstStart, axis, length, accumulate); break;
            case DType.F64: AxisCopy(A<double>(src), src.Shape, srcStart, A<double>(dst), dst.Shape, dstStart, axis, length, accumulate); break;
            case DType.I64: AxisCopy(A<long>(src), src.Shape, srcStart, A<long>(dst), dst.Shape, dstStart, axis, length, accumulate); break;
            default: throw new NotSupportedException($"axis copy of {src.DType}");
        }
    }

    /// <summary>Both tensors viewed as outer × axis × inner; copies `length` axis slices of `inner` elements.</summary>
    private static void AxisCopy<T>(HostArray<T> s, int[] sShape, int s0, HostArray<T> d, int[] dShape, int d0, int axis, int length, bool acc) where T : unmanaged, INumberBase<T>
    {
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= sShape[i];
        for (int i = axis + 1; i < sShape.Length; i++) inner *= sShape[i];
        long block = length * inner;
        for (long o = 0; o < outer; o++)
        {
            var from = s.AsSpan((int)((o * sShape[axis] + s0) * inner), (int)block);
            var to = d.AsSpan((int)((o * dShape[axis] + d0) * inner), (int)block);
            if (!acc) from.CopyTo(to);
            else for (int i = 0; i < to.Length; i++) to[i] += from[i];
        }
    }

    public void BroadcastTo(Tensor x, Tensor y, bool accumulate)
    {
        BackendChecks.Broadcastable(x, y, "broadcast");
        if (FloatType(x, y) == DType.F32) BroadcastRef(A<float>(x), x.Shape, A<float>(y), y.Shape, accumulate);
        else BroadcastRef(A<double>(x), x.Shape, A<double>(y), y.Shape, accumulate);
    }

    internal static void BroadcastRef<T>(HostArray<T> x, int[] xShape, HostArray<T> y, int[] yShape, bool acc) where T : unmanaged, INumberBase<T> =>
        StridedGather(x, yShape, Shape.BroadcastStrides(xShape, yShape), y, acc);

    public void SumTo(Tensor x, Tensor y, bool accumulate)
    {
        BackendChecks.Broadcastable(y, x, "sum-to");
        if (FloatType(x, y) == DType.F32) SumToRef(A<float>(x), x.Shape, A<float>(y), y.Shape, accumulate);
        else SumToRef(A<double>(x), x.Shape, A<double>(y), y.Shape, accumulate);
    }

    /// <summary>y (+)= Σ x over the axes y broadcasts along. Accumulates in float64 (long reductions, e.g. bias
    /// gradients over B·H·W), one partial buffer per thread.</summary>
    internal static void SumToRef<T>(HostArray<T> x, int[] xShape, HostArray<T> y, int[] yShape, bool acc) where T : unmanaged, INumberBase<T>
    {
        long n = Shape.Numel(xShape), ny = Shape.Numel(yShape);
        var sy = Shape.BroadcastStrides(yShape, xShape);
        int r = xShape.Length;
        var total = new double[ny];
        if (n > 0 && r > 0)
        {
            int inner = xShape[r - 1];
            long rows = n / inner, iy = sy[r - 1];
            var parts = Par.RangesOrdered(rows, inner, (s, e) =>
            {
                var part = new double[ny];
                Span<T> xv = x;
                for (long row = s; row < e; row++)
                {
                    long oy = 0, rem = row;
                    for (int d = r - 2; d >= 0; d--) { long q = rem % xShape[d]; rem /= xShape[d]; oy += q * sy[d]; }
                    var xr = xv.Slice((int)(row * inner), inner);
                    for (int j = 0; j < inner; j++) part[oy + j * iy] += double.CreateTruncating(xr[j]);
                }
                return part;
            });
            foreach (var p in parts) for (long i = 0; i < ny; i++) total[i] += p[i];
        }
        else if (n == 1) total[0] = double.CreateTruncating(x[0]);
        for (long i = 0; i < ny; i++) y[i] = acc ? y[i] + T.CreateTruncating(total[i]) : T.CreateTruncating(total[i]);
    }
}
