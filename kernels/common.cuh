// common.cuh — helpers shared by every kernel file. Compiled by NVRTC (11.8 and 13.x) at run time: no toolkit
// headers, only built-ins. Every kernel is extern "C" so that its name is not mangled.
#pragma once

#define KERNEL extern "C" __global__

// Dynamic shared memory (the launch's sharedBytes): `DYNAMIC_SHARED(float, tile);` declares `float* tile`.
// `extern __shared__ T x[]` cannot be rewritten by a macro, so kernels use this one; the CUDA simulator
// (src/Tmca.Cuda/Sim/prelude.h) points it at the block's arena.
#ifdef TMCA_SIM
#define DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(tmca_sim::dynamic_shared())
#else
#define DYNAMIC_SHARED(T, name) extern __shared__ __align__(16) unsigned char tmca_dynamic_smem_[]; T* name = reinterpret_cast<T*>(tmca_dynamic_smem_)
#endif

typedef long long i64;

// Grid-stride loop over [0, n): correct for any grid size, so launches can cap the grid.
#define FOR_EACH(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over a whole block (any multiple of 32 threads up to 1024). `scratch` holds 32 floats. All threads get the sum.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + 31) >> 5;
    v = threadIdx.x < warps ? scratch[threadIdx.x] : 0.0f;
    if (warp == 0) v = warp_sum(v);
    if (threadIdx.x == 0) scratch[0] = v;
    __syncthreads();
    return scratch[0];
}

// Shapes of up to 8 axes passed by value (broadcasting and reductions).
#define MAX_RANK 8
struct Shape8 { int rank; i64 dims[MAX_RANK]; i64 s0[MAX_RANK]; i64 s1[MAX_RANK]; };

// Offsets of element `i` (row-major over dims) in two operands with strides s0 and s1 (0 on broadcast axes).
__device__ __forceinline__ void offsets2(const Shape8& s, i64 i, i64* o0, i64* o1) {
    i64 a = 0, b = 0;
    for (int d = s.rank - 1; d >= 0; --d) {
        i64 q = i % s.dims[d];
        i /= s.dims[d];
        a += q * s.s0[d];
        b += q * s.s1[d];
    }
    *o0 = a; *o1 = b;
}

// Φ(x) and φ(x) of the standard normal (GELU's exact erf form).
__device__ __forceinline__ float normal_cdf(float x) { return 0.5f * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float normal_pdf(float x) { return 0.39894228040143268f * expf(-0.5f * x * x); }

// ---- tensor cores: TF32 mma.sync m16n8k8 (sm_80 and later), the one place kernels reach them ----------------
// D = A·B + D on one warp, A 16×8 (row), B 8×8 (col), D 16×8 in FP32; every lane holds (g = lane >> 2, t = lane % 4):
//   A: a[0] (g, t)   a[1] (g+8, t)    a[2] (g, t+4)    a[3] (g+8, t+4)
//   B: b[0] (t, g)   b[1] (t+4, g)
//   D: d[0] (g, 2t)  d[1] (g, 2t+1)   d[2] (g+8, 2t)   d[3] (g+8, 2t+1)
// TF32_ROUND(x) gives the TF32 operand bits of a float: round to nearest, ties away from zero (cvt.rna), the
// rounding the simulator's GEMM applies for cuBLAS's TF32 mode, so both TF32 paths see the same inputs.
// On the simulator both are emulated exactly at a warp meeting point (prelude.h, "tensor cores"). Below sm_80
// the instructions do not exist: the kernels compile, trap if launched, and the launcher never picks them there.
#ifdef TMCA_SIM
#define TF32_ROUND(x) tmca_sim::tf32_rna(x)
#define MMA_TF32_M16N8K8(d, a, b) tmca_sim::mma_tf32_m16n8k8(d, a, b)
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
__device__ __forceinline__ unsigned tf32_rna_(float x) { unsigned r; asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x)); return r; }
#define TF32_ROUND(x) tf32_rna_(x)
#define MMA_TF32_M16N8K8(d, a, b)                                                                                         \
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};" \
                 : "+f"((d)[0]), "+f"((d)[1]), "+f"((d)[2]), "+f"((d)[3])                                                 \
                 : "r"((a)[0]), "r"((a)[1]), "r"((a)[2]), "r"((a)[3]), "r"((b)[0]), "r"((b)[1]))
#else
#define TF32_ROUND(x) __float_as_uint(x)
#define MMA_TF32_M16N8K8(d, a, b) __trap()
#endif
