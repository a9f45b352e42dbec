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

rule ReverseShell_Socat {
    meta:
        description = "socat connecting out to a host and executing a shell on the connection"
        severity = "high"
        threat = "Backdoor:Linux/ReverseShell.Socat"
    strings:
        $out_then_exec = /socat\s[^\n]{0,200}tcp[46]?:[A-Za-z0-9.\-]{1,253}:[0-9]{1,5}[^\n]{0,200}(exec|system):[^\n]{0,20}(ba|z|k)?sh\b/ nocase
        $exec_then_out = /socat\s[^\n]{0,200}(exec|system):[^\n]{0,200}tcp[46]?:[A-Za-z0-9.\-]{1,253}:[0-9]{1,5}/ nocase
    condition:
        any of them
}

rule ReverseShell_FifoRelay {
    meta:
        description = "A shell whose input and output are relayed through a FIFO to telnet or openssl s_client (nc: ReverseShell_Netcat)"
        severity = "high"
        threat = "Backdoor:Linux/ReverseShell.FifoRelay"
    strings:
        $fifo = "mkfifo"
        $client_to_shell = /(telnet|openssl\s+s_client)\s[^\n|]{0,120}\|\s*\/?(usr\/)?(bin\/)?(ba|z|k)?sh\b/
        $shell_to_client = /\/?(bin\/)?(ba|z|k)?sh\s+-i[^\n|]{0,60}\|\s*(telnet|openssl\s+s_client)\s/
    condition:
        $fifo and ($client_to_shell or $shell_to_client)
}

rule ReverseShell_Python {
    meta:
        description = "Python connecting a socket and handing its descriptor to a shell as stdin/stdout"
        severity = "high"
        threat = "Backdoor:Python/ReverseShell"
    strings:
        $create = /socket\.create_connection\s*\(/
        $socket = /socket\.socket\s*\(/
        $connect = /\.connect\s*\(\s*\(/
        $handoff = /(stdin\s*=\s*\w{1,20}\.fileno\(\)|os\.dup2\(\s*\w{1,20}\.fileno\(\))/
        $shell = /["']\/bin\/(ba|z)?sh["']/
    condition:
        filesize < 1MB and ($create or ($socket and $connect)) and $handoff and $shell
}

rule ReverseShell_PHP {
    meta:
        description = "PHP opening a socket to a host and running a shell over it"
        severity = "high"
        threat = "Backdoor:PHP/ReverseShell"
    strings:
        $sock = /fsockopen\s*\(/
        $fd_shell = /\/bin\/(ba)?sh\s+-i\s*<&\s*[0-9]/
        $proc = /proc_open\s*\(\s*['"]\/bin\/(ba)?sh['"]\s*,\s*array\s*\(\s*0\s*=>\s*\$\w+/
        $loop = /while\s*\(\s*!\s*feof\s*\(\s*\$(\w+)\s*\)\s*\)\s*\{[^}]{0,200}(shell_exec|system|passthru|exec)\s*\(/
    condition:
        filesize < 1MB and $sock and ($fd_shell or $proc or $loop)
}

rule ReverseShell_RubyLuaAwkZsh {
    meta:
        description = "Ruby, Lua, gawk or zsh one-liners that connect out and run a shell or commands read from the socket"
        severity = "high"
        threat = "Backdoor:Script/ReverseShell"
    strings:
        $ruby = /TCPSocket\.(open|new)\([^\n]{1,200}\/bin\/(ba)?sh\s+-i\s*<&%d/
        $lua = /socket[^\n]{0,40}\.tcp\(\)[^\n]{0,400}:connect\([^\n]{0,400}io\.popen\(/
        $awk = /\/inet\/tcp\/0\/[A-Za-z0-9.\-]{1,253}\/[0-9]{1,5}[^\n]{0,200}\|&\s*getline/
        $zsh = /ztcp\s+[A-Za-z0-9.\-]{1,253}\s+[0-9]{1,5}[^\n]{0,100}(ba|z)?sh\s*>&\s*\$REPLY/
    condition:
        filesize < 1MB and any of them
}

rule ReverseShell_NodeNetSpawn {
    meta:
        description = "Node.js piping a network connection into a spawned shell and back"
        severity = "high"
        threat = "Backdoor:JS/ReverseShell"
    strings:
        $spawn = /spawn\s*\(\s*['"](\/bin\/)?(ba)?sh['"]/
        $connect = /\.connect\s*\(\s*[0-9a-zA-Z_'".,\s]{1,120}(\(\)\s*=>|function\s*\(\s*\))/
        $pipe_in = /\.pipe\s*\(\s*\w{1,20}\.stdin\s*\)/
        $pipe_out = /\w{1,20}\.stdout\.pipe\s*\(/
    condition:
        filesize < 1MB and all of them
}

rule ReverseShell_PowerShellTcpClient {
    meta:
        description = "PowerShell reading commands from a TCP connection and running them with iex"
        severity = "high"
        threat = "Backdoor:PowerShell/ReverseShell"
    strings:
        $client = /New-Object\s+(System\.)?Net\.Sockets\.TCPClient\s*\(/ nocase
        $stream = ".GetStream()" nocase
        $iex = /(\biex\b|Invoke-Expression)/ nocase
    condition:
        filesize < 1MB and all of them
}

rule ReverseShell_GoDialExec {
    meta:
        description = "Go program dialling out and wiring the connection to a shell's stdin/stdout"
        severity = "high"
        threat = "Backdoor:Go/ReverseShell"
    strings:
        $dial = /net\.Dial\(\s*"tcp"/
        $shell = /exec\.Command\(\s*"\/bin\/(ba)?sh"/
        $wire = /\.Stdin\s*=\s*\w{1,20}\s*;?\s*\w{1,20}\.Stdout\s*=/
    condition:
        filesize < 1MB and all of them
}
