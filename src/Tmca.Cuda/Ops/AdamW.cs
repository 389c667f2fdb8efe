using Tmca.Cuda.Kernels;
using Tmca.Engine;

namespace Tmca.Cuda;

// AdamW over every parameter in one launch: kernels/adamw.cu; CPU reference Tmca.Engine/Cpu/AdamW.cs.
public sealed unsafe partial class CudaBackend
{
    public void AdamW(IReadOnlyList<AdamWSlot> slots, AdamWStep h, Tensor? guard = null)
    {
        if (guard is not null) { RequireF32("AdamW guard", guard); if (guard.Numel != 1) throw new ArgumentException($"AdamW guard must have one element, not {guard.Numel}"); }
        if (h.Step < 1) throw new ArgumentException("AdamW step counts from 1");
        if (slots.Count == 0) return;
        const int chunk = 4096;
        var table = new AdamSlotNative[slots.Count];
        var chunkSlot = new List<int>();
        var chunkStart = new List<long>();
        for (int i = 0; i < slots.Count; i++)
        {
            var s = slots[i];
            RequireF32("AdamW", s.Param, s.Grad, s.M, s.V);
            BackendChecks.Same(s.Param, s.Grad, "AdamW gradient"); BackendChecks.Same(s.Param, s.M, "AdamW first moment"); BackendChecks.Same(s.Param, s.V, "AdamW second moment");
            table[i] = new AdamSlotNative { P = P(s.Param), G = P(s.Grad), M = P(s.M), V = P(s.V), N = s.Param.Numel, Decay = s.Decay ? 1 : 0 };
            for (long st = 0; st < s.Param.Numel; st += chunk) { chunkSlot.Add(i); chunkStart.Add(st); }
        }
        if (chunkSlot.Count == 0) return;
        var (pt, st1) = UploadTemp(table);
        var (pc, st2) = UploadTemp(chunkSlot.ToArray());
        var (ps, st3) = UploadTemp(chunkStart.ToArray());
        try
        {
            float bc1 = (float)(1 - Math.Pow(h.Beta1, h.Step)), bc2 = (float)Math.Sqrt(1 - Math.Pow(h.Beta2, h.Step));
            if (guard is not null)
            {
                var c = new KernelArgs(KernelTable.NonFiniteCount);
                c.Ptr(pt).Ptr(pc).Ptr(ps).I32(chunk).Ptr(guard);
                Launch(ref c, new Dim3((uint)chunkSlot.Count), $"{slots.Count} gradients, {chunkSlot.Count} chunks");
            }
            var a = new KernelArgs(KernelTable.AdamW);
            a.Ptr(pt).Ptr(pc).Ptr(ps).I32(chunk).F32(h.Lr).F32(h.Beta1).F32(h.Beta2).F32(h.Eps).F32(h.WeightDecay).F32(bc1).F32(bc2).Ptr(POpt(guard));
            Launch(ref a, new Dim3((uint)chunkSlot.Count), $"{slots.Count} tensors, {chunkSlot.Count} chunks");
        }
        finally { Pool.Return(pt, st1); Pool.Return(pc, st2); Pool.Return(ps, st3); }
    }

    /// <summary>Copies a small host array into a pool block (returned by the caller after the launch that reads it).</summary>
    private (ulong Ptr, long Size) UploadTemp<T>(T[] data) where T : unmanaged
    {
        long bytes = (long)data.Length * sizeof(T);
        var (ptr, size) = Pool.Rent(bytes);
        fixed (T* p = data) Runtime.CopyToDevice(ptr, p, bytes);
        HostToDeviceCopies++;
        return (ptr, size);
    }
}
