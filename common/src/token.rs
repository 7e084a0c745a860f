//! Tokens in Mozilla's `tokenlib` format, shared by the tokenserver (which
//! mints them) and storage nodes (which verify them).
//!
//! A token is `urlsafe_b64(payload_json ‖ HMAC-SHA256(signing_key, payload_json))`
//! and its derived secret (the HAWK key handed to the client) is
//! `urlsafe_b64(HKDF(master, salt = payload.salt, info = DERIVE ‖ token))`.
//! See `shared/spec/tokenserver.md`, "The token".

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::Sha256;

const HKDF_INFO_SIGNING: &[u8] = b"services.mozilla.com/tokenlib/v1/signing";
const HKDF_INFO_DERIVE: &[u8] = b"services.mozilla.com/tokenlib/v1/derive/";
const SIGNATURE_LEN: usize = 32;

/// Decodes with or without padding: Python pads, some clients strip it.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("no master secret is configured")]
    NoSecrets,
    #[error("the token is not valid base64 or too short")]
    Malformed,
    #[error("the token's signature does not match any master secret")]
    BadSignature,
    #[error("the token's payload is not the expected JSON")]
    BadPayload,
}

/// The JSON payload of a token. Field order matches Mozilla's minting code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenPayload {
    /// The storage node URL this token is valid for.
    pub node: String,
    #[serde(default)]
    pub fxa_kid: String,
    #[serde(default)]
    pub fxa_uid: String,
    #[serde(default)]
    pub hashed_device_id: String,
    #[serde(default)]
    pub hashed_fxa_uid: String,
    /// Expiry, unix seconds. Python mints floats; we accept them and round down.
    #[serde(deserialize_with = "unix_seconds")]
    pub expires: u64,
    /// The user's id on the storage node.
    pub uid: u64,
    #[serde(default = "default_origin")]
    pub tokenserver_origin: String,
    /// Random hex; the HKDF salt for the derived secret.
    pub salt: String,
    /// The node's token epoch when this was minted: a node refuses tokens
    /// from before its current epoch (ADR 0012). Absent (0) in tokens of
    /// other tokenservers and of ours before epochs existed.
    #[serde(default)]
    pub node_epoch: u64,
}

fn default_origin() -> String {
    "python".to_owned()
}

fn unix_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f.floor() as u64))
        .ok_or_else(|| serde::de::Error::custom("expires must be a non-negative number"))
}

impl TokenPayload {
    /// True once `now` (unix seconds) has reached the expiry time.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires <= now
    }

    /// A fresh random salt in tokenlib's format (hex of 3 random bytes).
    pub fn random_salt() -> String {
        hex::encode(rand::random::<[u8; 3]>())
    }
}

/// A freshly minted token and the secret the client signs requests with.
#[derive(Clone)]
pub struct MintedToken {
    pub token: String,
    pub derived_secret: String,
}

/// A token whose signature checked out, with its derived secret.
#[derive(Clone)]
pub struct VerifiedToken {
    pub payload: TokenPayload,
    pub derived_secret: String,
}

// Hand-written so the derived secret (a client's HAWK key) never reaches a log.
impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken")
            .field("token", &self.token)
            .field("derived_secret", &"[redacted]")
            .finish()
    }
}

impl std::fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("payload", &self.payload)
            .field("derived_secret", &"[redacted]")
            .finish()
    }
}

struct MasterKey {
    master: Vec<u8>,
    signing: [u8; SIGNATURE_LEN],
}

/// The deployment's master secrets: the first signs, every one verifies
/// (so secrets can be rotated without invalidating live tokens).
pub struct TokenSecrets {
    keys: Vec<MasterKey>,
}

impl std::fmt::Debug for TokenSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSecrets({} secrets, redacted)", self.keys.len())
    }
}

