using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>
/// Copies of a model's buffers (BatchNorm running statistics), taken before each guarded step: the forward pass
/// updates them as it runs, so a step the guard skips must put them back, or one NaN batch would poison every later
/// evaluation. A few kilobytes, copied on the device.
/// </summary>
public sealed class BufferSnapshot
{
    private readonly List<(Tensor Live, Tensor Copy)> _pairs;

    public BufferSnapshot(TmcaModel model)
    {
        _pairs = model.Params.All.Where(p => p.IsBuffer).Select(p => (p.Value, Tensor.ZerosLike(p.Value, persistent: true))).ToList();
    }

    public void Save() { foreach (var (live, copy) in _pairs) live.Backend.Copy(live, copy); }
    public void Restore() { foreach (var (live, copy) in _pairs) live.Backend.Copy(copy, live); }
}
