using System.Globalization;
using System.Text;
using Tmca.Engine;
using Tmca.Engine.Verification;

namespace Tmca.Cuda;

/// <summary>
/// The kernel lab (llm.c's dev/cuda, here in one place): every CUDA kernel is first validated against the CPU
/// reference on a small input, then timed with CUDA events on a large one (warm-up, then the mean of many runs),
/// and reported as GB/s against the HBM roofline (bandwidth-bound kernels) or TFLOP/s (GEMMs). A kernel that
/// fails validation is reported and not timed.
/// </summary>
public static partial class KernelLab
{
    public sealed record Row(string Kernel, string Shape, double Ms, double Rate, string Unit, double PeakFraction, string Validation);

    /// <summary>Runs every benchmark; <paramref name="hbmGBs"/> and the FLOP peaks are the roofline used for the fractions.</summary>
    public static List<Row> Run(CudaBackend gpu, double hbmGBs = 3000, double fp32TFlops = 67, double tf32TFlops = 495, int repeats = 20, Action<string>? log = null)
    {
        var rows = new List<Row>();
        var cpu = CpuBackend.Instance;
        var rng = new Random(1);
        Tensor Rand(params int[] s) => Tensor.FromArray(Enumerable.Range(0, (int)Shape.Numel(s)).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), s);
        Tensor Dev(Tensor t) => t.To(gpu);   // scoped: back to the pool when the benchmark's scope closes

        // bandwidth-bound: (name, bytes moved per element, build inputs of n elements, the op)
        void Bandwidth(string name, string shape, double bytes, Func<Tensor[], Tensor> op, Func<int, Tensor[]> make, int nSmall, int nLarge)
        {
            string validation;
            using (new TensorScope())
            {
                var small = make(nSmall);
                var c = Comparison.Of(name, ToleranceKind.Forward, op(small.Select(Dev).ToArray()).To(cpu), op(small));
                validation = c.Pass ? $"ok ({c.MaxAbs:0.0e+00})" : $"FAIL ({c.MaxAbs:0.0e+00})";
            }
            if (!validation.StartsWith("ok")) { rows.Add(new Row(name, shape, double.NaN, double.NaN, "GB/s", double.NaN, validation)); return; }
            using (new TensorScope())
            {
                var big = make(nLarge).Select(Dev).ToArray();
                for (int i = 0; i < 3; i++) using (new TensorScope()) op(big);
                float ms = gpu.Time(() => { for (int i = 0; i < repeats; i++) using (new TensorScope()) op(big); }) / repeats;
                double gbs = bytes / (ms * 1e-3) / 1e9;
                rows.Add(new Row(name, shape, ms, gbs, "GB/s", gbs / hbmGBs, validation));
                log?.Invoke($"{name}: {ms:0.000} ms, {gbs:0} GB/s");
            }
        }

        var noGrad = Tape.NoGrad();   // the forward rows; the backward rows (BackwardKernels) record on a tape
        // 64 M floats (256 MiB) per tensor on a GPU; on the simulator (validation, CPU times) 256 K.
        int N = gpu.Simulated ? 1 << 18 : 1 << 26;
        Bandwidth("gelu forward", $"{N:N0}", 2.0 * N * 4, t => Ops.Gelu(t[0]), n => [Rand(n)], 1 << 16, N);
        Bandwidth("add (same shape)", $"{N:N0}", 3.0 * N * 4, t => Ops.Add(t[0], t[1]), n => [Rand(n), Rand(n)], 1 << 16, N);
        Bandwidth("add (bias broadcast)", $"{N / 256}×256 + 256", 2.0 * N * 4, t => Ops.Add(t[0], t[1]), n => [Rand(n / 256, 256), Rand(256)], 1 << 16, N);
        Bandwidth("sum to bias (reduce rows)", $"{N / 256}×256 → 256", 1.0 * N * 4, t => Ops.SumTo(t[0], 256), n => [Rand(n / 256, 256)], 1 << 16, N);
        Bandwidth("softmax (last axis)", $"{N / 256}×256", 2.0 * N * 4, t => Ops.Softmax(t[0]), n => [Rand(n / 256, 256)], 1 << 16, N);
        Bandwidth("layer norm (last axis)", $"{N / 768}×768", 2.0 * (N / 768 * 768) * 4, t => Ops.LayerNorm(t[0], t[1], t[2], 1e-5), n => [Rand(n / 768, 768), Rand(768), Rand(768)], 768 * 64, N);
        Bandwidth("permute B×N×h×d → B×h×N×d", "B×4096×8×64", 2.0 * N * 4, t => Ops.Permute(t[0], 0, 2, 1, 3), n => [Rand(n / (4096 * 512) > 0 ? n / (4096 * 512) : 1, 4096, 8, 64)], 1 << 19, N);
        Bandwidth("embedding lookup", $"{N / 256} ids × 256", 2.0 * N * 4, t => Ops.Embedding(t[1], t[0]),
                  n => [Rand(30522, 256), Tensor.FromArray(Enumerable.Range(0, n / 256).Select(i => (long)(i * 7919 % 30522)).ToArray(), n / 256)], 1 << 16, N);

