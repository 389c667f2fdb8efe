namespace Tmca.Data;

/// <summary>
/// xoshiro256** — a small, fast generator whose whole state is four numbers, so a training checkpoint can
/// store it and a resumed run draws exactly the numbers the uninterrupted run would have drawn
/// (System.Random cannot be saved).
/// </summary>
public sealed class Xoshiro
{
    private ulong _s0, _s1, _s2, _s3;

    public Xoshiro(ulong seed)
    {
        // SplitMix64 spreads the seed over the state (all-zero state is forbidden).
        ulong x = seed;
        ulong Next() { x += 0x9E3779B97F4A7C15; ulong z = x; z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31); }
        _s0 = Next(); _s1 = Next(); _s2 = Next(); _s3 = Next();
    }

    private Xoshiro() { }

    public ulong NextUInt64()
    {
        ulong result = RotL(_s1 * 5, 7) * 9, t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3; _s2 ^= t; _s3 = RotL(_s3, 45);
        return result;
    }

    private static ulong RotL(ulong x, int k) => (x << k) | (x >> (64 - k));

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();
    public int Next(int n) => (int)(NextDouble() * n);
    public int Next(int lo, int hi) => lo + Next(hi - lo);
    public double Normal() { double u = 1 - NextDouble(), v = NextDouble(); return Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v); }

    public void Shuffle<T>(IList<T> a)
    {
        for (int i = a.Count - 1; i > 0; i--) { int j = Next(i + 1); (a[i], a[j]) = (a[j], a[i]); }
    }

    public string State => $"{_s0:X16}{_s1:X16}{_s2:X16}{_s3:X16}";

    public static Xoshiro FromState(string state)
    {
        if (state.Length != 64) throw new FormatException($"RNG state must be 64 hex digits, got {state.Length}");
        return new Xoshiro
        {
            _s0 = Convert.ToUInt64(state[..16], 16), _s1 = Convert.ToUInt64(state[16..32], 16),
            _s2 = Convert.ToUInt64(state[32..48], 16), _s3 = Convert.ToUInt64(state[48..], 16),
        };
    }
}
