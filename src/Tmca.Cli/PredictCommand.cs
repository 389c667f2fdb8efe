using System.CommandLine;
using Tmca.Model.Text;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>`tmca predict CHECKPOINT [DATA] | --image FILE --report TEXT`: mask and overlay PNGs.</summary>
internal static class PredictCommand
{
    public static Command Build()
    {
        var ckpt = Common.CheckpointArgument();
        var data = Common.Data();
        var split = new Option<string>("--split") { DefaultValueFactory = _ => "test" }.OneOf("train", "val", "test");
        var image = new Option<string?>("--image") { Description = "one image file instead of a dataset split" }.ExistingFile();
        var report = new Option<string?>("--report") { Description = "the report for --image" };
        var outDir = new Option<string>("--out") { Description = "output folder (masks/, overlays/)", DefaultValueFactory = _ => "predictions" };
        var layout = Common.Layout(); var device = Common.Device(); var batch = Common.Batch(); var vocab = Common.Vocab();
        var cmd = new Command("predict", "predict masks and overlays (image, predicted and true contours, report) for a split or one image") { ckpt, data, split, image, report, outDir, layout, device, batch, vocab };
        cmd.Exclusive(image, data, "--image predicts one image, DATA a whole split");
        cmd.Requires(image, report);
        cmd.Requires(report, image);
        cmd.SetAction(p => Common.Guard(() =>
        {
            var backend = Common.Backend(p.GetValue(device)!);
            var model = Common.LoadModel(p.GetValue(ckpt)!, backend);
            var ui = Common.Reporter();
            string outPath = p.GetValue(outDir)!;
            if (p.GetValue(image) is { } img)
            {
                if (p.GetValue(report) is not { } rep) throw new UsageException("--image needs --report \"…\" (the text that says what to segment)");
                var tok = p.GetValue(vocab) is { } v ? WordPieceTokenizer.FromVocabFile(v) : WordPieceTokenizer.CxrBert();
                var (mask, overlay) = Predictor.PredictOne(model, img, rep, tok, outPath, ui.Warning);
                Console.WriteLine($"mask: {mask}\noverlay: {overlay}");
                return 0;
            }
            var prepared = PreparedData.Load(p.GetValue(data) is { } d ? Path.GetFullPath(d) : null, p.GetValue(layout), model.Config.ImageSize, p.GetValue(vocab), ui.Info, ui.Warning);
            int n = Predictor.PredictSplit(model, prepared.Split(p.GetValue(split)!), outPath, p.GetValue(batch), ui.Warning);
            Console.WriteLine($"{n} predictions written to {outPath}/masks and {outPath}/overlays");
            return 0;
        }));
        return cmd;
    }
}
