using System.Diagnostics;
using Tmca.Cuda;
using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Bench;

/// <summary>
/// How fast the CUDA simulator runs kernels on the CPU (`Tmca.Bench sim`): three kernels of different kinds —
/// an elementwise grid-stride loop (GELU, no synchronisation), the last-axis layer norm (a warp per row, warp
/// shuffles) and the block reduction sum_to (shared memory, __syncthreads) — at a few sizes: launches timed
/// after a warm-up (compilation excluded), reported as ms per launch, simulated blocks/s and elements/s.
/// </summary>
public static class SimulatorBenchmark
{
    public static int Run()
    {
        var sim = CudaBackend.TryCreateSimulator(out var why, new Tmca.Cuda.Sim.SimOptions());
        if (sim is null) { Console.Error.WriteLine($"no CUDA simulator: {why}"); return 1; }
        var rows = new List<string>();
        var rng = new Random(1);
        Tensor Rand(params int[] s) => Tensor.FromArray(Enumerable.Range(0, (int)Shape.Numel(s)).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), s).To(sim);
        using var noGrad = Tape.NoGrad();

        void Measure(string kernel, string shape, long elements, long blocks, int threads, Action launch)
        {
            launch(); launch();   // compile (cached on disk) and warm up
            int reps = 0;
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed.TotalSeconds < 1.5 || reps < 3) { launch(); reps++; }
            double s = sw.Elapsed.TotalSeconds / reps;
            rows.Add($"| {kernel} | {shape} | {blocks:N0} × {threads} | {s * 1e3:0.00} | {blocks / s / 1e3:0.0} k | {elements / s / 1e6:0.0} M |");
            Console.WriteLine(rows[^1]);
        }

        foreach (int n in new[] { 1 << 16, 1 << 20, 1 << 22 })
        {
            var x = Rand(n); var y = Tensor.Zeros([n], DType.F32, sim);
            Measure("unary_f32 (GELU)", $"{n:N0}", n, KernelTable.Unary.Grid(n, sim.SmCount).X, 256, () => sim.Unary(UnaryOp.Gelu, 0, x, y));
        }
        foreach (int rows_ in new[] { 256, 4096, 16384 })
        {
            const int c = 768;
            var x = Rand(rows_, c); var y = Tensor.Zeros([rows_, c], DType.F32, sim);
            var mean = Tensor.Zeros([rows_], DType.F32, sim); var rstd = Tensor.Zeros([rows_], DType.F32, sim);
            var w = Rand(c); var b = Rand(c);
            Measure("layernorm_f32 (warp per row)", $"{rows_:N0}×{c}", (long)rows_ * c, KernelTable.LayerNorm.Grid(rows_, sim.SmCount).X, 256,
                    () => sim.LayerNorm(x, w, b, y, mean, rstd, rows_, c, 1, 1e-5));
        }
        foreach (var (outer, inner) in new[] { (256, 256), (4096, 256), (16384, 256) })
        {
            var x = Rand(outer, inner); var y = Tensor.Zeros([inner], DType.F32, sim);
            uint block = outer >= 4096 ? 256u : outer >= 512 ? 128u : 32u;
            Measure("sum_to_f32 (block reduction)", $"{outer:N0}×{inner} → {inner}", (long)outer * inner, KernelTable.SumTo.Grid(inner, sim.SmCount).X, (int)block,
                    () => sim.SumTo(x, y, false));
        }
        var table = $"""
            {sim.Describe()}
            Machine: {Environment.MachineName}, {Environment.ProcessorCount} cores; .NET {Environment.Version}. One simulated launch at a time (one OS thread).

            | kernel | shape | blocks × threads | ms / launch | blocks/s | elements/s |
            |---|---|---|---|---|---|
            {string.Join("\n", rows)}

            """;
        Console.WriteLine();
        Console.WriteLine(table);
        Directory.CreateDirectory("bench-results");
        File.WriteAllText(Path.Combine("bench-results", "simulator.md"), table);
        return 0;
    }
}
