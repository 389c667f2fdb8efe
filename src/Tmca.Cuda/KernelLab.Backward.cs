using Tmca.Engine;
using Tmca.Engine.Verification;

namespace Tmca.Cuda;

// The kernel lab's backward rows: each op's forward + backward on the device, every input gradient validated against the
// CPU's (same inputs, same seed gradient) before the pair is timed. The rate counts the backward's work (2× the
// forward's FLOPs for a contraction: data and weight gradients; bytes of x, y, gy, gx for the others) over the pair's time.
public static partial class KernelLab
{
    private static void BackwardKernels(CudaBackend gpu, List<Row> rows, double hbmGBs, double fp32TFlops, int repeats, Action<string>? log)
    {
        var cpu = CpuBackend.Instance;
        var rng = new Random(11);
        bool sim = gpu.Simulated;
        int Bt = sim ? 2 : 32;
        Tensor Rand(params int[] s) => Tensor.FromArray(Enumerable.Range(0, (int)Shape.Numel(s)).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), s);

        // forward + backward of op from a fixed seed gradient; returns every input's gradient
        Tensor?[] Gradients(Tensor[] inputs, Func<Tensor[], Tensor> op, Tensor seedCpu)
        {
            foreach (var t in inputs) t.RequiresGrad = true;
            using var tape = new Tape();
            var y = op(inputs);
            tape.Backward(y, y.Backend is CpuBackend ? seedCpu : seedCpu.To(gpu));
            return inputs.Select(t => t.Grad).ToArray();
        }

        // tf32: the op runs in TF32 mode (the tensor-core convolutions); inputs and seed gradient are rounded to TF32 first,
        // so TF32 products are exact and the FP32 CPU is still the reference at FP32 tolerances (Tf32ConvParityTests' model)
        void Lab(string name, Func<int, string> shape, Func<int, Tensor[]> make, Func<Tensor[], Tensor> op, Func<int, double> amount, bool flops, bool tf32 = false)
        {
            gpu.Tf32 = tf32;
            try { LabIn(name, shape, tf32 ? b => make(b).Select(RoundTf32).ToArray() : make, op, amount, flops, tf32); }
            finally { gpu.Tf32 = false; }
        }

        void LabIn(string name, Func<int, string> shape, Func<int, Tensor[]> make, Func<Tensor[], Tensor> op, Func<int, double> amount, bool flops, bool tf32)
        {
            string validation = "ok";
            using (new TensorScope())
            {
                var small = make(2);
                Tensor outShape;
                using (Tape.NoGrad()) outShape = op(small);
                var seed = Rand(outShape.Shape);
                if (tf32) seed = RoundTf32(seed);
                var onDevice = Gradients(small.Select(t => t.To(gpu)).ToArray(), op, seed);
                var onCpu = Gradients(small, op, seed);
                double worst = 0;
                for (int i = 0; i < small.Length; i++)
                {
                    if (onCpu[i] is null) continue;
                    var c = Comparison.Of($"{name} grad {i}", ToleranceKind.Gradient, onDevice[i]!.To(cpu), onCpu[i]!);
                    worst = Math.Max(worst, c.MaxAbs);
                    if (!c.Pass) { validation = $"FAIL (gradient of input {i}: {c.MaxAbs:0.0e+00})"; break; }
                }
                if (validation == "ok") validation = $"ok (gradients, {worst:0.0e+00})";
            }
            string unit = flops ? "TFLOP/s" : "GB/s";
            if (!validation.StartsWith("ok")) { rows.Add(new Row(name, shape(Bt), double.NaN, double.NaN, unit, double.NaN, validation)); return; }
            using (new TensorScope())
            {
                var big = make(Bt).Select(t => t.To(gpu)).ToArray();
                Tensor y0;
                using (Tape.NoGrad()) y0 = op(big);
                var seed = Tensor.Full(y0.Shape, 0.5, DType.F32, gpu);
                void Pair()
                {
                    using var scope = new TensorScope();
                    foreach (var t in big) { t.Grad = null; t.RequiresGrad = true; }
                    using var tape = new Tape();
                    tape.Backward(op(big), seed);
                }
                for (int i = 0; i < 2; i++) Pair();
                float ms = gpu.Time(() => { for (int i = 0; i < repeats; i++) Pair(); }) / repeats;
                double rate = amount(Bt) / (ms * 1e-3) / (flops ? 1e12 : 1e9);
                rows.Add(new Row(name, shape(Bt), ms, rate, unit, rate / (flops ? fp32TFlops : hbmGBs), validation));
                log?.Invoke($"{name}: {ms:0.000} ms, {rate:0.0} {unit}");
            }
        }

