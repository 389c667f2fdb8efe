// norm.cu — normalisation layers, forward and backward side by side (CPU reference: Tmca.Engine/Cpu/Norm.cs); every
// statistic in two passes (mean, then centred variance) like the CPU reference:
//   layer norm over the last axis:  x, y, gy, gx: rows × C; w, b: C; mean, rstd: rows (one warp per row);
//   channels-first layer norm (ConvNeXt): x viewed as outer × C × inner, normalised over C; mean, rstd: outer × inner;
//   batch norm: x: B × C × HW, statistics per channel over B·HW.
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

// gx (+)= r·(g − mean(g) − x̂·mean(g·x̂)), g = gy·w. acc = 0: gx is a fresh gradient, assigned (not read).
KERNEL void layernorm_backward_dx_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ mean,
                                      const float* __restrict__ rstd, const float* __restrict__ gy, float* __restrict__ gx, i64 rows, int C, int acc) {
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
        float base = 0.0f;
        if (acc) base = out[j];
        out[j] = base + r * (g - sg - (xr[j] - mu) * r * sgx);
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

// Stage 2: gw[c] (+)= Σ_chunk part_w[chunk, c] (and the same for gb); either output may be null; acc = 0 assigns.
KERNEL void layernorm_backward_dwdb_final_f32(const float* __restrict__ part_w, const float* __restrict__ part_b,
                                              float* gw, float* gb, int chunks, int C, int acc) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float tw = 0.0f, tb = 0.0f;
    for (int k = 0; k < chunks; ++k) { tw += part_w[(i64)k * C + c]; tb += part_b[(i64)k * C + c]; }
    if (gw) gw[c] = (acc ? gw[c] : 0.0f) + tw;
    if (gb) gb[c] = (acc ? gb[c] : 0.0f) + tb;
}

// ---- channels-first layer norm (over channels, ConvNeXt): x viewed as outer × C × inner ------------------------
// One thread per (outer, inner) position, looping over C with stride inner (neighbouring threads read neighbouring
// addresses). mean, rstd: outer × inner.
KERNEL void layernorm_channels_first_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
                                         float* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd, i64 outer, int C, i64 inner, float eps) {
    FOR_EACH(i, outer * inner) {
        i64 o = i / inner, q = i % inner;
        const float* xr = x + o * C * inner + q;
        float s = 0.0f;
        for (int c = 0; c < C; ++c) s += xr[(i64)c * inner];
        float mu = s / C, v = 0.0f;
        for (int c = 0; c < C; ++c) { float d = xr[(i64)c * inner] - mu; v += d * d; }
        float r = rsqrtf(v / C + eps);
        mean[i] = mu; rstd[i] = r;
        float* yr = y + o * C * inner + q;
        for (int c = 0; c < C; ++c) {
            float t = (xr[(i64)c * inner] - mu) * r;
            if (w) t *= w[c];
            if (b) t += b[c];
            yr[(i64)c * inner] = t;
        }
    }
}

// gx (+)= r·(g − mean_c(g) − x̂·mean_c(g·x̂)), g = gy·w, per (outer, inner) position; acc = 0 assigns gx
KERNEL void layernorm_channels_first_backward_dx_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ mean,
                                                     const float* __restrict__ rstd, const float* __restrict__ gy, float* __restrict__ gx,
                                                     i64 outer, int C, i64 inner, int acc) {
    FOR_EACH(i, outer * inner) {
        i64 o = i / inner, q = i % inner, base = o * C * inner + q;
        float mu = mean[i], r = rstd[i], sg = 0.0f, sgx = 0.0f;
        for (int c = 0; c < C; ++c) {
            i64 at = base + (i64)c * inner;
            float g = gy[at] * (w ? w[c] : 1.0f);
            sg += g;
            sgx += g * (x[at] - mu) * r;
        }
        sg /= C; sgx /= C;
        for (int c = 0; c < C; ++c) {
            i64 at = base + (i64)c * inner;
            float g = gy[at] * (w ? w[c] : 1.0f);
            float base = 0.0f;
            if (acc) base = gx[at];
            gx[at] = base + r * (g - sg - (x[at] - mu) * r * sgx);
        }
    }
}

