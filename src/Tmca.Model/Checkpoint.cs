using Tmca.Engine;

namespace Tmca.Model;

/// <summary>
/// Model checkpoints: one safetensors file holding every parameter and buffer under its spec key, with the
/// config and flags as JSON in the metadata ("config", "flags"), so that a checkpoint alone rebuilds its model.
/// Extra tensors (optimiser state) and metadata (training progress) ride along for training checkpoints.
/// Files are written atomically.
/// </summary>
public static class Checkpoint
{
    public const string Format = "tmca-checkpoint-1";


    public static void Save(TmcaModel model, string path, IReadOnlyDictionary<string, string>? metadata = null,
                            IEnumerable<KeyValuePair<string, Tensor>>? extra = null)
    {
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["config"] = model.Config.ToJson(),
            ["flags"] = model.Flags.ToJson(),
        };
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        var tensors = model.Params.All.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Value)).ToList();
        if (extra is not null) tensors.AddRange(extra);
        SafetensorsFile.Save(path, tensors, meta);
    }

    /// <summary>Rebuilds the model a checkpoint describes and loads it; every model key must be present. The file's
    /// checksum is verified first: a corrupt checkpoint is refused whole, never loaded half.</summary>
    public static TmcaModel Load(string path, IBackend? backend = null) => Load(SafetensorsFile.Open(path), backend);

    /// <summary>The same, from a file already open (a training checkpoint's loader reads its other tensors from it).</summary>
    public static TmcaModel Load(SafetensorsFile f, IBackend? backend = null)
    {
        string path = f.Path;
        f.Verify();
        if (!f.Metadata.TryGetValue("config", out var cfg) || !f.Metadata.TryGetValue("flags", out var flags))
            throw new CheckpointException(path, "not a TMCA checkpoint (no config/flags metadata)");
        TmcaModel model;
        try
        {
            var config = TmcaConfig.FromJson(cfg);
            var modelFlags = TmcaFlags.FromJson(flags);
            double available = f.Entries.Values.Sum(e => (double)(e.End - e.Begin)) / 4, needed = config.MinimumElements(modelFlags.Text);
            if (needed > available)
                throw new InvalidDataException($"the config describes at least {needed:N0} parameter elements, the file holds {available:N0}");
            model = new TmcaModel(config, modelFlags, initialize: false);
        }
        catch (Exception e) when (e is InvalidDataException or System.Text.Json.JsonException or OverflowException)
        {
            throw new CheckpointException(path, $"the checkpoint's config/flags are invalid ({e.Message})", e);
        }
        try { LoadInto(model, f); }
        catch (InvalidDataException e)
        {
            throw new CheckpointException(path, e.Message.StartsWith(path) ? e.Message[(path.Length + 2)..] : e.Message, e);
        }
        if (backend is not null) model.To(backend);
        return model;
    }

    /// <summary>Loads every parameter of the model from the file; lists the keys the file lacks.</summary>
    public static void LoadInto(TmcaModel model, SafetensorsFile f)
    {
        var missing = model.Params.All.Where(p => !f.Contains(p.Name)).Select(p => p.Name).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{f.Path}: missing {missing.Count} model keys: {string.Join(", ", missing.Take(10))}{(missing.Count > 10 ? ", …" : "")}");
        foreach (var p in model.Params.All) model.Params.Assign(p.Name, f.Load(p.Name), f.Path);
    }
}

/// <summary>A checkpoint that cannot be used (corrupt, truncated, not a TMCA checkpoint); the message names the file and,
/// where one is intact, the checkpoint to use instead.</summary>
public sealed class CheckpointException(string path, string problem, Exception? inner = null) : InputFileException(path, problem, inner);
