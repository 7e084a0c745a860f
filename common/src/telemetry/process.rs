//! The process's own gauges, read from `/proc` at each collection.

use std::sync::LazyLock;
use std::time::Instant;

use opentelemetry::KeyValue;

use super::names;

static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Registers the process gauges (once, when metrics are on).
pub(super) fn observe(service: &'static str) {
    LazyLock::force(&STARTED);
    let meter = super::meter();
    meter
        .f64_observable_gauge(names::PROCESS_UPTIME)
        .with_unit("s")
        .with_description("Time since the process started.")
        .with_callback(|o| o.observe(STARTED.elapsed().as_secs_f64(), &[]))
        .build();
    meter
        .u64_observable_gauge(names::PROCESS_MEMORY)
        .with_unit("By")
        .with_description("Resident memory.")
        .with_callback(|o| {
            if let Some(bytes) = resident_bytes() {
                o.observe(bytes, &[]);
            }
        })
        .build();
    meter
        .u64_observable_gauge(names::PROCESS_OPEN_FILES)
        .with_unit("{file_descriptor}")
        .with_description("Open file descriptors.")
        .with_callback(|o| {
            if let Some(count) = open_files() {
                o.observe(count, &[]);
            }
        })
        .build();
    let info = [
        KeyValue::new("service.name", service),
        KeyValue::new("service.version", super::VERSION),
    ];
    meter
        .u64_observable_gauge(names::BUILD_INFO)
        .with_description("Always 1; the attributes name the build.")
        .with_callback(move |o| o.observe(1, &info))
        .build();
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn open_files() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}
