//! Revocations for this server's own node go straight into its storage
//! database (ADR 0012); other nodes registered with its tokenserver get
//! them over HTTP.

use std::sync::Arc;

use sync_common::revocation::Notice;
use syncstorage::revocations::Revocations;
use tokenserver::revocations::{OverHttp, Postbox};

pub struct LocalFirst {
    /// This server's public URL: its node's name.
    pub url: String,
    pub local: Arc<Revocations>,
    pub remote: OverHttp,
}

#[async_trait::async_trait]
impl Postbox for LocalFirst {
    async fn post(&self, notice: &Notice) -> Result<(), String> {
        if notice.node == self.url {
            self.local.record(notice).await.map_err(|e| e.to_string())
        } else {
            self.remote.post(notice).await
        }
    }
}
