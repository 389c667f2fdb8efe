using Tmca.Engine;
using Tmca.Engine.Verification;
using Tmca.Model;
using Tmca.Tests.Cuda;
using Xunit;

namespace Tmca.Tests.Model;

/// <summary>
/// The fused TMCA ops equal the same quantities composed from generic ops (ContrastiveLoss.Composed): the loss of
/// every level and their mean, and the gradients to every level's pixel and text embeddings and to τ — on the CPU
/// (the fused ops' CPU twins) and on the CUDA backend (the fused kernels), on random shapes including a sample
/// without target, two identical reports, global alignment and a subset of levels.
/// </summary>
[Collection("device")]
public class FusedTmcaTests
{
    public sealed record Case(string Name, int B, int S, (int H, int W)[] Grids, int D, bool Global, bool EmptyTarget, bool Identical)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Case> Cases => new()
    {
        new Case("four levels", 4, 32, [(8, 8), (4, 4), (2, 2), (1, 1)], 6, false, false, false),
        new Case("a sample without target", 3, 16, [(4, 4), (2, 2)], 5, false, true, false),
        new Case("two identical reports", 5, 16, [(8, 8), (2, 2)], 4, false, false, true),
        new Case("global alignment", 3, 16, [(4, 4), (2, 2), (1, 1)], 4, true, false, false),
        new Case("a subset of levels (the deepest)", 2, 32, [(1, 1)], 3, false, false, false),
        new Case("non-square grid", 3, 24, [(6, 6), (3, 3)], 7, false, true, true),
    };

    private sealed record Inputs(Tensor Gt, Tensor[] V, Tensor[] U, Tensor Tau, Tensor Same, Tensor Seed);

    private static Inputs Make(Case c, int seed)
    {
        var r = new Rng(seed);
        var gt = new float[c.B * c.S * c.S];
        for (int b = 0; b < c.B; b++)
            if (!(c.EmptyTarget && b == 1))
                for (int i = 0; i < c.S * c.S; i++) gt[b * c.S * c.S + i] = r.Uniform(0, 1) < 0.3 ? 1f : 0f;
        Tensor Unit(int rows, int d)
        {
            var x = r.F32([rows, d]).ToArray<float>();
            for (int i = 0; i < rows; i++)
            {
                double n = Math.Sqrt(Enumerable.Range(0, d).Sum(j => (double)x[i * d + j] * x[i * d + j]));
                for (int j = 0; j < d; j++) x[i * d + j] = (float)(x[i * d + j] / n);
            }
            return Tensor.FromArray(x, rows, d);
        }
        var v = c.Grids.Select(g => Unit(c.B * g.H * g.W, c.D).View(c.B, g.H * g.W, c.D)).ToArray();
        var u = c.Grids.Select(_ => Unit(c.B, c.D)).ToArray();
        var same = new byte[c.B * c.B];
        if (c.Identical) same[0 * c.B + 2] = same[2 * c.B + 0] = 1;
        return new Inputs(Tensor.FromArray(gt, c.B, 1, c.S, c.S), v, u, Tensor.FromArray(new[] { 0.07f }, 1),
                          Tensor.FromArray(same, c.B, c.B), r.F32([c.Grids.Length + 1]));
    }

    /// <summary>The loss vector and the gradients of v, u and τ for one way of computing it on one backend.</summary>
    private static List<(string Name, Tensor Value)> Run(Case c, Inputs x, IBackend be, bool fused)
    {
        Tensor On(Tensor t) { var d = t.To(be, persistent: true); d.RequiresGrad = t.DType == DType.F32 && t.Rank != 4; return d; }
        var gt = x.Gt.To(be, persistent: true);
        var v = x.V.Select(On).ToArray();
        var u = x.U.Select(On).ToArray();
        var tau = On(x.Tau);
        var same = x.Same.To(be, persistent: true);
        var results = new List<(string, Tensor)>();
        using (var tape = new Tape())
        {
            var loss = fused ? ContrastiveLoss.Fused(gt, v, u, c.Grids, tau, c.Global, same)
                             : ContrastiveLoss.Composed(gt, v, u, c.Grids, tau, c.Global, same);
            tape.Backward(loss, x.Seed.To(be));
            results.Add(("loss", loss.To(CpuBackend.Instance)));
        }
        for (int l = 0; l < v.Length; l++)
        {
            results.Add(($"grad v[{l}]", v[l].Grad!.To(CpuBackend.Instance)));
            results.Add(($"grad u[{l}]", u[l].Grad!.To(CpuBackend.Instance)));
        }
        results.Add(("grad tau", tau.Grad!.To(CpuBackend.Instance)));
        return results;
    }

