using System.CommandLine;
using Tmca.Engine;
using Tmca.Engine.Verification;
using Tmca.Model.Verification;

namespace Tmca.Cli;

/// <summary>`tmca oracle FILE...`: checks the engine against reference tensors, prints a table per file and a verdict.</summary>
internal static class OracleCommand
{
    public static Command Build()
    {
        var files = new Argument<string[]>("files") { Description = "oracle files (safetensors or tokenizer JSON)", Arity = ArgumentArity.OneOrMore };
        var failuresOnly = new Option<bool>("--failures-only") { Description = "print only the tensors out of tolerance" };
        var device = Common.Device();
        var cmd = new Command("oracle", "compare the engine with PyTorch / Hugging Face reference tensors") { files, failuresOnly, device };
        cmd.SetAction(parse => Common.Guard(() =>
        {
            var backend = Common.Backend(parse.GetValue(device)!);
            bool allPass = true;
            foreach (var path in parse.GetValue(files)!)
            {
                try
                {
                    var report = Run(path, backend);
                    report.Write(Console.Out, parse.GetValue(failuresOnly));
                    Console.WriteLine(report.Verdict);
                    Console.WriteLine();
                    allPass &= report.Pass;
                }
                catch (SafetensorsException e) { Console.Error.WriteLine($"error: {e.Message}"); allPass = false; }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
                {
                    Console.Error.WriteLine($"error: {path}: {e.Message}"); allPass = false;
                }
            }
            Console.WriteLine(allPass ? "verdict: PASS" : "verdict: FAIL");
            return allPass ? 0 : 1;
        }));
        return cmd;
    }

    private static OracleReport Run(string path, IBackend backend)
    {
        if (TokenizerOracle.IsTokenizerFile(path)) return TokenizerOracle.Run(path);
        var f = SafetensorsFile.Open(path);
        if (OpsOracle.IsOpsFile(f)) return OpsOracle.Run(f, backend);
        if (ModelOracle.IsModelFile(f)) return ModelOracle.Run(f, backend);
        if (HfEncoderOracle.IsHfFile(f, out _)) return HfEncoderOracle.Run(f, backend);
        throw new NotSupportedException("not a recognised oracle file (expected an ops, model-*, hf/ or tokenizer oracle)");
    }
}
