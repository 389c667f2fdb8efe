// tmca.cuh — every TMCA level of one fused launch, passed by value (C# twin: Kernels/KernelDescriptor.cs's
// TmcaLevels), shared by tmca.cu and the kernel lab's v1 (lab/tmca_v1.cu). Level l: grid h×w, v B×(h·w)×d, u B×d,
// omega B×h×w, vbar B×d, gv/gu their gradients (null: not asked); (S, Sw) the ground truth's size (forward only).
#pragma once
#include "common.cuh"

#define TMCA_LEVELS 4
struct TmcaLevels {
    int count, B, S, Sw, global, pad;
    int h[TMCA_LEVELS]; int w[TMCA_LEVELS]; int d[TMCA_LEVELS];
    const float* v[TMCA_LEVELS]; const float* u[TMCA_LEVELS];
    float* omega[TMCA_LEVELS]; float* vbar[TMCA_LEVELS];
    float* gv[TMCA_LEVELS]; float* gu[TMCA_LEVELS];
};
