using Tmca.Engine;
using Tmca.Model;
using Tmca.Training;
using Xunit;

namespace Tmca.Tests;

/// <summary>Recompute (issue 19): checkpointed ConvNeXt stages/blocks and BERT layers give the stored path's loss and
/// gradients bit for bit, with fewer live bytes when the backward starts.</summary>
public sealed class RecomputeTests
{
    private static (double Loss, Dictionary<string, double[]> Grads, long LiveAtBackward) Step(RecomputeMode mode)
    {
        var cfg = TmcaConfig.Nano;
        var m = new TmcaModel(cfg, new TmcaFlags(), seed: 3) { Recompute = mode };
        var batch = StepBenchmark.RandomBatch(cfg, 2, CpuBackend.Instance);
        using var scope = new TensorScope();
        long before = CpuArrayPool.ThreadLiveBytes;
        using var tape = new Tape();
        var o = m.Forward(batch, training: true);
        var l = m.Losses(o, batch);
                long live = CpuArrayPool.ThreadLiveBytes - before;
        tape.Backward(l.Total);
        var grads = m.Params.All.Where(p => p.Value.Grad is not null).ToDictionary(p => p.Name, p => p.Value.Grad!.ToDoubles());
        return (l.Total.Item(), grads, live);
    }

    [Fact]
    public void StagesAndBlocksMatchTheStoredPathBitForBitWithLessLiveMemory()
    {
        var none = Step(RecomputeMode.None);
        Assert.True(none.Grads.Count > 50);
        foreach (var mode in new[] { RecomputeMode.Stages, RecomputeMode.Blocks })
        {
            var r = Step(mode);
            Assert.Equal(BitConverter.DoubleToInt64Bits(none.Loss), BitConverter.DoubleToInt64Bits(r.Loss));
            Assert.Equal(none.Grads.Keys.Order(), r.Grads.Keys.Order());
            foreach (var (name, g) in none.Grads)
                Assert.True(g.SequenceEqual(r.Grads[name]), $"{mode}: gradient of {name} differs");
            Assert.True(r.LiveAtBackward < none.LiveAtBackward * 0.9, $"{mode}: {r.LiveAtBackward} live bytes vs {none.LiveAtBackward}");
        }
    }
}
