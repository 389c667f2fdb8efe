using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

/// <summary>Every differentiable op against central differences in float64, on odd, batch-1 and non-square shapes.</summary>
public class GradCheckTests
{
    public static TheoryData<int, int, int, int, int, int, int, int, bool> ConvCases => new()
    {
        // B, C, H, W, O, k, stride, pad, bias   (groups = 1)
        { 1, 3, 9, 7, 5, 3, 1, 1, true },
        { 2, 2, 8, 8, 4, 4, 4, 0, true },      // ConvNeXt stem shape: kernel = stride
        { 1, 4, 6, 10, 3, 2, 2, 0, true },     // downsampling
        { 2, 5, 7, 5, 2, 3, 2, 1, false },     // strided, padded, no bias
        { 3, 6, 5, 5, 7, 1, 1, 0, true },      // 1×1
        { 1, 1, 5, 6, 2, 7, 1, 3, true },      // kernel larger than the image
        { 2, 6, 7, 9, 4, 3, 1, 1, false },     // narrowing, stride 1: data gradient as a flipped convolution
        { 1, 5, 6, 6, 5, 3, 1, 2, true },      // the same with padding k − 1
    };

    [Theory, MemberData(nameof(ConvCases))]
    public void Conv2d(int B, int C, int H, int W, int O, int k, int stride, int pad, bool bias)
    {
        var r = new Rng(B * 100 + C * 10 + k);
        var x = r.F64([B, C, H, W]); var w = r.F64([O, C, k, k], 0.3); var b = r.F64([O]);
        GradCheck.Check(t => Ops.Conv2d(t[0], t[1], bias ? t[2] : null, stride, pad), [x, w, b.WithGrad(bias)]);
    }

    [Theory]
    [InlineData(1, 6, 3, 5, 4)]
    [InlineData(2, 3, 2, 2, 5)]
    public void GeluConv1x1(int B, int I, int H, int W, int O)
    {
        var r = new Rng(B * 31 + I);
        var u = r.F64([B, I, H, W]); var w = r.F64([O, I, 1, 1], 0.4); var b = r.F64([O]);
        GradCheck.Check(t => Ops.GeluConv1x1(t[0], t[1], t[2]), [u, w, b]);
    }

    [Theory]
    [InlineData(new[] { 3, 5 }, 4)]
    [InlineData(new[] { 2, 3, 6 }, 7)]
    public void GeluLinear(int[] shape, int outF)
    {
        var r = new Rng(shape.Sum() + outF);
        var u = r.F64(shape); var w = r.F64([outF, shape[^1]], 0.4); var b = r.F64([outF]);
        GradCheck.Check(t => Ops.GeluLinear(t[0], t[1], t[2]), [u, w, b]);
    }

    [Theory]
    [InlineData(1, 4, 3, 5)]
    [InlineData(2, 3, 2, 2)]
    public void AddScaled(int B, int C, int H, int W)
    {
        var r = new Rng(C * 13 + H);
        var x = r.F64([B, C, H, W]); var h = r.F64([B, C, H, W]); var g = r.F64([C, 1, 1]);
        GradCheck.Check(t => Ops.AddScaled(t[0], t[1], t[2]), [x, h, g]);
    }

    [Theory]
    [InlineData(1, 6, 9, 7, 1, 3)]    // depthwise 7×7, pad 3 (ConvNeXt)
    [InlineData(2, 4, 5, 8, 2, 3)]    // strided depthwise
    [InlineData(1, 3, 4, 3, 1, 3)]    // image smaller than the kernel
    public void DepthwiseConv(int B, int C, int H, int W, int stride, int pad)
    {
        var r = new Rng(C * 7 + H);
        var x = r.F64([B, C, H, W]); var w = r.F64([C, 1, 7, 7], 0.3); var b = r.F64([C]);
        GradCheck.Check(t => Ops.Conv2d(t[0], t[1], t[2], stride, pad, groups: C), [x, w, b]);
    }

    [Fact]
    public void GroupedConv()
    {
        var r = new Rng(3);
        var x = r.F64([2, 6, 5, 7]); var w = r.F64([9, 2, 3, 3], 0.3);
        GradCheck.Check(t => Ops.Conv2d(t[0], t[1], null, 1, 1, groups: 3), [x, w]);
    }

