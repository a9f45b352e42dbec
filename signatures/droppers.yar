// Download-and-execute droppers: fetch a payload and run it in one breath.

rule Dropper_FetchToTmpAndExecute {
    meta:
        description = "Shell script downloading into a world-writable folder, making it executable and running it"
        severity = "high"
        threat = "TrojanDownloader:Linux/FetchExec"
    strings:
        $fetch = /(wget|curl)\s[^\n]{0,200}(\/tmp\/|\/var\/tmp\/|\/dev\/shm\/)[A-Za-z0-9._\-]{1,64}/
        $chmod = /chmod\s+(\+x|[0-7]?[0-7][0-7][5-7])\s+(\/tmp\/|\/var\/tmp\/|\/dev\/shm\/)[A-Za-z0-9._\-]{1,64}/
        $run_with_shell = /(&&|;)\s*(ba|da)?sh\s+(\/tmp\/|\/var\/tmp\/|\/dev\/shm\/)[A-Za-z0-9._\-]{1,64}/
    condition:
        $fetch and ($chmod or $run_with_shell)
}

rule Dropper_PipeRawIPToShell {
    meta:
        description = "Script fetched from a bare IP address piped straight into a shell"
        severity = "high"
        threat = "TrojanDownloader:Linux/PipeToShell"
    strings:
        $pipe = /(curl|wget)\s[^\n|]{0,100}https?:\/\/[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(:[0-9]{1,5})?\/[^\n|]{0,200}\|\s*(sudo\s+)?(\/bin\/)?(ba|da|z)?sh\b/
    condition:
        $pipe
}

rule Dropper_PowerShell_DownloadExecute {
    meta:
        description = "PowerShell downloading a script with Net.WebClient and executing it with IEX"
        severity = "high"
        threat = "TrojanDownloader:PowerShell/DownloadExec"
    strings:
        $iex = /(\bIEX|\bInvoke-Expression)\s*\(/ nocase
        $download = /(Net\.WebClient\)?\.Download(String|Data)\s*\(|\bInvoke-WebRequest\s+(-Uri\s+)?["']?https?:\/\/)/ nocase
        // Documentation quoting an installer's one-liner in a code block (Markdown, HTML).
        $doc_block = "```"
        $doc_html = "<pre"
    condition:
        $iex and $download and filesize < 5MB and not $doc_block and not $doc_html
}

rule Dropper_Certutil_Download {
    meta:
        description = "certutil abused to download a file (-urlcache -f http...)"
        severity = "medium"
        threat = "TrojanDownloader:Win32/CertutilDownload"
    strings:
        $certutil = /certutil(\.exe)?\s+[^\n]{0,40}-urlcache\s+[^\n]{0,40}-f\s+https?:\/\//  nocase
    condition:
        $certutil
}

rule Dropper_ScriptPipesDownloadToShell {
    meta:
        description = "A script (shebang, or code running a shell command) piping a download straight into a shell"
        severity = "high"
        threat = "TrojanDownloader:Linux/PipeToShell"
    strings:
        $pipe = /(curl|wget)\s[^\n|'"]{0,200}https?:\/\/[^\n|'"]{1,200}\|\s*(sudo\s+)?(\/usr)?(\/bin\/)?(ba|da|z)?sh\b/
        $from_code = /(exec|execSync|system|popen|spawn|Run|shell_exec)\s*\(\s*['"][^'"\n]{0,100}(curl|wget)\s[^'"\n|]{0,200}\|\s*(ba|da|z)?sh\b/
    condition:
        filesize < 1MB and ((uint16(0) == 0x2123 and $pipe) or $from_code)
}

rule Dropper_FetchChmodRun {
    meta:
        description = "A script downloading a file, making it executable and running it in one command line"
        severity = "high"
        threat = "TrojanDownloader:Linux/FetchExec"
    strings:
        $chain = /(curl|wget)\s[^\n]{0,200}https?:\/\/[^\n]{1,200}(&&|;)\s*chmod\s+(\+x|[0-7]?[0-7][0-7][5-7])\s+(\S{1,100})\s*(&&|;)\s*(\.\/|\/)\S{1,100}/
    condition:
        filesize < 1MB and uint16(0) == 0x2123 and $chain
}

rule Dropper_ScriptDownloadExecute {
    meta:
        description = "Script code that downloads code and runs it: Python exec(urlopen()), Ruby eval(open(url)), VBScript XMLHTTP + Execute, Perl getstore + system, PHP file_get_contents(url) written and executed, JavaScript eval of a fetched response"
        severity = "high"
        threat = "TrojanDownloader:Script/DownloadExec"
    strings:
        $py = /exec\s*\(\s*(urllib\.request\.|urllib2\.|request\.)?urlopen\s*\(/
        $py_requests = /exec\s*\(\s*requests\.get\s*\([^)]{1,300}\)\.(text|content)/
        $rb = /eval\s*\(?\s*(URI\.)?open\s*\(\s*['"]https?:\/\//
        $vbs_http = /CreateObject\s*\(\s*"(MSXML2|Microsoft)\.(Server)?XMLHTTP/ nocase
        $vbs_exec = /\bExecute(Global)?\s+\w{1,20}\.responseText/ nocase
        $pl_get = /getstore\s*\(\s*['"]https?:\/\//
        $pl_run = /\b(system|exec)\s*\(\s*['"]\/(tmp|var\/tmp|dev\/shm)\//
        $php_fetch = /file_put_contents\s*\([^;]{1,200}file_get_contents\s*\(\s*['"]https?:\/\//
        $php_run = /\b(exec|system|shell_exec|passthru)\s*\(\s*['"]\/(tmp|var\/tmp|dev\/shm)\//
        $js_xhr = /eval\s*\(\s*[\w.]{1,40}\.responseText\s*\)/
        $js_fetch = /fetch\s*\(\s*['"]https?:\/\/[^;]{1,300}new\s+Function\s*\(/
        $js_get = /\.get\s*\(\s*['"]https?:\/\/[^\n]{1,400}eval\s*\(/
        $js_drop = /chmodSync\s*\(\s*['"]\/(tmp|var\/tmp|dev\/shm)\/[^\n]{1,300}(spawn|exec|execFile)\s*\(\s*['"]\/(tmp|var\/tmp|dev\/shm)\//
    condition:
        filesize < 1MB and ($py or $py_requests or $rb or ($vbs_http and $vbs_exec) or ($pl_get and $pl_run) or
            ($php_fetch and $php_run) or $js_xhr or $js_fetch or $js_get or $js_drop)
}

rule Dropper_PowerShell_WebRequestRun {
    meta:
        description = "PowerShell downloading with iwr/irm/Invoke-WebRequest and executing it (iex, or Start-Process on the saved file)"
        severity = "high"
        threat = "TrojanDownloader:PowerShell/DownloadExec"
    strings:
        $iex_iwr = /\b(iex|Invoke-Expression)\s*\(?\s*\(?\s*(iwr|irm|Invoke-WebRequest|Invoke-RestMethod)\s+(-Uri\s+)?['"]?https?:\/\// nocase
        $save = /Invoke-WebRequest\s+[^\n]{0,100}-OutFile\s+(\S{1,200})/ nocase
        $start = /Start-Process\s+\S{1,200}/ nocase
        $doc_block = "```"
        $doc_html = "<pre"
    condition:
        filesize < 1MB and not $doc_block and not $doc_html and ($iex_iwr or ($save and $start))
}

rule Dropper_Bitsadmin_Download {
    meta:
        description = "bitsadmin abused to download a file (/transfer ... http...)"
        severity = "medium"
        threat = "TrojanDownloader:Win32/BitsadminDownload"
    strings:
        $bits = /bitsadmin(\.exe)?\s+\/transfer\s[^\n]{0,200}https?:\/\//  nocase
    condition:
        $bits
}

rule Stealer_JS_EnvironmentExfiltration {
    meta:
        description = "JavaScript posting the whole process environment (tokens, keys) with user details to a remote host, as malicious npm packages do at install"
        severity = "high"
        threat = "Trojan:JS/EnvExfiltration"
    strings:
        $env = /JSON\.stringify\s*\(\s*\{[^}\n]{0,200}:\s*process\.env\b/
        $user = /os\.(userInfo|hostname|homedir)\s*\(/
        $send = /(\.request\s*\(\s*\{[^}\n]{0,200}method\s*:\s*['"]POST['"]|fetch\s*\(\s*['"]https?:\/\/[^)\n]{0,200}method\s*:\s*['"]POST['"])/
    condition:
        filesize < 1MB and all of them
}
