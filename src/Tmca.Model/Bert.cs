using Tmca.Engine;

namespace Tmca.Model;

/// <summary>
/// The text encoder: Hugging Face's BertModel without pooler (keys under <c>text_encoder.</c>, spec §4).
/// Word + position + token-type-0 embeddings → LayerNorm(1e-12), then post-LN layers of self-attention
/// (padded keys get the float minimum added to their scores, as HF does) and a GELU MLP.
/// </summary>
public sealed class BertEncoder
{
    private sealed record Layer(AttentionParams Attn, Parameter OutW, Parameter OutB, Parameter AttnLnW, Parameter AttnLnB,
                                Parameter InterW, Parameter InterB, Parameter FfnW, Parameter FfnB, Parameter OutLnW, Parameter OutLnB);

    private readonly Parameter _word, _pos, _type, _lnW, _lnB;
    private readonly Layer[] _layers;
    private readonly int _heads;
    private const double Eps = 1e-12;

    public BertEncoder(ParameterSet ps, string prefix, int vocab, int maxPositions, int hidden, int layers, int heads, int intermediate)
    {
        _heads = heads;
        _word = ps.Add($"{prefix}embeddings.word_embeddings.weight", [vocab, hidden], Init.Normal());
        _pos = ps.Add($"{prefix}embeddings.position_embeddings.weight", [maxPositions, hidden], Init.Normal());
        _type = ps.Add($"{prefix}embeddings.token_type_embeddings.weight", [2, hidden], Init.Normal());
        _lnW = ps.Add($"{prefix}embeddings.LayerNorm.weight", [hidden], Init.Ones);
        _lnB = ps.Add($"{prefix}embeddings.LayerNorm.bias", [hidden], Init.Zeros);
        // HF zeroes the padding row (id 0) of the word embeddings at initialisation.
        if (_word.Value.DType == DType.F32) _word.Value.Span<float>()[..hidden].Clear();
        else _word.Value.Span<double>()[..hidden].Clear();
        _layers = new Layer[layers];
        for (int i = 0; i < layers; i++)
        {
            string p = $"{prefix}encoder.layer.{i}.";
            _layers[i] = new Layer(
                AttentionParams.Create(ps, $"{p}attention.self.", "query", "key", "value", null, hidden),
                ps.Add($"{p}attention.output.dense.weight", [hidden, hidden], Init.Normal()), ps.Add($"{p}attention.output.dense.bias", [hidden], Init.Zeros),
                ps.Add($"{p}attention.output.LayerNorm.weight", [hidden], Init.Ones), ps.Add($"{p}attention.output.LayerNorm.bias", [hidden], Init.Zeros),
                ps.Add($"{p}intermediate.dense.weight", [intermediate, hidden], Init.Normal()), ps.Add($"{p}intermediate.dense.bias", [intermediate], Init.Zeros),
                ps.Add($"{p}output.dense.weight", [hidden, intermediate], Init.Normal()), ps.Add($"{p}output.dense.bias", [hidden], Init.Zeros),
                ps.Add($"{p}output.LayerNorm.weight", [hidden], Init.Ones), ps.Add($"{p}output.LayerNorm.bias", [hidden], Init.Zeros));
        }
    }

    /// <summary>ids, mask: B×L (I64) → hidden states [embeddings, layer 1, …, layer n], each B×L×hidden.</summary>
    /// <summary>Recompute each layer in the backward (issue 19; Stages and Blocks both mean per layer here).</summary>
    public RecomputeMode Recompute { get; set; } = RecomputeMode.None;