// gw[c] (+)= Σ gy·x̂, gb[c] (+)= Σ gy over all (outer, inner) positions: one block per channel, a fixed order; acc = 0 assigns
KERNEL void layernorm_channels_first_backward_dwdb_f32(const float* __restrict__ x, const float* __restrict__ mean, const float* __restrict__ rstd,
                                                       const float* __restrict__ gy, float* gw, float* gb, i64 outer, int C, i64 inner, int acc) {
    __shared__ float scratch[32];
    int c = blockIdx.x;
    float aw = 0.0f, ab = 0.0f;
    for (i64 i = threadIdx.x; i < outer * inner; i += blockDim.x) {
        i64 o = i / inner, q = i % inner, at = (o * C + c) * inner + q;
        float g = gy[at];
        aw += g * (x[at] - mean[i]) * rstd[i];
        ab += g;
    }
    aw = block_sum(aw, scratch);
    ab = block_sum(ab, scratch);
    if (threadIdx.x == 0) {
        if (gw) gw[c] = (acc ? gw[c] : 0.0f) + aw;
        if (gb) gb[c] = (acc ? gb[c] : 0.0f) + ab;
    }
}

// ---- batch norm: x: B×C×HW, statistics per channel over B·HW; w, b, running stats, saved stats: C ------------

// One block per channel: mean, then centred variance (two passes, like the CPU), y, the running statistics
// (biased mean, unbiased variance: PyTorch's) and the saved mean and 1/σ for backward.
KERNEL void batchnorm_train_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b, float* __restrict__ y,
                                float* __restrict__ save_mean, float* __restrict__ save_invstd, float* run_mean, float* run_var,
                                int B, int C, i64 HW, float eps, float momentum) {
    __shared__ float scratch[32];
    int c = blockIdx.x;
    i64 n = (i64)B * HW;
    float s = 0.0f;
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) s += x[((i / HW) * C + c) * HW + i % HW];
    float mu = block_sum(s, scratch) / (float)n;
    float v = 0.0f;
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) { float d = x[((i / HW) * C + c) * HW + i % HW] - mu; v += d * d; }
    v = block_sum(v, scratch);
    float inv = rsqrtf(v / (float)n + eps);
    float scale = w[c] * inv, shift = b[c] - mu * scale;
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) {
        i64 at = ((i / HW) * C + c) * HW + i % HW;
        y[at] = x[at] * scale + shift;
    }
    if (threadIdx.x == 0) {
        save_mean[c] = mu; save_invstd[c] = inv;
        if (run_mean) run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mu;
        if (run_var) run_var[c] = (1.0f - momentum) * run_var[c] + momentum * v / (float)(n - 1);
    }
}

// y = (x − running_mean)·w/√(running_var + eps) + b
KERNEL void batchnorm_eval_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b, float* __restrict__ y,
                               const float* __restrict__ run_mean, const float* __restrict__ run_var, int C, i64 HW, i64 n, float eps) {
    FOR_EACH(i, n) {
        int c = (int)((i / HW) % C);
        float scale = w[c] * rsqrtf(run_var[c] + eps);
        y[i] = x[i] * scale + (b[c] - run_mean[c] * scale);
    }
}

// gx += w·r/N·(N·gy − Σgy − x̂·Σ(gy·x̂)), gw += Σ gy·x̂, gb += Σ gy: one block per channel
KERNEL void batchnorm_backward_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ save_mean,
                                   const float* __restrict__ save_invstd, const float* __restrict__ gy, float* gx, float* gw, float* gb,
                                   int B, int C, i64 HW) {
    __shared__ float scratch[32];
    int c = blockIdx.x;
    i64 n = (i64)B * HW;
    float mu = save_mean[c], r = save_invstd[c], sg = 0.0f, sgx = 0.0f;
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) {
        i64 at = ((i / HW) * C + c) * HW + i % HW;
        float g = gy[at];
        sg += g;
        sgx += g * (x[at] - mu) * r;
    }
    sg = block_sum(sg, scratch);
    sgx = block_sum(sgx, scratch);
    if (threadIdx.x == 0) {
        if (gw) gw[c] += sgx;
        if (gb) gb[c] += sg;
    }
    if (!gx) return;
    float k = w[c] * r / (float)n;
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) {
        i64 at = ((i / HW) * C + c) * HW + i % HW;
        gx[at] += k * ((float)n * gy[at] - sg - (x[at] - mu) * r * sgx);
    }
}
