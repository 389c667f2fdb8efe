namespace Tmca.Cuda.Kernels;

/// <summary>
/// Every kernel's cost, declared from its arguments (see <see cref="KernelCost"/> for what the fields mean), keyed
/// by kernel name and grouped by file like the descriptor table. Parameter indices follow the descriptor's
/// parameter list (written in each entry's comment). Conventions:
///  - bytes: each tensor read once and each written once; a read-modify-write (accumulate, +=) in both; a pointer
///    argument that is null is not counted; scratch written and read back by one launch counts in both;
///  - FLOPs of contractions: 2 per multiply-add of the op as defined (a conv's zero-padding taps included, as the
///    usual FLOP counts do); executed FLOPs add the tile padding of the 64×64×16 implicit GEMM;
///  - FLOPs of everything else: a fixed count per element, written beside each entry; these kernels are memory
///    bound by two orders of magnitude, so the constants do not move a bound;
///  - every kernel of kernels/*.cu runs on FP32 CUDA cores except conv.cu's *_tf32 implicit GEMMs (mma.sync TF32),
///    which run on TF32 tensor cores, as do cuBLAS GEMMs with TF32 on.
/// </summary>
public static class KernelCosts
{
    private const int F = 4;   // bytes of a float
    private const int Tm = 64, Tn = 64, Tk = 16;   // conv.cu's implicit-GEMM tile

    /// <summary>The cost of one launch of <paramref name="d"/>; throws for a kernel with no declared cost.</summary>
    public static KernelCost Of(KernelDescriptor d, in KernelLaunch launch) =>
        d.CostModel is { } own ? own(launch)
        : Models.TryGetValue(d.Name, out var m) ? m(launch) : throw new InvalidOperationException($"kernel {d.Name} declares no cost (KernelCosts.Models)");

    public static bool Declares(string kernel) => Models.ContainsKey(kernel);

    /// <summary>Whether <see cref="Of"/> can cost a launch of <paramref name="d"/> (a table kernel's entry here, or its own model).</summary>
    public static bool Declares(KernelDescriptor d) => d.CostModel is not null || Declares(d.Name);

    /// <summary>Every kernel name with a declared cost (the test checks this is exactly the descriptor table).</summary>
    public static IEnumerable<string> Declared => Models.Keys;

    private static Dictionary<string, KernelDescriptor>? _byName;

    /// <summary>The descriptor of the kernel called <paramref name="name"/> (what a runtime's Launch is given), or null: the
    /// table's kernels and the kernel lab's own (the profiling simulator counts both).</summary>
    public static KernelDescriptor? Descriptor(string name)
    {
        _byName ??= KernelTable.All.Concat(KernelLab.LabKernels.All).ToDictionary(d => d.Name);
        return _byName.GetValueOrDefault(name);
    }

    /// <summary>A strided batched GEMM (cuBLAS): 2·m·n·k·batch FLOPs; A, B read once per batch entry (once when the
    /// stride is 0: broadcast), C written, and read too when β ≠ 0. cuBLAS's own tiling is unknown: executed = useful.</summary>
    public static KernelCost Gemm(in GemmCall g)
    {
        long batch = g.Batch, flops = 2L * g.M * g.N * g.K * batch;
        long a = (long)g.M * g.K * (g.StrideA == 0 ? 1 : batch), b = (long)g.K * g.N * (g.StrideB == 0 ? 1 : batch);
        long c = (long)g.M * g.N * (g.StrideC == 0 ? 1 : batch);
        return new KernelCost(flops, flops, F * (a + b + (g.Beta != 0 ? c : 0)), F * c, g.Tf32 ? MathUnit.Tf32TensorCore : MathUnit.Fp32Simt);
    }

    private static KernelCost Simt(long flops, long read, long written) => new(flops, flops, read, written, MathUnit.Fp32Simt);
    private static KernelCost Simt(long useful, long executed, long read, long written) => new(useful, executed, read, written, MathUnit.Fp32Simt);
    private static long Pad(long v, long tile) => (v + tile - 1) / tile * tile;
    private static long If(bool cond, long v) => cond ? v : 0;

