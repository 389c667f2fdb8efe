using System.Diagnostics;
using System.Text.Json;
using Tmca.Model;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>bench/reference/tmca_reference.py's presets are the model's (the device check runs PyTorch's small and
/// tiny beside ours; a missing preset died with a KeyError). Read with Python's ast (the dict(...) literal alone), so PyTorch is not needed.</summary>
public class ReferencePresetTests
{
    [Theory]
    [InlineData("nano")]
    [InlineData("small")]
    [InlineData("tiny")]
    public void TheReferencePresetIsTheModelsPreset(string name)
    {
        string script = Path.Combine(Paths.RepoRoot, "bench", "reference", "tmca_reference.py");
        const string read = "import ast, json, sys\nt = ast.parse(open(sys.argv[1]).read())\n" +
            "d = next(n.value for n in t.body if isinstance(n, ast.Assign) and getattr(n.targets[0], 'id', '') == 'PRESETS')\n" +
            "v = eval(compile(ast.Expression(d), 'PRESETS', 'eval'), {'dict': dict, '__builtins__': {}})\n" +
            "print(json.dumps(v.get(sys.argv[2])))";
        var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c"); psi.ArgumentList.Add(read); psi.ArgumentList.Add(script); psi.ArgumentList.Add(name);
        using var p = Process.Start(psi)!;
        string json = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, p.StandardError.ReadToEnd());
        var e = JsonDocument.Parse(json).RootElement;
        Assert.True(e.ValueKind == JsonValueKind.Object, $"no preset '{name}' in {script}");
        var c = TmcaConfig.Preset(name);
        int I(string k) => e.GetProperty(k).GetInt32();
        int[] A(string k) => e.GetProperty(k).EnumerateArray().Select(x => x.GetInt32()).ToArray();
        Assert.Equal(c.ImageSize, I("image_size"));
        Assert.Equal(c.Dims, A("dims"));
        Assert.Equal(c.Depths, A("depths"));
        Assert.Equal(c.TextHidden, I("text_hidden"));
        Assert.Equal(c.TextLayers, I("text_layers"));
        Assert.Equal(c.TextHeads, I("text_heads"));
        Assert.Equal(c.TextIntermediate, I("text_intermediate"));
        Assert.Equal(c.MaxPositions, I("max_positions"));
        Assert.Equal(c.AlignDim, I("align_dim"));
        Assert.Equal(c.HeadChannels, I("head_channels"));
    }
}
