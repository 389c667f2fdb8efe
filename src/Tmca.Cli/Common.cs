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
    public static Option<string> Device() => new("--device")
    {
        Description = "cpu, cuda (a GPU) or cuda-sim (the CUDA kernels on the CPU simulator; TMCA_CUDA_TRACE=1 prints every launch)",
        DefaultValueFactory = _ => "cpu",
    };
    public static Option<string?> Layout() => new("--layout") { Description = "dataset layout: lvit, csv or per-id (default: detected)" };
    public static Option<string?> Vocab() => new("--vocab") { Description = "WordPiece vocab.txt (default: the embedded CXR-BERT vocabulary)" };
    public static Option<int> Batch() => new("--batch") { Description = "batch size", DefaultValueFactory = _ => 8 };

    /// <summary>The compute backend by name; CUDA arrives with the CUDA backend (a clear error until then).</summary>
    public static IBackend Backend(string name) => Backends.Get(name);

    /// <summary>Runs a command body: bad input becomes one line on stderr and exit code 2, never a stack trace.</summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (e is DataException or SafetensorsException or FileNotFoundException or DirectoryNotFoundException
                                   or InvalidDataException or ArgumentException or IOException or UnauthorizedAccessException
                                   or System.Text.Json.JsonException or BackendUnavailableException or NotSupportedException
                                   or Tmca.Cuda.Native.CudaException)
        {
            Console.Out.Flush();
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
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

    public static TmcaModel LoadModel(string checkpoint, IBackend backend)
    {
        if (!File.Exists(checkpoint)) throw new FileNotFoundException($"{checkpoint}: checkpoint not found", checkpoint);
        return Checkpoint.Load(checkpoint, backend);
    }
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
