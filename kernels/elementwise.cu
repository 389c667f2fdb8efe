// elementwise.cu — activations, scalar maps, broadcasting binary ops, axpy, fill.
// x, y, gy, gx: n elements. Op codes follow Tmca.Engine.UnaryOp / BinaryOp.
#include "common.cuh"

enum { GELU = 0, SIGMOID, LEAKY_RELU, EXP, LOG, SQRT, SCALE, ADD_SCALAR, CLAMP_MIN, SQUARE, RECIPROCAL };
enum { ADD = 0, SUB, MUL, DIV };

__device__ __forceinline__ float unary(int op, float a, float v) {
    switch (op) {
        case GELU: return v * normal_cdf(v);
        case SIGMOID: return 1.0f / (1.0f + expf(-v));
        case LEAKY_RELU: return v >= 0.0f ? v : a * v;
        case EXP: return expf(v);
        case LOG: return logf(v);
        case SQRT: return sqrtf(v);
        case SCALE: return a * v;
        case ADD_SCALAR: return v + a;
        case CLAMP_MIN: return v >= a ? v : a;
        case SQUARE: return v * v;
        default: return 1.0f / v;      // RECIPROCAL
    }
}

// d f(x)/dx; y is the forward output (cheaper for sigmoid, exp, sqrt, reciprocal).
__device__ __forceinline__ float unary_grad(int op, float a, float v, float y) {
    switch (op) {
        case GELU: return normal_cdf(v) + v * normal_pdf(v);
        case SIGMOID: return y * (1.0f - y);
        case LEAKY_RELU: return v > 0.0f ? 1.0f : a;
        case EXP: return y;
        case LOG: return 1.0f / v;
        case SQRT: return 0.5f / y;
        case SCALE: return a;
        case ADD_SCALAR: return 1.0f;
        case CLAMP_MIN: return v >= a ? 1.0f : 0.0f;
        case SQUARE: return v + v;
        default: return -y * y;        // RECIPROCAL
    }
}

__device__ __forceinline__ float binary(int op, float a, float b) {
    switch (op) {
        case ADD: return a + b;
        case SUB: return a - b;
        case MUL: return a * b;
        default: return a / b;
    }
}

// y = f(x)
KERNEL void unary_f32(int op, float alpha, const float* __restrict__ x, float* __restrict__ y, i64 n) {
    FOR_EACH(i, n) y[i] = unary(op, alpha, x[i]);
}

// gx += f'(x)·gy
KERNEL void unary_backward_f32(int op, float alpha, const float* __restrict__ x, const float* __restrict__ y,
                               const float* __restrict__ gy, float* __restrict__ gx, i64 n) {
    FOR_EACH(i, n) gx[i] += unary_grad(op, alpha, x[i], y[i]) * gy[i];
}

// y (+)= a op b, all three the same shape
KERNEL void binary_same_f32(int op, const float* __restrict__ a, const float* __restrict__ b, float* y, i64 n, int accumulate) {
    FOR_EACH(i, n) {
        float v = binary(op, a[i], b[i]);
        y[i] = accumulate ? y[i] + v : v;
    }
}

// y (+)= a op b with broadcasting: s.dims is y's shape, s.s0 / s.s1 the strides of a / b (0 on broadcast axes)
KERNEL void binary_broadcast_f32(int op, const float* __restrict__ a, const float* __restrict__ b, float* y, i64 n, int accumulate, Shape8 s) {
    FOR_EACH(i, n) {
        i64 oa, ob;
        offsets2(s, i, &oa, &ob);
        float v = binary(op, a[oa], b[ob]);
        y[i] = accumulate ? y[i] + v : v;
    }
}

// y += alpha·x
KERNEL void axpy_f32(float alpha, const float* __restrict__ x, float* __restrict__ y, i64 n) {
    FOR_EACH(i, n) y[i] += alpha * x[i];
}

// x += value (I64 counters)
KERNEL void add_i64(i64* x, i64 value, i64 n) {
    FOR_EACH(i, n) x[i] += value;
}

KERNEL void fill_f32(float value, float* y, i64 n) {
    FOR_EACH(i, n) y[i] = value;
}
