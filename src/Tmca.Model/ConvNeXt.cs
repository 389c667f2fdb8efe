using Tmca.Engine;

namespace Tmca.Model;

/// <summary>
/// The image encoder: Hugging Face's ConvNextModel (keys under <c>image_encoder.</c>, spec §3).
/// Stem conv 4×4/4 + channels-first LayerNorm; four stages, each (after the first) opening with a
/// LayerNorm + 2×2/2 conv downsampling, then blocks of depthwise 7×7 → LayerNorm → Linear 4× → GELU → Linear
/// → layer scale → residual. Returns the four stage outputs F0..F3 (strides 4, 8, 16, 32).
/// </summary>
public sealed class ConvNeXtEncoder
{
    private sealed record Block(Parameter DwW, Parameter DwB, Parameter LnW, Parameter LnB, Parameter Pw1W, Parameter Pw1B, Parameter Pw2W, Parameter Pw2B, Parameter Gamma);
    private sealed record Stage(Parameter? DsLnW, Parameter? DsLnB, Parameter? DsW, Parameter? DsB, Block[] Blocks);

    private readonly Parameter _stemW, _stemB, _stemLnW, _stemLnB;
    private readonly Stage[] _stages;
    private const double Eps = 1e-6;

    /// <summary>Stages: each stage's block loop is one checkpointed segment; Blocks: each block is (issue 19). Results
    /// are bit-identical to None; only memory and time change.</summary>
    public RecomputeMode Recompute { get; set; } = RecomputeMode.None;

    public ConvNeXtEncoder(ParameterSet ps, string prefix, int inChannels, int[] dims, int[] depths)
    {
        _stemW = ps.Add($"{prefix}embeddings.patch_embeddings.weight", [dims[0], inChannels, 4, 4], Init.Normal());
        _stemB = ps.Add($"{prefix}embeddings.patch_embeddings.bias", [dims[0]], Init.Zeros);
        _stemLnW = ps.Add($"{prefix}embeddings.layernorm.weight", [dims[0]], Init.Ones);
        _stemLnB = ps.Add($"{prefix}embeddings.layernorm.bias", [dims[0]], Init.Zeros);
        _stages = new Stage[dims.Length];
        for (int i = 0; i < dims.Length; i++)
        {
            string sp = $"{prefix}encoder.stages.{i}.";
            Parameter? lnW = null, lnB = null, dW = null, dB = null;
            if (i > 0)
            {
                lnW = ps.Add($"{sp}downsampling_layer.0.weight", [dims[i - 1]], Init.Ones);
                lnB = ps.Add($"{sp}downsampling_layer.0.bias", [dims[i - 1]], Init.Zeros);
                dW = ps.Add($"{sp}downsampling_layer.1.weight", [dims[i], dims[i - 1], 2, 2], Init.Normal());
                dB = ps.Add($"{sp}downsampling_layer.1.bias", [dims[i]], Init.Zeros);
            }
            var blocks = new Block[depths[i]];
            int d = dims[i];
            for (int j = 0; j < depths[i]; j++)
            {
                string bp = $"{sp}layers.{j}.";
                blocks[j] = new Block(
                    ps.Add($"{bp}dwconv.weight", [d, 1, 7, 7], Init.Normal()), ps.Add($"{bp}dwconv.bias", [d], Init.Zeros),
                    ps.Add($"{bp}layernorm.weight", [d], Init.Ones), ps.Add($"{bp}layernorm.bias", [d], Init.Zeros),
                    ps.Add($"{bp}pwconv1.weight", [4 * d, d], Init.Normal()), ps.Add($"{bp}pwconv1.bias", [4 * d], Init.Zeros),
                    ps.Add($"{bp}pwconv2.weight", [d, 4 * d], Init.Normal()), ps.Add($"{bp}pwconv2.bias", [d], Init.Zeros),
                    ps.Add($"{bp}layer_scale_parameter", [d], Init.Constant(1e-6)));
            }
            _stages[i] = new Stage(lnW, lnB, dW, dB, blocks);
        }
    }

    /// <summary>image: B×C×S×S → (stem output, [F0, F1, F2, F3]).</summary>
    public (Tensor Stem, Tensor[] Stages) Forward(Tensor image)
    {
        var x = Ops.Conv2d(image, _stemW.Value, _stemB.Value, stride: 4);
        x = Ops.LayerNormChannelsFirst(x, _stemLnW.Value, _stemLnB.Value, Eps);
        var stem = x;
        var outs = new Tensor[_stages.Length];
        for (int i = 0; i < _stages.Length; i++)
        {
            var s = _stages[i];
            if (s.DsW is not null)
            {
                x = Ops.LayerNormChannelsFirst(x, s.DsLnW!.Value, s.DsLnB!.Value, Eps);
                x = Ops.Conv2d(x, s.DsW.Value, s.DsB!.Value, stride: 2);
            }
            x = Recompute switch
            {
                RecomputeMode.Stages when s.Blocks.Length > 0 => Engine.Recompute.Run($"convnext.stage{i}", x, y => { foreach (var b in s.Blocks) y = BlockForward(b, y); return y; }),
                RecomputeMode.Blocks => s.Blocks.Aggregate(x, (y, b) => Engine.Recompute.Run($"convnext.stage{i}.block", y, z => BlockForward(b, z))),
                _ => s.Blocks.Aggregate(x, (y, b) => BlockForward(b, y)),
            };
            outs[i] = x;
        }
        return (stem, outs);
    }

    // x: B×C×H×W → x + γ ⊙ pw2(GELU(pw1(LN(dw7×7(x))))).
    // HF runs the MLP channels-last (permute, LayerNorm, Linear, Linear, permute back). The same maths runs
    // here channels-first, with no permutes: LayerNorm over the channel axis, and each Linear over channels as
    // a 1×1 convolution whose weight is the Linear's weight viewed as O×I×1×1.
    private static Tensor BlockForward(Block b, Tensor x)
    {
        int C = x.Shape[1];
        var h = Ops.Conv2d(x, b.DwW.Value, b.DwB.Value, stride: 1, padding: 3, groups: C);
        h = Ops.LayerNormChannelsFirst(h, b.LnW.Value, b.LnB.Value, Eps);
        h = Ops.Conv2d(h, Ops.Reshape(b.Pw1W.Value, 4 * C, C, 1, 1), b.Pw1B.Value);
        h = Ops.GeluConv1x1(h, Ops.Reshape(b.Pw2W.Value, C, 4 * C, 1, 1), b.Pw2B.Value);   // saves the pre-activation only
        return Ops.AddScaled(x, h, Ops.Reshape(b.Gamma.Value, C, 1, 1));                // x + γ ⊙ h, no product kept
    }
}
