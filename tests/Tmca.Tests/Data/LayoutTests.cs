using Tmca.Data;
using Tmca.Data.Images;
using Tmca.Data.Layouts;
using Tmca.Model.Text;
using Tmca.Training;
using Xunit;

namespace Tmca.Tests.Data;

public class LayoutTests
{
    private static readonly WordPieceTokenizer Tok = WordPieceTokenizer.CxrBert();

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void LvitLayoutLoadsWithAndWithoutValidationFolder(bool qataStyle, bool withVal)
    {
        using var d = new TempDir();
        DataFixtures.Lvit(d.Path, qataStyle, withVal);
        var ds = DatasetLoader.Load(d.Path);
        Assert.Equal("lvit", ds.Layout);
        Assert.Equal(3, ds.Test.Count);
        if (withVal) { Assert.Equal(6, ds.Train.Count); Assert.Equal(2, ds.Val.Count); Assert.Empty(ds.Notes); }
        else
        {
            Assert.Equal(5, ds.Train.Count);      // last 20 % of 6 training rows held out
            Assert.Single(ds.Val);
            Assert.Contains(ds.Notes, n => n.Contains("held out the last 20 %"));
        }
        Assert.All(ds.Train, s => Assert.Contains("lower left lung", s.Report));
        Assert.Equal(qataStyle ? "mask_tr0.png" : "tr0.png", Path.GetFileName(ds.Train[0].MaskPath));
        var prepared = Preprocess.Prepare("train", ds.Train, 32, Tok.ForData());
        Assert.Equal(32 * 32, prepared.Samples[0].Mask.Length);
        Assert.InRange(prepared.Samples[0].Mask.Count(m => m == 1), 100, 400);   // the 15×25 rectangle of 40×40, scaled to 32
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CsvLayoutLoads(bool withVal)
    {
        using var d = new TempDir();
        DataFixtures.Csv(d.Path, withVal);
        var ds = DatasetLoader.Load(d.Path);
        Assert.Equal("csv", ds.Layout);
        Assert.Equal(withVal ? 6 : 5, ds.Train.Count);
        Assert.Equal(withVal ? 2 : 1, ds.Val.Count);
        Assert.Equal("tr0", ds.Train[0].Id);
        Assert.StartsWith("bilateral", ds.Test[0].Report);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PerIdLayoutLoads(bool withVal)
    {
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal);
        var ds = DatasetLoader.Load(d.Path);
        Assert.Equal("per-id", ds.Layout);
        Assert.Equal(withVal ? 2 : 1, ds.Val.Count);
        Assert.Equal("unilateral pulmonary infection, one infected area, upper right lung.", ds.Train[0].Report);
    }

    [Fact]
    public void ImagesDecodeInEveryFormatAndDepth()
    {
        using var d = new TempDir();
        // 16-bit grey PNG: every bit kept (an 8-bit path would give 3/255 for 1000)
        var px = new ushort[] { 0, 1000, 40000, 65535 };
        DataFixtures.Grey16Png(d["g16.png"], px, 2, 2);
        var g = ImageIO.Load(d["g16.png"]);
        Assert.Equal((1, 16), (g.Channels, g.BitDepth));
        Assert.Equal([0f, 1000 / 65535f, 40000 / 65535f, 1f], g.Data);
        // 8-bit grey PNG
        DataFixtures.Png(d["g8.png"], 3, 2, (x, y) => (byte)(x * 100));
        Assert.Equal(200 / 255f, ImageIO.Load(d["g8.png"]).Data[2], 6);
        // RGB JPEG (lossy: only the channel count and a rough value)
        using (var bmp = new SkiaSharp.SKBitmap(8, 8))
        {
            bmp.Erase(new SkiaSharp.SKColor(200, 40, 40));
            File.WriteAllBytes(d["c.jpg"], bmp.Encode(SkiaSharp.SKEncodedImageFormat.Jpeg, 95).ToArray());
        }
        var jpg = ImageIO.Load(d["c.jpg"]);
        Assert.Equal(3, jpg.Channels);
        Assert.InRange(jpg.Data[0], 0.7f, 0.85f);
        // RGB TIFF written with LibTiff
        WriteRgbTiff(d["c.tif"], 5, 4);
        var tif = ImageIO.Load(d["c.tif"]);
        Assert.Equal((5, 4, 3), (tif.Width, tif.Height, tif.Channels));
        Assert.Equal(10 / 255f, tif.Data[0], 5);                       // R of pixel (0,0)
        Assert.Equal(40 / 255f, tif.Plane(0)[3], 5);                   // pixel (3, 0): R = 10·4; top-left origin kept
        Assert.Equal(20 / 255f, tif.Plane(0)[5], 5);                   // pixel (0, 1): R = 10·2
    }

    [Fact]
    public void MasksBinariseFromZeroOneZero255AndRgb()
    {
        Assert.Equal([0, 1, 1, 0], Resample.Binarize([0f, 1 / 255f, 1 / 255f, 0f]));   // {0,1} masks
        Assert.Equal([0, 1, 0], Resample.Binarize([0f, 1f, 0f]));                        // {0,255}
        Assert.DoesNotContain(Resample.Binarize([0f, 0f]), v => v != 0);                 // empty stays empty
        var rgb = new RawImage(2, 1, 3, [1f, 0f, 1f, 0f, 1f, 0f], 8);                   // pixel 0 white, pixel 1 black
        Assert.Equal([1, 0], Resample.Binarize(rgb.MeanOfChannels()));
    }

    [Fact]
    public void ZScoreAndZoomAugmentation()
    {
        var plane = new float[] { 1, 2, 3, 4 };
        Preprocess.ZScore(plane);
        Assert.Equal(0, plane.Average(), 6);
        Assert.Equal(1, Math.Sqrt(plane.Select(v => v * v).Average()), 5);
        var constant = new float[] { 0.5f, 0.5f };
        Preprocess.ZScore(constant);
        Assert.All(constant, v => Assert.Equal(0f, v));                                  // a constant channel is only centred
        // zoom keeps image and mask aligned: a bright square with its mask stays co-located
        int S = 32;
        var img = new float[S * S]; var mask = new byte[S * S];
        for (int y = 12; y < 20; y++) for (int x = 12; x < 20; x++) { img[y * S + x] = 1; mask[y * S + x] = 1; }
        var s = new PreparedSample { Source = new Sample("a", "", "", ""), Image = img, Channels = 1, Mask = mask, Ids = new long[24], Attention = new long[24] };
        var (zi, zm) = new Augmentation(1.0, 1.2, 1.2).Apply(s, S, new Xoshiro(1));
        Assert.True(zm.Count(v => v == 1) > 64);                                         // zoomed in: bigger
        for (int i = 0; i < S * S; i++) if (zm[i] == 1) Assert.True(zi[i] > 0.5f);
        Assert.All(zm, v => Assert.True(v is 0 or 1));
    }

    private static void WriteRgbTiff(string path, int w, int h)
    {
        using var t = BitMiracle.LibTiff.Classic.Tiff.Open(path, "w");
        t.SetField(BitMiracle.LibTiff.Classic.TiffTag.IMAGEWIDTH, w);
        t.SetField(BitMiracle.LibTiff.Classic.TiffTag.IMAGELENGTH, h);
        t.SetField(BitMiracle.LibTiff.Classic.TiffTag.SAMPLESPERPIXEL, 3);
        t.SetField(BitMiracle.LibTiff.Classic.TiffTag.BITSPERSAMPLE, 8);
        t.SetField(BitMiracle.LibTiff.Classic.TiffTag.PHOTOMETRIC, BitMiracle.LibTiff.Classic.Photometric.RGB);
        t.SetField(BitMiracle.LibTiff.Classic.TiffTag.PLANARCONFIG, BitMiracle.LibTiff.Classic.PlanarConfig.CONTIG);
        t.SetField(BitMiracle.LibTiff.Classic.TiffTag.ROWSPERSTRIP, h);
        for (int y = 0; y < h; y++)
        {
            var row = new byte[w * 3];
            for (int x = 0; x < w; x++) { row[3 * x] = (byte)(10 * (x + 1) * (y + 1)); row[3 * x + 1] = 50; row[3 * x + 2] = 60; }
            t.WriteScanline(row, y);
        }
    }
}
