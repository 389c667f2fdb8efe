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

    [JsonIgnore] public bool Quiet { get; init; }

    public TmcaConfig ResolveConfig()
    {
        if (ConfigFile is null) return TmcaConfig.Preset(Preset);
        if (!File.Exists(ConfigFile)) throw new FileNotFoundException($"{ConfigFile}: config file not found", ConfigFile);
        try { return TmcaConfig.FromJson(StrictText.Read(ConfigFile, 1 << 20, "config file")); }
        catch (Exception e) when (e is ArgumentException or System.Text.Json.JsonException)
        {
            throw new InvalidDataException($"{ConfigFile}: {e.Message}", e);
        }
    }
}
