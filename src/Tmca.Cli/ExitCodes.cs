using Tmca.Data;
using Tmca.Engine;
using Tmca.Model;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>A command line that cannot work as given (a bad number, an unknown preset, options that exclude each other):
/// found before any work starts. The CLI's own checks raise this type, never <see cref="ArgumentException"/>: that one is
/// the engine's and its libraries' precondition failing (a shape check, a bad internal argument), which is a bug.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// What `tmca` returns (README "Exit codes"). Scripts and schedulers branch on these: a usage error will fail again
/// the same way, bad data needs a fixed file, a runtime failure may be worth a retry or a smaller batch, and an
/// interrupted run continues with `tmca train --resume`.
/// </summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The run failed while working: a device fault, out of memory, a non-finite loss, a full disk, an internal error.</summary>
    public const int RuntimeFailure = 1;
    /// <summary>The command line is wrong: unknown option, bad value, exclusive options together, a device this machine lacks.</summary>
    public const int Usage = 2;
    /// <summary>An input file or folder is missing or malformed: dataset, image, workbook, report, checkpoint, config, vocabulary.</summary>
    public const int BadData = 3;
    /// <summary>Stopped by SIGINT/SIGTERM (Ctrl-C); training wrote a resumable checkpoint first. 128 + SIGINT, as shells do.</summary>
    public const int Interrupted = 130;

    public static int For(Exception e) => e switch
    {
        TrainingInterruptedException => Interrupted,
        UsageException or BackendUnavailableException => Usage,
        InputFileException or InvalidDataException or System.Text.Json.JsonException
            or FileNotFoundException or DirectoryNotFoundException => BadData,
        _ => RuntimeFailure,
    };

    /// <summary>Exceptions the engine raises on purpose, whose message is the whole story; anything else is a bug and gets a
    /// crash log with its stack trace — an <see cref="ArgumentException"/> included (an internal check that failed).</summary>
    public static bool Expected(Exception e) => e is OutOfMemoryException or TrainingInterruptedException or UsageException or BackendUnavailableException
        or InputFileException or InvalidDataException
        or System.Text.Json.JsonException or IOException or UnauthorizedAccessException or NotSupportedException
        or NonFiniteException or DeviceMemoryExhaustedException or Tmca.Cuda.Native.CudaException;
}
