using Tmca.Cuda;
using Tmca.Engine;
using Tmca.Engine.Verification;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>
/// The CUDA backend against the CPU reference on the same inputs, forward and backward, with the tolerances of
/// ../shared/oracles/README.md (TF32 off): outputs |a−b| ≤ 1e-4 + 1e-3|b|; gradients 1e-4 + 1e-2|b| elementwise or
/// relative L2 ≤ 1e-3. On a GPU where there is one, on the CUDA simulator elsewhere (CI): never skipped in CI.
/// </summary>
[Trait("Category", "GPU")]
[Collection("device")]
public class DeviceParityTests
{
    /// <summary>
    /// Runs f on the CPU and on the device with the same inputs and upstream gradient; compares everything.
    /// Every input's gradient starts at the same random values on both sides, so a backward kernel that
    /// overwrites instead of accumulating (g += …) fails.
    /// </summary>
    private static void Parity(string name, Func<Tensor[], Tensor> f, Tensor[] inputs, int seed = 1)
    {
        var gpu = Device.Require();
        var report = new OracleReport(name);
        Tensor cpuOut, gpuOut;
        var start = new Rng(seed + 1000);
        var cpuIn = inputs.Select(t =>
        {
            var c = t.Clone(persistent: true);
            c.RequiresGrad = t.DType == DType.F32;
            if (c.RequiresGrad) { using var _ = TensorScope.Suspend(); c.Grad = start.F32(t.Shape).Clone(persistent: true); }
            return c;
        }).ToArray();
        var gpuIn = inputs.Select((t, i) =>
        {
            var g = t.To(gpu, persistent: true);
            g.RequiresGrad = t.DType == DType.F32;
            if (g.RequiresGrad) { using var _ = TensorScope.Suspend(); g.Grad = cpuIn[i].Grad!.To(gpu, persistent: true); }
            return g;
        }).ToArray();
        Tensor gout;
        using (var tape = new Tape())
        {
            cpuOut = f(cpuIn);
            gout = new Rng(seed).F32(cpuOut.Shape);
            tape.Backward(cpuOut, gout);
        }
        using (var tape = new Tape())
        {
            gpuOut = f(gpuIn);
            tape.Backward(gpuOut, gout.To(gpu));
        }
        report.Add(Comparison.Of($"{name}.out", ToleranceKind.Forward, gpuOut.To(CpuBackend.Instance), cpuOut));
        for (int i = 0; i < inputs.Length; i++)
            if (cpuIn[i].RequiresGrad)
                report.Add(Comparison.Of($"{name}.grad{i}", ToleranceKind.Gradient, gpuIn[i].Grad!.To(CpuBackend.Instance), cpuIn[i].Grad!));
        Assert.True(report.Pass, string.Join("\n", report.Items.Select(c => $"{c.Name}: max|a-b| {c.MaxAbs:E2} relL2 {c.RelL2:E2} {(c.Pass ? "ok" : "FAIL")}")));
    }

    public static TheoryData<string> UnaryOps => new() { "gelu", "sigmoid", "leaky_relu", "exp", "log", "sqrt", "scale", "add_scalar", "clamp_min", "square", "reciprocal" };

    [Theory, MemberData(nameof(UnaryOps))]
    public void Unary(string op)
    {
        var r = new Rng(op.Length);
        bool positive = op is "log" or "sqrt" or "reciprocal";
        var x = positive ? Tensor.FromArray(Enumerable.Range(0, 5000).Select(_ => (float)r.Uniform(0.5, 2)).ToArray(), 50, 100) : r.F32([50, 100], 2.0);
        Func<Tensor, Tensor> fn = op switch
        {
            "gelu" => Ops.Gelu, "sigmoid" => Ops.Sigmoid, "leaky_relu" => t => Ops.LeakyRelu(t, 0.01), "exp" => Ops.Exp, "log" => Ops.Log,
            "sqrt" => Ops.Sqrt, "scale" => t => Ops.Scale(t, -1.5), "add_scalar" => t => Ops.AddScalar(t, 0.3), "clamp_min" => t => Ops.ClampMin(t, 0.1),
            "square" => Ops.Square, _ => Ops.Reciprocal,
        };
        Parity(op, t => fn(t[0]), [x]);
    }