    /// <summary>Elements a Shape8 operand holds: the product of the axes where its stride is not 0 (a dense tensor
    /// broadcast to dims; a stride-0 axis is read from the same elements).</summary>
    private static unsafe long Operand(in Shape8 s, bool second)
    {
        long n = 1;
        fixed (long* dims = s.Dims, s0 = s.S0, s1 = s.S1)
            for (int i = 0; i < s.Rank; i++)
                if ((second ? s1[i] : s0[i]) != 0) n *= dims[i];
        return n;
    }

    private static long Dims(in Shape8 s)
    {
        long n = 1;
        unsafe { fixed (long* dims = s.Dims) for (int i = 0; i < s.Rank; i++) n *= dims[i]; }
        return n;
    }

    /// <summary>A dense GEMM-shaped conv direction: useful FLOPs, and what 64×64×16 tiles execute (splits slices of K).</summary>
    private static (long Useful, long Executed) ImplicitGemm(long usefulMacs, long m, long n, long k, long groups, long splits = 1)
    {
        long per = (k + splits - 1) / splits;
        return (2 * usefulMacs, 2 * Pad(m, Tm) * Pad(n, Tn) * splits * Pad(per, Tk) * groups);
    }

    /// <summary>Elements AdamW's chunks cover and the distinct slots they name; from the chunk tables in device memory
    /// when they can be read, else grid·chunk (an upper bound: a tensor's last chunk may be short) and 0 slots.</summary>
    private static (long Elements, long Slots) AdamChunks(in KernelLaunch l)
    {
        long chunks = l.Grid.X, chunk = l.I32(3);
        var slotOf = l.ReadArray<int>(l.Ptr(1), chunks);
        var start = l.ReadArray<long>(l.Ptr(2), chunks);
        if (slotOf is null || start is null || slotOf.Length == 0) return (chunks * chunk, 0);
        int slots = slotOf.Max() + 1;
        var table = l.ReadArray<AdamSlotNative>(l.Ptr(0), slots);
        if (table is null) return (chunks * chunk, 0);
        long e = 0;
        for (int b = 0; b < chunks; b++) e += Math.Max(0, Math.Min(chunk, table[slotOf[b]].N - start[b]));
        return (e, slotOf.Distinct().LongCount());
    }

    /// <summary>Rows of an embedding table an id list touches: the distinct ids when they can be read, else n.</summary>
    private static long EmbeddingRows(in KernelLaunch l, long n)
    {
        var ids = l.ReadArray<long>(l.Ptr(0), n);
        return ids is null ? n : ids.Distinct().LongCount();
    }

