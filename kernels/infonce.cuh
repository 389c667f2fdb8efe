// infonce.cuh — the symmetric masked InfoNCE arithmetic for one B×B logit matrix, shared by losses.cu (one level)
// and tmca.cu (every level in one kernel). Pairs with same[i,j] = 1 (i ≠ j) leave both softmax denominators.
#pragma once
#include "common.cuh"

// Thread a (< B) computes row a's and column a's softmax into p_row, p_col (0 for left-out pairs) and returns
// (lse_row − z[a,a]) + (lse_col − z[a,a]); threads a ≥ B return 0.
__device__ __forceinline__ float infonce_row_and_column(const float* z, const unsigned char* same, float* p_row, float* p_col, int a, int B) {
    if (a >= B) return 0.0f;
    float term = 0.0f;
    for (int pass = 0; pass < 2; ++pass) {
        float* p = pass == 0 ? p_row : p_col;
        float m = -3.402823466e38f;
        for (int c = 0; c < B; ++c) {
            int i = pass == 0 ? a : c, j = pass == 0 ? c : a;
            if (i == j || !same[i * B + j]) m = fmaxf(m, z[i * B + j]);
        }
        float s = 0.0f;
        for (int c = 0; c < B; ++c) {
            int i = pass == 0 ? a : c, j = pass == 0 ? c : a;
            if (i == j || !same[i * B + j]) s += expf(z[i * B + j] - m);
        }
        float lse = m + logf(s);
        for (int c = 0; c < B; ++c) {
            int i = pass == 0 ? a : c, j = pass == 0 ? c : a;
            p[i * B + j] = (i == j || !same[i * B + j]) ? expf(z[i * B + j] - lse) : 0.0f;
        }
        term += lse - z[a * B + a];
    }
    return term;
}
