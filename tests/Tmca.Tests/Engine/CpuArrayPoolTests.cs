using Tmca.Engine;
using Xunit;

namespace Tmca.Tests;

/// <summary>The CPU pool's bounded cache (issue 19). The pool is process-wide, so these run in the non-parallel "cli"
/// collection and use array lengths no other test rents.</summary>
[Collection("cli")]
public class CpuArrayPoolTests
{
    [Fact]
    public void AFreedTensorLetsGoOfItsArrayEvenWhileTheTensorIsStillReferenced()
    {
        var t = Tensor.Zeros([4099], backend: CpuBackend.Instance);
        var storage = (CpuStorage)t.Storage;
        var weak = new WeakReference(storage.Data);
        t.Dispose();
        Assert.Null(storage.Data);   // the array went back to the pool (or to the GC), not kept alive by the storage
        GC.KeepAlive(t);
        _ = weak;
    }

    [Fact]
    public void TheCacheKeepsOnlyWhatAUnitOfWorkRentedAndStaysUnderTheLivePeak()
    {
        CpuArrayPool.Clear();
        long before = CpuArrayPool.CachedBytes;
        using (new TensorScope())   // a unit of work that rents 3 arrays of 5,003 floats at once
        {
            for (int i = 0; i < 3; i++) Tensor.Zeros([5003], backend: CpuBackend.Instance);
        }
        long mark = CpuArrayPool.HighWaterBytes;
        Assert.True(mark >= 3 * 5003 * 4, $"high-water mark {mark} below the unit's live peak");
        Assert.Equal(before + 3 * 5003 * 4, CpuArrayPool.CachedBytes);   // kept for the next unit of the same shapes
        Assert.True(CpuArrayPool.LiveBytes + CpuArrayPool.CachedBytes <= mark);
        using (new TensorScope())   // the next unit rents other sizes only: the 5,003-float arrays are dropped at its end
        {
            Tensor.Zeros([6007], backend: CpuBackend.Instance);
        }
        Assert.Equal(6007 * 4, CpuArrayPool.CachedBytes);
        CpuArrayPool.Clear();
        Assert.Equal(0, CpuArrayPool.CachedBytes);
    }

    [Fact]
    public void ANewSizeIsAssembledFromTheFreedPagesOfAnotherAndComesBackZeroed()
    {
        if (!OperatingSystem.IsLinux()) Assert.Skip("page runs are Linux mappings; elsewhere the pool maps fresh memory");
        CpuArrayPool.Clear();
        CpuArrayPool.MappingBudgetOverride = int.MaxValue;   // the test process's own mapping count must not switch assembly off
        Assert.True(CpuArrayPool.AssemblesFromPageRuns());
        try { AssembleAndReassemble(); }
        finally { CpuArrayPool.MappingBudgetOverride = null; CpuArrayPool.Clear(); }
    }

    private static void AssembleAndReassemble()
    {
        const int a = 300_007, b = 250_009;   // 1.2 MiB and 1.0 MiB of floats: mapped arrays, sizes no other test rents
        using (new TensorScope())
        {
            var t = Tensor.Zeros([a], backend: CpuBackend.Instance);
            t.Span<float>().Fill(7f);   // dirty pages
        }
        long fresh = CpuArrayPool.FreshBytes;
        Tensor u;
        using (new TensorScope())   // another size only: the first unit's array is taken apart for it, no fresh pages
        {
            u = TensorScope.Keep(Tensor.Zeros([b], backend: CpuBackend.Instance));
            Assert.Equal(fresh, CpuArrayPool.FreshBytes);
            Assert.All(u.ToArray<float>(), v => Assert.Equal(0f, v));   // reused pages were dirty: zeroed on the way
        }
        u.Dispose();
        fresh = CpuArrayPool.FreshBytes;
        using (new TensorScope())   // and an assembled array is taken apart again, piece by piece (each one kernel mapping)
        {
            var v = Tensor.Zeros([200_003], backend: CpuBackend.Instance);
            Assert.Equal(fresh, CpuArrayPool.FreshBytes);
            Assert.All(v.ToArray<float>(), x => Assert.Equal(0f, x));
        }
    }

    [Fact]
    public void AboveTheMappingBudgetArraysAreMappedFreshAndMultiPieceOnesGoBack()
    {
        if (!OperatingSystem.IsLinux()) Assert.Skip("page runs and the mapping budget are Linux's");
        CpuArrayPool.Clear();
        try
        {
            CpuArrayPool.MappingBudgetOverride = int.MaxValue;
            Assert.True(CpuArrayPool.AssemblesFromPageRuns());
            CpuArrayPool.MappingBudgetOverride = 1;   // any process has more mappings than that
            Assert.False(CpuArrayPool.AssemblesFromPageRuns());
            using (new TensorScope()) Tensor.Zeros([300_011], backend: CpuBackend.Instance);
            long fresh = CpuArrayPool.FreshBytes;
            using (new TensorScope()) Tensor.Zeros([250_013], backend: CpuBackend.Instance);   // a miss: fresh pages, no assembly
            Assert.Equal(fresh + 250_013 * 4, CpuArrayPool.FreshBytes);
            CpuArrayPool.MappingBudgetOverride = int.MaxValue;
            Assert.True(CpuArrayPool.AssemblesFromPageRuns());
        }
        finally
        {
            CpuArrayPool.MappingBudgetOverride = null;
            CpuArrayPool.Clear();
        }
    }
}
