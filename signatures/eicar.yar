// The EICAR anti-malware test file: a harmless 68-byte string every scanner detects, used to
// check that scanning works end to end. Written as hex so this rule file is not itself flagged.
// Rated high although harmless, as other products rate it (Defender: severe): it exists to test
// the whole response, and the default severity settings audit low and medium detections only.
rule EICAR_Test_File {
    meta:
        description = "EICAR anti-malware test file (harmless)"
        severity = "high"
        threat = "Virus:DOS/EICAR_Test_File"
    strings:
        $eicar = { 58 35 4F 21 50 25 40 41 50 5B 34 5C 50 5A 58 35 34 28 50 5E 29 37 43 43 29 37 7D
                   24 45 49 43 41 52 2D 53 54 41 4E 44 41 52 44 2D 41 4E 54 49 56 49 52 55 53 2D
                   54 45 53 54 2D 46 49 4C 45 21 24 48 2B 48 2A }
    condition:
        // The standard allows trailing white space up to 128 bytes in all.
        $eicar at 0 and filesize <= 128
}

// ClamAV's test executable (Debian and upstream clamav-testfiles): a harmless PE file that shows
// a message box, detected by every product as EICAR is. Recognised by its code, its import name,
// its text and its `.clam` section, which survive in several of the packed variants. Rated high
// for the same reason as EICAR.
rule ClamAV_Test_File {
    meta:
        description = "ClamAV's test executable (harmless), plain or in a packed variant that keeps its code or text"
        severity = "high"
        threat = "Virus:Win32/ClamAV_Test_File"
    strings:
        $code = { BB 71 10 40 00 33 C0 50 50 8B F3 53 53 50 B0 29 40 30 04 66 AC 79 F9 BA 31 00 78 0D AD 50 FF 66 70 0E 1F BE 31 00 E9 E5 FF B4 09 CD 21 B4 4C CD 21 }
        $import = "CLAMessageBoxA"
        $text = "This is a ClamAV test file with the embedded clam.exe"
        $section = { 2E 63 6C 61 6D ( 00 00 00 | 61 76 00 ) }
    condition:
        uint16(0) == 0x5A4D and filesize < 4MB and
        ($code or $import or $text or $section in (0 .. 1024))
}
