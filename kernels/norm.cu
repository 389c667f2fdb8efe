// norm.cu — normalisation layers (CPU reference: Tmca.Engine/Cpu/Norm.cs). LayerNorm over the last axis: x, y, gy, gx: rows × C; w, b: C; mean, rstd: rows.
// One warp per row; statistics in two passes (mean, then centred variance) like the CPU reference.
#include "common.cuh"

KERNEL void layernorm_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
                          float* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd, i64 rows, int C, float eps) {
    i64 row = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* xr = x + row * C;
    float s = 0.0f;
    for (int j = lane; j < C; j += 32) s += xr[j];
    float mu = warp_sum(s) / C;
    float v = 0.0f;
    for (int j = lane; j < C; j += 32) { float d = xr[j] - mu; v += d * d; }
    float r = rsqrtf(warp_sum(v) / C + eps);
    if (lane == 0) { mean[row] = mu; rstd[row] = r; }
    float* yr = y + row * C;
    for (int j = lane; j < C; j += 32) {
        float o = (xr[j] - mu) * r;
        if (w) o *= w[j];
        if (b) o += b[j];
        yr[j] = o;
    }
}

// gx += r·(g − mean(g) − x̂·mean(g·x̂)), g = gy·w
KERNEL void layernorm_backward_dx_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ mean,
                                      const float* __restrict__ rstd, const float* __restrict__ gy, float* __restrict__ gx, i64 rows, int C) {
    i64 row = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* xr = x + row * C;
    const float* gr = gy + row * C;
    float mu = mean[row], r = rstd[row];
    float sg = 0.0f, sgx = 0.0f;
    for (int j = lane; j < C; j += 32) {
        float g = gr[j] * (w ? w[j] : 1.0f);
        sg += g;
        sgx += g * (xr[j] - mu) * r;
    }
    sg = warp_sum(sg) / C;
    sgx = warp_sum(sgx) / C;
    float* out = gx + row * C;
    for (int j = lane; j < C; j += 32) {
        float g = gr[j] * (w ? w[j] : 1.0f);
        out[j] += r * (g - sg - (xr[j] - mu) * r * sgx);
    }
}

// Weight and bias gradients, stage 1: partial sums over a chunk of rows per block.
// grid (ceil(C/32), chunks), block (32, 8): thread (tx, ty) owns column c = 32·blockIdx.x + tx.
// part_w, part_b: chunks × C. A fixed summation order: deterministic.
KERNEL void layernorm_backward_dwdb_partial_f32(const float* __restrict__ x, const float* __restrict__ mean, const float* __restrict__ rstd,
                                                const float* __restrict__ gy, float* __restrict__ part_w, float* __restrict__ part_b,
                                                i64 rows, int C, i64 rows_per_chunk) {
    __shared__ float sw[8][33], sb[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    i64 r0 = (i64)blockIdx.y * rows_per_chunk, r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
    float aw = 0.0f, ab = 0.0f;
    if (c < C)
        for (i64 r = r0 + threadIdx.y; r < r1; r += 8) {
            float g = gy[r * C + c];
            aw += g * (x[r * C + c] - mean[r]) * rstd[r];
            ab += g;
        }
    sw[threadIdx.y][threadIdx.x] = aw;
    sb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float tw = 0.0f, tb = 0.0f;
        for (int k = 0; k < 8; ++k) { tw += sw[k][threadIdx.x]; tb += sb[k][threadIdx.x]; }
        part_w[(i64)blockIdx.y * C + c] = tw;
        part_b[(i64)blockIdx.y * C + c] = tb;
    }
}

// Stage 2: gw[c] += Σ_chunk part_w[chunk, c] (and the same for gb); either output may be null.
KERNEL void layernorm_backward_dwdb_final_f32(const float* __restrict__ part_w, const float* __restrict__ part_b,
                                              float* gw, float* gb, int chunks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float tw = 0.0f, tb = 0.0f;
    for (int k = 0; k < chunks; ++k) { tw += part_w[(i64)k * C + c]; tb += part_b[(i64)k * C + c]; }
    if (gw) gw[c] += tw;
    if (gb) gb[c] += tb;
}
