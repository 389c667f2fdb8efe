using Xunit;

namespace Tmca.Tests.Reliability;

/// <summary>
/// Every reader fuzzed (see <see cref="Fuzzer"/>): at least 500 cases each in CI (TMCA_FUZZ_CASES for a longer run,
/// TMCA_FUZZ_SEED=random for new cases, TMCA_FUZZ_REPLAY=reader:seed:case to rerun one). Each case must end in the
/// reader's typed error naming the file, within the deadline and the reader's allocation cap.
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    public static TheoryData<string> Readers => new(FuzzTargets.Names);

    [Theory, MemberData(nameof(Readers))]
    public void EveryCaseEndsInATypedErrorWithinItsDeadlineAndCap(string reader)
    {
        var target = FuzzTargets.Get(reader);
        var report = Fuzzer.Run(target, Fuzzer.SeedFor(reader), Fuzzer.Cases);
        string line = $"| {reader} | {report.Cases} | {target.Crafted.Length} | {report.Accepted} | {report.Refused} | {report.Failures.Count} | {report.MaxMs:0} ms | {report.MaxAllocated / 1048576.0:0.0} MiB | {target.CapText} | seed {report.Seed} |";
        output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("TMCA_FUZZ_REPORT") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
        Assert.True(report.Failures.Count == 0, string.Join("\n\n", report.Failures));
        foreach (var (seed, cases) in FuzzTargets.Regressions.Where(r => r.Reader == reader).Select(r => (r.Seed, r.Cases)))
        {
            var again = Fuzzer.Run(target, seed, 0, cases);
            Assert.True(again.Failures.Count == 0, "a case a long run found fails again:\n" + string.Join("\n\n", again.Failures));
        }
        if (Environment.GetEnvironmentVariable("TMCA_FUZZ_REPLAY") is { Length: > 0 }) return;   // one case replayed
        Assert.True(report.Cases >= Math.Min(500, Fuzzer.Cases));
        Assert.True(report.Refused > 0, "no case was refused: the mutations never reached the reader's checks");
    }
}
