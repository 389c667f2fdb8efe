namespace Tmca.Data;

/// <summary>Bad input data: the message names the file (or folder) and what is wrong with it.</summary>
public sealed class DataException(string path, string problem, Exception? inner = null) : Tmca.Engine.InputFileException(path, problem, inner);
