using Tmca.Engine;

namespace Tmca.Model;

/// <summary>
/// The GuideDecoder-style decoder (spec §7, keys under <c>decoder.</c>). Stage k (k = 0, 1, 2) takes X at level
/// 3−k (C = dims[3−k]) and the skip F̃ at level 2−k: optional text projection T, self-attention over the
/// pixels with sinusoidal positions, optional cross-attention to T, then 2× transposed-conv up-sampling,
/// concatenation with the skip and two conv-BN-LeakyReLU layers. A 3×3 conv, PixelShuffle(4) and a 1×1 conv
/// give full-resolution logits.
/// </summary>
public sealed class Decoder
{
    private sealed class Stage
    {
        public Parameter? TokenMixW, TokenMixB, ProjW, ProjB;
        public Parameter SaInW = null!, SaInB = null!, SaOutW = null!, SaOutB = null!;
        public AttentionParams SelfAttn = null!;
        public Parameter? CaInW, CaInB, CaOutW, CaOutB, CrossScale;
        public AttentionParams? CrossAttn;
        public Parameter UpW = null!, UpB = null!, Conv1 = null!, Conv2 = null!;
        public Parameter Bn1W = null!, Bn1B = null!, Bn1Mean = null!, Bn1Var = null!, Bn1Count = null!;
        public Parameter Bn2W = null!, Bn2B = null!, Bn2Mean = null!, Bn2Var = null!, Bn2Count = null!;
    }

    private readonly Stage[] _stages = new Stage[3];
    private readonly Parameter _headW, _headB, _outW, _outB;
    private readonly TmcaConfig _cfg;
    private readonly bool _text;
    private readonly double _bnMomentum;
    private const double LnEps = 1e-5, BnEps = 1e-5, Slope = 0.01;

    public Decoder(ParameterSet ps, TmcaConfig cfg, TmcaFlags flags)
    {
        _cfg = cfg;
        _text = flags.Text;
        _bnMomentum = flags.BnMomentum;
        for (int k = 0; k < 3; k++)
        {
            int C = cfg.Dims[3 - k], Cs = cfg.Dims[2 - k], M = cfg.TokenOuts[k];
            string p = $"decoder.stages.{k}.";
            var s = new Stage();
            if (_text)
            {
                s.TokenMixW = ps.Add($"{p}text_proj.token_mix.weight", [M, cfg.TextLen], Init.Normal());
                s.TokenMixB = ps.Add($"{p}text_proj.token_mix.bias", [M], Init.Zeros);
                s.ProjW = ps.Add($"{p}text_proj.linear.weight", [C, cfg.TextHidden], Init.Normal());
                s.ProjB = ps.Add($"{p}text_proj.linear.bias", [C], Init.Zeros);
            }
            s.SaInW = ps.Add($"{p}self_attn_norm_in.weight", [C], Init.Ones); s.SaInB = ps.Add($"{p}self_attn_norm_in.bias", [C], Init.Zeros);
            s.SelfAttn = AttentionParams.Create(ps, $"{p}self_attn.", "q", "k", "v", "o", C);
            s.SaOutW = ps.Add($"{p}self_attn_norm_out.weight", [C], Init.Ones); s.SaOutB = ps.Add($"{p}self_attn_norm_out.bias", [C], Init.Zeros);
            if (_text)
            {
                s.CaInW = ps.Add($"{p}cross_attn_norm_in.weight", [C], Init.Ones); s.CaInB = ps.Add($"{p}cross_attn_norm_in.bias", [C], Init.Zeros);
                s.CrossAttn = AttentionParams.Create(ps, $"{p}cross_attn.", "q", "k", "v", "o", C);
                s.CaOutW = ps.Add($"{p}cross_attn_norm_out.weight", [C], Init.Ones); s.CaOutB = ps.Add($"{p}cross_attn_norm_out.bias", [C], Init.Zeros);
                s.CrossScale = ps.Add($"{p}cross_attn_scale", [1], Init.Constant(1.421), scalar: true);
            }
            s.UpW = ps.Add($"{p}up.weight", [C, Cs, 2, 2], Init.Normal()); s.UpB = ps.Add($"{p}up.bias", [Cs], Init.Zeros);
            s.Conv1 = ps.Add($"{p}conv1.weight", [Cs, 2 * Cs, 3, 3], Init.Normal());
            (s.Bn1W, s.Bn1B, s.Bn1Mean, s.Bn1Var, s.Bn1Count) = BatchNormParams(ps, $"{p}bn1.", Cs);
            s.Conv2 = ps.Add($"{p}conv2.weight", [Cs, Cs, 3, 3], Init.Normal());
            (s.Bn2W, s.Bn2B, s.Bn2Mean, s.Bn2Var, s.Bn2Count) = BatchNormParams(ps, $"{p}bn2.", Cs);
            _stages[k] = s;
        }
        _headW = ps.Add("decoder.head.conv.weight", [cfg.HeadChannels * 16, cfg.Dims[0], 3, 3], Init.Normal());
        _headB = ps.Add("decoder.head.conv.bias", [cfg.HeadChannels * 16], Init.Zeros);
        _outW = ps.Add("decoder.head.out.weight", [1, cfg.HeadChannels, 1, 1], Init.Normal());
        _outB = ps.Add("decoder.head.out.bias", [1], Init.Zeros);
    }

