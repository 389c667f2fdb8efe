using Xunit;

namespace Tmca.Tests;

/// <summary>Layers point one way: Cli → Training → Model, Data → Engine ← Cuda. Checked on the built assemblies.</summary>
public class LayeringTests
{
    private static string[] References(Type t) => t.Assembly.GetReferencedAssemblies().Select(a => a.Name!).Where(n => n.StartsWith("Tmca.")).Order().ToArray();

    [Fact]
    public void DataDependsOnTheEngineAlone() => Assert.Equal(["Tmca.Engine"], References(typeof(Tmca.Data.Batch)));

    [Fact]
    public void ModelDependsOnTheEngineAlone() => Assert.Equal(["Tmca.Engine"], References(typeof(Tmca.Model.TmcaModel)));

    [Fact]
    public void CudaDependsOnTheEngineAlone() => Assert.Equal(["Tmca.Engine"], References(typeof(Tmca.Cuda.CudaBackend)));

    [Fact]
    public void EngineDependsOnNoOtherLayer() => Assert.Empty(References(typeof(Tmca.Engine.Tensor)));
}
