using Tmca.Cuda.Kernels;

namespace Tmca.Cuda.Plan;

/// <summary>
/// A GPU as the planner sees it: enough to bound a launch (peaks of each math unit, memory bandwidth, the launch
/// floor) and to run the backend's grid rules (SM count) and its memory policy (capacity). Bandwidths are in bytes
/// per second, peaks in FLOP/s, the floors in seconds. <see cref="BandwidthSource"/> says whether the bandwidth is a
/// measurement ("measured") or 0.9 × the datasheet ("derated"), as ../shared/docs/gpu-cost.md prescribes.
/// </summary>
public sealed record DeviceModel(string Id, string Name, int Arch, int SmCount, long MemoryBytes, double DatasheetBandwidth, double Bandwidth,
                                 string BandwidthSource, long L2Bytes, bool L2Confirmed, double Fp32Peak, double Tf32Peak, double Bf16Peak,
                                 double HostLinkBandwidth, double LaunchFloor, double GraphLaunchFloor, string Sources)
{
    public double Peak(MathUnit unit) => unit switch
    {
        MathUnit.Fp32Simt => Fp32Peak,
        MathUnit.Tf32TensorCore => Tf32Peak,
        MathUnit.Bf16TensorCore => Bf16Peak,
        _ => throw new ArgumentOutOfRangeException(nameof(unit)),
    };
}

/// <summary>
/// The devices `tmca plan --gpu` knows, in one table. Sources (../shared/docs/gpu-cost.md §1, §2 and gpu-machine.md):
///  - SMs, memory bandwidth, L2 and dense FP32 / TF32 / BF16 peaks: NVIDIA's H100, A100 and L4 datasheets as
///    tabulated by HPC Tech, G. Klockwood's processor notes and Thunder Compute; RTX 4090 launch specs and the Ada
///    whitepaper tables. Tensor peaks are dense (the datasheets' "with sparsity" figures are 2×).
///  - H100 bandwidth measured: ≈3.0 TB/s on this project's H100 SXM (gpu-machine.md); every other device uses
///    0.9 × datasheet ("derated"). H200's L2 is not on its datasheet (same GH100 die as the H100: 50 MB, unconfirmed).
///  - Launch floor 3.0 µs per stream operation without a graph (a raw cuLaunchKernel on the host: meta-pytorch/tritonbench
///    PR 1017; async enqueue 2.6–2.8 µs: ahrefs/ocannl issue 488) and 0.58 µs per node in a CUDA graph (graph replay,
///    ocannl issue 488). GPU-side launch latency on H100/H200 is unconfirmed: launches pipeline, so the floor bounds a
///    stream only where kernels are shorter than the host's enqueue.
///  - Host link (host → device copies): PCIe one direction, 0.9 × the interface's datasheet rate (gen 5 ×16: 64 GB/s;
///    gen 4 ×16: 32 GB/s). Unmeasured here.
/// </summary>
public static class DeviceModels
{
    private const double T = 1e12, G = 1e9, Us = 1e-6;
    private const long GiB = 1L << 30, MB = 1_000_000;
    private const string Doc = "gpu-cost.md §1–2";

    public static readonly IReadOnlyList<DeviceModel> All =
    [
        new("h100", "H100 SXM5 80GB", 90, 132, 80 * GiB, 3.35 * T, 3.0 * T, "measured", 50 * MB, true, 67 * T, 495 * T, 989 * T, 0.9 * 64 * G, 3.0 * Us, 0.58 * Us,
            Doc + "; 3.0 TB/s measured (gpu-machine.md)"),
        new("h200", "H200 SXM 141GB", 90, 132, 141 * GiB, 4.8 * T, 0.9 * 4.8 * T, "derated", 50 * MB, false, 67 * T, 495 * T, 989 * T, 0.9 * 64 * G, 3.0 * Us, 0.58 * Us,
            Doc + "; L2 unconfirmed (GH100 die)"),
        new("a100", "A100 SXM 80GB", 80, 108, 80 * GiB, 2.039 * T, 0.9 * 2.039 * T, "derated", 40 * MB, true, 19.5 * T, 156 * T, 312 * T, 0.9 * 32 * G, 3.0 * Us, 0.58 * Us, Doc),
        new("l4", "L4 24GB", 89, 58, 24 * GiB, 0.300 * T, 0.9 * 0.300 * T, "derated", 48 * MB, true, 30.3 * T, 60 * T, 121 * T, 0.9 * 32 * G, 3.0 * Us, 0.58 * Us,
            Doc + "; 58 SMs (some lists say 60)"),
        new("rtx4090", "RTX 4090 24GB", 89, 128, 24 * GiB, 1.008 * T, 0.9 * 1.008 * T, "derated", 72 * MB, true, 82.6 * T, 82.6 * T, 165 * T, 0.9 * 32 * G, 3.0 * Us, 0.58 * Us,
            Doc + "; BF16 with FP32 accumulation"),
    ];

    public static DeviceModel Get(string id) =>
        All.FirstOrDefault(d => d.Id.Equals(id, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"--gpu '{id}': unknown device (one of {string.Join(", ", All.Select(d => d.Id))})");
}
