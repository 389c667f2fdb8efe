namespace Tmca.Training;

/// <summary>Training stopped on SIGINT/SIGTERM after writing a resumable checkpoint.</summary>
public sealed class TrainingInterruptedException(string runDir, string what, string? resumeCommand = null)
    : Exception($"{what}; continue with {resumeCommand ?? $"`tmca train --resume {runDir}`"}")
{
    public string RunDir { get; } = runDir;
}

/// <summary>A NaN or Inf in a step's loss or gradients; the message says where it first showed.</summary>
public sealed class NonFiniteException(long step, string diagnosis) : Exception($"step {step}: {diagnosis}")
{
    public long Step { get; } = step;
}
