//! `vigil statistics [--format text|jsonl]`: the service's counters (socket, real-time events by
//! kind, latency percentiles). Needs the service.

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::output::Format;
use super::{Context, print_line};
use crate::service::client::Client;
use crate::service::protocol::{Reply, Request};

/// `vigil statistics` options.
#[derive(Args)]
pub struct StatisticsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Prints the counters.
pub fn run(context: &Context, args: StatisticsArgs) -> Result<ExitCode> {
    let (config, _) = context.load_config()?;
    let mut client = Client::for_context(context, &config.service)
        .context("the service (vigil daemon) is not running for this configuration")?;
    let Reply::Statistics { statistics } = client.call(&Request::Statistics)? else {
        bail!("unexpected answer from the service");
    };
    match args.format {
        Format::Jsonl => print_line(&statistics.to_string()),
        Format::Text => print_tree("", &statistics),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints nested counters as `a.b.c: value` lines.
fn print_tree(prefix: &str, value: &serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                print_tree(&path, field);
            }
        }
        other => print_line(&format!("{prefix}: {other}")),
    }
}
