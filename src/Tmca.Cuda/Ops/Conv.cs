using Tmca.Engine;

namespace Tmca.Cuda;

// Convolutions: no CUDA kernels yet (CPU reference Tmca.Engine/Cpu/Conv.cs).
public sealed partial class CudaBackend
{
    public void Conv2d(Tensor x, Tensor w, Tensor? b, Tensor y, int stride, int pad, int groups) => throw Unsupported("conv2d");
    public void Conv2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int stride, int pad, int groups) => throw Unsupported("conv2d backward");
    public void ConvTranspose2d(Tensor x, Tensor w, Tensor? b, Tensor y, int k) => throw Unsupported("conv_transpose2d");
    public void ConvTranspose2dBackward(Tensor x, Tensor w, Tensor gy, Tensor? gx, Tensor? gw, Tensor? gb, int k) => throw Unsupported("conv_transpose2d backward");
}
