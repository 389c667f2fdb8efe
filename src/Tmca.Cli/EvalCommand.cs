using System.CommandLine;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>`tmca eval CHECKPOINT [DATA]`: both metric protocols from one pass, per-sample CSV, JSON and markdown.</summary>
internal static class EvalCommand
{
    public static Command Build()
    {
        var ckpt = Common.CheckpointArgument();
        var data = Common.Data();
        var split = new Option<string>("--split") { DefaultValueFactory = _ => "test", Description = "train, val or test" }.OneOf("train", "val", "test");
        var outDir = new Option<string?>("--out") { Description = "folder for per-sample.csv, metrics.json, results.md (default: beside the checkpoint)" };
        var shuffled = new Option<bool>("--shuffle-text") { Description = "the shuffled-text control: each image gets another image's report" };
        var layout = Common.Layout(); var device = Common.Device(); var batch = Common.Batch(); var vocab = Common.Vocab();
        var cmd = new Command("eval", "evaluate a checkpoint on a split (per-image and micro Dice/IoU, accuracy)") { ckpt, data, split, outDir, shuffled, layout, device, batch, vocab };
        cmd.SetAction(p => Common.Guard(() =>
        {
            var backend = Common.Backend(p.GetValue(device)!);
            var model = Common.LoadModel(p.GetValue(ckpt)!, backend);
            var ui = Common.Reporter();
            var prepared = PreparedData.Load(p.GetValue(data) is { } d ? Path.GetFullPath(d) : null, p.GetValue(layout), model.Config.ImageSize, p.GetValue(vocab), ui.Info, ui.Warning);
            var ev = Evaluator.Run(model, prepared.Split(p.GetValue(split)!), p.GetValue(batch), p.GetValue(shuffled));
            string dir = p.GetValue(outDir) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(p.GetValue(ckpt)!))!, $"eval-{p.GetValue(split)}{(p.GetValue(shuffled) ? "-shuffled" : "")}");
            Evaluator.Write(ev, dir, Path.GetFileName(p.GetValue(ckpt)!), p.GetValue(ckpt));
            Console.WriteLine(Evaluator.Markdown(ev, Path.GetFileName(p.GetValue(ckpt)!)));
            Console.WriteLine($"written: {dir}/per-sample.csv, metrics.json, results.md");
            return 0;
        }));
        return cmd;
    }
}