    [Theory]
    [InlineData(1, 3, 3, 5, 4, 2)]
    [InlineData(2, 5, 2, 2, 3, 2)]
    [InlineData(1, 2, 3, 2, 2, 3)]
    public void ConvTranspose(int B, int C, int H, int W, int O, int k)
    {
        var r = new Rng(C + O * 3);
        var x = r.F64([B, C, H, W]); var w = r.F64([C, O, k, k], 0.5); var b = r.F64([O]);
        GradCheck.Check(t => Ops.ConvTranspose2d(t[0], t[1], t[2], k), [x, w, b]);
    }

    [Theory]
    [InlineData(new[] { 7 }, 5, true)]
    [InlineData(new[] { 3, 5, 9 }, 4, true)]
    [InlineData(new[] { 1, 1, 3 }, 6, false)]
    public void Linear(int[] xShape, int outF, bool bias)
    {
        var r = new Rng(outF);
        var x = r.F64(xShape); var w = r.F64([outF, xShape[^1]]); var b = r.F64([outF]);
        GradCheck.Check(t => Ops.Linear(t[0], t[1], bias ? t[2] : null), [x, w, b.WithGrad(bias)]);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void BatchedMatMul(bool ta, bool tb)
    {
        var r = new Rng(ta ? 1 : 2);
        int m = 3, k = 5, n = 4;
        var a = r.F64(ta ? [2, 3, k, m] : [2, 3, m, k]);
        var b = r.F64(tb ? [2, 3, n, k] : [2, 3, k, n]);
        GradCheck.Check(t => Ops.MatMul(t[0], t[1], ta, tb), [a, b]);
        // a shared right-hand matrix (stride 0 over the batch) must sum its gradient over the batch
        var b2 = r.F64(tb ? [n, k] : [k, n]);
        GradCheck.Check(t => Ops.MatMul(t[0], t[1], ta, tb), [a, b2]);
        var a2 = r.F64(ta ? [k, m] : [m, k]);
        GradCheck.Check(t => Ops.MatMul(t[0], t[1], ta, tb), [a2, b]);
    }

    [Theory]
    [InlineData(new[] { 4, 7 }, 1e-5)]
    [InlineData(new[] { 1, 3, 11 }, 1e-12)]
    public void LayerNormLastAxis(int[] shape, double eps)
    {
        var r = new Rng(shape.Length);
        var x = r.F64(shape, 2.0); var w = r.F64([shape[^1]]); var b = r.F64([shape[^1]]);
        GradCheck.Check(t => Ops.LayerNorm(t[0], t[1], t[2], eps), [x, w, b]);
    }

    [Theory]
    [InlineData(1, 5, 3, 4)]
    [InlineData(2, 3, 1, 1)]
    [InlineData(3, 2, 5, 1)]
    public void LayerNormChannelsFirst(int B, int C, int H, int W)
    {
        var r = new Rng(B + C);
        var x = r.F64([B, C, H, W]); var w = r.F64([C]); var b = r.F64([C]);
        GradCheck.Check(t => Ops.LayerNormChannelsFirst(t[0], t[1], t[2], 1e-6), [x, w, b]);
    }

    [Theory]
    [InlineData(3, 4, 2, 3)]
    [InlineData(1, 2, 3, 5)]
    [InlineData(5, 3, 1, 1)]
    public void BatchNormTraining(int B, int C, int H, int W)
    {
        var r = new Rng(B * C);
        var x = r.F64([B, C, H, W]); var w = r.F64([C]); var b = r.F64([C]);
        var rm = Tensor.Zeros([C], DType.F64); var rv = Tensor.Full([C], 1.0, DType.F64);
        GradCheck.Check(t => Ops.BatchNorm2d(t[0], t[1], t[2], rm, rv, training: true, 1e-5, 0.1), [x, w, b]);
    }

    [Fact]
    public void BatchNormEvaluationWithGradients()
    {
        var r = new Rng(9);
        var x = r.F64([2, 3, 2, 3]); var w = r.F64([3]); var b = r.F64([3]);
        var rm = r.F64([3], grad: false); var rv = r.Positive([3]); rv.RequiresGrad = false;
        GradCheck.Check(t => Ops.BatchNorm2d(t[0], t[1], t[2], rm, rv, training: false, 1e-5, 0.1), [x, w, b]);
    }

    public static TheoryData<string> UnaryOps => new() { "gelu", "sigmoid", "leaky_relu", "exp", "log", "sqrt", "square", "reciprocal", "scale", "add_scalar", "clamp_min", "neg" };

    [Theory, MemberData(nameof(UnaryOps))]
    public void Unary(string op)
    {
        var r = new Rng(op.Length);
        bool positive = op is "log" or "sqrt" or "reciprocal";
        var x = positive ? r.Positive([3, 7]) : r.F64([3, 7], 2.0);
        Func<Tensor, Tensor> f = op switch
        {
            "gelu" => Ops.Gelu,
            "sigmoid" => Ops.Sigmoid,
            "leaky_relu" => t => Ops.LeakyRelu(t, 0.01),
            "exp" => Ops.Exp,
            "log" => Ops.Log,
            "sqrt" => Ops.Sqrt,
            "square" => Ops.Square,
            "reciprocal" => Ops.Reciprocal,
            "scale" => t => Ops.Scale(t, -2.5),
            "add_scalar" => t => Ops.AddScalar(t, 0.7),
            "clamp_min" => t => Ops.ClampMin(t, 0.1),
            "neg" => Ops.Neg,
            _ => throw new ArgumentException(op),
        };
        GradCheck.Check(t => f(t[0]), [x]);
    }

    [Theory]
    [InlineData("add")]
    [InlineData("sub")]
    [InlineData("mul")]
    [InlineData("div")]
    public void BroadcastingBinary(string op)
    {
        var r = new Rng(op[0]);
        Func<Tensor, Tensor, Tensor> f = op switch { "add" => Ops.Add, "sub" => Ops.Sub, "mul" => Ops.Mul, _ => Ops.Div };
        Tensor B(int[] s) => op == "div" ? r.Positive(s) : r.F64(s);
        GradCheck.Check(t => f(t[0], t[1]), [r.F64([2, 3, 4]), B([2, 3, 4])]);      // same shape
        GradCheck.Check(t => f(t[0], t[1]), [r.F64([2, 3, 4]), B([4])]);            // trailing vector
        GradCheck.Check(t => f(t[0], t[1]), [r.F64([2, 1, 4]), B([1, 3, 1])]);      // both broadcast
        GradCheck.Check(t => f(t[0], t[1]), [r.F64([1]), B([3, 2])]);               // scalar on the left
    }

    [Fact]
    public void SoftmaxLastAxis()
    {
        var r = new Rng(5);
        GradCheck.Check(t => Ops.Softmax(t[0]), [r.F64([2, 3, 7], 2.0)]);
        GradCheck.Check(t => Ops.Softmax(t[0]), [r.F64([1, 1], 2.0)]);
    }

    [Theory]
    [InlineData(1, 5, 3, 12, 3, false)]
    [InlineData(2, 4, 4, 8, 1, false)]
    [InlineData(2, 3, 6, 8, 2, true)]
    public void MultiHeadAttention(int B, int Nq, int Nk, int E, int heads, bool keyMask)
    {
        var r = new Rng(Nq * Nk);
        Tensor W() => r.F64([E, E], 0.3);
        var inputs = new[] { r.F64([B, Nq, E]), r.F64([B, Nk, E]), r.F64([B, Nk, E]), W(), r.F64([E]), W(), r.F64([E]), W(), r.F64([E]), W(), r.F64([E]) };
        Tensor? bias = null;
        if (keyMask)
        {
            var m = new double[B * Nk];
            for (int b = 0; b < B; b++) for (int j = Nk - 1 - b; j < Nk; j++) m[b * Nk + j] = float.MinValue;   // pad the last keys
            bias = Tensor.FromArray(m, B, Nk);
        }
        GradCheck.Check(t => Ops.MultiHeadAttention(t[0], t[1], t[2], new AttentionWeights(t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10]), heads, bias), inputs);
    }

