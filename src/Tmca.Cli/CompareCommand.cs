using System.CommandLine;
using System.Text.Json;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>`tmca compare RUN_A RUN_B`: the two runs' per-image test scores paired image by image — differences with
/// bootstrap intervals and a sign test — and a contact sheet of the images where they differ most.</summary>
internal static class CompareCommand
{
    public static Command Build()
    {
        var a = new Argument<string>("run-a") { Description = "run folder (or its eval-test/per-sample.csv)" };
        var b = new Argument<string>("run-b") { Description = "run folder (or its eval-test/per-sample.csv)" };
        var outDir = new Option<string?>("--out") { Description = "folder for compare.md, compare.csv, compare.png and largest-differences.png (default runs/<date>-compare)" };
        var sheet = new Option<int>("--sheet") { Description = "images in the contact sheet (largest |ΔDice| first; 0: none)", DefaultValueFactory = _ => 8 }.Positive(min: 0);
        var device = Common.Device();
        var cmd = new Command("compare", "paired comparison of two runs on the same test images (Dice and IoU differences, 95 % bootstrap intervals, sign test, contact sheet)")
        {
            a, b, outDir, sheet, device,
        };
        cmd.SetAction(p => Common.Guard(() =>
        {
            var runA = ComparedRun.Open(p.GetValue(a)!);
            var runB = ComparedRun.Open(p.GetValue(b)!);
            var (rows, pairs) = RunComparison.Compare(runA, runB);
            string dir = p.GetValue(outDir) ?? Path.Combine("runs", $"{DateTime.Now:yyyyMMdd-HHmmss}-compare");
            Directory.CreateDirectory(dir);
            var md = RunComparison.Markdown(runA, runB, rows, pairs);
            Tmca.Engine.AtomicFile.WriteAllText(Path.Combine(dir, "compare.md"), md);
            Tmca.Engine.AtomicFile.WriteAllText(Path.Combine(dir, "compare.csv"), RunComparison.Csv(pairs));
            RunComparison.Figure(rows, $"A ({runA.Label}) − B ({runB.Label}), {pairs.Count} test images", Path.Combine(dir, "compare.png"));
            Console.WriteLine(md);
            string? why = ContactSheet(runA, runB, pairs, p.GetValue(sheet), Path.Combine(dir, "largest-differences.png"), p.GetValue(device)!);
            Console.WriteLine(why is null ? $"written: {dir}/compare.md, compare.csv, compare.png, largest-differences.png"
                                          : $"written: {dir}/compare.md, compare.csv, compare.png (no contact sheet: {why})");
            return 0;
        }));
        return cmd;
    }

    /// <summary>The contact sheet needs both runs' checkpoints and the dataset (from run A's options.json); null when written, else why not.</summary>
    private static string? ContactSheet(ComparedRun a, ComparedRun b, List<PairedImage> pairs, int count, string path, string device)
    {
        if (count == 0) return "--sheet 0";
        if (a.RunDir is null || b.RunDir is null) return "given per-sample.csv files, not run folders";
        string ca = Path.Combine(a.RunDir, "checkpoints", "best.safetensors"), cb = Path.Combine(b.RunDir, "checkpoints", "best.safetensors");
        string opts = Path.Combine(a.RunDir, "options.json");
        if (!File.Exists(ca) || !File.Exists(cb) || !File.Exists(opts)) return "a run folder lacks checkpoints/best.safetensors or options.json";
        var o = JsonSerializer.Deserialize<TrainOptions>(File.ReadAllText(opts)) ?? throw new InvalidDataException($"{opts}: empty");
        var backend = Common.Backend(device);
        var ma = Common.LoadModel(ca, backend);
        var mb = Common.LoadModel(cb, backend);
        if (ma.Config.ImageSize != mb.Config.ImageSize) return $"the runs' models have different sizes ({ma.Config.ImageSize} and {mb.Config.ImageSize} px)";
        var ui = Common.Reporter();
        var data = PreparedData.Load(o.Data, o.Layout, ma.Config.ImageSize, o.Vocab, _ => { }, ui.Warning);
        RunComparison.ContactSheet(ma, mb, data.Test, pairs, count, a.Label, b.Label, path);
        return null;
    }
}
