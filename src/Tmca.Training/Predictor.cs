using SkiaSharp;
using Tmca.Data;
using Tmca.Data.Images;
using Tmca.Data.Layouts;
using Tmca.Engine;
using Tmca.Model;
using Tmca.Model.Text;

namespace Tmca.Training;

/// <summary>
/// Prediction outputs: for each image a mask PNG at the image's own resolution (logits upsampled bilinearly,
/// then σ &gt; 0.5) and an overlay PNG — the image with the predicted contour in red, the true contour in green
/// (when known) and the report underneath.
/// </summary>
public static class Predictor
{
    /// <summary>Predicts every image of a prepared split into outDir/masks and outDir/overlays.</summary>
    public static int PredictSplit(TmcaModel model, PreparedSplit split, string outDir, int batchSize, Action<string>? warn = null)
    {
        int done = 0;
        foreach (var (s, logits) in Evaluator.Logits(model, split, batchSize))
        {
            Write(s.Source.Id, s.Source.ImagePath, s.Source.Report, logits, split.Size, s.Source.MaskPath, outDir, warn);
            done++;
        }
        return done;
    }

    /// <summary>One image and a report typed by the user (no ground truth).</summary>
    public static (string Mask, string Overlay) PredictOne(TmcaModel model, string imagePath, string report, WordPieceTokenizer tokenizer, string outDir, Action<string>? warn = null)
    {
        int S = model.Config.ImageSize;
        var img = ImageIO.Load(imagePath);
        var planes = new float[img.Channels * S * S];
        for (int c = 0; c < img.Channels; c++) Resample.Image(img.Plane(c), img.Width, img.Height, S, S).CopyTo(planes, c * S * S);
        var enc = tokenizer.Encode(report, model.Config.TextLen);
        if (enc.Truncated) warn?.Invoke($"the report has {enc.FullLength} tokens and was truncated to {model.Config.TextLen}");
        var sample = new PreparedSample
        {
            Source = new Sample(Path.GetFileNameWithoutExtension(imagePath), imagePath, "", report), Image = planes, Channels = img.Channels,
            Mask = new byte[S * S], Ids = enc.Ids, Attention = enc.Mask, OriginalWidth = img.Width, OriginalHeight = img.Height,
        };
        float[] logits;
        using (var scope = new TensorScope())
        using (Tape.NoGrad())
            logits = model.Forward(Batches.Make([sample], [0], model.Config.InChannels, model.Backend).ForModel(), training: false).Logits.ToArray<float>();
        return Write(sample.Source.Id, imagePath, report, logits, S, null, outDir, warn);
    }

    private static (string, string) Write(string id, string imagePath, string report, float[] logitsS, int S, string? maskPath, string outDir, Action<string>? warn)
    {
        var img = ImageIO.Load(imagePath);
        int W = img.Width, H = img.Height;
        var up = Resample.Image(logitsS, S, S, W, H);
        var pred = new byte[W * H];
        for (int i = 0; i < pred.Length; i++) pred[i] = up[i] > 0 ? (byte)1 : (byte)0;
        string maskOut = Path.Combine(outDir, "masks", id + ".png"), overlayOut = Path.Combine(outDir, "overlays", id + ".png");
        Directory.CreateDirectory(Path.GetDirectoryName(maskOut)!);
        Directory.CreateDirectory(Path.GetDirectoryName(overlayOut)!);
        ImageIO.SaveGreyPng(maskOut, pred.Select(v => (byte)(v * 255)).ToArray(), W, H);
        byte[]? gt = null;
        if (!string.IsNullOrEmpty(maskPath) && File.Exists(maskPath))
        {
            var m = ImageIO.Load(maskPath);
            if (m.Width == W && m.Height == H) gt = Resample.Binarize(m.MeanOfChannels());
        }
        Overlay(img, pred, gt, report, overlayOut, warn);
        return (maskOut, overlayOut);
    }

