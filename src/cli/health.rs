//! `vigil health [--field NAME] [--format text|jsonl]`: the health report, from the service when
//! it runs, else computed here (and the service not running is a health issue).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;
use vigil_engine::DefinitionsStore;

use super::output::Format;
use super::{Context, format_time, print_line, untrusted};
use crate::service::client::Client;
use crate::service::health::{self, HealthReport};
use crate::service::protocol::{Reply, Request};

/// `vigil health` options.
#[derive(Args)]
pub struct HealthArgs {
    /// Print only this field's value (for example `healthy` or `definitions_status`).
    #[arg(long, value_name = "NAME")]
    field: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Prints the report; exit code 0 when healthy, 1 when not.
pub fn run(context: &Context, args: HealthArgs) -> Result<ExitCode> {
    let report = current_report(context)?;
    let value = serde_json::to_value(&report)?;
    if let Some(name) = &args.field {
        let Some(field) = value.get(name) else {
            let names: Vec<&String> = value.as_object().expect("an object").keys().collect();
            bail!(
                "no health field {}; the fields are: {}",
                untrusted(name),
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        match args.format {
            Format::Jsonl => print_line(&field.to_string()),
            Format::Text => print_line(&render(name, field)),
        }
    } else {
        match args.format {
            Format::Jsonl => print_line(&value.to_string()),
            Format::Text => {
                for (name, field) in value.as_object().expect("an object") {
                    print_line(&format!("{name:<36}: {}", render(name, field)));
                }
            }
        }
    }
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The report: the service's when it runs for this configuration, else computed here.
fn current_report(context: &Context) -> Result<HealthReport> {
    let (config, _) = context.load_config()?;
    if let Some(mut client) = Client::for_context(context, &config.service)
        && let Reply::Health { health } = client.call(&Request::Health)?
    {
        return Ok(serde_json::from_value(health)?);
    }
    let state = Arc::new(context.open_state()?);
    let definitions = DefinitionsStore::open(state.clone())?.active()?;
    Ok(health::report(&config, &definitions.info, &state, None))
}

/// A field's value for people: times as dates, lists one per line.
fn render(name: &str, value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Number(number)
            if (name.ends_with("_scan")
                || name.ends_with("_since")
                || name.ends_with("_created")) =>
        {
            format_time(number.as_i64().unwrap_or_default())
        }
        serde_json::Value::Null => "none".into(),
        serde_json::Value::String(text) => untrusted(text).to_string(),
        serde_json::Value::Array(items) if items.is_empty() => "none".into(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                serde_json::Value::String(text) => untrusted(text).to_string(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
