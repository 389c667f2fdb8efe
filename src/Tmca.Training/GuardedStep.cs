using Tmca.Data;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>
/// One step of the training loop with everything that can go wrong in it handled: the batch is built, the step runs
/// with the non-finite guard (AdamW updates nothing on a NaN/Inf; the BatchNorm statistics the forward pass moved
/// are put back), and then
/// - a non-finite step is skipped and counted (--on-nonfinite skip, at most <see cref="Trainer.MaxConsecutiveSkips"/> in a
///   row), or diagnosed, saved for `tmca replay` and reported (<see cref="NonFiniteException"/>);
/// - running out of device memory is reported with the largest batch that fits (<see cref="DeviceMemoryExhaustedException"/>).
/// </summary>
internal sealed class GuardedStep(TmcaModel model, AdamW opt, TrainOptions o, PreparedData data, string runDir, IBackend backend, Augmentation aug)
{
    private readonly BufferSnapshot _buffers = new(model);
    private int _consecutiveSkips;

    /// <summary>Runs step number <paramref name="step"/> (1-based) on the samples <paramref name="idx"/>; the returned
    /// values are not finite when the step was skipped.</summary>
    public Trainer.StepValues Run(int[] idx, long step, Xoshiro rng, TrainState state)
    {
        Trainer.StepValues v = default;
        Exception? outOfMemory = null;
        using (var scope = new TensorScope())
        {
            var batch = Batches.Make(data.Train.Samples, idx, model.Config.InChannels, backend, aug, rng).ForModel();
            IStepInspector.Announce(step, batch.Image);   // test hooks only (fault injection); null in normal runs
            _buffers.Save();
            try
            {
                using var tape = new Tape();
                v = Trainer.Step(model, opt, tape, batch, guard: true);
            }
            catch (Exception e) when (e is IOutOfDeviceMemory && backend is IDeviceMemory) { outOfMemory = e; }
            if (outOfMemory is null)
            {
                if (v.Finite) _consecutiveSkips = 0;
                else NonFinite(batch, idx, step, state);
            }
        }
        // outside the step's scope: its tensors are back in the pool before the batch sizes are measured
        if (outOfMemory is not null) OutOfMemory(outOfMemory, step, idx.Length);
        return v;
    }

    private void NonFinite(TmcaBatch batch, int[] idx, long step, TrainState state)
    {
        opt.Unstep();         // the device left every parameter and moment as they were,
        _buffers.Restore();   // and the running statistics the forward pass moved go back
        if (o.OnNonFinite == "skip" && ++_consecutiveSkips <= Trainer.MaxConsecutiveSkips) return;
        var ids = idx.Select(i => data.Train.Samples[i].Source.Id).ToList();
        var diagnosis = NonFiniteDiagnosis.Run(model, opt, batch, step, ids, _buffers);
        string replay = NonFiniteDiagnosis.SaveReplay(runDir, step, model, opt, batch, o, state with { Step = step - 1, OptimizerStep = opt.Step }, diagnosis);
        throw new NonFiniteException(step, diagnosis +
            (o.OnNonFinite == "skip" ? $" ({Trainer.MaxConsecutiveSkips} steps in a row were skipped)" : "") +
            $"; the step's inputs are saved for `tmca replay {replay}`; lower the learning rate (--lr), or pass --on-nonfinite skip to skip such steps");
    }

    private void OutOfMemory(Exception e, long step, int batch)
    {
        _buffers.Restore();
        throw BatchFit.Exhausted(e, $"at step {step}", batch, model, data.Train, training: true);
    }
}
