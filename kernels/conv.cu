// conv.cu — dense and transposed convolutions as one implicit GEMM of our own (CPU reference: Tmca.Engine/Cpu/Conv.cs).
//   conv2d:            x: B×C×H×W, w: O×(C/g)×kh×kw, b: O → y: B×O×Ho×Wo, Ho = (H + 2·pad − kh)/stride + 1
//   conv_transpose2d:  x: B×C×H×W, w: C×O×k×k, b: O → y: B×O×kH×kW   (kernel = stride = k, no padding)
// Every direction is C[m][n] (+)= Σ_k A(m,k)·B(k,n) with A and B read through an index map straight from the
// tensors (no im2col buffer in memory); the maps below say which tensor element each (m,k) and (k,n) is.
// Depthwise convolutions (groups = C = O) have their own direct kernels (depthwise.cu).
#include "common.cuh"

struct ConvGeom { int B, C, H, W, O, kh, kw, Ho, Wo, stride, pad, groups; };

// 64×64 outputs per block of 256 threads (a 16×16 grid of 4×4 micro-tiles), K in steps of 16 through shared
// memory. Thread (tx, ty) owns rows ty·4 + i and columns tx + 16·j: a warp's 16 tx lanes then store 16 consecutive
// columns (n is the pixel index in the forward maps, so 64 contiguous bytes of y) and read 16 consecutive Bs words,
// where columns tx·4 + j made every store a 16-byte-strided scatter (15–32 sectors a request) and the Bs reads
// two-way bank conflicts. Each output is the same sum in the same k order either way. grid: (ceil(N/64), ceil(M/64), groups·splits). With splits > 1 each block sums one slice of K and the
// map stores a partial (weight gradients: K = B·Ho·Wo is long, M·N small); a second kernel adds the slices in
// a fixed order, so results do not change from run to run.
#define TM 64
#define TN 64
#define TK 16
template <class Map>
__device__ __forceinline__ void implicit_gemm(const Map& map, int M, int N, long long K, int splits) {
    __shared__ float As[TK][TM + 4];
    __shared__ float Bs[TK][TN + 4];
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    int m0 = blockIdx.y * TM, n0 = blockIdx.x * TN;
    int split = blockIdx.z % splits;
    long long per = (K + splits - 1) / splits;
    long long kb = split * per, ke = kb + per < K ? kb + per : K;
    float acc[4][4];
    for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (long long k0 = kb; k0 < ke; k0 += TK) {
        for (int i = threadIdx.x; i < TM * TK; i += blockDim.x) {
            int mm = i / TK, kk = i % TK;
            As[kk][mm] = (m0 + mm < M && k0 + kk < ke) ? map.a(m0 + mm, k0 + kk) : 0.0f;
        }
        for (int i = threadIdx.x; i < TK * TN; i += blockDim.x) {
            int kk = i / TN, nn = i % TN;
            Bs[kk][nn] = (k0 + kk < ke && n0 + nn < N) ? map.b(k0 + kk, n0 + nn) : 0.0f;
        }
        __syncthreads();
        for (int kk = 0; kk < TK; kk++) {
            float a[4], b[4];
            for (int i = 0; i < 4; i++) a[i] = As[kk][ty * 4 + i];
            for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx + 16 * j];
            for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            int m = m0 + ty * 4 + i, n = n0 + tx + 16 * j;
            if (m < M && n < N) map.store(split, m, n, acc[i][j]);
        }
}

