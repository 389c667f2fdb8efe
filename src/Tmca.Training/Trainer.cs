using System.Diagnostics;
using System.Text.Json;
using Tmca.Data;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>The outcome of a training run.</summary>
public sealed record TrainResult(string RunDir, string BestCheckpoint, double BestValDice, int BestEpoch, int EpochsRun, long Steps, double Seconds, bool StoppedEarly);

/// <summary>
/// The training loop: AdamW with a per-epoch cosine schedule (spec §9), validation Dice after every epoch, the
/// best checkpoint by validation Dice, early stopping, and a checkpoint after every epoch (model, optimiser
/// moments, RNG state and progress, written atomically) from which `--resume` continues exactly. Seeded runs
/// are deterministic on the CPU. The run folder holds options.json, steps.jsonl, epochs.jsonl, curves.png and
/// checkpoints/{last,best}.safetensors.
/// </summary>
public static class Trainer
{
    /// <summary>Consecutive skipped steps (--on-nonfinite skip) after which the run stops: skipping is for the odd bad
    /// batch, not for a run whose every step diverges.</summary>
    public const int MaxConsecutiveSkips = 20;

    /// <param name="interrupt">Ctrl-C/SIGTERM (the CLI passes <see cref="ProcessInterrupt.Listen"/>'s token, a test its
    /// own): once cancelled, the run writes a resumable checkpoint after the step in flight and throws
    /// <see cref="TrainingInterruptedException"/>.</param>
    /// <param name="resume">Continue the run folder from its checkpoint (one that stopped before its first checkpoint starts
    /// again).</param>
    /// <param name="resumeFrom">"last" or "previous": the run's checkpoint to continue from.</param>
    public static TrainResult Run(TrainOptions o, PreparedData data, string runDir, ITrainReporter ui, IBackend backend, CancellationToken interrupt,
                                  bool resume = false, string resumeFrom = "last")
    {
        string ckptDir = Path.Combine(runDir, "checkpoints"), best = Path.Combine(ckptDir, TrainingCheckpoint.Best);
        var log = new RunLog(runDir);
        var (model, opt, state) = (resume ? Resume(o, runDir, ui, backend, resumeFrom, log) : null) ?? Begin(o, runDir, ui, backend);

        var rng = Xoshiro.FromState(state.Rng);
        var schedule = new CosineSchedule(o.Lr, o.Epochs);
        var aug = o.Augment ? new Augmentation() : Augmentation.None;
        int n = data.Train.Count, B = o.BatchSize;
        int stepsPerEpoch = (n + B - 1) / B;
        long step = state.Step, skipped = state.SkippedSteps;
        var guarded = new GuardedStep(model, opt, o, data, runDir, backend, aug);
        var clock = Stopwatch.StartNew();
        bool stoppedEarly = false;
        int epoch = state.Epoch;
        // A checkpoint written inside an epoch continues that epoch where it stopped; every later epoch starts at its beginning.
        var partial = state.StepInEpoch > 0 ? new EpochSoFar(state.EpochRng!, state.StepInEpoch, state.EpochLossSum, state.EpochDiceSum) : null;
        while (epoch < o.Epochs && !(o.MaxSteps is { } cap && step >= cap))
        {
            epoch++;
            opt.Lr = schedule.At(epoch - 1);
            // The epoch's order comes from the RNG state at its start; a mid-epoch checkpoint keeps that state to rebuild it
            // (the run's own RNG has moved on since, and continues from where it stood).
            var order = Enumerable.Range(0, n).ToList();
            var at = partial ?? new EpochSoFar(rng.State, 0, 0, 0);
            (partial is null ? rng : Xoshiro.FromState(at.Rng)).Shuffle(order);
            partial = null;
            ui.BeginEpoch(epoch, o.Epochs, stepsPerEpoch);
            var epochClock = Stopwatch.StartNew();
            MemoryUse.ResetPeaks(backend);   // epochs.jsonl records each epoch's own peaks
            double lossSum = at.LossSum, diceSum = at.DiceSum;
            int s = at.Steps;
            for (; s < stepsPerEpoch && !(o.MaxSteps is { } c && step >= c); s++)
            {
                if (interrupt.IsCancellationRequested)
                    throw Interrupted(runDir, model, opt, o, state with
                    {
                        Step = step, OptimizerStep = opt.Step, Rng = rng.State, StepInEpoch = s, EpochRng = at.Rng,
                        EpochLossSum = lossSum, EpochDiceSum = diceSum, SkippedSteps = skipped,
                    });
                if (s > 0) HoldPoints.Reach("between-steps");
                var idx = order.Skip(s * B).Take(B).ToArray();
                if (idx.Length < 2 && s > 0) break;   // a lone last sample: BatchNorm needs more than one
                var t0 = Stopwatch.GetTimestamp();
                var v = guarded.Run(idx, step + 1, rng, state);
                HoldPoints.Reach("step");
                step++;
                double sec = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                if (!v.Finite)
                {
                    skipped++;
                    log.Step(new { step, epoch, lr = opt.Lr, skipped = true, nonfinite_gradients = Nan(v.NonFiniteGradients), loss = Nan(v.Total) });
                    ui.Warning($"step {step}: non-finite loss or gradients ({v.NonFiniteGradients:0} non-finite gradient elements); skipped ({skipped} so far)");
                    continue;
                }
                double trainDice = 1 - v.DiceLoss;
                lossSum += v.Total; diceSum += trainDice;
                log.Step(new { step, epoch, lr = opt.Lr, loss = v.Total, bce = v.Bce, dice_loss = v.DiceLoss, nce = Nan(v.Nce), pix = Nan(v.Pix), images_per_s = idx.Length / sec, seconds = sec });
                double perStep = epochClock.Elapsed.TotalSeconds / (s + 1);
                long remaining = (long)(o.Epochs - epoch) * stepsPerEpoch + (stepsPerEpoch - s - 1);
                if (o.MaxSteps is { } m2) remaining = Math.Min(remaining, m2 - step);
                ui.Step(epoch, s + 1, stepsPerEpoch, lossSum / (s + 1), diceSum / (s + 1), idx.Length / sec, TimeSpan.FromSeconds(perStep * remaining));
            }

            var val = Evaluator.Run(model, data.Val, Math.Max(B, 8));
            bool improved = val.Summary.DicePerImage > state.BestValDice;
            state = new TrainState(epoch, step, opt.Step, rng.State,
                improved ? val.Summary.DicePerImage : state.BestValDice, improved ? epoch : state.BestEpoch,
                improved ? 0 : state.EpochsWithoutImprovement + 1) { SkippedSteps = skipped };
            if (improved) Checkpoint.Save(model, best, new Dictionary<string, string> { ["epoch"] = epoch.ToString(), ["val_dice"] = val.Summary.DicePerImage.ToString("R") });
            TrainingCheckpoint.Save(ckptDir, model, opt, state, o);
            log.Epoch(new
            {
                epoch, step, lr = opt.Lr, train_loss = lossSum / Math.Max(1, s), val_dice = val.Summary.DicePerImage, val_dice_micro = val.Summary.DiceMicro,
                val_iou = val.Summary.IoUPerImage, best = improved, skipped_steps = skipped, seconds = epochClock.Elapsed.TotalSeconds,
                memory = MemoryJson(MemoryUse.Read(backend), backend),
            });
            try { Curves.Write(log, Path.Combine(runDir, "curves.png")); }
            catch (Exception e) when (e is not OutOfMemoryException) { ui.Warning($"curves.png not written ({e.Message})"); }
            ui.EndEpoch(epoch, val.Summary.DicePerImage, val.Summary.DiceMicro, improved, epochClock.Elapsed.TotalSeconds);
            if (o.Patience > 0 && state.EpochsWithoutImprovement >= o.Patience)
            {
                ui.Info($"early stop: validation Dice has not improved for {o.Patience} epochs (best {state.BestValDice:0.0000} at epoch {state.BestEpoch})");
                stoppedEarly = true;
                break;
            }
            if (interrupt.IsCancellationRequested && epoch < o.Epochs)
                throw new TrainingInterruptedException(runDir, $"interrupted after epoch {epoch} (step {step}); its checkpoint is written");
        }
        if (skipped > 0) ui.Warning($"{skipped} step(s) were skipped for non-finite values (steps.jsonl marks them \"skipped\")");
        FreeTrainingState(model, opt);
        return new TrainResult(runDir, best, state.BestValDice, state.BestEpoch, epoch, step, clock.Elapsed.TotalSeconds, stoppedEarly);
    }