    private static readonly Dictionary<string, Func<KernelLaunch, KernelCost>> Models = WithTensorCoreTwins(new()
    {
        // ---- elementwise.cu ----
        // unary_f32(op, alpha, x, y, n): 1 FLOP per element
        ["unary_f32"] = l => Simt(l.I64(4), F * l.I64(4), F * l.I64(4)),
        // unary_backward_f32(op, alpha, x, y, gy, gx, n): gx += f'(x, y)·gy reads x, y, gy, gx; 2 FLOPs per element. An op
        // whose backward needs only one of x and y saves only that one and passes gy in the other slot (Ops: saving less),
        // so the distinct buffers read are counted, not the slots.
        ["unary_backward_f32"] = l => Simt(2 * l.I64(6), (1L + new[] { l.Ptr(2), l.Ptr(3), l.Ptr(4) }.Distinct().Count()) * F * l.I64(6), F * l.I64(6)),
        // binary_same_f32(op, a, b, y, n, acc): 1 FLOP (2 accumulating)
        ["binary_same_f32"] = l => { long n = l.I64(4); bool acc = l.I32(5) != 0; return Simt(n * (acc ? 2 : 1), F * (2 * n + If(acc, n)), F * n); },
        // binary_broadcast_f32(op, a, b, y, n, acc, s): a and b hold the elements of their non-zero-stride axes
        ["binary_broadcast_f32"] = l =>
        {
            long n = l.I64(4); bool acc = l.I32(5) != 0; var s = l.Struct<Shape8>(6);
            return Simt(n * (acc ? 2 : 1), F * (Operand(s, false) + Operand(s, true) + If(acc, n)), F * n);
        },
        // axpy_f32(alpha, x, y, n): y += αx, 2 FLOPs
        ["axpy_f32"] = l => Simt(2 * l.I64(3), 2L * F * l.I64(3), F * l.I64(3)),
        // fill_f32(value, y, n)
        ["fill_f32"] = l => Simt(0, 0, F * l.I64(2)),
        // add_i64(x, value, n): 8-byte integers, 1 add each
        ["add_i64"] = l => Simt(l.I64(2), 8 * l.I64(2), 8 * l.I64(2)),

        // ---- layout.cu: data movement; an accumulating copy adds 1 FLOP per element ----
        // permute_f32(x, y, n, acc, s)
        ["permute_f32"] = l => { long n = l.I64(2); bool acc = l.I32(3) != 0; return Simt(If(acc, n), F * (n + If(acc, n)), F * n); },
        // copy_axis_range_f32(src, sa, ss, dst, da, ds, outer, length, inner, acc)
        ["copy_axis_range_f32"] = l =>
        {
            long n = l.I64(6) * l.I64(7) * l.I64(8); bool acc = l.I32(9) != 0;
            return Simt(If(acc, n), F * (n + If(acc, n)), F * n);
        },
        // broadcast_to_f32(x, y, n, acc, s): x holds the elements of its non-zero-stride axes
        ["broadcast_to_f32"] = l =>
        {
            long n = l.I64(2); bool acc = l.I32(3) != 0; var s = l.Struct<Shape8>(4);
            return Simt(If(acc, n), F * (Operand(s, false) + If(acc, n)), F * n);
        },
        // sum_to_f32(x, y, outputs, reduced, acc, kept, red): 1 add per element of x
        ["sum_to_f32"] = l =>
        {
            long o = l.I64(2), r = l.I64(3); bool acc = l.I32(4) != 0;
            return Simt(o * r + If(acc, o), F * (o * r + If(acc, o)), F * o);
        },
        // sum_rows_f32(x, y, rows, cols, width, acc): 1 FLOP per element
        ["sum_rows_f32"] = l =>
        {
            long r = l.I64(2), c = l.I64(3); bool acc = l.I32(5) != 0;
            return Simt(r * c + If(acc, c), F * (r * c + If(acc, c)), F * c);
        },

        // ---- softmax.cu (rows × n): 5 FLOPs per element (max, sub, exp, add, scale; backward: dot, sub, mul, add) ----
        // softmax_f32(x, y, rows, n)
        ["softmax_f32"] = l => { long e = l.I64(2) * l.I32(3); return Simt(5 * e, F * e, F * e); },
        // softmax_backward_f32(y, gy, gx, rows, n): gx += … reads y, gy, gx
        ["softmax_backward_f32"] = l => { long e = l.I64(3) * l.I32(4); return Simt(5 * e, 3L * F * e, F * e); },

        // ---- norm.cu: layer norm 8 FLOPs per element forward, 11 for dx, 5 for the weight sums; batch norm alike ----
        // layernorm_f32(x, w, b, y, mean, rstd, rows, C, eps)
        ["layernorm_f32"] = l => LayerNormForward(l, rows: l.I64(6), c: l.I32(7)),
        // layernorm_backward_dx_f32(x, w, mean, rstd, gy, gx, rows, C, acc)
        ["layernorm_backward_dx_f32"] = l => LayerNormDx(l, rows: l.I64(6), c: l.I32(7), acc: l.I32(8) != 0),
        // layernorm_backward_dwdb_partial_f32(x, mean, rstd, gy, part_w, part_b, rows, C, per_chunk): chunks = grid.y
        ["layernorm_backward_dwdb_partial_f32"] = l =>
        {
            long rows = l.I64(6), c = l.I32(7), e = rows * c, chunks = l.Grid.Y;
            return Simt(5 * e, F * (2 * e + 2 * rows), F * 2 * chunks * c);
        },
        // layernorm_backward_dwdb_final_f32(part_w, part_b, gw, gb, chunks, C, acc): gw, gb (+)= Σ partials (either may be
        // null); the outputs are read only when accumulated into
        ["layernorm_backward_dwdb_final_f32"] = l =>
        {
            long chunks = l.I32(4), c = l.I32(5); long outs = If(l.NonNull(2), c) + If(l.NonNull(3), c);
            return Simt(2 * chunks * c, F * (2 * chunks * c + If(l.I32(6) != 0, outs)), F * outs);
        },
        // layernorm_channels_first_f32(x, w, b, y, mean, rstd, outer, C, inner, eps)
        ["layernorm_channels_first_f32"] = l => LayerNormForward(l, rows: l.I64(6) * l.I64(8), c: l.I32(7)),
        // layernorm_channels_first_backward_dx_f32(x, w, mean, rstd, gy, gx, outer, C, inner, acc)
        ["layernorm_channels_first_backward_dx_f32"] = l => LayerNormDx(l, rows: l.I64(6) * l.I64(8), c: l.I32(7), acc: l.I32(9) != 0),
        // layernorm_channels_first_backward_dwdb_f32(x, mean, rstd, gy, gw, gb, outer, C, inner, acc)
        ["layernorm_channels_first_backward_dwdb_f32"] = l =>
        {
            long pos = l.I64(6) * l.I64(8), c = l.I32(7), e = pos * c; long outs = If(l.NonNull(4), c) + If(l.NonNull(5), c);
            return Simt(5 * e, F * (2 * e + 2 * pos + If(l.I32(9) != 0, outs)), F * outs);
        },
        // batchnorm_train_f32(x, w, b, y, save_mean, save_invstd, run_mean, run_var, B, C, HW, eps, momentum):
        // x read once (its three passes over a channel stay in cache), running stats read-modify-write
        ["batchnorm_train_f32"] = l =>
        {
            long c = l.I32(9), e = l.I32(8) * c * l.I64(10); long run = If(l.NonNull(6), c) + If(l.NonNull(7), c);
            return Simt(8 * e, F * (e + 2 * c + run), F * (e + 2 * c + run));
        },
        // batchnorm_eval_f32(x, w, b, y, run_mean, run_var, C, HW, n, eps): 4 FLOPs per element
        ["batchnorm_eval_f32"] = l => { long c = l.I32(6), e = l.I64(8); return Simt(4 * e, F * (e + 4 * c), F * e); },
        // batchnorm_backward_f32(x, w, save_mean, save_invstd, gy, gx, gw, gb, B, C, HW): 11 FLOPs per element
        ["batchnorm_backward_f32"] = l =>
        {
            long c = l.I32(9), e = l.I32(8) * c * l.I64(10); long gx = If(l.NonNull(5), e), outs = If(l.NonNull(6), c) + If(l.NonNull(7), c);
            return Simt(11 * e, F * (2 * e + gx + 3 * c + outs), F * (gx + outs));
        },

        // ---- conv.cu: implicit GEMMs (ConvGeom g is parameter 0) ----
        // conv2d_forward_f32(g, x, w, bias, y): m = O/G, n = B·Ho·Wo, k = (C/G)·kh·kw per group
        ["conv2d_forward_f32"] = l =>
        {
            var g = l.Struct<ConvGeom>(0); long G = g.Groups, khw = (long)g.Kh * g.Kw;
            long outs = (long)g.B * g.O * g.Ho * g.Wo, wn = g.O * (long)(g.C / G) * khw;
            var (u, x) = ImplicitGemm(outs * (g.C / G) * khw, g.O / G, (long)g.B * g.Ho * g.Wo, g.C / G * khw, G);
            return Simt(u, x, F * ((long)g.B * g.C * g.H * g.W + wn + If(l.NonNull(3), g.O)), F * outs);
        },
        // conv2d_backward_data_f32(g, w, gy, gx): gx += …; m = C/G, n = B·H·W, k = (O/G)·kh·kw — with stride s the map
        // visits every (o, ky, kx) for every input pixel, so s² times the useful MACs are executed (most are zeros)
        ["conv2d_backward_data_f32"] = l =>
        {
            var g = l.Struct<ConvGeom>(0); long G = g.Groups, khw = (long)g.Kh * g.Kw;
            long xs = (long)g.B * g.C * g.H * g.W, ys = (long)g.B * g.O * g.Ho * g.Wo, wn = g.O * (long)(g.C / G) * khw;
            var (u, x) = ImplicitGemm(ys * (g.C / G) * khw, g.C / G, (long)g.B * g.H * g.W, g.O / G * khw, G);
            return Simt(u, x, F * (wn + ys + xs), F * xs);
        },
        // conv2d_backward_weight_f32(g, x, gy, part, splits): m = O/G, n = (C/G)·kh·kw, k = B·Ho·Wo in splits slices;
        // part: splits × O × (C/G)·kh·kw partial sums
        ["conv2d_backward_weight_f32"] = l =>
        {
            var g = l.Struct<ConvGeom>(0); long G = g.Groups, khw = (long)g.Kh * g.Kw, splits = l.I32(4);
            long xs = (long)g.B * g.C * g.H * g.W, ys = (long)g.B * g.O * g.Ho * g.Wo, wn = g.O * (long)(g.C / G) * khw;
            var (u, x) = ImplicitGemm(ys * (g.C / G) * khw, g.O / G, g.C / G * khw, (long)g.B * g.Ho * g.Wo, G, splits);
            return Simt(u, x, F * (xs + ys), F * splits * wn);
        },
        // add_split_partials_f32(part, dst, splits, n): dst += Σ_s part[s]
        ["add_split_partials_f32"] = l => { long s = l.I32(2), n = l.I64(3); return Simt(s * n, F * (s * n + n), F * n); },
        // conv_transpose2d_forward_f32(g, x, w, bias, y): m = O·k², n = B·H·W, k = C
        ["conv_transpose2d_forward_f32"] = l =>
        {
            var g = l.Struct<ConvGeom>(0); long k2 = (long)g.Kh * g.Kh, hw = (long)g.H * g.W;
            long xs = g.B * g.C * hw, ys = g.B * g.O * hw * k2, wn = (long)g.C * g.O * k2;
            var (u, x) = ImplicitGemm(ys * g.C, g.O * k2, g.B * hw, g.C, 1);
            return Simt(u, x, F * (xs + wn + If(l.NonNull(3), g.O)), F * ys);
        },
        // conv_transpose2d_backward_data_f32(g, w, gy, gx): gx += …; m = C, n = B·H·W, k = O·k²
        ["conv_transpose2d_backward_data_f32"] = l =>
        {
            var g = l.Struct<ConvGeom>(0); long k2 = (long)g.Kh * g.Kh, hw = (long)g.H * g.W;
            long xs = g.B * g.C * hw, ys = g.B * g.O * hw * k2, wn = (long)g.C * g.O * k2;
            var (u, x) = ImplicitGemm(ys * g.C, g.C, g.B * hw, g.O * k2, 1);
            return Simt(u, x, F * (wn + ys + xs), F * xs);
        },
        // conv_transpose2d_backward_weight_f32(g, x, gy, part, splits): m = C, n = O·k², k = B·H·W in slices
        ["conv_transpose2d_backward_weight_f32"] = l =>
        {
            var g = l.Struct<ConvGeom>(0); long k2 = (long)g.Kh * g.Kh, hw = (long)g.H * g.W, splits = l.I32(4);
            long xs = g.B * g.C * hw, ys = g.B * g.O * hw * k2, wn = (long)g.C * g.O * k2;
            var (u, x) = ImplicitGemm(ys * g.C, g.C, g.O * k2, g.B * hw, 1, splits);
            return Simt(u, x, F * (xs + ys), F * splits * wn);
        },

        // ---- depthwise.cu: k² MACs per output (zero-padding taps included) ----
        // depthwise_conv_f32(x, w, bias, y, C, H, W, k, flip, accumulate): grid.x = B·C planes × ⌈W/16⌉·⌈H/16⌉ tiles
        ["depthwise_conv_f32"] = l =>
        {
            long h = l.I32(5), w = l.I32(6), planes = l.Grid.X / (((w + 15) / 16) * ((h + 15) / 16));
            long c = l.I32(4), k2 = (long)l.I32(7) * l.I32(7), e = planes * h * w;
            bool acc = l.I32(9) != 0;
            return Simt(2 * e * k2, F * (e + c * k2 + If(l.NonNull(2), c) + If(acc, e)), F * e);
        },
        // depthwise_conv_backward_weight_f32(x, gy, out, B, C, H, W, k, splits): gw += Σ gy·x with one split; with more,
        // the splits' partials written (summed by add_split_partials_f32)
        ["depthwise_conv_backward_weight_f32"] = l =>
        {
            long c = l.I32(4), k2 = (long)l.I32(7) * l.I32(7), e = (long)l.I32(3) * c * l.I32(5) * l.I32(6), s = l.I32(8);
            return Simt(2 * e * k2, F * (2 * e + If(s == 1, c * k2)), F * s * c * k2);
        },

        // ---- l2normalize.cu (rows × d): 3 FLOPs per element forward, 5 backward ----
        // l2normalize_f32(x, y, norm, rows, d, eps)
        ["l2normalize_f32"] = l => { long r = l.I64(3), e = r * l.I32(4); return Simt(3 * e, F * e, F * (e + r)); },
        // l2normalize_backward_f32(y, norm, gy, gx, rows, d, eps): gx += …
        ["l2normalize_backward_f32"] = l => { long r = l.I64(4), e = r * l.I32(5); return Simt(5 * e, F * (3 * e + r), F * e); },

        // ---- losses.cu ----
        // bce_with_logits_f32(x, t, loss, n): 7 FLOPs per element (max, mul, sub, abs, exp, log1p, add)
        ["bce_with_logits_f32"] = l => { long n = l.I64(3); return Simt(7 * n, F * 2 * n, F); },
        // bce_with_logits_backward_f32(x, t, g_loss, gx, n): gx += g·(σ(x) − t)/N, 5 FLOPs
        ["bce_with_logits_backward_f32"] = l => { long n = l.I64(4); return Simt(5 * n, F * (3 * n + 1), F * n); },
        // infonce_f32(z, same, loss, p_row, p_col, B): row and column softmax of B×B, 8 FLOPs per logit; same is U8
        ["infonce_f32"] = l => { long b2 = (long)l.I32(5) * l.I32(5); return Simt(8 * b2, F * b2 + b2, F * (1 + 2 * b2)); },
        // infonce_backward_f32(p_row, p_col, g_loss, gz, B): gz += …, 4 FLOPs per logit
        ["infonce_backward_f32"] = l => { long b2 = (long)l.I32(4) * l.I32(4); return Simt(4 * b2, F * (3 * b2 + 1), F * b2); },

        // ---- tmca.cu ----
        // tmca_target_logits_f32(levels, gt, tau, z): per level, pool gt (one add per pixel), v̄ = Σ ω v (2·n·d per
        // sample), z = v̄·uᵀ/τ (2·B·d per sample); gt is read once for every level (the same map)
        ["tmca_target_logits_f32"] = l => TargetLogits(l.Struct<TmcaLevels>(0)),
        // tmca_target_logits_backward_f32(levels, tau, z, gz, gtau): per level g_v̄ (2·B·d per sample), gv += ω·g_v̄
        // (2·n·d), gu += (2·B·d); gτ over every z (2 per logit) when asked
        ["tmca_target_logits_backward_f32"] = l => TargetLogitsBackward(l.Struct<TmcaLevels>(0), gtau: l.NonNull(4)),
        // tmca_infonce_multilevel_f32(z, same, loss, p_row, p_col, L, B): 8 FLOPs per logit; same (U8) shared by levels
        ["tmca_infonce_multilevel_f32"] = l =>
        {
            long L = l.I32(5), b2 = (long)l.I32(6) * l.I32(6);
            return Simt(8 * L * b2, F * L * b2 + b2, F * (L + 1 + 2 * L * b2));
        },
        // tmca_infonce_multilevel_backward_f32(p_row, p_col, g_loss, gz, L, B): gz += …, 4 FLOPs per logit
        ["tmca_infonce_multilevel_backward_f32"] = l =>
        {
            long L = l.I32(4), e = L * l.I32(5) * l.I32(5);
            return Simt(4 * e, F * (3 * e + L + 1), F * e);
        },
        // tmca_similarity_lgte_f32(v, u, f, a, b, gamma, s, logits, att, f_out, C, N, d): B = grid.y (grid.x: pixel tiles);
        // s = ⟨v_p, u⟩ (2d per pixel), logits, σ (5 per pixel), f_out = f·(1 + γA) (2 per element of f)
        ["tmca_similarity_lgte_f32"] = l => SimilarityLgte(B: l.Grid.Y, C: l.I32(10), N: l.I32(11), D: l.I32(12)),
        // tmca_similarity_lgte_backward_f32(v, u, f, a, gamma, s, att, target, g_fout, g_pix, gv, gu_part, gf, partial,
        //   B, C, N, d), grid (tiles, B): through g_fout 6 FLOPs per element of f (gA, pg, gf); per pixel gz (6); gv += gs·u
        //   and the tiles' Σ gs·v (2d each); gu_part (tiles × B × d) and partial (3 per tile and sample) written
        ["tmca_similarity_lgte_backward_f32"] = l =>
        {
            long B = l.I32(14), C = l.I32(15), N = l.I32(16), d = l.I32(17), tiles = l.Grid.X, px = B * N, fe = px * C, ve = px * d;
            bool gfout = l.NonNull(8), pix = l.NonNull(9) && l.NonNull(7), gv = l.NonNull(10), gu = l.NonNull(11), gf = l.NonNull(12) && gfout;
            long flops = If(gfout, 6 * fe) + 6 * px + If(gv, 2 * ve) + If(gu, 2 * ve);
            long read = F * (If(gfout, 2 * fe) + If(gf, fe) + 2 * px + If(pix, px + 1) + B * d + 2 + If(gv, ve) + If(gu, ve));
            long written = F * (If(gf, fe) + If(gv, ve) + If(gu, tiles * B * d) + 3 * tiles * B);
            return Simt(flops, read, written);
        },
        // tmca_lgte_finish_f32(partial, ga, gb, g_gamma, count): three sums of count (tile, sample) partials into three scalars (+=)
        ["tmca_lgte_finish_f32"] = l => { long B = l.I32(4); return Simt(3 * B + 3, F * (3 * B + 3), F * 3); },

        // ---- embedding.cu: rows of w touched = distinct ids (when the ids can be read), else every id ----
        // embedding_f32(ids, w, y, n, D)
        ["embedding_f32"] = l => { long n = l.I64(3), d = l.I32(4); return Simt(0, 8 * n + F * EmbeddingRows(l, n) * d, F * n * d); },
        // embedding_backward_f32(ids, gy, gw, n, D): gw[ids] += gy (atomics), 1 add per element of gy
        ["embedding_backward_f32"] = l =>
        {
            long n = l.I64(3), d = l.I32(4), rows = EmbeddingRows(l, n);
            return Simt(n * d, 8 * n + F * (n * d + rows * d), F * rows * d);
        },

        // ---- adamw.cu: one block per chunk; tables: 12 bytes per chunk, 48 per slot ----
        // adamw_multi_f32(slots, chunk_slot, chunk_start, chunk, lr, β1, β2, eps, wd, bc1, bc2, guard): reads p, g, m, v,
        // writes p, m, v; 14 FLOPs per element
        ["adamw_multi_f32"] = l =>
        {
            var (e, slots) = AdamChunks(l); long tables = 12L * l.Grid.X + 48 * slots;
            return Simt(14 * e, 4L * F * e + tables + If(l.NonNull(11), F), 3L * F * e);
        },
        // nonfinite_count_multi(slots, chunk_slot, chunk_start, chunk, guard): reads every gradient once, 1 compare
        // per element; the guard is written (atomically) only when a chunk has a non-finite value
        ["nonfinite_count_multi"] = l =>
        {
            var (e, slots) = AdamChunks(l); long tables = 12L * l.Grid.X + 48 * slots;
            return Simt(e, F * e + tables, 0);
        },
    });