// The same implicit GEMM on TF32 tensor cores (TF32 mode, sm_80+): 64×64 outputs per block of 128 threads, four
// warps in 2×2, each a 32×32 tile of 2×4 mma.sync m16n8k8 (common.cuh), K in steps of 16 through shared memory.
// The tiles hold TF32 operand bits (rounded once, as they are stored) k-major with rows padded to 72 words, so the
// fragment reads (row ks + t, column g) hit 32 different banks. Same grid and split-K contract as implicit_gemm.
#define TC_THREADS 128
#define TC_PAD 8
template <class Map>
__device__ __forceinline__ void implicit_gemm_tf32(const Map& map, int M, int N, long long K, int splits) {
    __shared__ unsigned As[TK][TM + TC_PAD];
    __shared__ unsigned Bs[TK][TN + TC_PAD];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    int wm = (warp & 1) * 32, wn = (warp >> 1) * 32;   // the warp's 32×32 tile in the block's 64×64
    int m0 = blockIdx.y * TM, n0 = blockIdx.x * TN;
    int split = blockIdx.z % splits;
    long long per = (K + splits - 1) / splits;
    long long kb = split * per, ke = kb + per < K ? kb + per : K;
    float acc[2][4][4];
    for (int i = 0; i < 2; i++) for (int j = 0; j < 4; j++) for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;
    for (long long k0 = kb; k0 < ke; k0 += TK) {
        for (int i = threadIdx.x; i < TM * TK; i += TC_THREADS) {
            int mm = i / TK, kk = i % TK;
            As[kk][mm] = TF32_ROUND((m0 + mm < M && k0 + kk < ke) ? map.a(m0 + mm, k0 + kk) : 0.0f);
        }
        for (int i = threadIdx.x; i < TK * TN; i += TC_THREADS) {
            int kk = i / TN, nn = i % TN;
            Bs[kk][nn] = TF32_ROUND((k0 + kk < ke && n0 + nn < N) ? map.b(k0 + kk, n0 + nn) : 0.0f);
        }
        __syncthreads();
        for (int ks = 0; ks < TK; ks += 8) {
            unsigned a[2][4], b[4][2];
            for (int i = 0; i < 2; i++) {
                int r = wm + i * 16 + g;
                a[i][0] = As[ks + t][r]; a[i][1] = As[ks + t][r + 8]; a[i][2] = As[ks + t + 4][r]; a[i][3] = As[ks + t + 4][r + 8];
            }
            for (int j = 0; j < 4; j++) {
                int c = wn + j * 8 + g;
                b[j][0] = Bs[ks + t][c]; b[j][1] = Bs[ks + t + 4][c];
            }
            for (int i = 0; i < 2; i++) for (int j = 0; j < 4; j++) MMA_TF32_M16N8K8(acc[i][j], a[i], b[j]);
        }
        __syncthreads();
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int r = 0; r < 4; r++) {
                int m = m0 + wm + i * 16 + g + (r >= 2 ? 8 : 0), n = n0 + wn + j * 8 + 2 * t + (r & 1);
                if (m < M && n < N) map.store(split, m, n, acc[i][j][r]);
            }
}

// ---- conv2d -----------------------------------------------------------------------------------------------

// y[b, o, oy, ox] = bias[o] + Σ_(c,ky,kx) w[o, c, ky, kx]·x[b, g·Cg + c, oy·s − p + ky, ox·s − p + kx]
// m = o within the group, n = (b, oy, ox), k = (c, ky, kx)
struct ConvForward {
    ConvGeom g; const float* x; const float* w; const float* bias; float* y; int grp;
    __device__ float a(int m, long long k) const {
        int Cg = g.C / g.groups, Og = g.O / g.groups;
        return w[((long long)(grp * Og + m)) * Cg * g.kh * g.kw + k];
    }
    __device__ float b(long long k, int n) const {
        int Cg = g.C / g.groups, khw = g.kh * g.kw, P = g.Ho * g.Wo;
        int c = (int)(k / khw), r = (int)(k % khw), ky = r / g.kw, kx = r % g.kw;
        int bi = n / P, p = n % P, oy = p / g.Wo, ox = p % g.Wo;
        int iy = oy * g.stride - g.pad + ky, ix = ox * g.stride - g.pad + kx;
        if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) return 0.0f;
        return x[(((long long)bi * g.C + grp * Cg + c) * g.H + iy) * g.W + ix];
    }
    __device__ void store(int, int m, int n, float v) const {
        int Og = g.O / g.groups, P = g.Ho * g.Wo, o = grp * Og + m;
        int bi = n / P, p = n % P;
        y[((long long)bi * g.O + o) * P + p] = v + (bias ? bias[o] : 0.0f);
    }
};