        // AdamW over a tiny-preset-sized parameter set (152.8 M), one launch: p, m, v read+written, g read = 7 × 4 bytes
        using (new TensorScope())
        {
            var sizes = (gpu.Simulated ? new[] { 3000 * 64, 64 * 300, 300 * 64 } : new[] { 30522 * 768, 768 * 3072, 3072 * 768 })
                        .SelectMany(s => Enumerable.Repeat(s, 24)).Take(60).ToArray();
            long total = sizes.Sum(s => (long)s);
            var slots = sizes.Select((s, i) => new AdamWSlot(Tensor.Zeros([s], DType.F32, gpu), Tensor.Full([s], 0.01, DType.F32, gpu),
                                                             Tensor.Zeros([s], DType.F32, gpu), Tensor.Zeros([s], DType.F32, gpu), i % 5 != 0)).ToList();
            int step = 1;
            gpu.AdamW(slots, new AdamWStep(1e-3, 0.9, 0.999, 1e-8, 0.01, step++));
            float ms = gpu.Time(() => { for (int i = 0; i < 5; i++) gpu.AdamW(slots, new AdamWStep(1e-3, 0.9, 0.999, 1e-8, 0.01, step++)); }) / 5;
            double gbs = 7.0 * 4 * total / (ms * 1e-3) / 1e9;
            rows.Add(new Row("AdamW, all tensors in one launch", $"{total / 1e6:0.0} M params, {sizes.Length} tensors", ms, gbs, "GB/s", gbs / hbmGBs, "parity test"));
            // the same with the training loop's non-finite guard: one more launch that reads every gradient once (8 × 4 bytes)
            var guard = Tensor.Zeros([1], DType.F32, gpu);
            float gms = gpu.Time(() => { for (int i = 0; i < 5; i++) { gpu.Fill(guard, 0); gpu.AdamW(slots, new AdamWStep(1e-3, 0.9, 0.999, 1e-8, 0.01, step++), guard); } }) / 5;
            double ggbs = 8.0 * 4 * total / (gms * 1e-3) / 1e9;
            // validation: one NaN gradient element is counted, and nothing moves
            var g0 = slots[^1].Grad.ToArray<float>();
            g0[^1] = float.NaN;
            gpu.Upload(g0, slots[^1].Grad);
            gpu.Fill(guard, 0);
            var before = slots[^1].Param.ToArray<float>();
            gpu.AdamW(slots, new AdamWStep(1e-3, 0.9, 0.999, 1e-8, 0.01, step++), guard);
            float counted = guard.ToArray<float>()[0];
            bool still = before.AsSpan().SequenceEqual(slots[^1].Param.ToArray<float>());
            string check = counted == 1 && still ? "ok (a NaN gradient is counted and skips the update)" : $"FAIL: counted {counted}, parameters {(still ? "unchanged" : "changed")}";
            rows.Add(new Row("AdamW + non-finite guard (count, then conditional update)", $"{total / 1e6:0.0} M params, {sizes.Length} tensors", gms, ggbs, "GB/s", ggbs / hbmGBs, check));
        }

        // GEMMs through cuBLAS: FP32 and TF32
        var gemms = gpu.Simulated ? new[] { (256, 256, 256) } : new[] { (4096, 4096, 4096), (6272, 3072, 768), (6272, 768, 3072) };
        foreach (var (m, n, k) in gemms)
            foreach (bool tf32 in new[] { false, true })
            {
                gpu.Tf32 = tf32;
                string validation;
                using (new TensorScope())
                {
                    var a = Rand(128, 96); var b = Rand(96, 80);
                    var c = Comparison.Of("gemm", ToleranceKind.Gradient, Ops.MatMul(Dev(a), Dev(b)).To(cpu), Ops.MatMul(a, b));
                    validation = c.RelL2 <= (tf32 ? 1e-2 : 1e-3) ? $"ok (rel L2 {c.RelL2:0.0e+00})" : $"FAIL (rel L2 {c.RelL2:0.0e+00})";
                }
                using (new TensorScope())
                {
                    var A = Dev(Rand(m, k)); var B = Dev(Rand(k, n));
                    for (int i = 0; i < 3; i++) using (new TensorScope()) Ops.MatMul(A, B);
                    float ms = gpu.Time(() => { for (int i = 0; i < repeats; i++) using (new TensorScope()) Ops.MatMul(A, B); }) / repeats;
                    double tflops = 2.0 * m * n * k / (ms * 1e-3) / 1e12;
                    rows.Add(new Row($"GEMM {(tf32 ? "TF32" : "FP32")} ({(gpu.Simulated ? "simulator: CPU GEMM" : "cuBLAS")})", $"{m}×{k} · {k}×{n}", ms, tflops, "TFLOP/s", tflops / (tf32 ? tf32TFlops : fp32TFlops), validation));
                }
            }
        gpu.Tf32 = false;
        ModelKernels(gpu, rows, hbmGBs, fp32TFlops, repeats, log);
        noGrad.Dispose();
        BackwardKernels(gpu, rows, hbmGBs, fp32TFlops, repeats, log);
        return rows;
    }

    public static string Markdown(IEnumerable<Row> rows, CudaBackend gpu, double hbmGBs, double fp32, double tf32)
    {
        var ic = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(gpu.Simulated
            ? $"Device: {gpu.Describe()}. Times are the simulator's on the CPU (validation only; no GPU claim), fractions of a GPU roofline meaningless."
            : $"GPU: {gpu.Describe()}. Roofline: HBM {hbmGBs:0} GB/s, FP32 {fp32} TFLOP/s, TF32 {tf32} TFLOP/s (dense).");
        sb.AppendLine();
        sb.AppendLine("| kernel | shape | ms | rate | of roofline | validated against the CPU |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(ic, $"| {r.Kernel} | {r.Shape} | {r.Ms:0.000} | {r.Rate:0.0} {r.Unit} | {r.PeakFraction * 100:0.0} % | {r.Validation} |"));
        return sb.ToString();
    }
}