    [Theory]
    [InlineData("add")] [InlineData("sub")] [InlineData("mul")] [InlineData("div")]
    public void BroadcastingBinary(string op)
    {
        var r = new Rng(op[0]);
        Func<Tensor, Tensor, Tensor> fn = op switch { "add" => Ops.Add, "sub" => Ops.Sub, "mul" => Ops.Mul, _ => Ops.Div };
        Tensor Pos(int[] s) => Tensor.FromArray(Enumerable.Range(0, (int)Shape.Numel(s)).Select(_ => (float)r.Uniform(0.5, 2)).ToArray(), s);
        Parity($"{op}-same", t => fn(t[0], t[1]), [r.F32([7, 33, 5]), Pos([7, 33, 5])]);
        Parity($"{op}-vector", t => fn(t[0], t[1]), [r.F32([7, 33, 5]), Pos([5])]);
        Parity($"{op}-both", t => fn(t[0], t[1]), [r.F32([4, 1, 9]), Pos([1, 6, 1])]);
    }

    [Fact]
    public void SumBroadcastPermuteConcat()
    {
        var r = new Rng(3);
        Parity("sum-to", t => Ops.SumTo(t[0], 1, 7, 1), [r.F32([9, 7, 13])]);
        Parity("sum-all", t => Ops.Sum(t[0]), [r.F32([300, 70])]);
        Parity("broadcast", t => Ops.BroadcastTo(t[0], 5, 4, 6), [r.F32([4, 1])]);
        Parity("permute", t => Ops.Permute(t[0], 2, 0, 3, 1), [r.F32([3, 4, 5, 6])]);
        Parity("concat", t => Ops.Concat([t[0], t[1]], 1), [r.F32([2, 3, 4]), r.F32([2, 5, 4])]);
        Parity("narrow", t => Ops.Narrow(t[0], 2, 1, 3), [r.F32([2, 3, 7])]);
    }

    [Theory]
    [InlineData(37, 9)]
    [InlineData(5, 1000)]
    public void Softmax(int rows, int n) => Parity("softmax", t => Ops.Softmax(t[0]), [new Rng(n).F32([rows, n], 3.0)]);

    [Theory]
    [InlineData(64, 24)]
    [InlineData(7, 768)]
    [InlineData(1000, 13)]
    public void LayerNormLastAxis(int rows, int c)
    {
        var r = new Rng(c);
        Parity("layer_norm", t => Ops.LayerNorm(t[0], t[1], t[2], 1e-5), [r.F32([rows, c], 2.0), r.F32([c]), r.F32([c])]);
    }

    [Fact]
    public void EmbeddingWithRepeatedIds()
    {
        var ids = Tensor.FromArray(new long[] { 3, 1, 3, 0, 6, 6, 2, 3 }, 2, 4);
        var gpu = Device.Require();
        var gIds = ids.To(gpu, persistent: true);
        Parity("embedding", t => Ops.Embedding(t[0].Device == DeviceKind.Cpu ? ids : gIds, t[0]), [new Rng(4).F32([7, 48])]);
    }

    [Theory]
    [InlineData(false, false)] [InlineData(true, false)] [InlineData(false, true)] [InlineData(true, true)]
    public void LinearAndBatchedMatMul(bool ta, bool tb)
    {
        var r = new Rng(ta ? 5 : 6);
        Parity("linear", t => Ops.Linear(t[0], t[1], t[2]), [r.F32([4, 37, 29]), r.F32([41, 29]), r.F32([41])]);
        int m = 19, k = 33, n = 27;
        Parity("matmul", t => Ops.MatMul(t[0], t[1], ta, tb), [r.F32(ta ? [3, k, m] : [3, m, k]), r.F32(tb ? [3, n, k] : [3, k, n])]);
        Parity("matmul-shared-b", t => Ops.MatMul(t[0], t[1], ta, tb), [r.F32(ta ? [3, k, m] : [3, m, k]), r.F32(tb ? [n, k] : [k, n])]);
    }

