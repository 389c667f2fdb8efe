namespace Tmca.Engine;

/// <summary>
/// The error function. .NET has none, and GELU is defined with it (PyTorch's exact, erf-based form).
/// Double precision (used by the gradient checks) sums the everywhere-positive series
///   erf(x) = 2/√π · e^(−x²) · Σ_n (2x²)ⁿ·x / (1·3·5·…·(2n+1))         for |x| &lt; 3,
/// which has no cancellation, and the continued fraction
///   erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …))))     for |x| ≥ 3.
/// Float (training) uses Abramowitz &amp; Stegun 7.1.26 (|error| ≤ 1.5e-7, below float resolution of GELU).
/// </summary>
public static class ErfMath
{
    private const double TwoOverSqrtPi = 1.1283791670955126;
    private const double InvSqrtPi = 0.5641895835477563;

    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return x;
        double ax = Math.Abs(x);
        double r;
        if (ax < 3.0)
        {
            double x2 = ax * ax, term = ax, sum = ax;
            for (int n = 0; n < 200; n++)
            {
                term *= 2.0 * x2 / (2 * n + 3);
                sum += term;
                if (term < 1e-17 * sum) break;
            }
            r = TwoOverSqrtPi * Math.Exp(-x2) * sum;
        }
        else if (ax < 27.0)
        {
            // Evaluate the continued fraction bottom-up; 80 levels converge for x ≥ 3.
            double f = ax;
            for (int k = 80; k >= 1; k--) f = ax + (k * 0.5) / f;
            r = 1.0 - Math.Exp(-ax * ax) * InvSqrtPi / f;
        }
        else r = 1.0;
        return x < 0 ? -r : r;
    }

    public static float Erf(float x)
    {
        // A&S 7.1.26: erf(x) ≈ 1 − (a1 t + a2 t² + a3 t³ + a4 t⁴ + a5 t⁵) e^(−x²), t = 1/(1 + p x), x ≥ 0.
        double ax = Math.Abs((double)x);
        double t = 1.0 / (1.0 + 0.3275911 * ax);
        double poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        double r = 1.0 - poly * Math.Exp(-ax * ax);
        return (float)(x < 0 ? -r : r);
    }

    /// <summary>Φ(x) = ½(1 + erf(x/√2)), the standard normal CDF.</summary>
    public static double NormalCdf(double x) => 0.5 * (1.0 + Erf(x * 0.7071067811865476));
    public static float NormalCdf(float x) => 0.5f * (1.0f + Erf(x * 0.70710678f));

    /// <summary>φ(x), the standard normal density.</summary>
    public static double NormalPdf(double x) => 0.3989422804014327 * Math.Exp(-0.5 * x * x);
}
