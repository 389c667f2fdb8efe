using System.Text.RegularExpressions;
using Tmca.Engine;
using Tmca.Tests.Reliability;
using Xunit;

namespace Tmca.Tests.Engine;

/// <summary>The TMCA_* variables: each parsed by <see cref="TmcaSettings"/> alone, a bad value named in one line, each one in
/// the README's table.</summary>
public class SettingsTests
{
    private static TmcaSettings With(params (string Name, string Value)[] vars)
    {
        var d = vars.ToDictionary(v => v.Name, v => v.Value);
        return TmcaSettings.Parse(n => d.GetValueOrDefault(n));
    }

    [Fact]
    public void UnsetMeansTheDefaults()
    {
        var s = With();
        Assert.Equal(new TmcaSettings(), s);
        Assert.Null(s.Cache);
        Assert.False(s.CudaSync);
        Assert.Null(s.SimMemoryBytes);
        Assert.Null(s.DeviceFault);
        Assert.Equal(new TmcaSettings(), With(("TMCA_CUDA_SYNC", "0"), ("TMCA_CACHE", "  "), ("TMCA_DEVICE_FAULT", "")));
    }

    [Fact]
    public void EachVariableIsParsed()
    {
        var s = With(("TMCA_CACHE", "/c"), ("TMCA_CUDA_LIB_DIR", "/usr/lib/wsl/lib"), ("TMCA_CUDA_SYNC", "1"), ("TMCA_CUDA_TRACE", "1"),
                     ("TMCA_TF32", "1"), ("TMCA_POISON", "1"), ("TMCA_SIM_CXX", "g++-14"), ("TMCA_SIM_REVERSE", "1"), ("TMCA_SIM_MEMCHECK", "1"),
                     ("TMCA_SIM_MEMORY", "12M"), ("TMCA_SIM_PROFILE", "1"), ("TMCA_SIM_RACECHECK", "1"), ("TMCA_DEVICE_FAULT", "sticky:fill_f32:2"),
                     ("TMCA_HOLD_AT", "safetensors-write:4"), ("TMCA_INJECT_NONFINITE", "backward:layer_norm@2"));
        Assert.Equal("/c", s.Cache);
        Assert.Equal("/usr/lib/wsl/lib", s.CudaLibDir);
        Assert.True(s.CudaSync && s.CudaTrace && s.Tf32 && s.Poison && s.SimReverse && s.SimMemcheck && s.SimProfile && s.SimRaceCheck);
        Assert.Equal("g++-14", s.SimCxx);
        Assert.Equal(12L << 20, s.SimMemoryBytes);
        Assert.Equal(new DeviceFault("sticky", "fill_f32", 2), s.DeviceFault);
        Assert.Equal(new HoldPoint("safetensors-write", 4), s.HoldAt);
        Assert.Equal(new NonFiniteSpec(NonFiniteSite.Backward, "layer_norm", 2), s.InjectNonFinite);

        Assert.Equal(new DeviceFault("oom", null, 30), With(("TMCA_DEVICE_FAULT", "oom:30")).DeviceFault);
        Assert.Equal(new DeviceFault("launch", "*", 40), With(("TMCA_DEVICE_FAULT", "launch:*:40")).DeviceFault);
        Assert.Equal(new HoldPoint("step", 1), With(("TMCA_HOLD_AT", "step")).HoldAt);
        Assert.Equal(new NonFiniteSpec(NonFiniteSite.Data, null, 3), With(("TMCA_INJECT_NONFINITE", "data@3")).InjectNonFinite);
        Assert.Equal(new NonFiniteSpec(NonFiniteSite.Forward, "similarity_lgte", 1), With(("TMCA_INJECT_NONFINITE", "forward:similarity_lgte@1")).InjectNonFinite);
        Assert.Equal(2L << 30, With(("TMCA_SIM_MEMORY", "2G")).SimMemoryBytes);
        Assert.Equal(4096, With(("TMCA_SIM_MEMORY", "4096")).SimMemoryBytes);
    }

    [Theory]
    [InlineData("TMCA_DEVICE_FAULT", "garbage")]
    [InlineData("TMCA_DEVICE_FAULT", "oom:0")]
    [InlineData("TMCA_DEVICE_FAULT", "launch:gemm")]
    [InlineData("TMCA_HOLD_AT", "stepp")]
    [InlineData("TMCA_HOLD_AT", "step:0")]
    [InlineData("TMCA_INJECT_NONFINITE", "backward:layer_norm")]
    [InlineData("TMCA_INJECT_NONFINITE", "sideways:gelu@2")]
    [InlineData("TMCA_SIM_MEMORY", "lots")]
    [InlineData("TMCA_SIM_MEMORY", "-1G")]
    [InlineData("TMCA_CUDA_SYNC", "yes")]
    [InlineData("TMCA_TF32", "2")]
    public void ABadValueIsOneLineNamingTheVariable(string name, string value)
    {
        var e = Assert.Throws<SettingsException>(() => With((name, value)));
        Assert.StartsWith($"{name}='{value}': expected ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    /// <summary>No other place in src/ reads a TMCA_* variable, and <see cref="TmcaSettings.Names"/> lists every one it reads.</summary>
    [Fact]
    public void OnlyTheSettingsReadTheEnvironment()
    {
        var src = Path.Combine(Paths.RepoRoot, "src");
        var readers = Directory.GetFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/") && !f.Contains("/bin/") && File.ReadAllText(f).Contains("GetEnvironmentVariable(\"TMCA_"))
            .Select(f => Path.GetRelativePath(src, f)).ToList();
        Assert.Empty(readers);
        var settings = File.ReadAllText(Path.Combine(src, "Tmca.Engine", "Settings.cs"));
        var parsed = Regex.Matches(settings, "(?:Text|Switch)\\(\"(TMCA_[A-Z0-9_]+)\"\\)").Select(m => m.Groups[1].Value).Distinct().Order();
        Assert.Equal(TmcaSettings.Names.Order(), parsed);
    }

    [Fact]
    public void TheReadmeDocumentsEveryVariable()
    {
        var readme = File.ReadAllText(Path.Combine(Paths.RepoRoot, "README.md"));
        int table = readme.IndexOf("## Environment variables", StringComparison.Ordinal);
        Assert.True(table >= 0, "README has no \"## Environment variables\" section");
        var rows = Regex.Matches(readme[table..], @"^\| `(TMCA_[A-Z0-9_]+)", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToHashSet();
        var missing = TmcaSettings.Names.Where(n => !rows.Contains(n)).ToList();
        Assert.True(missing.Count == 0, $"not in the README's table: {string.Join(", ", missing)}");
    }
}

/// <summary>`tmca` with a bad TMCA_* value: exit 2 and the one line, before the command runs.</summary>
[Collection("child-processes")]
public class SettingsCliTests
{
    [Fact]
    public void TheCliRefusesABadValueBeforeAnyWork()
    {
        var (code, o, e) = ChildProcess.Run(["doctor"], TimeSpan.FromMinutes(1), new Dictionary<string, string> { ["TMCA_DEVICE_FAULT"] = "garbage" });
        Assert.True(code == 2, $"exit {code}:\n{o}\n{e}");
        Assert.Equal("", o);
        Assert.Equal($"error: TMCA_DEVICE_FAULT='garbage': expected {DeviceFault.Forms}", e.Trim());
    }
}
