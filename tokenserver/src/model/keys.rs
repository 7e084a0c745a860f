//! `X-KeyID` and `X-Client-State`: which sync keys the client holds
//! (`shared/spec/tokenserver.md`, "Request").

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::TokenserverError;

/// Client states are at most 16 bytes (32 hex characters).
const MAX_CLIENT_STATE_BYTES: usize = 16;

/// The client state as stored: lowercase hex, possibly empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientState(String);

impl ClientState {
    /// A stored value (trusted: it came from our own database).
    pub fn from_stored(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    pub fn as_hex(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The urlsafe base64 (unpadded) form used in `X-KeyID` and `fxa_kid`.
    pub fn to_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(hex::decode(&self.0).unwrap_or_default())
    }
}

/// What the client says about its keys: `keys_changed_at` (ms, zero counts
/// as absent) and the client state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId {
    pub keys_changed_at: Option<i64>,
    pub client_state: ClientState,
}

impl KeyId {
    /// Parses `X-KeyID` and checks the optional legacy `X-Client-State`
    /// against it, in Mozilla's order (so the same input gets the same
    /// error): split, base64, X-Client-State syntax (400) and agreement
    /// (401), then the keys_changed_at number. `None` means the header was
    /// absent; an X-Client-State that is not text is ignored, as Mozilla does.
    pub fn parse(
        key_id: Option<&[u8]>,
        client_state: Option<&str>,
    ) -> Result<Self, TokenserverError> {
        let raw = key_id.ok_or_else(TokenserverError::missing_key_id)?;
        let text = std::str::from_utf8(raw)
            .ok()
            .filter(|t| t.is_ascii())
            .ok_or_else(TokenserverError::unreadable_key_id)?;
        // The state is base64url, which may itself contain '-': split once.
        let (kca, state_b64) = text
            .split_once('-')
            .ok_or_else(TokenserverError::invalid_credentials)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(state_b64)
            .ok()
            .filter(|b| b.len() <= MAX_CLIENT_STATE_BYTES)
            .ok_or_else(TokenserverError::invalid_credentials)?;
        let state = ClientState(hex::encode(bytes));
        if let Some(header) = client_state {
            check_legacy_client_state(header)?;
            if header != state.0 {
                return Err(TokenserverError::client_state_mismatch());
            }
        }
        let kca: i64 = kca
            .parse()
            .ok()
            .filter(|k| *k >= 0)
            .ok_or_else(TokenserverError::invalid_credentials)?;
        Ok(Self {
            keys_changed_at: (kca != 0).then_some(kca),
            client_state: state,
        })
    }
}

/// `X-Client-State` must match `^[a-zA-Z0-9._-]{1,32}$`.
fn check_legacy_client_state(header: &str) -> Result<(), TokenserverError> {
    let valid = (1..=32).contains(&header.len())
        && header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(TokenserverError::malformed_client_state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(key_id: &str, state: Option<&str>) -> Result<KeyId, TokenserverError> {
        KeyId::parse(Some(key_id.as_bytes()), state)
    }

    #[test]
    fn key_ids_give_hex_client_states() {
        let k = parse("1234-qqo", None).unwrap();
        assert_eq!(k.keys_changed_at, Some(1234));
        assert_eq!(k.client_state.as_hex(), "aaaa");
        assert_eq!(k.client_state.to_b64(), "qqo");
        // '-' is a base64url character: only the first one separates.
        let k = parse("5-_-8", None).unwrap();
        assert_eq!(k.client_state.as_hex(), "ffef");
    }

    #[test]
    fn zero_keys_changed_at_counts_as_absent() {
        assert_eq!(parse("0-qqo", None).unwrap().keys_changed_at, None);
    }

    #[test]
    fn malformed_key_ids_are_invalid_credentials() {
        for bad in [
            "1234",
            "abc-qqo",
            "1-qqo=",
            "12-!!",
            "-1-qqo",
            "1-qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
        ] {
            let e = parse(bad, None).unwrap_err();
            assert_eq!(e.status, "invalid-credentials", "{bad}");
        }
        let e = KeyId::parse(None, None).unwrap_err();
        assert_eq!(e.status, "invalid-key-id");
        let e = KeyId::parse(Some("1-qq\u{e9}".as_bytes()), None).unwrap_err();
        assert_eq!(e.description, "Invalid X-KeyID header");
    }

    #[test]
    fn the_legacy_header_must_be_valid_and_agree() {
        assert!(parse("1-qqo", Some("aaaa")).is_ok());
        // Compared exactly, as Mozilla does.
        let e = parse("1-qqo", Some("AAAA")).unwrap_err();
        assert_eq!(e.status, "invalid-client-state");
        // The header's syntax is checked before the keys_changed_at number.
        let e = parse("abc-qqo", Some("!!")).unwrap_err();
        assert_eq!(e.http.as_u16(), 400);
        let e = parse("1-qqo", Some("bbbb")).unwrap_err();
        assert_eq!((e.http.as_u16(), e.status), (401, "invalid-client-state"));
        let e = parse("1-qqo", Some("aa aa")).unwrap_err();
        assert_eq!((e.http.as_u16(), e.name.as_str()), (400, "X-Client-State"));
        let e = parse("1-qqo", Some("")).unwrap_err();
        assert_eq!(e.http.as_u16(), 400);
    }
}
