//! Calls from the tokenserver to storage nodes, HAWK-signed with a short
//! token minted from the master secrets for a uid on that node: deleting a
//! purged user's data, delivering revocations (ADR 0012).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hawk::{Credentials, DigestAlgorithm, Key, PayloadHasher, RequestBuilder};
use reqwest::Method;
use sync_common::token::{TokenPayload, TokenSecrets};

/// How long a minted token lives: one call, with room for clock skew.
const TOKEN_SECONDS: u64 = 300;

/// A JSON body to send.
pub struct JsonBody(pub Vec<u8>);

/// Signs and sends calls to storage nodes.
pub struct NodeClient {
    http: reqwest::Client,
    secrets: TokenSecrets,
}

impl NodeClient {
    /// Calls give up after `timeout`.
    pub fn new(secrets: TokenSecrets, timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, secrets })
    }

    /// Sends `method path` to `node` as `uid` there (named `peer` in
    /// traces), with `body` and its HAWK hash if given.
    pub async fn send(
        &self,
        peer: &'static str,
        node: &str,
        uid: u64,
        method: Method,
        path: &str,
        body: Option<JsonBody>,
    ) -> Result<reqwest::Response, String> {
        let url = format!("{node}{path}");
        let parsed: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string())?;
        let host = parsed.host().ok_or("the node URL has no host")?;
        let port = parsed
            .port_u16()
            .unwrap_or(if parsed.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let credentials = self.credentials(node, uid)?;
        let hash = match &body {
            Some(JsonBody(bytes)) => Some(
                PayloadHasher::hash("application/json", DigestAlgorithm::Sha256, bytes)
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let header = RequestBuilder::new(method.as_str(), host, port, path)
            .hash(hash.as_deref())
            .request()
            .make_header(&credentials)
            .map_err(|e| e.to_string())?;
        let mut request = self
            .http
            .request(method, &url)
            .header("Authorization", format!("Hawk {header}"));
        if let Some(JsonBody(bytes)) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(bytes);
        }
        sync_common::telemetry::client::send(peer, &self.http, request)
            .await
            .map_err(|e| e.to_string())
    }

    fn credentials(&self, node: &str, uid: u64) -> Result<Credentials, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?;
        let payload = TokenPayload {
            node: node.to_owned(),
            fxa_kid: String::new(),
            fxa_uid: String::new(),
            hashed_device_id: String::new(),
            hashed_fxa_uid: String::new(),
            expires: now.as_secs() + TOKEN_SECONDS,
            uid,
            tokenserver_origin: "rust".into(),
            salt: TokenPayload::random_salt(),
            // Epoch 0 is refused once a node's epoch rose; u64::MAX never is.
            node_epoch: u64::MAX,
        };
        let token = self
            .secrets
            .make_token(&payload)
            .map_err(|e| e.to_string())?;
        Ok(Credentials {
            id: token.token,
            key: Key::new(token.derived_secret.as_bytes(), DigestAlgorithm::Sha256)
                .map_err(|e| e.to_string())?,
        })
    }
}
