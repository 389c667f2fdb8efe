using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Tmca.Tests.Reliability;

/// <summary>`tmca` as a separate process (the hard-kill and signal tests need a process to kill): its output is
/// collected as it comes, so a test can wait for a line and then signal it.</summary>
public sealed class ChildProcess : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _out = new(), _err = new();
    private readonly object _lock = new();

    private ChildProcess(Process p) => _p = p;

    public static ChildProcess Start(IEnumerable<string> args, IDictionary<string, string>? env = null)
    {
        // env --default-signal: a test host may run with SIGINT ignored, and an ignored signal is inherited (a shell
        // cannot undo it either); the child must see Ctrl-C as a terminal would deliver it.
        var psi = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("--default-signal=INT,TERM");
        psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tmca.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["TMCA_HOLD_AT"] = "";
        psi.Environment["TMCA_INJECT_NONFINITE"] = "";
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        var p = new Process { StartInfo = psi };
        var c = new ChildProcess(p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (c._lock) c._out.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (c._lock) c._err.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return c;
    }

    public string Out { get { lock (_lock) return _out.ToString(); } }
    public string Err { get { lock (_lock) return _err.ToString(); } }

    /// <summary>Waits until stderr holds <paramref name="text"/>; false when the process ended or the time ran out first.</summary>
    public bool WaitForErr(string text, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (Err.Contains(text, StringComparison.Ordinal)) return true;
            if (_p.HasExited) { _p.WaitForExit(); return Err.Contains(text, StringComparison.Ordinal); }
            Thread.Sleep(20);
        }
        return false;
    }

    /// <summary>SIGKILL: no handler runs, nothing is flushed — the hardest way a run can end.</summary>
    public void Kill()
    {
        _p.Kill(entireProcessTree: true);
        _p.WaitForExit();
    }

    [DllImport("libc", SetLastError = true)] private static extern int kill(int pid, int sig);

    public void Signal(int sig)
    {
        if (kill(_p.Id, sig) != 0) throw new InvalidOperationException($"kill({_p.Id}, {sig}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!_p.WaitForExit(timeout)) { _p.Kill(true); throw new TimeoutException($"tmca did not finish within {timeout}:\n{Out}\n{Err}"); }
        _p.WaitForExit();   // drains the output events
        return _p.ExitCode;
    }

    /// <summary>Runs to the end; (exit code, stdout, stderr).</summary>
    public static (int Code, string Out, string Err) Run(IEnumerable<string> args, TimeSpan timeout, IDictionary<string, string>? env = null)
    {
        using var c = Start(args, env);
        int code = c.WaitForExit(timeout);
        return (code, c.Out, c.Err);
    }

    public void Dispose()
    {
        try { if (!_p.HasExited) _p.Kill(true); } catch (InvalidOperationException) { }
        _p.Dispose();
    }
}
