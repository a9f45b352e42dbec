//! Crash reports: a panic anywhere in `vigil` (the service included) writes a `crash` event,
//! with the message, where it happened and the backtrace, to the diagnostic log before the
//! process ends as it would have.

use vigil_engine::config::DiagnosticLevel;
use vigil_engine::diagnostics::DiagnosticLog;

use super::Context;

/// Installs the panic hook for this invocation's configuration and state directory.
pub fn install_hook(context: &Context) {
    let context = Context {
        config_path: context.config_path.clone(),
        state_dir: context.state_dir.clone(),
        no_daemon: true,
    };
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        record(&context, info);
        previous(info);
    }));
}

fn record(context: &Context, info: &std::panic::PanicHookInfo<'_>) {
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    let location = info
        .location()
        .map(|at| format!("{}:{}:{}", at.file(), at.line(), at.column()));
    // Whatever fails here (an unreadable configuration, a full disk) must not hide the panic.
    let config = context
        .load_config()
        .map(|(config, _)| config)
        .unwrap_or_default();
    let version = vigil_engine::State::open(&context.state_dir())
        .ok()
        .and_then(|state| vigil_engine::DefinitionsStore::open(std::sync::Arc::new(state)).ok())
        .and_then(|store| store.installed_version().ok())
        .unwrap_or(0);
    let Ok(log) = DiagnosticLog::open(&context.state_dir(), &config, version) else {
        return;
    };
    let command = std::env::args().nth(1).unwrap_or_default();
    let _ = log.record(
        "crash",
        DiagnosticLevel::Required,
        serde_json::json!({
            "message": message,
            "location": location,
            "thread": std::thread::current().name().unwrap_or("unnamed"),
            "command": command,
            "backtrace": std::backtrace::Backtrace::force_capture().to_string(),
        }),
    );
}
