// Web shells: server-side scripts that run commands or code sent in an HTTP request.

rule Webshell_PHP_EvalRequest {
    meta:
        description = "PHP passing request parameters straight to eval/assert/system or another code or command sink"
        severity = "critical"
        threat = "Backdoor:PHP/WebShell.EvalRequest"
    strings:
        $php = "<?php" nocase
        $sink = /\b(eval|assert|system|passthru|shell_exec|exec|popen|proc_open|create_function)\s*\(\s*(base64_decode\s*\(\s*|gzinflate\s*\(\s*|str_rot13\s*\(\s*|stripslashes\s*\(\s*)*\$_(GET|POST|REQUEST|COOKIE|SERVER)\s*\[/
    condition:
        $php and $sink
}

rule Webshell_JSP_RuntimeExec {
    meta:
        description = "JSP page running a request parameter as an operating-system command"
        severity = "critical"
        threat = "Backdoor:Java/WebShell.RuntimeExec"
    strings:
        $exec = /Runtime\.getRuntime\(\)\.exec\(\s*request\.getParameter\(/
    condition:
        $exec
}

rule Webshell_ASPX_EvalRequest {
    meta:
        description = "ASP.NET page evaluating request data (China Chopper style one-liner)"
        severity = "critical"
        threat = "Backdoor:ASP/WebShell.EvalRequest"
    strings:
        $page = /<%@\s*Page\s+Language\s*=\s*"?Jscript/ nocase
        $eval = /eval\(\s*Request(\.Item)?\s*\[/ nocase
    condition:
        $page and $eval
}
