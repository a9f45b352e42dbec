// Download-and-execute droppers: fetch a payload and run it in one breath.

rule Dropper_FetchToTmpAndExecute {
    meta:
        description = "Shell script downloading into a world-writable folder, making it executable and running it"
        severity = "high"
        threat = "TrojanDownloader:Linux/FetchExec"
    strings:
        $fetch = /(wget|curl)\s[^\n]{0,200}(\/tmp\/|\/var\/tmp\/|\/dev\/shm\/)[A-Za-z0-9._\-]{1,64}/
        $chmod = /chmod\s+(\+x|[0-7]?[0-7][0-7][5-7])\s+(\/tmp\/|\/var\/tmp\/|\/dev\/shm\/)[A-Za-z0-9._\-]{1,64}/
    condition:
        $fetch and $chmod
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
    condition:
        $iex and $download and filesize < 5MB
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
