namespace Tmca.Engine;

// Embedding lookup.
public static partial class Ops
{
    /// <summary>ids: I64 (any shape), w: V×D → ids.shape×D.</summary>
    public static Tensor Embedding(Tensor ids, Tensor w)
    {
        var y = New(w, [.. ids.Shape, w.Shape[1]]);
        Op.Run("embedding", w.Backend, y, Tape.Wants(w),
            () => w.Backend.Embedding(ids, w, y),
            () => w.Backend.EmbeddingBackward(ids, y.Grad!, w.GradOrZeros()), saves: [ids]);
        return y;
    }
}
