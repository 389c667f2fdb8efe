using Tmca.Engine;
using Tmca.Engine.Verification;

namespace Tmca.Cuda;

// The kernel lab's rows for the model's own kernels: convolutions, normalisation, losses and the fused TMCA kernels,
// the latter as a naive v1 beside the tuned v2 the model runs (llm.c's dev/cuda), each validated against the CPU
// (twin) before it is timed. Shapes are the small preset's at batch 32 on a GPU, tiny ones on the simulator.
public static partial class KernelLab
{
    private static void ModelKernels(CudaBackend gpu, List<Row> rows, double hbmGBs, double fp32TFlops, int repeats, Action<string>? log)
    {
        var cpu = CpuBackend.Instance;
        var rng = new Random(7);
        bool sim = gpu.Simulated;
        int Bt = sim ? 2 : 32;   // batch for timing
        Tensor Rand(params int[] s) => Tensor.FromArray(Enumerable.Range(0, (int)Shape.Numel(s)).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), s);
        Tensor Unit(int rows_, int d)
        {
            var x = Rand(rows_, d).ToArray<float>();
            for (int i = 0; i < rows_; i++)
            {
                double n = Math.Sqrt(Enumerable.Range(0, d).Sum(j => (double)x[i * d + j] * x[i * d + j]));
                for (int j = 0; j < d; j++) x[i * d + j] = (float)(x[i * d + j] / n);
            }
            return Tensor.FromArray(x, rows_, d);
        }

        // name, shape, inputs (small: validation; large: timing), the op on the device, the same op on the CPU,
        // amount (bytes or FLOPs) for the large inputs, unit
        void Lab(string name, Func<int, string> shape, Func<int, Tensor[]> make, Func<Tensor[], Tensor> onDevice, Func<Tensor[], Tensor> onCpu,
                 Func<int, double> amount, bool flops)
        {
            string validation;
            using (new TensorScope())
            using (Tape.NoGrad())
            {
                var small = make(2);
                var c = Comparison.Of(name, ToleranceKind.Forward, onDevice(small.Select(t => t.To(gpu)).ToArray()).To(cpu), onCpu(small));
                validation = c.Pass ? $"ok ({c.MaxAbs:0.0e+00})" : $"FAIL ({c.MaxAbs:0.0e+00}{(c.Note is null ? "" : ", " + c.Note)})";
            }
            string unit = flops ? "TFLOP/s" : "GB/s";
            if (!validation.StartsWith("ok")) { rows.Add(new Row(name, shape(Bt), double.NaN, double.NaN, unit, double.NaN, validation)); return; }
            using (new TensorScope())
            using (Tape.NoGrad())
            {
                var big = make(Bt).Select(t => t.To(gpu)).ToArray();
                for (int i = 0; i < 2; i++) using (new TensorScope()) onDevice(big);
                float ms = gpu.Time(() => { for (int i = 0; i < repeats; i++) using (new TensorScope()) onDevice(big); }) / repeats;
                double rate = amount(Bt) / (ms * 1e-3) / (flops ? 1e12 : 1e9);
                rows.Add(new Row(name, shape(Bt), ms, rate, unit, rate / (flops ? fp32TFlops : hbmGBs), validation));
                log?.Invoke($"{name}: {ms:0.000} ms, {rate:0.0} {unit}");
            }
        }

