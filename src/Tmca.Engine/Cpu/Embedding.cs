using System.Numerics;

namespace Tmca.Engine;

// Embedding lookup. ids: I64 of any shape, w: V×D → y: ids.shape×D.  Backward: gw[id] += gy row (repeats add up).
public sealed partial class CpuBackend
{
    public void Embedding(Tensor ids, Tensor w, Tensor y)
    {
        if (ids.DType != DType.I64) throw new ArgumentException($"embedding: ids must be I64, got {ids.DType}");
        int d = w.Shape[1];
        if (y.Numel != ids.Numel * d) throw new ArgumentException("embedding: output size");
        var idx = A<long>(ids);
        CheckIds(idx, w.Shape[0]);
        if (FloatType(w, y) == DType.F32) Gather(idx, A<float>(w), A<float>(y), d);
        else Gather(idx, A<double>(w), A<double>(y), d);
    }

    public void EmbeddingBackward(Tensor ids, Tensor gy, Tensor gw)
    {
        var idx = A<long>(ids);
        int d = gw.Shape[1];
        CheckIds(idx, gw.Shape[0]);
        if (FloatType(gy, gw) == DType.F32) ScatterAdd(idx, A<float>(gy), A<float>(gw), d);
        else ScatterAdd(idx, A<double>(gy), A<double>(gw), d);
    }

    private static void CheckIds(HostArray<long> ids, int vocab)
    {
        foreach (var id in ids)
            if ((ulong)id >= (ulong)vocab) throw new ArgumentOutOfRangeException(nameof(ids), $"embedding: id {id} outside the table of {vocab} rows");
    }

    private static void Gather<T>(HostArray<long> ids, HostArray<T> w, HostArray<T> y, int d) where T : unmanaged
    {
        for (int i = 0; i < ids.Length; i++) HostArray<T>.Copy(w, ids[i] * d, y, (long)i * d, d);
    }

    private static void ScatterAdd<T>(HostArray<long> ids, HostArray<T> gy, HostArray<T> gw, int d) where T : unmanaged, INumberBase<T>
    {
        Span<long> idsV = ids; Span<T> gyV = gy; Span<T> gwV = gw;
        // Sequential over tokens: repeated ids must add, not race.
        for (int i = 0; i < ids.Length; i++)
        {
            long o = idsV[(int)i] * d, g = (long)i * d;
            for (int j = 0; j < d; j++) gwV[(int)(o + j)] += gyV[(int)(g + j)];
        }
    }
}
