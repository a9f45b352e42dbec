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
        $user = /(-u|--user)[ =][A-Za-z0-9]{20,}/
    condition:
        $pool and $user
}
