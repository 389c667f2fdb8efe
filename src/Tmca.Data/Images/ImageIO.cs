using BitMiracle.LibTiff.Classic;
using SkiaSharp;

namespace Tmca.Data.Images;

/// <summary>
/// Image files in and out. PNG and JPEG decode through SkiaSharp, 16-bit PNG through StbImageSharp (Skia reduces
/// 16-bit grey PNGs to 8 bits), TIFF through LibTiff.NET.
/// Grey images come back with one channel, colour images with three (alpha is dropped). A missing, empty or
/// undecodable file is a <see cref="DataException"/> naming the file.
/// Hostile files: the declared size is checked before any pixel buffer exists — at most <see cref="MaxPixels"/>, and
/// at most <see cref="MaxPixelsPerFileByte"/> per byte of the file (deflate cannot expand more than 1032:1, and a
/// pixel takes at least one bit: a 1 KB PNG cannot hold a 100,000 × 100,000 image). Decoding then allocates at
/// most <see cref="BytesPerPixel"/> managed bytes per declared pixel.
/// </summary>
public static class ImageIO
{
    /// <summary>The most pixels an image may declare (Pillow's default limit is 89 M; whole-slide images need tiling first).</summary>
    public static long MaxPixels { get; set; } = 1L << 26;
    /// <summary>Declared pixels per byte of file beyond which the header cannot be true (8 pixels per byte × deflate's 1032:1, rounded up).</summary>
    public const long MaxPixelsPerFileByte = 16384;
    /// <summary>The most managed memory decoding takes per declared pixel (a 16-bit RGBA buffer and three float planes).</summary>
    public const int BytesPerPixel = 24;

    /// <summary>The most pixels a file of <paramref name="fileBytes"/> bytes may declare.</summary>
    public static long PixelLimit(long fileBytes) => Math.Min(MaxPixels, MaxPixelsPerFileByte * fileBytes + 4096);

