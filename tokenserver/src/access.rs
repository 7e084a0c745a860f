//! Who may sync (ADR 0014): the configured allowlist and cap, joined with
//! what operators set at run time (stored in the database, reread by every
//! process every `access_refresh_seconds`), checked on each token request.
//! The request path reads only the in-memory list, except for accounts
//! that only an email or domain entry could admit: their email comes from
//! FxA's profile server, asked with the request's own OAuth token.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sync_common::task::Background;

use crate::config::TokenserverConfig;
use crate::db::{DbResult, StoredAccess, TokenStore, UserCap};
use crate::error::{ApiResult, TokenserverError};
use crate::model::access::{Allowlist, Entry, Verdict};

/// The allowlist and cap of one tokenserver process.
pub struct Access {
    store: Arc<dyn TokenStore>,
    configured: Vec<Entry>,
    configured_cap: Option<u64>,
    allow_new_users: bool,
    current: RwLock<Arc<Allowlist>>,
    /// What operators set at run time, as last read.
    stored: RwLock<StoredAccess>,
    /// `None`: no profile server to ask (email entries admit nobody).
    profile: Option<Profile>,
}

impl Access {
    /// Reads the stored settings once, so the first request already obeys
    /// them.
    pub async fn load(
        store: Arc<dyn TokenStore>,
        settings: &TokenserverConfig,
        http: reqwest::Client,
    ) -> DbResult<Arc<Self>> {
        let access = Arc::new(Self {
            store,
            configured: settings.allowlist(),
            configured_cap: settings.max_users,
            allow_new_users: settings.allow_new_users,
            current: RwLock::default(),
            stored: RwLock::default(),
            profile: settings.profile_server_url().map(|url| Profile {
                http,
                url: format!("{}/v1/email", url.trim_end_matches('/')),
            }),
        });
        access.refresh().await?;
        Ok(access)
    }

    /// Rereads what operators set at run time.
    pub async fn refresh(&self) -> DbResult<()> {
        let stored = self.store.access().await?;
        let list = Arc::new(self.joined(&stored));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = list;
        *self.stored.write().unwrap_or_else(|e| e.into_inner()) = stored;
        Ok(())
    }

    /// Rereads every `every`, until dropped.
    pub fn spawn(self: &Arc<Self>, every: Duration) -> Background {
        let access = self.clone();
        Background::every(every, move || {
            let access = access.clone();
            async move {
                if let Err(e) = access.refresh().await {
                    tracing::warn!(error = %e, "cannot reread who may sync; keeping the last list");
                }
            }
        })
    }

    /// The configured entries and the stored ones.
    fn joined(&self, stored: &StoredAccess) -> Allowlist {
        let mut entries = self.configured.clone();
        for text in &stored.entries {
            match Entry::parse(text) {
                Ok(entry) => entries.push(entry),
                Err(e) => tracing::warn!(%e, "ignoring a stored allowlist entry"),
            }
        }
        Allowlist::new(entries)
    }

    /// Whether every account may sync here, as many as come.
    pub fn is_open(&self) -> bool {
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        self.allow_new_users && stored.cap(self.configured_cap).is_none() && self.list().is_open()
    }

    fn list(&self) -> Arc<Allowlist> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What new allocations obey.
    pub fn cap(&self) -> UserCap {
        UserCap::Configured(self.configured_cap)
    }

    /// Lets the request through, or refuses it with the 403 that says why.
    /// `bearer` is the request's verified OAuth token.
    pub async fn check(&self, fxa_uid: &str, bearer: &str) -> ApiResult<()> {
        let list = self.list();
        let verdict = match (list.verdict(fxa_uid, None), &self.profile) {
            (Verdict::NeedsEmail, Some(profile)) => match profile.email(bearer).await? {
                Some(email) => list.verdict(fxa_uid, Some(&email)),
                None => Verdict::Refused,
            },
            (verdict, _) => verdict,
        };
        if verdict == Verdict::Admitted {
            return Ok(());
        }
        tracing::info!(fxa_uid, "refused an account the allowlist does not name");
        Err(TokenserverError::account_not_allowed(fxa_uid))
    }
}

/// FxA's profile server.
struct Profile {
    http: reqwest::Client,
    url: String,
}

#[derive(serde::Deserialize)]
struct EmailReply {
    email: String,
}

impl Profile {
    /// The account's email, or `None` when the token may not read it (401
    /// or 403: a Sync token carries only the Sync scope unless the client
    /// asked for more). Any other failure is an outage: an account an
    /// email entry admits must not be locked out by it.
    async fn email(&self, bearer: &str) -> ApiResult<Option<String>> {
        let reply = self
            .http
            .get(&self.url)
            .bearer_auth(bearer)
            .send()
            .await
            .map_err(|e| TokenserverError::unavailable(format!("FxA profile server: {e}")))?;
        let status = reply.status();
        if matches!(status.as_u16(), 401 | 403) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(TokenserverError::unavailable(format!(
                "FxA profile server answered {status}"
            )));
        }
        let body: EmailReply = reply.json().await.map_err(|e| {
            TokenserverError::unavailable(format!("FxA profile server's answer: {e}"))
        })?;
        Ok(Some(body.email))
    }
}