    private static void Overlay(RawImage img, byte[] pred, byte[]? gt, string report, string path, Action<string>? warn)
    {
        // display size: at most 512 px on the long side (area-downsampled), at least 256
        double scale = Math.Min(512.0 / Math.Max(img.Width, img.Height), Math.Max(1.0, 256.0 / Math.Max(img.Width, img.Height)));
        int w = Math.Max(1, (int)Math.Round(img.Width * scale)), h = Math.Max(1, (int)Math.Round(img.Height * scale));
        var planes = Enumerable.Range(0, img.Channels).Select(c => Resample.Image(img.Plane(c), img.Width, img.Height, w, h)).ToArray();
        var p = Resample.MaskNearest(pred, img.Width, img.Height, w, h);
        var g = gt is null ? null : Resample.MaskNearest(gt, img.Width, img.Height, w, h);
        var font = Font();
        const int textSize = 13;
        var lines = font is null ? new List<string>() : Wrap(report, font, textSize, w - 12);
        int band = font is null ? 0 : 10 + (lines.Count + 1) * (textSize + 4);
        using var bmp = new SKBitmap(new SKImageInfo(w, h + band, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                byte V(int c) => (byte)Math.Clamp((int)(planes[Math.Min(c, img.Channels - 1)][y * w + x] * 255 + 0.5), 0, 255);
                var col = new SKColor(V(0), V(1), V(2));
                if (g is not null && Edge(g, x, y, w, h)) col = new SKColor(40, 220, 60);
                if (Edge(p, x, y, w, h)) col = new SKColor(240, 40, 40);
                bmp.SetPixel(x, y, col);
            }
        if (font is not null)
        {
            using var canvas = new SKCanvas(bmp);
            using var bg = new SKPaint { Color = new SKColor(20, 20, 20) };
            canvas.DrawRect(0, h, w, band, bg);
            using var paint = new SKPaint { Color = SKColors.White, IsAntialias = true };
            using var skFont = new SKFont(font, textSize);
            float ty = h + 6 + textSize;
            foreach (var line in lines) { canvas.DrawText(line, 6, ty, SKTextAlign.Left, skFont, paint); ty += textSize + 4; }
            using var legend = new SKPaint { Color = new SKColor(170, 170, 170), IsAntialias = true };
            canvas.DrawText(g is null ? "red: prediction" : "red: prediction   green: ground truth", 6, ty, SKTextAlign.Left, skFont, legend);
        }
        else
        {
            File.WriteAllText(Path.ChangeExtension(path, ".txt"), report + "\n");
            if (!_warnedFont) { warn?.Invoke("no TrueType font found: overlay reports are written beside the images as .txt"); _warnedFont = true; }
        }
        ImageIO.SavePng(path, bmp);
    }

    private static bool _warnedFont;

    private static bool Edge(byte[] m, int x, int y, int w, int h)
    {
        if (m[y * w + x] == 0) return false;
        return x == 0 || y == 0 || x == w - 1 || y == h - 1 || m[y * w + x - 1] == 0 || m[y * w + x + 1] == 0 || m[(y - 1) * w + x] == 0 || m[(y + 1) * w + x] == 0;
    }

    private static SKTypeface? _font;
    private static bool _fontSearched;

    /// <summary>A sans-serif TrueType font from the usual places (DejaVu on Debian), or null.</summary>
    private static SKTypeface? Font()
    {
        if (_fontSearched) return _font;
        _fontSearched = true;
        string[] candidates = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"];
        foreach (var c in candidates.Concat(Directory.Exists("/usr/share/fonts") ? Directory.EnumerateFiles("/usr/share/fonts", "*.ttf", SearchOption.AllDirectories).Take(50) : []))
            if (File.Exists(c) && SKTypeface.FromFile(c) is { } tf) return _font = tf;
        return null;
    }

    private static List<string> Wrap(string text, SKTypeface tf, float size, float width)
    {
        using var font = new SKFont(tf, size);
        return Wrap(text, font, width);
    }

    /// <summary>Words into lines no wider than <paramref name="width"/>; at most <paramref name="maxLines"/> (the last one
    /// ends in … when the text was cut).</summary>
    internal static List<string> Wrap(string text, SKFont font, float width, int maxLines = int.MaxValue)
    {
        var lines = new List<string>();
        var cur = "";
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var next = cur.Length == 0 ? word : cur + " " + word;
            if (font.MeasureText(next) > width && cur.Length > 0) { lines.Add(cur); cur = word; }
            else cur = next;
        }
        if (cur.Length > 0) lines.Add(cur);
        if (lines.Count > maxLines) { lines = lines.Take(maxLines).ToList(); lines[^1] += " …"; }
        return lines;
    }
}