    [Fact]
    public void EmbeddingWithRepeatedIds()
    {
        var r = new Rng(4);
        var ids = Tensor.FromArray(new long[] { 3, 1, 3, 0, 6, 6, 2, 3 }, 2, 4);
        GradCheck.Check(t => Ops.Embedding(ids, t[0]), [r.F64([7, 5])]);
    }

    [Fact]
    public void LayoutOps()
    {
        var r = new Rng(6);
        GradCheck.Check(t => Ops.Permute(t[0], 2, 0, 3, 1), [r.F64([2, 3, 4, 5])]);
        GradCheck.Check(t => Ops.Reshape(Ops.Square(t[0]), 6, -1), [r.F64([2, 3, 5])]);
        GradCheck.Check(t => Ops.Concat([t[0], t[1], t[2]], 1), [r.F64([2, 1, 3]), r.F64([2, 4, 3]), r.F64([2, 2, 3])]);
        GradCheck.Check(t => Ops.Concat([t[0], t[1]], 2), [r.F64([1, 2, 3]), r.F64([1, 2, 1])]);
        GradCheck.Check(t => Ops.Narrow(t[0], 1, 2, 3), [r.F64([2, 7, 3])]);
        GradCheck.Check(t => Ops.BroadcastTo(t[0], 3, 2, 4), [r.F64([2, 1])]);
        GradCheck.Check(t => Ops.SumTo(t[0], 1, 3, 1), [r.F64([2, 3, 5])]);
        GradCheck.Check(t => Ops.Sum(t[0]), [r.F64([3, 4])]);
        GradCheck.Check(t => Ops.Mean(t[0]), [r.F64([5])]);
        GradCheck.Check(t => Ops.SumAxes(t[0], [0, 2]), [r.F64([2, 3, 4])]);
    }

