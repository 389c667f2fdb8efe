namespace Tmca.Data.Images;

/// <summary>A decoded image: channels × height × width, planar, values scaled to [0, 1] from the file's bit depth.</summary>
public sealed record RawImage(int Width, int Height, int Channels, float[] Data, int BitDepth)
{
    public Span<float> Plane(int c) => Data.AsSpan(c * Width * Height, Width * Height);

    /// <summary>The mean over channels (RGB masks are averaged, spec of the data issue).</summary>
    public float[] MeanOfChannels()
    {
        if (Channels == 1) return (float[])Data.Clone();
        int n = Width * Height;
        var m = new float[n];
        for (int c = 0; c < Channels; c++)
        {
            var p = Plane(c);
            for (int i = 0; i < n; i++) m[i] += p[i] / Channels;
        }
        return m;
    }
}
