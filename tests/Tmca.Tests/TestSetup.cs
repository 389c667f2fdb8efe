using System.Runtime.CompilerServices;
using Tmca.Engine;

namespace Tmca.Tests;

internal static class TestSetup
{
    /// <summary>Every test runs with recycled CPU buffers poisoned with NaN: a kernel that leaves part of an
    /// uninitialised output unwritten produces NaN and fails its test instead of passing on stale data.</summary>
    [ModuleInitializer]
    internal static void Init() => CpuBackend.PoisonUninitialized = true;
}
