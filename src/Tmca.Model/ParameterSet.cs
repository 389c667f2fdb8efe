using Tmca.Engine;

namespace Tmca.Model;

/// <summary>How a fresh parameter is initialised (Hugging Face conventions, spec §1/§3).</summary>
public readonly record struct Init(Init.Kinds Kind, double Value = 0)
{
    public enum Kinds { Normal, Constant }
    public static Init Normal(double std = 0.02) => new(Kinds.Normal, std);
    public static Init Constant(double v) => new(Kinds.Constant, v);
    public static readonly Init Zeros = Constant(0), Ones = Constant(1);
}

/// <summary>
/// Every parameter and buffer of a model, in registration order, under its checkpoint key. Modules register
/// what they own at construction and keep the <see cref="Parameter"/> handles; forward passes read
/// <c>.Value</c>, so loading a checkpoint or moving to a device swaps tensors without rebuilding modules.
/// </summary>
public sealed class ParameterSet
{
    private readonly List<Parameter> _list = new();
    private readonly Dictionary<string, Parameter> _byName = new();
    private readonly Random _rng;
    public DType DType { get; }
    public IBackend Backend { get; private set; } = CpuBackend.Instance;

    private readonly bool _initialize;

    /// <param name="initialize">false leaves every tensor zero (for counting, or when a checkpoint will be loaded anyway).</param>
    public ParameterSet(int seed, DType dtype = DType.F32, bool initialize = true) { _rng = new Random(seed); DType = dtype; _initialize = initialize; }

    public IReadOnlyList<Parameter> All => _list;
    public IEnumerable<Parameter> Trainable => _list.Where(p => !p.IsBuffer);
    public long TrainableCount => Trainable.Sum(p => p.Value.Numel);
    public bool Contains(string name) => _byName.ContainsKey(name);
    public Parameter this[string name] => _byName.TryGetValue(name, out var p) ? p : throw new KeyNotFoundException($"no parameter '{name}'");

    public Parameter Add(string name, int[] shape, Init init, bool scalar = false)
    {
        var t = Tensor.Zeros(shape, DType, CpuBackend.Instance, persistent: true);
        Fill(t, init);
        return Register(new Parameter(name, t, isScalar: scalar));
    }

    public Parameter AddBuffer(string name, int[] shape, Init init, DType? dtype = null)
    {
        var t = Tensor.Zeros(shape, dtype ?? DType, CpuBackend.Instance, persistent: true);
        Fill(t, init);
        return Register(new Parameter(name, t, isBuffer: true));
    }

    private Parameter Register(Parameter p)
    {
        if (!_byName.TryAdd(p.Name, p)) throw new InvalidOperationException($"parameter '{p.Name}' registered twice");
        _list.Add(p);
        return p;
    }

    private void Fill(Tensor t, Init init)
    {
        if (!_initialize) return;
        if (init.Kind == Init.Kinds.Constant) { t.Backend.Fill(t, init.Value); return; }
        var v = new double[t.Numel];
        for (int i = 0; i < v.Length; i++)
        {
            double u1 = 1.0 - _rng.NextDouble(), u2 = _rng.NextDouble();
            v[i] = init.Value * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        HostTensor.Upload(v, t);
    }

    /// <summary>Moves every tensor (and drops gradients) to another backend.</summary>
    public void To(IBackend backend)
    {
        if (backend == Backend) return;
        foreach (var p in _list)
        {
            var moved = p.Value.To(backend, persistent: true);
            moved.Name = p.Name;
            moved.RequiresGrad = !p.IsBuffer;
            p.Value = moved;
        }
        Backend = backend;
    }

    /// <summary>Replaces a parameter's values (same shape and element count) with a tensor read from <paramref name="origin"/>
    /// (a file): a mismatch is bad data (<see cref="InvalidDataException"/>) that names the file and the key.</summary>
    public void Assign(string name, Tensor source, string origin)
    {
        var p = this[name];
        if (!Shape.Equal(p.Value.Shape, source.Shape) && p.Value.Numel != source.Numel)
            throw new InvalidDataException($"{origin}: '{name}' has shape {Shape.Format(source.Shape)}, the model needs {Shape.Format(p.Value.Shape)}");
        if (!Shape.Equal(p.Value.Shape, source.Shape) && !(p.Value.Numel == 1 && source.Numel == 1))
            throw new InvalidDataException($"{origin}: '{name}' has shape {Shape.Format(source.Shape)}, the model needs {Shape.Format(p.Value.Shape)}");
        var src = source.DType == p.Value.DType ? source : source.DType.IsFloat() ? source.ToDType(p.Value.DType) : throw new InvalidDataException($"{origin}: '{name}' is {source.DType}, the model needs {p.Value.DType}");
        p.Value.Backend.Upload(src.Backend.Download(src), p.Value);
    }

    public void ZeroGrad()
    {
        foreach (var p in _list)
            if (p.Value.Grad is { } g) g.Backend.Fill(g, 0);
    }
}
