using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tmca.Model;

/// <summary>Model sizes (spec §1). JSON keys are the spec's snake_case names.</summary>
public sealed record TmcaConfig
{
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 128;
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 3;
    [JsonPropertyName("dims")] public int[] Dims { get; init; } = [24, 48, 96, 192];
    [JsonPropertyName("depths")] public int[] Depths { get; init; } = [1, 1, 2, 1];
    [JsonPropertyName("text_hidden")] public int TextHidden { get; init; } = 64;
    [JsonPropertyName("text_layers")] public int TextLayers { get; init; } = 2;
    [JsonPropertyName("text_heads")] public int TextHeads { get; init; } = 2;
    [JsonPropertyName("text_intermediate")] public int TextIntermediate { get; init; } = 128;
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 30522;
    [JsonPropertyName("max_positions")] public int MaxPositions { get; init; } = 64;
    [JsonPropertyName("text_len")] public int TextLen { get; init; } = 24;
    [JsonPropertyName("token_outs")] public int[] TokenOuts { get; init; } = [24, 12, 9];
    [JsonPropertyName("align_dim")] public int AlignDim { get; init; } = 64;
    [JsonPropertyName("head_channels")] public int HeadChannels { get; init; } = 12;
    [JsonPropertyName("self_heads")] public int SelfHeads { get; init; } = 1;
    [JsonPropertyName("cross_heads")] public int CrossHeads { get; init; } = 4;

    public static TmcaConfig Nano => new()
    {
        ImageSize = 64, Dims = [16, 32, 64, 128], Depths = [1, 1, 1, 1], TextHidden = 32, TextLayers = 2, TextHeads = 2,
        TextIntermediate = 64, MaxPositions = 32, AlignDim = 32, HeadChannels = 8,
    };

    public static TmcaConfig Small => new();

    /// <summary>Paper scale: ConvNeXt-T image encoder and a CXR-BERT-sized text encoder.</summary>
    public static TmcaConfig Tiny => new()
    {
        ImageSize = 224, Dims = [96, 192, 384, 768], Depths = [3, 3, 9, 3], TextHidden = 768, TextLayers = 12, TextHeads = 12,
        TextIntermediate = 3072, MaxPositions = 512, AlignDim = 256, HeadChannels = 24,
    };

    public static TmcaConfig Preset(string name) => name.ToLowerInvariant() switch
    {
        "nano" => Nano,
        "small" => Small,
        "tiny" => Tiny,
        _ => throw new ArgumentException($"unknown preset '{name}' (nano, small, tiny)"),
    };

    public static bool IsPreset(string name) => name.ToLowerInvariant() is "nano" or "small" or "tiny";

    /// <summary>Throws <see cref="InvalidDataException"/> with the offending key when the sizes do not fit together (a
    /// config comes from a file or a checkpoint: its reader adds the path).</summary>
    public TmcaConfig Validated()
    {
        // DoesNotReturnIf: after Need(x is not null, …) the compiler knows x is not null (JSON can set an array to null)
        void Need([DoesNotReturnIf(false)] bool ok, string what) { if (!ok) throw new InvalidDataException($"config: {what}"); }
        Need(Dims is not null && Depths is not null && TokenOuts is not null, "dims, depths and token_outs cannot be null");
        Need(Dims.Length == 4 && Depths.Length == 4, "dims and depths need 4 entries");
        Need(Dims.All(d => d > 0) && Depths.All(d => d >= 0), "dims must be positive and depths non-negative");
        Need(ImageSize % 32 == 0 && ImageSize > 0, $"image_size {ImageSize} must be a positive multiple of 32");
        Need(InChannels > 0, "in_channels must be positive");
        const int Big = 1 << 20;   // beyond any real model; keeps sizes far from int overflow
        Need(new[] { TextHidden, TextHeads, TextIntermediate, VocabSize, MaxPositions, AlignDim, HeadChannels, SelfHeads, CrossHeads, InChannels, ImageSize }
                 .All(v => v is > 0 and <= Big), "text_hidden, text_heads, text_intermediate, vocab_size, max_positions, align_dim, head_channels, self_heads, cross_heads, in_channels and image_size must be in 1..1048576");
        Need(Dims.All(d => d <= 65536) && Depths.All(d => d <= 1024) && TextLayers is >= 0 and <= 1024, "dims ≤ 65536, depths and text_layers ≤ 1024");
        Need(TextLen >= 2, "text_len must be at least 2 ([CLS] and [SEP])");
        Need(TextHidden % TextHeads == 0, $"text_hidden {TextHidden} must divide into text_heads {TextHeads}");
        Need(TokenOuts.Length == 3 && TokenOuts.All(t => t is > 0 and <= Big), "token_outs needs 3 entries in 1..1048576");
        Need(TextLen <= MaxPositions, $"text_len {TextLen} exceeds max_positions {MaxPositions}");
        for (int k = 0; k < 3; k++)
        {
            Need(Dims[3 - k] % SelfHeads == 0, $"dims[{3 - k}] must divide into self_heads");
            Need(Dims[3 - k] % CrossHeads == 0, $"dims[{3 - k}] must divide into cross_heads");
        }
        return this;
    }

