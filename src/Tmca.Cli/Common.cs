using System.CommandLine;
using Spectre.Console;
using Tmca.Data;
using Tmca.Engine;
using Tmca.Model;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>Options and helpers shared by the commands.</summary>
internal static class Common
{
    public static Option<string> Device() => new Option<string>("--device")
    {
        Description = "cpu, cuda (a GPU) or cuda-sim (the CUDA kernels on the CPU simulator; TMCA_CUDA_TRACE=1 prints every launch)",
        DefaultValueFactory = _ => "cpu",
    }.OneOf("cpu", "cuda", "cuda-sim", "gpu", "sim");
    public static Option<string?> Layout()
    {
        var o = new Option<string?>("--layout") { Description = "dataset layout: lvit, csv or per-id (default: detected)" };
        o.AcceptOnlyFromAmong(Tmca.Data.Layouts.DatasetLoader.Layouts);
        return o;
    }
    public static Option<string?> Vocab() => new Option<string?>("--vocab") { Description = "WordPiece vocab.txt (default: the embedded CXR-BERT vocabulary)" }.ExistingFile();
    /// <summary>Batch size; training needs 2 (BatchNorm), evaluation 1.</summary>
    public static Option<int> Batch(int min = 1) => new Option<int>("--batch") { Description = "batch size", DefaultValueFactory = _ => 8 }.Positive(min);
    public static Option<string> Preset(string @default) => new Option<string>("--preset") { Description = "model size: nano, small or tiny", DefaultValueFactory = _ => @default }.OneOf("nano", "small", "tiny");
    /// <summary>--recompute none|stages|blocks (issue 19): encoder activations dropped in the forward and recomputed in the
    /// backward; results are bit-identical, only memory and time change.</summary>
    public static Option<RecomputeMode> Recompute() => new Option<RecomputeMode>("--recompute")
    {
        Description = "recompute encoder activations in the backward instead of storing them: none, stages (each ConvNeXt stage, each BERT layer, each pixel alignment head) or blocks (each ConvNeXt block; BERT layers and heads as in stages)",
        DefaultValueFactory = _ => RecomputeMode.None,
        CustomParser = r => r.Tokens[0].Value.ToLowerInvariant() switch
        {
            "none" => RecomputeMode.None, "stages" => RecomputeMode.Stages, "blocks" => RecomputeMode.Blocks,
            var v => Fail(r, v),
        },
    };

    private static RecomputeMode Fail(System.CommandLine.Parsing.ArgumentResult r, string v)
    {
        r.AddError($"--recompute must be none, stages or blocks, not '{v}'");
        return RecomputeMode.None;
    }

    public static Argument<string?> Data() => new Argument<string?>("data") { Description = "dataset folder (lvit, csv or per-id layout); omitted: the embedded synthetic dataset", Arity = ArgumentArity.ZeroOrOne }.ExistingDirectory();
    public static Argument<string> CheckpointArgument() => new Argument<string>("checkpoint") { Description = "model checkpoint (.safetensors)" }.ExistingFile();

    /// <summary>The compute backend by name (see <see cref="Backends"/>: cpu, cuda/gpu, cuda-sim/sim); a device this machine
    /// lacks is a clear error, not a crash.</summary>
    public static IBackend Backend(string name) => Backends.Get(name);

    /// <summary>Runs a command body: an expected failure becomes one line on stderr and its exit code (<see cref="ExitCodes"/>),
    /// never a stack trace; an unexpected one (a bug) also writes its stack trace to a crash log and says where.</summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e)
        {
            Console.Out.Flush();
            if (e is OutOfMemoryException) Console.Error.WriteLine("error: out of host memory (a smaller --batch, --preset or dataset needs less)");
            else if (ExitCodes.Expected(e)) Console.Error.WriteLine($"error: {e.Message}");
            else Console.Error.WriteLine($"error: internal error ({e.GetType().Name}: {e.Message}); stack trace in {CrashLog(e)}; please report it");
            return ExitCodes.For(e);
        }
    }

    /// <summary>Writes an unexpected exception's full text to a crash log in the temp folder; returns its path.</summary>
    private static string CrashLog(Exception e)
    {
        string path = Path.Combine(Path.GetTempPath(), $"tmca-crash-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.log");
        try { File.WriteAllText(path, $"tmca {string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}\n{DateTime.UtcNow:O}\n\n{e}\n"); }
        catch (Exception) { return "(the crash log could not be written)"; }
        return path;
    }

    public static ITrainReporter Reporter() => new LineReporter(Console.Out);

    /// <summary>Spectre's live progress when the terminal is interactive, plain lines otherwise.</summary>
    public static T WithProgress<T>(Func<ITrainReporter, T> body)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected) return body(Reporter());
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => result = body(new SpectreReporter(ctx)));
        return result;
    }

    /// <summary>A model checkpoint, verified whole before loading; a corrupt one names an intact alternative of its run.</summary>
    public static TmcaModel LoadModel(string checkpoint, IBackend backend) => TrainingCheckpoint.LoadModel(checkpoint, backend);
}

/// <summary>A progress bar per epoch with loss, Dice, images/s and ETA.</summary>
internal sealed class SpectreReporter(ProgressContext ctx) : ITrainReporter
{
    private ProgressTask? _task;
    public void Info(string text) => AnsiConsole.MarkupLine(Markup.Escape(text));
    public void Warning(string text) => AnsiConsole.MarkupLine($"[yellow]warning:[/] {Markup.Escape(text)}");
    public void BeginEpoch(int epoch, int epochs, int steps) => _task = ctx.AddTask($"epoch {epoch}/{epochs}", maxValue: steps);
    public void Step(int epoch, int s, int n, double loss, double dice, double ips, TimeSpan eta)
    {
        if (_task is null) return;
        _task.Value = s;
        _task.Description = $"epoch {epoch}  loss {loss:0.000}  Dice {dice:0.000}  {ips:0} img/s  ETA {eta:hh\\:mm\\:ss}";
    }
    public void EndEpoch(int epoch, double valDice, double micro, bool best, double seconds)
    {
        if (_task is not null) { _task.Description = $"epoch {epoch}  val Dice {valDice:0.000} / micro {micro:0.000}{(best ? "  [green]best[/]" : "")}"; _task.StopTask(); }
    }
}
