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
        // checked while parsing now, naming the option (the generator's own check named no option)
        { "synthetic images too small", ["synth", "--size", "16", "--out", "@synth"], "--size must be at least 32, not 16" },
        { "plan config and preset", ["plan", "--config", "@cfg", "--preset", "nano"], "--preset and --config cannot be used together" },
        { "unknown ablation row", ["ablate", "--rows", "full-tmca,nope", "--out", "@abl"], "--rows: unknown ablation row 'nope'" },
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
        Assert.DoesNotContain("crash", err);   // a usage error is not a bug: no crash log
        Assert.False(Directory.Exists(_d["out"]));
        Assert.False(Directory.Exists(_d["synth"]));
        Assert.False(Directory.Exists(_d["abl"]));
    }

    /// <summary>An <see cref="ArgumentException"/> is an internal check failing (here the engine's shape check, reached as
    /// any command reaches it, inside <see cref="Common.Guard"/>): a bug, so exit 1 and a crash log — never exit 2,
    /// which would tell the user to fix a command line that was fine.</summary>
    [Fact]
    public void AFailedEngineShapeCheckIsABugWithACrashLogNotAUsageError()
    {
        var err = new StringWriter();
        var prev = Console.Error;
        Console.SetError(err);
        int code;
        try
        {
            code = Common.Guard(() =>
            {
                var x = Tmca.Engine.Tensor.Zeros([4, 5]);
                Tmca.Engine.CpuBackend.Instance.Permute(x, [0, 0], Tmca.Engine.Tensor.Zeros([4, 5]), accumulate: false);
                return 0;
            });
        }
        finally { Console.SetError(prev); }
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Single(err.ToString().Trim().Split('\n'));
        var m = System.Text.RegularExpressions.Regex.Match(err.ToString(), @"^error: internal error \(ArgumentException: permute: \[0,0\] is not a permutation\); stack trace in (\S+tmca-crash-\S+\.log)");
        Assert.True(m.Success, err.ToString());
        Assert.Contains("BackendChecks.Permute", File.ReadAllText(m.Groups[1].Value));
        File.Delete(m.Groups[1].Value);
    }

    [Fact]
    public void OnlyTheCliUsageTypeMeansFixTheCommandLine()
    {
        Assert.Equal(ExitCodes.Usage, ExitCodes.For(new UsageException("--x must be 1")));
        Assert.True(ExitCodes.Expected(new UsageException("--x must be 1")));
        Assert.Equal(ExitCodes.Usage, ExitCodes.For(new BackendUnavailableException("no GPU")));
        foreach (var bug in new Exception[] { new ArgumentException("shape"), new ArgumentOutOfRangeException("i"), new ArgumentNullException("t") })
        {
            Assert.Equal(ExitCodes.RuntimeFailure, ExitCodes.For(bug));
            Assert.False(ExitCodes.Expected(bug), bug.GetType().Name);
        }
        Assert.Equal(ExitCodes.BadData, ExitCodes.For(new InvalidDataException("config: dims")));
    }

    /// <summary>`tmca plan --config` reads the file as `tmca train --config` does: a config that does not fit is bad data
    /// naming the file (it was exit 2, "fix the command line").</summary>
    [Fact]
    public void APlanWithABadConfigFileIsBadDataNamingTheFile()
    {
        File.WriteAllText(_d["bad.json"], "{\"dims\": [8, 16, 16], \"depths\": [1, 1, 1, 1]}");
        var (code, err) = Cli.Run("plan", "--config", _d["bad.json"]);
        Assert.Equal(ExitCodes.BadData, code);
        Assert.StartsWith($"error: {_d["bad.json"]}: config: dims and depths need 4 entries", err);
        Assert.Single(err.Trim().Split('\n'));
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