    /// <summary>A lower bound on the parameter elements this config builds (embeddings, attention and MLP weights,
    /// ConvNeXt blocks): a checkpoint whose tensors hold fewer elements cannot be this model, whatever its metadata says.</summary>
    public double MinimumElements(bool withText)
    {
        double h = TextHidden, n = withText ? (double)VocabSize * h + (double)MaxPositions * h + TextLayers * (4 * h * h + 2 * h * TextIntermediate) : 0;
        for (int i = 0; i < Dims.Length && i < Depths.Length; i++) n += Depths[i] * 8.0 * Dims[i] * Dims[i];
        return n;
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json.Options);
    public static TmcaConfig FromJson(string json) =>
        (JsonSerializer.Deserialize<TmcaConfig>(json, Json.Options) ?? throw new InvalidDataException("config: empty JSON")).Validated();
}

/// <summary>Which TMCA parts are on (spec §1), with the loss weights and initial values.</summary>
public sealed record TmcaFlags
{
    [JsonPropertyName("text")] public bool Text { get; init; } = true;
    /// <summary>"target", "global" or "none".</summary>
    [JsonPropertyName("alignment")] public string Alignment { get; init; } = "target";
    [JsonPropertyName("levels")] public int[] Levels { get; init; } = [0, 1, 2, 3];
    [JsonPropertyName("lgte")] public bool Lgte { get; init; } = true;
    [JsonPropertyName("pixel_loss")] public bool PixelLoss { get; init; } = true;
    [JsonPropertyName("lambda_nce")] public double LambdaNce { get; init; } = 0.05;
    [JsonPropertyName("lambda_pix")] public double LambdaPix { get; init; } = 0.5;
    [JsonPropertyName("tau_init")] public double TauInit { get; init; } = 0.07;
    [JsonPropertyName("tau_min")] public double TauMin { get; init; } = 0.03;
    [JsonPropertyName("gamma_init")] public double GammaInit { get; init; } = 0.5;
    [JsonPropertyName("a_init")] public double AInit { get; init; } = 10;
    [JsonPropertyName("b_init")] public double BInit { get; init; } = 0;
    [JsonPropertyName("bn_momentum")] public double BnMomentum { get; init; } = 0.1;

    /// <summary>The flags as the model uses them: without text, every text-dependent part is forced off. Flags that do not
    /// fit (from `--flags`, a run's options.json or a checkpoint) throw <see cref="InvalidDataException"/>.</summary>
    public TmcaFlags Effective()
    {
        if (Levels is null) throw new InvalidDataException("flags: levels cannot be null");
        if (!double.IsFinite(LambdaNce + LambdaPix + TauInit + TauMin + GammaInit + AInit + BInit + BnMomentum))
            throw new InvalidDataException("flags: every number must be finite");
        if (Alignment is not ("target" or "global" or "none")) throw new InvalidDataException($"flags: alignment '{Alignment}' is not target, global or none");
        if (Levels.Any(l => l is < 0 or > 3) || Levels.Distinct().Count() != Levels.Length) throw new InvalidDataException("flags: levels must be distinct values in 0..3");
        return Text ? this : this with { Alignment = "none", Lgte = false, PixelLoss = false };
    }

    [JsonIgnore] public bool HasAlignHeads => Text && (Alignment != "none" || Lgte || PixelLoss);
    [JsonIgnore] public bool HasLgteParams => Text && (Lgte || PixelLoss);
    [JsonIgnore] public bool ContrastiveOn => Text && Alignment != "none" && Levels.Length > 0;

    public string ToJson() => JsonSerializer.Serialize(this, Json.Options);
    public static TmcaFlags FromJson(string json) =>
        (JsonSerializer.Deserialize<TmcaFlags>(json, Json.Options) ?? throw new InvalidDataException("flags: empty JSON")).Effective();
}

internal static class Json
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = false,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
    };
}
