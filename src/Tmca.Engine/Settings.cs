namespace Tmca.Engine;

/// <summary>A TMCA_* environment variable holds a value that cannot be used; the message names the variable, the value
/// and what it takes, on one line.</summary>
public sealed class SettingsException(string message) : Exception(message);

/// <summary>Where TMCA_INJECT_NONFINITE puts its NaN.</summary>
public enum NonFiniteSite { Forward, Backward, Data }

/// <summary>TMCA_INJECT_NONFINITE parsed: "forward:OP@STEP", "backward:OP@STEP" or "data@STEP" (<see cref="Op"/> null for data).</summary>
public sealed record NonFiniteSpec(NonFiniteSite Where, string? Op, long Step)
{
    public const string Forms = "forward:OP@STEP, backward:OP@STEP or data@STEP";

    /// <summary>The spec, or null when <paramref name="text"/> is not one of the <see cref="Forms"/>.</summary>
    public static NonFiniteSpec? TryParse(string text)
    {
        int at = text.LastIndexOf('@');
        if (at < 0 || !long.TryParse(text[(at + 1)..], out var step) || step < 1) return null;
        var head = text[..at];
        if (head == "data") return new NonFiniteSpec(NonFiniteSite.Data, null, step);
        int colon = head.IndexOf(':');
        if (colon < 0 || colon == head.Length - 1) return null;
        return head[..colon] switch
        {
            "forward" => new NonFiniteSpec(NonFiniteSite.Forward, head[(colon + 1)..], step),
            "backward" => new NonFiniteSpec(NonFiniteSite.Backward, head[(colon + 1)..], step),
            _ => null,
        };
    }
}

/// <summary>TMCA_HOLD_AT parsed: hold at the <paramref name="Arrival"/>-th arrival (1-based) at hold point <paramref name="Point"/>.</summary>
public sealed record HoldPoint(string Point, int Arrival)
{
    /// <summary>The hold points the product reaches (<see cref="HoldPoints"/>).</summary>
    public static readonly string[] Points = ["step", "between-steps", "safetensors-write"];
}

/// <summary>TMCA_DEVICE_FAULT parsed: "oom:N" (the N-th device allocation and every later one fail), "launch:KERNEL:N" or
/// "sticky:KERNEL:N" (the N-th launch of KERNEL fails, plainly or leaving the context unusable; KERNEL "*" is any).</summary>
public sealed record DeviceFault(string Kind, string? Kernel, long Count)
{
    public const string Forms = "oom:N, launch:KERNEL:N or sticky:KERNEL:N (N ≥ 1; KERNEL * is any kernel)";

    public static DeviceFault? TryParse(string text)
    {
        var p = text.Split(':');
        if (p is ["oom", var n] && long.TryParse(n, out var c) && c >= 1) return new DeviceFault("oom", null, c);
        if (p is ["launch" or "sticky", { Length: > 0 } k, var m] && long.TryParse(m, out var c2) && c2 >= 1) return new DeviceFault(p[0], k, c2);
        return null;
    }

    /// <summary>Parses or throws <see cref="ArgumentException"/> (tests build plans with it).</summary>
    public static DeviceFault Parse(string text) => TryParse(text) ?? throw new ArgumentException($"bad device fault '{text}' ({Forms})");
}

/// <summary>
/// Every TMCA_* environment variable the product reads, parsed once (<see cref="Current"/>) with one property per
/// variable; nothing else in src/ reads them. A bad value is a <see cref="SettingsException"/> naming the variable,
/// which the CLI reports before any work (exit 2). The README's "Environment variables" table documents each one.
/// The CUDA and simulator variables are plain values here (Engine knows nothing about CUDA); Tmca.Cuda uses them.
/// Unset (or empty) means the default. Switches take 1 (on) or 0 (off).
/// </summary>
public sealed record TmcaSettings
{
    /// <summary>TMCA_CACHE: the folder for what tmca can rebuild (synthetic dataset, compiled kernels); null: $XDG_CACHE_HOME/tmca or ~/.cache/tmca.</summary>
    public string? Cache { get; init; }
    /// <summary>TMCA_CUDA_LIB_DIR: a folder searched first for libcuda, libnvrtc and libcublas; null: the loader's path only.</summary>
    public string? CudaLibDir { get; init; }
    /// <summary>TMCA_CUDA_SYNC=1: the CUDA backend synchronises and checks after every launch, so an error names the launch that caused it.</summary>
    public bool CudaSync { get; init; }
    /// <summary>TMCA_CUDA_TRACE=1: the CUDA backend prints every launch (kernel, grid, block, shared bytes, the op that asked) to stderr.</summary>
    public bool CudaTrace { get; init; }
    /// <summary>TMCA_TF32=1: the CLI's CUDA backends use TensorFloat-32 GEMMs (faster; relative L2 error about 1e-2).</summary>
    public bool Tf32 { get; init; }
    /// <summary>TMCA_POISON=1: uninitialised CPU tensors from the array pool are filled with NaN (a kernel that skips an element shows).</summary>
    public bool Poison { get; init; }
    /// <summary>TMCA_SIM_CXX: the C++ compiler that builds kernels for the CUDA simulator; null: g++ on the PATH.</summary>
    public string? SimCxx { get; init; }
    /// <summary>TMCA_SIM_REVERSE=1: the simulator runs a block's threads in reverse order (a missing barrier changes the result).</summary>
    public bool SimReverse { get; init; }
    /// <summary>TMCA_SIM_MEMCHECK=1: every simulated buffer has its exact size and ends at an inaccessible page.</summary>
    public bool SimMemcheck { get; init; }
    /// <summary>TMCA_SIM_MEMORY: the simulated device memory in bytes (K/M/G suffix allowed); null: 16 GiB.</summary>
    public long? SimMemoryBytes { get; init; }
    /// <summary>TMCA_SIM_PROFILE=1: simulator kernels run instrumented and their memory traffic is counted.</summary>
    public bool SimProfile { get; init; }
    /// <summary>TMCA_SIM_RACECHECK=1: simulator kernels run instrumented and a data race fails the launch.</summary>
    public bool SimRaceCheck { get; init; }
    /// <summary>TMCA_DEVICE_FAULT (tests): the CLI's CUDA backends fail an allocation or a launch on purpose; null: no faults.</summary>
    public DeviceFault? DeviceFault { get; init; }
    /// <summary>TMCA_HOLD_AT=POINT[:N] (tests): the CLI holds the process at the N-th arrival at a hold point so a test can kill or signal it there; null: never.</summary>
    public HoldPoint? HoldAt { get; init; }
    /// <summary>TMCA_INJECT_NONFINITE (tests): the CLI puts a NaN into a training step to prove the guard catches it; null: never.</summary>
    public NonFiniteSpec? InjectNonFinite { get; init; }

