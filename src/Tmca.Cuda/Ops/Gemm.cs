using Tmca.Engine;

namespace Tmca.Cuda;

// Matrix multiply through the device's GEMM (cuBLAS on a GPU, the CPU backend's GEMM on the simulator);
// CPU reference Tmca.Engine/Cpu/Gemm.cs.
public sealed partial class CudaBackend
{
    // C_i[m×n] = alpha·op(A_i)·op(B_i) + beta·C_i, row-major, batched by strides (0 broadcasts an operand)
    public void Gemm(bool transA, bool transB, int m, int n, int k, double alpha, Tensor a, long offA, long strideA,
                     Tensor b, long offB, long strideB, double beta, Tensor c, long offC, long strideC, int batch)
    {
        RequireF32("gemm", a, b, c);
        if (m < 0 || n < 0 || k < 0 || batch < 0) throw new ArgumentException($"gemm: negative size (m={m} n={n} k={k} batch={batch})");
        BackendChecks.GemmBounds("A", a, offA, strideA, batch, (long)m * k);
        BackendChecks.GemmBounds("B", b, offB, strideB, batch, (long)k * n);
        BackendChecks.GemmBounds("C", c, offC, strideC, batch, (long)m * n);
        if (m == 0 || n == 0 || batch == 0) return;
        Launches++;
        if (Trace) TraceWriter.WriteLine($"[cuda] {Launches,6} {"gemm" + (Tf32 ? " (tf32)" : ""),-36} {"",-30} {Profiler.CurrentOp ?? "-",-22} m={m} n={n} k={k} batch={batch} ta={transA} tb={transB}");
        Runtime.Gemm(new GemmCall(transA, transB, m, n, k, (float)alpha, P(a) + (ulong)offA * 4, strideA, P(b) + (ulong)offB * 4, strideB,
                                  (float)beta, P(c) + (ulong)offC * 4, strideC, batch, Tf32));
        if (SyncEveryLaunch) Runtime.Synchronize();
    }
}
