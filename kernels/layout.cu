// layout.cu — permute (any rank ≤ 8), copying a range along one axis (concat and its backward), and the
// broadcast / sum-to pair (bias gradients, reductions over axes). CPU reference: Tmca.Engine/Cpu/Layout.cs.
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

// y (+)= x broadcast: s.dims is y's shape, s.s0 the strides of x (0 on broadcast axes)
KERNEL void broadcast_to_f32(const float* __restrict__ x, float* y, i64 n, int accumulate, Shape8 s) {
    FOR_EACH(i, n) {
        i64 ox, unused;
        offsets2(s, i, &ox, &unused);
        y[i] = accumulate ? y[i] + x[ox] : x[ox];
    }
}

// y[o] (+)= Σ_r x[base(o) + off(r)]: one block per output element. `kept` describes the output index space
// (dims of y, strides of those axes in x); `red` the reduced axes (their sizes and strides in x).
// Each block sums in a fixed order, so results do not change from run to run.
KERNEL void sum_to_f32(const float* __restrict__ x, float* y, i64 outputs, i64 reduced, int accumulate, Shape8 kept, Shape8 red) {
    __shared__ float scratch[32];
    for (i64 o = blockIdx.x; o < outputs; o += gridDim.x) {
        i64 base, unused;
        offsets2(kept, o, &base, &unused);
        float acc = 0.0f;
        for (i64 r = threadIdx.x; r < reduced; r += blockDim.x) {
            i64 off, u2;
            offsets2(red, r, &off, &u2);
            acc += x[base + off];
        }
        float total = block_sum(acc, scratch);
        if (threadIdx.x == 0) y[o] = accumulate ? y[o] + total : total;
        __syncthreads();
    }
}

// Column sums of a row-major rows × cols matrix: y[c] (+)= Σ_r x[r·cols + c] — sum_to's case where x's reduced axes
// lead and its kept axes are a contiguous suffix (linear-layer bias gradients, [..., cols] → [cols]). sum_to_f32
// gives each lane its own row there (32 sectors a request). Here a block of 256 threads owns `width` consecutive
// columns (width 32, 16, 8 or 4, picked by the launcher so the grid fills the SMs): thread (tx, ty) = (i % width,
// i / width) sums rows ty, ty + 256/width, … of column tx in row order, so a warp reads 32/width rows of `width`
// consecutive floats (4 sectors a request; 8 at width 4), then thread ty = 0 adds the 256/width row lanes in order.
// One launch, no partials, deterministic. grid: ⌈cols/width⌉
KERNEL void sum_rows_f32(const float* __restrict__ x, float* y, i64 rows, i64 cols, int width, int accumulate) {
    __shared__ float lanes[256];
    int tx = threadIdx.x % width, ty = threadIdx.x / width, ny = blockDim.x / width;
    i64 c = (i64)blockIdx.x * width + tx;
    float acc = 0.0f;
    if (c < cols)
        for (i64 r = ty; r < rows; r += ny) acc += x[r * cols + c];
    lanes[threadIdx.x] = acc;
    __syncthreads();
    if (ty == 0 && c < cols) {
        float t = 0.0f;
        for (int j = 0; j < ny; j++) t += lanes[j * width + tx];
        y[c] = accumulate ? y[c] + t : t;
    }
}