        int S = sim ? 16 : 32, C = sim ? 8 : 96;
        Lab("conv2d 3×3 pad 1 — forward + backward (data, weight, bias)", b => $"x {b}×{C}×{S}×{S}, w {C / 2}×{C}×3×3", b => [Rand(b, C, S, S), Rand(C / 2, C, 3, 3), Rand(C / 2)],
            t => Ops.Conv2d(t[0], t[1], t[2], 1, 1), b => 3 * 2.0 * b * (C / 2) * S * S * C * 9, flops: true);
        Lab("conv2d 4×4 stride 4 (stem) — forward + backward", b => $"x {b}×3×{4 * S}×{4 * S}, w {C}×3×4×4", b => [Rand(b, 3, 4 * S, 4 * S), Rand(C, 3, 4, 4), Rand(C)],
            t => Ops.Conv2d(t[0], t[1], t[2], 4, 0), b => 3 * 2.0 * b * C * S * S * 3 * 16, flops: true);
        Lab("conv2d 1×1 (ConvNeXt MLP) — forward + backward", b => $"x {b}×{C}×{S}×{S}, w {4 * C}×{C}×1×1", b => [Rand(b, C, S, S), Rand(4 * C, C, 1, 1), Rand(4 * C)],
            t => Ops.Conv2d(t[0], t[1], t[2]), b => 3 * 2.0 * b * 4 * C * S * S * C, flops: true);
        // the same convolutions in TF32 mode: conv.cu's mma.sync implicit GEMM (1×1: cuBLAS TF32, not a kernel of ours)
        Lab("conv2d 3×3 pad 1, TF32 tensor cores — forward + backward", b => $"x {b}×{C}×{S}×{S}, w {C / 2}×{C}×3×3", b => [Rand(b, C, S, S), Rand(C / 2, C, 3, 3), Rand(C / 2)],
            t => Ops.Conv2d(t[0], t[1], t[2], 1, 1), b => 3 * 2.0 * b * (C / 2) * S * S * C * 9, flops: true, tf32: true);
        Lab("conv2d 4×4 stride 4 (stem), TF32 tensor cores — forward + backward", b => $"x {b}×3×{4 * S}×{4 * S}, w {C}×3×4×4", b => [Rand(b, 3, 4 * S, 4 * S), Rand(C, 3, 4, 4), Rand(C)],
            t => Ops.Conv2d(t[0], t[1], t[2], 4, 0), b => 3 * 2.0 * b * C * S * S * 3 * 16, flops: true, tf32: true);
        Lab("conv_transpose2d 2×2/2, TF32 tensor cores — forward + backward", b => $"x {b}×{C}×{S / 2}×{S / 2}, w {C}×{C / 2}×2×2", b => [Rand(b, C, S / 2, S / 2), Rand(C, C / 2, 2, 2), Rand(C / 2)],
            t => Ops.ConvTranspose2d(t[0], t[1], t[2], 2), b => 3 * 2.0 * b * C * (C / 2) * S * S, flops: true, tf32: true);
        Lab("depthwise 7×7 — forward + backward", b => $"x {b}×{C}×{S}×{S}, w {C}×1×7×7", b => [Rand(b, C, S, S), Rand(C, 1, 7, 7), Rand(C)],
            t => Ops.Conv2d(t[0], t[1], t[2], 1, 3, C), b => 4.0 * 4 * b * C * S * S, flops: false);
        Lab("conv_transpose2d 2×2/2 — forward + backward", b => $"x {b}×{C}×{S / 2}×{S / 2}, w {C}×{C / 2}×2×2", b => [Rand(b, C, S / 2, S / 2), Rand(C, C / 2, 2, 2), Rand(C / 2)],
            t => Ops.ConvTranspose2d(t[0], t[1], t[2], 2), b => 3 * 2.0 * b * C * (C / 2) * S * S, flops: true);
        Lab("batch norm (training) — forward + backward", b => $"x {b}×{C / 2}×{2 * S}×{2 * S}", b => [Rand(b, C / 2, 2 * S, 2 * S), Rand(C / 2), Rand(C / 2)],
            t => Ops.BatchNorm2d(t[0], t[1], t[2], Tensor.Zeros([C / 2], DType.F32, t[0].Backend), Tensor.Full([C / 2], 1.0, DType.F32, t[0].Backend), true, 1e-5, 0.1),
            b => 4.0 * 4 * b * (C / 2) * 4 * S * S, flops: false);
        Lab("layer norm channels-first — forward + backward", b => $"x {b}×{C}×{S}×{S}", b => [Rand(b, C, S, S), Rand(C), Rand(C)],
            t => Ops.LayerNormChannelsFirst(t[0], t[1], t[2], 1e-6), b => 4.0 * 4 * b * C * S * S, flops: false);
        Lab("layer norm (last axis) — forward + backward", b => $"{b * 128}×768", b => [Rand(b * 128, 768), Rand(768), Rand(768)],
            t => Ops.LayerNorm(t[0], t[1], t[2], 1e-12), b => 4.0 * 4 * b * 128 * 768, flops: false);
        Lab("softmax (last axis) — forward + backward", b => $"{b * 256}×256", b => [Rand(b * 256, 256)], t => Ops.Softmax(t[0]), b => 3.0 * 4 * b * 256 * 256, flops: false);
        Lab("GELU — forward + backward", b => $"{b * 65536}", b => [Rand(b * 65536)], t => Ops.Gelu(t[0]), b => 3.0 * 4 * b * 65536, flops: false);
        Lab("L2 normalise (rows of 64) — forward + backward", b => $"{b * S * S}×64", b => [Rand(b * S * S, 64)], t => Ops.L2Normalize(t[0]), b => 4.0 * 4 * b * S * S * 64, flops: false);
    }

    /// <summary>cvt.rna.tf32.f32 on the host: 10 mantissa bits, round to nearest, ties away from zero.</summary>
    private static Tensor RoundTf32(Tensor t)
    {
        var v = t.ToArray<float>();
        for (int i = 0; i < v.Length; i++)
            v[i] = BitConverter.UInt32BitsToSingle((BitConverter.SingleToUInt32Bits(v[i]) + 0x1000u) & 0xffffe000u);
        return Tensor.FromArray(v, t.Shape);
    }
}
