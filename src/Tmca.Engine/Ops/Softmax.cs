namespace Tmca.Engine;

// Softmax over the last axis.
public static partial class Ops
{
    public static Tensor Softmax(Tensor x)
    {
        var y = NewLike(x);
        using (Profiler.Time("softmax", x.Backend)) x.Backend.Softmax(x, y);
        if (Tape.Wants(x))
            Tape.Record(y, () =>
            {
                using var _ = Profiler.Time("softmax.backward", x.Backend);
                x.Backend.SoftmaxBackward(y, y.Grad!, x.GradOrZeros());
            });
        return y;
    }
}
