// Persistence and anti-forensics seen in Linux intrusions.

rule Persistence_SSHKeyInjection {
    meta:
        description = "Script appending an SSH public key to an authorized_keys file"
        severity = "high"
        threat = "Backdoor:Linux/SSHKeyInjection"
    strings:
        $append = /echo\s+["']?(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp256)\s+AAAA[A-Za-z0-9+\/=]{20,}[^\n]{0,200}>>\s*\S*\.ssh\/authorized_keys/
    condition:
        $append
}

rule Persistence_LdPreloadHijack {
    meta:
        description = "Script writing a library into /etc/ld.so.preload (userland rootkit technique)"
        severity = "critical"
        threat = "Rootkit:Linux/LdPreload"
    strings:
        $write = /(echo|printf)\s[^\n]{1,200}\.so[^\n]{0,20}>>?\s*\/etc\/ld\.so\.preload/
    condition:
        $write
}

rule AntiForensics_LogWiper {
    meta:
        description = "Script disabling shell history and wiping system logs"
        severity = "medium"
        threat = "HackTool:Linux/LogWiper"
    strings:
        $history1 = "unset HISTFILE"
        $history2 = "history -c"
        $history3 = "HISTSIZE=0"
        $wipe1 = /rm\s+-(r|f|rf|fr)\s+\/var\/log\b/
        $wipe2 = /(cat\s+\/dev\/null|echo\s*(""|'')?)\s*>\s*\/var\/log\/(wtmp|btmp|lastlog|auth\.log|secure|messages)/
        $wipe3 = /shred\s[^\n]{0,40}\/var\/log\//
    condition:
        any of ($history*) and any of ($wipe*)
}
