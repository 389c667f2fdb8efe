using Tmca.Cuda;
using Tmca.Engine;
using Tmca.Tests.Data;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>`--device cuda-sim` from the command line, and the launch trace.</summary>
[Collection("cli")]
public class SimulatorCliTests
{
    /// <summary>`tmca train --device cuda-sim` trains and evaluates: every op of the model has a CUDA kernel.</summary>
    [Fact]
    public void TrainOnTheSimulatorFromTheCommandLine()
    {
        Device.RequireSimulator(new Tmca.Cuda.Sim.SimOptions()).Dispose();   // needs the simulator itself, not just a device
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal: true);
        var cfg = TestConfigs.WriteTiny(d.Path);
        var (code, err) = Cli.Run("train", d.Path, "--config", cfg, "--epochs", "1", "--steps", "2", "--batch", "2", "--device", "cuda-sim", "--out", d["run"]);
        Assert.True(code == 0, err);
        Assert.Equal(2, File.ReadAllLines(d["run/steps.jsonl"]).Length);
        Assert.True(File.Exists(d["run/eval-test/metrics.json"]));
    }

    [Fact]
    public void AnUnknownDeviceListsTheKnownOnes()
    {
        using var d = new TempDir();
        DataFixtures.PerId(d.Path, withVal: true);
        var (code, err) = Cli.Run("train", d.Path, "--preset", "nano", "--epochs", "1", "--device", "tpu", "--out", d["run"]);
        Assert.Equal(Tmca.Cli.ExitCodes.Usage, code);
        Assert.Contains("'tpu'", err);
        Assert.Contains("'cuda-sim'", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(Directory.Exists(d["run"]));
    }

    [Fact]
    public void TheTraceNamesKernelGridBlockAndOp()
    {
        var gpu = Device.Require();
        var log = new StringWriter();
        var (trace, writer) = (gpu.Trace, gpu.TraceWriter);
        gpu.Trace = true; gpu.TraceWriter = log;
        try
        {
            using var noGrad = Tape.NoGrad();
            var x = Tensor.Zeros([4, 300], DType.F32, gpu);
            Ops.Softmax(Ops.Gelu(x));
        }
        finally { gpu.Trace = trace; gpu.TraceWriter = writer; }
        var lines = log.ToString().Trim().Split('\n');
        Assert.Contains(lines, l => l.Contains("unary_f32") && l.Contains("grid 5") && l.Contains("block 256") && l.Contains("Gelu n=1200"));
        Assert.Contains(lines, l => l.Contains("softmax_f32") && l.Contains("grid 1") && l.Contains("softmax") && l.Contains("4×300"));
    }
}