    // conv.cu's TF32 tensor-core implicit GEMMs (conv2d_*_tf32, conv_transpose2d_*_tf32) take the same arguments,
    // grids and 64×64×16 tiles as their FP32 SIMT twins (*_f32) and touch the same bytes: the same cost, on the
    // TF32 tensor-core unit.
    private static Dictionary<string, Func<KernelLaunch, KernelCost>> WithTensorCoreTwins(Dictionary<string, Func<KernelLaunch, KernelCost>> models)
    {
        // (a local, not a static field: Models' initializer runs before static fields declared below it)
        string[] tensorCoreConvs =
        [
            "conv2d_forward", "conv2d_backward_data", "conv2d_backward_weight",
            "conv_transpose2d_forward", "conv_transpose2d_backward_data", "conv_transpose2d_backward_weight",
        ];
        foreach (var name in tensorCoreConvs)
        {
            var simt = models[name + "_f32"];
            models[name + "_tf32"] = l => simt(l) with { Unit = MathUnit.Tf32TensorCore };
        }
        return models;
    }

    // rows × C: x (and w, b if given) read; y and the saved mean and rstd written
    private static KernelCost LayerNormForward(in KernelLaunch l, long rows, long c)
    {
        long e = rows * c;
        return Simt(8 * e, F * (e + If(l.NonNull(1), c) + If(l.NonNull(2), c)), F * (e + If(l.NonNull(4), rows) + If(l.NonNull(5), rows)));
    }

