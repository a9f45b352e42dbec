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
