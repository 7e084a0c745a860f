//! A Firefox Accounts stand-in for tests only: RSA test keys, signed JWT
//! access tokens and event tokens, and an HTTP server on a loopback port
//! with FxA's `/v1/verify` and `/v1/jwks` endpoints, and as much of FxA's
//! auth and profile servers as a signed-in Firefox calls (`/v1/oauth/token`
//! hands out tokens `/v1/verify` vouches for).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const SYNC_SCOPE: &str = "https://identity.mozilla.com/apps/oldsync";

/// The committed test key pairs (made with `openssl genpkey`, never used
/// anywhere else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    Primary,
    Secondary,
    /// Not published anywhere: its signatures must be refused.
    Rogue,
}

impl TestKey {
    fn name(self) -> &'static str {
        match self {
            TestKey::Primary => "primary",
            TestKey::Secondary => "secondary",
            TestKey::Rogue => "rogue",
        }
    }

    fn entry(self) -> Value {
        let all: Value = serde_json::from_str(include_str!("fxa_test_keys.json")).unwrap();
        all[self.name()].clone()
    }

    /// The public key as a JWK.
    pub fn jwk(self) -> Value {
        self.entry()["jwk"].clone()
    }

    pub fn kid(self) -> String {
        self.jwk()["kid"].as_str().unwrap().to_owned()
    }

    fn encoding_key(self) -> EncodingKey {
        EncodingKey::from_rsa_pem(self.entry()["private_pem"].as_str().unwrap().as_bytes()).unwrap()
    }

    /// Signs `claims` as an RS256 JWT of type `typ`.
    pub fn sign(self, typ: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid());
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).unwrap()
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims of an FxA access token for `fxa_uid`.
pub fn access_claims(fxa_uid: &str, generation: Option<i64>) -> Value {
    let mut claims = json!({
        "sub": fxa_uid,
        "scope": format!("profile {SYNC_SCOPE}"),
        "client_id": "5882386c6d801776",
        "iss": "https://accounts.firefox.com",
        "exp": unix_now() + 3600,
        "iat": unix_now(),
    });
    if let Some(g) = generation {
        claims["fxa-generation"] = json!(g);
    }
    claims
}

/// An access token for `fxa_uid`, as FxA signs it (primary key).
pub fn access_token(fxa_uid: &str, generation: Option<i64>) -> String {
    TestKey::Primary.sign("at+jwt", &access_claims(fxa_uid, generation))
}

/// How the stand-in's endpoints behave.
#[derive(Debug, Clone)]
pub enum Mode {
    Normal,
    /// Every answer comes after this long.
    Slow(Duration),
    /// `/v1/jwks` answers with something that is not a JWKS.
    MalformedJwks,
}

struct FxaState {
    mode: Mutex<Mode>,
    published: Mutex<Vec<TestKey>>,
    opaque: Mutex<HashMap<String, Value>>,
    pub jwks_fetches: AtomicUsize,
    pub verify_calls: AtomicUsize,
    /// The `traceparent` of each verify call that sent one.
    pub traceparents: Mutex<Vec<String>>,
    /// The FxA uid `/v1/oauth/token` issues tokens for (the browser's
    /// session is not checked: the stand-in has one account).
    account: Mutex<Option<String>>,
    /// `METHOD path status` of each call to the browser-facing endpoints.
    browser_calls: Mutex<Vec<String>>,
    /// The profile server's email of each FxA uid.
    emails: Mutex<HashMap<String, String>>,
    pub email_calls: AtomicUsize,
    /// What `/v1/email` answers instead, if set.
    profile_failure: Mutex<Option<StatusCode>>,
}

impl FxaState {
    /// What `/v1/verify` answers for `token` from now on.
    fn vouch(&self, token: &str, fxa_uid: &str, generation: Option<i64>, scope: &[&str]) {
        let answer = json!({
            "user": fxa_uid,
            "client_id": "5882386c6d801776",
            "scope": scope,
            "generation": generation,
        });
        self.opaque.lock().unwrap().insert(token.to_owned(), answer);
    }
}