impl TokenSecrets {
    /// `secrets[0]` is used for signing; all are accepted when verifying.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Result<Self, TokenError> {
        if secrets.is_empty() {
            return Err(TokenError::NoSecrets);
        }
        let keys = secrets
            .iter()
            .map(|s| {
                let master = s.as_ref().to_vec();
                let signing = hkdf_sha256(&master, None, HKDF_INFO_SIGNING);
                MasterKey { master, signing }
            })
            .collect();
        Ok(Self { keys })
    }

    fn signing_key(&self) -> &MasterKey {
        // `new` guarantees at least one key.
        &self.keys[0]
    }

    /// Serialises the payload, signs it with the newest secret and derives the
    /// client's secret.
    pub fn make_token(&self, payload: &TokenPayload) -> Result<MintedToken, TokenError> {
        let json = serde_json::to_vec(payload).map_err(|_| TokenError::BadPayload)?;
        let token = self.sign_payload(&json);
        let derived_secret = derive_secret(&self.signing_key().master, &payload.salt, &token);
        Ok(MintedToken {
            token,
            derived_secret,
        })
    }

    /// Signs raw payload bytes with the newest secret (used for byte-exact
    /// compatibility checks against tokenlib).
    pub fn sign_payload(&self, payload: &[u8]) -> String {
        let mut bytes = payload.to_vec();
        bytes.extend_from_slice(&hmac_sha256(&self.signing_key().signing, payload));
        URL_SAFE.encode(bytes)
    }

    /// Checks the signature against every secret (in constant time) and
    /// returns the payload with its derived secret. Expiry is left to the
    /// caller, because storage accepts expired tokens on one endpoint.
    pub fn parse_token(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let bytes = URL_SAFE_LENIENT
            .decode(token.as_bytes())
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() <= SIGNATURE_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let key = self
            .keys
            .iter()
            .find(|k| verify_hmac(&k.signing, payload, signature))
            .ok_or(TokenError::BadSignature)?;
        let payload: TokenPayload =
            serde_json::from_slice(payload).map_err(|_| TokenError::BadPayload)?;
        let derived_secret = derive_secret(&key.master, &payload.salt, token);
        Ok(VerifiedToken {
            payload,
            derived_secret,
        })
    }
}

/// The per-token secret: HKDF(master, salt, DERIVE ‖ token), urlsafe base64.
fn derive_secret(master: &[u8], salt: &str, token: &str) -> String {
    let mut info = HKDF_INFO_DERIVE.to_vec();
    info.extend_from_slice(token.as_bytes());
    URL_SAFE.encode(hkdf_sha256(master, Some(salt.as_bytes()), &info))
}

fn hkdf_sha256(ikm: &[u8], salt: Option<&[u8]>, info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = Hkdf::<Sha256>::new(salt, ikm).expand(info, &mut out);
    out
}

/// HMAC-SHA256 of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = new_hmac(key);
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn verify_hmac(key: &[u8], msg: &[u8], tag: &[u8]) -> bool {
    let mut mac = new_hmac(key);
    mac.update(msg);
    mac.verify_slice(tag).is_ok()
}

fn new_hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts any key length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> TokenPayload {
        TokenPayload {
            node: "http://localhost:8000".into(),
            fxa_kid: "0000000001234-qqo".into(),
            fxa_uid: "abc".into(),
            hashed_device_id: String::new(),
            hashed_fxa_uid: String::new(),
            expires: 2_000_000_000,
            uid: 42,
            tokenserver_origin: "rust".into(),
            salt: "a1b2c3".into(),
            node_epoch: 0,
        }
    }

    #[test]
    fn made_tokens_parse_back_with_the_same_derived_secret() {
        let secrets = TokenSecrets::new(&["s3cret"]).unwrap();
        let minted = secrets.make_token(&payload()).unwrap();
        let parsed = secrets.parse_token(&minted.token).unwrap();
        assert_eq!(parsed.payload, payload());
        assert_eq!(parsed.derived_secret, minted.derived_secret);
    }

    #[test]
    fn rotated_secrets_still_verify_old_tokens() {
        let old = TokenSecrets::new(&["old"]).unwrap();
        let token = old.make_token(&payload()).unwrap();
        let rotated = TokenSecrets::new(&["new", "old"]).unwrap();
        let parsed = rotated.parse_token(&token.token).unwrap();
        assert_eq!(parsed.derived_secret, token.derived_secret);
    }

    #[test]
    fn a_token_from_another_secret_is_refused() {
        let token = TokenSecrets::new(&["a"])
            .unwrap()
            .make_token(&payload())
            .unwrap();
        let other = TokenSecrets::new(&["b"]).unwrap();
        assert_eq!(
            other.parse_token(&token.token).unwrap_err(),
            TokenError::BadSignature
        );
    }

    #[test]
    fn a_tampered_or_garbage_token_is_refused() {
        let secrets = TokenSecrets::new(&["a"]).unwrap();
        let token = secrets.make_token(&payload()).unwrap().token;
        let mut tampered = token.into_bytes();
        tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(secrets.parse_token(&tampered).is_err());
        assert_eq!(
            secrets.parse_token("!!!").unwrap_err(),
            TokenError::Malformed
        );
        assert_eq!(
            secrets.parse_token("AAAA").unwrap_err(),
            TokenError::Malformed
        );
    }

    #[test]
    fn no_secrets_is_an_error() {
        assert_eq!(
            TokenSecrets::new::<&str>(&[]).unwrap_err(),
            TokenError::NoSecrets
        );
    }

    #[test]
    fn expiry_is_inclusive_of_the_expiry_second() {
        let p = payload();
        assert!(!p.is_expired(p.expires - 1));
        assert!(p.is_expired(p.expires));
    }
}
