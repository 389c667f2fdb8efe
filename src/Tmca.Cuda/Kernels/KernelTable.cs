namespace Tmca.Cuda.Kernels;

/// <summary>
/// Every kernel in kernels/*.cu, one descriptor each, grouped by file (= op family, mirroring
/// Tmca.Engine/Cpu/). The signature test (tests/…/KernelSignatureTests) parses every KERNEL in the sources and
/// fails on a kernel without a descriptor, a descriptor without a kernel, or any difference in name, parameter
/// count, order or type.
/// </summary>
public static class K
{
    private const string F = "float", CF = "const float*", PF = "float*", I = "int", L = "i64";

    // ---- elementwise.cu: activations, scalar maps, broadcasting binary ops, axpy, fill ----
    public static readonly KernelDescriptor Unary = new("elementwise.cu", "unary_f32", [I, F, CF, PF, L], LaunchRule.GridStride);
    public static readonly KernelDescriptor UnaryBackward = new("elementwise.cu", "unary_backward_f32", [I, F, CF, CF, CF, PF, L], LaunchRule.GridStride);
    public static readonly KernelDescriptor BinarySame = new("elementwise.cu", "binary_same_f32", [I, CF, CF, PF, L, I], LaunchRule.GridStride);
    public static readonly KernelDescriptor BinaryBroadcast = new("elementwise.cu", "binary_broadcast_f32", [I, CF, CF, PF, L, I, "Shape8"], LaunchRule.GridStride);
    public static readonly KernelDescriptor Axpy = new("elementwise.cu", "axpy_f32", [F, CF, PF, L], LaunchRule.GridStride);
    public static readonly KernelDescriptor Fill = new("elementwise.cu", "fill_f32", [F, PF, L], LaunchRule.GridStride);

    // ---- layout.cu: permute, axis-range copy (concat), broadcast and sum-to ----
    public static readonly KernelDescriptor Permute = new("layout.cu", "permute_f32", [CF, PF, L, I, "Shape8"], LaunchRule.GridStride);
    public static readonly KernelDescriptor CopyAxisRange = new("layout.cu", "copy_axis_range_f32", [CF, L, L, PF, L, L, L, L, L, I], LaunchRule.GridStride);
    public static readonly KernelDescriptor BroadcastTo = new("layout.cu", "broadcast_to_f32", [CF, PF, L, I, "Shape8"], LaunchRule.GridStride);
    /// <summary>One block per output; the block is 32, 128 or 256 threads by the size of the reduction (the launcher picks).</summary>
    public static readonly KernelDescriptor SumTo = new("layout.cu", "sum_to_f32", [CF, PF, L, L, I, "Shape8", "Shape8"], LaunchRule.BlockPerItem);

    // ---- softmax.cu: one warp per row ----
    public static readonly KernelDescriptor Softmax = new("softmax.cu", "softmax_f32", [CF, PF, L, I], LaunchRule.WarpPerRow);
    public static readonly KernelDescriptor SoftmaxBackward = new("softmax.cu", "softmax_backward_f32", [CF, CF, PF, L, I], LaunchRule.WarpPerRow);

    // ---- norm.cu: layer norm over the last axis ----
    public static readonly KernelDescriptor LayerNorm = new("norm.cu", "layernorm_f32", [CF, CF, CF, PF, PF, PF, L, I, F], LaunchRule.WarpPerRow);
    public static readonly KernelDescriptor LayerNormBackwardDx = new("norm.cu", "layernorm_backward_dx_f32", [CF, CF, CF, CF, CF, PF, L, I], LaunchRule.WarpPerRow);
    /// <summary>grid (ceil(C/32), chunks), block (32, 8).</summary>
    public static readonly KernelDescriptor LayerNormBackwardDwDbPartial = new("norm.cu", "layernorm_backward_dwdb_partial_f32", [CF, CF, CF, CF, PF, PF, L, I, L], LaunchRule.Explicit, 32, 8);
    public static readonly KernelDescriptor LayerNormBackwardDwDbFinal = new("norm.cu", "layernorm_backward_dwdb_final_f32", [CF, CF, PF, PF, I, I], LaunchRule.ThreadPerItem);

    // ---- embedding.cu ----
    public static readonly KernelDescriptor Embedding = new("embedding.cu", "embedding_f32", ["const i64*", CF, PF, L, I], LaunchRule.GridStride);
    public static readonly KernelDescriptor EmbeddingBackward = new("embedding.cu", "embedding_backward_f32", ["const i64*", CF, PF, L, I], LaunchRule.GridStride);

    // ---- adamw.cu: one block per 4096-element chunk of any parameter ----
    public static readonly KernelDescriptor AdamW = new("adamw.cu", "adamw_multi_f32", ["const AdamSlot*", "const int*", "const i64*", I, F, F, F, F, F, F, F], LaunchRule.Explicit);

    /// <summary>Every descriptor above (by reflection, so a new one cannot be forgotten).</summary>
    public static IReadOnlyList<KernelDescriptor> All { get; } =
        typeof(K).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
                 .Where(f => f.FieldType == typeof(KernelDescriptor)).Select(f => (KernelDescriptor)f.GetValue(null)!).ToList();
}
