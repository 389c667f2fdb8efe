using Tmca.Cuda;
using Tmca.Cuda.Kernels;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>The declared kernel costs: every kernel has one, and a few are checked against hand counts.</summary>
public unsafe class PlanCostTests
{
    [Fact]
    public void EveryKernelDeclaresACostAndNoCostNamesAMissingKernel()
    {
        var names = KernelTable.All.Select(d => d.Name).ToHashSet();
        Assert.All(names, n => Assert.True(KernelCosts.Declares(n), $"kernel {n} declares no cost"));
        Assert.All(KernelCosts.Declared, n => Assert.True(names.Contains(n), $"a cost is declared for {n}, which is not a kernel"));
        // the kernel lab's own kernels carry their cost with their descriptor (the profiling simulator declares it)
        Assert.All(KernelLab.LabKernels.All, d => Assert.True(KernelCosts.Declares(d) && !KernelCosts.Declares(d.Name), $"lab kernel {d.Name}"));
    }

    [Fact]
    public void Conv2dForwardCountsTheContractionItsTilePaddingAndEachTensorOnce()
    {
        // x 2×3×8×8, w 4×3×3×3, pad 1 → y 2×4×8×8. GEMM view: m = O = 4, n = B·Ho·Wo = 128, k = C·9 = 27.
        var g = new ConvGeom { B = 2, C = 3, H = 8, W = 8, O = 4, Kh = 3, Kw = 3, Ho = 8, Wo = 8, Stride = 1, Pad = 1, Groups = 1 };
        var a = new KernelArgs(KernelTable.Conv2dForward);
        a.Struct(g).Ptr(0x1000UL).Ptr(0x2000UL).Ptr(0x3000UL).Ptr(0x4000UL);
        var p = stackalloc void*[5];
        a.Pointers(p);
        var c = KernelTable.Conv2dForward.Cost(new Dim3(2, 1, 1), KernelTable.Conv2dForward.BlockDim, 0, p);
        Assert.Equal(2L * 512 * 27, c.UsefulFlops);               // 2 · outputs · k
        Assert.Equal(2L * 64 * 128 * 32, c.ExecutedFlops);        // m padded to 64, n to 128, k to 32
        Assert.Equal(4L * (384 + 108 + 4), c.ReadBytes);          // x, w, bias
        Assert.Equal(4L * 512, c.WrittenBytes);                   // y
        Assert.Equal(MathUnit.Fp32Simt, c.Unit);
    }

    [Fact]
    public void StridedConvDataGradientExecutesStrideSquaredTimesItsUsefulWork()
    {
        // patchify stem: x 1×3×64×64, w 64×3×4×4, stride 4 → y 1×64×16×16; the data gradient's map walks (o, ky, kx)
        // for all 4096 input pixels: m = 3, n = 4096, k = 64·16 = 1024; useful MACs are the forward's 16384·48.
        var g = new ConvGeom { B = 1, C = 3, H = 64, W = 64, O = 64, Kh = 4, Kw = 4, Ho = 16, Wo = 16, Stride = 4, Pad = 0, Groups = 1 };
        var a = new KernelArgs(KernelTable.Conv2dBackwardData);
        a.Struct(g).Ptr(0x1000UL).Ptr(0x2000UL).Ptr(0x3000UL);
        var p = stackalloc void*[4];
        a.Pointers(p);
        var c = KernelTable.Conv2dBackwardData.Cost(new Dim3(64, 1, 1), KernelTable.Conv2dBackwardData.BlockDim, 0, p);
        Assert.Equal(2L * 16384 * 48, c.UsefulFlops);
        Assert.Equal(2L * 64 * 4096 * 1024, c.ExecutedFlops);
        Assert.Equal(4L * (3072 + 16384 + 12288), c.ReadBytes);   // w, gy, gx (accumulated)
        Assert.Equal(4L * 12288, c.WrittenBytes);
    }

    [Fact]
    public void AdamWReadsItsChunkTablesWhenItCanAndBoundsThemWhenItCannot()
    {
        // two tensors of 5000 and 100 elements in chunks of 4096: chunks (0,0) (0,4096) (1,0) → 4096 + 904 + 100 elements
        var slots = new[] { new AdamSlotNative { N = 5000 }, new AdamSlotNative { N = 100 } };
        int[] slotOf = [0, 0, 1];
        long[] start = [0, 4096, 0];
        var mem = new Dictionary<ulong, byte[]>
        {
            [0x100] = Bytes(slots), [0x200] = Bytes(slotOf), [0x300] = Bytes(start),
        };
        DeviceReader read = (addr, into) =>
        {
            if (!mem.TryGetValue(addr, out var b) || b.Length < into.Length) return false;
            b.AsSpan(0, into.Length).CopyTo(into);
            return true;
        };
        var a = new KernelArgs(KernelTable.AdamW);
        a.Ptr(0x100UL).Ptr(0x200UL).Ptr(0x300UL).I32(4096).F32(1e-3).F32(0.9).F32(0.999).F32(1e-8).F32(0.01).F32(0.1).F32(0.03).Ptr(0UL);
        var p = stackalloc void*[12];
        a.Pointers(p);
        var exact = KernelTable.AdamW.Cost(new Dim3(3), KernelTable.AdamW.BlockDim, 0, p, read);
        Assert.Equal(14L * 5100, exact.UsefulFlops);
        Assert.Equal(16L * 5100 + 12 * 3 + 48 * 2, exact.ReadBytes);
        Assert.Equal(12L * 5100, exact.WrittenBytes);
        var bound = KernelTable.AdamW.Cost(new Dim3(3), KernelTable.AdamW.BlockDim, 0, p);
        Assert.Equal(12L * 3 * 4096, bound.WrittenBytes);
    }

    [Fact]
    public void GemmCountsTwoFlopsPerMacAndReadsCOnlyWithBeta()
    {
        var g = new GemmCall(false, false, 3, 5, 7, 1f, 0x1000, 21, 0x2000, 35, 1f, 0x3000, 15, 2, Tf32: true);
        var c = KernelCosts.Gemm(g);
        Assert.Equal(2L * 3 * 5 * 7 * 2, c.UsefulFlops);
        Assert.Equal(4L * (42 + 70 + 30), c.ReadBytes);
        Assert.Equal(4L * 30, c.WrittenBytes);
        Assert.Equal(MathUnit.Tf32TensorCore, c.Unit);
        var broadcastB = KernelCosts.Gemm(g with { StrideB = 0, Beta = 0, Tf32 = false });
        Assert.Equal(4L * (42 + 35), broadcastB.ReadBytes);
        Assert.Equal(MathUnit.Fp32Simt, broadcastB.Unit);
    }

    private static byte[] Bytes<T>(T[] v) where T : unmanaged
    {
        var b = new byte[v.Length * sizeof(T)];
        fixed (T* s = v) new ReadOnlySpan<byte>(s, b.Length).CopyTo(b);
        return b;
    }
}