        int S = sim ? 16 : 32, C = sim ? 8 : 96;   // a decoder / encoder stage of the small preset at 128 px
        Lab("conv2d 3×3 pad 1 (implicit GEMM)", b => $"x {b}×{C}×{S}×{S}, w {C / 2}×{C}×3×3", b => [Rand(b, C, S, S), Rand(C / 2, C, 3, 3), Rand(C / 2)],
            t => Ops.Conv2d(t[0], t[1], t[2], 1, 1), t => Ops.Conv2d(t[0], t[1], t[2], 1, 1), b => 2.0 * b * (C / 2) * S * S * C * 9, flops: true);
        Lab("conv2d 4×4 stride 4 (stem)", b => $"x {b}×3×{4 * S}×{4 * S}, w {C}×3×4×4", b => [Rand(b, 3, 4 * S, 4 * S), Rand(C, 3, 4, 4), Rand(C)],
            t => Ops.Conv2d(t[0], t[1], t[2], 4, 0), t => Ops.Conv2d(t[0], t[1], t[2], 4, 0), b => 2.0 * b * C * S * S * 3 * 16, flops: true);
        Lab("conv2d 1×1 (ConvNeXt MLP)", b => $"x {b}×{C}×{S}×{S}, w {4 * C}×{C}×1×1", b => [Rand(b, C, S, S), Rand(4 * C, C, 1, 1), Rand(4 * C)],
            t => Ops.Conv2d(t[0], t[1], t[2]), t => Ops.Conv2d(t[0], t[1], t[2]), b => 2.0 * b * 4 * C * S * S * C, flops: true);
        Lab("depthwise 7×7 (shared-memory tiles)", b => $"x {b}×{C}×{S}×{S}, w {C}×1×7×7", b => [Rand(b, C, S, S), Rand(C, 1, 7, 7), Rand(C)],
            t => Ops.Conv2d(t[0], t[1], t[2], 1, 3, C), t => Ops.Conv2d(t[0], t[1], t[2], 1, 3, C), b => 2.0 * b * C * S * S * 4, flops: false);
        Lab("conv_transpose2d 2×2/2", b => $"x {b}×{C}×{S / 2}×{S / 2}, w {C}×{C / 2}×2×2", b => [Rand(b, C, S / 2, S / 2), Rand(C, C / 2, 2, 2), Rand(C / 2)],
            t => Ops.ConvTranspose2d(t[0], t[1], t[2], 2), t => Ops.ConvTranspose2d(t[0], t[1], t[2], 2), b => 2.0 * b * C * (C / 2) * S * S, flops: true);
        Lab("batch norm (training statistics)", b => $"x {b}×{C / 2}×{2 * S}×{2 * S}", b => [Rand(b, C / 2, 2 * S, 2 * S), Rand(C / 2), Rand(C / 2)],
            t => Ops.BatchNorm2d(t[0], t[1], t[2], Tensor.Zeros([C / 2], DType.F32, t[0].Backend), Tensor.Full([C / 2], 1.0, DType.F32, t[0].Backend), true, 1e-5, 0.1),
            t => Ops.BatchNorm2d(t[0], t[1], t[2], Tensor.Zeros([C / 2]), Tensor.Full([C / 2], 1.0), true, 1e-5, 0.1), b => 3.0 * 4 * b * (C / 2) * 4 * S * S, flops: false);
        Lab("layer norm channels-first", b => $"x {b}×{C}×{S}×{S}", b => [Rand(b, C, S, S), Rand(C), Rand(C)],
            t => Ops.LayerNormChannelsFirst(t[0], t[1], t[2], 1e-6), t => Ops.LayerNormChannelsFirst(t[0], t[1], t[2], 1e-6), b => 2.0 * 4 * b * C * S * S, flops: false);
        Lab("L2 normalise (rows of 64)", b => $"{b * S * S}×64", b => [Rand(b * S * S, 64)],
            t => Ops.L2Normalize(t[0]), t => Ops.L2Normalize(t[0]), b => 2.0 * 4 * b * S * S * 64, flops: false);
        Lab("BCE with logits (one block)", b => $"{b}×1×{4 * S}×{4 * S}", b => [Rand(b, 1, 4 * S, 4 * S), Tensor.FromArray(Enumerable.Range(0, b * 16 * S * S).Select(i => (i % 5 == 0) ? 1f : 0f).ToArray(), b, 1, 4 * S, 4 * S)],
            t => Ops.BceWithLogits(t[0], t[1]), t => Ops.BceWithLogits(t[0], t[1]), b => 2.0 * 4 * b * 16 * S * S, flops: false);

