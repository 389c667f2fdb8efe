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

/// <summary>Tests that drive the CLI share the process-wide console: they never run in parallel with each other
/// or with anything else.</summary>
[Xunit.CollectionDefinition("cli", DisableParallelization = true)]
public sealed class CliCollection;
