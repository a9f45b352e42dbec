// Cryptocurrency miners dropped on compromised machines: their configurations and command lines.

rule CoinMiner_XMRig_Config {
    meta:
        description = "XMRig miner configuration (pools with stratum URLs, donate level)"
        severity = "medium"
        threat = "Trojan:Linux/CoinMiner.XMRigConfig"
    strings:
        $pools = "\"pools\""
        $donate = "\"donate-level\""
        $url = /"url"\s*:\s*"(stratum\+(tcp|ssl|tls):\/\/)?[A-Za-z0-9.\-]{3,253}:[0-9]{2,5}"/
    condition:
        filesize < 1MB and $pools and $donate and $url
}

rule CoinMiner_Stratum_CommandLine {
    meta:
        description = "Miner started with a stratum pool URL and a wallet/user on the command line"
        severity = "medium"
        threat = "Trojan:Linux/CoinMiner.Launcher"
    strings:
        $pool = /(-o|--url)[ =]stratum\+(tcp|ssl|tls):\/\/[A-Za-z0-9.\-]{3,253}:[0-9]{2,5}/
        $user = /(-u|--user)[ =][A-Za-z0-9._\-]{4,}/
    condition:
        $pool and $user
}

rule CoinMiner_RandomX_Binary {
    meta:
        description = "Executable carrying a Monero miner: RandomX's code constants and salt with mining-pool strings (XMRig and its forks, renamed or stripped)"
        severity = "medium"
        threat = "Trojan:Linux/CoinMiner.RandomX"
    strings:
        // RandomX superscalar-hash constant (superscalarAdd1), as a 64-bit immediate or datum.
        $add1 = { FC A1 F5 59 8A 97 0A 81 }
        $salt = "RandomX\x03"
        $stratum = "stratum+tcp" nocase
        $donate = "donate-level"
        $algo_rx = "rx/0"
        $algo_cn = "cryptonight"
        $nicehash = "nicehash"
    condition:
        (uint32(0) == 0x464C457F or uint16(0) == 0x5A4D or uint32(0) == 0xFEEDFACF or uint32(0) == 0xCFFAEDFE) and
        ($add1 or $salt) and 3 of ($stratum, $donate, $algo_rx, $algo_cn, $nicehash)
}

rule CoinMiner_MoneroWallet_Launcher {
    meta:
        description = "A Monero wallet address given to a miner with a pool (command line, service unit, script or config)"
        severity = "medium"
        threat = "Trojan:Linux/CoinMiner.Launcher"
    strings:
        $wallet = /\b4[0-9AB][1-9A-HJ-NP-Za-km-z]{93}\b/
        $pool_option = /(\s-o\s+|--url[ =]|["']-o["']\s*,\s*["']|"url"\s*:\s*")(stratum\+(tcp|ssl|tls):\/\/)?[A-Za-z0-9.\-]{3,253}:[0-9]{2,5}/
    condition:
        filesize < 1MB and $wallet and $pool_option
}
