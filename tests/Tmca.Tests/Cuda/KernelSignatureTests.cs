using Tmca.Cuda;
using Tmca.Cuda.Kernels;
using Tmca.Engine;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>
/// Launchers and kernels agree, checked without any compiler: every KERNEL in kernels/*.cu has a descriptor with
/// the same name and parameter types in order, every descriptor has its kernel, structs passed to kernels have the
/// same layout in C and C#, and an argument list that does not match its descriptor is refused on the host.
/// </summary>
public unsafe class KernelSignatureTests
{
    [Fact]
    public void EveryKernelMatchesItsDescriptor()
    {
        var problems = KernelSignatureCheck.ProblemsInThisBuild();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.Equal(KernelSources.Files.Sum(f => KernelSignatures.Kernels(f, KernelSources.Source(f)).Count), KernelTable.All.Count);
        Assert.Equal(KernelSources.LabFiles.Sum(f => KernelSignatures.Kernels(f, KernelSources.Source(f)).Count), KernelLab.LabKernels.All.Count);
    }

    [Fact]
    public void TheLabsKernelsShipApartFromTheProducts()
    {
        // the model's kernel files and table hold no lab version; the lab's v1s are in kernels/lab/ with their own table
        Assert.Equal(["lab/tmca_v1.cu"], KernelSources.LabFiles);
        Assert.DoesNotContain(KernelSources.Files, f => f.Contains('/'));
        Assert.DoesNotContain(KernelTable.All, d => d.Name.Contains("naive") || d.File.StartsWith("lab/"));
        Assert.All(KernelLab.LabKernels.All, d => Assert.StartsWith("lab/", d.File));
        Assert.DoesNotContain("naive", KernelSources.Source("tmca.cu"));
    }

    [Fact]
    public void TheParserNormalisesTypes()
    {
        var ks = KernelSignatures.Kernels("t.cu", "// KERNEL void commented(int x)\nKERNEL void k(const float* __restrict__ x, long long n,\n  float *y, Shape8 s) {}\n");
        var k = Assert.Single(ks);
        Assert.Equal("k", k.Name);
        Assert.Equal(["const float*", "i64", "float*", "Shape8"], k.ParamTypes);
        Assert.Equal(2, k.Line);
    }

    private static List<string> Check(KernelDescriptor[] ds, string source) =>
        KernelSignatureCheck.Problems(ds, [("elementwise.cu", source)], KernelSources.Headers);

    [Fact]
    public void AWrongArgumentListFailsTheCheck()
    {
        var src = KernelSources.Source("elementwise.cu");
        var right = KernelTable.All.Where(d => d.File == "elementwise.cu").ToArray();
        Assert.Empty(Check(right, src));

        // n passed as an int where the kernel takes an i64
        var wrongType = right.Select(d => d.Name == "axpy_f32" ? d with { Params = ["float", "const float*", "float*", "int"] } : d).ToArray();
        Assert.Contains(Check(wrongType, src), p => p.Contains("axpy_f32 parameter 4 is 'i64', its descriptor says 'int'"));

        // two arguments swapped
        var swapped = right.Select(d => d.Name == "unary_f32" ? d with { Params = ["float", "int", "const float*", "float*", "i64"] } : d).ToArray();
        Assert.Contains(Check(swapped, src), p => p.Contains("unary_f32 parameter 1 is 'int'"));

        // one argument missing
        var missing = right.Select(d => d.Name == "fill_f32" ? d with { Params = ["float", "float*"] } : d).ToArray();
        Assert.Contains(Check(missing, src), p => p.Contains("fill_f32 takes 3 parameters"));

        // a kernel without a descriptor, a descriptor without a kernel
        Assert.Contains(Check(right, src + "\nKERNEL void new_kernel(float* y) {}\n"), p => p.Contains("new_kernel has no descriptor"));
        Assert.Contains(Check([.. right, new KernelDescriptor("elementwise.cu", "gone_f32", ["float*"], LaunchRule.GridStride)], src),
                        p => p.Contains("gone_f32 names a kernel"));
    }

    [Fact]
    public void StructLayoutsAreComparedOnBothSides()
    {
        var structs = KernelSignatures.Structs(KernelSources.Files.Select(KernelSources.Source).Concat(KernelSources.Headers.Select(h => h.Source)));
        var shape = structs["Shape8"];
        Assert.Equal(200, shape.Layout().Size);
        Assert.Empty(KernelSignatureCheck.CompareLayout(shape, typeof(Shape8)));
        var slot = structs["AdamSlot"];
        Assert.Equal(48, slot.Layout().Size);
        Assert.Empty(KernelSignatureCheck.CompareLayout(slot, typeof(AdamSlotNative)));
        // a C struct with two fields in another order than the C# twin
        var reordered = slot with { Fields = [slot.Fields[1], slot.Fields[0], .. slot.Fields[2..]] };
        Assert.NotEmpty(KernelSignatureCheck.CompareLayout(reordered, typeof(AdamSlotNative)));
        // a C struct with a 4-byte count where C# has 8 bytes: every later field moves
        var narrower = slot with { Fields = [.. slot.Fields[..4], ("int", "n", 1), .. slot.Fields[5..]] };
        Assert.Contains(KernelSignatureCheck.CompareLayout(narrower, typeof(AdamSlotNative)), p => p.Contains("field 'decay' at byte 36 in C, 40 in C#"));
    }

    [Fact]
    public void KernelArgsRefuseAMismatchOnTheHost()
    {
        var x = Tensor.Zeros([4]);
        Assert.Contains("parameter 5 is i64, given int", Assert.Throws<ArgumentException>(() =>
        {
            var a = new KernelArgs(KernelTable.Unary);
            a.I32(0).F32(1f).Ptr(0UL).Ptr(0UL).I32(4);
        }).Message);
        Assert.Contains("given a I64 tensor", Assert.Throws<ArgumentException>(() =>
        {
            var a = new KernelArgs(KernelTable.Unary);
            a.I32(0).F32(1f).Ptr(Tensor.Zeros([4], DType.I64));
        }).Message);
        Assert.Contains("2 arguments given, it takes 5", Assert.Throws<ArgumentException>(() =>
        {
            var a = new KernelArgs(KernelTable.Unary);
            a.I32(0).F32(1f);
            var p = stackalloc byte[64];
            a.Pointers((void**)p);
        }).Message);
        Assert.Contains("argument 4 (i64) given, but it takes 3", Assert.Throws<ArgumentException>(() =>
        {
            var a = new KernelArgs(KernelTable.Fill);
            a.F32(1f).Ptr(0UL).I64(4).I64(5);
        }).Message);
        Assert.Contains("parameter 7 is Shape8, given AdamSlotNative", Assert.Throws<ArgumentException>(() =>
        {
            var a = new KernelArgs(KernelTable.BinaryBroadcast);
            a.I32(0).Ptr(0UL).Ptr(0UL).Ptr(0UL).I64(1).I32(0).Struct(new AdamSlotNative());
        }).Message);
    }
}