    private static (Parameter, Parameter, Parameter, Parameter, Parameter) BatchNormParams(ParameterSet ps, string p, int c) => (
        ps.Add($"{p}weight", [c], Init.Ones), ps.Add($"{p}bias", [c], Init.Zeros),
        ps.AddBuffer($"{p}running_mean", [c], Init.Zeros), ps.AddBuffer($"{p}running_var", [c], Init.Ones),
        ps.AddBuffer($"{p}num_batches_tracked", [1], Init.Zeros, DType.I64));

    /// <summary>enhanced: F̃0..F̃3; text: B×L×D (null without text) → logits B×1×S×S. <paramref name="ownsInputs"/>: the
    /// F̃ are the decoder's alone (the LGTE's outputs, which the model does not hand out), so each is freed once read;
    /// otherwise they are the encoder's features, which the model's output carries.</summary>
    public Tensor Forward(Tensor[] enhanced, Tensor? text, bool training, bool ownsInputs = false)
    {
        var x = enhanced[3];
        for (int k = 0; k < 3; k++) x = StageForward(_stages[k], k, x, enhanced[2 - k], text, training, ownsX: k > 0 || ownsInputs, ownsSkip: ownsInputs);
        var c = Ops.Conv2d(x, _headW.Value, _headB.Value, stride: 1, padding: 1);
        var h = Ops.PixelShuffle(c, 4);
        Ops.Discard(c);   // 16·HeadChannels wide at a quarter of the resolution: the largest tensor the head makes
        return Ops.Conv2d(h, _outW.Value, _outB.Value);
    }