    public static RawImage Load(string path)
    {
        if (!File.Exists(path)) throw new DataException(path, "image file not found");
        var ext = Path.GetExtension(path).ToLowerInvariant();
        try
        {
            if (ext is ".tif" or ".tiff") return LoadTiff(path);
            return PngHeader(path) is { BitDepth: 16 } ? LoadPng16(path) : LoadWithSkia(path);
        }
        catch (DataException) { throw; }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new DataException(path, $"cannot be decoded as an image ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>Refuses a declared size before anything is allocated for it.</summary>
    private static void CheckSize(string path, long w, long h)
    {
        if (w <= 0 || h <= 0) throw new DataException(path, $"declares a {w}×{h} image");
        long fileBytes = new FileInfo(path).Length, px = w * h;
        if (px > MaxPixels)
            throw new DataException(path, $"declares {w}×{h} = {px:N0} pixels, more than the {MaxPixels:N0} this reader accepts (a decompression bomb, or far more than a segmentation model needs: downscale it)");
        if (px > PixelLimit(fileBytes))
            throw new DataException(path, $"declares {w}×{h} = {px:N0} pixels, more than a {fileBytes:N0}-byte file can hold (a corrupt header or a decompression bomb)");
    }

    private static RawImage LoadWithSkia(string path)
    {
        using var stream = File.OpenRead(path);
        if (stream.Length == 0) throw new DataException(path, "empty file");
        using var codec = SKCodec.Create(stream, out var result);
        if (codec is null) throw new DataException(path, $"not a PNG/JPEG/TIFF image the decoder recognises ({result})");
        var info = codec.Info;
        CheckSize(path, info.Width, info.Height);
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

    /// <summary>A PNG's IHDR (width, height, bit depth), or null when the file is not a PNG.</summary>
    private static (long Width, long Height, int BitDepth)? PngHeader(string path)
    {
        Span<byte> head = stackalloc byte[25];
        using var f = File.OpenRead(path);
        if (f.ReadAtLeast(head, 25, throwOnEndOfStream: false) < 25 || head[0] != 0x89 || head[1] != (byte)'P' || head[2] != (byte)'N' || head[3] != (byte)'G') return null;
        return (System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(head[16..]), System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(head[20..]), head[24]);
    }

    /// <summary>Decoded pixels (Gray8, RGBA8888 or RGBA16161616) → planar floats in [0, 1].</summary>
    private static RawImage ToRaw(byte[] buffer, SKColorType ct, int w, int h)
    {
        int n = w * h;
        if (ct == SKColorType.Gray8)
        {
            var g = new float[n];
            for (int i = 0; i < n; i++) g[i] = buffer[i] / 255f;
            return new RawImage(w, h, 1, g, 8);
        }
        if (ct == SKColorType.Rgba16161616) return FromRgba<ushort>(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(buffer.AsSpan(0, 8 * n)), w, h, 16);
        return FromRgba<byte>(buffer.AsSpan(0, 4 * n), w, h, 8);
    }

    /// <summary>
    /// Walks a PNG's chunks before StbImageSharp does: stb allocates what a chunk's length field claims (the long fuzz
    /// run found a 278-byte file that made it allocate 1 GB), so every chunk must fit in the file.
    /// </summary>
    private static void CheckPngChunks(string path)
    {
        var b = File.ReadAllBytes(path);
        long at = 8;
        while (at + 12 <= b.Length)
        {
            long len = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan((int)at));
            if (at + 12 + len > b.Length) throw new DataException(path, $"PNG chunk at byte {at} claims {len:N0} bytes, past the end of the file ({b.Length:N0} bytes): truncated or corrupt");
            if (b.AsSpan((int)at + 4, 4).SequenceEqual("IEND"u8)) return;
            at += 12 + len;
        }
        throw new DataException(path, "the PNG ends without its IEND chunk: truncated");
    }

    /// <summary>16-bit PNG (grey, grey+alpha, RGB, RGBA) with every bit kept.</summary>
    private static unsafe RawImage LoadPng16(string path)
    {
        CheckPngChunks(path);
        using var stream = File.OpenRead(path);
        var ctx = new StbImageSharp.StbImage.stbi__context(stream);
        int w, h, comp;
        var header = PngHeader(path)!.Value;
        CheckSize(path, header.Width, header.Height);
        ushort* d = StbImageSharp.StbImage.stbi__load_and_postprocess_16bit(ctx, &w, &h, &comp, 4);
        if (d == null) throw new DataException(path, "16-bit PNG cannot be decoded (corrupt or truncated)");
        try
        {
            CheckSize(path, w, h);
            return FromRgba(new ReadOnlySpan<ushort>(d, 4 * w * h), w, h, 16);
        }
        finally { System.Runtime.InteropServices.Marshal.FreeHGlobal((IntPtr)d); }
    }

    /// <summary>Interleaved RGBA (8- or 16-bit samples) → planar floats in [0, 1]: one plane when R = G = B everywhere,
    /// else three (alpha dropped).</summary>
    private static RawImage FromRgba<T>(ReadOnlySpan<T> rgba, int w, int h, int bitDepth) where T : unmanaged, System.Numerics.INumberBase<T>, IEquatable<T>
    {
        int n = w * h;
        float max = (1 << bitDepth) - 1;
        bool grey = true;
        for (int i = 0; i < n && grey; i++) grey = rgba[4 * i].Equals(rgba[4 * i + 1]) && rgba[4 * i].Equals(rgba[4 * i + 2]);
        int channels = grey ? 1 : 3;
        var data = new float[channels * n];
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < n; i++) data[c * n + i] = float.CreateTruncating(rgba[4 * i + c]) / max;
        return new RawImage(w, h, channels, data, bitDepth);
    }

    private static RawImage LoadTiff(string path)
    {
        TiffPrecheck.Check(path);
        Tiff.SetErrorHandler(new SilentTiffErrors());
        using var t = Tiff.Open(path, "r") ?? throw new DataException(path, "not a readable TIFF file");
        int w = t.GetField(TiffTag.IMAGEWIDTH)?[0].ToInt() ?? throw new DataException(path, "TIFF without a width");
        int h = t.GetField(TiffTag.IMAGELENGTH)?[0].ToInt() ?? throw new DataException(path, "TIFF without a height");
        int bps = t.GetField(TiffTag.BITSPERSAMPLE)?[0].ToInt() ?? 8;
        int spp = t.GetField(TiffTag.SAMPLESPERPIXEL)?[0].ToInt() ?? 1;
        CheckSize(path, w, h);
        if (bps is not (1 or 2 or 4 or 8 or 16) || spp is < 1 or > 8) throw new DataException(path, $"TIFF with {bps} bits per sample and {spp} samples per pixel is not supported");
        if (t.IsTiled() && (t.GetField(TiffTag.TILEWIDTH)?[0].ToLong() is not { } tw || t.GetField(TiffTag.TILELENGTH)?[0].ToLong() is not { } tl || tw * tl > PixelLimit(new FileInfo(path).Length) || tw > 65536 || tl > 65536))
            throw new DataException(path, "TIFF tiles larger than the file could hold");
        if (bps == 16 && spp == 1)
        {
            // 16-bit grey: read scanlines directly (the RGBA path would reduce it to 8 bits)
            var data = new float[w * h];
            int lineBytes = t.ScanlineSize();
            if (lineBytes < 2 * w || lineBytes > 16 * (long)w + 64) throw new DataException(path, $"TIFF scanline of {lineBytes} bytes does not fit {w} 16-bit pixels");
            var line = new byte[lineBytes];
            for (int y = 0; y < h; y++)
            {
                if (!t.ReadScanline(line, y)) throw new DataException(path, $"TIFF scanline {y} cannot be read");
                for (int x = 0; x < w; x++) data[y * w + x] = BitConverter.ToUInt16(line, 2 * x) / 65535f;
            }
            return new RawImage(w, h, 1, data, 16);
        }
        var raster = new int[w * h];
        if (!t.ReadRGBAImageOriented(w, h, raster, Orientation.TOPLEFT)) throw new DataException(path, "TIFF pixel data cannot be read");
        // ABGR ints, little-endian: the bytes are R, G, B, A — the RGBA8888 layout
        return FromRgba<byte>(System.Runtime.InteropServices.MemoryMarshal.AsBytes(raster.AsSpan()), w, h, 8);
    }

    private sealed class SilentTiffErrors : TiffErrorHandler
    {
        // LibTiff.NET prints errors to the console by default; ours surface as DataExceptions instead.
        public override void ErrorHandler(Tiff tif, string method, string format, params object[] args) { }
        public override void ErrorHandlerExt(Tiff tif, object clientData, string method, string format, params object[] args) { }
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
