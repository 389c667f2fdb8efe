using System.Text.Json;
using Tmca.Cli;
using Tmca.Data;
using Tmca.Data.Synthetic;
using Tmca.Engine;
using Tmca.Engine.Verification;
using Tmca.Model;
using Tmca.Tests.Data;
using Tmca.Training;
using Xunit;

namespace Tmca.Tests.Training;

/// <summary>Training-loop behaviour on a tiny synthetic dataset with a tiny model (seconds, not minutes).</summary>
[Collection("cli")]
public class TrainingTests
{
    private static readonly TmcaConfig Tiny = TestConfigs.Tiny;

    private static readonly Lazy<PreparedData> Data = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), $"tmca-test-synth-{Environment.ProcessId}");
        if (!File.Exists(Path.Combine(dir, "split.json"))) SyntheticCxr.Generate(new SyntheticOptions(64, 24, 8, 8, Seed: 3), dir);
        return PreparedData.Load(dir, "per-id", 32, null, _ => { }, _ => { });
    });

    private static TrainOptions Options(string dir, int epochs, int patience = 0)
    {
        var cfg = TestConfigs.WriteTiny(dir);
        return new TrainOptions { ConfigFile = cfg, Epochs = epochs, BatchSize = 8, Lr = 1e-3, Seed = 5, Patience = patience };
    }

    private static Dictionary<string, double[]> Tensors(string path)
    {
        var f = SafetensorsFile.Open(path);
        return f.Names.ToDictionary(n => n, n => f.Load(n).ToDoubles());
    }

    /// <summary>The same seeded run on the CPU and on the CUDA backend (the GPU, or the simulator in CI): the same
    /// batches, the same per-step losses to float32 precision, then the same kind of run folder.</summary>
    [Fact]
    public void TrainingOnTheCudaBackendFollowsTheCpu()
    {
        var device = Tmca.Tests.Cuda.Device.Require();
        using var d = new TempDir();
        var o = Options(d["opts"], 1) with { MaxSteps = 4 };
        Trainer.Run(o, Data.Value, d["cpu"], new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken);
        var r = Trainer.Run(o, Data.Value, d["cuda"], new SilentReporter(), device, TestContext.Current.CancellationToken);
        double[] Losses(string run, string key) => File.ReadAllLines(Path.Combine(run, "steps.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty(key).GetDouble()).ToArray();
        foreach (var key in new[] { "loss", "bce", "dice_loss", "nce", "pix" })
        {
            var (cpu, cuda) = (Losses(d["cpu"], key), Losses(d["cuda"], key));
            Assert.True(cpu.Length >= 3, $"{cpu.Length} steps");
            Assert.Equal(cpu.Length, cuda.Length);
            for (int i = 0; i < cpu.Length; i++)
                Assert.True(Math.Abs(cpu[i] - cuda[i]) <= 1e-4 + 1e-3 * Math.Abs(cpu[i]), $"step {i + 1} {key}: CPU {cpu[i]:R}, CUDA {cuda[i]:R}");
        }
        // the checkpoint written from the device loads on the CPU, with the trained (moved) weights
        var cpuBest = Tensors(Path.Combine(d["cpu"], "checkpoints", "best.safetensors"));
        var cudaBest = Tensors(r.BestCheckpoint);
        Assert.Equal(cpuBest.Keys.Order(), cudaBest.Keys.Order());
        foreach (var name in new[] { "image_encoder.embeddings.patch_embeddings.weight", "image_encoder.encoder.stages.0.layers.0.dwconv.weight" })
            Assert.True(Comparison.Of(name, ToleranceKind.Gradient, Tensor.FromArray(cudaBest[name]), Tensor.FromArray(cpuBest[name])).Pass, name);
    }

    [Fact]
    public void SeededRunsAreDeterministicAndResumeContinuesExactly()
    {
        using var d = new TempDir();
        var straight = Trainer.Run(Options(d["a"], 3), Data.Value, d["a"], new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken);
        var again = Trainer.Run(Options(d["b"], 3), Data.Value, d["b"], new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken);
        var first = Tensors(Path.Combine(d["a"], "checkpoints", "last.safetensors"));
        Assert.Equal(first, Tensors(Path.Combine(d["b"], "checkpoints", "last.safetensors")));      // bit-identical

        // 1 epoch, then resume to 3: the same checkpoint as 3 epochs straight (model, optimiser moments, RNG state)
        Trainer.Run(Options(d["c"], 1), Data.Value, d["c"], new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken);
        var resumed = Trainer.Run(Options(d["c"], 3), Data.Value, d["c"], new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken, resume: true);
        Assert.Equal(straight.Steps, resumed.Steps);
        var res = Tensors(Path.Combine(d["c"], "checkpoints", "last.safetensors"));
        Assert.Equal(first.Keys.Order(), res.Keys.Order());
        foreach (var k in first.Keys) Assert.Equal(first[k], res[k]);
        Assert.Equal(File.ReadAllLines(Path.Combine(d["a"], "epochs.jsonl")).Length, File.ReadAllLines(Path.Combine(d["c"], "epochs.jsonl")).Length);
        Assert.Equal(File.ReadAllLines(Path.Combine(d["a"], "steps.jsonl")).Length, File.ReadAllLines(Path.Combine(d["c"], "steps.jsonl")).Length);
        Assert.True(File.Exists(Path.Combine(d["c"], "curves.png")));
        Assert.Empty(Directory.GetFiles(d.Path, "*.tmp", SearchOption.AllDirectories));
        // each epoch records its memory peaks (issue 19): the pool's live peak and the RSS hold at least the parameters
        long paramBytes = new TmcaModel(Tiny, new TmcaFlags(), seed: 0).Params.All.Sum(p => (long)p.Value.Numel * 4);
        foreach (var line in File.ReadAllLines(Path.Combine(d["a"], "epochs.jsonl")))
        {
            var m = System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("memory");
            Assert.Equal("cpu", m.GetProperty("pool").GetString());
            double pool = m.GetProperty("peak_pool_mib").GetDouble(), rss = m.GetProperty("peak_rss_mib").GetDouble();
            Assert.True(pool * 1048576 >= paramBytes, $"pool peak {pool} MiB below the parameters' {paramBytes / 1048576.0:0.0} MiB");
            // not rss > pool: the pool's counters are process-wide and xunit runs other tests beside this one, whose
            // tensors count in the pool's peak; an allocated but untouched array page is not resident either
            Assert.True(rss * 1048576 >= paramBytes, $"RSS {rss} MiB below the parameters' {paramBytes / 1048576.0:0.0} MiB");
        }
    }

    /// <summary>Recompute (issue 19) changes no value: a run trained with --recompute stages for an epoch and resumed with
    /// blocks ends bit-identical to one trained with everything stored, and options.json records the mode.</summary>
    [Fact]
    public void RecomputeRunsAndResumesBitIdenticalToTheStoredPath()
    {
        using var d = new TempDir();
        Trainer.Run(Options(d["a"], 2), Data.Value, d["a"], new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken);
        Trainer.Run(Options(d["c"], 1) with { Recompute = RecomputeMode.Stages }, Data.Value, d["c"], new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken);
        Assert.Equal(RecomputeMode.Stages, TrainOptions.Load(Path.Combine(d["c"], "options.json")).Recompute);
        Trainer.Run(Options(d["c"], 2) with { Recompute = RecomputeMode.Blocks }, Data.Value, d["c"], new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken, resume: true);
        var stored = Tensors(Path.Combine(d["a"], "checkpoints", "last.safetensors"));
        var res = Tensors(Path.Combine(d["c"], "checkpoints", "last.safetensors"));
        Assert.Equal(stored.Keys.Order(), res.Keys.Order());
        foreach (var k in stored.Keys) Assert.True(stored[k].SequenceEqual(res[k]), $"{k} differs");
        Assert.Equal(File.ReadAllLines(Path.Combine(d["a"], "steps.jsonl")).Select(StripTime), File.ReadAllLines(Path.Combine(d["c"], "steps.jsonl")).Select(StripTime));
    }

    // steps.jsonl lines without their wall-clock fields
    private static string StripTime(string line)
    {
        var o = System.Text.Json.Nodes.JsonNode.Parse(line)!.AsObject();
        foreach (var k in o.Select(kv => kv.Key).Where(k => k.Contains("time") || k.Contains("sec") || k.Contains("per_s") || k.Contains("ms")).ToList()) o.Remove(k);
        return o.ToJsonString();
    }

    /// <summary>The interrupt token is what Ctrl-C cancels in the CLI: cancelled inside an epoch, the run writes a
    /// mid-epoch checkpoint and stops; the resumed run ends bit-identical to one never interrupted.</summary>
    [Fact]
    public void ACancelledInterruptTokenWritesACheckpointThatResumesExactly()
    {
        using var d = new TempDir();
        Trainer.Run(Options(d["a"], 2), Data.Value, d["a"], new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken);
        using var ctrlC = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var e = Assert.Throws<TrainingInterruptedException>(() =>
            Trainer.Run(Options(d["b"], 2), Data.Value, d["b"], new CancelAfter(epoch: 2, step: 1, ctrlC), CpuBackend.Instance, ctrlC.Token));
        Assert.Contains("interrupted at step 4 (epoch 2, 1 of its steps done); checkpoint written", e.Message);
        var resumed = Trainer.Run(Options(d["b"], 2), Data.Value, d["b"], new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken, resume: true);
        Assert.Equal(6, resumed.Steps);
        var straight = Tensors(Path.Combine(d["a"], "checkpoints", "last.safetensors"));
        var res = Tensors(Path.Combine(d["b"], "checkpoints", "last.safetensors"));
        Assert.Equal(straight.Keys.Order(), res.Keys.Order());
        foreach (var k in straight.Keys) Assert.Equal(straight[k], res[k]);
        Assert.Equal(File.ReadAllLines(Path.Combine(d["a"], "steps.jsonl")).Length, File.ReadAllLines(Path.Combine(d["b"], "steps.jsonl")).Length);
    }

    /// <summary>Presses Ctrl-C once the given step of the given epoch has finished.</summary>
    private sealed class CancelAfter(int epoch, int step, CancellationTokenSource ctrlC) : ITrainReporter
    {
        public void Info(string text) { }
        public void Warning(string text) { }
        public void BeginEpoch(int e, int epochs, int steps) { }
        public void Step(int e, int s, int n, double loss, double dice, double ips, TimeSpan eta) { if (e == epoch && s == step) ctrlC.Cancel(); }
        public void EndEpoch(int e, double valDice, double micro, bool best, double seconds) { }
    }

    [Fact]
    public void CheckpointsHoldEverythingAResumeNeeds()
    {
        using var d = new TempDir();
        Trainer.Run(Options(d.Path, 1), Data.Value, d.Path, new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken);
        var f = SafetensorsFile.Open(Path.Combine(d.Path, "checkpoints", "last.safetensors"));
        var state = JsonSerializer.Deserialize<TrainState>(f.Metadata["train_state"])!;
        Assert.Equal(1, state.Epoch);
        Assert.Equal(3, state.Step);                       // 24 images / batch 8
        Assert.Equal(64, state.Rng.Length);
        Assert.Contains("optim.exp_avg.decoder.head.out.weight", f.Names);
        Assert.Contains("decoder.stages.0.bn1.running_mean", f.Names);
        Assert.Contains("config", f.Metadata.Keys);
        var best = Checkpoint.Load(Path.Combine(d.Path, "checkpoints", "best.safetensors"));
        Assert.Equal(Tiny.Dims, best.Config.Dims);
    }

    [Fact]
    public void EarlyStoppingStopsAfterPatienceEpochsWithoutImprovement()
    {
        using var d = new TempDir();
        // lr 0 never improves after the first epoch, so patience 1 stops at epoch 2
        var r = Trainer.Run(Options(d.Path, 10, patience: 1) with { Lr = 0 }, Data.Value, d.Path, new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken);
        Assert.True(r.StoppedEarly);
        Assert.Equal(2, r.EpochsRun);
        Assert.Equal(1, r.BestEpoch);
    }

    [Fact]
    public void EvalWritesBothProtocolsAndPredictWritesMasksAndOverlays()
    {
        using var d = new TempDir();
        var r = Trainer.Run(Options(d.Path, 1), Data.Value, d.Path, new SilentReporter(), CpuBackend.Instance, TestContext.Current.CancellationToken);
        var model = Checkpoint.Load(r.BestCheckpoint);
        var ev = Evaluator.Run(model, Data.Value.Test, 4);
        Evaluator.Write(ev, d["eval"], "tiny");
        var csv = File.ReadAllLines(d["eval/per-sample.csv"]);
        Assert.Equal(1 + Data.Value.Test.Count, csv.Length);
        using var metrics = JsonDocument.Parse(File.ReadAllText(d["eval/metrics.json"]));
        Assert.True(metrics.RootElement.GetProperty("per_image").TryGetProperty("dice", out _));
        Assert.True(metrics.RootElement.GetProperty("micro").TryGetProperty("iou", out _));
        Assert.Contains("Dice (micro)", File.ReadAllText(d["eval/results.md"]));
        int n = Predictor.PredictSplit(model, Data.Value.Test, d["pred"], 4);
        Assert.Equal(Data.Value.Test.Count, n);
        var mask = Tmca.Data.Images.ImageIO.Load(Directory.GetFiles(d["pred/masks"])[0]);
        Assert.Equal((64, 64), (mask.Width, mask.Height));                         // the original image size
        Assert.Equal(n, Directory.GetFiles(d["pred/overlays"], "*.png").Length);
        var one = Predictor.PredictOne(model, Data.Value.Test.Samples[0].Source.ImagePath, "bilateral pulmonary infection, two infected areas, upper left lung and lower right lung.", Data.Value.Tokenizer, d["one"]);
        Assert.True(File.Exists(one.Mask) && File.Exists(one.Overlay));
    }

    [Fact]
    public void AblationProducesEveryRowAndTheShuffledControl()
    {
        using var d = new TempDir();
        var o = Options(d.Path, 1);
        var results = Ablation.Run(o, Data.Value, d["ablate"], CpuBackend.Instance, f => f(new SilentReporter()), new SilentReporter(), TestContext.Current.CancellationToken);
        Assert.Equal(["image only", "text guidance (GuideDecoder base)", "+ global contrastive alignment", "+ target-sensitive distance", "+ multi-level", "+ LGTE (full TMCA)", "shuffled-text control"],
                     results.Select(r => r.Name));
        var md = File.ReadAllText(d["ablate/ablation.md"]);
        Assert.Contains("shuffled-text control", md);
        Assert.Contains("Δ Dice vs text guidance [95 % CI]", md);
        Assert.Contains("\"alignment\":\"global\",\"levels\":[3]", results[2].Flags);
        Assert.Contains("\"text\":false", results[0].Flags);
        Assert.True(File.Exists(d["ablate/ablation.png"]));
    }

    /// <summary>`tmca train --seeds`: one run per seed, then each seed's metrics and their mean ± sd; a second call keeps
    /// the finished seeds.</summary>
    [Fact]
    public void TrainWithSeedsSummarisesEverySeed()
    {
        using var d = new TempDir();
        DataFixtures.PerId(d["data"], withVal: true);
        var cfg = WriteTiny(d.Path);
        var (code, err) = Cli.Run("train", d["data"], "--config", cfg, "--epochs", "1", "--steps", "2", "--batch", "2", "--seeds", "3,4", "--out", d["run"]);
        Assert.True(code == 0, err);
        var csv = File.ReadAllLines(d["run/seeds.csv"]);
        Assert.Equal(3, csv.Length);
        Assert.StartsWith("3,", csv[1]); Assert.StartsWith("4,", csv[2]);
        var md = File.ReadAllText(d["run/seeds.md"]);
        Assert.Contains("mean ± sd (2 seeds)", md);
        var dice = csv.Skip(1).Select(l => double.Parse(l.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Contains($"{PairedStatistics.Mean(dice) * 100:0.00} ± {PairedStatistics.StdDev(dice) * 100:0.00}", md);
        var stamp = File.GetLastWriteTimeUtc(d["run/seed-3/checkpoints/best.safetensors"]);
        (code, err) = Cli.Run("train", d["data"], "--config", cfg, "--epochs", "1", "--steps", "2", "--batch", "2", "--seeds", "3,4", "--out", d["run"]);
        Assert.True(code == 0, err);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(d["run/seed-3/checkpoints/best.safetensors"]));
    }

    /// <summary>Several seeds for chosen rows: mean ± sd per row, the interval against text guidance computed from the
    /// pooled (seed, image) pairs, per-seed values in a CSV, and a second call that finds every run done.</summary>
    [Fact]
    public void AblationWithSeedsGivesIntervalsAndResumesRowByRow()
    {
        using var d = new TempDir();
        var o = Options(d.Path, 1) with { MaxSteps = 2 };
        int[] seeds = [5, 6];
        string[] rows = ["text-guidance", "full-tmca"];
        var results = Ablation.Run(o, Data.Value, d["ablate"], CpuBackend.Instance, f => f(new SilentReporter()), new SilentReporter(), TestContext.Current.CancellationToken, seeds, rows);
        Assert.Equal(["text guidance (GuideDecoder base)", "+ LGTE (full TMCA)", "shuffled-text control"], results.Select(r => r.Name));
        Assert.All(results, r => Assert.Equal(seeds, r.Runs.Select(x => x.Seed)));
        var full = results[1];
        Assert.Equal(PairedStatistics.Mean(full.Runs.Select(x => x.Test.DicePerImage).ToList()), full.Mean(x => x.Test.DicePerImage));
        // the interval is the bootstrap of the pooled per-image differences, recomputed here from the runs
        var a = full.Runs.SelectMany(x => x.Dice).ToList();
        var b = results[0].Runs.SelectMany(x => x.Dice).ToList();
        Assert.Equal(PairedStatistics.BootstrapMeanDifference(a, b), Ablation.DiceVsReference(full, results));
        Assert.Null(Ablation.DiceVsReference(results[0], results));
        var csv = File.ReadAllLines(d["ablate/ablation-seeds.csv"]);
        Assert.Equal(1 + 3 * seeds.Length, csv.Length);
        Assert.Contains(" ± ", File.ReadAllText(d["ablate/ablation.md"]));
        // again: every run is found done, nothing is trained, the results are the same
        var stamp = File.GetLastWriteTimeUtc(d["ablate/full-tmca/seed-5/checkpoints/best.safetensors"]);
        var again = Ablation.Run(o, Data.Value, d["ablate"], CpuBackend.Instance, f => throw new InvalidOperationException("nothing should train"), new SilentReporter(), TestContext.Current.CancellationToken, seeds, rows);
        Assert.Equal(results.Select(r => r.Mean(x => x.Test.DicePerImage)), again.Select(r => r.Mean(x => x.Test.DicePerImage)));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(d["ablate/full-tmca/seed-5/checkpoints/best.safetensors"]));
        Assert.Throws<ArgumentException>(() => Ablation.Select(new TmcaFlags(), ["no-such-row"]));
    }

    [Fact]
    public void SyntheticReportsDescribeExactlyTheMaskedLesions()
    {
        for (int i = 0; i < 50; i++)
        {
            var (img, mask, report) = SyntheticCxr.Sample(new Xoshiro((ulong)i), 96);
            Assert.Matches(@"^(unilateral|bilateral) pulmonary infection, (one infected area|two infected areas|three infected areas), .+ (left|right) lung\.$", report);
            Assert.True(mask.Count(m => m == 1) > 20);
            Assert.DoesNotContain("[UNK]", WordPieceTokenizerTokens(report));
            if (report.StartsWith("unilateral") && report.Contains("left lung"))   // the patient's left lung is on the image's right
                for (int y = 0; y < 96; y++) for (int x = 0; x < 40; x++) Assert.Equal(0, mask[y * 96 + x]);
        }
    }

    private static List<string> WordPieceTokenizerTokens(string s) => Tmca.Model.Text.WordPieceTokenizer.CxrBert().Tokenize(s);

    /// <summary>The real QaTa-COV19 subset (per-id layout, 1,300 ids): loads, trains a few steps, evaluates on its test ids.</summary>
    [Fact]
    public void QataSubsetTrainsAndEvaluates()
    {
        var root = Paths.RequireShared("data/qata-cov19-subset");
        var ds = Tmca.Data.Layouts.DatasetLoader.Load(root);
        Assert.Equal((800, 200, 300), (ds.Train.Count, ds.Val.Count, ds.Test.Count));
        Assert.Contains(ds.Notes, n => n.Contains("twice"));
        using var d = new TempDir();
        int code = CliApp.Run("train", root, "--config", WriteTiny(d.Path), "--epochs", "1", "--steps", "3", "--out", d["run"]);
        Assert.Equal(0, code);
        using var m = JsonDocument.Parse(File.ReadAllText(d["run/eval-test/metrics.json"]));
        Assert.Equal(300, m.RootElement.GetProperty("images").GetInt32());
    }

    /// <summary>MoNuSeg (LViT layout, TIFF test images, validation folder): loads, trains a few steps, evaluates.</summary>
    [Fact]
    public void MonusegLoadsTrainsAndEvaluates()
    {
        var root = Paths.RequireShared("data/monuseg");
        var ds = Tmca.Data.Layouts.DatasetLoader.Load(root);
        Assert.Equal((24, 6, 14), (ds.Train.Count, ds.Val.Count, ds.Test.Count));
        Assert.EndsWith(".tif", ds.Test[0].ImagePath);
        using var d = new TempDir();
        int code = CliApp.Run("train", root, "--config", WriteTiny(d.Path), "--epochs", "1", "--steps", "2", "--out", d["run"]);
        Assert.Equal(0, code);
        Assert.Contains("| TMCA", File.ReadAllText(d["run/eval-test/results.md"]));
    }

    private static string WriteTiny(string dir) => TestConfigs.WriteTiny(dir);
}
