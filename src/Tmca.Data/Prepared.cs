using Tmca.Data.Images;
using Tmca.Data.Layouts;

namespace Tmca.Data;

/// <summary>A sample decoded and brought to the model's resolution: raw image values (not yet z-scored),
/// the binary mask, and the report's token ids.</summary>
public sealed class PreparedSample
{
    public required Sample Source { get; init; }
    /// <summary>Channels × S × S, values in [0, 1].</summary>
    public required float[] Image { get; init; }
    public required int Channels { get; init; }
    /// <summary>S × S, 0 or 1.</summary>
    public required byte[] Mask { get; init; }
    public required long[] Ids { get; init; }
    public required long[] Attention { get; init; }
    public bool Truncated { get; init; }
    public int OriginalWidth { get; init; }
    public int OriginalHeight { get; init; }
}

/// <summary>One split in memory.</summary>
public sealed class PreparedSplit(string name, int size, List<PreparedSample> samples)
{
    public string Name { get; } = name;
    public int Size { get; } = size;
    public IReadOnlyList<PreparedSample> Samples { get; } = samples;
    public int Count => Samples.Count;
    public int TruncatedReports => Samples.Count(s => s.Truncated);
}

/// <summary>A report as token ids and attention mask, padded or truncated to a fixed length.</summary>
public readonly record struct TokenizedReport(long[] Ids, long[] Mask, bool Truncated);

/// <summary>Turns a report into <paramref name="length"/> token ids. Data knows no tokenizer: the caller passes
/// one in (Training adapts the model's WordPiece tokenizer), so datasets depend on the engine alone.</summary>
public delegate TokenizedReport Tokenize(string report, int length);

/// <summary>
/// Decoding and preprocessing (spec §2): images resized to S×S (area when shrinking, bilinear when enlarging),
/// masks resized nearest and binarised (RGB masks averaged first), reports tokenised to 24 ids. Grey images keep
/// one channel here; batches replicate it to three. A mask of another size than its image is an error.
/// </summary>
public static class Preprocess
{
    public static PreparedSplit Prepare(string name, IReadOnlyList<Sample> samples, int size, Tokenize tokenizer, int textLen = 24)
    {
        var prepared = new PreparedSample[samples.Count];
        var errors = new List<Exception>();
        Parallel.For(0, samples.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            try { prepared[i] = PrepareOne(samples[i], size, tokenizer, textLen); }
            catch (DataException e) { lock (errors) errors.Add(e); }
        });
        if (errors.Count > 0) throw errors[0];   // the first problem, with its file
        return new PreparedSplit(name, size, prepared.ToList());
    }

    public static PreparedSample PrepareOne(Sample s, int size, Tokenize tokenizer, int textLen)
    {
        var img = ImageIO.Load(s.ImagePath);
        var mask = ImageIO.Load(s.MaskPath);
        if (mask.Width != img.Width || mask.Height != img.Height)
            throw new DataException(s.MaskPath, $"mask is {mask.Width}×{mask.Height} but its image {Path.GetFileName(s.ImagePath)} is {img.Width}×{img.Height}");
        var planes = new float[img.Channels * size * size];
        for (int c = 0; c < img.Channels; c++)
            Resample.Image(img.Plane(c), img.Width, img.Height, size, size).CopyTo(planes, c * size * size);
        var binary = Resample.Binarize(mask.MeanOfChannels());
        var enc = tokenizer(s.Report, textLen);
        return new PreparedSample
        {
            Source = s, Image = planes, Channels = img.Channels, Mask = Resample.MaskNearest(binary, mask.Width, mask.Height, size, size),
            Ids = enc.Ids, Attention = enc.Mask, Truncated = enc.Truncated, OriginalWidth = img.Width, OriginalHeight = img.Height,
        };
    }

    /// <summary>Spec §2: subtract each channel's mean, divide by its population standard deviation (a constant
    /// channel is only centred).</summary>
    public static void ZScore(Span<float> plane)
    {
        double s = 0, ss = 0;
        foreach (var v in plane) s += v;
        double mean = s / plane.Length;
        foreach (var v in plane) ss += (v - mean) * (v - mean);
        double std = Math.Sqrt(ss / plane.Length);
        float inv = std > 0 ? (float)(1.0 / std) : 1f;
        for (int i = 0; i < plane.Length; i++) plane[i] = (float)(plane[i] - mean) * inv;
    }
}
