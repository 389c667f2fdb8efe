namespace Tmca.Engine;

/// <summary>Element types the engine stores. Float data is F32 (F64 exists so that the CPU backend can run
/// finite-difference gradient checks in double precision); token ids are I64; U8 holds masks.</summary>
public enum DType : byte { F32, F64, I64, U8 }

public enum DeviceKind : byte { Cpu, Cuda }

public static class DTypes
{
    public static int SizeOf(this DType t) => t switch
    {
        DType.F32 => 4,
        DType.F64 => 8,
        DType.I64 => 8,
        DType.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    public static bool IsFloat(this DType t) => t is DType.F32 or DType.F64;

    /// <summary>The safetensors spelling of the type.</summary>
    public static string SafetensorsName(this DType t) => t switch
    {
        DType.F32 => "F32",
        DType.F64 => "F64",
        DType.I64 => "I64",
        DType.U8 => "U8",
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    public static bool TryParseSafetensors(string s, out DType t)
    {
        switch (s)
        {
            case "F32": t = DType.F32; return true;
            case "F64": t = DType.F64; return true;
            case "I64": t = DType.I64; return true;
            case "U8": t = DType.U8; return true;
            default: t = default; return false;
        }
    }
}
