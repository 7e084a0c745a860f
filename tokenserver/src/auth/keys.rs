//! FxA's public signing keys: the configured primary and secondary JWKs
//! (so a key rotation never locks users out), or else FxA's JWKS document,
//! fetched and cached, refreshed early when a token names an unknown key.

use crate::metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use sync_common::telemetry::client;

use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::Mutex;

/// An RSA public key in JWK form (RFC 7517), as FxA publishes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RsaJwk {
    pub kty: String,
    pub alg: Option<String>,
    pub kid: Option<String>,
    #[serde(rename = "use")]
    pub use_: Option<String>,
    pub n: String,
    pub e: String,
    pub fxa_created_at: Option<i64>,
}

impl RsaJwk {
    /// The verification key, or a sentence saying why this JWK is unusable.
    pub fn decoding_key(&self) -> Result<VerifyingKey, String> {
        if !self.kty.eq_ignore_ascii_case("RSA") {
            return Err(format!("key type {:?} is not RSA", self.kty));
        }
        if self.alg.as_deref().is_some_and(|a| a != "RS256") {
            return Err(format!("algorithm {:?} is not RS256", self.alg));
        }
        let key = DecodingKey::from_rsa_components(&self.n, &self.e)
            .map_err(|e| format!("the modulus or exponent is not valid base64url: {e}"))?;
        Ok(VerifyingKey {
            kid: self.kid.clone(),
            key,
        })
    }
}

/// A configured JWK: a table of fields (one environment variable each, so
/// `fxa_created_at` may come as a string of digits), or a JSON string
/// holding one. Errors say what is wrong; the loader names the setting.
pub fn deserialize_jwk<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RsaJwk>, D::Error> {
    use serde::de::Error;
    use serde_json::Value;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => serde_json::from_str(&text).map(Some).map_err(|e| {
            D::Error::custom(format!(
                "a JWK given as text must be a JSON object with kty, n and e ({e})"
            ))
        }),
        Some(Value::Object(fields)) => jwk_from_fields(fields).map(Some).map_err(D::Error::custom),
        Some(_) => Err(D::Error::custom(
            "a JWK must be a table of its fields (kty, n, e, …) or a JSON string",
        )),
    }
}

fn jwk_from_fields(
    mut fields: serde_json::Map<String, serde_json::Value>,
) -> Result<RsaJwk, String> {
    use serde_json::Value;
    if let Some(Value::String(text)) = fields.get("fxa_created_at") {
        let seconds: i64 = text.trim().parse().map_err(|_| {
            format!("fxa_created_at must be a whole number of seconds, not {text:?}")
        })?;
        fields.insert("fxa_created_at".into(), Value::from(seconds));
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| format!("a JWK needs kty, n and e as strings ({e})"))
}

/// A key that signatures are checked against.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
}

