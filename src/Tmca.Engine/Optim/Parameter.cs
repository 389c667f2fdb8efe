namespace Tmca.Engine;

/// <summary>A named trainable tensor (or buffer) of a model. Scalars (0-d in the reference) get no weight decay.</summary>
public sealed class Parameter
{
    public string Name { get; }
    public Tensor Value { get; set; }
    /// <summary>Buffers (BatchNorm running statistics, counters) are saved and loaded but not trained.</summary>
    public bool IsBuffer { get; }
    /// <summary>A 0-dimensional scalar in the reference (stored as shape [1]); spec §9 exempts them from weight decay.</summary>
    public bool IsScalar { get; }

    public Parameter(string name, Tensor value, bool isBuffer = false, bool isScalar = false)
    {
        if (!value.Persistent) throw new ArgumentException($"parameter {name} must be a persistent tensor");
        Name = name; Value = value; IsBuffer = isBuffer; IsScalar = isScalar;
        value.Name = name;
        value.RequiresGrad = !isBuffer;
    }

    public override string ToString() => $"{Name} {Shape.Format(Value.Shape)}{(IsBuffer ? " (buffer)" : "")}";
}
