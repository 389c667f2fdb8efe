namespace Tmca.Engine;

/// <summary>
/// An input file (or folder) that is missing or cannot be used: the message is "PATH: problem". Every reader of the
/// project throws this type or one derived from it (<see cref="SafetensorsException"/>, the dataset readers'
/// DataException, CheckpointException) for anything wrong with a file — never another exception type — and the CLI
/// maps it to the bad-data exit code. The fuzz suite holds every reader to that.
/// </summary>
public class InputFileException(string path, string problem, Exception? inner = null) : Exception($"{path}: {problem}", inner)
{
    public string Path { get; } = path;
    public string Problem { get; } = problem;
}
