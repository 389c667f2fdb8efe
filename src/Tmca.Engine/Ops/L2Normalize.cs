namespace Tmca.Engine;

// L2 normalisation over the last axis: x / max(‖x‖, eps).
public static partial class Ops
{
    public static Tensor L2Normalize(Tensor x, double eps = 1e-6)
    {
        var y = NewLike(x);
        var norm = New(x, (int)(x.Numel / x.Shape[^1]));
        Op.Run("l2_normalize", x.Backend, y, Tape.Wants(x),
            () => x.Backend.L2Normalize(x, y, norm, eps),
            () => x.Backend.L2NormalizeBackward(y, norm, y.Grad!, x.GradOrZeros(), eps), saves: [y], scratch: [norm]);   // x is not read: freed at once
        return y;
    }
}
