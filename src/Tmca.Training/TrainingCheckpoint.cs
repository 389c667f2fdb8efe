using System.Text.Json;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>Where a run stands after an epoch: enough to continue it exactly.</summary>
public sealed record TrainState(int Epoch, long Step, int OptimizerStep, string Rng, double BestValDice, int BestEpoch, int EpochsWithoutImprovement);

/// <summary>
/// A training checkpoint: the model checkpoint (spec keys, config and flags) plus the AdamW moments under
/// "optim.*" and the <see cref="TrainState"/> in the metadata. Written atomically after every epoch, so a crash
/// leaves the previous checkpoint intact and `--resume` continues as if nothing happened.
/// </summary>
public static class TrainingCheckpoint
{
    public static void Save(string path, TmcaModel model, AdamW optimizer, TrainState state, TrainOptions options)
    {
        var meta = new Dictionary<string, string>
        {
            ["train_state"] = JsonSerializer.Serialize(state),
            ["options"] = JsonSerializer.Serialize(options),
        };
        Checkpoint.Save(model, path, meta, optimizer.State().Select(kv => new KeyValuePair<string, Tensor>("optim." + kv.Key, kv.Value)));
    }

    public static (TmcaModel Model, TrainState State, Func<string, Tensor?> OptimizerState) Load(string path)
    {
        var f = SafetensorsFile.Open(path);
        if (!f.Metadata.TryGetValue("train_state", out var st))
            throw new InvalidDataException($"{path}: not a training checkpoint (no train_state metadata); use a run's checkpoints/last.safetensors");
        var state = JsonSerializer.Deserialize<TrainState>(st) ?? throw new InvalidDataException($"{path}: empty train_state");
        var model = Checkpoint.Load(path);
        return (model, state, name => f.Contains("optim." + name) ? f.Load("optim." + name) : null);
    }
}
