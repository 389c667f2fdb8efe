using Tmca.Cli;
using Xunit;

namespace Tmca.Tests.Reliability;

/// <summary>A flipped bit or a truncated checkpoint is refused whole, naming the file and the intact checkpoint to use
/// instead; resuming from that one ends where the uninterrupted run ended.</summary>
[Collection("cli")]
public class CheckpointIntegrityTests(KillFixture fx) : IClassFixture<KillFixture>
{
    private string CopyOfReference(string name)
    {
        string dst = Path.Combine(fx.Root, name);
        foreach (var f in Directory.GetFiles(fx.Reference, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(dst, Path.GetRelativePath(fx.Reference, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        return dst;
    }

    private static void FlipBitNearTheEnd(string path)
    {
        var b = File.ReadAllBytes(path);
        b[^37] ^= 0x10;
        File.WriteAllBytes(path, b);
    }

    [Fact]
    public void AFlippedBitInLastIsRefusedAndThePreviousCheckpointResumesExactly()
    {
        string run = CopyOfReference("flip");
        string last = Path.Combine(run, "checkpoints", "last.safetensors");
        FlipBitNearTheEnd(last);
        var (code, err) = Cli.Run("train", "--resume", run);
        Assert.Equal(ExitCodes.BadData, code);
        Assert.Contains(last, err);
        Assert.Contains("checksum mismatch", err);
        Assert.Contains($"tmca train --resume {run} --from previous", err);
        Assert.Single(err.Trim().Split('\n'));

        var (code2, err2) = Cli.Run("train", "--resume", run, "--from", "previous");
        Assert.True(code2 == 0, err2);
        SameRun.Assert(fx.Reference, run);
    }

    [Fact]
    public void ALogLineHalfWrittenByAKillIsDroppedOnResume()
    {
        string run = CopyOfReference("partial-line");
        File.AppendAllText(Path.Combine(run, "steps.jsonl"), "{\"step\": 10, \"epoch\": 4, \"lo");
        var (code, err) = Cli.Run("train", "--resume", run, "--from", "previous");
        Assert.True(code == 0, err);
        SameRun.Assert(fx.Reference, run);
    }

    [Fact]
    public void ATruncatedCheckpointIsRefusedBeforeAnythingLoads()
    {
        string run = CopyOfReference("truncated");
        string last = Path.Combine(run, "checkpoints", "last.safetensors");
        var b = File.ReadAllBytes(last);
        File.WriteAllBytes(last, b[..(b.Length / 2)]);
        var (code, err) = Cli.Run("train", "--resume", run);
        Assert.Equal(ExitCodes.BadData, code);
        Assert.Contains(last, err);
        Assert.Contains("--from previous", err);

        // both gone bad: nothing to offer, still one clear line
        FlipBitNearTheEnd(Path.Combine(run, "checkpoints", "previous.safetensors"));
        var (code2, err2) = Cli.Run("train", "--resume", run);
        Assert.Equal(ExitCodes.BadData, code2);
        Assert.Contains("no intact earlier checkpoint", err2);
        var (code3, err3) = Cli.Run("train", "--resume", run, "--from", "previous");
        Assert.Equal(ExitCodes.BadData, code3);
        Assert.Contains("previous.safetensors: refused, checksum mismatch", err3);
    }

    [Fact]
    public void EvalRefusesACorruptBestAndNamesTheIntactLast()
    {
        string run = CopyOfReference("best");
        string best = Path.Combine(run, "checkpoints", "best.safetensors");
        FlipBitNearTheEnd(best);
        var (code, err) = Cli.Run("eval", best, fx.Data, "--out", Path.Combine(run, "e"));
        Assert.Equal(ExitCodes.BadData, code);
        Assert.Contains($"{best}: refused, checksum mismatch", err);
        Assert.Contains("last.safetensors in the same folder is intact", err);
        Assert.False(Directory.Exists(Path.Combine(run, "e")));
    }
}
