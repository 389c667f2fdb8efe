using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// Softmax over the last axis: kernels/softmax.cu (one warp per row); CPU reference Tmca.Engine/Cpu/Softmax.cs.
public sealed partial class CudaBackend
{
    // x, y: rows × n
    public void Softmax(Tensor x, Tensor y)
    {
        RequireF32("softmax", x, y);
        BackendChecks.Same(x, y, "softmax");
        if (x.Numel == 0) return;
        int n = x.Shape[^1]; long rows = x.Numel / n;
        var a = new KernelArgs(KernelTable.Softmax);
        a.Ptr(x).Ptr(y).I64(rows).I32(n);
        Launch(ref a, KernelTable.Softmax.Grid(rows, SmCount), $"{rows}×{n}");
    }

    // gx += y·(gy − Σ gy·y)
    public void SoftmaxBackward(Tensor y, Tensor gy, Tensor gx)
    {
        RequireF32("softmax backward", y, gy, gx);
        BackendChecks.Same(y, gy, "softmax backward"); BackendChecks.Same(y, gx, "softmax backward");
        if (y.Numel == 0) return;
        int n = y.Shape[^1]; long rows = y.Numel / n;
        var a = new KernelArgs(KernelTable.SoftmaxBackward);
        a.Ptr(y).Ptr(gy).Ptr(gx).I64(rows).I32(n);
        Launch(ref a, KernelTable.SoftmaxBackward.Grid(rows, SmCount), $"{rows}×{n}");
    }
}
