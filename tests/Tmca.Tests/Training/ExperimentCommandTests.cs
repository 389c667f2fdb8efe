using System.Globalization;
using Tmca.Model;
using Tmca.Tests.Data;
using Tmca.Training;
using Xunit;

namespace Tmca.Tests.Training;

/// <summary>`tmca compare` and `tmca ablate --seeds` from the command line, on each dataset layout.</summary>
[Collection("cli")]
public class ExperimentCommandTests
{
    [Theory]
    [InlineData("lvit")]
    [InlineData("csv")]
    [InlineData("per-id")]
    public void CompareAndAblateWorkOnEveryLayout(string layout)
    {
        using var d = new TempDir();
        string data = d["data"];
        switch (layout)
        {
            case "lvit": DataFixtures.Lvit(data, qataStyle: false, withVal: true); break;
            case "csv": DataFixtures.Csv(data, withVal: true); break;
            default: DataFixtures.PerId(data, withVal: true); break;
        }
        var cfg = TestConfigs.WriteTiny(d.Path);
        string[] common = ["--config", cfg, "--epochs", "1", "--steps", "2", "--batch", "2"];
        Assert.Equal(0, Cli.Run(["train", data, .. common, "--seed", "1", "--out", d["a"]]).Code);
        Assert.Equal(0, Cli.Run(["train", data, .. common, "--seed", "2", "--flags", "{\"text\": false}", "--out", d["b"]]).Code);

        var (code, err) = Cli.Run("compare", d["a"], d["b"], "--out", d["cmp"]);
        Assert.True(code == 0, err);
        var a = PerSampleCsv.Read(d["a/eval-test/per-sample.csv"]);
        var b = PerSampleCsv.Read(d["b/eval-test/per-sample.csv"]).ToDictionary(x => x.Id, x => x.Counts);
        double meanDiff = a.Average(x => x.Counts.Dice - b[x.Id].Dice);   // computed here, independently of the command
        var md = File.ReadAllText(d["cmp/compare.md"]);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"{meanDiff * 100:+0.00;-0.00} ["), md);
        Assert.Equal(1 + a.Count, File.ReadAllLines(d["cmp/compare.csv"]).Length);
        Assert.True(File.Exists(d["cmp/compare.png"]));
        Assert.True(File.Exists(d["cmp/largest-differences.png"]));

        (code, err) = Cli.Run(["ablate", data, .. common, "--rows", "text-guidance,full-tmca", "--seeds", "1,2", "--out", d["abl"]]);
        Assert.True(code == 0, err);
        Assert.Equal(1 + 3 * 2, File.ReadAllLines(d["abl/ablation-seeds.csv"]).Length);
        Assert.Contains("Δ Dice vs text guidance [95 % CI]", File.ReadAllText(d["abl/ablation.md"]));
        Assert.True(File.Exists(d["abl/ablation.png"]));
        // every option reached the runs (an option left out of the command would silently read as 0)
        using (var opts = System.Text.Json.JsonDocument.Parse(File.ReadAllText(d["abl/full-tmca/seed-2/options.json"])))
        {
            Assert.Equal(3e-4, opts.RootElement.GetProperty("Lr").GetDouble());
            Assert.Equal(2, opts.RootElement.GetProperty("Seed").GetInt32());
            Assert.Equal(1, opts.RootElement.GetProperty("Epochs").GetInt32());
        }
        // an unknown row fails before any work, naming the rows there are
        (code, err) = Cli.Run(["ablate", data, .. common, "--rows", "nope", "--out", d["abl2"]]);
        Assert.Equal(2, code);
        Assert.Contains("unknown ablation row 'nope'", err);
        Assert.False(Directory.Exists(d["abl2"]));
    }

    [Fact]
    public void ComparingRunsOfDifferentSplitsIsAClearError()
    {
        using var d = new TempDir();
        Directory.CreateDirectory(d["x/eval-test"]); Directory.CreateDirectory(d["y/eval-test"]);
        File.WriteAllText(d["x/eval-test/per-sample.csv"], "id,tp,fp,fn,tn,dice,iou,accuracy,both_empty,report\na,1,0,0,3,1,1,1,0,r\n");
        File.WriteAllText(d["y/eval-test/per-sample.csv"], "id,tp,fp,fn,tn,dice,iou,accuracy,both_empty,report\nb,1,0,0,3,1,1,1,0,r\n");
        var (code, err) = Cli.Run("compare", d["x"], d["y"], "--out", d["c"]);
        Assert.Equal(Tmca.Cli.ExitCodes.BadData, code);
        Assert.Contains("share no test image", err);
    }
}
