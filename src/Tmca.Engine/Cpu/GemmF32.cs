using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tmca.Engine;

/// <summary>
/// The float GEMM fast path, in the BLIS loop order: for each KC×NC block of B (packed into NR-wide column
/// panels) and each MC×KC block of A (packed into MR-tall row panels), a register-blocked micro-kernel
/// computes MR×NR tiles of C from the packed panels, so the inner loop streams contiguous memory and keeps
/// the whole C tile in registers. AVX-512: 8×32 tile (16 zmm accumulators); AVX2+FMA: 6×16 (12 ymm).
/// Without either it falls back to the reference. Threads split the M blocks (or the N panels when M is short).
/// </summary>
internal static unsafe class GemmF32
{
    private const int KC = 256, MCPanels = 12, NC = 2048;

    private static readonly bool Use512 = Avx512F.IsSupported && Vector512.IsHardwareAccelerated;
    private static readonly bool Use256 = Avx2.IsSupported && Fma.IsSupported;
    internal static int MR => Use512 ? 8 : 6;
    internal static int NR => Use512 ? 32 : 16;


    [ThreadStatic] private static float* _packA;
    [ThreadStatic] private static float* _packB;
    [ThreadStatic] private static int _packBSize;

    public static void Run(bool ta, bool tb, int m, int n, int k, float alpha,
                           HostArray<float> a, long offA, long sA, HostArray<float> b, long offB, long sB,
                           float beta, HostArray<float> c, long offC, long sC, int batch, bool threads = true)
    {
        if (m == 0 || n == 0 || batch == 0) return;
        if (!(Use512 || Use256) || (long)m * n * k < 4096)
        {
            CpuBackend.GemmRef(ta, tb, m, n, k, alpha, a, offA, sA, b, offB, sB, beta, c, offC, sC, batch);
            return;
        }
        fixed (float* pa = a, pb = b, pc = c) RunPointers(ta, tb, m, n, k, alpha, pa + offA, sA, pb + offB, sB, beta, pc + offC, sC, batch, threads);
        GC.KeepAlive(a); GC.KeepAlive(b); GC.KeepAlive(c);   // native memory: the arrays must outlive the raw pointers
    }

    /// <summary>The same product on raw memory (the CUDA simulator's "cuBLAS": device buffers are host memory there).</summary>
    public static void RunPointers(bool ta, bool tb, int m, int n, int k, float alpha, float* A, long sA, float* B, long sB,
                                   float beta, float* Cp, long sC, int batch, bool threads = true)
    {
        if (m == 0 || n == 0 || batch == 0) return;
        if (!(Use512 || Use256) || (long)m * n * k < 4096)
        {
            RefPointers(ta, tb, m, n, k, alpha, A, sA, B, sB, beta, Cp, sC, batch);
            return;
        }
        long work = (long)m * n * k;
        if (batch > 1 && work < 4_000_000 && threads)
        {
            // Many small products (attention heads, per-image convs): one product per task.
            Par.For(batch, work, i => Single(ta, tb, m, n, k, alpha, A + i * sA, B + i * sB, beta, Cp + i * sC, parallel: false));
        }
        else
        {
            for (int i = 0; i < batch; i++)
                Single(ta, tb, m, n, k, alpha, A + i * sA, B + i * sB, beta, Cp + i * sC, parallel: threads && work >= 2_000_000);
        }
    }

