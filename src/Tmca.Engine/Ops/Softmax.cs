namespace Tmca.Engine;

// Softmax over the last axis.
public static partial class Ops
{
    public static Tensor Softmax(Tensor x)
    {
        var y = NewLike(x);
        Op.Run("softmax", x.Backend, y, Tape.Wants(x),
            () => x.Backend.Softmax(x, y),
            () => x.Backend.SoftmaxBackward(y, y.Grad!, x.GradOrZeros()), saves: [y]);
        return y;
    }
}
