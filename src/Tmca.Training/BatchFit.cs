using Tmca.Data;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>The device ran out of memory in a training step; the message says which batch would fit.</summary>
public sealed class DeviceMemoryExhaustedException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// After an out-of-memory error: the largest batch that fits at this image size, measured rather than guessed — one
/// step's forward, losses and backward (training) or one evaluation forward pass at batch 2 and at batch 4 (no
/// update; the BatchNorm statistics are put back), the device's peak use at each, and the straight line through them
/// (activations grow linearly with the batch).
/// </summary>
public static class BatchFit
{
    /// <summary>The error for an out-of-memory <paramref name="e"/> (an <see cref="IOutOfDeviceMemory"/>) met <paramref name="where"/>
    /// ("at step 3", "evaluating val"), after the failed batch's tensors went back: the bytes, the op, and the batch that fits.</summary>
    public static DeviceMemoryExhaustedException Exhausted(Exception e, string where, int batch, TmcaModel model, PreparedSplit split, bool training)
    {
        var oom = (IOutOfDeviceMemory)e;
        return new DeviceMemoryExhaustedException(
            $"out of device memory {where} (batch {batch}, {model.Config.ImageSize} px){(oom.Op is { } op ? $" in {op}" : "")}: " +
            $"{ByteSize.Format(oom.Requested)} requested, {ByteSize.Format(oom.Free)} free of {ByteSize.Format(oom.Total)}; " +
            Advice(model, split, (IDeviceMemory)model.Backend, oom.Total, training), e);
    }

    public static string Advice(TmcaModel model, PreparedSplit train, IDeviceMemory mem, long capacity, bool training = true)
    {
        var peaks = new List<(int Batch, long Peak)>();
        var buffers = new BufferSnapshot(model);
        buffers.Save();
        try
        {
            foreach (int b in new[] { 2, 4 }.Where(b => b <= train.Count))
            {
                mem.ReleaseCache();
                mem.ResetPeak();
                try
                {
                    using var scope = new TensorScope();
                    var batch = Batches.Make(train.Samples, Enumerable.Range(0, b).ToArray(), model.Config.InChannels, model.Backend).ForModel();
                    if (training)
                    {
                        using var tape = new Tape();
                        var losses = model.Losses(model.Forward(batch, training: true), batch);
                        tape.Backward(losses.Total);
                    }
                    // a training run evaluates at its batch too, and an evaluation pass (no tape: nothing freed before
                    // the pass ends) can peak above a step whose backward frees as it goes
                    using (var evalScope = new TensorScope())
                    using (Tape.NoGrad()) model.Forward(batch, training: false).Logits.ToArray<float>();
                }
                catch (Exception e) when (e is IOutOfDeviceMemory)
                {
                    if (b == 2) return $"even a batch of 2 does not fit at {model.Config.ImageSize} px{(training ? ": a smaller --preset or config is needed" : "; try --batch 1")}";
                    break;
                }
                peaks.Add((b, mem.PeakBytes));
            }
        }
        finally
        {
            buffers.Restore();
            foreach (var p in model.Params.Trainable) if (p.Value.Grad is { } g) g.Backend.Fill(g, 0);
            mem.ReleaseCache();
        }
        if (peaks.Count < 2)
            return $"batch 2 fits at {model.Config.ImageSize} px and batch 4 does not (measured: {(training ? "a step" : "an evaluation pass")} at batch 2 peaks at {Mib(peaks[0].Peak)}); rerun with --batch {(train.Count < 4 ? train.Count : 2)}";
        // 10 % headroom: a run holds more than the measured pass beside it (the evaluation batches, the batch being prepared)
        double perImage = (peaks[1].Peak - peaks[0].Peak) / 2.0, fixedPart = peaks[0].Peak - 2 * perImage;
        int largest = perImage <= 0 ? int.MaxValue : (int)Math.Floor((0.9 * capacity - fixedPart) / perImage);
        string measured = $"measured: {(training ? "a step" : "an evaluation pass")} peaks at {Mib(peaks[0].Peak)} at batch 2 and {Mib(peaks[1].Peak)} at batch 4";
        return largest >= (training ? 2 : 1)
            ? $"the largest batch that fits at {model.Config.ImageSize} px is {largest} ({measured}); rerun with --batch {largest}"
            : $"no batch of 2 or more fits at {model.Config.ImageSize} px ({measured})";
    }

    private static string Mib(long b) => ByteSize.Format(b);
}
