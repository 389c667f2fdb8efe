// tmca.cu — TMCA's fused kernels (spec §5, §8; CPU twins: Tmca.Engine/Cpu/Tmca.cs). Every level in one launch.
//   target logits:  gt: B×1×S×Sw; level l: v B×N×d (grid h×w), u B×d → omega B×N, vbar B×d, z[l]: B×B
//                   ω from gt average-pooled to the grid (uniform if global or Σ ≤ 1e-6), v̄ = Σ_p ω(p)·v[p],
//                   z[l,i,j] = ⟨v̄_i, u_j⟩/τ
//   multi-level InfoNCE over z: L×B×B → loss[0] = mean over levels, loss[1 + l] = level l's
#include "common.cuh"
#include "infonce.cuh"
#include "tmca.cuh"

// grid (B, levels): block (b, l) pools gt for sample b to level l's grid, normalises the weights, takes the
// weighted mean of b's pixel vectors and its logits against every text j.
KERNEL void tmca_target_logits_f32(TmcaLevels t, const float* __restrict__ gt, const float* __restrict__ tau, float* __restrict__ z) {
    __shared__ float scratch[32];
    int b = blockIdx.x, l = blockIdx.y, B = t.B;
    int h = t.h[l], w = t.w[l], n = h * w, d = t.d[l], kh = t.S / h, kw = t.Sw / w;
    float* om = t.omega[l] + (i64)b * n;
    const float* g = gt + (i64)b * t.S * t.Sw;
    float s = 0.0f;
    for (int p = threadIdx.x; p < n; p += blockDim.x) {
        int y0 = p / w * kh, x0 = p % w * kw;
        float c = 0.0f;
        for (int i = 0; i < kh; ++i) for (int j = 0; j < kw; ++j) c += g[(i64)(y0 + i) * t.Sw + x0 + j];
        c /= (float)(kh * kw);
        om[p] = c;
        s += c;
    }
    s = block_sum(s, scratch);   // its barriers also make every om[p] visible to the whole block
    bool uniform = t.global || s <= 1e-6f;
    for (int p = threadIdx.x; p < n; p += blockDim.x) om[p] = uniform ? 1.0f / n : om[p] / s;
    __syncthreads();
    const float* vb = t.v[l] + (i64)b * n * d;
    float* vbar = t.vbar[l] + (i64)b * d;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        float acc = 0.0f;
        for (int p = 0; p < n; ++p) acc += om[p] * vb[(i64)p * d + c];
        vbar[c] = acc;
    }
    __syncthreads();
    float inv = 1.0f / tau[0];
    for (int j = threadIdx.x; j < B; j += blockDim.x) {
        const float* uj = t.u[l] + (i64)j * d;
        float dot = 0.0f;
        for (int c = 0; c < d; ++c) dot += vbar[c] * uj[c];
        z[((i64)l * B + b) * B + j] = dot * inv;
    }
}

// grid (B, levels), dynamic shared memory: max d floats. Block (b, l): g_v̄ = Σ_j gz[l,b,j]·u_j/τ, then
// gv[b,p] += ω_b(p)·g_v̄ (every pixel), gu[b] += Σ_i gz[l,i,b]·v̄_i/τ; block (0, 0) also adds gτ = −Σ gz·z/τ
// over every level. Each output element is written by one thread: no atomics, the same result every run.
KERNEL void tmca_target_logits_backward_f32(TmcaLevels t, const float* __restrict__ tau, const float* __restrict__ z,
                                            const float* __restrict__ gz, float* gtau) {
    DYNAMIC_SHARED(float, gvb);
    __shared__ float scratch[32];
    int b = blockIdx.x, l = blockIdx.y, B = t.B, n = t.h[l] * t.w[l], d = t.d[l];
    float inv = 1.0f / tau[0];
    const float* gzl = gz + (i64)l * B * B;
    if (t.gv[l]) {
        for (int c = threadIdx.x; c < d; c += blockDim.x) {
            float s = 0.0f;
            for (int j = 0; j < B; ++j) s += gzl[(i64)b * B + j] * t.u[l][(i64)j * d + c];
            gvb[c] = s * inv;
        }
        __syncthreads();
        const float* om = t.omega[l] + (i64)b * n;
        float* gv = t.gv[l] + (i64)b * n * d;
        for (i64 i = threadIdx.x; i < (i64)n * d; i += blockDim.x) gv[i] += om[i / d] * gvb[i % d];
    }
    if (t.gu[l])
        for (int c = threadIdx.x; c < d; c += blockDim.x) {
            float s = 0.0f;
            for (int i = 0; i < B; ++i) s += gzl[(i64)i * B + b] * t.vbar[l][(i64)i * d + c];
            t.gu[l][(i64)b * d + c] += s * inv;
        }
    if (gtau && b == 0 && l == 0) {
        float s = 0.0f;
        for (i64 i = threadIdx.x; i < (i64)t.count * B * B; i += blockDim.x) s += gz[i] * z[i];
        s = block_sum(s, scratch);
        if (threadIdx.x == 0) gtau[0] += -s * inv;
    }
}

