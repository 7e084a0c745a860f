//! What the checks of a node's `/__heartbeat__` make of it, as pure code:
//! when it goes down, when it comes back, when its users move.

use serde::Serialize;

/// The checks' record of one node. Times in milliseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeHealth {
    /// Put down by the checks: no new users until a check succeeds.
    pub down: bool,
    /// Failed checks in a row.
    pub failures: i64,
    /// `None` until the first check.
    pub last_check: Option<i64>,
    pub last_ok: Option<i64>,
    pub down_since: Option<i64>,
    pub last_error: Option<String>,
}

/// How checks judge a node (the operator's settings).
#[derive(Debug, Clone, Copy)]
pub struct CheckPolicy {
    /// Failed checks in a row that put a node down.
    pub failures_to_down: i64,
    /// How long a node may stay down before its users move (`None`: never).
    pub grace_ms: Option<i64>,
}

/// The longest `last_error` kept (the column's width).
const MAX_ERROR: usize = 255;

impl NodeHealth {
    /// The record after a check at `at` that succeeded or failed with `error`.
    pub fn after(&self, outcome: Result<(), String>, at: i64, policy: CheckPolicy) -> Self {
        match outcome {
            Ok(()) => Self {
                last_check: Some(at),
                last_ok: Some(at),
                ..Self::default()
            },
            Err(error) => {
                let failures = self.failures.saturating_add(1);
                let down = self.down || failures >= policy.failures_to_down;
                Self {
                    down,
                    failures,
                    last_check: Some(at),
                    last_ok: self.last_ok,
                    down_since: if down {
                        self.down_since.or(Some(at))
                    } else {
                        None
                    },
                    last_error: Some(truncate(error)),
                }
            }
        }
    }

    /// Whether the node has been down longer than the grace period at `now`.
    pub fn users_must_move(&self, now: i64, policy: CheckPolicy) -> bool {
        match (self.down_since, policy.grace_ms) {
            (Some(since), Some(grace)) if self.down => now.saturating_sub(since) >= grace,
            _ => false,
        }
    }
}

fn truncate(mut error: String) -> String {
    if error.len() > MAX_ERROR {
        let mut end = MAX_ERROR;
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: CheckPolicy = CheckPolicy {
        failures_to_down: 3,
        grace_ms: Some(60_000),
    };

    fn failed(health: &NodeHealth, at: i64) -> NodeHealth {
        health.after(Err("refused".into()), at, POLICY)
    }

    #[test]
    fn a_node_goes_down_after_enough_failures_in_a_row_and_comes_back_on_success() {
        let once = failed(&NodeHealth::default(), 1);
        let twice = failed(&once, 2);
        assert!(!twice.down);
        let thrice = failed(&twice, 3);
        assert!(thrice.down);
        assert_eq!(thrice.down_since, Some(3));
        assert_eq!(
            failed(&thrice, 4).down_since,
            Some(3),
            "down since the first time"
        );
        let back = thrice.after(Ok(()), 5, POLICY);
        assert_eq!(
            (back.down, back.failures, back.last_ok),
            (false, 0, Some(5))
        );
        // A success in between starts the count again.
        assert!(!failed(&failed(&back, 6), 7).down);
    }

    #[test]
    fn users_move_only_after_the_grace_period_and_only_if_one_is_set() {
        let down = failed(&failed(&failed(&NodeHealth::default(), 0), 0), 1_000);
        assert!(!down.users_must_move(60_999, POLICY));
        assert!(down.users_must_move(61_000, POLICY));
        let never = CheckPolicy {
            grace_ms: None,
            ..POLICY
        };
        assert!(!down.users_must_move(i64::MAX, never));
        assert!(!NodeHealth::default().users_must_move(i64::MAX, POLICY));
    }

    #[test]
    fn long_errors_are_cut_to_the_column() {
        let health = NodeHealth::default().after(Err("é".repeat(200)), 0, POLICY);
        assert!(health.last_error.unwrap().len() <= MAX_ERROR);
    }
}
