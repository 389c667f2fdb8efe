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
    public static TrainResult Run(TrainOptions o, PreparedData data, string runDir, ITrainReporter ui, IBackend backend, bool resume = false)
    {
        string ckptDir = Path.Combine(runDir, "checkpoints"), last = Path.Combine(ckptDir, "last.safetensors"), best = Path.Combine(ckptDir, "best.safetensors");
        TmcaModel model;
        AdamW opt;
        TrainState state;
        var log = new RunLog(runDir);
        if (resume)
        {
            if (!File.Exists(last)) throw new FileNotFoundException($"{last}: no checkpoint to resume from", last);
            var (m, st, optState) = TrainingCheckpoint.Load(last);
            model = m;
            model.To(backend);
            opt = new AdamW(model.Params.Trainable, new AdamWConfig(o.Lr, WeightDecay: o.WeightDecay));
            opt.LoadState(optState, st.OptimizerStep);
            state = st;
            log.TruncateAfter(st.Epoch, st.Step);
            ui.Info($"resuming {runDir} after epoch {st.Epoch} (step {st.Step}, best validation Dice {st.BestValDice:0.0000} at epoch {st.BestEpoch})");
        }
        else
        {
            Directory.CreateDirectory(ckptDir);
            model = new TmcaModel(o.ResolveConfig(), o.Flags, seed: o.Seed);
            if (o.ImageWeights is not null) ui.Info(HfCheckpoint.Load(model, o.ImageWeights).ToString());
            if (o.TextWeights is not null) ui.Info(HfCheckpoint.Load(model, o.TextWeights).ToString());
            model.To(backend);
            opt = new AdamW(model.Params.Trainable, new AdamWConfig(o.Lr, WeightDecay: o.WeightDecay));
            state = new TrainState(0, 0, 0, new Xoshiro((ulong)o.Seed).State, -1, 0, 0);
            AtomicFile.WriteAllText(Path.Combine(runDir, "options.json"), JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true }));
            ui.Info($"model: {model.Params.TrainableCount:N0} parameters ({(o.ConfigFile ?? o.Preset)}, {model.Config.ImageSize} px), flags {model.Flags.ToJson()}");
        }

        var rng = Xoshiro.FromState(state.Rng);
        var schedule = new CosineSchedule(o.Lr, o.Epochs);
        var aug = o.Augment ? new Augmentation() : Augmentation.None;
        int n = data.Train.Count, B = o.BatchSize;
        int stepsPerEpoch = (n + B - 1) / B;
        long step = state.Step;
        var clock = Stopwatch.StartNew();
        bool stoppedEarly = false;
        int epoch = state.Epoch;
        while (epoch < o.Epochs && !(o.MaxSteps is { } cap && step >= cap))
        {
            epoch++;
            opt.Lr = schedule.At(epoch - 1);
            var order = Enumerable.Range(0, n).ToList();
            rng.Shuffle(order);
            ui.BeginEpoch(epoch, o.Epochs, stepsPerEpoch);
            var epochClock = Stopwatch.StartNew();
            double lossSum = 0, diceSum = 0;
            int s = 0;
            for (; s < stepsPerEpoch && !(o.MaxSteps is { } c && step >= c); s++)
            {
                var idx = order.Skip(s * B).Take(B).ToArray();
                if (idx.Length < 2 && s > 0) break;   // a lone last sample: BatchNorm needs more than one
                var t0 = Stopwatch.GetTimestamp();
                double loss, bce, dice, nce = double.NaN, pix = double.NaN, trainDice;
                using (var scope = new TensorScope())
                using (var tape = new Tape())
                {
                    var batch = Batches.Make(data.Train.Samples, idx, model.Config.InChannels, backend, aug, rng).ForModel();
                    (loss, bce, dice, nce, pix) = Step(model, opt, tape, batch);
                    trainDice = 1 - dice;
                }
                if (!double.IsFinite(loss)) throw new InvalidOperationException($"the loss became {loss} at step {step + 1}; lower the learning rate (--lr)");
                step++;
                double sec = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                lossSum += loss; diceSum += trainDice;
                log.Step(new { step, epoch, lr = opt.Lr, loss, bce, dice_loss = dice, nce = Nan(nce), pix = Nan(pix), images_per_s = idx.Length / sec, seconds = sec });
                double perStep = epochClock.Elapsed.TotalSeconds / (s + 1);
                long remaining = (long)(o.Epochs - epoch) * stepsPerEpoch + (stepsPerEpoch - s - 1);
                if (o.MaxSteps is { } m2) remaining = Math.Min(remaining, m2 - step);
                ui.Step(epoch, s + 1, stepsPerEpoch, lossSum / (s + 1), diceSum / (s + 1), idx.Length / sec, TimeSpan.FromSeconds(perStep * remaining));
            }

            var val = Evaluator.Run(model, data.Val, Math.Max(B, 8));
            bool improved = val.Summary.DicePerImage > state.BestValDice;
            state = state with
            {
                Epoch = epoch, Step = step, OptimizerStep = opt.Step, Rng = rng.State,
                BestValDice = improved ? val.Summary.DicePerImage : state.BestValDice,
                BestEpoch = improved ? epoch : state.BestEpoch,
                EpochsWithoutImprovement = improved ? 0 : state.EpochsWithoutImprovement + 1,
            };
            if (improved) Checkpoint.Save(model, best, new Dictionary<string, string> { ["epoch"] = epoch.ToString(), ["val_dice"] = val.Summary.DicePerImage.ToString("R") });
            TrainingCheckpoint.Save(last, model, opt, state, o);
            log.Epoch(new
            {
                epoch, step, lr = opt.Lr, train_loss = lossSum / Math.Max(1, s), val_dice = val.Summary.DicePerImage, val_dice_micro = val.Summary.DiceMicro,
                val_iou = val.Summary.IoUPerImage, best = improved, seconds = epochClock.Elapsed.TotalSeconds,
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
        }
        return new TrainResult(runDir, best, state.BestValDice, state.BestEpoch, epoch, step, clock.Elapsed.TotalSeconds, stoppedEarly);
    }

    private static double? Nan(double v) => double.IsNaN(v) ? null : v;

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

    /// <summary>
    /// One training step on an open tape: forward, every loss, backward, AdamW — all queued on the model's backend
    /// — then the loss terms for the log, the step's one device → host copy.
    /// </summary>
    public static (double Total, double Bce, double Dice, double Nce, double Pix) Step(TmcaModel model, AdamW opt, Tape tape, TmcaBatch batch)
    {
        var output = model.Forward(batch, training: true);
        var losses = model.Losses(output, batch);
        opt.ZeroGrad();
        tape.Backward(losses.Total);
        opt.StepOnce();
        return LoggedValues(losses);
    }

    /// <summary>The loss terms for the log, in one device → host copy (the step's only read-back): the scalars are
    /// gathered on the device first. NaN for the terms the flags turn off.</summary>
    internal static (double Total, double Bce, double Dice, double Nce, double Pix) LoggedValues(TmcaLosses l)
    {
        using var _ = Tape.NoGrad();
        var parts = new List<Tensor> { l.Total, l.Bce, l.Dice };
        if (l.Nce is not null) parts.Add(l.Nce);
        if (l.Pix is not null) parts.Add(l.Pix);
        var v = Ops.Concat(parts.Select(p => Ops.Reshape(p, 1)).ToList(), 0).ToDoubles();
        int i = 3;
        double nce = l.Nce is null ? double.NaN : v[i++], pix = l.Pix is null ? double.NaN : v[i];
        return (v[0], v[1], v[2], nce, pix);
    }
}
