namespace Tmca.Cuda.Kernels;

/// <summary>
/// Every kernel in kernels/*.cu, one descriptor each, grouped by file (= op family, mirroring
/// Tmca.Engine/Cpu/). The signature test (tests/…/KernelSignatureTests) parses every KERNEL in the sources and
/// fails on a kernel without a descriptor, a descriptor without a kernel, or any difference in name, parameter
/// count, order or type.
/// </summary>
public static class KernelTable
{
    private const string F = "float", CF = "const float*", PF = "float*", I = "int", L = "i64";

    // ---- elementwise.cu: activations, scalar maps, broadcasting binary ops, axpy, fill ----
    public static readonly KernelDescriptor Unary = new("elementwise.cu", "unary_f32", [I, F, CF, PF, L], LaunchRule.GridStride);
    public static readonly KernelDescriptor UnaryBackward = new("elementwise.cu", "unary_backward_f32", [I, F, CF, CF, CF, PF, L], LaunchRule.GridStride);
    public static readonly KernelDescriptor BinarySame = new("elementwise.cu", "binary_same_f32", [I, CF, CF, PF, L, I], LaunchRule.GridStride);
    public static readonly KernelDescriptor BinaryBroadcast = new("elementwise.cu", "binary_broadcast_f32", [I, CF, CF, PF, L, I, "Shape8"], LaunchRule.GridStride);
    public static readonly KernelDescriptor Axpy = new("elementwise.cu", "axpy_f32", [F, CF, PF, L], LaunchRule.GridStride);
    public static readonly KernelDescriptor Fill = new("elementwise.cu", "fill_f32", [F, PF, L], LaunchRule.GridStride);
    public static readonly KernelDescriptor AddI64 = new("elementwise.cu", "add_i64", ["i64*", L, L], LaunchRule.GridStride);

    // ---- layout.cu: permute, axis-range copy (concat), broadcast and sum-to ----
    public static readonly KernelDescriptor Permute = new("layout.cu", "permute_f32", [CF, PF, L, I, "Shape8"], LaunchRule.GridStride);
    public static readonly KernelDescriptor CopyAxisRange = new("layout.cu", "copy_axis_range_f32", [CF, L, L, PF, L, L, L, L, L, I], LaunchRule.GridStride);
    public static readonly KernelDescriptor BroadcastTo = new("layout.cu", "broadcast_to_f32", [CF, PF, L, I, "Shape8"], LaunchRule.GridStride);
    /// <summary>One block per output; the block is 32, 128 or 256 threads by the size of the reduction (the launcher picks).</summary>
    public static readonly KernelDescriptor SumTo = new("layout.cu", "sum_to_f32", [CF, PF, L, L, I, "Shape8", "Shape8"], LaunchRule.BlockPerItem);
    // column sums of a rows × cols matrix: grid ⌈cols/width⌉, 256 threads as width columns × 256/width row lanes
    public static readonly KernelDescriptor SumRows = new("layout.cu", "sum_rows_f32", [CF, PF, L, L, I, I], LaunchRule.Explicit, 256);

    // ---- softmax.cu: one warp per row ----
    public static readonly KernelDescriptor Softmax = new("softmax.cu", "softmax_f32", [CF, PF, L, I], LaunchRule.WarpPerRow);
    public static readonly KernelDescriptor SoftmaxBackward = new("softmax.cu", "softmax_backward_f32", [CF, CF, PF, L, I], LaunchRule.WarpPerRow);

    // ---- norm.cu: layer norm over the last axis ----
    public static readonly KernelDescriptor LayerNorm = new("norm.cu", "layernorm_f32", [CF, CF, CF, PF, PF, PF, L, I, F], LaunchRule.WarpPerRow);
    public static readonly KernelDescriptor LayerNormBackwardDx = new("norm.cu", "layernorm_backward_dx_f32", [CF, CF, CF, CF, CF, PF, L, I, I], LaunchRule.WarpPerRow);
    /// <summary>grid (ceil(C/32), chunks), block (32, 8).</summary>
    public static readonly KernelDescriptor LayerNormBackwardDwDbPartial = new("norm.cu", "layernorm_backward_dwdb_partial_f32", [CF, CF, CF, CF, PF, PF, L, I, L], LaunchRule.Explicit, 32, 8);
    public static readonly KernelDescriptor LayerNormBackwardDwDbFinal = new("norm.cu", "layernorm_backward_dwdb_final_f32", [CF, CF, PF, PF, I, I, I], LaunchRule.ThreadPerItem);

