using System.Buffers.Binary;
using System.Text;

namespace AttentionSharp.Benchmarks;

/// <summary>
/// Marks one symbol-version requirement of an ELF64 shared library as weak, so the dynamic loader accepts the library
/// on a system whose dependency lacks that version (it then only fails if a symbol of that version is really bound).
/// </summary>
/// <remarks>
/// TorchSharp-cpu 0.107.0's libLibTorchSharp.so lists GLIBCXX_3.4.32 among the versions it needs from libstdc++, which
/// Debian 12's libstdc++ (up to GLIBCXX_3.4.30) does not define; no symbol the bindings call needs it. The requirement
/// lives in the <c>.gnu.version_r</c> section (type SHT_GNU_verneed): a chain of Elf64_Verneed records, one per needed
/// library, each with a chain of Elf64_Vernaux records, one per needed version. Setting VER_FLG_WEAK in that
/// Vernaux's <c>vna_flags</c> turns the loader's fatal "version not found" into a note. Layouts follow the System V
/// gABI and the LSB "Symbol Versioning" chapter; only little-endian ELF64 (x86-64, arm64) is handled.
/// </remarks>
public static class ElfVersionPatcher
{
    /// <summary>What <see cref="MarkVersionWeak"/> did.</summary>
    public enum Outcome
    {
        /// <summary>The requirement was strong and is now weak.</summary>
        Patched,
        /// <summary>The requirement was already weak; the file was not written.</summary>
        AlreadyWeak,
        /// <summary>The library does not require that version; the file was not written.</summary>
        NotRequired,
    }

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlagWeak = 0x2;

    /// <summary>
    /// Marks the requirement of <paramref name="version"/> (e.g. "GLIBCXX_3.4.32") in the ELF64 file at
    /// <paramref name="path"/> as weak. Idempotent; writes two bytes at most.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a little-endian ELF64 file or its tables are out of bounds.</exception>
    public static Outcome MarkVersionWeak(string path, string version)
    {
        byte[] image = File.ReadAllBytes(path);
        long? flagsOffset = FindVernauxFlags(image, version, path);
        if (flagsOffset is not { } offset) return Outcome.NotRequired;
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan((int)offset));
        if ((flags & VerFlagWeak) != 0) return Outcome.AlreadyWeak;
        Span<byte> patched = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(patched, (ushort)(flags | VerFlagWeak));
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read);
        file.Position = offset;
        file.Write(patched);
        return Outcome.Patched;
    }

    /// <summary>The file offset of <c>vna_flags</c> in the Vernaux record naming <paramref name="version"/>, if any.</summary>
    static long? FindVernauxFlags(byte[] image, string version, string path)
    {
        var elf = image.AsSpan();
        // Elf64_Ehdr: e_ident = 0x7F 'E' 'L' 'F', EI_CLASS = 2 (64-bit), EI_DATA = 1 (little-endian).
        if (elf.Length < 64 || elf[0] != 0x7F || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException($"{path} is not an ELF file (bad magic number).");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException($"{path} is not a little-endian ELF64 file (class {elf[4]}, data {elf[5]}).");
        long shoff = (long)U64(elf, 0x28, path);
        int shentsize = U16(elf, 0x3A, path), shnum = U16(elf, 0x3C, path);
        if (shentsize < 64) throw new InvalidDataException($"{path}: section header size {shentsize}, expected at least 64.");

        for (int s = 0; s < shnum; s++)
        {
            // Elf64_Shdr: sh_type at 4, sh_offset at 24, sh_size at 32, sh_link at 40, sh_info at 44.
            long header = shoff + (long)s * shentsize;
            if (U32(elf, header + 4, path) != ShtGnuVerneed) continue;
            long offset = (long)U64(elf, header + 24, path);
            uint link = U32(elf, header + 40, path), count = U32(elf, header + 44, path);
            // sh_link names the string table that vn_file and vna_name index into.
            long strings = (long)U64(elf, shoff + (long)link * shentsize + 24, path);

            long verneed = offset;
            for (uint n = 0; n < count; n++)
            {
                // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32 (relative), vn_next u32 (relative).
                int auxCount = U16(elf, verneed + 2, path);
                long vernaux = verneed + U32(elf, verneed + 8, path);
                for (int a = 0; a < auxCount; a++)
                {
                    // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32 (relative).
                    if (CString(elf, strings + U32(elf, vernaux + 8, path), path) == version) return vernaux + 4;
                    vernaux += U32(elf, vernaux + 12, path);
                }
                verneed += U32(elf, verneed + 12, path);
            }
        }
        return null;
    }

    static ReadOnlySpan<byte> At(ReadOnlySpan<byte> elf, long offset, int size, string path) =>
        offset >= 0 && offset + size <= elf.Length
            ? elf.Slice((int)offset, size)
            : throw new InvalidDataException($"{path}: a table points to offset {offset}, past the end of the file ({elf.Length} bytes).");

    static ushort U16(ReadOnlySpan<byte> elf, long offset, string path) =>
        BinaryPrimitives.ReadUInt16LittleEndian(At(elf, offset, 2, path));

    static uint U32(ReadOnlySpan<byte> elf, long offset, string path) =>
        BinaryPrimitives.ReadUInt32LittleEndian(At(elf, offset, 4, path));

    static ulong U64(ReadOnlySpan<byte> elf, long offset, string path) =>
        BinaryPrimitives.ReadUInt64LittleEndian(At(elf, offset, 8, path));

    static string CString(ReadOnlySpan<byte> elf, long offset, string path)
    {
        At(elf, offset, 1, path);
        var rest = elf[(int)offset..];
        int end = rest.IndexOf((byte)0);
        if (end < 0) throw new InvalidDataException($"{path}: unterminated string at offset {offset}.");
        return Encoding.ASCII.GetString(rest[..end]);
    }
}