// gx[b, g·Cg + c, iy, ix] += Σ_(o,ky,kx) w[o, c, ky, kx]·gy[b, o, oy, ox] where iy = oy·s − p + ky
// m = c within the group, n = (b, iy, ix), k = (o, ky, kx)
struct ConvData {
    ConvGeom g; const float* w; const float* gy; float* gx; int grp;
    __device__ float a(int m, long long k) const {
        int Cg = g.C / g.groups, Og = g.O / g.groups, khw = g.kh * g.kw;
        int o = (int)(k / khw), r = (int)(k % khw);
        return w[((long long)(grp * Og + o) * Cg + m) * khw + r];
    }
    __device__ float b(long long k, int n) const {
        int Og = g.O / g.groups, khw = g.kh * g.kw, HW = g.H * g.W;
        int o = (int)(k / khw), r = (int)(k % khw), ky = r / g.kw, kx = r % g.kw;
        int bi = n / HW, p = n % HW, iy = p / g.W, ix = p % g.W;
        int ty = iy + g.pad - ky, tx = ix + g.pad - kx;
        if (ty < 0 || tx < 0 || ty % g.stride || tx % g.stride) return 0.0f;
        int oy = ty / g.stride, ox = tx / g.stride;
        if (oy >= g.Ho || ox >= g.Wo) return 0.0f;
        return gy[(((long long)bi * g.O + grp * Og + o) * g.Ho + oy) * g.Wo + ox];
    }
    __device__ void store(int, int m, int n, float v) const {
        int Cg = g.C / g.groups, HW = g.H * g.W;
        int bi = n / HW, p = n % HW;
        gx[((long long)bi * g.C + grp * Cg + m) * HW + p] += v;
    }
};

// part[split][o][(c,ky,kx)] = Σ_(b,oy,ox) in the split's slice gy[b, o, oy, ox]·x[b, g·Cg + c, oy·s − p + ky, ox·s − p + kx]
// m = o within the group, n = (c, ky, kx), k = (b, oy, ox)
struct ConvWeight {
    ConvGeom g; const float* x; const float* gy; float* part; int grp;
    __device__ float a(int m, long long k) const {
        int Og = g.O / g.groups, P = g.Ho * g.Wo;
        int bi = (int)(k / P), p = (int)(k % P);
        return gy[((long long)bi * g.O + grp * Og + m) * P + p];
    }
    __device__ float b(long long k, int n) const {
        int Cg = g.C / g.groups, khw = g.kh * g.kw, P = g.Ho * g.Wo;
        int bi = (int)(k / P), p = (int)(k % P), oy = p / g.Wo, ox = p % g.Wo;
        int c = n / khw, r = n % khw, ky = r / g.kw, kx = r % g.kw;
        int iy = oy * g.stride - g.pad + ky, ix = ox * g.stride - g.pad + kx;
        if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) return 0.0f;
        return x[(((long long)bi * g.C + grp * Cg + c) * g.H + iy) * g.W + ix];
    }
    __device__ void store(int split, int m, int n, float v) const {
        int Cg = g.C / g.groups, Og = g.O / g.groups, Kc = Cg * g.kh * g.kw;
        part[((long long)split * g.O + grp * Og + m) * Kc + n] = v;
    }
};

KERNEL void conv2d_forward_f32(ConvGeom g, const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias, float* __restrict__ y) {
    ConvForward map{g, x, w, bias, y, (int)blockIdx.z};
    implicit_gemm(map, g.O / g.groups, g.B * g.Ho * g.Wo, (long long)(g.C / g.groups) * g.kh * g.kw, 1);
}

