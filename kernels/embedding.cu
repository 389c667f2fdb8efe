// embedding.cu — y[t, :] = w[ids[t], :]; backward gw[ids[t], :] += gy[t, :]. ids: n (int64), w: V × D, y: n × D.
#include "common.cuh"

KERNEL void embedding_f32(const i64* __restrict__ ids, const float* __restrict__ w, float* __restrict__ y, i64 n, int D) {
    FOR_EACH(i, n * D) {
        i64 t = i / D;
        y[i] = w[ids[t] * D + (i - t * D)];
    }
}

// Repeated ids add up; atomicAdd makes their order (and so the last bits of the sum) vary between runs.
KERNEL void embedding_backward_f32(const i64* __restrict__ ids, const float* __restrict__ gy, float* gw, i64 n, int D) {
    FOR_EACH(i, n * D) {
        i64 t = i / D;
        atomicAdd(&gw[ids[t] * D + (i - t * D)], gy[i]);
    }
}
