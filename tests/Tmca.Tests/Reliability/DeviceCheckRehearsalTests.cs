using System.Diagnostics;
using Tmca.Tests.Cuda;
using Tmca.Tests.Data;
using Xunit;

namespace Tmca.Tests.Reliability;

/// <summary>
/// The device check's deadline logic, rehearsed here (bench/device-check.sh run --simulate, on cuda-sim) with a budget
/// too small for its stages: what ran is in the report with its section, what the deadline stopped is "cut at the
/// deadline" or "not reached" in the stage table, the report ends with the verdict, and the exit code says partial (3).
/// </summary>
[Collection("child-processes")]
public class DeviceCheckRehearsalTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    [Fact]
    public async Task ASmallBudgetEndsPartialWithACompleteReport()
    {
        Device.Require();   // the rehearsal runs on the simulator (CI has it)
        const int budget = 20;
        string outDir = _d["out"];
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Paths.RepoRoot };
        psi.ArgumentList.Add(Path.Combine(Paths.RepoRoot, "bench", "device-check.sh"));
        psi.ArgumentList.Add("run");
        psi.ArgumentList.Add("--simulate");
        psi.Environment["TMCA_CHECK_BUDGET"] = budget.ToString();
        psi.Environment["TMCA_CHECK_BIN"] = AppContext.BaseDirectory;
        psi.Environment["OUT"] = outDir;
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(budget + 30)), "the rehearsal outlived its budget");
        sw.Stop();
        string report = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.True(p.ExitCode == 3, $"exit {p.ExitCode}\n{await stdout}\n{await stderr}\n{report}");
        Assert.True(sw.Elapsed.TotalSeconds <= budget + 2, $"{sw.Elapsed.TotalSeconds:0} s for a {budget} s budget");

        Assert.StartsWith("# Tmca.Native device check", report);
        Assert.Contains("REHEARSAL on cuda-sim", report);
        Assert.Matches(@"## doctor — done \(\d+ s", report);
        Assert.Matches(@"copy bandwidth: \d+ GB/s measured", report);
        string[] stages = ["doctor", "parity", "ours-vs-pytorch", "kernel-lab", "train-qata", "faults", "torch-compile"];
        var table = report[report.IndexOf("## stages", StringComparison.Ordinal)..];
        foreach (var s in stages) Assert.Matches($@"\| {s} \| (done|failed|cut at the deadline|not reached)", table);
        Assert.Matches(@"\| torch-compile \| not reached", table);
        Assert.DoesNotContain("| failed", table);
        Assert.EndsWith("verdict: partial: a stage was cut at the deadline or not reached (exit 3)", report.TrimEnd());
        // every stage that ran has its section, and none that did not
        foreach (var s in stages)
            Assert.Equal(!table.Contains($"| {s} | not reached", StringComparison.Ordinal), report.Contains($"## {s} — ", StringComparison.Ordinal));
    }
}
