using BitMiracle.LibTiff.Classic;
using SkiaSharp;

namespace Tmca.Data.Images;

/// <summary>
/// Image files in and out. PNG and JPEG decode through SkiaSharp, 16-bit PNG through StbImageSharp (Skia reduces
/// 16-bit grey PNGs to 8 bits), TIFF through LibTiff.NET.
/// Grey images come back with one channel, colour images with three (alpha is dropped). A missing, empty or
/// undecodable file is a <see cref="DataException"/> naming the file.
/// </summary>
public static class ImageIO
{
    public static RawImage Load(string path)
    {
        if (!File.Exists(path)) throw new DataException(path, "image file not found");
        var ext = Path.GetExtension(path).ToLowerInvariant();
        try
        {
            if (ext is ".tif" or ".tiff") return LoadTiff(path);
            return PngBitDepth(path) == 16 ? LoadPng16(path) : LoadWithSkia(path);
        }
        catch (DataException) { throw; }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new DataException(path, $"cannot be decoded as an image ({e.GetType().Name}: {e.Message})", e);
        }
    }

    private static RawImage LoadWithSkia(string path)
    {
        using var stream = File.OpenRead(path);
        if (stream.Length == 0) throw new DataException(path, "empty file");
        using var codec = SKCodec.Create(stream, out var result);
        if (codec is null) throw new DataException(path, $"not a PNG/JPEG/TIFF image the decoder recognises ({result})");
        var info = codec.Info;
        var targets = info.ColorType == SKColorType.Gray8 ? new[] { SKColorType.Gray8, SKColorType.Rgba8888 }
                    : new[] { SKColorType.Rgba8888, SKColorType.Rgba16161616 };
        foreach (var ct in targets)
        {
            var target = new SKImageInfo(info.Width, info.Height, ct, SKAlphaType.Unpremul);
            var buffer = new byte[target.BytesSize64];
            SKCodecResult r;
            unsafe
            {
                fixed (byte* p = buffer) r = codec.GetPixels(target, (IntPtr)p);
            }
            if (r == SKCodecResult.InvalidConversion) continue;
            if (r == SKCodecResult.IncompleteInput) throw new DataException(path, "the file is truncated (incomplete image data)");
            if (r != SKCodecResult.Success) throw new DataException(path, $"decoding failed ({r})");
            return ToRaw(buffer, ct, info.Width, info.Height);
        }
        throw new DataException(path, $"no supported pixel format for this image ({info.ColorType})");
    }

    /// <summary>The bit depth in a PNG's IHDR chunk (byte 24), or 0 when the file is not a PNG.</summary>
    private static int PngBitDepth(string path)
    {
        Span<byte> head = stackalloc byte[25];
        using var f = File.OpenRead(path);
        if (f.Read(head) < 25 || head[0] != 0x89 || head[1] != (byte)'P' || head[2] != (byte)'N' || head[3] != (byte)'G') return 0;
        return head[24];
    }

    /// <summary>Decoded pixels (Gray8, RGBA8888, RGBA F16 or RGBA16161616) → planar floats in [0, 1].</summary>
    private static RawImage ToRaw(byte[] buffer, SKColorType ct, int w, int h)
    {
        int n = w * h;
        if (ct == SKColorType.Gray8)
        {
            var g = new float[n];
            for (int i = 0; i < n; i++) g[i] = buffer[i] / 255f;
            return new RawImage(w, h, 1, g, 8);
        }
        var rgba = new ushort[4 * n];
        if (ct == SKColorType.Rgba16161616) Buffer.BlockCopy(buffer, 0, rgba, 0, rgba.Length * 2);
        else for (int i = 0; i < 4 * n; i++) rgba[i] = (ushort)(buffer[i] * 257);
        return FromRgba16(rgba, w, h, ct == SKColorType.Rgba16161616 ? 16 : 8);
    }

    /// <summary>16-bit PNG (grey, grey+alpha, RGB, RGBA) with every bit kept.</summary>
    private static unsafe RawImage LoadPng16(string path)
    {
        using var stream = File.OpenRead(path);
        var ctx = new StbImageSharp.StbImage.stbi__context(stream);
        int w, h, comp;
        ushort* d = StbImageSharp.StbImage.stbi__load_and_postprocess_16bit(ctx, &w, &h, &comp, 4);
        if (d == null) throw new DataException(path, "16-bit PNG cannot be decoded (corrupt or truncated)");
        try
        {
            var rgba = new ushort[4 * w * h];
            new ReadOnlySpan<ushort>(d, rgba.Length).CopyTo(rgba);
            return FromRgba16(rgba, w, h, 16);
        }
        finally { System.Runtime.InteropServices.Marshal.FreeHGlobal((IntPtr)d); }
    }

    private static RawImage FromRgba16(ushort[] rgba, int w, int h, int bitDepth)
    {
        int n = w * h;
        bool grey = true;
        for (int i = 0; i < n && grey; i++) grey = rgba[4 * i] == rgba[4 * i + 1] && rgba[4 * i] == rgba[4 * i + 2];
        int channels = grey ? 1 : 3;
        var data = new float[channels * n];
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < n; i++) data[c * n + i] = rgba[4 * i + c] / 65535f;
        return new RawImage(w, h, channels, data, bitDepth);
    }

    private static RawImage LoadTiff(string path)
    {
        Tiff.SetErrorHandler(new SilentTiffErrors());
        using var t = Tiff.Open(path, "r") ?? throw new DataException(path, "not a readable TIFF file");
        int w = t.GetField(TiffTag.IMAGEWIDTH)?[0].ToInt() ?? throw new DataException(path, "TIFF without a width");
        int h = t.GetField(TiffTag.IMAGELENGTH)?[0].ToInt() ?? throw new DataException(path, "TIFF without a height");
        int bps = t.GetField(TiffTag.BITSPERSAMPLE)?[0].ToInt() ?? 8;
        int spp = t.GetField(TiffTag.SAMPLESPERPIXEL)?[0].ToInt() ?? 1;
        if (bps == 16 && spp == 1)
        {
            // 16-bit grey: read scanlines directly (the RGBA path would reduce it to 8 bits)
            var data = new float[w * h];
            var line = new byte[t.ScanlineSize()];
            for (int y = 0; y < h; y++)
            {
                if (!t.ReadScanline(line, y)) throw new DataException(path, $"TIFF scanline {y} cannot be read");
                for (int x = 0; x < w; x++) data[y * w + x] = BitConverter.ToUInt16(line, 2 * x) / 65535f;
            }
            return new RawImage(w, h, 1, data, 16);
        }
        var raster = new int[w * h];
        if (!t.ReadRGBAImageOriented(w, h, raster, Orientation.TOPLEFT)) throw new DataException(path, "TIFF pixel data cannot be read");
        var rgba = new ushort[4 * w * h];
        for (int i = 0; i < w * h; i++)
        {
            int px = raster[i];
            rgba[4 * i] = (ushort)(Tiff.GetR(px) * 257); rgba[4 * i + 1] = (ushort)(Tiff.GetG(px) * 257); rgba[4 * i + 2] = (ushort)(Tiff.GetB(px) * 257);
        }
        return FromRgba16(rgba, w, h, 8);
    }

    private sealed class SilentTiffErrors : TiffErrorHandler
    {
        public override void WarningHandler(Tiff tif, string method, string format, params object[] args) { }
        public override void WarningHandlerExt(Tiff tif, object clientData, string method, string format, params object[] args) { }
    }

    /// <summary>Writes an 8-bit grey PNG (masks) atomically.</summary>
    public static void SaveGreyPng(string path, byte[] pixels, int width, int height)
    {
        using var bmp = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        unsafe
        {
            fixed (byte* src = pixels) Buffer.MemoryCopy(src, (void*)bmp.GetPixels(), (long)width * height, (long)width * height);
        }
        SavePng(path, bmp);
    }

    public static void SavePng(string path, SKBitmap bitmap)
    {
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100) ?? throw new IOException($"{path}: PNG encoding failed");
        Tmca.Engine.AtomicFile.WriteAllBytes(path, data.ToArray());
    }
}
