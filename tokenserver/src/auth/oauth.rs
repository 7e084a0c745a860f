//! FxA OAuth access tokens (`shared/spec/tokenserver.md`, "Verifying the
//! OAuth token"): a JWT is checked locally against FxA's keys; a token that
//! is not a JWT, or that no known key can check, goes to FxA's `/v1/verify`.
//! The whole verification runs under one timeout, so a slow FxA costs a
//! client a 503, never a hang.

use crate::metrics;
use std::sync::Arc;
use std::time::Duration;
use sync_common::telemetry::client;

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::keys::{FxaKeys, VerifyingKey};

/// The scope a token must carry to reach Sync.
pub const SYNC_SCOPE: &str = "https://identity.mozilla.com/apps/oldsync";

/// Who a verified token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxaIdentity {
    pub fxa_uid: String,
    /// The account's generation, when FxA tells (zero counts as absent).
    pub generation: Option<i64>,
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The token is not valid for Sync (401).
    #[error("the OAuth token is not valid: {0}")]
    Invalid(String),
    /// FxA could not be asked in time (503).
    #[error("FxA is unavailable: {0}")]
    Unavailable(String),
}

/// Verifies FxA OAuth access tokens.
pub struct OAuthVerifier {
    keys: Arc<FxaKeys>,
    http: reqwest::Client,
    verify_url: String,
    timeout: Duration,
}

#[derive(Deserialize)]
struct JwtClaims {
    sub: String,
    #[serde(default)]
    scope: Scopes,
    #[serde(rename = "fxa-generation", default)]
    generation: Option<i64>,
}

#[derive(Deserialize)]
struct RemoteAnswer {
    user: String,
    #[serde(default)]
    scope: Scopes,
    #[serde(default)]
    generation: Option<i64>,
}

/// A scope claim: a space- or comma-separated string, or a list.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Scopes {
    Text(String),
    List(Vec<String>),
    #[default]
    None,
}

impl Scopes {
    fn includes_sync(&self) -> bool {
        match self {
            Scopes::Text(text) => text.split([' ', ',']).any(|s| s == SYNC_SCOPE),
            Scopes::List(list) => list.iter().any(|s| s == SYNC_SCOPE),
            Scopes::None => false,
        }
    }
}

impl OAuthVerifier {
    /// `server_url` is FxA's OAuth server (its `/v1/verify` is used);
    /// `timeout` bounds a whole verification.
    pub fn new(
        keys: Arc<FxaKeys>,
        http: reqwest::Client,
        server_url: &str,
        timeout: Duration,
    ) -> Self {
        Self {
            keys,
            http,
            verify_url: format!("{}/v1/verify", server_url.trim_end_matches('/')),
            timeout,
        }
    }

    /// The identity behind `token`, if it is valid for Sync.
    pub async fn verify(&self, token: &str) -> Result<FxaIdentity, VerifyError> {
        // Measured whatever ends it: its answer, its timeout, or the
        // request giving up.
        let mut measured = metrics::Verification::start();
        let untimed = self.verify_untimed(token, &mut measured);
        let verified = match tokio::time::timeout(self.timeout, untimed).await {
            Ok(result) => result,
            Err(_) => Err(VerifyError::Unavailable(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        };
        measured.ended(outcome(&verified));
        verified
    }

    async fn verify_untimed(
        &self,
        token: &str,
        measured: &mut metrics::Verification,
    ) -> Result<FxaIdentity, VerifyError> {
        if let Ok(header) = jsonwebtoken::decode_header(token) {
            let kid = header.kid.as_deref();
            let keys = self.keys.for_kid(kid).await;
            // No key that could check it (none known, or FxA rotated to a
            // key we could not fetch): FxA itself is asked.
            if keys.iter().any(|k| k.may_check(kid)) {
                return verify_jwt(token, &header, &keys);
            }
        }
        measured.remote();
        self.verify_remotely(token).await
    }

    async fn verify_remotely(&self, token: &str) -> Result<FxaIdentity, VerifyError> {
        let request = self
            .http
            .post(&self.verify_url)
            .json(&serde_json::json!({ "token": token }));
        let response = client::send("fxa-verify", &self.http, request)
            .await
            .map_err(|e| VerifyError::Unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(VerifyError::Invalid(format!(
                "FxA answered {}",
                response.status()
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| VerifyError::Unavailable(format!("FxA's answer broke off: {e}")))?;
        identity_in_answer(&body)
    }
}

/// A verification's outcome as the metrics name it.
fn outcome(verified: &Result<FxaIdentity, VerifyError>) -> &'static str {
    match verified {
        Ok(_) => "ok",
        Err(VerifyError::Invalid(_)) => "invalid",
        Err(VerifyError::Unavailable(_)) => "unavailable",
    }
}

/// The identity in a 200 answer of FxA's `/v1/verify`.
pub fn identity_in_answer(body: &[u8]) -> Result<FxaIdentity, VerifyError> {
    let answer: RemoteAnswer = serde_json::from_slice(body)
        .map_err(|e| VerifyError::Unavailable(format!("FxA's answer is not readable: {e}")))?;
    identity(answer.user, &answer.scope, answer.generation)
}

/// Checks a JWT access token against `keys`, with nothing fetched.
pub fn verify_jwt_locally(token: &str, keys: &[VerifyingKey]) -> Result<FxaIdentity, VerifyError> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| VerifyError::Invalid(format!("not a JWT: {e}")))?;
    verify_jwt(token, &header, keys)
}

/// Checks a JWT access token against each key in turn.
fn verify_jwt(
    token: &str,
    header: &jsonwebtoken::Header,
    keys: &[VerifyingKey],
) -> Result<FxaIdentity, VerifyError> {
    let typ = header.typ.as_deref().unwrap_or("").to_ascii_lowercase();
    if typ.trim_start_matches("application/") != "at+jwt" {
        return Err(VerifyError::Invalid(format!(
            "JWT type {typ:?} is not at+jwt"
        )));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    // Keys naming the token's kid first; then the rest (configured keys
    // may carry no kid).
    let (named, others): (Vec<_>, Vec<_>) = keys
        .iter()
        .partition(|k| k.kid.is_some() && k.kid == header.kid);
    let mut last = String::from("no key matched");
    for key in named.into_iter().chain(others) {
        match jsonwebtoken::decode::<JwtClaims>(token, &key.key, &validation) {
            Ok(data) => {
                let c = data.claims;
                return identity(c.sub, &c.scope, c.generation);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(VerifyError::Invalid(last))
}

/// FxA names users by 32 hex digits; anything far from that (too long for
/// the `email` column, control characters, `@`) is not an FxA user id.
fn is_fxa_uid(user: &str) -> bool {
    const MAX_LEN: usize = 64;
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    !user.is_empty() && user.len() <= MAX_LEN && user.bytes().all(allowed)
}

fn identity(
    user: String,
    scope: &Scopes,
    generation: Option<i64>,
) -> Result<FxaIdentity, VerifyError> {
    if !scope.includes_sync() {
        return Err(VerifyError::Invalid(
            "the token lacks the Sync scope".into(),
        ));
    }
    if !is_fxa_uid(&user) {
        return Err(VerifyError::Invalid(
            "the token names no user, or not as FxA names users".into(),
        ));
    }
    Ok(FxaIdentity {
        fxa_uid: user,
        generation: generation.filter(|g| *g > 0),
    })
}
