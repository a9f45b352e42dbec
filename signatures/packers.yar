// Executables packed with UPX: common in Linux botnets and commodity Windows malware, rare in
// software shipped by distributions. Low severity on its own: a signal, not a verdict.

rule Packer_UPX_ELF {
    meta:
        description = "ELF executable compressed with UPX (no section headers, UPX! marker after the program headers and at the end)"
        severity = "low"
        threat = "Packed:Linux/UPX"
    strings:
        $marker = "UPX!"
    condition:
        // A packed file has no section headers, UPX's l_info (with the marker) right after its
        // program headers and its pack header at the end; the UPX tool itself, which holds the
        // marker many times in its stubs, has sections and neither placement.
        uint32(0) == 0x464C457F and filesize < 50MB and
        ((uint8(4) == 2 and uint16(0x3C) == 0) or (uint8(4) == 1 and uint16(0x30) == 0)) and
        $marker in (0 .. 1024) and $marker in (filesize - 128 .. filesize)
}

rule Packer_UPX_PE {
    meta:
        description = "PE executable whose sections are named UPX0/UPX1 (UPX compressed)"
        severity = "low"
        threat = "Packed:Win32/UPX"
    strings:
        $upx0 = { 55 50 58 30 00 00 00 00 }
        $upx1 = { 55 50 58 31 00 00 00 00 }
    condition:
        uint16(0) == 0x5A4D and uint32(uint32(0x3C)) == 0x00004550 and
        $upx0 in (uint32(0x3C) .. uint32(0x3C) + 0x400) and
        $upx1 in (uint32(0x3C) .. uint32(0x3C) + 0x400)
}

// Other PE packers, by the marks each leaves (section names, loader text). Low severity, as UPX:
// packing hides code from signatures, and commercial software uses some of these too.
rule Packer_PE_Known {
    meta:
        description = "PE executable packed with ASPack, Petite, WWPack32, Upack, MEW or PESpin"
        severity = "low"
        threat = "Packed:Win32/Packer"
    strings:
        $aspack = { 2E 61 73 70 61 63 6B 00 }
        $adata = { 2E 61 64 61 74 61 00 00 }
        $petite_section = { 2E 70 65 74 69 74 65 00 }
        $petite_text = "Compressed by Petite"
        $wwpack = { 2E 57 57 50 33 32 00 00 }
        $mew = { 4D 45 57 00 }
        $pespin = { 20 4B 75 4E 67 42 69 4D }
    condition:
        uint16(0) == 0x5A4D and filesize < 64MB and (
            // Upack writes its loader's import names straight after MZ.
            uint32(2) == 0x4E52454B or
            for any of ($aspack, $adata, $petite_section, $wwpack, $mew, $pespin) : ($ in (0 .. 1024)) or
            $petite_text in (0 .. 4096))
}