    [Theory]
    [InlineData(1, 2, 3, 5, 2)]
    [InlineData(2, 1, 2, 2, 4)]
    public void PixelShuffle(int B, int C, int H, int W, int rr)
    {
        var r = new Rng(rr);
        GradCheck.Check(t => Ops.PixelShuffle(t[0], rr), [r.F64([B, C * rr * rr, H, W])]);
    }

    [Theory]
    [InlineData(1, 2, 8, 4, 4)]
    [InlineData(2, 3, 6, 9, 3)]
    public void AvgPool(int B, int C, int H, int W, int k)
    {
        var r = new Rng(k);
        GradCheck.Check(t => Ops.AvgPool2d(t[0], k), [r.F64([B, C, H, W])]);
    }

    [Fact]
    public void L2Normalize()
    {
        var r = new Rng(8);
        GradCheck.Check(t => Ops.L2Normalize(t[0], 1e-6), [r.F64([3, 4, 5])]);
        // a row below eps is clamped: the gradient is then gy/eps
        var tiny = Tensor.FromArray(new double[] { 1e-8, -2e-8, 3e-8, 0.5, 0.25, -1 }, 2, 3);
        tiny.RequiresGrad = true;
        GradCheck.Check(t => Ops.L2Normalize(t[0], 1e-6), [tiny], h: 1e-10, atol: 1e-4);
    }

    [Fact]
    public void Losses()
    {
        var r = new Rng(10);
        var t = Tensor.FromArray(Enumerable.Range(0, 2 * 15).Select(i => (i * 7 % 5) / 4.0).ToArray(), 2, 1, 3, 5);   // soft targets
        var hard = Tensor.FromArray(Enumerable.Range(0, 2 * 15).Select(i => (i * 7 % 3 == 0) ? 1.0 : 0.0).ToArray(), 2, 1, 3, 5);
        GradCheck.Check(x => Ops.BceWithLogits(x[0], t), [r.F64([2, 1, 3, 5], 2.0)]);
        GradCheck.Check(x => Ops.SoftDiceLoss(x[0], hard), [r.F64([2, 1, 3, 5], 2.0)]);
        var same = new byte[25]; same[0 * 5 + 3] = same[3 * 5 + 0] = 1; same[1 * 5 + 2] = same[2 * 5 + 1] = 1;
        var sameT = Tensor.FromArray(same, 5, 5);
        GradCheck.Check(x => Ops.InfoNce(x[0], sameT), [r.F64([5, 5], 3.0)]);
        GradCheck.Check(x => Ops.InfoNce(x[0], Tensor.FromArray(new byte[1], 1, 1)), [r.F64([1, 1])]);
    }
}

internal static class TensorTestExtensions
{
    public static Tensor WithGrad(this Tensor t, bool grad) { t.RequiresGrad = grad; return t; }
}