/// A running FxA stand-in; stopped on drop.
pub struct FakeFxa {
    pub url: String,
    state: Arc<FxaState>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeFxa {
    pub async fn spawn() -> Self {
        let state = Arc::new(FxaState {
            mode: Mutex::new(Mode::Normal),
            published: Mutex::new(vec![TestKey::Primary, TestKey::Secondary]),
            opaque: Mutex::new(HashMap::new()),
            jwks_fetches: AtomicUsize::new(0),
            verify_calls: AtomicUsize::new(0),
            traceparents: Mutex::default(),
            account: Mutex::default(),
            browser_calls: Mutex::default(),
            emails: Mutex::default(),
            email_calls: AtomicUsize::new(0),
            profile_failure: Mutex::default(),
        });
        let router = Router::new()
            .route("/v1/jwks", get(jwks))
            .route("/v1/verify", post(verify))
            .route("/v1/oauth/token", post(oauth_token))
            .route("/v1/email", get(profile_email))
            .fallback(browser_call)
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            url,
            state,
            shutdown: Some(tx),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Which keys `/v1/jwks` lists.
    pub fn publish(&self, keys: &[TestKey]) {
        *self.state.published.lock().unwrap() = keys.to_vec();
    }

    /// A non-JWT token that `/v1/verify` vouches for.
    pub fn opaque_token(&self, fxa_uid: &str, generation: Option<i64>, scope: &[&str]) -> String {
        let token = hex::encode(rand::random::<[u8; 32]>());
        self.vouch(&token, fxa_uid, generation, scope);
        token
    }

    /// Makes `/v1/verify` vouch for `token` (a JWT included).
    pub fn vouch(&self, token: &str, fxa_uid: &str, generation: Option<i64>, scope: &[&str]) {
        self.state.vouch(token, fxa_uid, generation, scope);
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn verify_calls(&self) -> usize {
        self.state.verify_calls.load(Ordering::SeqCst)
    }

    /// Makes `/v1/oauth/token` issue tokens for `fxa_uid`.
    pub fn sign_in(&self, fxa_uid: &str) {
        *self.state.account.lock().unwrap() = Some(fxa_uid.to_owned());
    }

    /// `METHOD path status` of each call a browser made besides
    /// `/v1/oauth/token`.
    pub fn browser_calls(&self) -> Vec<String> {
        self.state.browser_calls.lock().unwrap().clone()
    }

    /// What the profile server's `/v1/email` says of `fxa_uid`.
    pub fn set_email(&self, fxa_uid: &str, email: &str) {
        let mut emails = self.state.emails.lock().unwrap();
        emails.insert(fxa_uid.to_owned(), email.to_owned());
    }

    /// Makes `/v1/email` answer `status` (`None`: as FxA does).
    pub fn fail_profile(&self, status: Option<u16>) {
        let status = status.map(|s| StatusCode::from_u16(s).unwrap());
        *self.state.profile_failure.lock().unwrap() = status;
    }

    /// Calls to the profile server's `/v1/email`.
    pub fn email_calls(&self) -> usize {
        self.state.email_calls.load(Ordering::SeqCst)
    }

    /// The `traceparent` headers verify calls carried.
    pub fn traceparents(&self) -> Vec<String> {
        self.state.traceparents.lock().unwrap().clone()
    }
}

impl Drop for FakeFxa {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn delay(state: &FxaState) -> Mode {
    let mode = state.mode.lock().unwrap().clone();
    if let Mode::Slow(d) = mode {
        tokio::time::sleep(d).await;
    }
    mode
}

async fn jwks(State(state): State<Arc<FxaState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if let Mode::MalformedJwks = delay(&state).await {
        return Json(json!({"keys": "not a list"})).into_response();
    }
    let keys: Vec<Value> = state
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.jwk())
        .collect();
    Json(json!({ "keys": keys })).into_response()
}

async fn verify(
    State(state): State<Arc<FxaState>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.verify_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(parent) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        state.traceparents.lock().unwrap().push(parent.to_owned());
    }
    delay(&state).await;
    let token = body["token"].as_str().unwrap_or_default();
    match state.opaque.lock().unwrap().get(token) {
        Some(answer) => Json(answer.clone()).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 400, "errno": 108, "error": "Bad Request", "message": "Invalid token"})),
        )
            .into_response(),
    }
}

