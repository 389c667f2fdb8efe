// adamw.cu — AdamW over every parameter of a model in one launch (PyTorch's algorithm, see Cpu/AdamW.cs).
// Each block updates one chunk of one tensor: chunk_slot[b] says which tensor, chunk_start[b] where in it.
// The step guard: nonfinite_count_multi first adds the number of NaN/Inf gradient elements to *guard (which the host
// seeded with 0·loss, so a non-finite loss counts too), and adamw_multi_f32 leaves every tensor untouched when
// *guard != 0 — a bad step is skipped on the device, with no host round trip, and the host learns it from the
// step's one read-back.
#include "common.cuh"

struct AdamSlot { float* p; const float* g; float* m; float* v; i64 n; int decay; int pad; };

KERNEL void nonfinite_count_multi(const AdamSlot* __restrict__ slots, const int* __restrict__ chunk_slot, const i64* __restrict__ chunk_start,
                                  int chunk_size, float* __restrict__ guard) {
    AdamSlot s = slots[chunk_slot[blockIdx.x]];
    i64 start = chunk_start[blockIdx.x];
    i64 end = start + chunk_size < s.n ? start + chunk_size : s.n;
    int bad = 0;
    for (i64 i = start + threadIdx.x; i < end; i += blockDim.x) bad += !(fabsf(s.g[i]) <= 3.402823466e38f);   // NaN fails every comparison
    if (bad) atomicAdd(guard, (float)bad);   // no atomics at all on a healthy step
}

// guard: null (no guard) or the count above; the update is skipped when it is not 0 (NaN included).
KERNEL void adamw_multi_f32(const AdamSlot* __restrict__ slots, const int* __restrict__ chunk_slot, const i64* __restrict__ chunk_start,
                            int chunk_size, float lr, float beta1, float beta2, float eps, float weight_decay,
                            float bias_correction1, float bias_correction2_sqrt, const float* __restrict__ guard) {
    if (guard && *guard != 0.0f) return;
    AdamSlot s = slots[chunk_slot[blockIdx.x]];
    i64 start = chunk_start[blockIdx.x];
    i64 end = start + chunk_size < s.n ? start + chunk_size : s.n;
    float decay_factor = s.decay ? 1.0f - lr * weight_decay : 1.0f;
    float step_size = lr / bias_correction1;
    for (i64 i = start + threadIdx.x; i < end; i += blockDim.x) {
        float g = s.g[i];
        float p = s.p[i] * decay_factor;
        float m = s.m[i] + (1.0f - beta1) * (g - s.m[i]);
        float v = beta2 * s.v[i] + (1.0f - beta2) * g * g;
        p -= step_size * m / (sqrtf(v) / bias_correction2_sqrt + eps);
        s.p[i] = p; s.m[i] = m; s.v[i] = v;
    }
}