KERNEL void conv2d_backward_data_f32(ConvGeom g, const float* __restrict__ w, const float* __restrict__ gy, float* __restrict__ gx) {
    ConvData map{g, w, gy, gx, (int)blockIdx.z};
    implicit_gemm(map, g.C / g.groups, g.B * g.H * g.W, (long long)(g.O / g.groups) * g.kh * g.kw, 1);
}

// grid.z = groups·splits; part: splits × O × (C/g)·kh·kw
KERNEL void conv2d_backward_weight_f32(ConvGeom g, const float* __restrict__ x, const float* __restrict__ gy, float* __restrict__ part, int splits) {
    ConvWeight map{g, x, gy, part, (int)blockIdx.z / splits};
    implicit_gemm(map, g.O / g.groups, (g.C / g.groups) * g.kh * g.kw, (long long)g.B * g.Ho * g.Wo, splits);
}

// dst[i] += Σ_s part[s·n + i], s in order (the split-K slices of a weight gradient)
KERNEL void add_split_partials_f32(const float* __restrict__ part, float* __restrict__ dst, int splits, i64 n) {
    FOR_EACH(i, n) {
        float s = 0.0f;
        for (int k = 0; k < splits; ++k) s += part[(i64)k * n + i];
        dst[i] += s;
    }
}

// ---- conv_transpose2d (kernel = stride = k, no padding) ---------------------------------------------------
// g reuses ConvGeom: C, O, H, W of the input, kh = kw = stride = k.

// y[b, o, y·k + i, x·k + j] = bias[o] + Σ_c w[c, o, i, j]·x[b, c, y, x];  m = (o, i, j), n = (b, y, x), k = c
struct ConvTForward {
    ConvGeom g; const float* x; const float* w; const float* bias; float* y;
    __device__ float a(int m, long long c) const { return w[c * g.O * g.kh * g.kh + m]; }
    __device__ float b(long long c, int n) const {
        int HW = g.H * g.W, bi = n / HW, p = n % HW;
        return x[((long long)bi * g.C + c) * HW + p];
    }
    __device__ void store(int, int m, int n, float v) const {
        int k = g.kh, o = m / (k * k), i = m % (k * k) / k, j = m % k;
        int HW = g.H * g.W, bi = n / HW, p = n % HW, yy = p / g.W, xx = p % g.W;
        y[(((long long)bi * g.O + o) * g.H * k + yy * k + i) * g.W * k + xx * k + j] = v + (bias ? bias[o] : 0.0f);
    }
};

// gx[b, c, y, x] += Σ_(o,i,j) w[c, o, i, j]·gy[b, o, y·k + i, x·k + j];  m = c, n = (b, y, x), k = (o, i, j)
struct ConvTData {
    ConvGeom g; const float* w; const float* gy; float* gx;
    __device__ float a(int m, long long q) const { return w[(long long)m * g.O * g.kh * g.kh + q]; }
    __device__ float b(long long q, int n) const {
        int k = g.kh, o = (int)(q / (k * k)), i = (int)(q % (k * k)) / k, j = (int)(q % k);
        int HW = g.H * g.W, bi = n / HW, p = n % HW, yy = p / g.W, xx = p % g.W;
        return gy[(((long long)bi * g.O + o) * g.H * k + yy * k + i) * g.W * k + xx * k + j];
    }
    __device__ void store(int, int m, int n, float v) const {
        int HW = g.H * g.W, bi = n / HW, p = n % HW;
        gx[((long long)bi * g.C + m) * HW + p] += v;
    }
};

