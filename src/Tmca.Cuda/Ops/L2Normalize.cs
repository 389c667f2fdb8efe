using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// L2 normalisation over the last axis: kernels/l2normalize.cu (a warp per row); CPU reference Tmca.Engine/Cpu/L2Normalize.cs.
public sealed partial class CudaBackend
{
    // x, y: rows×d; norm: rows
    public void L2Normalize(Tensor x, Tensor y, Tensor norm, double eps)
    {
        RequireF32("L2 normalisation", x, y, norm);
        BackendChecks.Same(x, y, "L2 normalisation");
        if (x.Numel == 0) return;
        int d = x.Shape[^1]; long rows = x.Numel / d;
        BackendChecks.Count(norm, rows, "L2 norms");
        var a = new KernelArgs(KernelTable.L2Normalize);
        a.Ptr(x).Ptr(y).Ptr(norm).I64(rows).I32(d).F32(eps);
        Launch(ref a, KernelTable.L2Normalize.Grid(rows, SmCount), $"{rows}×{d}");
    }

    // gx += (gy − y·⟨y, gy⟩)/‖x‖ (clamped rows: gy/eps)
    public void L2NormalizeBackward(Tensor y, Tensor norm, Tensor gy, Tensor gx, double eps)
    {
        RequireF32("L2 normalisation backward", y, norm, gy, gx);
        BackendChecks.Same(y, gy, "L2 normalisation backward"); BackendChecks.Same(y, gx, "L2 normalisation backward");
        if (y.Numel == 0) return;
        int d = y.Shape[^1]; long rows = y.Numel / d;
        BackendChecks.Count(norm, rows, "L2 norms");
        var a = new KernelArgs(KernelTable.L2NormalizeBackward);
        a.Ptr(y).Ptr(norm).Ptr(gy).Ptr(gx).I64(rows).I32(d).F32(eps);
        Launch(ref a, KernelTable.L2NormalizeBackward.Grid(rows, SmCount), $"{rows}×{d}");
    }
}
