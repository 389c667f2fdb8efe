namespace Tmca.Cuda.Kernels;

/// <summary>The unit that does a launch's arithmetic: it picks the peak its FLOPs are divided by.</summary>
public enum MathUnit
{
    /// <summary>FP32 CUDA cores (every kernel of kernels/*.cu but conv.cu's *_tf32, and cuBLAS SGEMM with TF32 off).</summary>
    Fp32Simt,
    /// <summary>TF32 tensor cores (cuBLAS with CUBLAS_COMPUTE_32F_FAST_TF32, or our own mma.tf32).</summary>
    Tf32TensorCore,
    /// <summary>BF16 tensor cores (no kernel uses them yet; the device table has the peak).</summary>
    Bf16TensorCore,
}

/// <summary>
/// What one launch must do, declared from its arguments (not measured): <see cref="UsefulFlops"/> is the op's
/// mathematical count (2 per multiply-add for contractions; for elementwise and normalisation kernels a fixed,
/// documented number per element), <see cref="ExecutedFlops"/> what the kernel's tiling makes it compute (zero
/// padding of 64×64×16 GEMM tiles, the s² zero taps of a strided conv's data gradient); the bytes are
/// compulsory DRAM traffic: every tensor the kernel reads counted once in <see cref="ReadBytes"/>, every tensor it
/// writes once in <see cref="WrittenBytes"/>, so a read-modify-write (gx +=) counts in both.
/// </summary>
public readonly record struct KernelCost(long UsefulFlops, long ExecutedFlops, long ReadBytes, long WrittenBytes, MathUnit Unit)
{
    public long Bytes => ReadBytes + WrittenBytes;

    public static KernelCost operator +(KernelCost a, KernelCost b) =>
        new(a.UsefulFlops + b.UsefulFlops, a.ExecutedFlops + b.ExecutedFlops, a.ReadBytes + b.ReadBytes, a.WrittenBytes + b.WrittenBytes, a.Unit);

    public override string ToString() =>
        $"{UsefulFlops} useful FLOP ({ExecutedFlops} executed, {Unit}), {ReadBytes} B read, {WrittenBytes} B written";
}

/// <summary>Reads <paramref name="into"/>.Length bytes of device memory at <paramref name="address"/>; false when the
/// memory is unknown (the planning runtime knows what was copied to the device; a simulator knows everything).</summary>
public delegate bool DeviceReader(ulong address, Span<byte> into);

/// <summary>
/// One launch as a runtime sees it, for a cost model to read: the descriptor, geometry and the argument values
/// through cuLaunchKernel's kernelParams (one pointer per parameter to its value). The pointers must stay valid
/// while the cost is computed (the launch call's frame). <see cref="Read"/> is optional device memory access, used
/// only where a cost depends on data in device memory (AdamW's chunk tables, embedding ids).
/// </summary>
public readonly unsafe struct KernelLaunch(KernelDescriptor kernel, Dim3 grid, Dim3 block, uint sharedBytes, void** args, DeviceReader? read = null)
{
    public KernelDescriptor Kernel { get; } = kernel;
    public Dim3 Grid { get; } = grid;
    public Dim3 Block { get; } = block;
    public uint SharedBytes { get; } = sharedBytes;
    public DeviceReader? Read { get; } = read;
    private readonly void** _args = args;

    private void* At(int i)
    {
        if ((uint)i >= (uint)Kernel.Params.Length) throw new ArgumentOutOfRangeException(nameof(i), $"{Kernel.Name} has {Kernel.Params.Length} parameters, not {i + 1}");
        return _args[i];
    }

    public int I32(int i) => *(int*)At(i);
    public long I64(int i) => *(long*)At(i);
    public float F32(int i) => *(float*)At(i);
    public ulong Ptr(int i) => *(ulong*)At(i);
    public bool NonNull(int i) => Ptr(i) != 0;
    public T Struct<T>(int i) where T : unmanaged => *(T*)At(i);

    /// <summary>count values of T at a device address, or null when they cannot be read.</summary>
    public T[]? ReadArray<T>(ulong address, long count) where T : unmanaged
    {
        if (Read is null || address == 0 || count < 0 || count > int.MaxValue / sizeof(T)) return null;
        var data = new T[count];
        fixed (T* p = data)
            return Read(address, new Span<byte>(p, (int)(count * sizeof(T)))) ? data : null;
    }
}
