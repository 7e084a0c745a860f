//! What every binary's `main` does the same way: load the settings, start
//! logging (then report config warnings through it), and turn the outcome
//! of a command into an exit code with a readable error.

use std::path::Path;
use std::process::ExitCode;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{load, ConfigError, Loaded};

/// The outcome of a command.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Settings that say how to log and whether to measure.
pub trait TelemetrySettings {
    fn human_logs(&self) -> bool;
    fn log_level(&self) -> &str;
    /// `host:port` of the metrics listener, if it is on.
    fn metrics_address(&self) -> Option<&str>;
}

/// Loads `T` from its defaults, `file` and the `SYNC_` environment, starts
/// telemetry as it says (named `service`), and logs the loader's warnings.
pub fn load_and_start_logging<T>(
    file: Option<&Path>,
    service: &'static str,
) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default + TelemetrySettings,
{
    let Loaded { config, warnings } = load::<T>(file, std::env::vars())?;
    crate::telemetry::init(&crate::telemetry::Settings {
        service,
        human_logs: config.human_logs(),
        log_level: config.log_level(),
        metrics_listener: config.metrics_address().is_some(),
    });
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// 0 on success; otherwise the error on stderr and 1.
pub fn exit_code(result: CliResult) -> ExitCode {
    crate::telemetry::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
