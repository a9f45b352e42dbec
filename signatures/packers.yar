// Executables packed with UPX: common in Linux botnets and commodity Windows malware, rare in
// software shipped by distributions. Low severity on its own: a signal, not a verdict.

rule Packer_UPX_ELF {
    meta:
        description = "ELF executable compressed with UPX (section headers stripped, UPX! marker)"
        severity = "low"
        threat = "Packed:Linux/UPX"
    strings:
        $marker = "UPX!"
    condition:
        uint32(0) == 0x464C457F and #marker >= 2 and filesize < 50MB
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
