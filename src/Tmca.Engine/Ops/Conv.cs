namespace Tmca.Engine;

// Convolutions (see Cpu/Conv.cs for the shapes and the algorithms).
public static partial class Ops
{
    /// <summary>x: B×C×H×W, w: O×(C/groups)×kh×kw, b: O → B×O×Ho×Wo.</summary>
    public static Tensor Conv2d(Tensor x, Tensor w, Tensor? b = null, int stride = 1, int padding = 0, int groups = 1)
    {
        SameBackend(x, w, "conv2d");
        int Ho = (x.Shape[2] + 2 * padding - w.Shape[2]) / stride + 1, Wo = (x.Shape[3] + 2 * padding - w.Shape[3]) / stride + 1;
        var y = New(x, x.Shape[0], w.Shape[0], Ho, Wo);
        // the op's name: its family and kernel size, so the profile separates the 7×7 depthwise convs from the 1×1s
        string name = groups > 1 && groups == x.Shape[1] ? $"conv2d.depthwise{w.Shape[2]}x{w.Shape[3]}" : $"conv2d.{w.Shape[2]}x{w.Shape[3]}";
        Op.Run(name, x.Backend, y, Tape.Wants(x, w, b),
            () => x.Backend.Conv2d(x, w, b, y, stride, padding, groups),
            () => x.Backend.Conv2dBackward(x, w, y.Grad!, G(x), G(w), G(b), stride, padding, groups), saves: [x, w]);
        return y;
    }

    /// <summary>Transposed convolution with kernel = stride = k. x: B×C×H×W, w: C×O×k×k, b: O → B×O×kH×kW.</summary>
    public static Tensor ConvTranspose2d(Tensor x, Tensor w, Tensor? b, int k)
    {
        SameBackend(x, w, "conv_transpose2d");
        var y = New(x, x.Shape[0], w.Shape[1], x.Shape[2] * k, x.Shape[3] * k);
        Op.Run("conv_transpose2d", x.Backend, y, Tape.Wants(x, w, b),
            () => x.Backend.ConvTranspose2d(x, w, b, y, k),
            () => x.Backend.ConvTranspose2dBackward(x, w, y.Grad!, G(x), G(w), G(b), k), saves: [x, w]);
        return y;
    }
}
