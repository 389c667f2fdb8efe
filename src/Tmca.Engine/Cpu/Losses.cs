using System.Numerics;

namespace Tmca.Engine;

// Losses with their own kernels (numerically stable forms).
//   BCE with logits (mean): ℓ = max(x,0) − x·t + log(1 + e^(−|x|));  gx += g·(σ(x) − t)/N.
//   Symmetric masked InfoNCE over z: B×B (row i = image i against every text j; targets on the diagonal):
//     loss = ½·(mean_i CE(z[i,:]) + mean_j CE(z[:,j])), pairs with same[i,j] = 1 (i ≠ j) left out of both
//     denominators;  gz[i,j] += g/(2B)·((pRow − δ) + (pCol − δ)).
public sealed partial class CpuBackend
{
    public void BceWithLogits(Tensor x, Tensor t, Tensor loss)
    {
        CheckSame(x, t, "bce");
        if (FloatType(x, t, loss) == DType.F32) BceRef(A<float>(x), A<float>(t), A<float>(loss));
        else BceRef(A<double>(x), A<double>(t), A<double>(loss));
    }

    public void BceWithLogitsBackward(Tensor x, Tensor t, Tensor gLoss, Tensor gx)
    {
        if (FloatType(x, t, gLoss, gx) == DType.F32) BceBackRef(A<float>(x), A<float>(t), A<float>(gLoss), A<float>(gx), (int)x.Numel);
        else BceBackRef(A<double>(x), A<double>(t), A<double>(gLoss), A<double>(gx), (int)x.Numel);
    }

    private static void BceRef<T>(HostArray<T> x, HostArray<T> t, HostArray<T> loss) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> xV = x; Span<T> tV = t; Span<T> lossV = loss;
        double s = 0;
        int n = x.Length;
        for (int i = 0; i < n; i++)
        {
            double v = double.CreateTruncating(xV[(int)i]), y = double.CreateTruncating(tV[(int)i]);
            s += Math.Max(v, 0) - v * y + Math.Log(1 + Math.Exp(-Math.Abs(v)));
        }
        lossV[(int)0] = T.CreateTruncating(s / n);
    }

    private static void BceBackRef<T>(HostArray<T> x, HostArray<T> t, HostArray<T> gLoss, HostArray<T> gx, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> xV = x; Span<T> tV = t; Span<T> gLossV = gLoss; Span<T> gxV = gx;
        double g = double.CreateTruncating(gLossV[(int)0]) / n;
        for (int i = 0; i < n; i++)
        {
            double v = double.CreateTruncating(xV[(int)i]);
            gxV[(int)i] += T.CreateTruncating(g * (1.0 / (1.0 + Math.Exp(-v)) - double.CreateTruncating(tV[(int)i])));
        }
    }

    public void InfoNce(Tensor z, Tensor same, Tensor loss, Tensor pRow, Tensor pCol)
    {
        if (z.Rank != 2 || z.Shape[0] != z.Shape[1]) throw new ArgumentException($"InfoNCE: z must be square, got {Shape.Format(z.Shape)}");
        if (same.DType != DType.U8 || same.Numel != z.Numel) throw new ArgumentException("InfoNCE: same-report mask must be U8 B×B");
        if (FloatType(z, loss, pRow, pCol) == DType.F32) InfoNceRef(A<float>(z), A<byte>(same), A<float>(loss), A<float>(pRow), A<float>(pCol), z.Shape[0]);
        else InfoNceRef(A<double>(z), A<byte>(same), A<double>(loss), A<double>(pRow), A<double>(pCol), z.Shape[0]);
    }

    public void InfoNceBackward(Tensor pRow, Tensor pCol, Tensor gLoss, Tensor gz)
    {
        int b = pRow.Shape[0];
        if (FloatType(pRow, pCol, gLoss, gz) == DType.F32) InfoNceBackRef(A<float>(pRow), A<float>(pCol), A<float>(gLoss), A<float>(gz), b);
        else InfoNceBackRef(A<double>(pRow), A<double>(pCol), A<double>(gLoss), A<double>(gz), b);
    }

    private static void InfoNceRef<T>(HostArray<T> z, HostArray<byte> same, HostArray<T> loss, HostArray<T> pRow, HostArray<T> pCol, int b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool Kept(int i, int j) => i == j || same[i * b + j] == 0;
        double total = 0;
        // rows: softmax over j of z[i, j]; columns: softmax over i of z[i, j]
        for (int pass = 0; pass < 2; pass++)
        {
            var p = pass == 0 ? pRow : pCol;
            for (int a = 0; a < b; a++)
            {
                double max = double.NegativeInfinity;
                for (int c = 0; c < b; c++)
                {
                    int i = pass == 0 ? a : c, j = pass == 0 ? c : a;
                    if (Kept(i, j)) max = Math.Max(max, double.CreateTruncating(z[i * b + j]));
                }
                double sum = 0;
                for (int c = 0; c < b; c++)
                {
                    int i = pass == 0 ? a : c, j = pass == 0 ? c : a;
                    if (Kept(i, j)) sum += Math.Exp(double.CreateTruncating(z[i * b + j]) - max);
                }
                double lse = max + Math.Log(sum);
                for (int c = 0; c < b; c++)
                {
                    int i = pass == 0 ? a : c, j = pass == 0 ? c : a;
                    p[i * b + j] = Kept(i, j) ? T.CreateTruncating(Math.Exp(double.CreateTruncating(z[i * b + j]) - lse)) : T.Zero;
                }
                total += lse - double.CreateTruncating(z[a * b + a]);
            }
        }
        loss[0] = T.CreateTruncating(total / (2.0 * b));
    }

    private static void InfoNceBackRef<T>(HostArray<T> pRow, HostArray<T> pCol, HostArray<T> gLoss, HostArray<T> gz, int b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> pRowV = pRow; Span<T> pColV = pCol; Span<T> gLossV = gLoss; Span<T> gzV = gz;
        double g = double.CreateTruncating(gLossV[(int)0]) / (2.0 * b);
        for (int i = 0; i < b; i++)
            for (int j = 0; j < b; j++)
            {
                double d = i == j ? 1.0 : 0.0;
                double v = double.CreateTruncating(pRowV[(int)(i * b + j)]) - d + double.CreateTruncating(pColV[(int)(i * b + j)]) - d;
                gzV[(int)(i * b + j)] += T.CreateTruncating(g * v);
            }
    }
}
