//! What Firefox does with a token: a client for one storage endpoint that
//! signs every request with the HAWK credentials the tokenserver handed out.

use hawk::{Credentials, DigestAlgorithm, Key, RequestBuilder};
use reqwest::Method;
use serde_json::Value;

/// A response read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[track_caller]
    pub fn assert(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.text);
        self
    }

    /// Asserts a 200 and returns the body.
    #[track_caller]
    pub fn ok(&self) -> Value {
        self.assert(200).json()
    }

    /// Asserts a tokenserver error: the HTTP status, the `status` string,
    /// and its one error's location, name and description.
    #[track_caller]
    pub fn assert_error(
        &self,
        http: u16,
        status: &str,
        location: &str,
        name: &str,
        description: &str,
    ) {
        assert_eq!(self.status, http, "body: {}", self.text);
        let expected = serde_json::json!({
            "status": status,
            "errors": [{"location": location, "name": name, "description": description}],
        });
        assert_eq!(self.json(), expected);
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/json")
        );
    }

    /// Reads a response in full.
    pub async fn read(response: reqwest::Response) -> Self {
        Self::try_read(response).await.expect("a whole body")
    }

    /// Reads a response in full; `None` if its body did not come.
    pub async fn try_read(response: reqwest::Response) -> Option<Self> {
        Some(Self {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.ok()?,
        })
    }
}

/// A response whose body was counted, not kept.
#[derive(Debug, Default)]
pub struct Counted {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: u64,
    /// Occurrences of the marker asked for.
    pub markers: u64,
    pub first: Option<u8>,
    pub last: Option<u8>,
}

/// Asks `tokenserver` (e.g. `http://127.0.0.1:8000/1.0/sync/1.5`) for a
/// token with an OAuth `bearer` token and an `X-KeyID`.
pub async fn get_token(tokenserver: &str, bearer: &str, key_id: &str) -> Reply {
    let response = reqwest::Client::new()
        .get(tokenserver)
        .header("Authorization", format!("Bearer {bearer}"))
        .header("X-KeyID", key_id)
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

/// A storage client built from a token response.
#[derive(Clone)]
pub struct SyncClient {
    http: reqwest::Client,
    /// `api_endpoint`: `<node>/1.5/<uid>`.
    pub endpoint: String,
    pub uid: u64,
    id: String,
    key: String,
}

impl SyncClient {
    /// From the tokenserver's 200 body.
    pub fn from_token(body: &Value) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: body["api_endpoint"].as_str().unwrap().to_owned(),
            uid: body["uid"].as_u64().unwrap(),
            id: body["id"].as_str().unwrap().to_owned(),
            key: body["key"].as_str().unwrap().to_owned(),
        }
    }

    /// The same client opening a new connection for every request.
    pub fn without_keep_alive(mut self) -> Self {
        self.http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        self
    }

    /// A HAWK-signed request to `<endpoint><path>`.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        Reply::read(self.signed(method, path, body).send().await.unwrap()).await
    }

    /// A HAWK-signed request; `None` when no answer came (the node is
    /// gone, or took longer than `limit`).
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        limit: std::time::Duration,
    ) -> Option<Reply> {
        let response = self
            .signed(method, path, body)
            .timeout(limit)
            .send()
            .await
            .ok()?;
        Reply::try_read(response).await
    }

    /// A signed GET whose body is read chunk by chunk and kept only as
    /// counts (for bodies larger than a test should hold).
    pub async fn get_counted(&self, path: &str, marker: &[u8]) -> Counted {
        let mut response = self.signed(Method::GET, path, None).send().await.unwrap();
        let mut counted = Counted {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            ..Counted::default()
        };
        let mut tail = Vec::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            counted.bytes += chunk.len() as u64;
            // A marker may straddle two chunks.
            tail.extend_from_slice(&chunk);
            counted.markers += tail.windows(marker.len()).filter(|w| *w == marker).count() as u64;
            let keep = tail.len().min(marker.len().saturating_sub(1));
            tail.drain(..tail.len() - keep);
            counted.last = tail.last().copied();
            if counted.first.is_none() {
                counted.first = chunk.first().copied();
            }
        }
        counted
    }

    /// A request signed for `<endpoint><path>` but sent to the same path
    /// at `via` (another process serving the endpoint's node).
    pub async fn send_via(&self, via: &str, method: Method, path: &str) -> Reply {
        let request = self.signed(method, path, None).build().unwrap();
        let mut url = reqwest::Url::parse(via).unwrap();
        url.set_path(request.url().path());
        url.set_query(request.url().query());
        let mut request = request;
        *request.url_mut() = url;
        Reply::read(self.http.execute(request).await.unwrap()).await
    }

    /// A HAWK-signed request to any `url` with this client's token.
    pub async fn send_to(&self, method: Method, url: &str, body: Option<&Value>) -> Reply {
        let request = self.signed_url(method, url.to_owned(), body);
        Reply::read(request.send().await.unwrap()).await
    }

    /// A HAWK-signed request, for callers that add headers of their own.
    pub fn signed(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::RequestBuilder {
        self.signed_url(method, format!("{}{path}", self.endpoint), body)
    }

    fn signed_url(
        &self,
        method: Method,
        url: String,
        body: Option<&Value>,
    ) -> reqwest::RequestBuilder {
        let parsed = reqwest::Url::parse(&url).unwrap();
        let path_and_query = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let credentials = Credentials {
            id: self.id.clone(),
            key: Key::new(self.key.as_bytes(), DigestAlgorithm::Sha256).unwrap(),
        };
        let header = RequestBuilder::new(
            method.as_str(),
            parsed.host_str().unwrap(),
            parsed.port_or_known_default().unwrap(),
            &path_and_query,
        )
        .request()
        .make_header(&credentials)
        .unwrap();
        let mut request = self
            .http
            .request(method, url)
            .header("Authorization", format!("Hawk {header}"));
        if let Some(body) = body {
            request = request.json(body);
        }
        request
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }
}
