using System.Runtime.InteropServices;

namespace Tmca.Training;

/// <summary>
/// Ctrl-C and SIGTERM (what a scheduler sends before killing a job) while training: the first signal asks the run to
/// stop after its current step — <see cref="Trainer.Run"/> writes a resumable checkpoint and throws
/// <see cref="TrainingInterruptedException"/> —; a second one ends the process at once, as usual.
/// </summary>
public static class ProcessInterrupt
{
    private static CancellationTokenSource _source = new();

    /// <summary>Catches SIGINT and SIGTERM until disposed; its <see cref="Listening.Token"/> is cancelled by the first one
    /// (pass it to <see cref="Trainer.Run"/>).</summary>
    public static Listening Listen()
    {
        _source = new CancellationTokenSource();
        void Handler(PosixSignalContext ctx)
        {
            if (_source.IsCancellationRequested) return;   // the second signal: the default action ends the process
            ctx.Cancel = true;
            Console.Error.WriteLine($"\n{ctx.Signal}: stopping after the current step and writing a checkpoint (again to quit at once)");
            _source.Cancel();
            Tmca.Engine.HoldPoints.Release();   // a test holding the run at a hold point lets it reach the next step
        }
        var regs = new[] { PosixSignalRegistration.Create(PosixSignal.SIGINT, Handler), PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handler) };
        return new Listening(regs, _source.Token);
    }

    /// <summary>Tests: behave as if a signal had arrived.</summary>
    public static void Request() => _source.Cancel();

    public sealed class Listening(PosixSignalRegistration[] regs, CancellationToken token) : IDisposable
    {
        /// <summary>Cancelled by the first SIGINT/SIGTERM while this listens.</summary>
        public CancellationToken Token { get; } = token;

        public void Dispose() { foreach (var r in regs) r.Dispose(); _source = new CancellationTokenSource(); }
    }
}
