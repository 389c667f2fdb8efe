using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

/// <summary>
/// Gradient checks on shapes drawn at random (seeded, so a failure reproduces): batch sizes from 1, odd and even,
/// square and not, every stride/padding/group combination the draw allows. Complements the hand-picked cases.
/// </summary>
public class RandomShapeGradCheckTests
{
    public static TheoryData<int> Seeds => new() { 1, 2, 3, 4, 5, 6, 7, 8 };

    [Theory, MemberData(nameof(Seeds))]
    public void Conv2dOnRandomShapes(int seed)
    {
        var r = new Rng(1000 + seed);
        int groups = r.Int(1, 3), cg = r.Int(1, 3), og = r.Int(1, 3);
        int k = r.Int(1, 5), stride = r.Int(1, 3), pad = r.Int(0, k / 2 + 1);
        int H = r.Int(k, k + 6), W = r.Int(k, k + 7), B = r.Int(1, 3);
        var x = r.F64([B, groups * cg, H, W]); var w = r.F64([groups * og, cg, k, k], 0.4); var b = r.F64([groups * og]);
        GradCheck.Check(t => Ops.Conv2d(t[0], t[1], t[2], stride, pad, groups), [x, w, b], seed);
    }

    [Theory, MemberData(nameof(Seeds))]
    public void DenseOpsOnRandomShapes(int seed)
    {
        var r = new Rng(2000 + seed);
        int rank = r.Int(1, 4);
        var shape = Enumerable.Range(0, rank).Select(_ => r.Int(1, 6)).ToArray();
        int outF = r.Int(1, 7);
        GradCheck.Check(t => Ops.Linear(t[0], t[1], t[2]), [r.F64(shape), r.F64([outF, shape[^1]]), r.F64([outF])], seed);
        GradCheck.Check(t => Ops.Softmax(t[0]), [r.F64(shape, 2.0)], seed);
        GradCheck.Check(t => Ops.LayerNorm(t[0], t[1], t[2], 1e-5), [r.F64(shape, 2.0), r.F64([shape[^1]]), r.F64([shape[^1]])], seed);
        GradCheck.Check(t => Ops.L2Normalize(t[0]), [r.F64(shape)], seed);
        var perm = Enumerable.Range(0, rank).OrderBy(_ => r.Uniform(0, 1)).ToArray();
        GradCheck.Check(t => Ops.Permute(t[0], perm), [r.F64(shape)], seed);
        var bshape = shape.Select(d => r.Uniform(0, 1) < 0.5 ? 1 : d).ToArray();
        GradCheck.Check(t => Ops.Mul(t[0], t[1]), [r.F64(shape), r.F64(bshape)], seed);
    }

    [Theory, MemberData(nameof(Seeds))]
    public void NormsAndTransposedConvOnRandomShapes(int seed)
    {
        var r = new Rng(3000 + seed);
        int B = r.Int(1, 3), C = r.Int(1, 5), H = r.Int(1, 5), W = r.Int(1, 5), k = r.Int(1, 3), O = r.Int(1, 4);
        if (B * H * W < 2) H = 2;
        GradCheck.Check(t => Ops.LayerNormChannelsFirst(t[0], t[1], t[2], 1e-6), [r.F64([B, C, H, W]), r.F64([C]), r.F64([C])], seed);
        var rm = Tensor.Zeros([C], DType.F64); var rv = Tensor.Full([C], 1.0, DType.F64);
        GradCheck.Check(t => Ops.BatchNorm2d(t[0], t[1], t[2], rm, rv, training: true, 1e-5, 0.1), [r.F64([B, C, H, W]), r.F64([C]), r.F64([C])], seed);
        GradCheck.Check(t => Ops.ConvTranspose2d(t[0], t[1], t[2], k), [r.F64([B, C, H, W]), r.F64([C, O, k, k], 0.5), r.F64([O])], seed);
        GradCheck.Check(t => Ops.AvgPool2d(t[0], k), [r.F64([B, C, H * k, W * k])], seed);
    }
}
