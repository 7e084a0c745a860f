//! How long a client may take and how many may connect at once: the
//! `[connections]` settings every binary shares.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[connections]` settings (`SYNC_CONNECTIONS__MAX_CONNECTIONS`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectionLimits {
    /// Seconds a client has to send a request's headers, counted from
    /// connecting or from the first byte of a request on a kept-alive
    /// connection.
    pub header_read_timeout_seconds: u64,
    /// Seconds a kept-alive connection may wait for its next request.
    pub idle_timeout_seconds: u64,
    /// Seconds a client may take none of a response before it is cut off
    /// (a slow reader is never cut off, only one that stops reading).
    pub send_timeout_seconds: u64,
    /// Most client connections open at once; `0` sizes it to the process's
    /// open-files limit. Either way it stays below that limit.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 10,
            // Firefox keeps idle connections for 115 s; nginx closes them at
            // 75 s. A client reconnects at no cost to the server.
            idle_timeout_seconds: 75,
            // As nginx's send_timeout.
            send_timeout_seconds: 60,
            max_connections: 0,
        }
    }
}

impl ConnectionLimits {
    /// Every problem with these settings, as sentences.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.header_read_timeout_seconds == 0 {
            problems.push("connections.header_read_timeout_seconds must be greater than 0".into());
        }
        if self.idle_timeout_seconds == 0 {
            problems.push("connections.idle_timeout_seconds must be greater than 0".into());
        }
        if self.send_timeout_seconds == 0 {
            problems.push("connections.send_timeout_seconds must be greater than 0".into());
        }
        problems
    }

    pub(super) fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_seconds)
    }

    pub(super) fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_seconds)
    }

    pub(super) fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.send_timeout_seconds)
    }

    /// The connection bound to enforce, given the open-files limit: what is
    /// configured, but never so many that the server runs out of
    /// descriptors for its databases and its listener.
    pub(super) fn effective_max_connections(&self, open_files: u64) -> usize {
        let reserve = (open_files / 8).max(128);
        let budget = usize::try_from(open_files.saturating_sub(reserve))
            .unwrap_or(usize::MAX)
            .max(1);
        match self.max_connections {
            0 => budget,
            configured if configured > budget => {
                tracing::warn!(
                    configured,
                    open_files,
                    "connections.max_connections is more than the open-files limit allows; \
                     serving at most {budget} (raise LimitNOFILE / ulimit -n to allow more)"
                );
                budget
            }
            configured => configured,
        }
    }
}

/// Raises this process's open-files limit to the most it may have (systemd
/// and shells start services at a soft limit of 1,024), and returns it.
pub(super) fn raise_open_files_limit() -> u64 {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => return limit,
            Err(e) => tracing::warn!("cannot read or raise the open-files limit: {e}"),
        }
    }
    1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_leaves_room_for_databases_and_follows_the_limit() {
        let auto = ConnectionLimits::default();
        assert_eq!(auto.effective_max_connections(1024), 896);
        assert_eq!(auto.effective_max_connections(65536), 57344);
        assert_eq!(auto.effective_max_connections(100), 1);
        let set = |n| ConnectionLimits {
            max_connections: n,
            ..ConnectionLimits::default()
        };
        assert_eq!(set(500).effective_max_connections(1024), 500);
        assert_eq!(set(5000).effective_max_connections(1024), 896);
    }

    #[test]
    fn zero_timeouts_are_refused_by_name() {
        let limits = ConnectionLimits {
            header_read_timeout_seconds: 0,
            idle_timeout_seconds: 0,
            send_timeout_seconds: 0,
            max_connections: 0,
        };
        let problems = limits.problems().join("\n");
        assert!(problems.contains("connections.header_read_timeout_seconds"));
        assert!(problems.contains("connections.idle_timeout_seconds"));
        assert!(problems.contains("connections.send_timeout_seconds"));
    }
}