// part[split][c][(o,i,j)] = Σ_(b,y,x) in the slice x[b, c, y, x]·gy[b, o, y·k + i, x·k + j];  m = c, n = (o, i, j), k = (b, y, x)
struct ConvTWeight {
    ConvGeom g; const float* x; const float* gy; float* part;
    __device__ float a(int m, long long q) const {
        int HW = g.H * g.W, bi = (int)(q / HW), p = (int)(q % HW);
        return x[((long long)bi * g.C + m) * HW + p];
    }
    __device__ float b(long long q, int n) const {
        int k = g.kh, o = n / (k * k), i = n % (k * k) / k, j = n % k;
        int HW = g.H * g.W, bi = (int)(q / HW), p = (int)(q % HW), yy = p / g.W, xx = p % g.W;
        return gy[(((long long)bi * g.O + o) * g.H * k + yy * k + i) * g.W * k + xx * k + j];
    }
    __device__ void store(int split, int m, int n, float v) const {
        part[((long long)split * g.C + m) * g.O * g.kh * g.kh + n] = v;
    }
};

KERNEL void conv_transpose2d_forward_f32(ConvGeom g, const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias, float* __restrict__ y) {
    ConvTForward map{g, x, w, bias, y};
    implicit_gemm(map, g.O * g.kh * g.kh, g.B * g.H * g.W, g.C, 1);
}

KERNEL void conv_transpose2d_backward_data_f32(ConvGeom g, const float* __restrict__ w, const float* __restrict__ gy, float* __restrict__ gx) {
    ConvTData map{g, w, gy, gx};
    implicit_gemm(map, g.C, g.B * g.H * g.W, (long long)g.O * g.kh * g.kh, 1);
}

// grid.z = splits; part: splits × C × O·k·k
KERNEL void conv_transpose2d_backward_weight_f32(ConvGeom g, const float* __restrict__ x, const float* __restrict__ gy, float* __restrict__ part, int splits) {
    ConvTWeight map{g, x, gy, part};
    implicit_gemm(map, g.C, g.O * g.kh * g.kh, (long long)g.B * g.H * g.W, splits);
}

// ---- TF32 tensor-core versions (TF32 mode on sm_80+; the launcher picks them, same grids, 128 threads) ------

KERNEL void conv2d_forward_tf32(ConvGeom g, const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias, float* __restrict__ y) {
    ConvForward map{g, x, w, bias, y, (int)blockIdx.z};
    implicit_gemm_tf32(map, g.O / g.groups, g.B * g.Ho * g.Wo, (long long)(g.C / g.groups) * g.kh * g.kw, 1);
}

KERNEL void conv2d_backward_data_tf32(ConvGeom g, const float* __restrict__ w, const float* __restrict__ gy, float* __restrict__ gx) {
    ConvData map{g, w, gy, gx, (int)blockIdx.z};
    implicit_gemm_tf32(map, g.C / g.groups, g.B * g.H * g.W, (long long)(g.O / g.groups) * g.kh * g.kw, 1);
}

KERNEL void conv2d_backward_weight_tf32(ConvGeom g, const float* __restrict__ x, const float* __restrict__ gy, float* __restrict__ part, int splits) {
    ConvWeight map{g, x, gy, part, (int)blockIdx.z / splits};
    implicit_gemm_tf32(map, g.O / g.groups, (g.C / g.groups) * g.kh * g.kw, (long long)g.B * g.Ho * g.Wo, splits);
}

KERNEL void conv_transpose2d_forward_tf32(ConvGeom g, const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias, float* __restrict__ y) {
    ConvTForward map{g, x, w, bias, y};
    implicit_gemm_tf32(map, g.O * g.kh * g.kh, g.B * g.H * g.W, g.C, 1);
}

KERNEL void conv_transpose2d_backward_data_tf32(ConvGeom g, const float* __restrict__ w, const float* __restrict__ gy, float* __restrict__ gx) {
    ConvTData map{g, w, gy, gx};
    implicit_gemm_tf32(map, g.C, g.B * g.H * g.W, (long long)g.O * g.kh * g.kh, 1);
}

KERNEL void conv_transpose2d_backward_weight_tf32(ConvGeom g, const float* __restrict__ x, const float* __restrict__ gy, float* __restrict__ part, int splits) {
    ConvTWeight map{g, x, gy, part};
    implicit_gemm_tf32(map, g.C, g.O * g.kh * g.kh, (long long)g.B * g.H * g.W, splits);
}
