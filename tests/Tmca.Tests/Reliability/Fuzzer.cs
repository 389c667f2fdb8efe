using System.Diagnostics;
using Tmca.Engine;

namespace Tmca.Tests.Reliability;

/// <summary>
/// One reader under fuzzing: valid seed files to mutate, hand-made hostile files, how to run the reader on a path,
/// and the most managed memory it may allocate for a file of a given size (its stated cap).
/// </summary>
public sealed record FuzzTarget(
    string Name,
    byte[][] Seeds,
    (string Label, byte[] Bytes)[] Crafted,
    Action<string> Read,
    Func<long, long> AllocationCap,
    string CapText,
    string FileName = "input.bin",
    Action<string>? Prepare = null,
    bool ErrorMayNameAnotherFile = false);

/// <summary>What a fuzz run saw.</summary>
public sealed record FuzzReport(string Reader, int Seed, int Cases, int Accepted, int Refused, double MaxMs, long MaxAllocated, List<string> Failures);

/// <summary>
/// The fuzzing loop. Case i of seed s is fully determined by (s, i): crafted files first, then mutations of the seeds
/// (random bytes, truncations, bit flips, overwrites with boundary bytes, duplicated or deleted chunks, splices).
/// Each case runs on its own thread under a deadline, and its managed allocations are counted on that thread.
/// A case passes when the reader returns, or throws <see cref="InputFileException"/> (or a subtype) whose message starts
/// with the path of the file at fault. Anything else — another exception type, a hang, an allocation over the cap —
/// is a failure, reported with the replay line: TMCA_FUZZ_REPLAY=reader:seed:case.
/// </summary>
public static class Fuzzer
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    /// <summary>Cases per reader: TMCA_FUZZ_CASES, else 500.</summary>
    public static int Cases => int.TryParse(Environment.GetEnvironmentVariable("TMCA_FUZZ_CASES"), out var n) && n > 0 ? n : 500;

    /// <summary>TMCA_FUZZ_SEED: a number, or "random" for a new seed each run (printed in the report); default fixed per reader.</summary>
    public static int SeedFor(string reader)
    {
        var s = Environment.GetEnvironmentVariable("TMCA_FUZZ_SEED");
        if (s == "random") return Random.Shared.Next();
        if (int.TryParse(s, out var v)) return v;
        return StableHash(reader);
    }

    /// <param name="only">Run just these cases of <paramref name="seed"/> (the regressions a long run found).</param>
    public static FuzzReport Run(FuzzTarget t, int seed, int cases, IEnumerable<int>? only = null)
    {
        var dir = Directory.CreateTempSubdirectory($"tmca-fuzz-{t.Name}-").FullName;
        try
        {
            t.Prepare?.Invoke(dir);
            string path = Path.Combine(dir, t.FileName);
            var failures = new List<string>();
            int accepted = 0, refused = 0;
            double maxMs = 0;
            long maxAlloc = 0;
            IEnumerable<int> which = only?.ToList() ?? Enumerable.Range(0, cases);
            if (Replay(t.Name) is { } r) { seed = r.Seed; which = [r.Case]; }
            foreach (int i in which)
            {
                var (label, bytes) = Case(t, seed, i);
                File.WriteAllBytes(path, bytes);
                var outcome = RunOne(t, path, dir);
                maxMs = Math.Max(maxMs, outcome.Ms);
                maxAlloc = Math.Max(maxAlloc, outcome.Allocated);
                string where = $"{t.Name} case {i} ({label}, {bytes.Length} bytes) — replay: TMCA_FUZZ_REPLAY={t.Name}:{seed}:{i}";
                if (outcome.Problem is { } p) failures.Add($"{where}: {p}");
                else if (outcome.Allocated > t.AllocationCap(bytes.Length)) failures.Add($"{where}: allocated {outcome.Allocated:N0} bytes, over the cap {t.AllocationCap(bytes.Length):N0} ({t.CapText})");
                else if (outcome.Accepted) accepted++;
                else refused++;
                if (failures.Count >= 10) break;
            }
            return new FuzzReport(t.Name, seed, which.Count(), accepted, refused, maxMs, maxAlloc, failures);
        }
        finally { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } }
    }

    private sealed record Outcome(bool Accepted, string? Problem, double Ms, long Allocated);

    private static Outcome RunOne(FuzzTarget t, string path, string dir)
    {
        Outcome? result = null;
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            var sw = Stopwatch.StartNew();
            string? problem = null;
            bool accepted = false;
            try { t.Read(path); accepted = true; }
            catch (InputFileException e)
            {
                bool namesFile = t.ErrorMayNameAnotherFile ? e.Path.StartsWith(dir, StringComparison.Ordinal) : e.Path == path;
                if (!namesFile || !e.Message.StartsWith(e.Path, StringComparison.Ordinal)) problem = $"the error names {e.Path}, not the file at fault: {e.Message}";
            }
            catch (Exception e) { problem = $"{e.GetType().Name} instead of the reader's typed error: {e.Message}\n{e.StackTrace}"; }
            result = new Outcome(accepted, problem, sw.Elapsed.TotalMilliseconds, GC.GetAllocatedBytesForCurrentThread() - before);
        }, maxStackSize: 16 << 20) { IsBackground = true };
        thread.Start();
        if (!thread.Join(Deadline)) return new Outcome(false, $"still running after {Deadline.TotalSeconds:0} s (a hang)", Deadline.TotalMilliseconds, 0);
        return result!;
    }

    /// <summary>Case <paramref name="i"/> of <paramref name="seed"/>.</summary>
    public static (string Label, byte[] Bytes) Case(FuzzTarget t, int seed, int i)
    {
        if (i < t.Crafted.Length) return t.Crafted[i];
        var r = new Random(unchecked(seed * 1_000_003 + i));   // not HashCode.Combine: it is salted per process, and a case must replay anywhere
        var s = t.Seeds[r.Next(t.Seeds.Length)];
        // Headers hold the structure: half of the positions fall in the first 512 bytes.
        int Pos(int len) => len == 0 ? 0 : r.Next(2) == 0 ? r.Next(Math.Min(len, 512)) : r.Next(len);
        switch (r.Next(7))
        {
            case 0:
            {
                var b = new byte[r.Next(0, Math.Max(16, 2 * s.Length))];
                r.NextBytes(b);
                if (b.Length >= 8 && r.Next(2) == 0) s.AsSpan(0, Math.Min(8, s.Length)).CopyTo(b);   // keep the magic sometimes
                return ("random bytes", b);
            }
            case 1: return ("truncated", s[..r.Next(s.Length)]);
            case 2:
            {
                var b = (byte[])s.Clone();
                int flips = 1 + r.Next(8);
                for (int k = 0; k < flips && b.Length > 0; k++) b[Pos(b.Length)] ^= (byte)(1 << r.Next(8));
                return ($"{flips} bit flip(s)", b);
            }
            case 3:
            {
                var b = (byte[])s.Clone();
                byte[] boundary = [0x00, 0xFF, 0x7F, 0x80, 0xFE, 0x01];
                int at = Pos(b.Length), len = 1 + r.Next(8);
                byte v = boundary[r.Next(boundary.Length)];
                for (int k = at; k < Math.Min(b.Length, at + len); k++) b[k] = v;
                return ($"{len} byte(s) set to 0x{v:X2}", b);
            }
            case 4:
            {
                if (s.Length < 2) return ("seed", s);
                int at = Pos(s.Length), len = 1 + r.Next(Math.Min(256, s.Length - at));
                var chunk = s.AsSpan(at, Math.Min(len, s.Length - at)).ToArray();
                int to = Pos(s.Length);
                return ("chunk duplicated", [.. s[..to], .. chunk, .. s[to..]]);
            }
            case 5:
            {
                if (s.Length < 2) return ("seed", s);
                int at = Pos(s.Length), len = 1 + r.Next(Math.Min(256, s.Length - at));
                return ("chunk deleted", [.. s[..at], .. s[Math.Min(s.Length, at + len)..]]);
            }
            default:
            {
                var o = t.Seeds[r.Next(t.Seeds.Length)];
                int a = r.Next(s.Length + 1), b = r.Next(o.Length + 1);
                return ("spliced", [.. s[..a], .. o[b..]]);
            }
        }
    }

    private static (int Seed, int Case)? Replay(string reader)
    {
        var spec = Environment.GetEnvironmentVariable("TMCA_FUZZ_REPLAY");
        if (spec is null) return null;
        var p = spec.Split(':');
        return p.Length == 3 && p[0] == reader && int.TryParse(p[1], out var s) && int.TryParse(p[2], out var c) ? (s, c) : null;
    }

    private static int StableHash(string s)
    {
        int h = 17;
        foreach (var ch in s) h = unchecked(h * 31 + ch);
        return h & 0x7fffffff;
    }
}
