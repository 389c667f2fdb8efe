using System.Text.Json;
using Tmca.Cli;
using Tmca.Cuda;
using Tmca.Cuda.Plan;
using Tmca.Engine;
using Tmca.Model;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>The planner: a hand-counted step on the planning runtime, the bound rule, and `tmca plan`'s outputs.</summary>
public class PlanTests
{
    /// <summary>
    /// y = x·wᵀ + b (x 4×8 without grad, w 16×8, b 16), backward from a given seed gradient, on the planning runtime.
    /// By hand, in recording order:
    ///  forward  1. GEMM y = x·wᵀ (m 4, n 16, k 8, β 0): 2·4·16·8 = 1024 FLOPs; reads x 128 B + w 512 B, writes y 256 B
    ///           2. broadcast_to y += b: 64 adds; reads b 64 B and y 256 B, writes y 256 B
    ///  backward 3. memset y.grad (256 B)                    4. copy seed → y.grad on the device (256 B read, 256 written)
    ///           5. memset w.grad (512 B)                    6. GEMM gw += gyᵀ·x (m 16, n 8, k 4, β 1): 1024 FLOPs;
    ///              reads gy 256 + x 128 + gw 512 B, writes gw 512 B
    ///           7. memset b.grad (64 B)                     8. sum_rows gb += Σ gy: 64 + 16 adds; reads 256 + 64 B, writes 64 B
    /// So 4 launches (2 GEMMs, 2 kernels), 3 memsets, 1 device copy; useful FLOPs 1024 + 64 + 1024 + 80 = 2192.
    /// </summary>
    [Fact]
    public void ALinearStepIsCountedOperationByOperationAsDerivedByHand()
    {
        var device = DeviceModels.Get("h100");
        using var rt = new PlanningRuntime(device);
        using var be = new CudaBackend(rt);
        var x = Tensor.FromArray(new float[32], 4, 8).To(be, persistent: true);
        var w = Tensor.FromArray(new float[128], 16, 8).To(be, persistent: true);
        var b = Tensor.FromArray(new float[16], 16).To(be, persistent: true);
        var seed = Tensor.FromArray(new float[64], 4, 16).To(be, persistent: true);
        w.RequiresGrad = b.RequiresGrad = true;
        rt.ClearEvents();
        using (var scope = new TensorScope())
        using (var tape = new Tape())
        {
            var y = Ops.Linear(x, w, b);
            tape.Backward(y, seed);
        }
        var ev = rt.Events;
        // y = x·wᵀ, y += b; the seed copied into y's gradient (no zero fill first: it is overwritten whole); gw = gyᵀ·x with
        // β = 0 and gb = Σ gy without accumulate — fresh gradients are assigned by their first writer (issue 17), so there
        // are no memsets at all
        Assert.Equal([PlanEventKind.Gemm, PlanEventKind.Launch, PlanEventKind.CopyOnDevice, PlanEventKind.Gemm, PlanEventKind.Launch],
                     ev.Select(e => e.Kind));
        Assert.Equal(["broadcast_to_f32", "sum_rows_f32"], ev.Where(e => e.Kind == PlanEventKind.Launch).Select(e => e.Name));
        Assert.Equal(1024, ev[0].Cost.UsefulFlops);
        Assert.Equal((128 + 512, 256), (ev[0].Cost.ReadBytes, ev[0].Cost.WrittenBytes));
        Assert.Equal((64, 64 + 256, 256), (ev[1].Cost.UsefulFlops, ev[1].Cost.ReadBytes, ev[1].Cost.WrittenBytes));
        Assert.Equal((256, 256), (ev[2].Cost.ReadBytes, ev[2].Cost.WrittenBytes));
        Assert.Equal((1024, 256 + 128, 512), (ev[3].Cost.UsefulFlops, ev[3].Cost.ReadBytes, ev[3].Cost.WrittenBytes));   // β = 0: C not read
        Assert.Equal((64, 256, 64), (ev[4].Cost.UsefulFlops, ev[4].Cost.ReadBytes, ev[4].Cost.WrittenBytes));             // no accumulate: gb not read

        var plan = StepPlan.Build(ev, device, _ => null, be.Pool.PeakBytes, rt.PeakReservedBytes, "linear");
        Assert.Equal((4, 0, 1), (plan.Launches, plan.Memsets, plan.Copies));
        Assert.Equal(2176e-9, plan.GflopUseful, 12);   // 1024 + 64 + 1024 + 64
        long bytes = 896 + 576 + 512 + 896 + 320;
        Assert.Equal(bytes / 1e9, plan.Gbytes, 12);
        // every operation here is far below the 3 µs launch floor: the bound is 5 floors
        Assert.Equal(5 * device.LaunchFloor * 1e3, plan.BoundMs, 9);
        Assert.All(plan.Ops, o => Assert.Equal(Bound.Launch, o.BoundBy));
    }

