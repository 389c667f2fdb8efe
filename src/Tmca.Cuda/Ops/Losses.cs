using Tmca.Engine;

namespace Tmca.Cuda;

// Losses and L2 normalisation: no CUDA kernels yet (CPU reference Tmca.Engine/Cpu/Losses.cs, L2Normalize.cs).
public sealed partial class CudaBackend
{
    public void L2Normalize(Tensor x, Tensor y, Tensor norm, double eps) => throw Unsupported("L2 normalisation");
    public void L2NormalizeBackward(Tensor x, Tensor y, Tensor norm, Tensor gy, Tensor gx, double eps) => throw Unsupported("L2 normalisation backward");
    public void BceWithLogits(Tensor x, Tensor t, Tensor loss) => throw Unsupported("BCE with logits");
    public void BceWithLogitsBackward(Tensor x, Tensor t, Tensor gLoss, Tensor gx) => throw Unsupported("BCE with logits backward");
    public void InfoNce(Tensor z, Tensor same, Tensor loss, Tensor pRow, Tensor pCol) => throw Unsupported("InfoNCE");
    public void InfoNceBackward(Tensor pRow, Tensor pCol, Tensor gLoss, Tensor gz) => throw Unsupported("InfoNCE backward");
}