/// The profile server's `GET /v1/email`: the account's email, for a token
/// `/v1/verify` vouches for with a `profile` or `profile:email` scope;
/// FxA's 403 for any other token of the account, 401 for an unknown one.
async fn profile_email(
    State(state): State<Arc<FxaState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    state.email_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(status) = *state.profile_failure.lock().unwrap() {
        return fxa_error(status, 999, "Failure the test asked for");
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let token = auth
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(answer) = state.opaque.lock().unwrap().get(token).cloned() else {
        return fxa_error(StatusCode::UNAUTHORIZED, 110, "Unauthorized");
    };
    let scopes = answer["scope"].as_array().cloned().unwrap_or_default();
    let may_read = scopes
        .iter()
        .any(|s| matches!(s.as_str(), Some("profile" | "profile:email")));
    let uid = answer["user"].as_str().unwrap_or_default();
    let email = state.emails.lock().unwrap().get(uid).cloned();
    match email.filter(|_| may_read) {
        Some(email) => Json(json!({ "email": email })).into_response(),
        None => fxa_error(StatusCode::FORBIDDEN, 125, "Insufficient scope"),
    }
}

/// FxA's `POST /v1/oauth/token` (grant `fxa-credentials`): an opaque
/// access token for the signed-in account and the scopes asked for.
async fn oauth_token(State(state): State<Arc<FxaState>>, Json(body): Json<Value>) -> Response {
    let Some(uid) = state.account.lock().unwrap().clone() else {
        return fxa_error(
            StatusCode::UNAUTHORIZED,
            110,
            "Invalid authentication token",
        );
    };
    let scope = body["scope"].as_str().unwrap_or_default();
    let token = hex::encode(rand::random::<[u8; 32]>());
    let scopes: Vec<&str> = scope.split(' ').collect();
    state.vouch(&token, &uid, None, &scopes);
    Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "scope": scope,
        "expires_in": 3600,
        "auth_at": unix_now(),
    }))
    .into_response()
}

/// The rest of what a signed-in browser calls: device registration, the
/// device list, commands, the profile. Answers as FxA does for an account
/// with one device and no commands; anything else is FxA's 404.
async fn browser_call(
    State(state): State<Arc<FxaState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> Response {
    let account = state.account.lock().unwrap().clone().unwrap_or_default();
    let answer = browser_answer(uri.path(), &account, &body);
    let status = if answer.is_some() { 200 } else { 404 };
    let call = format!("{method} {} {status}", uri.path());
    state.browser_calls.lock().unwrap().push(call);
    match answer {
        Some(answer) => Json(answer).into_response(),
        None => fxa_error(StatusCode::NOT_FOUND, 999, "Unknown endpoint"),
    }
}

fn browser_answer(path: &str, account: &str, body: &[u8]) -> Option<Value> {
    let email = format!("{account}@example.com");
    Some(match path {
        "/v1/account/device" => {
            let mut device: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
            device["id"] = json!("device-1");
            device
        }
        "/v1/account/devices" | "/v1/account/attached_clients" => json!([]),
        "/v1/account/device/commands" => json!({"index": 0, "messages": [], "last": true}),
        "/v1/account/devices/notify" | "/v1/session/destroy" | "/v1/oauth/destroy" => json!({}),
        "/v1/recovery_email/status" => json!({
            "email": email,
            "verified": true,
            "sessionVerified": true,
            "emailVerified": true,
        }),
        "/profile/v1/profile" => json!({
            "uid": account,
            "email": email,
            "avatar": null,
            "avatarDefault": true,
        }),
        _ => return None,
    })
}

fn fxa_error(status: StatusCode, errno: u32, message: &str) -> Response {
    let body = json!({"code": status.as_u16(), "errno": errno, "error": status.canonical_reason(), "message": message});
    (status, Json(body)).into_response()
}

/// The JSON payload inside a tokenlib token, as sent.
pub fn token_payload_json(token: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .unwrap();
    String::from_utf8(bytes[..bytes.len() - 32].to_vec()).unwrap()
}