    private static void AssertSame(string what, List<(string Name, Tensor Value)> actual, List<(string Name, Tensor Value)> expected)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            var kind = i == 0 ? ToleranceKind.Forward : ToleranceKind.Gradient;
            var c = Comparison.Of(expected[i].Name, kind, actual[i].Value, expected[i].Value);
            Assert.True(c.Pass, $"{what}: {c.Name} max|a-b| {c.MaxAbs:E2} relL2 {c.RelL2:E2} {c.Note}");
        }
    }

    [Theory, MemberData(nameof(Cases))]
    public void FusedEqualsComposedOnTheCpu(Case c)
    {
        var x = Make(c, c.Name.Length);
        var composed = Run(c, x, CpuBackend.Instance, fused: false);
        AssertSame($"{c} CPU", Run(c, x, CpuBackend.Instance, fused: true), composed);
        // the loss is not trivially equal: the seed reaches every level and τ
        Assert.True(composed.Single(r => r.Name == "grad tau").Value.Item() != 0);
    }

    [Theory, MemberData(nameof(Cases))]
    public void FusedKernelsEqualComposedOps(Case c)
    {
        var device = Device.Require();
        var x = Make(c, c.Name.Length);
        var composed = Run(c, x, CpuBackend.Instance, fused: false);
        AssertSame($"{c} fused on {device.Name}", Run(c, x, device, fused: true), composed);
        AssertSame($"{c} composed on {device.Name}", Run(c, x, device, fused: false), composed);
    }

    // ---- similarity + LGTE + pixel alignment (one level) ----

    public static TheoryData<string, int, int, int, int, int, bool, bool> LgteCases => new()
    {
        // name, B, C, h, w, d, with target (pixel loss), a sample without target
        { "square grid with target", 3, 5, 4, 4, 6, true, false },
        { "non-square grid, an empty target", 2, 7, 3, 5, 4, true, true },
        { "without the pixel loss", 4, 3, 2, 2, 8, false, false },
        { "one pixel", 2, 4, 1, 1, 5, true, false },
        // the kernels' 32-pixel tiles: three of them (the last one partial), d past a warp's 32 lanes
        { "several pixel tiles, d > 32", 2, 6, 7, 10, 40, true, false },
    };

    private static List<(string Name, Tensor Value)> RunLgte(bool fused, IBackend be, int seed, int B, int C, int h, int w, int d, bool withTarget, bool emptyTarget)
    {
        var r = new Rng(seed);
        var ps = new ParameterSet(seed);
        var lgte = new Lgte(ps, 10.0, -0.3, 0.5);
        ps.To(be);
        foreach (var p in ps.Trainable) p.Value.Grad = null;
        Tensor Leaf(Tensor t) { var x = t.To(be, persistent: true); x.RequiresGrad = true; return x; }
        var v = Leaf(r.F32([B, h * w, d], 0.4));
        var u = Leaf(r.F32([B, d], 0.4));
        var f = Leaf(r.F32([B, C, h, w]));
        Tensor? target = null;
        if (withTarget)
        {
            var t = Enumerable.Range(0, B * h * w).Select(i => emptyTarget && i / (h * w) == 0 ? 0f : (float)r.Uniform(0, 1)).ToArray();
            target = Tensor.FromArray(t, B, 1, h, w).To(be, persistent: true);
        }
        var seedF = r.F32([B, C, h, w]).To(be);
        var results = new List<(string, Tensor)>();
        using (var tape = new Tape())
        {
            var o = fused ? lgte.Apply(0, v, u, f, target) : lgte.Composed(0, v, u, f, target);
            results.Add(("S", o.Similarity.To(CpuBackend.Instance)));
            results.Add(("A", o.Attention.To(CpuBackend.Instance)));
            results.Add(("F~", o.FOut.To(CpuBackend.Instance)));
            // one scalar objective over both differentiable outputs: Σ F̃·seed + 3·pix
            var obj = Ops.Sum(Ops.Mul(o.FOut, seedF));
            if (o.Pix is not null) { results.Add(("pix", o.Pix.To(CpuBackend.Instance))); obj = Ops.Add(obj, Ops.Scale(o.Pix, 3.0)); }
            tape.Backward(obj);
        }
        results.Add(("grad v", v.Grad!.To(CpuBackend.Instance)));
        results.Add(("grad u", u.Grad!.To(CpuBackend.Instance)));
        results.Add(("grad f", f.Grad!.To(CpuBackend.Instance)));
        foreach (var p in ps.Trainable.Where(p => p.Name.StartsWith("lgte.0.")))
            results.Add(($"grad {p.Name}", p.Value.Grad!.To(CpuBackend.Instance)));
        return results;
    }

    [Theory, MemberData(nameof(LgteCases))]
    public void FusedLgteEqualsComposedOnTheCpu(string name, int B, int C, int h, int w, int d, bool withTarget, bool emptyTarget)
    {
        var composed = RunLgte(false, CpuBackend.Instance, name.Length, B, C, h, w, d, withTarget, emptyTarget);
        AssertSameAll($"{name} CPU", RunLgte(true, CpuBackend.Instance, name.Length, B, C, h, w, d, withTarget, emptyTarget), composed);
        Assert.True(composed.Single(x => x.Name == "grad lgte.0.a").Value.Item() != 0);
    }

    [Theory, MemberData(nameof(LgteCases))]
    public void FusedLgteKernelsEqualComposedOps(string name, int B, int C, int h, int w, int d, bool withTarget, bool emptyTarget)
    {
        var device = Device.Require();
        var composed = RunLgte(false, CpuBackend.Instance, name.Length, B, C, h, w, d, withTarget, emptyTarget);
        AssertSameAll($"{name} on {device.Name}", RunLgte(true, device, name.Length, B, C, h, w, d, withTarget, emptyTarget), composed);
    }

    private static void AssertSameAll(string what, List<(string Name, Tensor Value)> actual, List<(string Name, Tensor Value)> expected)
    {
        Assert.Equal(expected.Select(e => e.Name), actual.Select(a => a.Name));
        for (int i = 0; i < expected.Count; i++)
        {
            var kind = expected[i].Name.StartsWith("grad") ? ToleranceKind.Gradient : ToleranceKind.Forward;
            var c = Comparison.Of(expected[i].Name, kind, actual[i].Value, expected[i].Value);
            Assert.True(c.Pass, $"{what}: {c.Name} max|a-b| {c.MaxAbs:E2} relL2 {c.RelL2:E2} {c.Note}");
        }
    }

    [Fact]
    public void WithoutTargetTheWeightsAreUniform()
    {
        // one sample, one level, no target: v̄ is the plain mean of the pixel vectors, so z = ⟨mean v, u⟩/τ
        var c = new Case("uniform", 1, 8, [(2, 2)], 2, false, true, false);
        var gt = Tensor.Zeros([1, 1, 8, 8]);
        var v = Tensor.FromArray(new[] { 1f, 0f, 0f, 1f, 1f, 0f, 0f, 1f }, 1, 4, 2);
        var u = Tensor.FromArray(new[] { 1f, 0f }, 1, 2);
        var z = Ops.TargetLogits(gt, [v], [u], c.Grids, Tensor.FromArray(new[] { 0.5f }, 1), global: false);
        Assert.Equal(0.5 / 0.5, z.Item(), 6);
        // with a target covering only the top-left cell, ω is one-hot there: z = ⟨v[0], u⟩/τ
        var g = new float[64];
        for (int y = 0; y < 4; y++) for (int x = 0; x < 4; x++) g[y * 8 + x] = 1f;
        var z2 = Ops.TargetLogits(Tensor.FromArray(g, 1, 1, 8, 8), [v], [u], c.Grids, Tensor.FromArray(new[] { 0.5f }, 1), global: false);
        Assert.Equal(1.0 / 0.5, z2.Item(), 6);
    }
}
