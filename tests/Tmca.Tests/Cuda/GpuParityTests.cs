using Tmca.Cuda;
using Tmca.Engine;
using Tmca.Engine.Verification;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>The GPU, when this machine has one (tests skip with the reason otherwise).</summary>
public static class Gpu
{
    private static readonly Lazy<(CudaBackend? Backend, string Reason)> Instance = new(() =>
    {
        var b = CudaBackend.TryCreate(out var why);
        return (b, why);
    });

    public static CudaBackend Require()
    {
        var (b, why) = Instance.Value;
        if (b is null) Assert.Skip($"no GPU: {why}");
        b!.Tf32 = false;
        return b;
    }
}

/// <summary>
/// CUDA against the CPU reference on the same inputs, forward and backward, with the tolerances of
/// ../shared/oracles/README.md (TF32 off): outputs |a−b| ≤ 1e-4 + 1e-3|b|; gradients 1e-4 + 1e-2|b| elementwise or
/// relative L2 ≤ 1e-3.
/// </summary>
[Trait("Category", "GPU")]
public class GpuParityTests
{
    /// <summary>Runs f on the CPU and on the GPU with the same inputs and upstream gradient; compares everything.</summary>
    private static void Parity(string name, Func<Tensor[], Tensor> f, Tensor[] inputs, int seed = 1)
    {
        var gpu = Gpu.Require();
        var report = new OracleReport(name);
        Tensor cpuOut, gpuOut;
        var cpuIn = inputs.Select(t => { var c = t.Clone(persistent: true); c.RequiresGrad = t.DType == DType.F32; return c; }).ToArray();
        var gpuIn = inputs.Select(t => { var g = t.To(gpu, persistent: true); g.RequiresGrad = t.DType == DType.F32; return g; }).ToArray();
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
        var gpu = Gpu.Require();
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
        var gpu = Gpu.Require();
        var gBias = bias.To(gpu, persistent: true);
        Parity("mha", t => Ops.MultiHeadAttention(t[0], t[1], t[2], new AttentionWeights(t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10]), 4,
                                                  t[0].Device == DeviceKind.Cpu ? bias : gBias),
               [r.F32([B, Nq, E]), r.F32([B, Nk, E]), r.F32([B, Nk, E]), r.F32([E, E], 0.2), r.F32([E]), r.F32([E, E], 0.2), r.F32([E]),
                r.F32([E, E], 0.2), r.F32([E]), r.F32([E, E], 0.2), r.F32([E])]);
    }

    [Fact]
    public void AdamWOverManyTensorsInOneLaunch()
    {
        var gpu = Gpu.Require();
        var r = new Rng(8);
        int[][] shapes = [[10], [300, 70], [1], [4097], [33, 5]];
        var cpu = shapes.Select(s => (P: r.F32(s), G: r.F32(s))).ToList();
        var cpuSlots = cpu.Select((t, i) => new AdamWSlot(t.P, t.G, Tensor.ZerosLike(t.P), Tensor.ZerosLike(t.P), Decay: i != 2)).ToList();
        var gpuSlots = cpuSlots.Select(s => new AdamWSlot(s.Param.To(gpu), s.Grad.To(gpu), s.M.To(gpu), s.V.To(gpu), s.Decay)).ToList();
        for (int step = 1; step <= 3; step++)
        {
            var h = new AdamWStep(1e-2, 0.9, 0.999, 1e-8, 0.1, step);
            CpuBackend.Instance.AdamW(cpuSlots, h);
            gpu.AdamW(gpuSlots, h);
        }
        for (int i = 0; i < shapes.Length; i++)
        {
            var c = Comparison.Of($"param{i}", ToleranceKind.Forward, gpuSlots[i].Param.To(CpuBackend.Instance), cpuSlots[i].Param);
            Assert.True(c.Pass, $"{c.Name}: {c.MaxAbs:E2}");
        }
    }

    [Fact]
    public void Tf32GemmStaysWithinItsTolerance()
    {
        var gpu = Gpu.Require();
        var r = new Rng(9);
        var a = r.F32([256, 512]); var b = r.F32([512, 128]);
        var cpu = Ops.MatMul(a, b);
        gpu.Tf32 = true;
        try
        {
            var g = Ops.MatMul(a.To(gpu), b.To(gpu)).To(CpuBackend.Instance);
            var c = Comparison.Of("tf32", ToleranceKind.Gradient, g, cpu);
            Assert.True(c.RelL2 <= 1e-2, $"TF32 relative L2 {c.RelL2:E2}");
        }
        finally { gpu.Tf32 = false; }
    }

    [Fact]
    public void PoolReusesFreedBlocksAndTracksPeak()
    {
        var gpu = Gpu.Require();
        gpu.Synchronize();
        long reserved = gpu.Pool.ReservedBytes;
        for (int i = 0; i < 5; i++)
            using (new TensorScope()) Tensor.Zeros([1 << 20], DType.F32, gpu);
        Assert.True(gpu.Pool.ReservedBytes - reserved <= 4L << 20, "the same block should have been reused");
        Assert.True(gpu.Pool.PeakBytes >= 4L << 20);
    }

    [Fact]
    public void UnsupportedOpsSayWhatIsMissing()
    {
        var gpu = Gpu.Require();
        var x = Tensor.Zeros([1, 3, 8, 8], DType.F32, gpu);
        var e = Assert.Throws<NotSupportedException>(() => Ops.Conv2d(x, Tensor.Zeros([4, 3, 3, 3], DType.F32, gpu)));
        Assert.Contains("conv2d", e.Message);
    }
}
