// reduce.cu — the broadcast / sum-to pair (bias gradients, reductions over axes).
#include "common.cuh"

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
