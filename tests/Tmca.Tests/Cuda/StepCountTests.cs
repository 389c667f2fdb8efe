using Tmca.Data;
using Tmca.Engine;
using Tmca.Model;
using Tmca.Tests.Data;
using Tmca.Training;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>A training step on the CUDA backend queues device work only: forward, every loss, backward and AdamW run
/// without waiting for the host, and the one device → host copy is the loss terms for the log.</summary>
[Collection("device")]
public class StepCountTests
{
    [Fact]
    public void ATrainingStepReadsBackOnlyTheLossAndItsGuard()
    {
        var device = Device.Require();
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal: true, train: 8);
        var data = PreparedData.Load(d.Path, "per-id", 32, null, _ => { }, _ => { });
        var cfg = TestConfigs.Tiny;
        var model = new TmcaModel(cfg, new TmcaFlags(), seed: 1);   // every TMCA loss on
        model.To(device);
        var opt = new AdamW(model.Params.Trainable, new AdamWConfig(1e-3));
        var launchesPerStep = new List<long>();
        foreach (bool guard in new[] { false, false, true, true })
        {
            using var scope = new TensorScope();
            using var tape = new Tape();
            var batch = Batches.Make(data.Train.Samples, [0, 1, 2, 3], cfg.InChannels, device).ForModel();
            long d2h = device.DeviceToHostCopies, launches = device.Launches;
            var v = Trainer.Step(model, opt, tape, batch, guard);
            Assert.Equal(1, device.DeviceToHostCopies - d2h);   // the non-finite guard rides in the same read-back
            Assert.True(double.IsFinite(v.Total) && double.IsFinite(v.Nce) && double.IsFinite(v.Pix) && v.Finite, $"{v}");
            Assert.True(device.Launches - launches > 100, $"{device.Launches - launches} launches");
            launchesPerStep.Add(device.Launches - launches);
        }
        // The guard costs three launches — 0·loss, the count, its slot in the gathered read-back — and nothing else.
        Assert.Equal(launchesPerStep[1] + 3, launchesPerStep[3]);
    }
}
