using Tmca.Data;
using Tmca.Engine;
using Tmca.Model;
using Tmca.Tests.Data;
using Tmca.Training;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>Recompute on the CUDA backend (the simulator in CI): the same kernels on the same inputs, so the loss and
/// every gradient are bit-identical to the stored path for stages and blocks.</summary>
[Collection("device")]
public class RecomputeDeviceTests
{
    [Fact]
    public void StagesAndBlocksMatchTheStoredPathBitForBitOnTheDevice()
    {
        var device = Device.Require();
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal: true, train: 8);
        var data = PreparedData.Load(d.Path, "per-id", 32, null, _ => { }, _ => { });
        var cfg = TestConfigs.Tiny;
        (double, Dictionary<string, double[]>) Run(RecomputeMode mode)
        {
            var model = new TmcaModel(cfg, new TmcaFlags(), seed: 1) { Recompute = mode };
            model.To(device);
            using var scope = new TensorScope();
            using var tape = new Tape();
            var batch = Batches.Make(data.Train.Samples, [0, 1], cfg.InChannels, device).ForModel();
            var l = model.Losses(model.Forward(batch, training: true), batch);
            tape.Backward(l.Total);
            return (l.Total.Item(), model.Params.All.Where(p => p.Value.Grad is not null).ToDictionary(p => p.Name, p => p.Value.Grad!.ToDoubles()));
        }
        var (loss, grads) = Run(RecomputeMode.None);
        Assert.True(grads.Count > 50);
        foreach (var mode in new[] { RecomputeMode.Stages, RecomputeMode.Blocks })
        {
            var (l, g) = Run(mode);
            Assert.Equal(BitConverter.DoubleToInt64Bits(loss), BitConverter.DoubleToInt64Bits(l));
            Assert.Equal(grads.Keys.Order(), g.Keys.Order());
            foreach (var (name, v) in grads) Assert.True(v.SequenceEqual(g[name]), $"{mode}: gradient of {name} differs");
        }
    }
}
