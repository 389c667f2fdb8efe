using System.Buffers;
using System.Text.Unicode;

namespace Tmca.Engine;

/// <summary>
/// Small text inputs (configs, flags, reports, vocabularies, split lists) read strictly: a size cap checked before
/// anything is read, UTF-8 validated (a byte that is not UTF-8 is an error with its offset, not a silent U+FFFD),
/// a leading BOM dropped. Failures are <see cref="InputFileException"/>s.
/// </summary>
public static class StrictText
{
    public static string Read(string path, long maxBytes, string what)
    {
        if (!File.Exists(path)) throw new InputFileException(path, $"{what} not found");
        byte[] bytes;
        try
        {
            long length = new FileInfo(path).Length;
            if (length > maxBytes) throw new InputFileException(path, $"{length:N0} bytes, more than the {maxBytes:N0} a {what} may have");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new InputFileException(path, $"cannot be read ({e.Message})", e); }
        if (bytes.Length > maxBytes) throw new InputFileException(path, $"more than the {maxBytes:N0} bytes a {what} may have (the file grew while read)");
        return Decode(bytes, path, what);
    }

    /// <summary>Checks that <paramref name="bytes"/> are UTF-8 without decoding them (the caller's parser decodes).</summary>
    public static void Validate(ReadOnlySpan<byte> bytes, string path, string what)
    {
        if (!Utf8.IsValid(bytes)) Decode(bytes, path, what);   // throws, naming the offset
    }

    /// <summary>UTF-8 bytes → string, or an error naming the offset of the first invalid byte.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes, string path, string what)
    {
        if (bytes.StartsWith("\xEF\xBB\xBF"u8)) bytes = bytes[3..];
        var chars = ArrayPool<char>.Shared.Rent(Math.Max(1, bytes.Length));
        try
        {
            var status = Utf8.ToUtf16(bytes, chars, out int read, out int written, replaceInvalidSequences: false);
            if (status != OperationStatus.Done) throw new InputFileException(path, $"this {what} is not valid UTF-8 (byte offset {read})");
            return new string(chars, 0, written);
        }
        finally { ArrayPool<char>.Shared.Return(chars); }
    }
}
