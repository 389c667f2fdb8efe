using System.Globalization;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Tmca.Bench;

// `dotnet run -c Release --project bench/Tmca.Bench -- cpu` : CPU kernel benchmarks → a markdown table with
// GFLOP/s (or GB/s) and the fraction of this machine's peak, printed and written to bench-results/cpu-kernels.md.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var what = args.FirstOrDefault() ?? "cpu";
if (what == "step")
{
    // step PRESET BATCH [STEPS] [WARMUP]
    return TrainStepBenchmark.Run(args.ElementAtOrDefault(1) ?? "small", int.Parse(args.ElementAtOrDefault(2) ?? "8"),
                                  int.Parse(args.ElementAtOrDefault(3) ?? "10"), int.Parse(args.ElementAtOrDefault(4) ?? "3"), args.Contains("--profile"));
}
if (what == "sim") return SimulatorBenchmark.Run();   // the CUDA simulator's speed → bench-results/simulator.md
if (what == "counts") return StepCounts.Run(args.Length > 1 ? args[1..] : ["nano", "small"]);   // launches and copies per step
if (what != "cpu") { Console.Error.WriteLine("usage: Tmca.Bench cpu | sim | counts [PRESET…] | step PRESET BATCH [STEPS] [WARMUP]"); return 2; }

int cores = Environment.ProcessorCount;
Console.WriteLine($"measuring the FMA peak on {cores} cores ({PeakFlops.Isa}) ...");
double peak1 = PeakFlops.MeasureGflops(1), peakAllBefore = PeakFlops.MeasureGflops(cores);

var job = Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(3).WithIterationCount(12).WithLaunchCount(1);
var config = ManualConfig.CreateMinimumViable().AddJob(job).WithOptions(ConfigOptions.DisableLogFile);
var summaries = new[] { BenchmarkRunner.Run<SgemmBenchmark>(config), BenchmarkRunner.Run<ConvBenchmarks>(config) };

// The all-core FMA figure moves with the host's load (this is a shared VM), so the stable denominator is
// cores × the one-core peak; the all-core figure is measured before and after and reported beside it.
double peakAllAfter = PeakFlops.MeasureGflops(cores);
double peakRef = cores * Math.Max(peak1, PeakFlops.MeasureGflops(1));
var rows = new List<string>();
foreach (var s in summaries)
    foreach (var r in s.Reports)
    {
        if (r.ResultStatistics is null) continue;
        double sec = r.ResultStatistics.Mean / 1e9;
        string method = r.BenchmarkCase.Descriptor.WorkloadMethod.Name;
        string name = method == "Sgemm" ? $"SGEMM {r.BenchmarkCase.Parameters[0].Value}³" : method;
        (double amount, bool bytes) = method switch
        {
            "Sgemm" => (SgemmBenchmark.Flops((int)r.BenchmarkCase.Parameters[0].Value!), false),
            "Conv3x3Forward" => (ConvBenchmarks.Conv3x3Flops, false),
            "Conv3x3Backward" => (2 * ConvBenchmarks.Conv3x3Flops, false),
            "Depthwise7x7Forward" => (ConvBenchmarks.DepthwiseFlops, false),
            "Depthwise7x7Backward" => (2 * ConvBenchmarks.DepthwiseFlops, false),
            "LayerNormForward" => (ConvBenchmarks.LayerNormBytesForward, true),
            "LayerNormBackward" => (ConvBenchmarks.LayerNormBytesBackward, true),
            _ => (double.NaN, false),
        };
        double rate = amount / sec / 1e9;
        string peakCol = bytes ? "—" : $"{100 * rate / peakRef:0.0} %";
        rows.Add($"| {name} | {sec * 1e3:0.000} | {rate:0.0} {(bytes ? "GB/s" : "GFLOP/s")} | {peakCol} |");
    }

var header = $"""
Machine: {Environment.MachineName}, {cores} cores, {PeakFlops.Isa}; .NET {Environment.Version}.
Measured fp32 FMA peak: {peakRef / cores:0} GFLOP/s on one core, so {peakRef:0} GFLOP/s for {cores} cores (the denominator below); all {cores} cores at once measured {peakAllBefore:0} before and {peakAllAfter:0} after the run (shared host). Nominal-clock theoretical: {cores} × 2.6 GHz × {PeakFlops.VectorWidth * 2 * 2} FLOP/cycle = {cores * 2.6 * PeakFlops.VectorWidth * 4:0} GFLOP/s (the cores boost above 2.6 GHz).

| kernel | ms | rate | of peak |
|---|---|---|---|
""";
var table = header + "\n" + string.Join("\n", rows) + "\n";
Console.WriteLine();
Console.WriteLine(table);
Directory.CreateDirectory("bench-results");
File.WriteAllText(Path.Combine("bench-results", "cpu-kernels.md"), table);
return 0;
