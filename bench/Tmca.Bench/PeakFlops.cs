using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tmca.Bench;

/// <summary>
/// This machine's practical float32 peak: 16 independent FMA chains per core (enough to cover FMA latency ×
/// pipes), on every core at once. Nothing a real kernel does can beat it, so it is the denominator of
/// "fraction of peak".
/// </summary>
public static class PeakFlops
{
    public static int VectorWidth => Avx512F.IsSupported ? 16 : Avx2.IsSupported ? 8 : 4;
    public static string Isa => Avx512F.IsSupported ? "AVX-512 (16 fp32 lanes) + FMA" : Fma.IsSupported ? "AVX2 (8 fp32 lanes) + FMA" : "SSE";

    /// <summary>GFLOP/s over all cores (best of several runs).</summary>
    public static double MeasureGflops(int threads)
    {
        const long iters = 20_000_000;
        double best = 0;
        for (int rep = 0; rep < 5; rep++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => Sink = Chains(iters));
            double s = sw.Elapsed.TotalSeconds;
            double flops = (double)threads * iters * 16 * VectorWidth * 2;
            best = Math.Max(best, flops / s / 1e9);
        }
        return best;
    }

    public static float Sink;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains(long iters)
    {
        if (!Avx512F.IsSupported) return Chains256(iters);
        var m = Vector512.Create(0.999999f); var a = Vector512.Create(1e-7f);
        Vector512<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a, c12 = a, c13 = a, c14 = a, c15 = a;
        for (long i = 0; i < iters; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(c0, m, a); c1 = Avx512F.FusedMultiplyAdd(c1, m, a); c2 = Avx512F.FusedMultiplyAdd(c2, m, a); c3 = Avx512F.FusedMultiplyAdd(c3, m, a);
            c4 = Avx512F.FusedMultiplyAdd(c4, m, a); c5 = Avx512F.FusedMultiplyAdd(c5, m, a); c6 = Avx512F.FusedMultiplyAdd(c6, m, a); c7 = Avx512F.FusedMultiplyAdd(c7, m, a);
            c8 = Avx512F.FusedMultiplyAdd(c8, m, a); c9 = Avx512F.FusedMultiplyAdd(c9, m, a); c10 = Avx512F.FusedMultiplyAdd(c10, m, a); c11 = Avx512F.FusedMultiplyAdd(c11, m, a);
            c12 = Avx512F.FusedMultiplyAdd(c12, m, a); c13 = Avx512F.FusedMultiplyAdd(c13, m, a); c14 = Avx512F.FusedMultiplyAdd(c14, m, a); c15 = Avx512F.FusedMultiplyAdd(c15, m, a);
        }
        var s = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15;
        return Vector512.Sum(s);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains256(long iters)
    {
        var m = Vector256.Create(0.999999f); var a = Vector256.Create(1e-7f);
        Vector256<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a, c12 = a, c13 = a, c14 = a, c15 = a;
        for (long i = 0; i < iters; i++)
        {
            c0 = Fma.MultiplyAdd(c0, m, a); c1 = Fma.MultiplyAdd(c1, m, a); c2 = Fma.MultiplyAdd(c2, m, a); c3 = Fma.MultiplyAdd(c3, m, a);
            c4 = Fma.MultiplyAdd(c4, m, a); c5 = Fma.MultiplyAdd(c5, m, a); c6 = Fma.MultiplyAdd(c6, m, a); c7 = Fma.MultiplyAdd(c7, m, a);
            c8 = Fma.MultiplyAdd(c8, m, a); c9 = Fma.MultiplyAdd(c9, m, a); c10 = Fma.MultiplyAdd(c10, m, a); c11 = Fma.MultiplyAdd(c11, m, a);
            c12 = Fma.MultiplyAdd(c12, m, a); c13 = Fma.MultiplyAdd(c13, m, a); c14 = Fma.MultiplyAdd(c14, m, a); c15 = Fma.MultiplyAdd(c15, m, a);
        }
        var s = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15;
        return Vector256.Sum(s);
    }
}
