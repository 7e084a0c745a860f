//! Where a storage node remembers the nonces it has accepted, so that a
//! request is served once: in the process (the single-process default), or
//! in Redis, shared by every replica of a node and kept across restarts
//! (ADR 0009). Either way a nonce is forgotten once its request's timestamp
//! leaves the skew window, after which a replay is refused as stale anyway.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::HawkError;

/// A `(token, nonce)` pair, hashed.
pub(super) type NonceKey = [u8; 32];

/// Upper bound on nonces remembered in the process; past it those expiring
/// first are forgotten first.
const LOCAL_CAPACITY: usize = 1_000_000;

/// How long a request waits for Redis before it is answered 503.
const REDIS_WAIT: Duration = Duration::from_secs(2);

/// Redis keeps a nonce this much longer than the request's skew window, for
/// replicas whose clocks lag the one that recorded it.
const REPLICA_CLOCK_MARGIN: u64 = 60;

/// Where accepted nonces are remembered.
#[derive(Debug)]
pub enum ReplayCache {
    /// In this process, since `remembers_from` (unix seconds).
    Local {
        nonces: Mutex<LocalNonces>,
        remembers_from: u64,
    },
    /// In Redis: every replica and restart of the node shares it.
    Shared(ConnectionManager),
}

impl ReplayCache {
    /// Nonces in this process, which started in second `started` (unix
    /// seconds). Requests signed in that second or before are refused as
    /// stale: a predecessor (this node before a restart) may have served
    /// them, and its nonces are gone. `0` for no such rule.
    pub fn in_process(started: u64) -> Self {
        Self::Local {
            nonces: Mutex::new(LocalNonces::new(LOCAL_CAPACITY)),
            remembers_from: if started == 0 { 0 } else { started + 1 },
        }
    }

    /// Nonces in the Redis server at `url` (`redis://host:port[/db]`). It
    /// connects on first use and reconnects after failures.
    pub fn shared(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_WAIT))
            .set_response_timeout(Some(REDIS_WAIT))
            .set_number_of_retries(1);
        let manager =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| e.to_string())?;
        Ok(Self::Shared(manager))
    }

    /// The earliest request timestamp this cache can vouch for.
    pub(super) fn remembers_from(&self) -> u64 {
        match self {
            Self::Local { remembers_from, .. } => *remembers_from,
            Self::Shared(_) => 0,
        }
    }

    /// Records `key` until `expires` (unix seconds); false if it was already
    /// recorded and is still live.
    pub(super) async fn first_use(
        &self,
        key: NonceKey,
        now: u64,
        expires: u64,
    ) -> Result<bool, HawkError> {
        match self {
            Self::Local { nonces, .. } => Ok(nonces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key, now, expires)),
            Self::Shared(manager) => {
                // Relative expiry: the Redis server's clock does not matter.
                let seconds = expires.saturating_sub(now) + REPLICA_CLOCK_MARGIN;
                let stored: Option<String> = redis::cmd("SET")
                    .arg(redis_key(&key))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(seconds)
                    .query_async(&mut manager.clone())
                    .await
                    .map_err(unavailable)?;
                Ok(stored.is_some())
            }
        }
    }

    /// For the heartbeat: whether nonces can be recorded.
    pub async fn check(&self) -> Result<(), HawkError> {
        match self {
            Self::Local { .. } => Ok(()),
            Self::Shared(manager) => redis::cmd("PING")
                .query_async::<String>(&mut manager.clone())
                .await
                .map(drop)
                .map_err(unavailable),
        }
    }
}

fn unavailable(e: redis::RedisError) -> HawkError {
    HawkError::ReplayCacheUnavailable(e.to_string())
}

fn redis_key(key: &NonceKey) -> String {
    format!("syncstorage:nonce:{}", hex::encode(key))
}

/// Nonces in memory, each with its expiry, indexed by expiry so that the
/// expired ones are found at once whatever order they came in.
#[derive(Debug)]
pub struct LocalNonces {
    capacity: usize,
    expiry_by_key: HashMap<NonceKey, u64>,
    keys_by_expiry: BTreeMap<u64, Vec<NonceKey>>,
}

impl LocalNonces {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            expiry_by_key: HashMap::new(),
            keys_by_expiry: BTreeMap::new(),
        }
    }

    fn insert(&mut self, key: NonceKey, now: u64, expires: u64) -> bool {
        self.forget_expired(now);
        if self.expiry_by_key.get(&key).is_some_and(|e| *e >= now) {
            return false;
        }
        self.expiry_by_key.insert(key, expires);
        self.keys_by_expiry.entry(expires).or_default().push(key);
        true
    }

    /// Forgets what has expired by `now`, and over capacity what expires
    /// first; gives memory back after a burst.
    fn forget_expired(&mut self, now: u64) {
        while let Some(entry) = self.keys_by_expiry.first_entry() {
            if *entry.key() >= now && self.expiry_by_key.len() < self.capacity {
                break;
            }
            let (expires, keys) = entry.remove_entry();
            for key in keys {
                if self.expiry_by_key.get(&key) == Some(&expires) {
                    self.expiry_by_key.remove(&key);
                }
            }
        }
        let len = self.expiry_by_key.len();
        if self.expiry_by_key.capacity() > 4 * len.max(1024) {
            self.expiry_by_key.shrink_to(2 * len);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.expiry_by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> NonceKey {
        [n; 32]
    }

    #[test]
    fn a_nonce_is_refused_while_live_and_forgotten_after() {
        let mut nonces = LocalNonces::new(10);
        assert!(nonces.insert(key(1), 100, 160));
        assert!(!nonces.insert(key(1), 150, 210));
        assert!(nonces.insert(key(1), 161, 221));
    }

    #[test]
    fn nonces_are_forgotten_by_time_whatever_order_they_came_in() {
        let mut nonces = LocalNonces::new(10);
        // A client whose clock runs ahead comes first, with a late expiry.
        assert!(nonces.insert(key(1), 100, 220));
        for n in 2..6 {
            assert!(nonces.insert(key(n), 100, 160));
        }
        assert!(nonces.insert(key(9), 161, 221));
        assert_eq!(nonces.len(), 2, "the four expired at 160 are gone");
    }

    #[test]
    fn capacity_is_bounded_by_forgetting_the_soonest_to_expire() {
        let mut nonces = LocalNonces::new(2);
        assert!(nonces.insert(key(1), 100, 300));
        assert!(nonces.insert(key(2), 100, 200));
        assert!(nonces.insert(key(3), 100, 250));
        assert!(nonces.len() <= 2, "holds {}", nonces.len());
        assert!(
            !nonces.insert(key(1), 100, 300),
            "the latest to expire stays"
        );
    }

    #[test]
    fn memory_is_given_back_after_a_burst() {
        let mut nonces = LocalNonces::new(LOCAL_CAPACITY);
        for n in 0..100_000u32 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&n.to_le_bytes());
            nonces.insert(k, 100, 160);
        }
        assert!(nonces.insert(key(1), 200, 260));
        assert!(nonces.expiry_by_key.capacity() < 10_000);
    }
}
