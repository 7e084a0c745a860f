//! FxA's account-event webhook: Security Event Tokens (RFC 8417), JWTs
//! signed with FxA's keys, addressed to this deployment's client id. Each
//! names the account (`sub`) and carries events by schema URI.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::keys::FxaKeys;

const DELETE_USER: &str = "https://schemas.accounts.firefox.com/event/delete-user";
const PASSWORD_CHANGE: &str = "https://schemas.accounts.firefox.com/event/password-change";

/// What an event asks of the user's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEvent {
    /// The account is gone: retire the user.
    Deleted,
    /// The password changed at `change_time` (ms): older sessions are
    /// invalid, so the generation rises to just below it.
    PasswordChanged { change_time: i64 },
}

impl AccountEvent {
    /// Its name in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            AccountEvent::Deleted => "delete",
            AccountEvent::PasswordChanged { .. } => "password-change",
        }
    }
}

/// A verified event token.
#[derive(Debug, Clone)]
pub struct EventSet {
    pub fxa_uid: String,
    pub events: Vec<AccountEvent>,
    /// Event URIs we received and ignore (logged).
    pub ignored: Vec<String>,
}

#[derive(Deserialize)]
struct SetClaims {
    sub: String,
    /// Read leniently: a genuine token with odd events is still accepted.
    #[serde(default)]
    events: serde_json::Value,
}

/// Verifies event tokens; `None` settings mean every token is refused.
pub struct EventVerifier {
    keys: Arc<FxaKeys>,
    audience: String,
    issuer: String,
}

impl EventVerifier {
    pub fn new(keys: Arc<FxaKeys>, audience: String, issuer: String) -> Self {
        Self {
            keys,
            audience,
            issuer,
        }
    }

    /// The events of a genuine token, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<EventSet, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let keys = self.keys.for_kid(header.kid.as_deref()).await;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[&self.issuer]);
        // FxA's event tokens carry no expiry.
        validation.set_required_spec_claims(&["sub", "aud", "iss"]);
        let mut last = String::from("no signing key is known");
        for key in keys.iter() {
            match jsonwebtoken::decode::<SetClaims>(token, &key.key, &validation) {
                Ok(data) => return Ok(events(data.claims)),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

fn events(claims: SetClaims) -> EventSet {
    let mut set = EventSet {
        fxa_uid: claims.sub,
        events: Vec::new(),
        ignored: Vec::new(),
    };
    let events = claims.events.as_object().cloned().unwrap_or_default();
    for (uri, payload) in events {
        match uri.as_str() {
            DELETE_USER => set.events.push(AccountEvent::Deleted),
            PASSWORD_CHANGE => match payload
                .get("changeTime")
                .and_then(serde_json::Value::as_i64)
            {
                Some(change_time) => set
                    .events
                    .push(AccountEvent::PasswordChanged { change_time }),
                None => set.ignored.push(format!("{uri} (no changeTime)")),
            },
            _ => set.ignored.push(uri),
        }
    }
    set
}
