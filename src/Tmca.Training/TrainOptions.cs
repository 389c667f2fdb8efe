using Tmca.Engine;
using System.Text.Json.Serialization;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>Everything a training run needs; saved as options.json in the run folder (resume reads it back).</summary>
public sealed record TrainOptions
{
    /// <summary>Dataset folder; null trains on the embedded synthetic dataset.</summary>
    public string? Data { get; init; }
    public string? Layout { get; init; }
    public string Preset { get; init; } = "small";
    /// <summary>A config JSON file (spec keys) instead of a preset.</summary>
    public string? ConfigFile { get; init; }
    public TmcaFlags Flags { get; init; } = new();
    public int Epochs { get; init; } = 16;
    /// <summary>Optional cap on optimiser steps (the cosine schedule still runs per epoch).</summary>
    public int? MaxSteps { get; init; }
    public int BatchSize { get; init; } = 8;
    public double Lr { get; init; } = 3e-4;
    public double WeightDecay { get; init; } = 0.01;
    public int Seed { get; init; } = 1;
    public string Device { get; init; } = "cpu";
    /// <summary>Stop when validation Dice has not improved for this many epochs (0 = never).</summary>
    public int Patience { get; init; } = 8;
    public bool Augment { get; init; } = true;
    /// <summary>Pretrained Hugging Face weights (safetensors) loaded before training.</summary>
    public string? ImageWeights { get; init; }
    public string? TextWeights { get; init; }
    public string Vocab { get; init; } = "";
    /// <summary>A NaN or Inf in the loss or a gradient: "stop" (diagnose, save the step for `tmca replay`, exit) or "skip"
    /// (leave the parameters as they were, count the step, go on).</summary>
    public string OnNonFinite { get; init; } = "stop";
    /// <summary>Encoder activations recomputed in the backward (issue 19). Recorded with the run, but it changes no result
    /// (bit-identical), so a resume may change it.</summary>
    [JsonConverter(typeof(JsonStringEnumConverter<RecomputeMode>))]
    public RecomputeMode Recompute { get; init; } = RecomputeMode.None;

    [JsonIgnore] public bool Quiet { get; init; }

    public TmcaConfig ResolveConfig()
    {
        if (ConfigFile is null) return TmcaConfig.Preset(Preset);
        try { return TmcaConfig.FromJson(StrictText.Read(ConfigFile, 1 << 20, "config file")); }
        catch (Exception e) when (e is InvalidDataException or System.Text.Json.JsonException)
        {
            throw new InputFileException(ConfigFile, e.Message, e);
        }
    }

    /// <summary>A run's options.json (what `--resume` continues with), checked like every input file.</summary>
    public static TrainOptions Load(string path)
    {
        try
        {
            var o = System.Text.Json.JsonSerializer.Deserialize<TrainOptions>(StrictText.Read(path, 1 << 20, "run options file"))
                    ?? throw new InputFileException(path, "empty options");
            if (o.Flags is null || o.Preset is null || o.Device is null || o.OnNonFinite is not ("stop" or "skip") || o.Epochs < 1 || o.BatchSize < 2
                || !double.IsFinite(o.Lr) || o.Lr <= 0 || !double.IsFinite(o.WeightDecay))
                throw new InputFileException(path, "not a valid run options file (a value is missing or out of range)");
            o.Flags.Effective();
            if (o.ConfigFile is null && !TmcaConfig.IsPreset(o.Preset)) throw new InputFileException(path, $"unknown preset '{o.Preset}' (nano, small, tiny)");
            return o;
        }
        catch (Exception e) when (e is InvalidDataException or System.Text.Json.JsonException)
        {
            throw new InputFileException(path, $"not a valid run options file ({e.Message})", e);
        }
    }
}
