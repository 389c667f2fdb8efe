namespace Tmca.Cuda.Plan;

/// <summary>Which part of the model a parameter belongs to (the caller knows the model; the planner only needs this).</summary>
public enum ParameterOwner { ImageEncoder, TextEncoder, Attention, Other }

/// <summary>
/// The op families of a step's plan, and the rules that put each recorded event in one. An event is classified by the
/// op that asked for it (its label), the kernel, its geometry and — for GEMMs and convolutions — which model part owns
/// the weights it touches:
///  - GEMMs: a "matmul" op is attention (scores and context); a linear layer goes by its weight's owner (attention
///    projections, text encoder, otherwise "other GEMMs": decoder text projection, alignment MLP);
///  - convolutions: depthwise kernels; stride &gt; 1 (the 4×4/4 stem and the 2×2/2 downsamplers); the image encoder's
///    1×1 convolutions (ConvNeXt's pointwise MLP, run channels-first); everything else (3×3, heads, transposed) decoder;
///  - a launch inside a conv or linear op that is not its GEMM (split-K partial sums, bias adds and bias gradients)
///    belongs to the family of that op's GEMM;
///  - the rest by kernel file: norms, elementwise, layout (permutes, copies, reductions, embedding gathers), the fused
///    TMCA kernels, losses, AdamW; softmax is attention's. Memsets and copies are families of their own.
/// </summary>
public static class PlanFamilies
{
    public const string Pointwise = "ConvNeXt pointwise", StemDownsample = "stem/downsample", Depthwise = "depthwise", DecoderConvs = "decoder convs",
        TextGemms = "text GEMMs", Attention = "attention", OtherGemms = "other GEMMs", Norms = "norms", Elementwise = "elementwise", Layout = "layout",
        Tmca = "TMCA fused", Losses = "losses", AdamW = "AdamW", Memsets = "memsets", Copies = "copies";

    /// <summary>Every family in report order.</summary>
    public static readonly IReadOnlyList<string> All =
        [Pointwise, StemDownsample, Depthwise, DecoderConvs, TextGemms, Attention, OtherGemms, Norms, Elementwise, Layout, Tmca, Losses, AdamW, Memsets, Copies];

    /// <summary>The family of every event, in order. <paramref name="ownerAt"/>: who owns the parameter (value or
    /// gradient) at a device address, or null for an activation.</summary>
    public static string[] Classify(IReadOnlyList<PlanEvent> events, Func<ulong, ParameterOwner?> ownerAt)
    {
        var result = new string[events.Count];
        string? regionOp = null, regionFamily = null;   // the last GEMM or convolution's op and family
        for (int i = 0; i < events.Count; i++)
        {
            var e = events[i];
            string? family = Primary(e, ownerAt);
            bool inRegion = e.Op is { } op && op == regionOp && (op.StartsWith("conv", StringComparison.Ordinal) || op.StartsWith("linear", StringComparison.Ordinal));
            if (family is not null) { regionOp = e.Op; regionFamily = family; }
            else if (inRegion) family = regionFamily;
            result[i] = family ?? ByKernel(e);
        }
        return result;
    }

    /// <summary>A GEMM's or a convolution's family, or null for any other event.</summary>
    private static string? Primary(PlanEvent e, Func<ulong, ParameterOwner?> ownerAt)
    {
        if (e.Kind == PlanEventKind.Gemm)
        {
            if (e.Op is { } op && op.StartsWith("matmul", StringComparison.Ordinal)) return Attention;
            // the weight is B (y = x·wᵀ, gx = gy·w) or C (gw += gyᵀ·x)
            var owner = ownerAt(e.Gemm!.Value.B) ?? ownerAt(e.Gemm.Value.C) ?? ownerAt(e.Gemm.Value.A);
            return owner switch
            {
                ParameterOwner.Attention => Attention,
                ParameterOwner.TextEncoder => TextGemms,
                ParameterOwner.ImageEncoder => Pointwise,
                _ => OtherGemms,
            };
        }
        if (e.Kind != PlanEventKind.Launch) return null;
        if (e.Name.StartsWith("depthwise_", StringComparison.Ordinal)) return Depthwise;
        if (e.Name.StartsWith("conv_transpose2d_", StringComparison.Ordinal)) return DecoderConvs;
        if (!e.Name.StartsWith("conv2d_", StringComparison.Ordinal) || e.Conv is not { } g) return null;
        if (g.Stride > 1) return StemDownsample;
        // the weight is the first pointer of the forward (x, w, …) after x, and of the data gradient (w, gy, gx);
        // the weight gradient (x, gy, part) names no weight: it follows the op's data gradient (null here)
        ulong? w = e.Name switch { "conv2d_forward_f32" => e.Pointers[1], "conv2d_backward_data_f32" => e.Pointers[0], _ => null };
        if (w is null) return null;
        return ownerAt(w.Value) == ParameterOwner.ImageEncoder ? Pointwise : DecoderConvs;
    }

    private static string ByKernel(PlanEvent e)
    {
        switch (e.Kind)
        {
            case PlanEventKind.Memset: return Memsets;
            case PlanEventKind.CopyToDevice or PlanEventKind.CopyToHost or PlanEventKind.CopyOnDevice: return Copies;
            case PlanEventKind.Gemm: return OtherGemms;
        }
        var d = Kernels.KernelCosts.Descriptor(e.Name);
        return d?.File switch
        {
            "conv.cu" => e.Conv is { Stride: > 1 } ? StemDownsample : DecoderConvs,   // a weight gradient outside its op (not expected)
            "depthwise.cu" => Depthwise,
            "tmca.cu" => Tmca,
            "losses.cu" => Losses,
            "adamw.cu" => AdamW,
            "norm.cu" or "l2normalize.cu" => Norms,
            "softmax.cu" => Attention,
            "layout.cu" or "embedding.cu" => Layout,
            _ => Elementwise,
        };
    }
}
