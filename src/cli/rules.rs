//! `vigil rules check PATH...`: compiles rule files as a drop or a scan would (with the per-file
//! external variables and the configured constants) and prints yara-x's errors and warnings with
//! their file, line and column. Also the `--define NAME=VALUE` option scans share.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use vigil_engine::detect::externals::{DefineValue, check_defines};
use vigil_engine::detect::yara::{RuleSource, YaraRules, load_sources};

use super::{Context, print_line, untrusted};

/// `vigil rules ...`
#[derive(Subcommand)]
pub enum RulesCommand {
    /// Compile rule files (or folders of them) and print errors and warnings with locations:
    /// exit 0 when they compile (warnings or not), 2 when they do not.
    Check {
        /// `.yar`/`.yara` files, or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// A constant for the rules (repeatable), over `[yara] defines`.
        #[arg(long = "define", short = 'd', value_name = "NAME=VALUE", value_parser = parse_define)]
        defines: Vec<(String, DefineValue)>,
    },
}

/// Runs a `vigil rules` command.
pub fn run(context: &Context, command: RulesCommand) -> Result<ExitCode> {
    let RulesCommand::Check { paths, defines } = command;
    let (mut config, _) = context.load_config()?;
    config.yara.defines.extend(defines);
    check_defines(&config.yara.defines).map_err(anyhow::Error::msg)?;
    let mut sources = Vec::new();
    for path in &paths {
        sources.extend(load_sources(path)?);
    }
    let compiled = YaraRules::compile_with_warnings(&sources, &config.yara.defines)?;
    print_warnings(&compiled.warnings);
    print_line(&format!(
        "{} rules from {} files compile ({} warnings)",
        compiled.rules.rule_count(),
        sources.len(),
        compiled.warnings.len()
    ));
    Ok(ExitCode::SUCCESS)
}

/// Compiles the rule files among drop entries (path, content) and prints yara-x's warnings, so
/// a publisher sees them when building a drop. Errors are left to the drop check.
pub fn warn_about(files: &[(String, Vec<u8>)]) {
    let sources: Vec<RuleSource> = files
        .iter()
        .filter(|(path, _)| path.ends_with(".yar") || path.ends_with(".yara"))
        .map(|(path, content)| RuleSource {
            origin: path.clone(),
            text: String::from_utf8_lossy(content).into_owned(),
        })
        .collect();
    if let Ok(compiled) = YaraRules::compile_with_warnings(&sources, &Default::default()) {
        print_warnings(&compiled.warnings);
    }
}

/// Writes warnings to stderr, each line escaped (they quote rule source).
fn print_warnings(warnings: &[String]) {
    for warning in warnings {
        for line in warning.lines() {
            eprintln!("{}", untrusted(line));
        }
    }
}

/// Parses `NAME=VALUE` for `--define` (the value as `yr` reads it: bool, integer, float, text).
pub fn parse_define(text: &str) -> Result<(String, DefineValue)> {
    let (name, value) = text
        .split_once('=')
        .with_context(|| format!("--define {text:?}: expected NAME=VALUE"))?;
    let define = (name.to_string(), DefineValue::parse(value));
    check_defines(&[define.clone()].into()).map_err(anyhow::Error::msg)?;
    Ok(define)
}
