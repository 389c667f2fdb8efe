using Tmca.Cuda;
using Tmca.Cuda.Kernels;
using Tmca.Engine;
using Tmca.Engine.Verification;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>
/// Convolutions in TF32 mode (the tensor-core implicit GEMM for k×k, stem, downsampling, grouped and transposed
/// convolutions; cuBLAS TF32 for 1×1) against the CPU, forward and backward, two ways:
///   * exact model: on inputs already representable in TF32 (rounded with cvt.rna, as the kernels and the
///     simulator's GEMM round), TF32 products are exact in float, so the device must match the FP32 CPU to FP32
///     tolerances — a wrong fragment layout, a wrong rounding or a lost K slice fails this;
///   * real inputs: relative L2 within TF32's bound (≤ 5e-3, as measured ≈ 3e-4 on the simulator) and above FP32's
///     (≥ 1e-5: TF32 is really on).
/// </summary>
[Trait("Category", "GPU")]
[Collection("device")]
public class Tf32ConvParityTests
{
    private const double Tf32RelL2 = 5e-3;

    public static TheoryData<string, int[], int[], int, int, int> Convolutions => new()
    {
        // name, x, w, stride, pad, groups (all with bias)
        { "stem k=stride=4", [2, 3, 16, 16], [8, 3, 4, 4], 4, 0, 1 },
        { "downsample 2x2/2", [2, 8, 8, 8], [16, 8, 2, 2], 2, 0, 1 },
        { "decoder 3x3 pad 1", [2, 12, 9, 11], [7, 12, 3, 3], 1, 1, 1 },
        { "head 1x1 (GEMM)", [3, 16, 6, 6], [1, 16, 1, 1], 1, 0, 1 },
        { "pointwise MLP 1x1 (GEMM)", [2, 8, 5, 5], [32, 8, 1, 1], 1, 0, 1 },
        { "late-stage 1x1: weight gradient through permuted operands", [4, 64, 2, 2], [128, 64, 1, 1], 1, 0, 1 },
        { "grouped 3x3 stride 2 pad 2", [2, 6, 11, 9], [9, 2, 3, 3], 2, 2, 3 },
        { "more than one tile in every direction", [2, 70, 12, 12], [80, 70, 3, 3], 1, 1, 1 },
        { "3x3 long K (weight gradient in K slices)", [8, 4, 40, 40], [5, 4, 3, 3], 1, 1, 1 },
    };

    public static TheoryData<int, int, int, int, int> Transposed => new()
    {
        // k, b, c, o, h
        { 2, 2, 5, 3, 3 },
        { 2, 3, 33, 70, 4 },
        { 3, 1, 4, 7, 6 },
    };

    [Theory, MemberData(nameof(Convolutions))]
    public void Conv2dMatchesTheCpuOnTf32Inputs(string name, int[] x, int[] w, int stride, int pad, int groups)
    {
        var r = new Rng(name.Length + 100);
        Tf32Parity($"conv2d {name}", t => Ops.Conv2d(t[0], t[1], t[2], stride, pad, groups), [r.F32(x), r.F32(w, 0.3), r.F32([w[0]])], exact: true);
    }

    [Theory, MemberData(nameof(Convolutions))]
    public void Conv2dStaysWithinTf32Tolerance(string name, int[] x, int[] w, int stride, int pad, int groups)
    {
        var r = new Rng(name.Length + 200);
        Tf32Parity($"conv2d {name}", t => Ops.Conv2d(t[0], t[1], t[2], stride, pad, groups), [r.F32(x), r.F32(w, 0.3), r.F32([w[0]])], exact: false);
    }

    // ConvNeXt-T at batch 32 (the tiny preset): stage 0's MLP (96 → 384 channels at 56×56) has a 147 KB weight beside
    // 38 MB of input, so per-sample partials are cheap; stage 3's (768 → 3072 at 7×7) has a 9.4 MB weight beside 4.8 MB
    // of input, where six rounds of 9.4 MB partials cost ≈ 0.7 GB and permuting both operands ≈ 0.1 GB.
    [Theory]
    [InlineData(96, 384, 56, false)]
    [InlineData(384, 96, 56, false)]
    [InlineData(384, 1536, 14, true)]
    [InlineData(768, 3072, 7, true)]
    [InlineData(3072, 768, 7, true)]
    public void ThePointwiseWeightGradientTakesTheCheaperRoute(int c, int o, int hw, bool permute)
    {
        var g = new ConvGeom { B = 32, C = c, H = hw, W = hw, O = o, Kh = 1, Kw = 1, Ho = hw, Wo = hw, Stride = 1, Groups = 1 };
        Assert.Equal(permute, CudaBackend.PointwiseWeightGradientByPermute(g, (long)o * c));
        var b1 = g; b1.B = 1;   // one sample: no partials to add, the plain GEMM is always cheaper than permuting
        Assert.False(CudaBackend.PointwiseWeightGradientByPermute(b1, (long)o * c));
    }

