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

rule Webshell_PHP_EncodedEval {
    meta:
        description = "PHP evaluating code it decodes first (base64, gzinflate, str_rot13, hex2bin...): the classic web-shell and injected-backdoor form"
        severity = "high"
        threat = "Backdoor:PHP/WebShell.EncodedEval"
    strings:
        $php = "<?"
        // A chain of decoders ending in a literal: request data is Webshell_PHP_EvalRequest's.
        $eval = /\b(eval|assert)\s*\(\s*@?\s*((base64_decode|base64_encode|gzinflate|gzuncompress|gzdecode|str_rot13|hex2bin|convert_uudecode|strrev|rawurldecode)\s*\(\s*)+['"]/ nocase
        $decode_then_eval = /\$\w{1,40}\s*=\s*(base64_decode|gzinflate|gzuncompress|str_rot13|hex2bin)\s*\([^;]{1,2000};\s*(@\s*)?eval\s*\(\s*\$\w{1,40}\s*\)/ nocase
    condition:
        $php and ($eval or $decode_then_eval)
}

rule Webshell_PHP_RequestToDynamicCode {
    meta:
        description = "PHP calling a function named by or built from strings with request data, or compiling request data (create_function, preg_replace /e, backticks)"
        severity = "critical"
        threat = "Backdoor:PHP/WebShell.DynamicCall"
    strings:
        $php = "<?"
        $variable_call = /\$\w{1,40}\s*\(\s*\$_(GET|POST|REQUEST|COOKIE)\s*\[/
        $create_function = /create_function\s*\([^;]{0,60}\$_(GET|POST|REQUEST|COOKIE)\s*\[/
        $preg_e = /preg_replace\s*\(\s*['"]\/[^\/'"]{0,100}\/[a-zA-Z]{0,5}e[a-zA-Z]{0,5}['"]\s*,\s*\$_(GET|POST|REQUEST|COOKIE)/
        $backtick = /\$\w{1,40}\s*=\s*\$_(GET|POST|REQUEST|COOKIE)\s*\[[^\]]{1,40}\]\s*;[^;]{0,100}`\s*\$\w{1,40}\s*`/
        $callback = /\b(array_map|array_filter|call_user_func(_array)?|usort|uasort|register_shutdown_function)\s*\(\s*['"][a-z_]{1,10}['"]\s*\.\s*['"][a-z_]{1,10}['"][^;]{0,60}\$_(GET|POST|REQUEST|COOKIE)/
    condition:
        $php and any of ($variable_call, $create_function, $preg_e, $backtick, $callback)
}

rule Webshell_ASP_EvalRequest {
    meta:
        description = "Classic ASP evaluating request data"
        severity = "critical"
        threat = "Backdoor:ASP/WebShell.EvalRequest"
    strings:
        $eval = /<%\s*(eval|execute|executeglobal)\s*\(?\s*request\s*\(/ nocase
    condition:
        $eval
}
