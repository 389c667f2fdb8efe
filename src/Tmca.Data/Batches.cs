using Tmca.Engine;

namespace Tmca.Data;

/// <summary>
/// Training augmentation: with probability p, a random zoom by a factor in [min, max] about the image centre,
/// applied identically to image and mask (bilinear / nearest; outside the image: edge pixels / background).
/// No flips: mirroring an image would contradict "left" and "right" in its report.
/// </summary>
public sealed record Augmentation(double ZoomProbability = 0.1, double ZoomMin = 0.95, double ZoomMax = 1.2)
{
    public static readonly Augmentation None = new(0, 1, 1);

    public (float[] Image, byte[] Mask) Apply(PreparedSample s, int size, Xoshiro rng)
    {
        if (ZoomProbability <= 0 || rng.NextDouble() >= ZoomProbability) return (s.Image, s.Mask);
        double z = rng.Uniform(ZoomMin, ZoomMax);
        var img = new float[s.Image.Length];
        var mask = new byte[s.Mask.Length];
        double c = size / 2.0;
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double sx = (x + 0.5 - c) / z + c - 0.5, sy = (y + 0.5 - c) / z + c - 0.5;
                int mx = (int)Math.Round(sx), my = (int)Math.Round(sy);
                mask[y * size + x] = mx >= 0 && mx < size && my >= 0 && my < size ? s.Mask[my * size + mx] : (byte)0;
                int x0 = (int)Math.Floor(sx), y0 = (int)Math.Floor(sy);
                double fx = sx - x0, fy = sy - y0;
                for (int ch = 0; ch < s.Channels; ch++)
                {
                    int plane = ch * size * size;
                    float At(int yy, int xx) => s.Image[plane + Math.Clamp(yy, 0, size - 1) * size + Math.Clamp(xx, 0, size - 1)];
                    double v = At(y0, x0) * (1 - fx) * (1 - fy) + At(y0, x0 + 1) * fx * (1 - fy) + At(y0 + 1, x0) * (1 - fx) * fy + At(y0 + 1, x0 + 1) * fx * fy;
                    img[ch * size * size + y * size + x] = (float)v;
                }
            }
        return (img, mask);
    }
}

/// <summary>One batch as tensors (spec §2): image B×C×S×S, token ids and attention mask B×L (I64), gt B×1×S×S or null.</summary>
/// <see cref="HostIds"/> and <see cref="HostMask"/> are the ids and mask as host arrays, for what is built from them.
public sealed record Batch(Tensor Image, Tensor Ids, Tensor Mask, Tensor? Gt)
{
    public long[]? HostIds { get; init; }
    public long[]? HostMask { get; init; }
}

/// <summary>Assembles batches from prepared samples.</summary>
public static class Batches
{
    /// <summary>
    /// image B×C×S×S (z-scored per image and channel; grey replicated to C), token ids and mask B×L, gt B×1×S×S.
    /// <paramref name="reportFrom"/> optionally takes the text of another sample (the shuffled-text control).
    /// </summary>
    public static Batch Make(IReadOnlyList<PreparedSample> samples, IReadOnlyList<int> indices, int channels, IBackend backend,
                                 Augmentation? aug = null, Xoshiro? rng = null, IReadOnlyList<int>? reportFrom = null)
    {
        int B = indices.Count, S = (int)Math.Sqrt(samples[indices[0]].Mask.Length), L = samples[indices[0]].Ids.Length;
        var image = new float[B * channels * S * S];
        var gt = new float[B * S * S];
        var ids = new long[B * L];
        var att = new long[B * L];
        for (int b = 0; b < B; b++)
        {
            var s = samples[indices[b]];
            var (img, mask) = aug is null || rng is null ? (s.Image, s.Mask) : aug.Apply(s, S, rng);
            for (int c = 0; c < channels; c++)
            {
                var dst = image.AsSpan((b * channels + c) * S * S, S * S);
                img.AsSpan((s.Channels == 1 ? 0 : Math.Min(c, s.Channels - 1)) * S * S, S * S).CopyTo(dst);
                Preprocess.ZScore(dst);
            }
            for (int i = 0; i < S * S; i++) gt[b * S * S + i] = mask[i];
            var t = reportFrom is null ? s : samples[reportFrom[b]];
            t.Ids.CopyTo(ids, b * L);
            t.Attention.CopyTo(att, b * L);
        }
        Tensor Up(Tensor t) => backend is CpuBackend ? t : t.To(backend);
        return new Batch(Up(Tensor.FromArray(image, B, channels, S, S)), Up(Tensor.FromArray(ids, B, L)),
                             Up(Tensor.FromArray(att, B, L)), Up(Tensor.FromArray(gt, B, 1, S, S)))
        { HostIds = ids, HostMask = att };
    }
}
