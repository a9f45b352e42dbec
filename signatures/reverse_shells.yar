// Reverse-shell one-liners: a shell whose input and output are wired to a remote host.

rule ReverseShell_DevTcp {
    meta:
        description = "Interactive shell redirected to a /dev/tcp or /dev/udp socket (bash reverse shell)"
        severity = "high"
        threat = "Backdoor:Linux/ReverseShell.DevTcp"
    strings:
        $socket = /\/dev\/(tcp|udp)\/[A-Za-z0-9.\-]{1,253}\/[0-9]{1,5}/
        $interactive = /\b(ba|z|k)?sh\s+-i\b/
        $redirect = /(0>&1|>&\s*\/dev\/(tcp|udp)|<&\s*[0-9]{1,3}\s*>&\s*[0-9]{1,3}|exec\s+[0-9]{1,3}<>\s*\/dev\/(tcp|udp))/
    condition:
        $socket and ($interactive or $redirect)
}

rule ReverseShell_Netcat {
    meta:
        description = "netcat or ncat executing a shell for a remote peer, or a FIFO relay through nc"
        severity = "high"
        threat = "Backdoor:Linux/ReverseShell.Netcat"
    strings:
        $exec = /\b(nc|ncat|netcat)(\.traditional|\.openbsd)?\s+[^\n]{0,80}-(e|c)\s+\/?(usr\/)?(bin\/)?(ba|z|k)?sh\b/
        $fifo = /mkfifo\s+\S+[^\n]{0,80}\|\s*\/?(usr\/)?(bin\/)?(ba)?sh\s+-i[^\n]{0,80}\|\s*(nc|ncat|netcat)\s/
    condition:
        any of them
}

rule ReverseShell_Python {
    meta:
        description = "Python socket whose descriptors are duplicated onto stdin/stdout before a shell is spawned"
        severity = "high"
        threat = "Backdoor:Python/ReverseShell"
    strings:
        $connect = /socket\.socket\([^\n]{0,200}\.connect\(/
        $dup2 = /os\.dup2\([^\n]{1,40}fileno\(\)\s*,\s*[0-2]\s*\)/
        $spawn = /(subprocess\.call\(\s*\[\s*["']\/bin\/(ba)?sh|pty\.spawn\(\s*["']\/bin\/(ba)?sh|os\.system\(\s*["']\/bin\/(ba)?sh)/
    condition:
        all of them
}

rule ReverseShell_Perl {
    meta:
        description = "Perl socket connected to a remote host with STDIN/STDOUT reopened onto it and a shell executed"
        severity = "high"
        threat = "Backdoor:Perl/ReverseShell"
    strings:
        $socket = "use Socket"
        $connect = /connect\(\s*S\s*,\s*sockaddr_in\(/
        $reopen = /open\(\s*STDIN\s*,\s*["']>&S["']\s*\)/
        $exec = /exec\(\s*["']\/bin\/(ba)?sh/
    condition:
        all of them
}