    /// <summary>Every variable <see cref="Parse"/> reads.</summary>
    public static readonly string[] Names =
    [
        "TMCA_CACHE", "TMCA_CUDA_LIB_DIR", "TMCA_CUDA_SYNC", "TMCA_CUDA_TRACE", "TMCA_TF32", "TMCA_POISON", "TMCA_SIM_CXX",
        "TMCA_SIM_REVERSE", "TMCA_SIM_MEMCHECK", "TMCA_SIM_MEMORY", "TMCA_SIM_PROFILE", "TMCA_SIM_RACECHECK",
        "TMCA_DEVICE_FAULT", "TMCA_HOLD_AT", "TMCA_INJECT_NONFINITE",
    ];

    private static readonly Lazy<TmcaSettings> FromEnvironment = new(() => Parse(Environment.GetEnvironmentVariable));

    /// <summary>This process's settings, read from the environment on first use (and then fixed). Throws
    /// <see cref="SettingsException"/> on a bad value (every time: the CLI checks it first).</summary>
    public static TmcaSettings Current => FromEnvironment.Value;

    /// <summary>Settings from <paramref name="variable"/> (name → value or null); the tests pass a dictionary.</summary>
    public static TmcaSettings Parse(Func<string, string?> variable)
    {
        string? Text(string name) => variable(name) is { } v && v.Trim().Length > 0 ? v.Trim() : null;
        bool Switch(string name) => Text(name) switch
        {
            null or "0" => false,
            "1" => true,
            var v => throw Bad(name, v, "1 (on) or 0 (off)"),
        };
        return new TmcaSettings
        {
            Cache = Text("TMCA_CACHE"),
            CudaLibDir = Text("TMCA_CUDA_LIB_DIR"),
            CudaSync = Switch("TMCA_CUDA_SYNC"),
            CudaTrace = Switch("TMCA_CUDA_TRACE"),
            Tf32 = Switch("TMCA_TF32"),
            Poison = Switch("TMCA_POISON"),
            SimCxx = Text("TMCA_SIM_CXX"),
            SimReverse = Switch("TMCA_SIM_REVERSE"),
            SimMemcheck = Switch("TMCA_SIM_MEMCHECK"),
            SimMemoryBytes = Text("TMCA_SIM_MEMORY") is { } m ? Bytes(m) ?? throw Bad("TMCA_SIM_MEMORY", m, "a positive byte count such as 512M or 2G") : null,
            SimProfile = Switch("TMCA_SIM_PROFILE"),
            SimRaceCheck = Switch("TMCA_SIM_RACECHECK"),
            DeviceFault = Text("TMCA_DEVICE_FAULT") is { } f ? DeviceFault.TryParse(f) ?? throw Bad("TMCA_DEVICE_FAULT", f, DeviceFault.Forms) : null,
            HoldAt = Text("TMCA_HOLD_AT") is { } h ? Hold(h) ?? throw Bad("TMCA_HOLD_AT", h, $"POINT or POINT:N, N ≥ 1, POINT one of {string.Join(", ", HoldPoint.Points)}") : null,
            InjectNonFinite = Text("TMCA_INJECT_NONFINITE") is { } n ? NonFiniteSpec.TryParse(n) ?? throw Bad("TMCA_INJECT_NONFINITE", n, NonFiniteSpec.Forms + ", STEP ≥ 1") : null,
        };
    }

    private static SettingsException Bad(string name, string value, string expected) => new($"{name}='{value}': expected {expected}");

    private static long? Bytes(string s)
    {
        long mult = char.ToUpperInvariant(s[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1 };
        var digits = mult == 1 ? s : s[..^1];
        return long.TryParse(digits, out var v) && v > 0 && v <= long.MaxValue / mult ? v * mult : null;
    }

    private static HoldPoint? Hold(string s)
    {
        var parts = s.Split(':');
        if (parts.Length > 2 || !HoldPoint.Points.Contains(parts[0])) return null;
        if (parts.Length == 1) return new HoldPoint(parts[0], 1);
        return int.TryParse(parts[1], out var n) && n >= 1 ? new HoldPoint(parts[0], n) : null;
    }
}
