//! Feature usage, an optional diagnostic event: which command ran and the names of the options
//! it was given (never their values, never paths). Written only at
//! `diagnostics.level = "optional"`.

use vigil_engine::config::DiagnosticLevel;
use vigil_engine::diagnostics::DiagnosticLog;

use super::Context;

/// Records this invocation's command and option names, when the level asks for it.
pub fn record(context: &Context) {
    let Ok((config, _)) = context.load_config() else {
        return;
    };
    if config.diagnostics.level != DiagnosticLevel::Optional {
        return;
    }
    let (command, options) = describe(std::env::args().skip(1));
    if let Ok(log) = DiagnosticLog::open(&context.state_dir(), &config, 0) {
        let _ = log.record(
            "feature_usage",
            DiagnosticLevel::Optional,
            serde_json::json!({"command": command, "options": options}),
        );
    }
}

/// The command (its first two words) and the option names of an argument list.
fn describe(args: impl Iterator<Item = String>) -> (String, Vec<String>) {
    let args: Vec<String> = args.collect();
    let command = args
        .iter()
        .filter(|arg| !arg.starts_with('-'))
        .filter(|word| word.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .take(2)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let mut options: Vec<String> = args
        .iter()
        .filter(|arg| arg.starts_with("--"))
        .map(|arg| arg.split('=').next().unwrap_or_default().to_string())
        .collect();
    options.sort();
    options.dedup();
    (command, options)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_words_and_option_names_are_kept() {
        let args = [
            "scan",
            "custom",
            "/home/alice/x",
            "--format=jsonl",
            "--threads",
            "2",
        ];
        let (command, options) = super::describe(args.iter().map(|a| a.to_string()));
        assert_eq!(command, "scan custom");
        assert_eq!(options, ["--format", "--threads"]);
        let args = ["--config", "/etc/x.toml", "health"];
        let (command, options) = super::describe(args.iter().map(|a| a.to_string()));
        assert_eq!(command, "health", "a path is never a command word");
        assert_eq!(options, ["--config"]);
    }
}
