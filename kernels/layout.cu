// layout.cu — permute (any rank ≤ 8) and copying a range along one axis (concat and its backward).
#include "common.cuh"

// y[i] (+)= x[off(i)]: s.dims is y's shape, s.s0 the strides of x read in y's axis order (x.strides[perm[d]])
KERNEL void permute_f32(const float* __restrict__ x, float* y, i64 n, int accumulate, Shape8 s) {
    FOR_EACH(i, n) {
        i64 ox, unused;
        offsets2(s, i, &ox, &unused);
        y[i] = accumulate ? y[i] + x[ox] : x[ox];
    }
}

// Both tensors viewed as outer × axis × inner: dst[o, d0 + j, :] (+)= src[o, s0 + j, :] for j < length
KERNEL void copy_axis_range_f32(const float* __restrict__ src, i64 src_axis, i64 src_start, float* dst, i64 dst_axis, i64 dst_start,
                                i64 outer, i64 length, i64 inner, int accumulate) {
    FOR_EACH(i, outer * length * inner) {
        i64 k = i % inner, j = (i / inner) % length, o = i / (inner * length);
        i64 si = (o * src_axis + src_start + j) * inner + k, di = (o * dst_axis + dst_start + j) * inner + k;
        dst[di] = accumulate ? dst[di] + src[si] : src[si];
    }
}