        // ---- the fused TMCA kernels: naive v1 (the lab's own, KernelLab.TmcaV1.cs) and tuned v2, both validated against the CPU twin ----
        (int H, int W)[] grids = [(S, S), (S / 2, S / 2), (S / 4, S / 4), (S / 8, S / 8)];
        const int d = 16;
        Tensor[] MakeLogits(int b)
        {
            var gt = Tensor.FromArray(Enumerable.Range(0, b * 16 * S * S).Select(i => (i / (4 * S)) % 7 < 2 ? 1f : 0f).ToArray(), b, 1, 4 * S, 4 * S);
            return [gt, .. grids.Select(g => Unit(b * g.H * g.W, d).View(b, g.H * g.W, d)), .. grids.Select(_ => Unit(b, d)), Tensor.FromArray(new[] { 0.07f }, 1)];
        }
        (Tensor Gt, Tensor[] V, Tensor[] U, Tensor Tau) Split(Tensor[] t) => (t[0], t[1..5], t[5..9], t[9]);
        Tensor Naive(Tensor[] t)
        {
            var (gt, v, u, tau) = Split(t);
            int b = gt.Shape[0];
            var z = Tensor.Zeros([4, b, b], DType.F32, gpu);
            TargetLogitsNaive(gpu, gt, v, u, tau, false, grids.Select(g => Tensor.Zeros([b, g.H, g.W], DType.F32, gpu)).ToArray(),
                              v.Select(x => Tensor.Zeros([b, d], DType.F32, gpu)).ToArray(), z);
            return z;
        }
        Tensor Tuned(Tensor[] t) { var (gt, v, u, tau) = Split(t); return Ops.TargetLogits(gt, v, u, grids, tau, false); }
        double LogitsBytes(int b) => 4.0 * (b * 16 * S * S + grids.Sum(g => (double)b * g.H * g.W * d));
        Lab("TMCA target logits, 4 levels — v1 naive (thread per logit)", b => $"B={b}, {4 * S}² px, d={d}", MakeLogits, Naive, Tuned, LogitsBytes, flops: false);
        Lab("TMCA target logits, 4 levels — v2 tuned (block per sample·level)", b => $"B={b}, {4 * S}² px, d={d}", MakeLogits, Tuned, Tuned, LogitsBytes, flops: false);

        Tensor[] MakeLgte(int b) => [Unit(b * S * S, d).View(b, S * S, d), Unit(b, d), Rand(b, C, S, S), Tensor.FromArray(new[] { 10f }, 1), Tensor.FromArray(new[] { -0.3f }, 1), Tensor.FromArray(new[] { 0.5f }, 1)];
        Tensor LgteTuned(Tensor[] t) => Ops.SimilarityLgte(t[0], t[1], t[2], t[3], t[4], t[5], null).FOut;
        Tensor LgteNaive(Tensor[] t)
        {
            int b = t[2].Shape[0];
            var m = () => Tensor.Zeros([b, 1, S, S], DType.F32, gpu);
            var fOut = Tensor.Zeros(t[2].Shape, DType.F32, gpu);
            SimilarityLgteNaive(gpu, t[0], t[1], t[2], t[3], t[4], t[5], m(), m(), m(), fOut);
            return fOut;
        }
        double LgteBytes(int b) => 4.0 * ((double)b * S * S * d + 2.0 * b * C * S * S);
        Lab("TMCA similarity + LGTE — v1 naive (thread per output element)", b => $"B={b}, C={C}, {S}², d={d}", MakeLgte, LgteNaive, LgteTuned, LgteBytes, flops: false);
        Lab("TMCA similarity + LGTE — v2 tuned (thread per pixel)", b => $"B={b}, C={C}, {S}², d={d}", MakeLgte, LgteTuned, LgteTuned, LgteBytes, flops: false);
    }
}