impl VerifyingKey {
    /// Whether this key may have signed a token naming `kid` (a key or a
    /// token without a kid may go with anything).
    pub fn may_check(&self, kid: Option<&str>) -> bool {
        kid.is_none() || self.kid.is_none() || self.kid.as_deref() == kid
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

struct Cached {
    keys: Arc<Vec<VerifyingKey>>,
    fetched_at: Instant,
    /// How long these keys are used before fetching again.
    valid_for: Duration,
    /// When an unknown `kid` last forced a fetch.
    forced_at: Option<Instant>,
}

impl Cached {
    /// Whether a key named `kid` is here (a token naming none: yes).
    fn has(&self, kid: Option<&str>) -> bool {
        kid.is_none() || self.keys.iter().any(|k| k.kid.as_deref() == kid)
    }

    /// Whether these keys serve a token naming `kid` at `now`.
    fn serves(&self, kid: Option<&str>, now: Instant) -> bool {
        let fresh = now - self.fetched_at < self.valid_for;
        let known = self.has(kid);
        let recently_forced = self
            .forced_at
            .is_some_and(|at| now - at < MIN_FORCED_REFRESH);
        fresh && (known || recently_forced)
    }
}

/// Where keys come from.
enum Source {
    Configured(Arc<Vec<VerifyingKey>>),
    Fetched {
        url: String,
        http: reqwest::Client,
        max_age: Duration,
        cache: Mutex<Option<Cached>>,
    },
}

/// Unknown `kid`s force a fetch at most this often, so forged tokens
/// cannot make us hammer FxA.
const MIN_FORCED_REFRESH: Duration = Duration::from_secs(60);

/// FxA's signing keys.
pub struct FxaKeys {
    source: Source,
}

impl FxaKeys {
    /// Fixed keys from the configuration.
    pub fn configured(keys: Vec<VerifyingKey>) -> Self {
        Self {
            source: Source::Configured(Arc::new(keys)),
        }
    }

    /// Keys fetched from `url` (a JWKS document) and kept for `max_age`.
    pub fn fetched(url: String, http: reqwest::Client, max_age: Duration) -> Self {
        Self {
            source: Source::Fetched {
                url,
                http,
                max_age,
                cache: Mutex::new(None),
            },
        }
    }

    /// The keys to try for a token naming `kid`. Empty when no usable key
    /// is known (nothing configured, FxA unreachable or its answer
    /// malformed): the caller then asks FxA to verify the token remotely,
    /// as it does when no key can check this `kid`.
    pub async fn for_kid(&self, kid: Option<&str>) -> Arc<Vec<VerifyingKey>> {
        match &self.source {
            Source::Configured(keys) => keys.clone(),
            Source::Fetched {
                url,
                http,
                max_age,
                cache,
            } => {
                let mut cache = cache.lock().await;
                let now = Instant::now();
                if let Some(c) = cache.as_ref().filter(|c| c.serves(kid, now)) {
                    return c.keys.clone();
                }
                // A fetch is forced when cached keys lack the token's kid;
                // it is recorded before fetching, and the cache stays in
                // place, so a request cancelled meanwhile (its timeout)
                // loses neither the keys nor the rate limit.
                if let Some(c) = cache.as_mut().filter(|c| !c.has(kid)) {
                    c.forced_at = Some(now);
                }
                let previous = cache.as_ref().map(|c| (c.keys.clone(), c.forced_at));
                let forced_at = previous.as_ref().and_then(|(_, at)| *at);
                let mut refresh = metrics::jwks_refresh();
                let fetched = fetch(http, url).await;
                refresh.ended(if fetched.is_ok() { "ok" } else { "failed" });
                let (keys, valid_for) = match fetched {
                    Ok(keys) => (Arc::new(keys), *max_age),
                    // Keep the keys we had (FxA rotates rarely) and try
                    // again soon; with none, tokens are verified remotely.
                    Err(e) => {
                        tracing::warn!(%url, error = %e, "cannot fetch FxA's signing keys");
                        let kept = previous.map(|(keys, _)| keys).unwrap_or_default();
                        (kept, MIN_FORCED_REFRESH.min(*max_age))
                    }
                };
                *cache = Some(Cached {
                    keys: keys.clone(),
                    fetched_at: now,
                    valid_for,
                    forced_at,
                });
                keys
            }
        }
    }
}

/// The usable RSA keys of the JWKS at `url`; an error when FxA cannot be
/// reached or its answer holds no usable key.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<VerifyingKey>, String> {
    let response = client::send("fxa-jwks", http, http.get(url))
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let document = response
        .json::<JwksDocument>()
        .await
        .map_err(|e| e.to_string())?;
    let keys: Vec<VerifyingKey> = document
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<RsaJwk>(value).ok())
        .filter_map(|jwk| jwk.decoding_key().ok())
        .collect();
    if keys.is_empty() {
        return Err("the JWKS holds no usable RSA key".into());
    }
    Ok(keys)
}
