using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// Losses: kernels/losses.cu (single-block, fixed-order reductions; gradients read the loss gradient on the device);
// CPU reference Tmca.Engine/Cpu/Losses.cs.
public sealed partial class CudaBackend
{
    // loss[0] = mean BCE-with-logits(x, t)
    public void BceWithLogits(Tensor x, Tensor t, Tensor loss)
    {
        RequireF32("BCE with logits", x, t, loss);
        BackendChecks.Same(x, t, "bce"); BackendChecks.Count(loss, 1, "bce loss");
        var a = new KernelArgs(KernelTable.BceWithLogits);
        a.Ptr(x).Ptr(t).Ptr(loss).I64(x.Numel);
        Launch(ref a, new Dim3(1), $"n={x.Numel}");
    }

    // gx += gLoss[0]·(σ(x) − t)/N
    public void BceWithLogitsBackward(Tensor x, Tensor t, Tensor gLoss, Tensor gx)
    {
        RequireF32("BCE with logits backward", x, t, gLoss, gx);
        BackendChecks.Same(x, t, "bce backward"); BackendChecks.Same(x, gx, "bce backward"); BackendChecks.Count(gLoss, 1, "bce loss gradient");
        if (x.Numel == 0) return;
        var a = new KernelArgs(KernelTable.BceWithLogitsBackward);
        a.Ptr(x).Ptr(t).Ptr(gLoss).Ptr(gx).I64(x.Numel);
        Launch(ref a, KernelTable.BceWithLogitsBackward.Grid(x.Numel, SmCount), $"n={x.Numel}");
    }

    // z: B×B, same: B×B U8 → loss[0], pRow, pCol: B×B
    public void InfoNce(Tensor z, Tensor same, Tensor loss, Tensor pRow, Tensor pCol)
    {
        RequireF32("InfoNCE", z, loss, pRow, pCol);
        if (z.Rank != 2 || z.Shape[0] != z.Shape[1]) throw new ArgumentException($"InfoNCE: z must be square, got {Shape.Format(z.Shape)}");
        if (same.DType != DType.U8 || same.Numel != z.Numel) throw new ArgumentException("InfoNCE: same-report mask must be U8 B×B");
        BackendChecks.Same(z, pRow, "InfoNCE"); BackendChecks.Same(z, pCol, "InfoNCE"); BackendChecks.Count(loss, 1, "InfoNCE loss");
        int b = z.Shape[0];
        if (b > 1024) throw new NotSupportedException($"InfoNCE over a batch of {b} on CUDA (one block: at most 1024)");
        var a = new KernelArgs(KernelTable.InfoNce);
        a.Ptr(z).Ptr(same).Ptr(loss).Ptr(pRow).Ptr(pCol).I32(b);
        Launch(ref a, new Dim3(1), $"B={b}", block: (uint)Math.Max(32, (b + 31) / 32 * 32));
    }

    // gz += gLoss[0]/(2B)·((pRow − δ) + (pCol − δ))
    public void InfoNceBackward(Tensor pRow, Tensor pCol, Tensor gLoss, Tensor gz)
    {
        RequireF32("InfoNCE backward", pRow, pCol, gLoss, gz);
        BackendChecks.Same(pRow, pCol, "InfoNCE backward"); BackendChecks.Same(pRow, gz, "InfoNCE backward"); BackendChecks.Count(gLoss, 1, "InfoNCE loss gradient");
        int b = pRow.Shape[0];
        var a = new KernelArgs(KernelTable.InfoNceBackward);
        a.Ptr(pRow).Ptr(pCol).Ptr(gLoss).Ptr(gz).I32(b);
        Launch(ref a, KernelTable.InfoNceBackward.Grid((long)b * b, SmCount), $"B={b}");
    }
}
