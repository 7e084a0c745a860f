//! HAWK request verification for tokens minted by the tokenserver
//! (`shared/spec/syncstorage-notes.md`, "Authentication").
//!
//! The key is the token's derived secret; the checks are, in order: header
//! syntax, token signature, timestamp skew, MAC (and payload hash if sent),
//! expiry, and finally the nonce, which is remembered only once the MAC is
//! good so that forged requests cannot fill the replay cache.

mod nonces;

use std::str::FromStr;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hawk::{DigestAlgorithm, Header, Key, PayloadHasher, RequestBuilder};
use sha2::{Digest, Sha256};

use crate::token::{TokenPayload, TokenSecrets};
pub use nonces::ReplayCache;

/// Why a HAWK-signed request was refused: a 401 on the wire, but for
/// `ReplayCacheUnavailable` (503: the request may be fine).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HawkError {
    #[error("no Authorization header")]
    Missing,
    #[error("the Authorization header is not a valid Hawk header")]
    Malformed,
    #[error("the Hawk id is not a valid token")]
    InvalidToken,
    #[error("the timestamp is outside the allowed skew")]
    StaleTimestamp {
        /// Server time (unix seconds) to tell the client.
        now: u64,
        /// `tsm`: the MAC of `now` under the client's key, so it can trust it.
        tsm: String,
    },
    #[error("the request MAC does not match")]
    BadMac,
    #[error("the token has expired")]
    Expired,
    #[error("the nonce was already used")]
    Replay,
    #[error("the replay cache cannot be reached: {0}")]
    ReplayCacheUnavailable(String),
}

/// The parts of an HTTP request that HAWK signs, as the client saw them.
#[derive(Debug, Clone, Copy)]
pub struct HawkRequest<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub path_and_query: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// Verifies HAWK headers and remembers nonces to refuse replays.
#[derive(Debug)]
pub struct HawkVerifier {
    secrets: TokenSecrets,
    skew: u64,
    nonces: ReplayCache,
}

impl HawkVerifier {
    /// `skew_secs` is how far a request's `ts` may be from the server clock;
    /// nonces are remembered in `nonces` for that long.
    pub fn new(secrets: TokenSecrets, skew_secs: u64, nonces: ReplayCache) -> Self {
        Self {
            secrets,
            skew: skew_secs,
            nonces,
        }
    }

    /// For the heartbeat: whether the replay cache can record nonces.
    pub async fn check(&self) -> Result<(), HawkError> {
        self.nonces.check().await
    }

    /// Checks `authorization` for `req` at `now` (unix seconds). Expired
    /// tokens pass only when `allow_expired` is set.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        req: &HawkRequest<'_>,
        now: u64,
        allow_expired: bool,
    ) -> Result<TokenPayload, HawkError> {
        let signed = self.precheck(authorization)?;
        self.verify_signed(signed, req, now, allow_expired).await
    }

    /// The checks that need the request (and body), on a `precheck`ed header,
    /// so the header and token are parsed and verified once.
    pub async fn verify_signed(
        &self,
        signed: Signed,
        req: &HawkRequest<'_>,
        now: u64,
        allow_expired: bool,
    ) -> Result<TokenPayload, HawkError> {
        let Signed { header, ts, token } = signed;
        let (Some(id), Some(nonce)) = (header.id.as_deref(), header.nonce.as_deref()) else {
            return Err(HawkError::Malformed);
        };
        let key = Key::new(token.derived_secret.as_bytes(), DigestAlgorithm::Sha256)
            .map_err(|_| HawkError::InvalidToken)?;
        // Signed before the replay cache began: perhaps already served.
        if ts.abs_diff(now) > self.skew || ts < self.nonces.remembers_from() {
            return Err(HawkError::StaleTimestamp {
                now,
                tsm: timestamp_mac(&key, now),
            });
        }
        check_mac(&header, &key, req)?;
        if !allow_expired && token.payload.is_expired(now) {
            return Err(HawkError::Expired);
        }
        let first_use = self
            .nonces
            .first_use(nonce_key(id, nonce), now, ts.saturating_add(self.skew))
            .await?;
        if !first_use {
            return Err(HawkError::Replay);
        }
        Ok(token.payload)
    }
}

/// A syntactically valid header carrying a genuine token: what `precheck`
/// hands to `verify_signed`.
pub struct Signed {
    header: Header,
    ts: u64,
    token: crate::token::VerifiedToken,
}

