using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// Elementwise ops: kernels/elementwise.cu; CPU reference Tmca.Engine/Cpu/Elementwise.cs.
public sealed partial class CudaBackend
{
    /// <summary>Float32 only on CUDA (F64 exists for the CPU's finite-difference checks).</summary>
    internal static void RequireF32(string op, params Tensor?[] ts)
    {
        foreach (var t in ts)
            if (t is not null && t.DType != DType.F32) throw new NotSupportedException($"{op} of {t.DType} tensors on CUDA (float32 only)");
    }

    // y = f(x); x, y: n
    public void Unary(UnaryOp op, double alpha, Tensor x, Tensor y)
    {
        RequireF32("unary", x, y);
        BackendChecks.Same(x, y, "unary");
        long n = x.Numel;
        var a = new KernelArgs(KernelTable.Unary);
        a.I32((int)op).F32(alpha).Ptr(x).Ptr(y).I64(n);
        Launch(ref a, KernelTable.Unary.Grid(n, SmCount), $"{op} n={n}");
    }

    // gx += f'(x)·gy; x, y, gy, gx: n
    public void UnaryBackward(UnaryOp op, double alpha, Tensor x, Tensor y, Tensor gy, Tensor gx)
    {
        RequireF32("unary backward", x, y, gy, gx);
        BackendChecks.Same(x, y, "unary backward"); BackendChecks.Same(x, gy, "unary backward"); BackendChecks.Same(x, gx, "unary backward");
        long n = x.Numel;
        var a = new KernelArgs(KernelTable.UnaryBackward);
        a.I32((int)op).F32(alpha).Ptr(x).Ptr(y).Ptr(gy).Ptr(gx).I64(n);
        Launch(ref a, KernelTable.UnaryBackward.Grid(n, SmCount), $"{op} n={n}");
    }

    // y (+)= a op b, broadcasting a and b to y's shape
    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, bool accumulate)
    {
        RequireF32("binary", a, b, y);
        BackendChecks.Binary(a, b, y);
        long n = y.Numel;
        if (a.Numel == n && b.Numel == n)
        {
            var s = new KernelArgs(KernelTable.BinarySame);
            s.I32((int)op).Ptr(a).Ptr(b).Ptr(y).I64(n).Flag(accumulate);
            Launch(ref s, KernelTable.BinarySame.Grid(n, SmCount), $"{op} n={n}");
            return;
        }
        var shape = Shape8.Of(y.Shape, Shape.BroadcastStrides(a.Shape, y.Shape), Shape.BroadcastStrides(b.Shape, y.Shape));
        var k = new KernelArgs(KernelTable.BinaryBroadcast);
        k.I32((int)op).Ptr(a).Ptr(b).Ptr(y).I64(n).Flag(accumulate).Struct(shape);
        Launch(ref k, KernelTable.BinaryBroadcast.Grid(n, SmCount), $"{op} {Shape.Format(a.Shape)} op {Shape.Format(b.Shape)} → {Shape.Format(y.Shape)}");
    }

    // x += value, x: I64
    public void AddI64(Tensor t, long value)
    {
        if (t.DType != DType.I64) throw new ArgumentException($"AddI64 on a {t.DType} tensor");
        if (t.Numel == 0) return;
        if (t.Storage is CudaStorage cs) cs.KnownRange = null;   // written on the device: no longer known on the host
        var a = new KernelArgs(KernelTable.AddI64);
        a.Ptr(t).I64(value).I64(t.Numel);
        Launch(ref a, KernelTable.AddI64.Grid(t.Numel, SmCount), $"n={t.Numel}");
    }

    // y += alpha·x
    public void Axpy(double alpha, Tensor x, Tensor y)
    {
        RequireF32("axpy", x, y);
        BackendChecks.Same(x, y, "axpy");
        long n = x.Numel;
        var a = new KernelArgs(KernelTable.Axpy);
        a.F32(alpha).Ptr(x).Ptr(y).I64(n);
        Launch(ref a, KernelTable.Axpy.Grid(n, SmCount), $"n={n}");
    }
}
