// lab/tmca_v1.cu — the kernel lab's naive v1 of the two fused TMCA forward kernels (llm.c dev/cuda style: the
// obvious version beside the tuned v2 of tmca.cu, which the model runs). Compiled and launched by the lab only
// (KernelLab.TmcaV1.cs), validated against the same CPU twins (Tmca.Engine/Cpu/Tmca.cs) before it is timed.
#include "common.cuh"
#include "tmca.cuh"

// v1 target logits: one thread per z[l, i, j], pooling i's target, normalising and weighting i's pixel vectors all by
// itself (L·B² threads each doing the whole sample's work). Writes z only.
KERNEL void tmca_target_logits_naive_f32(TmcaLevels t, const float* __restrict__ gt, const float* __restrict__ tau, float* __restrict__ z) {
    int B = t.B;
    FOR_EACH(idx, (i64)t.count * B * B) {
        int l = (int)(idx / ((i64)B * B)), i = (int)(idx / B % B), j = (int)(idx % B);
        int h = t.h[l], w = t.w[l], n = h * w, d = t.d[l], kh = t.S / h, kw = t.Sw / w;
        const float* g = gt + (i64)i * t.S * t.Sw;
        float s = 0.0f;
        for (int p = 0; p < n; ++p) {
            float c = 0.0f;
            for (int a = 0; a < kh; ++a) for (int b = 0; b < kw; ++b) c += g[(i64)(p / w * kh + a) * t.Sw + p % w * kw + b];
            s += c / (float)(kh * kw);
        }
        bool uniform = t.global || s <= 1e-6f;
        float dot = 0.0f;
        for (int p = 0; p < n; ++p) {
            float c = 0.0f;
            for (int a = 0; a < kh; ++a) for (int b = 0; b < kw; ++b) c += g[(i64)(p / w * kh + a) * t.Sw + p % w * kw + b];
            float om = uniform ? 1.0f / n : c / (float)(kh * kw) / s;
            for (int k = 0; k < d; ++k) dot += om * t.v[l][((i64)i * n + p) * d + k] * t.u[l][(i64)j * d + k];
        }
        z[idx] = dot / tau[0];
    }
}

// v1 similarity + LGTE: one thread per element of f_out, each recomputing its pixel's similarity (C times per pixel).
KERNEL void tmca_similarity_lgte_naive_f32(const float* __restrict__ v, const float* __restrict__ u, const float* __restrict__ f,
                                           const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ gamma,
                                           float* __restrict__ s, float* __restrict__ logits, float* __restrict__ att, float* __restrict__ f_out,
                                           int B, int C, int N, int d) {
    FOR_EACH(idx, (i64)B * C * N) {
        int bi = (int)(idx / ((i64)C * N)), c = (int)(idx / N % C), p = (int)(idx % N);
        float dot = 0.0f;
        for (int k = 0; k < d; ++k) dot += v[((i64)bi * N + p) * d + k] * u[(i64)bi * d + k];
        float z = a[0] * dot + b[0], A = 1.0f / (1.0f + expf(-z));
        f_out[idx] = f[idx] * (1.0f + gamma[0] * A);
        if (c == 0) { i64 at = (i64)bi * N + p; s[at] = dot; logits[at] = z; att[at] = A; }
    }
}
