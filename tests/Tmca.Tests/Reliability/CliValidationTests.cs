using Tmca.Cli;
using Tmca.Tests.Data;
using Xunit;

namespace Tmca.Tests.Reliability;

/// <summary>
/// Every command-line input is checked before any work: one line naming the problem, the documented exit code, and
/// nothing written (no run folder, no output folder).
/// </summary>
[Collection("cli")]
public class CliValidationTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    public static TheoryData<string, string[], string> UsageErrors => new()
    {
        { "zero epochs", ["train", "--epochs", "0"], "--epochs must be at least 1, not 0" },
        { "NaN learning rate", ["train", "--lr", "NaN"], "--lr must be a finite number" },
        { "negative learning rate", ["train", "--lr", "-1e-3"], "--lr must be a finite number" },
        { "batch of one", ["train", "--batch", "1"], "--batch must be at least 2, not 1" },
        { "not a number", ["train", "--epochs", "ten"], "ten" },
        { "unknown preset", ["train", "--preset", "huge"], "'huge'" },
        { "unknown device", ["train", "--device", "tpu"], "'tpu'" },
        { "unknown layout", ["train", "--layout", "coco"], "'coco'" },
        { "unknown option", ["train", "--epoch", "3"], "--epoch" },
        { "missing data folder", ["train", "@missing-data"], "folder @missing-data not found" },
        { "missing config", ["train", "--config", "@missing.json"], "@missing.json not found" },
        { "config and preset", ["train", "--config", "@cfg", "--preset", "nano"], "--preset and --config cannot be used together" },
        { "resume with options", ["train", "--resume", "@dir", "--lr", "0.1"], "--resume and --lr cannot be used together" },
        { "from without resume", ["train", "--from", "previous"], "--from needs --resume" },
        { "seeds and seed", ["train", "--seeds", "1,2", "--seed", "3"], "--seeds and --seed cannot be used together" },
        { "repeated seed", ["train", "--seeds", "1,1"], "--seeds: a value is listed twice" },
        { "bad seed", ["train", "--seeds", "1,x"], "--seeds: 'x' is not an integer" },
        { "bad nonfinite mode", ["train", "--on-nonfinite", "ignore"], "'ignore'" },
        { "bad flags", ["train", "--flags", "{\"alignment\": \"sideways\"}"], "--flags: flags: alignment 'sideways'" },
        { "flags not JSON", ["train", "--flags", "{text: "], "--flags:" },
        { "missing checkpoint", ["eval", "@missing.safetensors"], "CHECKPOINT: @missing.safetensors not found" },
        { "bad split", ["eval", "@cfg", "--split", "dev"], "'dev'" },
        { "image without report", ["predict", "@cfg", "--image", "@cfg"], "--image needs --report" },
        { "image and data", ["predict", "@cfg", "@dir", "--image", "@cfg", "--report", "x"], "--image and DATA cannot be used together" },
        { "ablate resume without out", ["ablate", "--resume"], "--resume needs --out" },
        { "negative sheet", ["compare", "@dir", "@dir", "--sheet", "-1"], "--sheet must be at least 0" },
        { "vocab missing", ["train", "--vocab", "@missing.txt"], "@missing.txt not found" },
    };

    [Theory, MemberData(nameof(UsageErrors))]
    public void ABadCommandLineIsOneLineAndExitCode2BeforeAnyWork(string why, string[] args, string expected)
    {
        _ = why;
        string cfg = TestConfigs.WriteTiny(_d["c"]);
        Directory.CreateDirectory(_d["existing"]);
        string Resolve(string a) => a switch
        {
            "@cfg" => cfg, "@dir" => _d["existing"],
            _ when a.StartsWith('@') => _d[a[1..]],
            _ => a,
        };
        // train gets an --out that must stay uncreated; the others are checked as given (ablate's --resume needs --out)
        var full = args[0] == "train" ? args.Select(Resolve).Concat(["--out", _d["out"]]).ToArray() : args.Select(Resolve).ToArray();
        var (code, err) = Cli.Run(full);
        Assert.True(code == ExitCodes.Usage, $"exit {code}: {err}");
        Assert.Single(err.Trim().Split('\n'));
        Assert.StartsWith("error: ", err);
        Assert.Contains(System.Text.RegularExpressions.Regex.Replace(expected, @"@([\w.-]+)", m => _d[m.Groups[1].Value]), err);
        Assert.False(Directory.Exists(_d["out"]));
    }

    /// <summary>A bug (an exception the engine never throws on purpose) is still one line, exit code 1, and its stack
    /// trace goes to a crash log the line names.</summary>
    [Fact]
    public void AnUnexpectedExceptionIsOneLineAndACrashLog()
    {
        var err = new StringWriter();
        var prev = Console.Error;
        Console.SetError(err);
        int code;
        try { code = Common.Guard(() => throw new IndexOutOfRangeException("index 7 is outside 0..6")); }
        finally { Console.SetError(prev); }
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Single(err.ToString().Trim().Split('\n'));
        var m = System.Text.RegularExpressions.Regex.Match(err.ToString(), @"^error: internal error \(IndexOutOfRangeException: index 7 is outside 0\.\.6\); stack trace in (\S+tmca-crash-\S+\.log); please report it");
        Assert.True(m.Success, err.ToString());
        var log = File.ReadAllText(m.Groups[1].Value);
        Assert.Contains("System.IndexOutOfRangeException: index 7 is outside 0..6", log);
        Assert.Contains("AnUnexpectedExceptionIsOneLineAndACrashLog", log);   // the stack trace
        File.Delete(m.Groups[1].Value);
    }

    [Fact]
    public void ABadConfigFileIsBadDataAndLeavesNoRunFolder()
    {
        File.WriteAllText(_d["bad.json"], "{\"dims\": [8, 16, 16], \"depths\": [1, 1, 1, 1]}");
        var (code, err) = Cli.Run("train", "--config", _d["bad.json"], "--out", _d["run"]);
        Assert.Equal(ExitCodes.BadData, code);
        Assert.StartsWith($"error: {_d["bad.json"]}: config: dims and depths need 4 entries", err);
        Assert.False(Directory.Exists(_d["run"]));
    }

    [Fact]
    public void AResumeWhoseDataFolderIsGoneNamesIt()
    {        Directory.CreateDirectory(_d["run"]);
        File.WriteAllText(_d["run/options.json"], "{\"Epochs\": 1, \"BatchSize\": 2, \"Lr\": 0.001, \"Flags\": {}, \"Preset\": \"nano\", \"Device\": \"cpu\", \"OnNonFinite\": \"stop\", \"Data\": \"/nonexistent/data\"}");
        var (code, err) = Cli.Run("train", "--resume", _d["run"]);
        Assert.Equal(ExitCodes.BadData, code);   // the data folder it names is gone: bad data, named
        Assert.Contains("/nonexistent/data", err);
        Assert.Single(err.Trim().Split('\n'));
    }
}
