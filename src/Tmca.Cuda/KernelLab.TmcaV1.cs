using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// The kernel lab's own kernels: the naive v1 of the two fused TMCA forward kernels (kernels/lab/tmca_v1.cu), beside
// the tuned v2 in kernels/tmca.cu that the model runs (llm.c's dev/cuda). Their descriptors, costs and launchers live
// here, with the lab: the product's kernel table, cost table and CudaBackend hold only what the model launches.
public static partial class KernelLab
{
    /// <summary>The lab's kernel descriptors (kernels/lab/*.cu), each with its cost model; the signature test checks them
    /// against the lab's sources as it checks <see cref="KernelTable"/> against the product's.</summary>
    public static class LabKernels
    {
        private const string CF = "const float*", PF = "float*", I = "int";

        /// <summary>v1 of <see cref="KernelTable.TargetLogits"/>: one thread per logit (writes z only).</summary>
        public static readonly KernelDescriptor TargetLogitsNaive =
            new("lab/tmca_v1.cu", "tmca_target_logits_naive_f32", ["TmcaLevels", CF, CF, PF], LaunchRule.GridStride) { CostModel = TargetLogitsNaiveCost };

        /// <summary>v1 of <see cref="KernelTable.SimilarityLgte"/>: one thread per element of F̃.</summary>
        public static readonly KernelDescriptor SimilarityLgteNaive =
            new("lab/tmca_v1.cu", "tmca_similarity_lgte_naive_f32", [CF, CF, CF, CF, CF, CF, PF, PF, PF, PF, I, I, I, I], LaunchRule.GridStride)
            { CostModel = SimilarityLgteNaiveCost };

        public static IReadOnlyList<KernelDescriptor> All { get; } = [TargetLogitsNaive, SimilarityLgteNaive];

        // tmca_target_logits_naive_f32(levels, gt, tau, z): v2's useful work and reads, but only z written (no ω, v̄); every
        // logit pools its sample's map twice and weights all n·d pixel values: executed per logit 2·S·Sw + 3·n·d
        private static KernelCost TargetLogitsNaiveCost(KernelLaunch l) => TargetLogitsNaiveCost(l.Struct<TmcaLevels>(0));

        private static unsafe KernelCost TargetLogitsNaiveCost(in TmcaLevels t)
        {
            long B = t.B, gt = B * t.S * t.Sw, executed = 0;
            fixed (int* H = t.H, W = t.W, D = t.D)
                for (int i = 0; i < t.Count; i++) executed += B * B * (2 * gt / Math.Max(1, B) + 3L * H[i] * W[i] * D[i]);
            return KernelCosts.TargetLogits(t) with { ExecutedFlops = executed, WrittenBytes = sizeof(float) * t.Count * B * B };
        }

        // tmca_similarity_lgte_naive_f32(v, u, f, a, b, gamma, s, logits, att, f_out, B, C, N, d): v2's useful work and
        // bytes; every element of f_out recomputes its pixel's similarity: executed 2d + 7 per element of f
        private static KernelCost SimilarityLgteNaiveCost(KernelLaunch l)
        {
            long B = l.I32(10), C = l.I32(11), N = l.I32(12), d = l.I32(13);
            return KernelCosts.SimilarityLgte(B, C, N, d) with { ExecutedFlops = B * C * N * (2 * d + 7) };
        }
    }

    /// <summary>v1 target logits on <paramref name="gpu"/>: z only (ω and v̄ are the v2's outputs; v1 recomputes them per logit).</summary>
    internal static void TargetLogitsNaive(CudaBackend gpu, Tensor gt, IReadOnlyList<Tensor> v, IReadOnlyList<Tensor> u, Tensor tau, bool global,
                                           IReadOnlyList<Tensor> omega, IReadOnlyList<Tensor> vbar, Tensor z)
    {
        BackendChecks.TargetLogits(gt, v, u, tau, omega, vbar, z);
        var t = CudaBackend.Levels(gt.Shape[0], gt.Shape[2], gt.Shape[3], v, u, omega, vbar, global);
        var a = new KernelArgs(LabKernels.TargetLogitsNaive);
        a.Struct(t).Ptr(gt).Ptr(tau).Ptr(z);
        gpu.Launch(ref a, LabKernels.TargetLogitsNaive.Grid(z.Numel, gpu.SmCount), $"{v.Count} levels (naive)");
    }

    /// <summary>v1 similarity + LGTE on <paramref name="gpu"/>: s, logits, attention (B×N each) and F̃ = F·(1 + γA).</summary>
    internal static void SimilarityLgteNaive(CudaBackend gpu, Tensor v, Tensor u, Tensor f, Tensor a, Tensor b, Tensor gamma,
                                             Tensor s, Tensor logits, Tensor att, Tensor fOut)
    {
        var (B, C, N, D) = BackendChecks.SimilarityLgte(v, u, f, a, gamma, s, att, null);
        var k = new KernelArgs(LabKernels.SimilarityLgteNaive);
        k.Ptr(v).Ptr(u).Ptr(f).Ptr(a).Ptr(b).Ptr(gamma).Ptr(s).Ptr(logits).Ptr(att).Ptr(fOut).I32(B).I32(C).I32(N).I32(D);
        gpu.Launch(ref k, LabKernels.SimilarityLgteNaive.Grid(f.Numel, gpu.SmCount), $"B={B} C={C} N={N} d={D} (naive)");
    }
}
