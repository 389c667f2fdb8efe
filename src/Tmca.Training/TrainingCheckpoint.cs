using Tmca.Data;
using System.Text.Json;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>Where a run stands: enough to continue it exactly. Written after every epoch; an interrupted run
/// (Ctrl-C, SIGTERM) also writes one mid-epoch, with the position inside the epoch.</summary>
public sealed record TrainState(int Epoch, long Step, int OptimizerStep, string Rng, double BestValDice, int BestEpoch, int EpochsWithoutImprovement)
{
    /// <summary>Steps already done in epoch <see cref="Epoch"/> + 1 (0: the checkpoint sits on an epoch boundary).</summary>
    public int StepInEpoch { get; init; }
    /// <summary>The RNG state before that epoch's shuffle, from which its sample order is rebuilt.</summary>
    public string? EpochRng { get; init; }
    /// <summary>The epoch's running loss and Dice sums so far (its logged means continue from them).</summary>
    public double EpochLossSum { get; init; }
    public double EpochDiceSum { get; init; }
    /// <summary>Steps skipped so far because a loss or gradient was not finite (--on-nonfinite skip).</summary>
    public long SkippedSteps { get; init; }
}

/// <summary>
/// A training checkpoint: the model checkpoint (spec keys, config and flags) plus the AdamW moments under
/// "optim.*" and the <see cref="TrainState"/> in the metadata, with the checksum every safetensors file of ours
/// carries. A run keeps two: checkpoints/last.safetensors and the one before it, previous.safetensors. A new one
/// is written completely (atomically) as next.safetensors, then last becomes previous and next becomes last; a
/// process killed anywhere in that sequence leaves at least one intact checkpoint, which <see cref="Recover"/> finds.
/// </summary>
public static class TrainingCheckpoint
{
    public const string Last = "last.safetensors", Previous = "previous.safetensors", Next = "next.safetensors", Best = "best.safetensors";

    public static void Save(string checkpointDir, TmcaModel model, AdamW optimizer, TrainState state, TrainOptions options)
    {
        string last = Path.Combine(checkpointDir, Last), next = Path.Combine(checkpointDir, Next);
        var meta = new Dictionary<string, string>
        {
            ["train_state"] = JsonSerializer.Serialize(state),
            ["options"] = JsonSerializer.Serialize(options),
        };
        Checkpoint.Save(model, next, meta, optimizer.State().Select(kv => new KeyValuePair<string, Tensor>("optim." + kv.Key, kv.Value)));
        Rotate(checkpointDir);
    }

    /// <summary>next → last, the old last → previous.</summary>
    private static void Rotate(string checkpointDir)
    {
        string last = Path.Combine(checkpointDir, Last);
        if (File.Exists(last)) File.Move(last, Path.Combine(checkpointDir, Previous), overwrite: true);
        File.Move(Path.Combine(checkpointDir, Next), last);
    }

    /// <summary>
    /// Tidies a run folder a killed process left: partial files (AtomicFile's ".*.tmp") are removed, and a complete
    /// next.safetensors that was not yet renamed (killed between the two renames) becomes last. Returns what it did,
    /// for the log; empty when the folder was clean.
    /// </summary>
    public static List<string> Recover(string runDir)
    {
        var done = new List<string>();
        string dir = Path.Combine(runDir, "checkpoints");
        foreach (var d in new[] { runDir, dir }.Where(Directory.Exists))
            foreach (var tmp in Directory.EnumerateFiles(d, ".*.tmp"))
            {
                File.Delete(tmp);
                done.Add($"removed {Path.GetFileName(tmp)}, a partial file an interrupted write left");
            }
        string next = Path.Combine(dir, Next);
        if (File.Exists(next))
        {
            if (Intact(next) is null) { Rotate(dir); done.Add($"{Next} was complete but not yet renamed: it is now {Last}"); }
            else { File.Delete(next); done.Add($"removed {Next}, which was not complete"); }
        }
        return done;
    }

