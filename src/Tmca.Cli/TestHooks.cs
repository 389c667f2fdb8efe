using Tmca.Engine;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>
/// The test hooks a shipped `tmca` installs, each only when its TMCA_* variable is set (the CLI tests, the hard-kill
/// tests and the device check run the real binary with them); without them nothing is installed and a run pays nothing.
/// - TMCA_INJECT_NONFINITE: a <see cref="NonFiniteInjection"/> as this thread's tape inspector (the command runs on it).
/// </summary>
internal static class TestHooks
{
    /// <summary>Installs the hooks <paramref name="settings"/> asks for until disposed.</summary>
    public static IDisposable Install(TmcaSettings settings)
    {
        var installed = new List<IDisposable>();
        if (settings.InjectNonFinite is { } spec) installed.Add(NonFiniteInjection.Install(spec));
        return new Uninstall(installed);
    }

    private sealed class Uninstall(List<IDisposable> hooks) : IDisposable
    {
        public void Dispose() { for (int i = hooks.Count - 1; i >= 0; i--) hooks[i].Dispose(); }
    }
}
