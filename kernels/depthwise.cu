// depthwise.cu — depthwise convolution (groups = C = O), stride 1, odd k, pad = k/2: ConvNeXt's 7×7
// (CPU reference: Tmca.Engine/Cpu/Conv.cs, DepthwiseForward/Backward). x, y, gy, gx: B×C×H×W; w: C×1×k×k.
#include "common.cuh"

#define DW_TILE 16
#define DW_MAXK 7

// One block of 16×16 threads per 16×16 output tile of one (b, c) plane; the input tile with its halo
// ((16 + k − 1)², zero outside the image) and the k×k filter go through shared memory, then each thread
// computes one output. With flip = 1 the filter is rotated by 180° and the result added: that is the input
// gradient gx += corr(gy, rot180(w)), the same shape of computation (stride 1, symmetric padding).
// grid: ceil(W/16)·ceil(H/16)·B·C blocks, all in x (plane-major): a grid's y stops at 65,535 and B·C passes that
// (C = 768 from batch 86), x goes to 2^31 − 1.
KERNEL void depthwise_conv_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias, float* __restrict__ y,
                               int C, int H, int W, int k, int flip, int accumulate) {
    __shared__ float tile[DW_TILE + DW_MAXK - 1][DW_TILE + DW_MAXK - 1];
    __shared__ float f[DW_MAXK * DW_MAXK];
    int tilesX = (W + DW_TILE - 1) / DW_TILE, tiles = tilesX * ((H + DW_TILE - 1) / DW_TILE);
    int plane = (int)(blockIdx.x / tiles), tileIndex = (int)(blockIdx.x % tiles);
    int tileY = tileIndex / tilesX, tileX = tileIndex % tilesX;
    int c = plane % C, pad = k / 2, span = DW_TILE + k - 1;
    const float* xp = x + (i64)plane * H * W;
    int y0 = tileY * DW_TILE - pad, x0 = tileX * DW_TILE - pad;
    int t = threadIdx.y * DW_TILE + threadIdx.x;
    for (int i = t; i < span * span; i += DW_TILE * DW_TILE) {
        int ty = i / span, tx = i % span, iy = y0 + ty, ix = x0 + tx;
        tile[ty][tx] = iy >= 0 && iy < H && ix >= 0 && ix < W ? xp[(i64)iy * W + ix] : 0.0f;
    }
    for (int i = t; i < k * k; i += DW_TILE * DW_TILE) f[i] = w[(i64)c * k * k + (flip ? k * k - 1 - i : i)];
    __syncthreads();
    int oy = tileY * DW_TILE + threadIdx.y, ox = tileX * DW_TILE + threadIdx.x;
    if (oy >= H || ox >= W) return;
    float s = 0.0f;
    for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) s += f[ky * k + kx] * tile[threadIdx.y + ky][threadIdx.x + kx];
    if (bias) s += bias[c];
    float* out = y + (i64)plane * H * W + (i64)oy * W + ox;
    *out = accumulate ? *out + s : s;
}

// gw[c, ky, kx] += Σ_(b,y,x) gy[b, c, y, x]·x[b, c, y + ky − pad, x + kx − pad]. grid: C × splits, 128 threads.
// Block (c, s) takes the s-th of `splits` equal runs of channel c's B·H·W positions (ConvNeXt-T stage 0 has only
// 96 channels: one block per channel would leave 36 of 132 SMs idle and each block reading 1/96 of 38 MB alone):
// each thread sums its share for all k·k taps, then thread j < k·k adds up tap j's 128 partials in order. With one
// split the block adds its sum into gw; with more it writes part[s, c, tap] and add_split_partials_f32 sums the
// splits in order afterwards (deterministic either way). The tap loops run to DW_MAXK with `k` as a guard, so they
// unroll and the 49 accumulators stay in registers (with `k` as the bound, acc[ky·k + kx] is indexed at run time
// and lives in local memory). The partials' rows are padded to 129 words: thread j reads row j, so with 128-word
// rows the 32 lanes of a warp would all hit one bank; with 129 lane j is in bank (j + t) % 32.
KERNEL void depthwise_conv_backward_weight_f32(const float* __restrict__ x, const float* __restrict__ gy, float* __restrict__ out,
                                               int B, int C, int H, int W, int k, int splits) {
    __shared__ float part[DW_MAXK * DW_MAXK][128 + 1];
    int c = blockIdx.x, split = blockIdx.y, pad = k / 2, kk = k * k;
    float acc[DW_MAXK * DW_MAXK];
#pragma unroll
    for (int j = 0; j < DW_MAXK * DW_MAXK; ++j) acc[j] = 0.0f;
    i64 hw = (i64)H * W, n = (i64)B * hw, chunk = (n + splits - 1) / splits;
    i64 first = (i64)split * chunk, last = first + chunk < n ? first + chunk : n;
    for (i64 i = first + threadIdx.x; i < last; i += blockDim.x) {
        int bi = (int)(i / hw), p = (int)(i % hw), yy = p / W, xx = p % W;
        i64 plane = ((i64)bi * C + c) * hw;
        float g = gy[plane + p];
#pragma unroll
        for (int ky = 0; ky < DW_MAXK; ++ky) {
            int iy = yy + ky - pad;
            if (ky >= k || iy < 0 || iy >= H) continue;
#pragma unroll
            for (int kx = 0; kx < DW_MAXK; ++kx) {
                int ix = xx + kx - pad;
                if (kx < k && ix >= 0 && ix < W) acc[ky * DW_MAXK + kx] += g * x[plane + (i64)iy * W + ix];
            }
        }
    }
#pragma unroll
    for (int ky = 0; ky < DW_MAXK; ++ky)
#pragma unroll
        for (int kx = 0; kx < DW_MAXK; ++kx)
            if (ky < k && kx < k) part[ky * k + kx][threadIdx.x] = acc[ky * DW_MAXK + kx];
    __syncthreads();
    if (threadIdx.x < kk) {
        float s = 0.0f;
        for (int t = 0; t < (int)blockDim.x; ++t) s += part[threadIdx.x][t];
        if (splits == 1) out[(i64)c * kk + threadIdx.x] += s;
        else out[((i64)split * C + c) * kk + threadIdx.x] = s;
    }
}