    [Fact]
    public void MultiHeadAttentionWithPaddingMask()
    {
        var r = new Rng(7);
        int B = 2, Nq = 10, Nk = 6, E = 32;
        var bias = Tensor.FromArray(Enumerable.Range(0, B * Nk).Select(i => i % Nk >= Nk - 1 - i / Nk ? float.MinValue : 0f).ToArray(), B, Nk);
        var gpu = Device.Require();
        var gBias = bias.To(gpu, persistent: true);
        Parity("mha", t => Ops.MultiHeadAttention(t[0], t[1], t[2], new AttentionWeights(t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10]), 4,
                                                  t[0].Device == DeviceKind.Cpu ? bias : gBias),
               [r.F32([B, Nq, E]), r.F32([B, Nk, E]), r.F32([B, Nk, E]), r.F32([E, E], 0.2), r.F32([E]), r.F32([E, E], 0.2), r.F32([E]),
                r.F32([E, E], 0.2), r.F32([E]), r.F32([E, E], 0.2), r.F32([E])]);
    }

    [Theory]
    [InlineData(1e-8)]
    [InlineData(0.5)]   // eps this large makes its placement (inside or outside the square root, before or after bias correction) visible
    public void AdamWOverManyTensorsInOneLaunch(double eps)
    {
        var gpu = Device.Require();
        var r = new Rng(8);
        int[][] shapes = [[10], [300, 70], [1], [4097], [33, 5], [0]];
        var cpu = shapes.Select(s => (P: r.F32(s), G: r.F32(s))).ToList();
        var cpuSlots = cpu.Select((t, i) => new AdamWSlot(t.P, t.G, Tensor.ZerosLike(t.P), Tensor.ZerosLike(t.P), Decay: i != 2)).ToList();
        var gpuSlots = cpuSlots.Select(s => new AdamWSlot(s.Param.To(gpu), s.Grad.To(gpu), s.M.To(gpu), s.V.To(gpu), s.Decay)).ToList();
        var before = cpuSlots[1].Param.ToArray<float>();
        for (int step = 1; step <= 3; step++)
        {
            var h = new AdamWStep(1e-2, 0.9, 0.999, eps, 0.1, step);
            CpuBackend.Instance.AdamW(cpuSlots, h);
            gpu.AdamW(gpuSlots, h);
        }
        for (int i = 0; i < shapes.Length; i++)
            foreach (var (what, dev, host) in new[] { ("param", gpuSlots[i].Param, cpuSlots[i].Param), ("m", gpuSlots[i].M, cpuSlots[i].M), ("v", gpuSlots[i].V, cpuSlots[i].V) })
            {
                var c = Comparison.Of($"{what}{i}", ToleranceKind.Forward, dev.To(CpuBackend.Instance), host);
                Assert.True(c.Pass, $"{c.Name} (eps {eps}): {c.MaxAbs:E2}");
            }
        // The steps moved the parameters (so the comparison above compares updates, not two untouched copies).
        var after = gpuSlots[1].Param.ToArray<float>();
        Assert.True(before.Zip(after).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "AdamW left the parameters where they were");
    }

    [Fact]
    public void Tf32GemmIsOnWhenAskedAndStaysWithinItsTolerance()
    {
        var gpu = Device.Require();
        var r = new Rng(9);
        var a = r.F32([256, 512]); var b = r.F32([512, 128]);
        var cpu = Ops.MatMul(a, b);
        var fp32 = Comparison.Of("fp32", ToleranceKind.Gradient, Ops.MatMul(a.To(gpu), b.To(gpu)).To(CpuBackend.Instance), cpu);
        gpu.Tf32 = true;
        try
        {
            var c = Comparison.Of("tf32", ToleranceKind.Gradient, Ops.MatMul(a.To(gpu), b.To(gpu)).To(CpuBackend.Instance), cpu);
            Assert.True(c.RelL2 <= 1e-2, $"TF32 relative L2 {c.RelL2:E2}");
            // TF32 rounds the inputs to 10 mantissa bits: the error is orders of magnitude above FP32's. With TF32
            // silently off this fails.
            Assert.True(c.RelL2 >= 1e-5 && c.RelL2 > 10 * fp32.RelL2, $"TF32 relative L2 {c.RelL2:E2} vs FP32 {fp32.RelL2:E2}: is TF32 on?");
            Assert.True(fp32.RelL2 <= 1e-6, $"FP32 relative L2 {fp32.RelL2:E2}");
        }
        finally { gpu.Tf32 = false; }
    }

    /// <summary>Sizes past one grid's worth of threads (a GPU caps grid-stride grids at SMs·32 blocks of 256: 1.08 M
    /// threads on an H200, 65 K on the simulator), so every grid-stride loop goes round more than once.</summary>
    [Fact]
    public void LargeTensorsMakeGridStrideLoopsWrap()
    {
        var r = new Rng(21);
        const int n = (1 << 21) + 37;
        Parity("gelu-2M", t => Ops.Gelu(t[0]), [r.F32([n])]);
        Parity("add-2M-broadcast", t => Ops.Add(t[0], t[1]), [r.F32([(n - 37) / 64, 64]), r.F32([64])]);
        Parity("permute-2M", t => Ops.Permute(t[0], 1, 0, 2), [r.F32([64, 1024, 33])]);
    }

    [Fact]
    public void SumToWithMoreOutputsThanOneGridHolds()
    {
        var r = new Rng(22);
        Parity("sum-to-70000-outputs", t => Ops.SumTo(t[0], 70001, 1), [r.F32([70001, 3])]);
        Parity("sum-to-middle-axis", t => Ops.SumTo(t[0], 3, 1, 5), [r.F32([3, 9000, 5])]);
    }

    /// <summary>Sums over leading axes of a contiguous tensor (bias gradients) take sum_rows_f32 at every column-block
    /// width: 16 columns (4 a block on the simulator's 8 SMs), 300 (32 a block, a partial last block), two kept axes.</summary>
    [Fact]
    public void SumOverLeadingAxesMatchesTheCpuAtEveryColumnBlockWidth()
    {
        var r = new Rng(23);
        Parity("sum-rows-16-columns", t => Ops.SumTo(t[0], 16), [r.F32([37, 16])]);
        Parity("sum-rows-300-columns", t => Ops.SumTo(t[0], 300), [r.F32([5, 41, 300])]);
        Parity("sum-rows-two-kept-axes", t => Ops.SumTo(t[0], 3, 33), [r.F32([70, 3, 33])]);
        Parity("sum-rows-64-columns", t => Ops.SumTo(t[0], 1, 64), [r.F32([2, 1000, 64])]);
    }

    [Fact]
    public void LayerNormWithoutWeightOrBias()
    {
        var r = new Rng(23);
        Parity("layer_norm-no-affine", t => Ops.LayerNorm(t[0], null, null, 1e-5), [r.F32([37, 50], 2.0)]);
        Parity("layer_norm-weight-only", t => Ops.LayerNorm(t[0], t[1], null, 1e-5), [r.F32([9, 64], 2.0), r.F32([64])]);
    }

    [Fact]
    public void EmptyTensors()
    {
        var r = new Rng(24);
        Parity("gelu-empty", t => Ops.Gelu(t[0]), [r.F32([0, 7])]);
        Parity("add-empty", t => Ops.Add(t[0], t[1]), [r.F32([0, 5]), r.F32([5])]);
        Parity("softmax-empty", t => Ops.Softmax(t[0]), [r.F32([0, 9])]);
        Parity("layer_norm-empty", t => Ops.LayerNorm(t[0], t[1], t[2], 1e-5), [r.F32([0, 8]), r.F32([8]), r.F32([8])]);
        Parity("concat-empty", t => Ops.Concat([t[0], t[1]], 0), [r.F32([0, 4]), r.F32([3, 4])]);
    }

    [Fact]
    public void BadCallsAreRejectedOnTheHost()
    {
        var gpu = Device.Require();
        var x = Tensor.Zeros([4, 5], DType.F32, gpu);
        Assert.Throws<ArgumentException>(() => gpu.Unary(UnaryOp.Gelu, 0, x, Tensor.Zeros([4, 6], DType.F32, gpu)));
        Assert.Throws<ArgumentException>(() => gpu.Binary(BinaryOp.Add, x, Tensor.Zeros([3], DType.F32, gpu), Tensor.Zeros([4, 5], DType.F32, gpu), false));
        Assert.Throws<ArgumentException>(() => gpu.Permute(x, [0, 0], Tensor.Zeros([4, 5], DType.F32, gpu), false));
        Assert.Throws<ArgumentException>(() => gpu.CopyAxisRange(x, 3, Tensor.Zeros([4, 5], DType.F32, gpu), 0, 1, 3, false));
        Assert.Throws<ArgumentException>(() => gpu.SumTo(x, Tensor.Zeros([3], DType.F32, gpu), false));
        Assert.Throws<ArgumentException>(() => gpu.LayerNorm(x, null, null, x, Tensor.Zeros([4], DType.F32, gpu), Tensor.Zeros([4], DType.F32, gpu), 4, 6, 1, 1e-5));
        Assert.Throws<ArgumentException>(() => gpu.Gemm(false, false, 4, 5, 6, 1, x, 0, 0, x, 0, 0, 0, x, 0, 0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => gpu.Embedding(Tensor.FromArray(new long[] { 7 }, 1).To(gpu), x, Tensor.Zeros([1, 5], DType.F32, gpu)));
    }

    [Fact]
    public void PoolReusesFreedBlocksAndTracksPeak()
    {
        var gpu = Device.Require();
        gpu.Synchronize();
        long reserved = gpu.Pool.ReservedBytes;
        for (int i = 0; i < 5; i++)
            using (new TensorScope()) Tensor.Zeros([1 << 20], DType.F32, gpu);
        Assert.True(gpu.Pool.ReservedBytes - reserved <= 4L << 20, "the same block should have been reused");
        Assert.True(gpu.Pool.PeakBytes >= 4L << 20);
    }

    [Fact]
    public void TheDeviceSaysWhatItIs() => Assert.False(string.IsNullOrWhiteSpace(Device.Require().Describe()));

    [Fact]
    public void UnsupportedCasesSayWhatIsMissing()
    {
        var gpu = Device.Require();
        var e = Assert.Throws<NotSupportedException>(() => Tensor.Zeros([2, 3], DType.F64, gpu));
        Assert.Contains("F64", e.Message);
        var z = Tensor.Zeros([1100, 1100], DType.F32, gpu);
        var same = Tensor.Zeros([1100, 1100], DType.U8, gpu);
        Assert.Contains("InfoNCE over a batch of 1100", Assert.Throws<NotSupportedException>(() => Ops.InfoNce(z, same)).Message);
    }

    // ---- convolutions: every shape the model uses, and the general paths ----

    public static TheoryData<string, int[], int[], int, int, int, bool> Convolutions => new()
    {
        // name, x, w, stride, pad, groups, bias
        { "stem k=stride=4", [2, 3, 16, 16], [8, 3, 4, 4], 4, 0, 1, true },
        { "downsample 2x2/2", [2, 8, 8, 8], [16, 8, 2, 2], 2, 0, 1, true },
        { "decoder 3x3 pad 1", [2, 12, 9, 11], [7, 12, 3, 3], 1, 1, 1, true },
        { "head 1x1", [3, 16, 6, 6], [1, 16, 1, 1], 1, 0, 1, true },
        { "pointwise MLP 1x1", [2, 8, 5, 5], [32, 8, 1, 1], 1, 0, 1, false },
        { "depthwise 7x7 pad 3", [2, 6, 13, 10], [6, 1, 7, 7], 1, 3, 6, true },
        { "depthwise 3x3 pad 1", [1, 4, 20, 18], [4, 1, 3, 3], 1, 1, 4, false },
        { "depthwise 7x7, weight gradient in 3 splits", [3, 2, 72, 64], [2, 1, 7, 7], 1, 3, 2, true },
        { "depthwise 3x3 stride 2 (general path)", [2, 4, 9, 9], [4, 1, 3, 3], 2, 1, 4, true },
        { "grouped 3x3 stride 2 pad 2", [2, 6, 11, 9], [9, 2, 3, 3], 2, 2, 3, true },
        { "more than one tile in every direction", [2, 70, 12, 12], [80, 70, 3, 3], 1, 1, 1, true },
    };

    [Theory, MemberData(nameof(Convolutions))]
    public void Conv2d(string name, int[] x, int[] w, int stride, int pad, int groups, bool bias)
    {
        var r = new Rng(name.Length);
        Tensor[] inputs = bias ? [r.F32(x), r.F32(w, 0.3), r.F32([w[0]])] : [r.F32(x), r.F32(w, 0.3)];
        Parity($"conv2d {name}", t => Ops.Conv2d(t[0], t[1], bias ? t[2] : null, stride, pad, groups), inputs);
    }

    [Theory]
    [InlineData(2, 2, 5, 3, 3)]
    [InlineData(3, 1, 4, 7, 6)]
    [InlineData(2, 3, 3, 33, 2)]
    public void ConvTranspose2d(int k, int b, int c, int o, int h)
    {
        var r = new Rng(k * 10 + o);
        Parity($"conv_transpose2d k={k}", t => Ops.ConvTranspose2d(t[0], t[1], t[2], k), [r.F32([b, c, h, h + 1]), r.F32([c, o, k, k], 0.3), r.F32([o])]);
    }

    // ConvNeXt-T at batch 32: stage 0 has 96 channels at 56×56 (3 splits: 288 blocks on 132 SMs), stage 3 768 (one
    // block per channel already fills the device); a small sum is not split below 4,096 positions a block.
    [Theory]
    [InlineData(32, 96, 56, 132, 3)]
    [InlineData(32, 192, 28, 132, 2)]
    [InlineData(32, 768, 7, 132, 1)]
    [InlineData(3, 2, 72, 132, 3)]
    [InlineData(2, 6, 13, 132, 1)]
    public void TheDepthwiseWeightGradientSplitsToFillTheDevice(int b, int c, int hw, int sms, int splits)
    {
        var g = new Tmca.Cuda.Kernels.ConvGeom { B = b, C = c, H = hw, W = hw, O = c, Kh = 7, Kw = 7, Ho = hw, Wo = hw, Stride = 1, Pad = 3, Groups = c };
        Assert.Equal(splits, CudaBackend.DepthwiseWeightSplits(g, sms));
    }

    [Fact]
    public void ConvWeightGradientOverManyKSlices()
    {
        // B·Ho·Wo = 8·40·40 = 12,800 products per weight: the gradient is summed in several K slices
        var r = new Rng(31);
        Parity("conv2d 3x3 long K", t => Ops.Conv2d(t[0], t[1], t[2], 1, 1, 1), [r.F32([8, 4, 40, 40]), r.F32([5, 4, 3, 3], 0.3), r.F32([5])]);
    }

    // ---- normalisation and losses ----

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BatchNorm(bool training)
    {
        var gpu = Device.Require();
        var r = new Rng(training ? 41 : 42);
        var (rmCpu, rvCpu) = (r.F32([6], 0.5), Tensor.FromArray(Enumerable.Range(0, 6).Select(i => 0.5f + i * 0.25f).ToArray(), 6));
        var (rmGpu, rvGpu) = (rmCpu.To(gpu), rvCpu.To(gpu));
        Parity($"batch_norm training={training}", t => Ops.BatchNorm2d(t[0], t[1], t[2], t[0].Device == DeviceKind.Cpu ? rmCpu : rmGpu,
                                                                      t[0].Device == DeviceKind.Cpu ? rvCpu : rvGpu, training, 1e-5, 0.1),
               [r.F32([3, 6, 7, 5], 2.0), r.F32([6]), r.F32([6])]);
        // the running statistics moved the same way on both sides
        Assert.True(Comparison.Of("running mean", ToleranceKind.Forward, rmGpu.To(CpuBackend.Instance), rmCpu).Pass);
        Assert.True(Comparison.Of("running var", ToleranceKind.Forward, rvGpu.To(CpuBackend.Instance), rvCpu).Pass);
    }

    [Fact]
    public void LayerNormChannelsFirst()
    {
        var r = new Rng(43);
        Parity("layer_norm channels-first", t => Ops.LayerNormChannelsFirst(t[0], t[1], t[2], 1e-6), [r.F32([2, 24, 9, 7], 2.0), r.F32([24]), r.F32([24])]);
        Parity("layer_norm channels-first, no affine", t => Ops.LayerNormChannelsFirst(t[0], null, null, 1e-6), [r.F32([3, 5, 4, 4], 2.0)]);
    }

    [Fact]
    public void L2Normalize()
    {
        var r = new Rng(44);
        Parity("l2_normalize", t => Ops.L2Normalize(t[0]), [r.F32([7, 33])]);
        var x = r.F32([4, 40]);
        var data = x.ToArray<float>();
        for (int j = 0; j < 40; j++) data[40 + j] = 1e-9f;   // a row below eps: the clamped branch
        Parity("l2_normalize clamped row", t => Ops.L2Normalize(t[0], 1e-6), [Tensor.FromArray(data, 4, 40)]);
    }

    [Fact]
    public void BceAndDice()
    {
        var r = new Rng(45);
        var t = Tensor.FromArray(Enumerable.Range(0, 2 * 1 * 17 * 19).Select(i => i % 3 == 0 ? 1f : 0f).ToArray(), 2, 1, 17, 19);
        Parity("bce_with_logits", x => Ops.BceWithLogits(x[0], x[1]), [r.F32([2, 1, 17, 19], 3.0), t]);
        Parity("soft_dice", x => Ops.SoftDiceLoss(x[0], x[1]), [r.F32([2, 1, 17, 19], 3.0), t]);
        Parity("bce_with_logits soft targets", x => Ops.BceWithLogits(x[0], x[1]), [r.F32([5000], 3.0), Tensor.FromArray(Enumerable.Range(0, 5000).Select(i => (i % 7) / 6f).ToArray(), 5000)]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void InfoNceWithIdenticalReports(bool someIdentical)
    {
        var gpu = Device.Require();
        int b = 6;
        var same = new byte[b * b];
        if (someIdentical) { same[0 * b + 3] = same[3 * b + 0] = 1; same[2 * b + 5] = same[5 * b + 2] = 1; }
        var cpuSame = Tensor.FromArray(same, b, b);
        var gpuSame = cpuSame.To(gpu, persistent: true);
        Parity($"infonce identical={someIdentical}", t => Ops.InfoNce(t[0], t[0].Device == DeviceKind.Cpu ? cpuSame : gpuSame), [new Rng(46).F32([b, b], 3.0)]);
    }

    [Fact]
    public void PoolingAndPixelShuffle()
    {
        var r = new Rng(47);
        Parity("avg_pool2d", t => Ops.AvgPool2d(t[0], 4), [r.F32([2, 3, 16, 12])]);
        Parity("pixel_shuffle", t => Ops.PixelShuffle(t[0], 2), [r.F32([2, 12, 5, 4])]);
    }
}