    [Fact]
    public void AnOperationIsBoundByTheLargestOfComputeMemoryAndTheLaunchFloor()
    {
        var d = DeviceModels.Get("h100");
        var gemm = new GemmCall(false, false, 4096, 4096, 4096, 1, 0x1000, 0, 0x2000, 0, 0, 0x3000, 0, 1, Tf32: true);
        var e = new PlanEvent(0, PlanEventKind.Gemm, "gemm", "linear", new Dim3(1), new Dim3(1), 0, Tmca.Cuda.Kernels.KernelCosts.Gemm(gemm), false, [], null, gemm, "");
        var o = StepPlan.Bounded(e, "other GEMMs", d);
        Assert.Equal(Bound.Compute, o.BoundBy);
        Assert.Equal(2.0 * 4096 * 4096 * 4096 / 495e12, o.Seconds, 12);   // TF32 tensor-core peak
        var fp32 = StepPlan.Bounded(e with { Cost = Tmca.Cuda.Kernels.KernelCosts.Gemm(gemm with { Tf32 = false }) }, "other GEMMs", d);
        Assert.Equal(2.0 * 4096 * 4096 * 4096 / 67e12, fp32.Seconds, 12);
        var copy = new PlanEvent(1, PlanEventKind.CopyOnDevice, "copy", null, new Dim3(1), new Dim3(1), 0,
                                 new Tmca.Cuda.Kernels.KernelCost(0, 0, 300_000_000, 300_000_000, Tmca.Cuda.Kernels.MathUnit.Fp32Simt), false, [], null, null, "");
        var c = StepPlan.Bounded(copy, "copies", d);
        Assert.Equal(Bound.Memory, c.BoundBy);
        Assert.Equal(600e6 / 3.0e12, c.Seconds, 12);
    }

    [Fact]
    public void TheNanoStepPlansWithEveryFamilyTotalAddingUpAndAWellFormedTrace()
    {
        var plan = StepPlanner.Plan(TmcaConfig.Preset("nano"), new TmcaFlags(), 4, DeviceModels.Get("h200"), tf32: true, eval: false, "nano");
        Assert.Equal(plan.Launches, plan.Families.Sum(f => f.Launches));
        Assert.Equal(plan.Memsets, plan.Families.Sum(f => f.Memsets));
        Assert.Equal(plan.BoundMs, plan.Families.Sum(f => f.BoundMs), 6);
        Assert.True(plan.GflopUseful > 0 && plan.GflopExecuted >= plan.GflopUseful && plan.PeakDeviceBytes > 0);
        Assert.Contains(plan.Families, f => f.Name == PlanFamilies.AdamW && f.Launches >= 1);
        // one read-back of the loss terms per training step
        Assert.Single(plan.Ops, o => o.Event.Kind == PlanEventKind.CopyToHost);

        using var json = JsonDocument.Parse(PlanReport.Json(plan));
        var root = json.RootElement;
        foreach (var field in new[] { "launches", "memsets", "copies", "gflop_useful", "gflop_executed", "gbytes", "bound_ms", "peak_device_bytes" })
            Assert.True(root.TryGetProperty(field, out _), field);
        Assert.Equal(plan.Launches, root.GetProperty("launches").GetInt32());
        foreach (var f in root.GetProperty("families").EnumerateArray())
            foreach (var field in new[] { "name", "launches", "gflop_useful", "gbytes", "bound_ms" })
                Assert.True(f.TryGetProperty(field, out _), field);

        using var trace = JsonDocument.Parse(PlanReport.Trace(plan));
        var events = trace.RootElement.GetProperty("traceEvents").EnumerateArray().Where(e => e.GetProperty("ph").GetString() == "X").ToList();
        Assert.Equal(plan.Ops.Count, events.Count);
        double end = 0;
        foreach (var e in events)
        {
            Assert.Equal(end, e.GetProperty("ts").GetDouble(), 2);   // end to end on one stream
            end = e.GetProperty("ts").GetDouble() + e.GetProperty("dur").GetDouble();
        }
        Assert.Equal(plan.BoundMs * 1e3, end, 0);
    }

    [Fact]
    public void TheEvalPlanHasNoBackwardAndNoOptimiser()
    {
        var plan = StepPlanner.Plan(TmcaConfig.Preset("nano"), new TmcaFlags(), 2, DeviceModels.Get("a100"), tf32: false, eval: true, "nano");
        Assert.DoesNotContain(plan.Ops, o => o.Event.Op is { } op && op.EndsWith(".backward", StringComparison.Ordinal));
        Assert.DoesNotContain(plan.Families, f => f.Name == PlanFamilies.AdamW);
        Assert.True(plan.Launches > 50);
    }
}
