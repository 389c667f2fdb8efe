using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

/// <summary>Where the repository and the shared reference material are.</summary>
public static class Paths
{
    public static string RepoRoot { get; } = FindRoot();

    /// <summary>../shared next to the checkout, or $TMCA_SHARED.</summary>
    public static string Shared => Environment.GetEnvironmentVariable("TMCA_SHARED") is { Length: > 0 } s ? s : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public static string Oracle(string name) => Path.Combine(Shared, "oracles", name);
    /// <summary>A committed fixture: copied beside the test assembly, else in the repository's tests/fixtures.</summary>
    public static string Fixture(string name)
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "fixtures", name);
        return File.Exists(beside) ? beside : Path.Combine(RepoRoot, "tests", "fixtures", name);
    }

    /// <summary>Skips (with the reason) when a shared file is missing, e.g. on a machine without ../shared.</summary>
    public static string RequireShared(string relative)
    {
        var p = Path.Combine(Shared, relative);
        if (!File.Exists(p) && !Directory.Exists(p)) Assert.Skip($"shared reference material not found: {p} (set TMCA_SHARED)");
        return p;
    }

    private static string FindRoot()
    {
        if (Environment.GetEnvironmentVariable("TMCA_REPO") is { Length: > 0 } r) return r;
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            var d = new DirectoryInfo(start);
            while (d is not null)
            {
                if (File.Exists(Path.Combine(d.FullName, "Tmca.Native.sln"))) return d.FullName;
                d = d.Parent;
            }
        }
        return Directory.GetCurrentDirectory();
    }
}

/// <summary>Random tensors from a seeded generator.</summary>
public sealed class Rng(int seed)
{
    private readonly Random _r = new(seed);

    public double Normal()
    {
        double u1 = 1.0 - _r.NextDouble(), u2 = _r.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    public int Int(int lo, int hiInclusive) => _r.Next(lo, hiInclusive + 1);
    public double Uniform(double lo, double hi) => lo + (hi - lo) * _r.NextDouble();

    public Tensor F64(int[] shape, double scale = 1.0, bool grad = true)
    {
        var d = new double[Shape.Numel(shape)];
        for (int i = 0; i < d.Length; i++) d[i] = Normal() * scale;
        var t = Tensor.FromArray(d, shape);
        t.RequiresGrad = grad;
        return t;
    }

    public Tensor F32(int[] shape, double scale = 1.0, bool grad = false)
    {
        var d = new float[Shape.Numel(shape)];
        for (int i = 0; i < d.Length; i++) d[i] = (float)(Normal() * scale);
        var t = Tensor.FromArray(d, shape);
        t.RequiresGrad = grad;
        return t;
    }

    public Tensor Positive(int[] shape, double lo = 0.5, double hi = 2.0)
    {
        var d = new double[Shape.Numel(shape)];
        for (int i = 0; i < d.Length; i++) d[i] = Uniform(lo, hi);
        var t = Tensor.FromArray(d, shape);
        t.RequiresGrad = true;
        return t;
    }
}

/// <summary>
/// Finite-difference gradient check in float64: L = Σ f(inputs)·r for a fixed random r; the tape's gradient of L
/// against each input element is compared with the central difference (L(x+h) − L(x−h))/2h.
/// </summary>
public static class GradCheck
{
    public static void Check(Func<Tensor[], Tensor> f, Tensor[] inputs, int seed = 17, int maxPerInput = 48, double h = 1e-6, double atol = 1e-6, double rtol = 1e-5)
    {
        foreach (var x in inputs) { Assert.Equal(DType.F64, x.DType); x.Grad = null; }
        var rng = new Rng(seed);
        Tensor r;
        using (var tape = new Tape())
        {
            var y = f(inputs);
            r = rng.F64(y.Shape, grad: false);
            tape.Backward(y, seed: r);
        }
        var rv = r.Span<double>().ToArray();
        double Loss()
        {
            using var _ = Tape.NoGrad();
            var yt = f(inputs);
            var y = yt.Span<double>();   // native memory: yt must stay alive while the span is read
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += y[i] * rv[i];
            GC.KeepAlive(yt);
            return s;
        }
        int checkedCount = 0;
        for (int k = 0; k < inputs.Length; k++)
        {
            var x = inputs[k];
            if (!x.RequiresGrad) continue;
            var analytic = x.Grad?.Span<double>().ToArray() ?? new double[x.Numel];
            var data = x.Span<double>();
            var idx = Enumerable.Range(0, (int)x.Numel).ToList();
            if (idx.Count > maxPerInput) idx = idx.OrderBy(_ => rng.Uniform(0, 1)).Take(maxPerInput).ToList();
            foreach (var i in idx)
            {
                double orig = data[i];
                x.Span<double>()[i] = orig + h; double lp = Loss();
                x.Span<double>()[i] = orig - h; double lm = Loss();
                x.Span<double>()[i] = orig;
                double numeric = (lp - lm) / (2 * h);
                double err = Math.Abs(numeric - analytic[i]);
                Assert.True(err <= atol + rtol * Math.Abs(numeric),
                    $"input {k} {Shape.Format(x.Shape)} element {i}: analytic {analytic[i]:G10} vs numeric {numeric:G10} (|diff| {err:E2})");
                checkedCount++;
            }
        }
        Assert.True(checkedCount > 0, "nothing was checked");
    }
}

/// <summary>Runs the `tmca` command in-process and returns its exit code and what it wrote to stderr.</summary>
public static class Cli
{
    public static (int Code, string Err) Run(params string[] args)
    {
        var err = new StringWriter();
        var prevErr = Console.Error;
        Console.SetError(err);
        try { return (Tmca.Cli.CliApp.Run(args), err.ToString()); }
        finally { Console.SetError(prevErr); }
    }
}

/// <summary>The tiny model config the training, CLI and device tests share (seconds per run, not minutes).</summary>
public static class TestConfigs
{
    public static Tmca.Model.TmcaConfig Tiny => new()
    {
        ImageSize = 32, Dims = [8, 16, 16, 16], Depths = [1, 1, 1, 1], TextHidden = 16, TextLayers = 1, TextHeads = 2, TextIntermediate = 32,
        VocabSize = 30522, MaxPositions = 24, AlignDim = 8, HeadChannels = 2, CrossHeads = 2,
    };

    /// <summary>Writes the tiny config as dir/tiny.json and returns its path.</summary>
    public static string WriteTiny(string dir)
    {
        Directory.CreateDirectory(dir);
        var p = Path.Combine(dir, "tiny.json");
        File.WriteAllText(p, Tiny.ToJson());
        return p;
    }
}

/// <summary>The first failures of an oracle report, one line each, for an assertion message.</summary>
public static class OracleFailures
{
    public static string Describe(Tmca.Engine.Verification.OracleReport r) =>
        string.Join("\n", r.Items.Where(i => !i.Pass).Take(20).Select(i => $"{i.Name}: max|a-b| {i.MaxAbs:E2} relL2 {i.RelL2:E2} {i.Note}"));
}