    /// <summary>The epoch's peaks (training steps and validation): the process's resident set, and the tensor pool's live
    /// peak and cache — the CPU array pool, or the device pool on a device.</summary>
    private static object MemoryJson(MemoryUse m, IBackend backend) => new
    {
        peak_rss_mib = MemoryUse.MiB(m.PeakRssBytes), pool = backend is IDeviceMemory ? "device" : "cpu",
        peak_pool_mib = MemoryUse.MiB(m.PoolPeakBytes), pool_cached_mib = MemoryUse.MiB(m.PoolCachedBytes),
    };

    /// <summary>Where an epoch starts: the RNG state its order is shuffled from, and the steps, loss and Dice sums it
    /// already has (all zero unless a mid-epoch checkpoint is being continued).</summary>
    private sealed record EpochSoFar(string Rng, int Steps, double LossSum, double DiceSum);

    /// <summary>A new run: the seeded model (with any pretrained weights), a fresh optimiser, options.json written.</summary>
    private static (TmcaModel, AdamW, TrainState) Begin(TrainOptions o, string runDir, ITrainReporter ui, IBackend backend)
    {
        Directory.CreateDirectory(Path.Combine(runDir, "checkpoints"));
        var model = new TmcaModel(o.ResolveConfig(), o.Flags, seed: o.Seed) { Recompute = o.Recompute };
        if (o.ImageWeights is not null) ui.Info(HfCheckpoint.Load(model, o.ImageWeights).ToString());
        if (o.TextWeights is not null) ui.Info(HfCheckpoint.Load(model, o.TextWeights).ToString());
        model.To(backend);
        var opt = new AdamW(model.Params.Trainable, new AdamWConfig(o.Lr, WeightDecay: o.WeightDecay));
        var state = new TrainState(0, 0, 0, new Xoshiro((ulong)o.Seed).State, -1, 0, 0);
        AtomicFile.WriteAllText(Path.Combine(runDir, "options.json"), JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true }));
        ui.Info($"model: {model.Params.TrainableCount:N0} parameters ({(o.ConfigFile ?? o.Preset)}, {model.Config.ImageSize} px), flags {model.Flags.ToJson()}");
        return (model, opt, state);
    }

    /// <summary>A run continued from its checkpoint (the log cut back to it); null when it stopped before its first
    /// checkpoint — its leftovers are removed, and starting again is what an uninterrupted run would have done.</summary>
    private static (TmcaModel, AdamW, TrainState)? Resume(TrainOptions o, string runDir, ITrainReporter ui, IBackend backend, string resumeFrom, RunLog log)
    {
        string ckptDir = Path.Combine(runDir, "checkpoints");
        foreach (var line in TrainingCheckpoint.Recover(runDir)) ui.Info(line);
        if (!File.Exists(Path.Combine(ckptDir, TrainingCheckpoint.Last)) && !File.Exists(Path.Combine(ckptDir, TrainingCheckpoint.Previous)))
        {
            ui.Info($"{runDir} has no checkpoint yet (the run stopped during its first epoch): starting it again from the beginning");
            foreach (var f in new[] { log.StepsPath, log.EpochsPath }) File.Delete(f);
            if (Directory.Exists(ckptDir)) Directory.Delete(ckptDir, recursive: true);
            return null;
        }
        var (model, st, optState) = TrainingCheckpoint.LoadForResume(runDir, resumeFrom);
        model.Recompute = o.Recompute;   // not in the checkpoint: it changes no value
        model.To(backend);
        var opt = new AdamW(model.Params.Trainable, new AdamWConfig(o.Lr, WeightDecay: o.WeightDecay));
        try { opt.LoadState(optState, st.OptimizerStep); }
        catch (InvalidDataException e) { throw new CheckpointException(Path.Combine(ckptDir, resumeFrom + ".safetensors"), e.Message, e); }
        log.TruncateAfter(st.Epoch, st.Step);
        ui.Info(st.StepInEpoch > 0
            ? $"resuming {runDir} inside epoch {st.Epoch + 1} (step {st.Step}, {st.StepInEpoch} of its steps done)"
            : $"resuming {runDir} after epoch {st.Epoch} (step {st.Step}, best validation Dice {st.BestValDice:0.0000} at epoch {st.BestEpoch})");
        return (model, opt, st);
    }

    /// <summary>Writes the mid-epoch checkpoint of an interrupted run; returns the exception that stops it.</summary>
    private static TrainingInterruptedException Interrupted(string runDir, TmcaModel model, AdamW opt, TrainOptions o, TrainState at)
    {
        // At an epoch's first step the run stands on the epoch boundary: the RNG state before the shuffle is the state.
        if (at.StepInEpoch == 0) at = at with { Rng = at.EpochRng!, EpochRng = null };
        TrainingCheckpoint.Save(Path.Combine(runDir, "checkpoints"), model, opt, at, o);
        return new TrainingInterruptedException(runDir, $"interrupted at step {at.Step} (epoch {at.Epoch + 1}, {at.StepInEpoch} of its steps done); checkpoint written");
    }

    /// <summary>JSON has no NaN or Inf: null stands for them (and for the loss terms the flags turn off).</summary>
    private static double? Nan(double v) => double.IsFinite(v) ? v : null;

    /// <summary>
    /// Readies a run folder that a multi-run command (ablation rows, seeds) may have started before: true when it holds a
    /// last checkpoint to resume from; otherwise any leftovers of a run interrupted before its first checkpoint are removed
    /// and the run starts clean.
    /// </summary>
    public static bool PrepareRunFolder(string runDir)
    {
        bool resume = File.Exists(Path.Combine(runDir, "checkpoints", "last.safetensors"));
        if (!resume && Directory.Exists(runDir)) Directory.Delete(runDir, recursive: true);
        Directory.CreateDirectory(runDir);
        return resume;
    }

    /// <summary>The run is over and its checkpoints written: the parameters, their gradients and AdamW's moments go back
    /// to the backend now (not when the collector finds them), so the test evaluation that follows has the memory.</summary>
    private static void FreeTrainingState(TmcaModel model, AdamW opt)
    {
        opt.FreeState();
        foreach (var p in model.Params.All)
        {
            p.Value.Grad?.Dispose();
            p.Value.Grad = null;
            p.Value.Dispose();
        }
    }

    /// <summary>A step's logged values (NaN for loss terms the flags turn off) and its guard: the number of non-finite
    /// gradient elements (NaN when the loss itself was not finite); a step is finite when the guard is 0.</summary>
    public readonly record struct StepValues(double Total, double Bce, double DiceLoss, double Nce, double Pix, double NonFiniteGradients)
    {
        public bool Finite => NonFiniteGradients == 0 && double.IsFinite(Total);
    }

    /// <summary>
    /// One training step on an open tape: forward, every loss, backward, AdamW — all queued on the model's backend
    /// — then the loss terms for the log, the step's one device → host copy. With <paramref name="guard"/>, AdamW
    /// updates nothing if the loss or any gradient element is NaN or Inf (decided on the device; the caller then calls
    /// <see cref="AdamW.Unstep"/>).
    /// </summary>
    public static StepValues Step(TmcaModel model, AdamW opt, Tape tape, TmcaBatch batch, bool guard = false)
    {
        // set to none, not zeroed (PyTorch's zero_grad(set_to_none=True) at the loop's top, as the reference does): no
        // gradient lives through the forward pass; the last step's stay until here for a non-finite diagnosis to read
        opt.ReleaseGrads();
        var output = model.Forward(batch, training: true);
        var losses = model.Losses(output, batch);
        tape.Backward(losses.Total, keep: losses.Named().Select(n => n.Value));   // the loss terms are logged after it
        Tensor? g = null;
        if (guard) using (Tape.NoGrad()) g = Ops.Scale(Ops.Reshape(losses.Total, 1), 0.0);   // 0, or NaN for a non-finite loss
        opt.StepOnce(g);
        return LoggedValues(losses, g);
    }

    /// <summary>The loss terms for the log and the guard, in one device → host copy (the step's only read-back): the
    /// scalars are gathered on the device first.</summary>
    internal static StepValues LoggedValues(TmcaLosses l, Tensor? guard = null)
    {
        using var _ = Tape.NoGrad();
        var parts = new List<Tensor> { l.Total, l.Bce, l.Dice };
        if (l.Nce is not null) parts.Add(l.Nce);
        if (l.Pix is not null) parts.Add(l.Pix);
        if (guard is not null) parts.Add(guard);
        var v = Ops.Concat(parts.Select(p => Ops.Reshape(p, 1)).ToList(), 0).ToDoubles();
        int i = 3;
        double nce = l.Nce is null ? double.NaN : v[i++], pix = l.Pix is null ? double.NaN : v[i++];
        return new StepValues(v[0], v[1], v[2], nce, pix, guard is null ? 0 : v[i]);
    }
}
