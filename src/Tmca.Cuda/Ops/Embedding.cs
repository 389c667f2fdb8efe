using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// Embedding lookup: kernels/embedding.cu; CPU reference Tmca.Engine/Cpu/Embedding.cs.
public sealed partial class CudaBackend
{
    // ids: n (I64), w: V×D → y: n×D
    public void Embedding(Tensor ids, Tensor w, Tensor y)
    {
        RequireF32("embedding", w, y);
        CheckIds(ids, w);
        BackendChecks.Count(y, ids.Numel * w.Shape[1], "embedding output");
        long n = ids.Numel; int d = w.Shape[1];
        var a = new KernelArgs(KernelTable.Embedding);
        a.Ptr(ids).Ptr(w).Ptr(y).I64(n).I32(d);
        Launch(ref a, KernelTable.Embedding.Grid(n * d, SmCount), $"{n} ids × {d}");
    }

    // gw[ids[t], :] += gy[t, :]
    public void EmbeddingBackward(Tensor ids, Tensor gy, Tensor gw)
    {
        RequireF32("embedding backward", gy, gw);
        CheckIds(ids, gw);
        BackendChecks.Count(gy, ids.Numel * gw.Shape[1], "embedding backward gradient");
        long n = ids.Numel; int d = gw.Shape[1];
        var a = new KernelArgs(KernelTable.EmbeddingBackward);
        a.Ptr(ids).Ptr(gy).Ptr(gw).I64(n).I32(d);
        Launch(ref a, KernelTable.EmbeddingBackward.Grid(n * d, SmCount), $"{n} ids × {d}");
    }

    /// <summary>An id outside the table would be an illegal address (fatal to the context): check on the host first,
    /// from the range recorded when the ids were uploaded; only ids of unknown range are read back (one device → host
    /// copy, counted in <see cref="DeviceToHostCopies"/>).</summary>
    private void CheckIds(Tensor ids, Tensor table)
    {
        if (ids.DType != DType.I64) throw new ArgumentException($"embedding: ids must be I64, got {ids.DType}");
        if (table.Rank != 2) throw new ArgumentException($"embedding: the table must be V×D, got {Shape.Format(table.Shape)}");
        int vocab = table.Shape[0];
        if (ids.Numel == 0) return;
        var (min, max) = ids.Storage is CudaStorage { KnownRange: { } r } && ids.Numel == ids.Storage.Count ? r : MinMax(ids.ToArray<long>());
        if (min < 0 || max >= vocab)
            throw new ArgumentOutOfRangeException(nameof(ids), $"embedding: id {(min < 0 ? min : max)} outside the table of {vocab} rows");
    }

    /// <summary>The smallest and largest id in one pass; (0, 0) for none.</summary>
    internal static (long Min, long Max) MinMax(ReadOnlySpan<long> v)
    {
        if (v.IsEmpty) return (0, 0);
        long min = v[0], max = v[0];
        foreach (var x in v) { if (x < min) min = x; if (x > max) max = x; }
        return (min, max);
    }
}
