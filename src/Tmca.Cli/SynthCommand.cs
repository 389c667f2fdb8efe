using System.CommandLine;
using Tmca.Data.Synthetic;

namespace Tmca.Cli;

/// <summary>`tmca synth`: writes the synthetic chest-X-ray dataset (the embedded default) in the per-id layout.</summary>
internal static class SynthCommand
{
    public static Command Build()
    {
        var outDir = new Option<string?>("--out") { Description = "output folder (default: the cache folder `tmca train` uses)" };
        var size = new Option<int>("--size") { DefaultValueFactory = _ => 128 }.Positive(min: 32);   // SyntheticCxr.Generate refuses smaller images
        var train = new Option<int>("--train") { DefaultValueFactory = _ => 1200 }.Positive(min: 2);
        var val = new Option<int>("--val") { DefaultValueFactory = _ => 200 }.Positive();
        var test = new Option<int>("--test") { DefaultValueFactory = _ => 300 }.Positive();
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 7 };
        var cmd = new Command("synth", "generate the synthetic dataset (lesions in lung zones, QaTa-style reports, decoy lesions the report does not mention)") { outDir, size, train, val, test, seed };
        cmd.SetAction(p => Common.Guard(() =>
        {
            var o = new SyntheticOptions(p.GetValue(size), p.GetValue(train), p.GetValue(val), p.GetValue(test), p.GetValue(seed));
            string dir = p.GetValue(outDir) ?? SyntheticCxr.DefaultDir(o);
            SyntheticCxr.Generate(o, dir);
            Console.WriteLine($"wrote {o.Train + o.Val + o.Test} images to {dir}");
            return 0;
        }));
        return cmd;
    }
}
