namespace Tmca.Engine;

/// <summary>Writes a file so that readers see either the old file or the whole new one, never a partial one.</summary>
public static class AtomicFile
{
    public static void Write(string path, Action<FileStream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch { /* the original error matters more */ }
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, fs => { var b = System.Text.Encoding.UTF8.GetBytes(text); fs.Write(b); });

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, fs => fs.Write(bytes));
}
