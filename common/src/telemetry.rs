//! Logging: human-readable lines for a terminal, JSON lines for containers.
//! `RUST_LOG` overrides the configured level.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are ignored (tests).
pub fn init(human_logs: bool, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if human_logs {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}