    /// <summary>The reference on raw memory: one dot product per output, accumulated in float64 (as CpuBackend.GemmRef).</summary>
    private static void RefPointers(bool ta, bool tb, int m, int n, int k, float alpha, float* a, long sA, float* b, long sB,
                                    float beta, float* c, long sC, int batch)
    {
        for (int bi = 0; bi < batch; bi++)
            for (int i = 0; i < m; i++)
            {
                float* a0 = a + bi * sA, b0 = b + bi * sB, c0 = c + bi * sC + (long)i * n;
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                        s += (double)(ta ? a0[(long)p * m + i] : a0[(long)i * k + p]) * (tb ? b0[(long)j * k + p] : b0[(long)p * n + j]);
                    double prev = beta == 0 ? 0 : beta * (double)c0[j];
                    c0[j] = (float)(alpha * s + prev);
                }
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Single(bool ta, bool tb, int m, int n, int k, float alpha, float* a, float* b, float beta, float* c, bool parallel)
    {
        if (k == 0 || alpha == 0f)
        {
            for (long i = 0; i < (long)m * n; i++) c[i] = beta == 0f ? 0f : beta * c[i];
            return;
        }

        int mr = MR, nr = NR, maxMc = mr * MCPanels;
        if (!tb && m <= 4 * mr && n >= nr)
        {
            Unpacked(ta, m, n, k, alpha, a, b, beta, c);
            return;
        }
        // M blocks of at most MCPanels row panels, balanced so that threads get equal shares.
        int blocks = (m + maxMc - 1) / maxMc;
        if (parallel) blocks = Math.Max(2, (blocks + 1) / 2 * 2);
        int mc = Math.Min(maxMc, ((m + blocks - 1) / blocks + mr - 1) / mr * mr);
        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            int nPanels = (nc + nr - 1) / nr;
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                float blockBeta = pc == 0 ? beta : 1f;   // the first K block applies beta, later ones accumulate
                float* bp = PackBBuffer(nPanels * nr * kc);
                PackB(tb, b, k, n, pc, kc, jc, nc, bp);
                int mBlocks = (m + mc - 1) / mc;
                if (parallel && mBlocks >= 2)
                {
                    long bpAddr = (long)bp;
                    Parallel.For(0, mBlocks, ib =>
                    {
                        int ic = ib * mc, mcc = Math.Min(mc, m - ic);
                        float* ap = PackABuffer();
                        PackA(ta, a, m, k, ic, mcc, pc, kc, ap);
                        Block(ap, (float*)bpAddr, c, n, ic, mcc, jc, nc, kc, alpha, blockBeta, 0, nPanels);
                    });
                }
                else
                {
                    for (int ic = 0; ic < m; ic += mc)
                    {
                        int mcc = Math.Min(mc, m - ic);
                        float* ap = PackABuffer();
                        PackA(ta, a, m, k, ic, mcc, pc, kc, ap);
                        if (parallel && nPanels >= 4)
                        {
                            long apAddr = (long)ap, bpAddr = (long)bp;
                            int half = nPanels / 2;
                            Parallel.Invoke(
                                () => Block((float*)apAddr, (float*)bpAddr, c, n, ic, mcc, jc, nc, kc, alpha, blockBeta, 0, half),
                                () => Block((float*)apAddr, (float*)bpAddr, c, n, ic, mcc, jc, nc, kc, alpha, blockBeta, half, nPanels));
                        }
                        else Block(ap, bp, c, n, ic, mcc, jc, nc, kc, alpha, blockBeta, 0, nPanels);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Short M (a few row panels, e.g. a conv with few output channels): each packed B panel would be reused
    /// only M/MR times, so packing B costs more than the arithmetic. Row-major B rows are already contiguous,
    /// so the micro-kernel reads full NR-wide column panels of B in place (row stride n); only the last,
    /// partial panel goes through a small packed copy.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unpacked(bool ta, int m, int n, int k, float alpha, float* a, float* b, float beta, float* c)
    {
        int mr = MR, nr = NR;
        int fullPanels = n / nr, tail = n - fullPanels * nr;
        for (int pc = 0; pc < k; pc += KC)
        {
            int kc = Math.Min(KC, k - pc);
            float blockBeta = pc == 0 ? beta : 1f;
            float* ap = PackABuffer();
            PackA(ta, a, m, k, 0, m, pc, kc, ap);
            float* bp = tail > 0 ? PackBBuffer(nr * kc) : null;
            if (tail > 0) PackB(false, b, k, n, pc, kc, fullPanels * nr, tail, bp);
            for (int jp = 0; jp <= fullPanels; jp++)
            {
                bool last = jp == fullPanels;
                if (last && tail == 0) break;
                float* bpanel = last ? bp : b + (long)pc * n + jp * nr;
                int ldb = last ? nr : n, nrr = last ? tail : nr;
                for (int ir = 0; ir < m; ir += mr)
                {
                    int mrr = Math.Min(mr, m - ir);
                    float* ctile = c + (long)ir * n + jp * nr;
                    if (Use512) Kernel8x32(kc, ap + (long)ir * kc, bpanel, ldb, ctile, n, alpha, blockBeta, mrr, nrr);
                    else Kernel6x16(kc, ap + (long)ir * kc, bpanel, ldb, ctile, n, alpha, blockBeta, mrr, nrr);
                }
            }
        }
    }

    /// <summary>All MR×NR tiles of one packed A block against packed B panels [p0, p1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block(float* ap, float* bp, float* c, int ldc, int ic, int mcc, int jc, int nc, int kc, float alpha, float beta, int p0, int p1)
    {
        int mr = MR, nr = NR;
        for (int jp = p0; jp < p1; jp++)
        {
            int jr = jp * nr, nrr = Math.Min(nr, nc - jr);
            float* bpanel = bp + (long)jp * nr * kc;
            for (int ir = 0; ir < mcc; ir += mr)
            {
                int mrr = Math.Min(mr, mcc - ir);
                float* apanel = ap + (long)ir * kc;
                float* ctile = c + (long)(ic + ir) * ldc + jc + jr;
                if (Use512) Kernel8x32(kc, apanel, bpanel, nr, ctile, ldc, alpha, beta, mrr, nrr);
                else Kernel6x16(kc, apanel, bpanel, nr, ctile, ldc, alpha, beta, mrr, nrr);
            }
        }
    }

    // ---- packing ------------------------------------------------------------------------------------

    /// <summary>B[pc..pc+kc, jc..jc+nc] → panels of NR columns, each kc rows of NR contiguous floats (zero-padded).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(bool tb, float* b, int k, int n, int pc, int kc, int jc, int nc, float* dst)
    {
        int nr = NR;
        for (int j0 = 0; j0 < nc; j0 += nr)
        {
            int w = Math.Min(nr, nc - j0);
            float* panel = dst + (long)(j0 / nr) * nr * kc;
            if (!tb)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* row = panel + (long)p * nr;
                    float* src = b + (long)(pc + p) * n + jc + j0;
                    for (int j = 0; j < w; j++) row[j] = src[j];
                    for (int j = w; j < nr; j++) row[j] = 0f;
                }
            }
            else
            {
                // B stored transposed (n×k): read each of the panel's source rows contiguously and scatter it
                // down one column of the panel (the panel is small enough to stay in L1 while it fills).
                for (int j = 0; j < w; j++)
                {
                    float* src = b + (long)(jc + j0 + j) * k + pc;
                    for (int p = 0; p < kc; p++) panel[(long)p * nr + j] = src[p];
                }
                if (w < nr)
                    for (int p = 0; p < kc; p++)
                        for (int j = w; j < nr; j++) panel[(long)p * nr + j] = 0f;
            }
        }
    }

    /// <summary>A[ic..ic+mcc, pc..pc+kc] → panels of MR rows, each kc columns of MR contiguous floats (zero-padded).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(bool ta, float* a, int m, int k, int ic, int mcc, int pc, int kc, float* dst)
    {
        int mr = MR;
        for (int i0 = 0; i0 < mcc; i0 += mr)
        {
            int h = Math.Min(mr, mcc - i0);
            float* panel = dst + (long)i0 * kc;
            if (!ta)
            {
                for (int i = 0; i < h; i++)
                {
                    float* src = a + (long)(ic + i0 + i) * k + pc;
                    for (int p = 0; p < kc; p++) panel[(long)p * mr + i] = src[p];
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(pc + p) * m + ic + i0;
                    for (int i = 0; i < h; i++) panel[(long)p * mr + i] = src[i];
                }
            }
            if (h < mr)
                for (int p = 0; p < kc; p++)
                    for (int i = h; i < mr; i++) panel[(long)p * mr + i] = 0f;
        }
    }

    /// <summary>This thread's A-block buffer, sized once for the largest block (MR·MCPanels rows × KC).</summary>
    private static float* PackABuffer()
    {
        if (_packA == null) _packA = (float*)NativeMemory.AlignedAlloc((nuint)(8 * MCPanels * KC * sizeof(float)), 64);
        return _packA;
    }

    private static float* PackBBuffer(int floats)
    {
        if (_packBSize < floats)
        {
            if (_packB != null) NativeMemory.AlignedFree(_packB);
            _packB = (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
            _packBSize = floats;
        }
        return _packB;
    }

    // ---- micro-kernels ------------------------------------------------------------------------------

    /// <summary>C[8×32] = alpha·Apanel[8×kc]·Bpanel[kc×32] + beta·C; writes only the first mrr×nrr entries
    /// (beta = 0 never reads C, so NaN or garbage there does not leak through).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32(int kc, float* a, float* b, int ldb, float* c, int ldc, float alpha, float beta, int mrr, int nrr)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[0]); c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Avx512F.FusedMultiplyAdd(x, b0, c40); c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Avx512F.FusedMultiplyAdd(x, b0, c50); c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]); c60 = Avx512F.FusedMultiplyAdd(x, b0, c60); c61 = Avx512F.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]); c70 = Avx512F.FusedMultiplyAdd(x, b0, c70); c71 = Avx512F.FusedMultiplyAdd(x, b1, c71);
            a += 8; b += ldb;
        }
        var al = Vector512.Create(alpha);
        if (mrr == 8 && nrr == 32 && beta == 1f)
        {
            Store512(c, al, c00, c01); Store512(c + ldc, al, c10, c11); Store512(c + 2 * ldc, al, c20, c21); Store512(c + 3 * ldc, al, c30, c31);
            Store512(c + 4 * ldc, al, c40, c41); Store512(c + 5 * ldc, al, c50, c51); Store512(c + 6 * ldc, al, c60, c61); Store512(c + 7 * ldc, al, c70, c71);
            return;
        }
        float* t = stackalloc float[8 * 32];
        c00.Store(t); c01.Store(t + 16); c10.Store(t + 32); c11.Store(t + 48); c20.Store(t + 64); c21.Store(t + 80); c30.Store(t + 96); c31.Store(t + 112);
        c40.Store(t + 128); c41.Store(t + 144); c50.Store(t + 160); c51.Store(t + 176); c60.Store(t + 192); c61.Store(t + 208); c70.Store(t + 224); c71.Store(t + 240);
        StoreTile(t, 32, c, ldc, alpha, beta, mrr, nrr);
    }

    /// <summary>C[i, j] = alpha·t[i, j] + beta·C[i, j] over the valid part of a tile.</summary>
    private static void StoreTile(float* t, int ldt, float* c, int ldc, float alpha, float beta, int mrr, int nrr)
    {
        for (int i = 0; i < mrr; i++)
        {
            float* row = c + (long)i * ldc;
            if (beta == 0f) for (int j = 0; j < nrr; j++) row[j] = alpha * t[i * ldt + j];
            else if (beta == 1f) for (int j = 0; j < nrr; j++) row[j] += alpha * t[i * ldt + j];
            else for (int j = 0; j < nrr; j++) row[j] = alpha * t[i * ldt + j] + beta * row[j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, Vector512<float> alpha, Vector512<float> v0, Vector512<float> v1)
    {
        Avx512F.FusedMultiplyAdd(alpha, v0, Vector512.Load(c)).Store(c);
        Avx512F.FusedMultiplyAdd(alpha, v1, Vector512.Load(c + 16)).Store(c + 16);
    }

    /// <summary>C[6×16] = alpha·Apanel[6×kc]·Bpanel[kc×16] + beta·C (AVX2 + FMA machines).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(int kc, float* a, float* b, int ldb, float* c, int ldc, float alpha, float beta, int mrr, int nrr)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Fma.MultiplyAdd(x, b0, c40); c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Fma.MultiplyAdd(x, b0, c50); c51 = Fma.MultiplyAdd(x, b1, c51);
            a += 6; b += ldb;
        }
        float* t = stackalloc float[6 * 16];
        c00.Store(t); c01.Store(t + 8); c10.Store(t + 16); c11.Store(t + 24); c20.Store(t + 32); c21.Store(t + 40);
        c30.Store(t + 48); c31.Store(t + 56); c40.Store(t + 64); c41.Store(t + 72); c50.Store(t + 80); c51.Store(t + 88);
        StoreTile(t, 16, c, ldc, alpha, beta, mrr, nrr);
    }
}
