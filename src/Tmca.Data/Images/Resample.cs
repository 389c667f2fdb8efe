namespace Tmca.Data.Images;

/// <summary>
/// Resizing float planes. Images: area averaging when shrinking (every source pixel counts, no aliasing from
/// 1000-px pathology tiles down to 128), bilinear with half-pixel centres when enlarging. Masks: nearest
/// neighbour on pixel centres, so they stay binary.
/// </summary>
public static class Resample
{
    public static float[] Image(ReadOnlySpan<float> src, int w, int h, int ow, int oh)
    {
        var tmp = new float[ow * h];
        for (int y = 0; y < h; y++) Line(src.Slice(y * w, w), tmp.AsSpan(y * ow, ow));
        var dst = new float[ow * oh];
        // columns: the same 1-d resampling with a stride of one row
        var col = new float[h];
        var outCol = new float[oh];
        for (int x = 0; x < ow; x++)
        {
            for (int y = 0; y < h; y++) col[y] = tmp[y * ow + x];
            Line(col, outCol);
            for (int y = 0; y < oh; y++) dst[y * ow + x] = outCol[y];
        }
        return dst;
    }

    /// <summary>One line of n samples → m samples.</summary>
    private static void Line(ReadOnlySpan<float> src, Span<float> dst)
    {
        int n = src.Length, m = dst.Length;
        double scale = (double)n / m;
        if (scale > 1)
        {
            // area: output i covers source [i·scale, (i+1)·scale)
            for (int i = 0; i < m; i++)
            {
                double a = i * scale, b = a + scale, s = 0;
                for (int j = (int)a; j < Math.Min(n, (int)Math.Ceiling(b)); j++)
                {
                    double lo = Math.Max(a, j), hi = Math.Min(b, j + 1);
                    if (hi > lo) s += (hi - lo) * src[j];
                }
                dst[i] = (float)(s / scale);
            }
        }
        else
        {
            for (int i = 0; i < m; i++)
            {
                double x = (i + 0.5) * scale - 0.5;
                int x0 = (int)Math.Floor(x);
                double f = x - x0;
                float v0 = src[Math.Clamp(x0, 0, n - 1)], v1 = src[Math.Clamp(x0 + 1, 0, n - 1)];
                dst[i] = (float)(v0 + (v1 - v0) * f);
            }
        }
    }

    public static byte[] MaskNearest(ReadOnlySpan<byte> src, int w, int h, int ow, int oh)
    {
        var dst = new byte[ow * oh];
        for (int y = 0; y < oh; y++)
        {
            int sy = Math.Min(h - 1, (int)((y + 0.5) * h / oh));
            for (int x = 0; x < ow; x++) dst[y * ow + x] = src[sy * w + Math.Min(w - 1, (int)((x + 0.5) * w / ow))];
        }
        return dst;
    }

    /// <summary>Binarises a mask: {0,255}, {0,1} and 16-bit masks alike — a pixel is target when it exceeds
    /// half of the mask's maximum (an all-zero mask stays empty).</summary>
    public static byte[] Binarize(float[] values)
    {
        float max = 0;
        foreach (var v in values) if (v > max) max = v;
        var m = new byte[values.Length];
        if (max <= 0) return m;
        for (int i = 0; i < values.Length; i++) m[i] = values[i] > max * 0.5f ? (byte)1 : (byte)0;
        return m;
    }
}