    // ---- norm.cu: layer norm over channels (x: outer × C × inner) and batch norm (x: B × C × HW) ----
    public static readonly KernelDescriptor LayerNormChannelsFirst = new("norm.cu", "layernorm_channels_first_f32", [CF, CF, CF, PF, PF, PF, L, I, L, F], LaunchRule.GridStride);
    public static readonly KernelDescriptor LayerNormChannelsFirstBackwardDx = new("norm.cu", "layernorm_channels_first_backward_dx_f32", [CF, CF, CF, CF, CF, PF, L, I, L, I], LaunchRule.GridStride);
    /// <summary>One block per channel.</summary>
    public static readonly KernelDescriptor LayerNormChannelsFirstBackwardDwDb = new("norm.cu", "layernorm_channels_first_backward_dwdb_f32", [CF, CF, CF, CF, PF, PF, L, I, L, I], LaunchRule.Explicit);
    /// <summary>One block per channel.</summary>
    public static readonly KernelDescriptor BatchNormTrain = new("norm.cu", "batchnorm_train_f32", [CF, CF, CF, PF, PF, PF, PF, PF, I, I, L, F, F], LaunchRule.Explicit);
    public static readonly KernelDescriptor BatchNormEval = new("norm.cu", "batchnorm_eval_f32", [CF, CF, CF, PF, CF, CF, I, L, L, F], LaunchRule.GridStride);
    /// <summary>One block per channel.</summary>
    public static readonly KernelDescriptor BatchNormBackward = new("norm.cu", "batchnorm_backward_f32", [CF, CF, CF, CF, CF, PF, PF, PF, I, I, L], LaunchRule.Explicit);

    // ---- conv.cu: dense and transposed convolutions as one implicit GEMM; grid (ceil(N/64), ceil(M/64), groups·splits) ----
    public static readonly KernelDescriptor Conv2dForward = new("conv.cu", "conv2d_forward_f32", ["ConvGeom", CF, CF, CF, PF], LaunchRule.Explicit);
    public static readonly KernelDescriptor Conv2dBackwardData = new("conv.cu", "conv2d_backward_data_f32", ["ConvGeom", CF, CF, PF], LaunchRule.Explicit);
    public static readonly KernelDescriptor Conv2dBackwardWeight = new("conv.cu", "conv2d_backward_weight_f32", ["ConvGeom", CF, CF, PF, I], LaunchRule.Explicit);
    public static readonly KernelDescriptor AddSplitPartials = new("conv.cu", "add_split_partials_f32", [CF, PF, I, L], LaunchRule.GridStride);
    public static readonly KernelDescriptor ConvTranspose2dForward = new("conv.cu", "conv_transpose2d_forward_f32", ["ConvGeom", CF, CF, CF, PF], LaunchRule.Explicit);
    public static readonly KernelDescriptor ConvTranspose2dBackwardData = new("conv.cu", "conv_transpose2d_backward_data_f32", ["ConvGeom", CF, CF, PF], LaunchRule.Explicit);
    public static readonly KernelDescriptor ConvTranspose2dBackwardWeight = new("conv.cu", "conv_transpose2d_backward_weight_f32", ["ConvGeom", CF, CF, PF, I], LaunchRule.Explicit);
    // the same on TF32 tensor cores (mma.sync m16n8k8, sm_80+), same grids, 128 threads (four warps of 32×32)
    public static readonly KernelDescriptor Conv2dForwardTf32 = new("conv.cu", "conv2d_forward_tf32", ["ConvGeom", CF, CF, CF, PF], LaunchRule.Explicit, 128);
    public static readonly KernelDescriptor Conv2dBackwardDataTf32 = new("conv.cu", "conv2d_backward_data_tf32", ["ConvGeom", CF, CF, PF], LaunchRule.Explicit, 128);
    public static readonly KernelDescriptor Conv2dBackwardWeightTf32 = new("conv.cu", "conv2d_backward_weight_tf32", ["ConvGeom", CF, CF, PF, I], LaunchRule.Explicit, 128);
    public static readonly KernelDescriptor ConvTranspose2dForwardTf32 = new("conv.cu", "conv_transpose2d_forward_tf32", ["ConvGeom", CF, CF, CF, PF], LaunchRule.Explicit, 128);
    public static readonly KernelDescriptor ConvTranspose2dBackwardDataTf32 = new("conv.cu", "conv_transpose2d_backward_data_tf32", ["ConvGeom", CF, CF, PF], LaunchRule.Explicit, 128);
    public static readonly KernelDescriptor ConvTranspose2dBackwardWeightTf32 = new("conv.cu", "conv_transpose2d_backward_weight_tf32", ["ConvGeom", CF, CF, PF, I], LaunchRule.Explicit, 128);

    // ---- depthwise.cu: stride 1, odd k ≤ 7, pad k/2; grid (tiles, B·C) with 16×16 threads / one 128-thread block per channel ----
    public static readonly KernelDescriptor DepthwiseConv = new("depthwise.cu", "depthwise_conv_f32", [CF, CF, CF, PF, I, I, I, I, I, I], LaunchRule.Explicit, 16, 16);
    public static readonly KernelDescriptor DepthwiseConvBackwardWeight = new("depthwise.cu", "depthwise_conv_backward_weight_f32", [CF, CF, PF, I, I, I, I, I, I], LaunchRule.Explicit, 128);

