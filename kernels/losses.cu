// losses.cu — losses with their own kernels, numerically stable forms (CPU reference: Tmca.Engine/Cpu/Losses.cs).
//   BCE with logits (mean): ℓ = max(x,0) − x·t + log(1 + e^(−|x|));  gx += g·(σ(x) − t)/N
//   Symmetric masked InfoNCE over z: B×B (targets on the diagonal; pairs with same[i,j] = 1, i ≠ j, left out of
//   both softmax denominators): loss = ½·(mean_i CE(z[i,:]) + mean_j CE(z[:,j]));  gz += g/(2B)·((pRow − δ) + (pCol − δ))
// The loss gradient g is read from device memory: nothing here waits for the host.
#include "common.cuh"
#include "infonce.cuh"

// One block (1024 threads) sums the whole tensor in a fixed order: loss[0] = mean ℓ. x, t: n
KERNEL void bce_with_logits_f32(const float* __restrict__ x, const float* __restrict__ t, float* __restrict__ loss, i64 n) {
    __shared__ float scratch[32];
    float s = 0.0f;
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) {
        float v = x[i];
        s += fmaxf(v, 0.0f) - v * t[i] + log1pf(expf(-fabsf(v)));
    }
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) loss[0] = s / (float)n;
}

KERNEL void bce_with_logits_backward_f32(const float* __restrict__ x, const float* __restrict__ t, const float* __restrict__ g_loss,
                                         float* __restrict__ gx, i64 n) {
    float g = g_loss[0] / (float)n;
    FOR_EACH(i, n) gx[i] += g * (1.0f / (1.0f + expf(-x[i])) - t[i]);
}

// One block; thread a owns row a and column a of z (B ≤ blockDim). p_row, p_col: B × B (0 where a pair is left out).
KERNEL void infonce_f32(const float* __restrict__ z, const unsigned char* __restrict__ same, float* __restrict__ loss,
                        float* __restrict__ p_row, float* __restrict__ p_col, int B) {
    __shared__ float scratch[32];
    float term = block_sum(infonce_row_and_column(z, same, p_row, p_col, threadIdx.x, B), scratch);
    if (threadIdx.x == 0) loss[0] = term / (2.0f * B);
}

KERNEL void infonce_backward_f32(const float* __restrict__ p_row, const float* __restrict__ p_col, const float* __restrict__ g_loss,
                                 float* __restrict__ gz, int B) {
    float g = g_loss[0] / (2.0f * B);
    FOR_EACH(i, (i64)B * B) {
        float d = (i / B == i % B) ? 1.0f : 0.0f;
        gz[i] += g * (p_row[i] - d + p_col[i] - d);
    }
}