    [Theory, MemberData(nameof(Transposed))]
    public void ConvTranspose2dMatchesTheCpuOnTf32Inputs(int k, int b, int c, int o, int h)
    {
        var r = new Rng(k * 10 + o + 300);
        Tf32Parity($"conv_transpose2d k={k}", t => Ops.ConvTranspose2d(t[0], t[1], t[2], k), [r.F32([b, c, h, h + 1]), r.F32([c, o, k, k], 0.3), r.F32([o])], exact: true);
    }

    [Theory, MemberData(nameof(Transposed))]
    public void ConvTranspose2dStaysWithinTf32Tolerance(int k, int b, int c, int o, int h)
    {
        var r = new Rng(k * 10 + o + 400);
        Tf32Parity($"conv_transpose2d k={k}", t => Ops.ConvTranspose2d(t[0], t[1], t[2], k), [r.F32([b, c, h, h + 1]), r.F32([c, o, k, k], 0.3), r.F32([o])], exact: false);
    }

    /// <summary>cvt.rna.tf32.f32: 10 mantissa bits, round to nearest, ties away from zero.</summary>
    private static Tensor RoundTf32(Tensor t)
    {
        var v = t.ToArray<float>();
        for (int i = 0; i < v.Length; i++)
            v[i] = BitConverter.UInt32BitsToSingle((BitConverter.SingleToUInt32Bits(v[i]) + 0x1000u) & 0xffffe000u);
        return Tensor.FromArray(v, t.Shape);
    }

    /// <summary>
    /// f forward and backward on the CPU (FP32) and on the device in TF32 mode, same inputs, upstream gradient and
    /// starting gradients (so a backward that overwrites instead of accumulating fails). exact: every input and the
    /// upstream gradient rounded to TF32 first, FP32 tolerances; else TF32's relative-L2 band.
    /// </summary>
    private static void Tf32Parity(string name, Func<Tensor[], Tensor> f, Tensor[] inputs, bool exact)
    {
        var gpu = Device.Require();
        if (gpu.Arch < 80) Assert.Skip($"{gpu.Describe()}: no TF32 tensor cores below sm_80");
        if (exact) inputs = inputs.Select(RoundTf32).ToArray();
        var start = new Rng(7);
        var cpuIn = inputs.Select(t =>
        {
            var c = t.Clone(persistent: true);
            c.RequiresGrad = true;
            using var _ = TensorScope.Suspend();
            c.Grad = start.F32(t.Shape).Clone(persistent: true);
            return c;
        }).ToArray();
        var gpuIn = inputs.Select((t, i) =>
        {
            var g = t.To(gpu, persistent: true);
            g.RequiresGrad = true;
            using var _ = TensorScope.Suspend();
            g.Grad = cpuIn[i].Grad!.To(gpu, persistent: true);
            return g;
        }).ToArray();
        Tensor cpuOut, gpuOut, gout;
        using (var tape = new Tape())
        {
            cpuOut = f(cpuIn);
            gout = new Rng(3).F32(cpuOut.Shape);
            if (exact) gout = RoundTf32(gout);
            tape.Backward(cpuOut, gout);
        }
        gpu.Tf32 = true;
        try
        {
            using var tape = new Tape();
            gpuOut = f(gpuIn);
            tape.Backward(gpuOut, gout.To(gpu));
        }
        finally { gpu.Tf32 = false; }
        var results = new List<Comparison> { Comparison.Of($"{name}.out", exact ? ToleranceKind.Forward : ToleranceKind.Gradient, gpuOut.To(CpuBackend.Instance), cpuOut) };
        for (int i = 0; i < inputs.Length; i++)
            results.Add(Comparison.Of($"{name}.grad{i}", ToleranceKind.Gradient, gpuIn[i].Grad!.To(CpuBackend.Instance), cpuIn[i].Grad!));
        string report = string.Join("\n", results.Select(c => $"{c.Name}: max|a-b| {c.MaxAbs:E2} relL2 {c.RelL2:E2}"));
        if (exact)
            Assert.True(results.All(c => c.Pass), "TF32-representable inputs must match FP32:\n" + report);
        else
        {
            Assert.True(results.All(c => c.RelL2 <= Tf32RelL2), $"beyond TF32's relative L2 {Tf32RelL2}:\n" + report);
            // the output and the input and weight gradients go through TF32 products: their error is TF32's, not FP32's
            // (the bias gradient is a plain FP32 sum, and a starting gradient dominates nothing here: the products are O(1))
            foreach (var c in results.Take(3))
                Assert.True(c.RelL2 >= 1e-5, $"{c.Name}: relative L2 {c.RelL2:E2} is FP32's: is TF32 on?\n" + report);
        }
    }
}