    // ---- l2normalize.cu: one warp per row ----
    public static readonly KernelDescriptor L2Normalize = new("l2normalize.cu", "l2normalize_f32", [CF, PF, PF, L, I, F], LaunchRule.WarpPerRow);
    public static readonly KernelDescriptor L2NormalizeBackward = new("l2normalize.cu", "l2normalize_backward_f32", [CF, CF, CF, PF, L, I, F], LaunchRule.WarpPerRow);

    // ---- losses.cu: single-block reductions (deterministic), gradients read the loss gradient on the device ----
    public static readonly KernelDescriptor BceWithLogits = new("losses.cu", "bce_with_logits_f32", [CF, CF, PF, L], LaunchRule.Explicit, 1024);
    public static readonly KernelDescriptor BceWithLogitsBackward = new("losses.cu", "bce_with_logits_backward_f32", [CF, CF, CF, PF, L], LaunchRule.GridStride);
    /// <summary>One block of ≥ B threads (a multiple of 32).</summary>
    public static readonly KernelDescriptor InfoNce = new("losses.cu", "infonce_f32", [CF, "const unsigned char*", PF, PF, PF, I], LaunchRule.Explicit);
    public static readonly KernelDescriptor InfoNceBackward = new("losses.cu", "infonce_backward_f32", [CF, CF, CF, PF, I], LaunchRule.GridStride);

    // ---- tmca.cu: the fused TMCA ops, every level in one launch ----
    /// <summary>grid (B, levels).</summary>
    public static readonly KernelDescriptor TargetLogits = new("tmca.cu", "tmca_target_logits_f32", ["TmcaLevels", CF, CF, PF], LaunchRule.Explicit);
    /// <summary>grid (B, levels); dynamic shared memory: the largest d floats.</summary>
    public static readonly KernelDescriptor TargetLogitsBackward = new("tmca.cu", "tmca_target_logits_backward_f32", ["TmcaLevels", CF, CF, CF, PF], LaunchRule.Explicit);
    /// <summary>One block of ≥ B threads.</summary>
    public static readonly KernelDescriptor MultiLevelInfoNce = new("tmca.cu", "tmca_infonce_multilevel_f32", [CF, "const unsigned char*", PF, PF, PF, I, I], LaunchRule.Explicit);
    public static readonly KernelDescriptor MultiLevelInfoNceBackward = new("tmca.cu", "tmca_infonce_multilevel_backward_f32", [CF, CF, CF, PF, I, I], LaunchRule.GridStride);

    /// <summary>grid (⌈N/32⌉ pixel tiles, B), 128 threads.</summary>
    public static readonly KernelDescriptor SimilarityLgte = new("tmca.cu", "tmca_similarity_lgte_f32", [CF, CF, CF, CF, CF, CF, PF, PF, PF, PF, I, I, I], LaunchRule.Explicit, 128);
    /// <summary>grid (⌈N/32⌉ pixel tiles, B), 128 threads.</summary>
    public static readonly KernelDescriptor SimilarityLgteBackward = new("tmca.cu", "tmca_similarity_lgte_backward_f32",
        [CF, CF, CF, CF, CF, CF, CF, CF, CF, CF, PF, PF, PF, PF, I, I, I, I], LaunchRule.Explicit, 128);
    /// <summary>One thread.</summary>
    public static readonly KernelDescriptor LgteFinish = new("tmca.cu", "tmca_lgte_finish_f32", [CF, PF, PF, PF, I], LaunchRule.Explicit, 32);

    // ---- embedding.cu ----
    public static readonly KernelDescriptor Embedding = new("embedding.cu", "embedding_f32", ["const i64*", CF, PF, L, I], LaunchRule.GridStride);
    public static readonly KernelDescriptor EmbeddingBackward = new("embedding.cu", "embedding_backward_f32", ["const i64*", CF, PF, L, I], LaunchRule.GridStride);

    // ---- adamw.cu: one block per 4096-element chunk of any parameter ----
    public static readonly KernelDescriptor AdamW = new("adamw.cu", "adamw_multi_f32", ["const AdamSlot*", "const int*", "const i64*", I, F, F, F, F, F, F, F, CF], LaunchRule.Explicit);
    public static readonly KernelDescriptor NonFiniteCount = new("adamw.cu", "nonfinite_count_multi", ["const AdamSlot*", "const int*", "const i64*", I, PF], LaunchRule.Explicit);

    /// <summary>Every descriptor above (by reflection, so a new one cannot be forgotten).</summary>
    public static IReadOnlyList<KernelDescriptor> All { get; } =
        typeof(KernelTable).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
                 .Where(f => f.FieldType == typeof(KernelDescriptor)).Select(f => (KernelDescriptor)f.GetValue(null)!).ToList();
}
