using Tmca.Engine;

namespace Tmca.Model;

/// <summary>One batch of model inputs (spec §2): image B×3×S×S, token ids and attention mask B×L (I64), gt B×1×S×S.
/// <see cref="HostIds"/> and <see cref="HostMask"/>, when the batch was built on the host, are the same ids and mask
/// as host arrays: what depends only on them (the attention key bias, the text mean weights, the same-report mask)
/// is built from them instead of being read back from a device in the middle of a step.</summary>
public sealed record TmcaBatch(Tensor Image, Tensor Ids, Tensor Mask, Tensor? Gt)
{
    public long[]? HostIds { get; init; }
    public long[]? HostMask { get; init; }
}

/// <summary>What a forward pass produces: logits and the intermediate maps the oracles and the losses need.</summary>
public sealed class TmcaOutput
{
    public Tensor Logits { get; internal set; } = null!;
    /// <summary>Encoder stage outputs F0..F3.</summary>
    public required Tensor[] Features { get; init; }
    /// <summary>S_l (B×h×w) per level, when the alignment heads exist.</summary>
    public Tensor?[] Similarity { get; } = new Tensor?[4];
    /// <summary>A_l (B×1×h×w) per level, when LGTE parameters exist.</summary>
    public Tensor?[] Attention { get; } = new Tensor?[4];
    /// <summary>a_l·S_l + b_l, the logits of A_l (pixel alignment loss).</summary>
    internal Tensor?[] AttentionLogits { get; } = new Tensor?[4];
    /// <summary>Per level, the pixel-alignment loss mean BCE(a·S + b, W) when the batch had ground truth (computed by
    /// the fused similarity/LGTE op, which needs the target at forward time).</summary>
    internal Tensor?[] PixelLoss { get; } = new Tensor?[4];
    internal Tensor?[] PixelEmbeddings { get; } = new Tensor?[4];
    internal Tensor?[] TextEmbeddings { get; } = new Tensor?[4];
}

/// <summary>The loss terms of spec §8 (only those the flags turn on are set).</summary>
public sealed class TmcaLosses
{
    public required Tensor Total { get; init; }
    public required Tensor Bce { get; init; }
    public required Tensor Dice { get; init; }
    public Tensor? Nce { get; init; }
    public Tensor?[] NcePerLevel { get; } = new Tensor?[4];
    public Tensor? Pix { get; init; }
    public Tensor?[] PixPerLevel { get; } = new Tensor?[4];

    /// <summary>Every term by its oracle name: bce, dice, nce, nce{l}, pix, pix{l}, total.</summary>
    public IEnumerable<(string Name, Tensor Value)> Named()
    {
        yield return ("bce", Bce);
        yield return ("dice", Dice);
        if (Nce is not null) yield return ("nce", Nce);
        for (int l = 0; l < 4; l++) if (NcePerLevel[l] is { } n) yield return ($"nce{l}", n);
        if (Pix is not null) yield return ("pix", Pix);
        for (int l = 0; l < 4; l++) if (PixPerLevel[l] is { } p) yield return ($"pix{l}", p);
        yield return ("total", Total);
    }
}

/// <summary>
/// TMCA (spec §1–§8): a ConvNeXt image encoder and a BERT text encoder; per-level alignment heads whose
/// target-weighted similarity feeds a symmetric InfoNCE; LGTE maps that amplify the features the report points
/// at; and a text-guided decoder. Parameters exist only for the parts the flags turn on.
/// </summary>
public sealed class TmcaModel
{
    public TmcaConfig Config { get; }
    public TmcaFlags Flags { get; }
    public ParameterSet Params { get; }
    private readonly ConvNeXtEncoder _image;

    /// <summary>Which encoder activations the forward drops and the backward recomputes (issue 19); results are
    /// bit-identical for every mode.</summary>
    public RecomputeMode Recompute
    {
        get => _image.Recompute;
        set { _image.Recompute = value; if (_text is not null) _text.Recompute = value; if (_align is not null) _align.Recompute = value; }
    }
    private readonly BertEncoder? _text;
    private readonly AlignmentHeads? _align;
    private readonly Lgte? _lgte;
    private readonly Decoder _decoder;

