using Tmca.Engine;

namespace Tmca.Model;

/// <summary>
/// Target-sensitive alignment heads (spec §5) and language-guided target enhancement (spec §6).
/// Per level l: pixel embeddings V_l = norm(fc2(GELU(fc1(F_l)))) (B×N×d), text embedding U_l = norm(MLP(g)) (B×d),
/// similarity map S_l = ⟨V_l, U_l⟩ (B×h×w), enhancement map A_l = σ(a_l·S_l + b_l).
/// </summary>
public sealed class AlignmentHeads
{
    private sealed record Mlp(Parameter W1, Parameter B1, Parameter W2, Parameter B2)
    {
        public Tensor Forward(Tensor x) => Ops.GeluLinear(Ops.Linear(x, W1.Value, B1.Value), W2.Value, B2.Value);   // keeps no GELU output
    }

    private readonly Mlp[] _image = new Mlp[4], _text = new Mlp[4];
    public Parameter LogTau { get; }
    private const double NormEps = 1e-6;

    public AlignmentHeads(ParameterSet ps, int[] dims, int textHidden, int alignDim, double tauInit)
    {
        for (int l = 0; l < 4; l++)
        {
            _image[l] = MlpAt(ps, $"align.image.{l}.", dims[l], alignDim);
            _text[l] = MlpAt(ps, $"align.text.{l}.", textHidden, alignDim);
        }
        LogTau = ps.Add("align.log_tau", [1], Init.Constant(Math.Log(tauInit)), scalar: true);
    }

    private static Mlp MlpAt(ParameterSet ps, string p, int inF, int d) => new(
        ps.Add($"{p}fc1.weight", [d, inF], Init.Normal()), ps.Add($"{p}fc1.bias", [d], Init.Zeros),
        ps.Add($"{p}fc2.weight", [d, d], Init.Normal()), ps.Add($"{p}fc2.bias", [d], Init.Zeros));

    /// <summary>Recompute each pixel head in the backward (issue 19; any mode but None): only F_l and V_l are kept — the
    /// channels-last copy of F_l and fc1's output (on tiny at batch 32, 138 MiB at level 0) are made again.</summary>
    public RecomputeMode Recompute { get; set; } = RecomputeMode.None;

    /// <summary>F_l: B×C×h×w → unit pixel embeddings V_l: B×(h·w)×d.</summary>
    public Tensor PixelEmbeddings(int level, Tensor f)
    {
        int B = f.Shape[0], h = f.Shape[2], w = f.Shape[3];
        var v = Recompute == RecomputeMode.None ? PixelHead(level, f)
            : Engine.Recompute.Run($"align.image.{level}", f, x => PixelHead(level, x));
        return Ops.Reshape(v, B, h * w, -1);
    }

    // F_l: B×C×h×w → B×h×w×d, unit rows
    private Tensor PixelHead(int level, Tensor f)
    {
        var x = Ops.Permute(f, 0, 2, 3, 1);                               // B×h×w×C
        var p = _image[level].Forward(x);                                 // B×h×w×d
        var v = Ops.L2Normalize(p, NormEps);
        Ops.Discard(p);                                                   // the normalisation's backward reads v alone
        return v;
    }

    /// <summary>g: B×D → unit text embedding U_l: B×d.</summary>
    public Tensor TextEmbedding(int level, Tensor g) => Ops.L2Normalize(_text[level].Forward(g), NormEps);

    /// <summary>S_l[b, p] = ⟨V_l[b, p], U_l[b]⟩, returned as B×h×w.</summary>
    public static Tensor Similarity(Tensor v, Tensor u, int h, int w)
    {
        int B = v.Shape[0];
        var s = Ops.MatMul(v, Ops.Reshape(u, B, u.Shape[1], 1));         // B×N×1
        return Ops.Reshape(s, B, h, w);
    }

    /// <summary>τ = max(exp(log τ), τ_min).</summary>
    public Tensor Temperature(double tauMin) => Ops.ClampMin(Ops.Exp(LogTau.Value), tauMin);
}

/// <summary>The LGTE scalars per level: A_l = σ(a_l·S_l + b_l), F̃_l = F_l ⊙ (1 + γ_l·A_l).</summary>
public sealed class Lgte
{
    private readonly Parameter[] _a = new Parameter[4], _b = new Parameter[4], _gamma = new Parameter[4];

    public Lgte(ParameterSet ps, double aInit, double bInit, double gammaInit)
    {
        for (int l = 0; l < 4; l++)
        {
            _a[l] = ps.Add($"lgte.{l}.a", [1], Init.Constant(aInit), scalar: true);
            _b[l] = ps.Add($"lgte.{l}.b", [1], Init.Constant(bInit), scalar: true);
            _gamma[l] = ps.Add($"lgte.{l}.gamma", [1], Init.Constant(gammaInit), scalar: true);
        }
    }

    /// <summary>a_l·S_l + b_l as B×1×h×w (the logits of A_l and of the pixel alignment loss).</summary>
    public Tensor Logits(int l, Tensor s)
    {
        var s4 = Ops.Reshape(s, s.Shape[0], 1, s.Shape[1], s.Shape[2]);
        return Ops.Add(Ops.Mul(s4, _a[l].Value), _b[l].Value);
    }

    /// <summary>F̃ = F ⊙ (1 + γ·A), A: B×1×h×w broadcast over channels.</summary>
    public Tensor Enhance(int l, Tensor f, Tensor a) => Ops.Mul(f, Ops.AddScalar(Ops.Mul(a, _gamma[l].Value), 1.0));

    /// <summary>The fused path the model runs: S, A, F̃ and (with a target W_l) the pixel-alignment loss of level l in one
    /// op (<see cref="Ops.SimilarityLgte"/>); <see cref="Composed"/> is the same from generic ops, the reference.</summary>
    public Ops.LgteOutputs Apply(int l, Tensor v, Tensor u, Tensor f, Tensor? target) =>
        Ops.SimilarityLgte(v, u, f, _a[l].Value, _b[l].Value, _gamma[l].Value, target);

    /// <summary>The composed reference of <see cref="Apply"/>: similarity by batched GEMV, gate and enhancement by
    /// elementwise ops, the loss by BCE with logits.</summary>
    public Ops.LgteOutputs Composed(int l, Tensor v, Tensor u, Tensor f, Tensor? target)
    {
        int B = f.Shape[0], h = f.Shape[2], w = f.Shape[3];
        var s = AlignmentHeads.Similarity(v, u, h, w);
        var logits = Logits(l, s);
        var a = Ops.Sigmoid(logits);
        return new Ops.LgteOutputs(Ops.Reshape(s, B, 1, h, w), logits, a, Enhance(l, f, a), target is null ? null : Ops.BceWithLogits(logits, target));
    }
}
