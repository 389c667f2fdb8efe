using BenchmarkDotNet.Attributes;
using Tmca.Engine;

namespace Tmca.Bench;

/// <summary>SGEMM C = A·B, square, through the backend (packed AVX-512 path).</summary>
public class SgemmBenchmark
{
    [Params(256, 512, 1024)] public int N;
    private Tensor _a = null!, _b = null!, _c = null!;

    [GlobalSetup]
    public void Setup()
    {
        var r = new Random(1);
        _a = Tensor.FromArray(Enumerable.Range(0, N * N).Select(_ => (float)r.NextDouble()).ToArray(), N, N);
        _b = Tensor.FromArray(Enumerable.Range(0, N * N).Select(_ => (float)r.NextDouble()).ToArray(), N, N);
        _c = Tensor.Zeros([N, N]);
    }

    [Benchmark] public void Sgemm() => CpuBackend.Instance.Gemm(false, false, N, N, N, 1.0, _a, 0, 0, _b, 0, 0, 0.0, _c, 0, 0, 1);

    public static double Flops(int n) => 2.0 * n * n * n;
}

/// <summary>
/// Convolutions and layer norm at the `small` preset's shapes, batch 8 (128 px → F0 at 32×32 with 24 channels):
/// the decoder's last 3×3 conv (48→24 channels at 32×32) and the stage-0 depthwise 7×7 (24 channels at 32×32),
/// forward and the full backward (data + weight + bias); layer norm over 24 channels at 8·32·32 positions.
/// </summary>
public class ConvBenchmarks
{
    private Tensor _x3 = null!, _w3 = null!, _y3 = null!, _gx3 = null!, _gw3 = null!;
    private Tensor _xd = null!, _wd = null!, _bd = null!, _yd = null!, _gxd = null!, _gwd = null!, _gbd = null!;
    private Tensor _xl = null!, _wl = null!, _bl = null!, _yl = null!, _ml = null!, _rl = null!, _gxl = null!, _gwl = null!, _gbl = null!;
    private readonly IBackend _be = CpuBackend.Instance;

    public const int B = 8, H = 32, Cin = 48, Cout = 24, Cd = 24;

    [GlobalSetup]
    public void Setup()
    {
        var r = new Random(2);
        Tensor R(params int[] s) => Tensor.FromArray(Enumerable.Range(0, (int)Shape.Numel(s)).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray(), s);
        _x3 = R(B, Cin, H, H); _w3 = R(Cout, Cin, 3, 3); _y3 = Tensor.Zeros([B, Cout, H, H]); _gx3 = Tensor.Zeros([B, Cin, H, H]); _gw3 = Tensor.Zeros([Cout, Cin, 3, 3]);
        _xd = R(B, Cd, H, H); _wd = R(Cd, 1, 7, 7); _bd = R(Cd); _yd = Tensor.Zeros([B, Cd, H, H]); _gxd = Tensor.Zeros([B, Cd, H, H]); _gwd = Tensor.Zeros([Cd, 1, 7, 7]); _gbd = Tensor.Zeros([Cd]);
        _xl = R(B * H * H, Cd); _wl = R(Cd); _bl = R(Cd); _yl = Tensor.Zeros([B * H * H, Cd]); _ml = Tensor.Zeros([B * H * H]); _rl = Tensor.Zeros([B * H * H]);
        _gxl = Tensor.Zeros([B * H * H, Cd]); _gwl = Tensor.Zeros([Cd]); _gbl = Tensor.Zeros([Cd]);
    }

    [Benchmark] public void Conv3x3Forward() => _be.Conv2d(_x3, _w3, null, _y3, 1, 1, 1);
    [Benchmark] public void Conv3x3Backward() => _be.Conv2dBackward(_x3, _w3, _y3, _gx3, _gw3, null, 1, 1, 1);
    [Benchmark] public void Depthwise7x7Forward() => _be.Conv2d(_xd, _wd, _bd, _yd, 1, 3, Cd);
    [Benchmark] public void Depthwise7x7Backward() => _be.Conv2dBackward(_xd, _wd, _yd, _gxd, _gwd, _gbd, 1, 3, Cd);
    [Benchmark] public void LayerNormForward() => _be.LayerNorm(_xl, _wl, _bl, _yl, _ml, _rl, B * H * H, Cd, 1, 1e-6);
    [Benchmark] public void LayerNormBackward() => _be.LayerNormBackward(_xl, _wl, _ml, _rl, _yl, _gxl, _gwl, _gbl, B * H * H, Cd, 1, accumulate: true);

    public static double Conv3x3Flops => 2.0 * B * Cout * H * H * Cin * 9;
    public static double DepthwiseFlops => 2.0 * B * Cd * H * H * 49;
    /// <summary>Layer norm moves x in and y out (forward); x, gy in and gx out (backward), in float32.</summary>
    public static double LayerNormBytesForward => 2.0 * B * H * H * Cd * 4;
    public static double LayerNormBytesBackward => 3.0 * B * H * H * Cd * 4;
}