    public TmcaModel(TmcaConfig config, TmcaFlags flags, int seed = 0, DType dtype = DType.F32, bool initialize = true)
    {
        Config = config.Validated();
        Flags = flags.Effective();
        Params = new ParameterSet(seed, dtype, initialize);
        _image = new ConvNeXtEncoder(Params, "image_encoder.", Config.InChannels, Config.Dims, Config.Depths);
        if (Flags.Text)
            _text = new BertEncoder(Params, "text_encoder.", Config.VocabSize, Config.MaxPositions, Config.TextHidden,
                                    Config.TextLayers, Config.TextHeads, Config.TextIntermediate);
        if (Flags.HasAlignHeads) _align = new AlignmentHeads(Params, Config.Dims, Config.TextHidden, Config.AlignDim, Flags.TauInit);
        if (Flags.HasLgteParams) _lgte = new Lgte(Params, Flags.AInit, Flags.BInit, Flags.GammaInit);
        _decoder = new Decoder(Params, Config, Flags);
    }

    public IBackend Backend => Params.Backend;
    public void To(IBackend backend) => Params.To(backend);

    public TmcaOutput Forward(TmcaBatch batch, bool training)
    {
        CheckInputs(batch);
        // The text encoder runs first. The two encoders are independent, so the order changes no number, but the tape
        // runs backward in reverse: the image encoder's backward (its activations are the step's largest) then runs
        // before any text gradient exists, and BERT's 110 M parameter gradients are allocated only after the image
        // activations are gone (issue 19: the peak falls by the text gradients).
        Tensor? hidden = _text?.Forward(batch.Ids, batch.Mask, batch.HostMask)[^1];  // B×L×D
        var (_, feats) = _image.Forward(batch.Image);
        var output = new TmcaOutput { Features = feats };
        var enhanced = (Tensor[])feats.Clone();
        bool enhancedAreLgte = false;   // true when every F̃ is an LGTE output (then the decoder frees each once read)
        if (hidden is not null)
        {
            if (_align is not null)
            {
                var g = MaskedMean(hidden, batch.Mask, batch.HostMask);          // B×D
                for (int l = 0; l < 4; l++)
                {
                    var f = feats[l];
                    var v = _align.PixelEmbeddings(l, f);
                    var u = _align.TextEmbedding(l, g);
                    output.PixelEmbeddings[l] = v;
                    output.TextEmbeddings[l] = u;
                    if (_lgte is not null)
                    {
                        // the fused op: S, the gate A, F̃ and (with ground truth) the pixel-alignment loss, one kernel each way
                        Tensor? target = null;
                        if (Flags.PixelLoss && batch.Gt is { } gt)
                            using (Tape.NoGrad()) target = Ops.AvgPool2d(gt, gt.Shape[2] / f.Shape[2]);   // W_l: B×1×h×w
                        var r = _lgte.Apply(l, v, u, f, target);
                        output.Similarity[l] = Ops.Reshape(r.Similarity, f.Shape[0], f.Shape[2], f.Shape[3]);
                        output.AttentionLogits[l] = r.Logits;
                        output.Attention[l] = r.Attention;
                        output.PixelLoss[l] = r.Pix;
                        if (Flags.Lgte) { enhanced[l] = r.FOut; enhancedAreLgte = true; }   // all four levels take this path, or none
                    }
                    else output.Similarity[l] = AlignmentHeads.Similarity(v, u, f.Shape[2], f.Shape[3]);
                }
            }
        }
        // F̃ from the LGTE are the decoder's alone (the output carries the encoder's features, not F̃)
        output.Logits = _decoder.Forward(enhanced, hidden, training, ownsInputs: enhancedAreLgte);
        return output;
    }

