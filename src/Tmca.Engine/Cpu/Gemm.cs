using System.Numerics;

namespace Tmca.Engine;

// Matrix multiply. C_i[m×n] = alpha·op(A_i)[m×k]·op(B_i)[k×n] + beta·C_i, row-major, batched by strides.
public sealed partial class CpuBackend
{
    public void Gemm(bool transA, bool transB, int m, int n, int k, double alpha,
                     Tensor a, long offA, long strideA, Tensor b, long offB, long strideB,
                     double beta, Tensor c, long offC, long strideC, int batch)
    {
        CheckGemmBounds("A", a, offA, strideA, batch, (long)m * k);
        CheckGemmBounds("B", b, offB, strideB, batch, (long)k * n);
        CheckGemmBounds("C", c, offC, strideC, batch, (long)m * n);
        if (FloatType(a, b, c) == DType.F32)
            GemmF32.Run(transA, transB, m, n, k, (float)alpha, A<float>(a), offA, strideA, A<float>(b), offB, strideB, (float)beta, A<float>(c), offC, strideC, batch);
        else
            GemmRef(transA, transB, m, n, k, alpha, A<double>(a), offA, strideA, A<double>(b), offB, strideB, beta, A<double>(c), offC, strideC, batch);
    }

    /// <summary>Float GEMM on raw memory with the same semantics (row-major, strided batches): what the CUDA
    /// simulator runs for cuBLAS, where device buffers are host memory.</summary>
    public static unsafe void GemmF32Raw(bool transA, bool transB, int m, int n, int k, float alpha, float* a, long strideA,
                                         float* b, long strideB, float beta, float* c, long strideC, int batch) =>
        GemmF32.RunPointers(transA, transB, m, n, k, alpha, a, strideA, b, strideB, beta, c, strideC, batch);

    private static void CheckGemmBounds(string name, Tensor t, long off, long stride, int batch, long size) => BackendChecks.GemmBounds(name, t, off, stride, batch, size);

    /// <summary>The reference: one dot product per output element, accumulated in float64.</summary>
    internal static void GemmRef<T>(bool ta, bool tb, int m, int n, int k, double alpha,
                                    HostArray<T> a, long offA, long sA, HostArray<T> b, long offB, long sB,
                                    double beta, HostArray<T> c, long offC, long sC, int batch) where T : unmanaged, INumberBase<T>
    {
        Par.For(batch * m, (long)n * k, idx =>
        {
            int bi = idx / m, i = idx % m;
            long a0 = offA + bi * sA, b0 = offB + bi * sB, c0 = offC + bi * sC + (long)i * n;
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                {
                    T av = ta ? a[a0 + (long)p * m + i] : a[a0 + (long)i * k + p];
                    T bv = tb ? b[b0 + (long)j * k + p] : b[b0 + (long)p * n + j];
                    s += double.CreateTruncating(av) * double.CreateTruncating(bv);
                }
                // beta = 0 ignores what C held (BLAS semantics: NaN in C does not leak through).
                double prev = beta == 0 ? 0 : beta * double.CreateTruncating(c[c0 + j]);
                c[c0 + j] = T.CreateTruncating(alpha * s + prev);
            }
        });
    }
}
