//! The user-record workflow of a token request: find or create the user's
//! current record (moving them off a downed, removed or drained node),
//! then bring it up to what the request presents. The rules themselves are
//! in [`crate::model`]; this combines them with the store.

use crate::db::{TokenStore, UserCap, UserHistory, UserRecord};
use crate::error::{ApiResult, TokenserverError};
use crate::metrics;
use crate::model::user::{Change, KeyState, Presented};

/// How new users are placed.
#[derive(Debug, Clone, Copy)]
pub struct Allocation {
    pub allow_new_users: bool,
    pub release_rate: f64,
    /// The cap new accounts obey.
    pub cap: UserCap,
}

/// The user's current, servable record and their history.
pub async fn current_record(
    store: &dyn TokenStore,
    email: &str,
    req: &Presented,
    allocation: Allocation,
) -> ApiResult<UserHistory> {
    let Some(mut history) = store.user(email).await? else {
        if !allocation.allow_new_users {
            return Err(TokenserverError::new_users_disabled());
        }
        let keys = KeyState {
            generation: req.generation.unwrap_or(0),
            keys_changed_at: req.keys_changed_at,
            client_state: req.client_state.clone(),
        };
        let current = store
            .allocate_user(
                email,
                &keys,
                None,
                None,
                allocation.release_rate,
                allocation.cap,
            )
            .await?;
        metrics::allocated(current.node.as_deref(), "new");
        return Ok(UserHistory {
            current,
            old_client_states: Vec::new(),
        });
    };
    let current = &history.current;
    let retired = current.keys.is_retired();
    let needs_node = current.replaced_at.is_some() || current.live_node().is_none();
    if needs_node && !retired {
        // Node reassignment: same keys, a fresh uid on a working node.
        let (keys, seen) = (current.keys.clone(), Some(current.uid));
        history.current = store
            .allocate_user(
                email,
                &keys,
                None,
                seen,
                allocation.release_rate,
                allocation.cap,
            )
            .await?;
        metrics::allocated(history.current.node.as_deref(), "reassigned");
    } else if current.node.is_none() {
        return Err(TokenserverError::internal(format!(
            "retired user {} has no node",
            current.uid
        )));
    }
    Ok(history)
}

/// Applies an accepted request's change to the current record.
pub async fn apply(
    store: &dyn TokenStore,
    current: UserRecord,
    change: Change,
) -> ApiResult<UserRecord> {
    match change {
        Change::None => Ok(current),
        Change::Raise(keys) => {
            store.raise_keys(current.uid, &keys).await?;
            Ok(UserRecord { keys, ..current })
        }
        Change::NewKeys(keys) => Ok(store.replace_keys(&current, &keys).await?),
    }
}