    /// <summary>The spec §8 losses for a forward output; needs the batch's ground truth.</summary>
    public TmcaLosses Losses(TmcaOutput o, TmcaBatch batch)
    {
        var gt = batch.Gt ?? throw new ArgumentException("losses need the ground-truth mask");
        var bce = Ops.BceWithLogits(o.Logits, gt);
        var dice = Ops.SoftDiceLoss(o.Logits, gt, 1.0);
        var total = Ops.Add(bce, dice);
        Tensor? nce = null, pix = null;
        var nceLevels = new Tensor?[4];
        var pixLevels = new Tensor?[4];
        if (_align is not null && (Flags.ContrastiveOn || Flags.PixelLoss))
        {
            if (Flags.ContrastiveOn)
            {
                var same = SameReport(batch.Ids, batch.HostIds);
                var tau = _align.Temperature(Flags.TauMin);
                var levels = Flags.Levels;
                // the fused kernels: every level's target-weighted logits in one launch, every level's InfoNCE in another
                var all = ContrastiveLoss.Fused(gt, levels.Select(l => o.PixelEmbeddings[l]!).ToList(), levels.Select(l => o.TextEmbeddings[l]!).ToList(),
                                                levels.Select(l => (o.Features[l].Shape[2], o.Features[l].Shape[3])).ToList(), tau, Flags.Alignment == "global", same);
                nce = Ops.Narrow(all, 0, 0, 1);
                for (int i = 0; i < levels.Length; i++) nceLevels[levels[i]] = Ops.Narrow(all, 0, 1 + i, 1);
                total = Ops.Add(total, Ops.Scale(nce, Flags.LambdaNce));
            }
            if (Flags.PixelLoss)
            {
                for (int l = 0; l < 4; l++)
                {
                    pixLevels[l] = o.PixelLoss[l] ?? throw new InvalidOperationException("the pixel-alignment loss needs the ground truth in the forward pass's batch");
                    pix = pix is null ? pixLevels[l] : Ops.Add(pix, pixLevels[l]!);
                }
                pix = Ops.Scale(pix!, 0.25);
                total = Ops.Add(total, Ops.Scale(pix, Flags.LambdaPix));
            }
        }
        var losses = new TmcaLosses { Total = total, Bce = bce, Dice = dice, Nce = nce, Pix = pix };
        for (int l = 0; l < 4; l++) { losses.NcePerLevel[l] = nceLevels[l]; losses.PixPerLevel[l] = pixLevels[l]; }
        return losses;
    }

    /// <summary>g = mean of H over the tokens with mask 1: B×L×D → B×D (the weights from the host copy of the mask when there is one).</summary>
    private static Tensor MaskedMean(Tensor h, Tensor mask, long[]? hostMask)
    {
        int B = h.Shape[0], L = h.Shape[1];
        var m = hostMask ?? mask.ToArray<long>();
        var w = new double[B * L];
        for (int b = 0; b < B; b++)
        {
            long count = 0;
            for (int l = 0; l < L; l++) count += m[b * L + l] != 0 ? 1 : 0;
            if (count == 0) throw new ArgumentException($"sample {b} has an empty attention mask (no [CLS] token)");
            for (int l = 0; l < L; l++) w[b * L + l] = m[b * L + l] != 0 ? 1.0 / count : 0.0;
        }
        // Σ_l w[b, l]·H[b, l, :] as a batched product (B×1×L)·(B×L×D)
        var weights = HostTensor.From(w, [B, 1, L], h);
        return Ops.Reshape(Ops.MatMul(weights, h), B, -1);
    }

    /// <summary>same[i, j] = 1 when i ≠ j and the two samples' token ids are identical (the same report); from the host
    /// copy of the ids when there is one.</summary>
    internal static Tensor SameReport(Tensor ids, long[]? hostIds)
    {
        int B = ids.Shape[0], L = ids.Shape[1];
        var v = hostIds ?? ids.ToArray<long>();
        var same = new byte[B * B];
        for (int i = 0; i < B; i++)
            for (int j = 0; j < B; j++)
                if (i != j && v.AsSpan(i * L, L).SequenceEqual(v.AsSpan(j * L, L))) same[i * B + j] = 1;
        var t = Tensor.FromArray(same, B, B);
        return t.Backend == ids.Backend ? t : t.To(ids.Backend);
    }

    private void CheckInputs(TmcaBatch b)
    {
        int S = Config.ImageSize;
        if (b.Image.Rank != 4 || b.Image.Shape[1] != Config.InChannels || b.Image.Shape[2] != S || b.Image.Shape[3] != S)
            throw new ArgumentException($"image batch {Shape.Format(b.Image.Shape)} does not match the model's [B, {Config.InChannels}, {S}, {S}]");
        if (Flags.Text && (b.Ids.Rank != 2 || b.Ids.Shape[0] != b.Image.Shape[0] || b.Ids.Shape[1] != Config.TextLen))
            throw new ArgumentException($"token ids {Shape.Format(b.Ids.Shape)} do not match [B, {Config.TextLen}]");
        if (b.Gt is { } gt && (gt.Rank != 4 || gt.Shape[0] != b.Image.Shape[0] || gt.Shape[2] != S || gt.Shape[3] != S))
            throw new ArgumentException($"mask batch {Shape.Format(gt.Shape)} does not match [B, 1, {S}, {S}]");
    }
}