    public Tensor[] Forward(Tensor ids, Tensor mask, long[]? hostMask = null)
    {
        int B = ids.Shape[0], L = ids.Shape[1];
        if (L > _pos.Value.Shape[0]) throw new ArgumentException($"text of {L} tokens exceeds max_positions {_pos.Value.Shape[0]}");
        var x = Ops.Embedding(ids, _word.Value);                                   // B×L×D
        x = Ops.Add(x, Ops.Narrow(_pos.Value, 0, 0, L));                          // + positions 0..L−1
        x = Ops.Add(x, Ops.Narrow(_type.Value, 0, 0, 1));                         // + token type 0
        x = Ops.LayerNorm(x, _lnW.Value, _lnB.Value, Eps);
        var keyBias = KeyBias(mask, x, hostMask);
        var states = new Tensor[_layers.Length + 1];
        states[0] = x;
        for (int i = 0; i < _layers.Length; i++)
        {
            var l = _layers[i];
            // Every layer's output is returned (an escape), so a checkpointed segment is one layer in both modes.
            x = Recompute == RecomputeMode.None ? LayerForward(l, x, keyBias)
                : Engine.Recompute.Run($"bert.layer{i}", [x, keyBias], xs => [LayerForward(l, xs[0], xs[1])])[0];
            states[i + 1] = x;
        }
        return states;
    }

    // x: B×L×D → post-LN self-attention, then post-LN GELU MLP.
    private Tensor LayerForward(Layer l, Tensor x, Tensor keyBias)
    {
        var a = Ops.MultiHeadAttention(x, x, x, l.Attn.Weights(), _heads, keyBias, project: false);
        x = Ops.LayerNorm(Ops.Add(Ops.Linear(a, l.OutW.Value, l.OutB.Value), x), l.AttnLnW.Value, l.AttnLnB.Value, Eps);
        var h = Ops.Linear(x, l.InterW.Value, l.InterB.Value);
        return Ops.LayerNorm(Ops.Add(Ops.GeluLinear(h, l.FfnW.Value, l.FfnB.Value), x), l.OutLnW.Value, l.OutLnB.Value, Eps);   // GELU → dense, no GELU output kept
    }

    /// <summary>(1 − mask)·float.MinValue, B×L: added to the attention scores of padded keys (from the host copy of the
    /// mask when there is one).</summary>
    internal static Tensor KeyBias(Tensor mask, Tensor like, long[]? hostMask = null)
    {
        var m = hostMask ?? mask.ToArray<long>();
        var bias = new double[m.Length];
        for (int i = 0; i < m.Length; i++) bias[i] = m[i] == 0 ? float.MinValue : 0.0;
        return HostTensor.From(bias, mask.Shape, like);
    }
}

/// <summary>The four projections of one attention block, by their checkpoint names.</summary>
public sealed record AttentionParams(Parameter Wq, Parameter Bq, Parameter Wk, Parameter Bk, Parameter Wv, Parameter Bv, Parameter? Wo, Parameter? Bo)
{
    public static AttentionParams Create(ParameterSet ps, string prefix, string q, string k, string v, string? o, int dim) => new(
        ps.Add($"{prefix}{q}.weight", [dim, dim], Init.Normal()), ps.Add($"{prefix}{q}.bias", [dim], Init.Zeros),
        ps.Add($"{prefix}{k}.weight", [dim, dim], Init.Normal()), ps.Add($"{prefix}{k}.bias", [dim], Init.Zeros),
        ps.Add($"{prefix}{v}.weight", [dim, dim], Init.Normal()), ps.Add($"{prefix}{v}.bias", [dim], Init.Zeros),
        o is null ? null : ps.Add($"{prefix}{o}.weight", [dim, dim], Init.Normal()), o is null ? null : ps.Add($"{prefix}{o}.bias", [dim], Init.Zeros));

    public AttentionWeights Weights() => new(Wq.Value, Bq.Value, Wk.Value, Bk.Value, Wv.Value, Bv.Value, Wo?.Value ?? Wq.Value, Bo?.Value);
}

/// <summary>Small host-computed constants (masks, positional tables) uploaded to the model's backend and float type.</summary>
internal static class HostTensor
{
    public static Tensor From(double[] values, int[] shape, Tensor like, bool persistent = false)
    {
        Tensor t;
        using (persistent ? TensorScope.Suspend() : default)
            t = Tensor.Zeros(shape, like.DType, like.Backend, persistent);
        Upload(values, t);
        return t;
    }

    /// <summary>Writes float64 values into a float tensor of either precision.</summary>
    public static void Upload(double[] values, Tensor t)
    {
        if (t.DType == DType.F32) t.Backend.Upload(Array.ConvertAll(values, v => (float)v), t);
        else t.Backend.Upload(values, t);
    }
}
