//! The user-record rules (`shared/spec/tokenserver.md`, "User records"):
//! which requests a stored record accepts, and how the record moves
//! forward. Generations and keys_changed_at only ever grow.

use super::keys::ClientState;
use crate::error::TokenserverError;

/// What a token request presents: the FxA generation (from the OAuth
/// token) and keys_changed_at and client state (from `X-KeyID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub generation: Option<i64>,
    pub keys_changed_at: Option<i64>,
    pub client_state: ClientState,
}

/// The generation of a deleted account's records (Mozilla's MAX_GENERATION).
pub const RETIRED_GENERATION: i64 = i64::MAX;

/// The part of the current user record the rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// 0 when never seen.
    pub generation: i64,
    pub keys_changed_at: Option<i64>,
    pub client_state: ClientState,
}

impl KeyState {
    /// Whether these are a deleted account's keys.
    pub fn is_retired(&self) -> bool {
        self.generation == RETIRED_GENERATION
    }
}

/// How the current record must change to serve a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Serve the record as it is.
    None,
    /// Raise generation and/or keys_changed_at in place.
    Raise(KeyState),
    /// The user reset their keys: a new record (new uid, empty storage).
    NewKeys(KeyState),
}

/// `a > b` when both are known; false otherwise (Mozilla's `opt_cmp`).
fn gt(a: Option<i64>, b: Option<i64>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a > b)
}

/// `a <= b` when both are known; false otherwise.
fn le(a: Option<i64>, b: Option<i64>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a <= b)
}

/// Refuses a request the record cannot accept, in the spec's order.
/// `old_states` are the client states of the user's replaced records.
pub fn check(
    req: &Presented,
    user: &KeyState,
    old_states: &[ClientState],
) -> Result<(), TokenserverError> {
    let gen_user = Some(user.generation);
    if gt(req.keys_changed_at, user.keys_changed_at) && gt(req.keys_changed_at, req.generation) {
        return Err(TokenserverError::invalid_keys_changed_at());
    }
    if !user.client_state.is_empty() && req.client_state.is_empty() {
        return Err(TokenserverError::invalid_client_state("empty string"));
    }
    if old_states.contains(&req.client_state) {
        return Err(TokenserverError::invalid_client_state("stale value"));
    }
    let state_changed = req.client_state != user.client_state;
    if state_changed && le(req.generation, gen_user) {
        return Err(TokenserverError::invalid_client_state(
            "new value with no generation change",
        ));
    }
    if state_changed && le(req.keys_changed_at, user.keys_changed_at) {
        return Err(TokenserverError::invalid_client_state(
            "new value with no keys_changed_at change",
        ));
    }
    if gt(gen_user, req.generation) {
        return Err(TokenserverError::invalid_generation());
    }
    if gt(user.keys_changed_at, req.keys_changed_at) {
        return Err(TokenserverError::invalid_keys_changed_at());
    }
    if req.keys_changed_at.is_none() && user.keys_changed_at.is_some_and(|k| k != 0) {
        return Err(TokenserverError::invalid_keys_changed_at());
    }
    Ok(())
}

/// The record after an accepted request (`check` must have passed).
pub fn next(req: &Presented, user: &KeyState) -> Change {
    let keys_changed_at = match (req.keys_changed_at, user.keys_changed_at) {
        (Some(r), Some(u)) if r >= u => Some(r),
        (Some(r), None) => Some(r),
        (_, stored) => stored,
    };
    let generation = match req.generation {
        Some(g) if g >= user.generation => g,
        None => match req.keys_changed_at {
            Some(k)
                if (user.keys_changed_at.is_none() || gt(Some(k), user.keys_changed_at))
                    && k > user.generation =>
            {
                k
            }
            _ => user.generation,
        },
        Some(_) => user.generation,
    };
    let next = KeyState {
        generation,
        keys_changed_at,
        client_state: req.client_state.clone(),
    };
    if next.client_state != user.client_state {
        Change::NewKeys(next)
    } else if next != *user {
        Change::Raise(next)
    } else {
        Change::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(hex: &str) -> ClientState {
        ClientState::from_stored(hex)
    }

    fn user(generation: i64, kca: Option<i64>, cs: &str) -> KeyState {
        KeyState {
            generation,
            keys_changed_at: kca,
            client_state: state(cs),
        }
    }

    fn req(generation: Option<i64>, kca: Option<i64>, cs: &str) -> Presented {
        Presented {
            generation,
            keys_changed_at: kca,
            client_state: state(cs),
        }
    }

    fn refusal(r: &Presented, u: &KeyState, old: &[ClientState]) -> (&'static str, String) {
        let e = check(r, u, old).unwrap_err();
        (e.status, e.description)
    }

    #[test]
    fn the_same_keys_are_served_unchanged() {
        let u = user(10, Some(10), "aa");
        let r = req(Some(10), Some(10), "aa");
        assert!(check(&r, &u, &[]).is_ok());
        assert_eq!(next(&r, &u), Change::None);
    }

    #[test]
    fn a_newer_generation_is_raised_in_place() {
        let u = user(10, Some(10), "aa");
        let r = req(Some(20), Some(10), "aa");
        assert!(check(&r, &u, &[]).is_ok());
        assert_eq!(next(&r, &u), Change::Raise(user(20, Some(10), "aa")));
    }

    #[test]
    fn new_keys_with_newer_generation_and_kca_make_a_new_record() {
        let u = user(10, Some(10), "aa");
        let r = req(Some(20), Some(20), "bb");
        assert!(check(&r, &u, &[]).is_ok());
        assert_eq!(next(&r, &u), Change::NewKeys(user(20, Some(20), "bb")));
    }

    #[test]
    fn regressions_are_refused() {
        let u = user(10, Some(10), "aa");
        assert_eq!(
            refusal(&req(Some(9), Some(10), "aa"), &u, &[]).0,
            "invalid-generation"
        );
        assert_eq!(
            refusal(&req(Some(10), Some(9), "aa"), &u, &[]).0,
            "invalid-keysChangedAt"
        );
        assert_eq!(
            refusal(&req(Some(10), None, "aa"), &u, &[]).0,
            "invalid-keysChangedAt"
        );
    }

    #[test]
    fn keys_changed_after_the_generation_is_refused() {
        let u = user(10, Some(10), "aa");
        assert_eq!(
            refusal(&req(Some(15), Some(20), "aa"), &u, &[]).0,
            "invalid-keysChangedAt"
        );
    }

    #[test]
    fn client_state_rules() {
        let u = user(10, Some(10), "aa");
        let desc = |r: Presented, old: &[ClientState]| refusal(&r, &u, old).1;
        assert_eq!(
            desc(req(Some(20), Some(20), ""), &[]),
            "Unacceptable client-state value empty string"
        );
        assert_eq!(
            desc(req(Some(20), Some(20), "bb"), &[state("bb")]),
            "Unacceptable client-state value stale value"
        );
        assert_eq!(
            desc(req(Some(10), Some(10), "bb"), &[]),
            "Unacceptable client-state value new value with no generation change"
        );
        assert_eq!(
            desc(req(Some(20), Some(10), "bb"), &[]),
            "Unacceptable client-state value new value with no keys_changed_at change"
        );
    }

    #[test]
    fn without_a_generation_keys_changed_at_stands_in_for_it() {
        let u = user(0, None, "");
        let r = req(None, Some(1234), "aa");
        assert!(check(&r, &u, &[]).is_ok());
        assert_eq!(next(&r, &u), Change::NewKeys(user(1234, Some(1234), "aa")));
    }
}