// One block; thread a owns row a and column a of every level in turn (B ≤ blockDim): losses.cu's arithmetic
// (infonce.cuh) per level; loss[1 + l] per level, loss[0] their mean.
KERNEL void tmca_infonce_multilevel_f32(const float* __restrict__ z, const unsigned char* __restrict__ same, float* __restrict__ loss,
                                        float* __restrict__ p_row, float* __restrict__ p_col, int L, int B) {
    __shared__ float scratch[32];
    float mean = 0.0f;
    for (int l = 0; l < L; ++l) {
        i64 o = (i64)l * B * B;
        float term = block_sum(infonce_row_and_column(z + o, same, p_row + o, p_col + o, threadIdx.x, B), scratch) / (2.0f * B);
        if (threadIdx.x == 0) loss[1 + l] = term;
        mean += term;
    }
    if (threadIdx.x == 0) loss[0] = mean / L;
}

// gz[l] += (gLoss[0]/L + gLoss[1 + l])/(2B)·((pRow − δ) + (pCol − δ))
KERNEL void tmca_infonce_multilevel_backward_f32(const float* __restrict__ p_row, const float* __restrict__ p_col, const float* __restrict__ g_loss,
                                                 float* __restrict__ gz, int L, int B) {
    FOR_EACH(i, (i64)L * B * B) {
        int l = (int)(i / ((i64)B * B));
        i64 r = i % ((i64)B * B);
        float g = (g_loss[0] / L + g_loss[1 + l]) / (2.0f * B);
        float dlt = (r / B == r % B) ? 1.0f : 0.0f;
        gz[i] += g * (p_row[i] - dlt + p_col[i] - dlt);
    }
}

// ---- similarity + LGTE (spec §5, §6), one level -------------------------------------------------------------
//   v: B×N×d, u: B×d, f, f_out: B×C×N (N = h·w); a, b, gamma: [1]; s, logits, att: B×N
//   s = ⟨v_p, u⟩, logits = a·s + b, att = σ(logits), f_out = f ⊙ (1 + γ·att)

// grid (⌈N/32⌉, B), 128 threads: block (t, b) takes pixels 32t … 32t + 31 of sample b (a block per sample left ConvNeXt-T's
// 32-sample batch on 32 of 132 SMs, each reading megabytes alone). Each warp takes 8 of the tile's pixels in turn, its
// lanes striding over d: v's rows are d contiguous floats, so a warp reads one row coalesced (a thread per pixel read 32
// rows at once, a sector each); the lanes' sum by shuffles. Then the block scales f's C×32 patch, lanes along pixels.
#define LGTE_TILE 32
KERNEL void tmca_similarity_lgte_f32(const float* __restrict__ v, const float* __restrict__ u, const float* __restrict__ f,
                                     const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ gamma,
                                     float* __restrict__ s, float* __restrict__ logits, float* __restrict__ att, float* __restrict__ f_out,
                                     int C, int N, int d) {
    __shared__ float scale[LGTE_TILE];
    int bi = blockIdx.y, p0 = blockIdx.x * LGTE_TILE, n = min(LGTE_TILE, N - p0);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const float* ub = u + (i64)bi * d;
    float av = a[0], bv = b[0], g = gamma[0];
    for (int j = warp; j < n; j += warps) {   // j is the same on every lane of a warp: the shuffles see all 32
        i64 at = (i64)bi * N + p0 + j;
        const float* vp = v + at * d;
        float dot = 0.0f;
        for (int k = lane; k < d; k += 32) dot += vp[k] * ub[k];
        dot = warp_sum(dot);
        float z = av * dot + bv, A = 1.0f / (1.0f + expf(-z));
        if (lane == 0) { s[at] = dot; logits[at] = z; att[at] = A; scale[j] = 1.0f + g * A; }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < C * LGTE_TILE; i += blockDim.x) {
        int c = i / LGTE_TILE, j = i % LGTE_TILE;
        if (j >= n) continue;
        i64 fi = ((i64)bi * C + c) * N + p0 + j;
        f_out[fi] = f[fi] * scale[j];
    }
}

