using Tmca.Cli;
using Tmca.Data;
using Tmca.Data.Layouts;
using Tmca.Model.Text;
using Tmca.Training;
using Xunit;

namespace Tmca.Tests.Data;

/// <summary>Every bad input of the main-job issue: a clear error naming the file, a non-zero exit, nothing written.</summary>
[Collection("cli")]
public class BadInputTests
{
    private static readonly WordPieceTokenizer Tok = WordPieceTokenizer.CxrBert();

    private static DataException LoadAndPrepare(string root)
    {
        return Assert.Throws<DataException>(() =>
        {
            var ds = DatasetLoader.Load(root);
            foreach (var split in new[] { ds.Train, ds.Val, ds.Test }) Preprocess.Prepare("x", split, 32, Tok.ForData());
        });
    }

    [Fact]
    public void MissingImage()
    {
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal: true);
        File.Delete(d["images/case_001.png"]);
        var e = LoadAndPrepare(d.Path);
        Assert.Contains("case_001", e.Message);
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public void CorruptImage()
    {
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal: true);
        File.WriteAllBytes(d["images/case_002.png"], [0x89, 0x50, 0x4E, 0x47, 1, 2, 3, 4, 5]);
        var e = LoadAndPrepare(d.Path);
        Assert.Contains("case_002.png", e.Message);
        var empty = d["images/case_003.png"];
        File.WriteAllBytes(empty, []);
        Assert.Throws<DataException>(() => Tmca.Data.Images.ImageIO.Load(empty));
    }

    [Fact]
    public void MaskOfAnotherSize()
    {
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal: true);
        DataFixtures.Mask(d["masks/case_004.png"], 30, 40);
        var e = LoadAndPrepare(d.Path);
        Assert.Contains("case_004.png", e.Message);
        Assert.Contains("30×40", e.Message);
        Assert.Contains("40×40", e.Message);
    }

    [Fact]
    public void ReportRowMissingForAnImage()
    {
        using var d = new TempDir();
        DataFixtures.Lvit(d.Path, qataStyle: false, withVal: false);
        DataFixtures.Workbook(d["Train_Folder/Train_text.xlsx"], Enumerable.Range(0, 5).Select(i => ($"tr{i}.png", "x")));   // tr5 has no row
        var e = LoadAndPrepare(d.Path);
        Assert.Contains("tr5.png", e.Message);
        Assert.Contains("no report row", e.Message);
    }

    [Fact]
    public void RowWithoutAnImage()
    {
        using var d = new TempDir();
        DataFixtures.Lvit(d.Path, qataStyle: false, withVal: false);
        File.Delete(d["Test_Folder/img/te2.png"]);
        File.Delete(d["Test_Folder/labelcol/te2.png"]);
        var e = LoadAndPrepare(d.Path);
        Assert.Contains("Test_text.xlsx", e.Message);
        Assert.Contains("'te2.png' has no image", e.Message);
        using var c = new TempDir();
        DataFixtures.Csv(c.Path, withVal: false);
        File.Delete(c["Test/Images/te1.png"]);
        Assert.Contains("has no image", LoadAndPrepare(c.Path).Message);
    }

    [Fact]
    public void EmptySplit()
    {
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal: true, test: 0);
        var e = LoadAndPrepare(d.Path);
        Assert.Contains("test split is empty", e.Message);
    }

    [Fact]
    public void UnknownLayout()
    {
        using var d = new TempDir();
        Directory.CreateDirectory(d["pictures"]);
        var e = LoadAndPrepare(d.Path);
        Assert.Contains("unknown dataset layout", e.Message);
        Assert.Contains(d.Path, e.Message);
    }

    [Fact]
    public void UnreadableWorkbookAndWrongColumns()
    {
        using var d = new TempDir();
        DataFixtures.Lvit(d.Path, qataStyle: false, withVal: false);
        File.WriteAllText(d["Test_Folder/Test_text.xlsx"], "this is not a zip file");
        var e = LoadAndPrepare(d.Path);
        Assert.Contains("Test_text.xlsx", e.Message);
        Assert.Contains("unreadable workbook", e.Message);
        using var w = new TempDir();
        DataFixtures.Lvit(w.Path, qataStyle: false, withVal: false);
        Tmca.Tests.Data.DataFixtures.Workbook(w["Test_Folder/Test_text.xlsx"], []);
        MiniExcelLibs.MiniExcel.SaveAs(w["Test_Folder/Test_text.xlsx"], new[] { new Dictionary<string, object> { ["File"] = "te0.png", ["Text"] = "x" } }, overwriteFile: true);
        Assert.Contains("needs columns 'Image' and 'Description'", LoadAndPrepare(w.Path).Message);
    }

    [Fact]
    public void CliExitsNonZeroWithOneLineAndLeavesNothingBehind()
    {
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal: true);
        File.WriteAllBytes(d["images/case_001.png"], [1, 2, 3]);
        string runDir = d["run"];
        var (code, err) = Cli.Run("train", d.Path, "--preset", "nano", "--epochs", "1", "--out", runDir);
        Assert.Equal(Tmca.Cli.ExitCodes.BadData, code);
        Assert.StartsWith("error: ", err);
        Assert.Contains("case_001.png", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(Directory.Exists(runDir));
    }

    [Fact]
    public void LongReportsAreTruncatedAndCounted()
    {
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal: true);
        File.WriteAllText(d["reports/case_000.txt"], string.Join(" ", Enumerable.Repeat("bilateral pulmonary infection", 20)));
        var ds = DatasetLoader.Load(d.Path);
        var train = Preprocess.Prepare("train", ds.Train, 32, Tok.ForData());
        Assert.Equal(1, train.TruncatedReports);
        Assert.Equal(Tok.Sep, train.Samples[0].Ids[23]);
    }
}
