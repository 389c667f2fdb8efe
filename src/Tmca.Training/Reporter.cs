namespace Tmca.Training;

/// <summary>How a run talks to its user (a progress bar in a terminal, plain lines in logs, nothing in tests).</summary>
public interface ITrainReporter
{
    void Info(string text);
    void Warning(string text);
    void BeginEpoch(int epoch, int epochs, int steps);
    void Step(int epoch, int stepInEpoch, int stepsInEpoch, double loss, double runningDice, double imagesPerSecond, TimeSpan eta);
    void EndEpoch(int epoch, double valDice, double valDiceMicro, bool best, double seconds);
}

/// <summary>Plain lines: a line every <c>every</c> steps and one per epoch.</summary>
public sealed class LineReporter(TextWriter w, int every = 25) : ITrainReporter
{
    public void Info(string text) => w.WriteLine(text);
    public void Warning(string text) => w.WriteLine($"warning: {text}");
    public void BeginEpoch(int epoch, int epochs, int steps) => w.WriteLine($"epoch {epoch}/{epochs} ({steps} steps)");
    public void Step(int epoch, int s, int n, double loss, double dice, double ips, TimeSpan eta)
    {
        if (s % every == 0 || s == n) w.WriteLine($"  step {s}/{n}  loss {loss:0.0000}  train Dice {dice:0.000}  {ips:0.0} img/s  ETA {eta:hh\\:mm\\:ss}");
    }
    public void EndEpoch(int epoch, double valDice, double micro, bool best, double seconds) =>
        w.WriteLine($"epoch {epoch}: validation Dice {valDice:0.0000} (per image), {micro:0.0000} (micro){(best ? "  ← best" : "")}  [{seconds:0.0} s]");
}

public sealed class SilentReporter : ITrainReporter
{
    public List<string> Warnings { get; } = new();
    public void Info(string text) { }
    public void Warning(string text) => Warnings.Add(text);
    public void BeginEpoch(int epoch, int epochs, int steps) { }
    public void Step(int epoch, int s, int n, double loss, double dice, double ips, TimeSpan eta) { }
    public void EndEpoch(int epoch, double valDice, double micro, bool best, double seconds) { }
}