// grid (⌈N/32⌉, B), 128 threads, the forward's tiles. From g_fout (may be null) and the pixel-alignment loss gradient
// g_pix with its target (both may be null): gf += g_fout·(1 + γA); gz = γ·Σ_c g_fout·f·A(1−A) + g_pix·(A − W)/(B·N);
// gs = a·gz; gv_p += gs·u; the tile's Σ_p gs·v_p goes to gu_part[t, b, :] and its Σ gz·s, Σ gz and Σ g_fout·f·A to
// partial[3(t·B + b) …]; add_split_partials_f32 (gu) and tmca_lgte_finish_f32 (a, b, γ) add the tiles in order after.
//  1. lanes along the tile's pixels, the 4 warps over channels c ≡ warp (mod 4): each thread sums its channels for
//     its pixel (g_fout and f read coalesced) and writes gf; the 4 channel groups are added in order in shared memory;
//  2. thread j < 32: gz and gs of pixel j;
//  3. gv[p, k] += gs_p·u_k with k fastest (v's rows: coalesced); thread k sums gs_p·v[p, k] over the tile's pixels.
KERNEL void tmca_similarity_lgte_backward_f32(const float* __restrict__ v, const float* __restrict__ u, const float* __restrict__ f,
                                              const float* __restrict__ a, const float* __restrict__ gamma, const float* __restrict__ s,
                                              const float* __restrict__ att, const float* __restrict__ target,
                                              const float* __restrict__ g_fout, const float* __restrict__ g_pix,
                                              float* gv, float* __restrict__ gu_part, float* gf, float* __restrict__ partial,
                                              int B, int C, int N, int d) {
    __shared__ float part_ga[4][LGTE_TILE], part_pg[4][LGTE_TILE], gs[LGTE_TILE], scratch[32];
    int bi = blockIdx.y, tile = blockIdx.x, p0 = tile * LGTE_TILE, n = min(LGTE_TILE, N - p0);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    float av = a[0], g = gamma[0];
    float gp = g_pix && target ? g_pix[0] / ((float)B * N) : 0.0f;
    {
        float ga = 0.0f, pg = 0.0f;
        if (lane < n) {
            i64 at = (i64)bi * N + p0 + lane;
            float A = att[at];
            if (g_fout)
                for (int c = warp; c < C; c += warps) {
                    i64 fi = ((i64)bi * C + c) * N + p0 + lane;
                    float go = g_fout[fi], x = f[fi];
                    ga += go * x * g;
                    pg += go * x * A;
                    if (gf) gf[fi] += go * (1.0f + g * A);
                }
        }
        if (warp < 4) { part_ga[warp][lane] = ga; part_pg[warp][lane] = pg; }
    }
    __syncthreads();
    float pa = 0.0f, pb = 0.0f, pg = 0.0f;
    if (threadIdx.x < LGTE_TILE) {
        int j = threadIdx.x;
        float gsv = 0.0f;
        if (j < n) {
            i64 at = (i64)bi * N + p0 + j;
            float A = att[at], gA = 0.0f;
            for (int w = 0; w < 4 && w < warps; ++w) { gA += part_ga[w][j]; pg += part_pg[w][j]; }
            float gz = gA * A * (1.0f - A) + (gp != 0.0f ? gp * (A - target[at]) : 0.0f);
            pa = gz * s[at];
            pb = gz;
            gsv = av * gz;
        }
        gs[j] = gsv;
    }
    pa = block_sum(pa, scratch);
    pb = block_sum(pb, scratch);
    pg = block_sum(pg, scratch);   // the barriers inside also make gs visible to the whole block
    i64 slot = (i64)tile * B + bi;
    if (threadIdx.x == 0) { partial[3 * slot] = pa; partial[3 * slot + 1] = pb; partial[3 * slot + 2] = pg; }
    const float* ub = u + (i64)bi * d;
    const float* vt = v + ((i64)bi * N + p0) * d;
    if (gv)
        for (int i = threadIdx.x; i < n * d; i += blockDim.x) {
            int j = i / d, k = i % d;
            gv[((i64)bi * N + p0) * d + i] += gs[j] * ub[k];
        }
    if (gu_part)
        for (int k = threadIdx.x; k < d; k += blockDim.x) {
            float acc = 0.0f;
            for (int j = 0; j < n; ++j) acc += gs[j] * vt[(i64)j * d + k];
            gu_part[slot * d + k] = acc;
        }
}

// One thread: ga += Σ_i partial[3i], gb += Σ_i partial[3i+1], gγ += Σ_i partial[3i+2] over the B·tiles (tile, sample)
// partials, in order
KERNEL void tmca_lgte_finish_f32(const float* __restrict__ partial, float* ga, float* gb, float* g_gamma, int B) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    float sa = 0.0f, sb = 0.0f, sg = 0.0f;
    for (int i = 0; i < B; ++i) { sa += partial[3 * i]; sb += partial[3 * i + 1]; sg += partial[3 * i + 2]; }
    if (ga) ga[0] += sa;
    if (gb) gb[0] += sb;
    if (g_gamma) g_gamma[0] += sg;
}
