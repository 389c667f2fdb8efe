// softmax.cu — softmax over the last axis. x, y, gy, gx: rows × n. One warp per row.
#include "common.cuh"

// y = exp(x − max) / Σ exp(x − max)
KERNEL void softmax_f32(const float* __restrict__ x, float* __restrict__ y, i64 rows, int n) {
    i64 row = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* xr = x + row * n;
    float* yr = y + row * n;
    float m = -3.402823466e38f;
    for (int j = lane; j < n; j += 32) m = fmaxf(m, xr[j]);
    m = warp_max(m);
    float s = 0.0f;
    for (int j = lane; j < n; j += 32) s += expf(xr[j] - m);
    float inv = 1.0f / warp_sum(s);
    // exp again rather than storing e and rescaling y in place: y is written once, never read back (the profiler
    // measured 1.5× the compulsory bytes for the store-then-rescale version); the values are bit-identical
    for (int j = lane; j < n; j += 32) yr[j] = expf(xr[j] - m) * inv;
}

// gx += y·(gy − Σ gy·y)
KERNEL void softmax_backward_f32(const float* __restrict__ y, const float* __restrict__ gy, float* __restrict__ gx, i64 rows, int n) {
    i64 row = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* yr = y + row * n;
    const float* gr = gy + row * n;
    float d = 0.0f;
    for (int j = lane; j < n; j += 32) d += gr[j] * yr[j];
    d = warp_sum(d);
    float* xr = gx + row * n;
    for (int j = lane; j < n; j += 32) xr[j] += yr[j] * (gr[j] - d);
}
