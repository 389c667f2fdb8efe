using System.Numerics;

namespace Tmca.Engine;

/// <summary>
/// GELU (erf form) for float, vectorised: Φ(x) = ½(1 + erf(x/√2)) with erf from Abramowitz &amp; Stegun 7.1.26,
///   u = |x|/√2, t = 1/(1 + p·u), erf(u) = 1 − t·(a1 + t·(a2 + t·(a3 + t·(a4 + t·a5))))·e^(−u²),
/// the same formula as the scalar <see cref="ErfMath.Erf(float)"/> (|error| ≤ 1.5e-7). The backward needs
/// φ(x) = e^(−x²/2)/√(2π) = e^(−u²)/√(2π): the exponential is shared.
/// </summary>
internal static class GeluF32
{
    private const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;
    private const float InvSqrt2 = 0.70710678f, InvSqrt2Pi = 0.39894228f;

    /// <summary>Φ(x) and φ(x) for one vector of inputs.</summary>
    private static (Vector<float> Cdf, Vector<float> Pdf) CdfPdf(Vector<float> x)
    {
        var u = Vector.Abs(x) * new Vector<float>(InvSqrt2);
        var t = Vector<float>.One / (Vector<float>.One + new Vector<float>(P) * u);
        var poly = t * (new Vector<float>(A1) + t * (new Vector<float>(A2) + t * (new Vector<float>(A3) + t * (new Vector<float>(A4) + t * new Vector<float>(A5)))));
        var e = Vector.Exp(-(u * u));
        var erfAbs = Vector<float>.One - poly * e;
        var erf = Vector.ConditionalSelect(Vector.LessThan(x, Vector<float>.Zero), -erfAbs, erfAbs);
        return (new Vector<float>(0.5f) * (Vector<float>.One + erf), e * new Vector<float>(InvSqrt2Pi));
    }

    public static void Forward(HostArray<float> x, HostArray<float> y, int n) => Par.Ranges(n, 8, (s, e) =>
    {
        int vw = Vector<float>.Count;
        long i = s;
        for (; i + vw <= e; i += vw)
        {
            var v = new Vector<float>(x.AsSpan((int)i));
            (v * CdfPdf(v).Cdf).CopyTo(y.AsSpan((int)i));
        }
        for (; i < e; i++) y[i] = x[i] * ErfMath.NormalCdf(x[i]);
    });

    /// <summary>gx += (Φ(x) + x·φ(x))·gy.</summary>
    public static void Backward(HostArray<float> x, HostArray<float> gy, HostArray<float> gx, int n) => Par.Ranges(n, 8, (s, e) =>
    {
        int vw = Vector<float>.Count;
        long i = s;
        for (; i + vw <= e; i += vw)
        {
            var v = new Vector<float>(x.AsSpan((int)i));
            var (cdf, pdf) = CdfPdf(v);
            (new Vector<float>(gx.AsSpan((int)i)) + (cdf + v * pdf) * new Vector<float>(gy.AsSpan((int)i))).CopyTo(gx.AsSpan((int)i));
        }
        for (; i < e; i++) gx[i] += (ErfMath.NormalCdf(x[i]) + x[i] * (float)ErfMath.NormalPdf(x[i])) * gy[i];
    });
}
