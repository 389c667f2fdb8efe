using System.Numerics;

namespace Tmca.Engine;

/// <summary>
/// The readable reference backend, in plain C#. Every kernel is written once, generically over the float type
/// (float for training, double for finite-difference gradient checks), in the op family's file
/// (<c>Cpu/*.cs</c>). Where speed matters a float fast path (SIMD, blocking, threads) sits beside the
/// generic version and is tested against it.
/// </summary>
public sealed partial class CpuBackend : IBackend
{
    public static readonly CpuBackend Instance = new();
    private CpuBackend() { }

    public string Name => "cpu";

    /// <summary>Fill uninitialised buffers with NaN (tests turn this on; also TMCA_POISON=1).</summary>
    public static bool PoisonUninitialized { get => CpuArrayPool.Poison; set => CpuArrayPool.Poison = value; }
    public DeviceKind Device => DeviceKind.Cpu;
    public void Synchronize() { }

    // ---- memory -------------------------------------------------------------------------------------

    public Storage Allocate(DType dtype, long count) => CpuArrayPool.Rent(dtype, count, zero: true);
    public Storage AllocateUninitialized(DType dtype, long count) => CpuArrayPool.Rent(dtype, count, zero: false);

    public void Upload(Array host, Tensor dst)
    {
        var d = Arr(dst);
        if (host.GetType().GetElementType() != d.GetType().GetGenericArguments()[0]) throw new ArgumentException($"upload of {host.GetType().Name} into a {dst.DType} tensor");
        if (host.Length < dst.Numel) throw new ArgumentException($"upload of {host.Length} values into {dst.Numel}");
        int bytes = checked((int)(dst.Numel * dst.DType.SizeOf()));
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(AsSpan(host))[..bytes].CopyTo(d.ByteSpan());
    }

    public Array Download(Tensor src)
    {
        var a = Array.CreateInstance(Arr(src).GetType().GetGenericArguments()[0], src.Numel);
        Download(src, a);
        return a;
    }

    public void Download(Tensor src, Array host)
    {
        int bytes = checked((int)(src.Numel * src.DType.SizeOf()));
        Arr(src).ByteSpan()[..bytes].CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(AsSpan(host)));
    }

    private static Span<byte> AsSpan(Array a) => a switch
    {
        float[] f => System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan()),
        double[] d => System.Runtime.InteropServices.MemoryMarshal.AsBytes(d.AsSpan()),
        long[] l => System.Runtime.InteropServices.MemoryMarshal.AsBytes(l.AsSpan()),
        byte[] b => b.AsSpan(),
        _ => throw new ArgumentException($"host arrays of {a.GetType().Name} are not tensor elements"),
    };

    public void Copy(Tensor src, Tensor dst)
    {
        if (src.DType != dst.DType || src.Numel != dst.Numel)
            throw new ArgumentException($"copy {src} → {dst}: dtype or size differ");
        int bytes = checked((int)(src.Numel * src.DType.SizeOf()));
        Arr(src).ByteSpan()[..bytes].CopyTo(Arr(dst).ByteSpan());
    }

    public void Fill(Tensor dst, double value)
    {
        switch (dst.DType)
        {
            case DType.F32: dst.Span<float>().Fill((float)value); break;
            case DType.F64: dst.Span<double>().Fill(value); break;
            case DType.I64: dst.Span<long>().Fill((long)value); break;
            case DType.U8: dst.Span<byte>().Fill((byte)value); break;
        }
    }

    public void Convert(Tensor src, Tensor dst)
    {
        if (src.Numel != dst.Numel) throw new ArgumentException("convert: sizes differ");
        var s = src.ToDoubles();
        switch (dst.DType)
        {
            case DType.F32: { var d = dst.Span<float>(); for (int i = 0; i < s.Length; i++) d[i] = (float)s[i]; break; }
            case DType.F64: s.CopyTo(dst.Span<double>()); break;
            case DType.I64: { var d = dst.Span<long>(); for (int i = 0; i < s.Length; i++) d[i] = (long)s[i]; break; }
            case DType.U8: { var d = dst.Span<byte>(); for (int i = 0; i < s.Length; i++) d[i] = (byte)s[i]; break; }
        }
    }

    // ---- helpers shared by the kernel files ---------------------------------------------------------

    internal static HostBuffer Arr(Tensor t) =>
        t.Storage is CpuStorage c ? c.Data : throw new InvalidOperationException($"{t} is not a CPU tensor");

    internal static HostArray<T> A<T>(Tensor t) where T : unmanaged =>
        Arr(t) as HostArray<T> ?? throw new InvalidOperationException($"{t} is {t.DType}, expected {typeof(T).Name}");

    internal static HostArray<T>? AOpt<T>(Tensor? t) where T : unmanaged => t is null ? null : A<T>(t);

    /// <summary>All float operands of a kernel must share one float type; returns it.</summary>
    internal static DType FloatType(params Tensor?[] ts)
    {
        DType? d = null;
        foreach (var t in ts)
        {
            if (t is null) continue;
            if (!t.DType.IsFloat()) throw new ArgumentException($"{t} is not a float tensor");
            if (d is null) d = t.DType;
            else if (d != t.DType) throw new ArgumentException($"mixed float types: {d} and {t.DType}");
        }
        return d ?? DType.F32;
    }

    internal static T C<T>(double v) where T : INumberBase<T> => T.CreateTruncating(v);
    internal static double D<T>(T v) where T : INumberBase<T> => double.CreateTruncating(v);
}

/// <summary>
/// Parallel loops that only fork when there is enough work to pay for it: handing work to another thread costs
/// tens of microseconds on a loaded VM, the price of a few hundred thousand simple operations.
/// </summary>
internal static class Par
{
    private const long MinParallelWork = 200_000;

    public static void For(int n, long workPerItem, Action<int> body)
    {
        if (n <= 1 || (long)n * workPerItem < MinParallelWork || Environment.ProcessorCount == 1)
        {
            for (int i = 0; i < n; i++) body(i);
            return;
        }
        Parallel.For(0, n, body);
    }

    /// <summary>
    /// Like <see cref="Ranges"/>, but each range produces a partial result, and the partials are returned in
    /// range order whatever order the threads finish in: float sums then come out the same on every run,
    /// which is what makes seeded training deterministic.
    /// </summary>
    public static List<T> RangesOrdered<T>(long n, long workPerItem, Func<long, long, T> body)
    {
        var parts = new List<(long Start, T Value)>();
        Ranges(n, workPerItem, (s, e) =>
        {
            var v = body(s, e);
            lock (parts) parts.Add((s, v));
        });
        return parts.OrderBy(p => p.Start).Select(p => p.Value).ToList();
    }

    /// <summary>Splits [0, n) into about one contiguous range per core.</summary>
    public static void Ranges(long n, long workPerItem, Action<long, long> body)
    {
        int parts = Environment.ProcessorCount;
        if (n * workPerItem < MinParallelWork || parts == 1 || n < parts) { body(0, n); return; }
        long chunk = (n + parts - 1) / parts;
        Parallel.For(0, parts, p =>
        {
            long s = p * chunk, e = Math.Min(n, s + chunk);
            if (s < e) body(s, e);
        });
    }
}