    // Intermediates that no backward reads are discarded as soon as they are consumed (see Ops.Discard): on tiny at
    // batch 32 they would otherwise hold hundreds of MiB until the backward starts, at the step's memory peak.
    private Tensor StageForward(Stage s, int k, Tensor x, Tensor skip, Tensor? text, bool training, bool ownsX, bool ownsSkip)
    {
        int B = x.Shape[0], C = x.Shape[1], h = x.Shape[2], w = x.Shape[3], N = h * w;
        var v = Ops.Reshape(Ops.Permute(x, 0, 2, 3, 1), B, N, C);           // pixels as tokens: B×N×C
        var peN = PositionalTable(N, C, x);
        if (ownsX) Ops.Discard(x);   // x's shape, type and backend stay readable

        // self-attention: v ← v + LN_out(MHA(q = k = LN_in(v) + PE, v = LN_in(v)))
        var u = Ops.LayerNorm(v, s.SaInW.Value, s.SaInB.Value, LnEps);
        var qk = Ops.Add(u, peN);
        var sa = Ops.LayerNorm(Ops.MultiHeadAttention(qk, qk, u, s.SelfAttn.Weights(), _cfg.SelfHeads), s.SaOutW.Value, s.SaOutB.Value, LnEps);
        v = Ops.Add(v, sa);
        Ops.Discard(sa);

        if (_text && text is not null)
        {
            // T = LeakyReLU(linear(GELU(token_mix over the token axis)))  : B×M×C
            int M = _cfg.TokenOuts[k];
            var t = Ops.MatMul(s.TokenMixW!.Value, text);                      // (M×L)·(B×L×D) → B×M×D
            t = Ops.Add(t, Ops.Reshape(s.TokenMixB!.Value, M, 1));
            t = Ops.LeakyRelu(Ops.GeluLinear(t, s.ProjW!.Value, s.ProjB!.Value), Slope);
            // cross-attention: v ← v + scale · LN_out(MHA(q = LN_in(v) + PE_N, k = T + PE_M, v = T))
            u = Ops.LayerNorm(v, s.CaInW!.Value, s.CaInB!.Value, LnEps);
            var peM = PositionalTable(M, C, x);
            var q = Ops.Add(u, peN);
            Ops.Discard(u);
            var ca = Ops.MultiHeadAttention(q, Ops.Add(t, peM), t, s.CrossAttn!.Weights(), _cfg.CrossHeads);
            var scaled = Ops.Mul(Ops.LayerNorm(ca, s.CaOutW!.Value, s.CaOutB!.Value, LnEps), s.CrossScale!.Value);
            v = Ops.Add(v, scaled);
            Ops.Discard(scaled);
        }

        var tokens = v;
        x = Ops.Reshape(Ops.Permute(tokens, 0, 2, 1), B, C, h, w);
        Ops.Discard(tokens);
        var up = Ops.ConvTranspose2d(x, s.UpW.Value, s.UpB.Value, 2);
        var y = Ops.Concat([up, skip], 1);
        Ops.Discard(up);
        if (ownsSkip) Ops.Discard(skip);
        y = ConvBnAct(y, s.Conv1, s.Bn1W, s.Bn1B, s.Bn1Mean, s.Bn1Var, s.Bn1Count, training);
        return ConvBnAct(y, s.Conv2, s.Bn2W, s.Bn2B, s.Bn2Mean, s.Bn2Var, s.Bn2Count, training);
    }

    private Tensor ConvBnAct(Tensor x, Parameter conv, Parameter w, Parameter b, Parameter mean, Parameter var, Parameter count, bool training)
    {
        var y = Ops.Conv2d(x, conv.Value, null, stride: 1, padding: 1);
        y = Ops.BatchNorm2d(y, w.Value, b.Value, mean.Value, var.Value, training, BnEps, _bnMomentum);
        if (training) Increment(count.Value);
        return Ops.LeakyRelu(y, Slope);
    }

    private static void Increment(Tensor counter) => counter.Backend.AddI64(counter, 1);

    /// <summary>
    /// The sinusoidal table PE[n, 2i] = sin(n·10000^(−2i/C)), PE[n, 2i+1] = cos(…), N×C. Evaluated the way the
    /// float32 reference does it (frequency and argument rounded to float) so that the tables agree to the last bit
    /// of the argument; cached per (N, C, type, backend).
    /// </summary>
    private readonly Dictionary<(int, int, DType, IBackend), Tensor> _pe = new();
    private Tensor PositionalTable(int n, int c, Tensor like)
    {
        var key = (n, c, like.DType, like.Backend);
        if (_pe.TryGetValue(key, out var t)) return t;
        var v = new double[n * c];
        float scale = (float)(-Math.Log(10000.0) / c);
        for (int i = 0; i < c; i += 2)
        {
            float div = MathF.Exp(i * scale);
            for (int p = 0; p < n; p++)
            {
                float arg = p * div;
                v[p * c + i] = Math.Sin(arg);
                if (i + 1 < c) v[p * c + i + 1] = Math.Cos(arg);
            }
        }
        return _pe[key] = HostTensor.From(v, [n, c], like, persistent: true);
    }
}