    // gx (+)= …: x, gy (and w) read, mean and rstd per row; gx read too when accumulated into
    private static KernelCost LayerNormDx(in KernelLaunch l, long rows, long c, bool acc)
    {
        long e = rows * c;
        return Simt(11 * e, F * ((acc ? 3 : 2) * e + If(l.NonNull(1), c) + 2 * rows), F * e);
    }

    /// <summary>tmca_target_logits_f32's cost (the kernel lab's v1 declares its own from it: the same useful work).</summary>
    internal static unsafe KernelCost TargetLogits(in TmcaLevels t)
    {
        long B = t.B, gt = B * t.S * t.Sw, useful = 0, read = gt + 1, written = 0;
        fixed (int* H = t.H, W = t.W, D = t.D)
            for (int i = 0; i < t.Count; i++)
            {
                long n = (long)H[i] * W[i], d = D[i];
                useful += gt + B * (2 * n * d + 2 * B * d);
                read += B * n * d + B * d;
                written += B * B + B * n + B * d;
            }
        return Simt(useful, F * read, F * written);
    }

    private static unsafe KernelCost TargetLogitsBackward(in TmcaLevels t, bool gtau)
    {
        long B = t.B, flops = 0, read = 1 + t.Count * B * B, written = 0;
        fixed (int* H = t.H, W = t.W, D = t.D)
        fixed (ulong* gv = t.Gv, gu = t.Gu)
            for (int i = 0; i < t.Count; i++)
            {
                long n = (long)H[i] * W[i], d = D[i];
                if (gv[i] != 0) { flops += B * (2 * B * d + 2 * n * d); read += B * d + B * n + B * n * d; written += B * n * d; }
                if (gu[i] != 0) { flops += B * 2 * B * d; read += 2 * B * d; written += B * d; }
            }
        if (gtau) { flops += 2 * t.Count * B * B; read += t.Count * B * B + 1; written += 1; }
        return Simt(flops, F * read, F * written);
    }

    /// <summary>tmca_similarity_lgte_f32's cost (the kernel lab's v1 declares its own from it: the same useful work).</summary>
    internal static KernelCost SimilarityLgte(long B, long C, long N, long D)
    {
        long px = B * N, fe = px * C;
        return Simt(2 * px * D + 5 * px + 2 * fe, F * (px * D + B * D + fe + 3), F * (3 * px + fe));
    }
}
