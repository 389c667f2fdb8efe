namespace Tmca.Engine;

/// <summary>Where tmca keeps what it can rebuild (the synthetic dataset, compiled kernels):
/// $TMCA_CACHE, else $XDG_CACHE_HOME/tmca, else ~/.cache/tmca.</summary>
public static class CacheDirectory
{
    public static string Root =>
        TmcaSettings.Current.Cache
        ?? Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "tmca");
}