impl HawkVerifier {
    /// The cheap checks that need no body: header syntax and the token's
    /// signature. Run first so unauthenticated requests never get their
    /// bodies read.
    pub fn precheck(&self, authorization: Option<&str>) -> Result<Signed, HawkError> {
        let header = parse_header(authorization.ok_or(HawkError::Missing)?)?;
        if header.nonce.is_none() {
            return Err(HawkError::Malformed);
        }
        let id = header.id.as_deref().ok_or(HawkError::Malformed)?;
        let ts = header
            .ts
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .ok_or(HawkError::Malformed)?
            .as_secs();
        let token = self
            .secrets
            .parse_token(id)
            .map_err(|_| HawkError::InvalidToken)?;
        Ok(Signed { header, ts, token })
    }
}

fn parse_header(value: &str) -> Result<Header, HawkError> {
    let (scheme, rest) = value.trim().split_once(' ').ok_or(HawkError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("hawk") || !plausible_ts(rest) {
        return Err(HawkError::Malformed);
    }
    Header::from_str(rest.trim()).map_err(|_| HawkError::Malformed)
}

/// The hawk crate adds `ts` seconds to the epoch unchecked, which panics on
/// overflow; refuse absurd values (over 12 characters) before it sees them.
/// Its parser allows spaces around `=`, and so does this check.
fn plausible_ts(attributes: &str) -> bool {
    let bytes = attributes.as_bytes();
    attributes.match_indices("ts").all(|(at, key)| {
        let starts_a_word = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let rest = attributes[at + key.len()..].trim_start();
        let Some(value) = rest.strip_prefix('=').filter(|_| starts_a_word) else {
            return true;
        };
        let value = value.trim_start();
        let value = value.strip_prefix('"').unwrap_or(value);
        value.split('"').next().unwrap_or(value).len() <= 12
    })
}

fn check_mac(header: &Header, key: &Key, req: &HawkRequest<'_>) -> Result<(), HawkError> {
    // Only hash the body when the client sent a hash: Firefox does not.
    let hash = match header.hash {
        Some(_) => Some(payload_hash(req.content_type, req.body)?),
        None => None,
    };
    let request = RequestBuilder::new(req.method, req.host, req.port, req.path_and_query)
        .hash(hash.as_deref())
        .request();
    // Skew was checked above with our own window; only the MAC matters here.
    if request.validate_header(header, key, Duration::from_secs(u64::from(u32::MAX))) {
        Ok(())
    } else {
        Err(HawkError::BadMac)
    }
}

fn payload_hash(content_type: Option<&str>, body: &[u8]) -> Result<Vec<u8>, HawkError> {
    // HAWK hashes the bare, lower-cased media type.
    let media_type = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    PayloadHasher::hash(media_type, DigestAlgorithm::Sha256, body).map_err(|_| HawkError::BadMac)
}

fn timestamp_mac(key: &Key, now: u64) -> String {
    let msg = format!("hawk.1.ts\n{now}\n");
    key.sign(msg.as_bytes())
        .map(|mac| STANDARD.encode(mac))
        .unwrap_or_default()
}

/// What the replay cache remembers of a request: its token and nonce.
fn nonce_key(token: &str, nonce: &str) -> nonces::NonceKey {
    let mut hasher = Sha256::new();
    hasher.update(token.as_bytes());
    hasher.update([0u8]);
    hasher.update(nonce.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawk::Credentials;

    const NOW: u64 = 1_700_000_000;

    fn verifier() -> (HawkVerifier, String, String) {
        let secrets = TokenSecrets::new(&["master"]).unwrap();
        let payload = TokenPayload {
            node: "http://localhost".into(),
            fxa_kid: String::new(),
            fxa_uid: String::new(),
            hashed_device_id: String::new(),
            hashed_fxa_uid: String::new(),
            expires: NOW + 100,
            uid: 7,
            tokenserver_origin: "rust".into(),
            salt: "abcdef".into(),
            node_epoch: 0,
        };
        let minted = secrets.make_token(&payload).unwrap();
        (
            HawkVerifier::new(secrets, 60, ReplayCache::in_process(0)),
            minted.token,
            minted.derived_secret,
        )
    }

    fn sign(id: &str, key: &str, ts: u64, nonce: &str, path: &str, hash: Option<&[u8]>) -> String {
        let credentials = Credentials {
            id: id.to_owned(),
            key: Key::new(key.as_bytes(), DigestAlgorithm::Sha256).unwrap(),
        };
        let request = RequestBuilder::new("GET", "localhost", 80, path)
            .hash(hash)
            .request();
        let ts = std::time::UNIX_EPOCH + Duration::from_secs(ts);
        let header = request
            .make_header_full(&credentials, ts, nonce.to_owned())
            .unwrap();
        format!("Hawk {header}")
    }

    fn req(path: &str) -> HawkRequest<'_> {
        HawkRequest {
            method: "GET",
            host: "localhost",
            port: 80,
            path_and_query: path,
            content_type: None,
            body: b"",
        }
    }

    #[tokio::test]
    async fn a_good_signature_verifies_once_and_its_replay_is_refused() {
        let (v, id, key) = verifier();
        let auth = sign(&id, &key, NOW, "n1", "/1.5/7", None);
        let payload = v
            .verify(Some(&auth), &req("/1.5/7"), NOW, false)
            .await
            .unwrap();
        assert_eq!(payload.uid, 7);
        assert_eq!(
            v.verify(Some(&auth), &req("/1.5/7"), NOW, false).await,
            Err(HawkError::Replay)
        );
    }

    #[tokio::test]
    async fn a_request_signed_before_the_cache_began_is_refused_as_stale() {
        let (_, id, key) = verifier();
        let secrets = TokenSecrets::new(&["master"]).unwrap();
        let restarted = HawkVerifier::new(secrets, 60, ReplayCache::in_process(NOW));
        // The predecessor may have served requests up to its last second.
        let before = sign(&id, &key, NOW, "n1", "/", None);
        assert!(matches!(
            restarted.verify(Some(&before), &req("/"), NOW, false).await,
            Err(HawkError::StaleTimestamp { .. })
        ));
        let after = sign(&id, &key, NOW + 1, "n2", "/", None);
        let root = req("/");
        let later = restarted.verify(Some(&after), &root, NOW + 1, false);
        assert!(later.await.is_ok());
    }

    #[tokio::test]
    async fn a_different_path_fails_the_mac() {
        let (v, id, key) = verifier();
        let auth = sign(&id, &key, NOW, "n1", "/1.5/7", None);
        assert_eq!(
            v.verify(Some(&auth), &req("/1.5/8"), NOW, false).await,
            Err(HawkError::BadMac)
        );
    }

    #[tokio::test]
    async fn a_stale_timestamp_is_refused_with_the_server_time() {
        let (v, id, key) = verifier();
        let auth = sign(&id, &key, NOW - 61, "n1", "/", None);
        match v.verify(Some(&auth), &req("/"), NOW, false).await {
            Err(HawkError::StaleTimestamp { now, tsm }) => {
                assert_eq!(now, NOW);
                assert!(!tsm.is_empty());
            }
            other => panic!("expected stale, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn expired_tokens_pass_only_when_allowed() {
        let (v, id, key) = verifier();
        let later = NOW + 200;
        let auth = sign(&id, &key, later, "n1", "/", None);
        assert_eq!(
            v.verify(Some(&auth), &req("/"), later, false).await,
            Err(HawkError::Expired)
        );
        let auth = sign(&id, &key, later, "n2", "/", None);
        assert!(v.verify(Some(&auth), &req("/"), later, true).await.is_ok());
    }

    #[tokio::test]
    async fn a_payload_hash_must_match_the_body() {
        let (v, id, key) = verifier();
        let hash = PayloadHasher::hash("application/json", DigestAlgorithm::Sha256, b"[]").unwrap();
        let auth = sign(&id, &key, NOW, "n1", "/", Some(&hash));
        let mut good = req("/");
        good.content_type = Some("application/json; charset=utf-8");
        good.body = b"[]";
        assert!(v.verify(Some(&auth), &good, NOW, false).await.is_ok());
        let auth = sign(&id, &key, NOW, "n2", "/", Some(&hash));
        let mut bad = good;
        bad.body = b"[1]";
        assert_eq!(
            v.verify(Some(&auth), &bad, NOW, false).await,
            Err(HawkError::BadMac)
        );
    }

    #[tokio::test]
    async fn garbage_headers_are_malformed_or_missing() {
        let (v, _, _) = verifier();
        assert_eq!(
            v.verify(None, &req("/"), NOW, false).await,
            Err(HawkError::Missing)
        );
        for bad in [
            "Bearer x",
            "Hawk",
            "Hawk id=",
            "Hawk garbage\"",
            "Hawk id=\"x\"",
            "Hawk ts=\"18446744073709551615\"",
            "Hawk ts =\"18446744073709551615\"",
            "Hawk ts= \"18446744073709551615\"",
            "Hawk ts = \"+9223372036854775808\", id=\"x\", nonce=\"n\", mac=\"m\"",
            "Hawk id=\"x\",ts=\"000000000000000000001\"",
        ] {
            assert!(v.precheck(Some(bad)).is_err(), "{bad}");
            let err = v
                .verify(Some(bad), &req("/"), NOW, false)
                .await
                .unwrap_err();
            assert!(
                matches!(err, HawkError::Malformed | HawkError::InvalidToken),
                "{bad}: {err:?}"
            );
        }
    }
}
