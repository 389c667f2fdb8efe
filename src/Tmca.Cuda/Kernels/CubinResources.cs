using System.Buffers.Binary;
using System.Text;

namespace Tmca.Cuda.Kernels;

/// <summary>What a kernel holds on an SM, read from its NVRTC-compiled cubin: registers per thread and static shared memory.</summary>
public sealed record KernelResources(string Kernel, int Arch, int Registers, int StaticSharedBytes);

/// <summary>
/// Reads kernel resources out of a cubin (an ELF64 file), as ../shared/docs/gpu-cost.md §6 lays it out (checked with NVRTC
/// 11.8 against ptxas's "Used N registers"):
///  - `.nv.info` holds EIATTR_REGCOUNT entries (format 0x04, attribute 0x2f, 8 bytes: symbol index, registers), one per
///    kernel; the symbol index points into `.symtab`, whose names are the kernels';
///  - `.nv.shared.&lt;kernel&gt;` (NOBITS) is static shared memory on sm_80, and that plus 1024 bytes on sm_90.
/// Each .nv.info entry is format (1 byte), attribute (1 byte), then 2 bytes: the value itself, or for format 0x04 the
/// size of the payload that follows.
/// </summary>
public static class CubinResources
{
    private const byte FormatSval = 0x04, AttrRegCount = 0x2f;

    public static IReadOnlyList<KernelResources> Read(byte[] cubin, int arch)
    {
        var span = cubin.AsSpan();
        if (cubin.Length < 64 || span[0] != 0x7f || span[1] != (byte)'E' || span[2] != (byte)'L' || span[3] != (byte)'F' || span[4] != 2)
            throw new InvalidDataException("not a 64-bit ELF cubin");
        long shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(span[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3a..]), shnum = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3c..]);
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3e..]);
        var sections = new (string Name, uint Type, long Offset, long Size, uint Link)[shnum];
        (uint NameOff, uint Type, long Offset, long Size, uint Link) Header(int i)
        {
            var h = cubin.AsSpan((int)(shoff + (long)i * shentsize), shentsize);
            return (BinaryPrimitives.ReadUInt32LittleEndian(h), BinaryPrimitives.ReadUInt32LittleEndian(h[4..]), (long)BinaryPrimitives.ReadUInt64LittleEndian(h[0x18..]),
                    (long)BinaryPrimitives.ReadUInt64LittleEndian(h[0x20..]), BinaryPrimitives.ReadUInt32LittleEndian(h[0x28..]));
        }
        var strtab = Header(shstrndx);
        for (int i = 0; i < shnum; i++)
        {
            var h = Header(i);
            sections[i] = (CString(span, strtab.Offset + h.NameOff), h.Type, h.Offset, h.Size, h.Link);
        }
        int symtab = Array.FindIndex(sections, s => s.Name == ".symtab");
        string Symbol(uint index)
        {
            if (symtab < 0) return $"symbol {index}";
            var s = sections[symtab];
            var entry = cubin.AsSpan((int)(s.Offset + index * 24L), 24);
            return CString(cubin, sections[s.Link].Offset + BinaryPrimitives.ReadUInt32LittleEndian(entry));
        }
        var regs = new Dictionary<string, int>();
        foreach (var s in sections.Where(s => s.Name == ".nv.info"))
        {
            var info = span.Slice((int)s.Offset, (int)s.Size);
            for (int p = 0; p + 4 <= info.Length;)
            {
                byte format = info[p], attr = info[p + 1];
                int value = BinaryPrimitives.ReadUInt16LittleEndian(info[(p + 2)..]);
                int payload = format == FormatSval ? value : 0;
                if (format == FormatSval && attr == AttrRegCount && payload >= 8)
                    regs[Symbol(BinaryPrimitives.ReadUInt32LittleEndian(info[(p + 4)..]))] = (int)BinaryPrimitives.ReadUInt32LittleEndian(info[(p + 8)..]);
                p += 4 + payload;
            }
        }
        return regs.Select(kv =>
        {
            var shared = sections.FirstOrDefault(s => s.Name == ".nv.shared." + kv.Key);
            long bytes = shared.Name is null ? 0 : Math.Max(0, shared.Size - (arch >= 90 ? 1024 : 0));
            return new KernelResources(kv.Key, arch, kv.Value, (int)bytes);
        }).OrderBy(r => r.Kernel, StringComparer.Ordinal).ToList();
    }

    private static string CString(ReadOnlySpan<byte> data, long offset)
    {
        int end = data[(int)offset..].IndexOf((byte)0);
        return Encoding.ASCII.GetString(data.Slice((int)offset, end < 0 ? data.Length - (int)offset : end));
    }
}

/// <summary>
/// Theoretical occupancy on sm_80 / sm_90 (cuda_occupancy.h's rules, ../shared/docs/gpu-cost.md §5): registers per warp =
/// registers × 32 rounded up to 256, split over 4 sub-partitions of 16 K; shared memory per block = static + dynamic +
/// 1 KiB reserved, rounded up to 128 B, against the SM's 228 KiB (sm_90) or 164 KiB (sm_80); at most 64 warps and 32
/// blocks an SM.
/// </summary>
public static class Occupancy
{
    public sealed record Result(int BlocksPerSm, int WarpsPerSm, double Fraction, string LimitedBy);

    public static Result Of(int arch, int threadsPerBlock, int registers, long sharedBytesPerBlock)
    {
        int warpsPerBlock = (threadsPerBlock + 31) / 32;
        int regsPerWarp = (Math.Max(1, registers) * 32 + 255) / 256 * 256;
        int byRegs = 4 * (16384 / regsPerWarp) / warpsPerBlock;
        long smem = arch >= 90 ? 233472 : 167936;
        long perBlock = (sharedBytesPerBlock + 1024 + 127) / 128 * 128;
        int byShared = (int)Math.Min(int.MaxValue, smem / perBlock);
        int byWarps = 64 / warpsPerBlock, byBlocks = 32;
        int blocks = Math.Min(Math.Min(byRegs, byShared), Math.Min(byWarps, byBlocks));
        string by = blocks == byRegs ? "registers" : blocks == byShared ? "shared memory" : blocks == byWarps ? "warps" : "blocks";
        return new Result(blocks, blocks * warpsPerBlock, blocks * warpsPerBlock / 64.0, by);
    }
}
