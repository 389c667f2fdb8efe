// l2normalize.cu — y = x / max(‖x‖, eps) over the last axis (CPU reference: Tmca.Engine/Cpu/L2Normalize.cs).
// x, y, gy, gx: rows × d; norm: rows (‖x‖, saved for backward). One warp per row.
#include "common.cuh"

KERNEL void l2normalize_f32(const float* __restrict__ x, float* __restrict__ y, float* __restrict__ norm, i64 rows, int d, float eps) {
    i64 row = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* xr = x + row * d;
    float ss = 0.0f;
    for (int j = lane; j < d; j += 32) ss += xr[j] * xr[j];
    float n = sqrtf(warp_sum(ss));
    if (lane == 0) norm[row] = n;
    float inv = 1.0f / fmaxf(n, eps);
    for (int j = lane; j < d; j += 32) y[row * d + j] = xr[j] * inv;
}

// ‖x‖ > eps: gx += (gy − y·⟨y, gy⟩)/‖x‖;  clamped rows: gx += gy/eps
KERNEL void l2normalize_backward_f32(const float* __restrict__ y, const float* __restrict__ norm, const float* __restrict__ gy,
                                     float* __restrict__ gx, i64 rows, int d, float eps) {
    i64 row = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* yr = y + row * d;
    const float* gr = gy + row * d;
    float n = norm[row];
    float dot = 0.0f;
    for (int j = lane; j < d; j += 32) dot += yr[j] * gr[j];
    dot = warp_sum(dot);
    for (int j = lane; j < d; j += 32) gx[row * d + j] += n > eps ? (gr[j] - yr[j] * dot) / n : gr[j] / eps;
}