    /// <summary>Why this checkpoint cannot be used (null: it opens and its checksum matches).</summary>
    public static string? Intact(string path)
    {
        try
        {
            var f = SafetensorsFile.Open(path);
            f.Verify();
            return null;
        }
        catch (SafetensorsException e) { return e.Problem; }
    }

    /// <summary>Loads a run's training checkpoint (last, or previous with <paramref name="which"/> = "previous"). A corrupt or
    /// truncated file is refused before anything is loaded, with the intact checkpoint to use instead if there is one.</summary>
    public static (TmcaModel Model, TrainState State, Func<string, Tensor?> OptimizerState) LoadForResume(string runDir, string which = "last")
    {
        string dir = Path.Combine(runDir, "checkpoints");
        string path = which switch
        {
            "last" => Path.Combine(dir, Last),
            "previous" => Path.Combine(dir, Previous),
            _ => throw new ArgumentException($"--from '{which}': expected last or previous"),
        };
        if (!File.Exists(path)) throw new CheckpointException(path, "no checkpoint to resume from");
        try { return Load(path); }
        catch (SafetensorsException e)
        {
            string prev = Path.Combine(dir, Previous);
            string offer = which == "last" && File.Exists(prev) && Intact(prev) is null
                ? $"; the checkpoint before it, {prev} ({Describe(prev)}), is intact: continue from it with `tmca train --resume {runDir} --from previous`"
                : "; no intact earlier checkpoint exists in this run";
            throw new CheckpointException(path, $"refused, {e.Problem}{offer}", e);
        }
    }

    public static (TmcaModel Model, TrainState State, Func<string, Tensor?> OptimizerState) Load(string path)
    {
        var f = SafetensorsFile.Open(path);
        f.Verify();
        if (!f.Metadata.TryGetValue("train_state", out var st))
            throw new CheckpointException(path, "not a training checkpoint (no train_state metadata); use a run's checkpoints/last.safetensors");
        TrainState state;
        try { state = JsonSerializer.Deserialize<TrainState>(st) ?? throw new CheckpointException(path, "empty train_state"); }
        catch (JsonException e) { throw new CheckpointException(path, $"train_state is not valid ({e.Message})", e); }
        if (state.Rng is null || state.Epoch < 0 || state.Step < 0 || state.OptimizerStep < 0 || state.StepInEpoch < 0 || (state.StepInEpoch > 0 && state.EpochRng is null))
            throw new CheckpointException(path, "train_state is not valid (a value is missing or negative)");
        try { Xoshiro.FromState(state.Rng); if (state.EpochRng is not null) Xoshiro.FromState(state.EpochRng); }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException) { throw new CheckpointException(path, $"train_state's RNG state is not valid ({e.Message})", e); }
        var model = Checkpoint.Load(f);
        return (model, state, name => f.Contains("optim." + name) ? f.Load("optim." + name) : null);
    }

    /// <summary>"epoch 3, step 75" from a training checkpoint's metadata.</summary>
    public static string Describe(string path)
    {
        try
        {
            var s = JsonSerializer.Deserialize<TrainState>(SafetensorsFile.Open(path).Metadata["train_state"])!;
            return s.StepInEpoch > 0 ? $"epoch {s.Epoch + 1} in progress, step {s.Step}" : $"after epoch {s.Epoch}, step {s.Step}";
        }
        catch (Exception e) when (e is SafetensorsException or KeyNotFoundException or JsonException) { return "state unknown"; }
    }

    /// <summary>
    /// For eval and predict: a model checkpoint that is corrupt is refused with the intact alternative of the same run
    /// (best → last → previous), never loaded half.
    /// </summary>
    public static TmcaModel LoadModel(string path, IBackend? backend = null)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "checkpoint not found");
        try { return Checkpoint.Load(path, backend); }
        catch (SafetensorsException e)
        {
            string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
            string? alt = new[] { Best, Last, Previous }.Select(n => Path.Combine(dir, n))
                .FirstOrDefault(p => p != Path.GetFullPath(path) && File.Exists(p) && Intact(p) is null);
            throw new CheckpointException(path, $"refused, {e.Problem}" + (alt is null ? "" : $"; {alt} in the same folder is intact"), e);
        }
    }
}
