//! Purging replaced user records. A replaced record's uid is never served
//! again, so its data on the storage node is garbage: it is deleted there
//! first (a HAWK-signed `DELETE /1.5/{uid}` with a token we mint), and the
//! record only once that worked, so nothing is forgotten while its data
//! still exists. Records of nodes that are gone can be dropped on request.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sync_common::token::TokenSecrets;

use crate::db::{DbResult, TokenStore, UserRecord};
use crate::node_client::NodeClient;

/// What a purge did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    /// Records deleted.
    pub purged: u64,
    /// Records kept because their node could not delete the data.
    pub kept: u64,
}

/// Where users' data lives, so a purge can delete it.
#[async_trait::async_trait]
pub trait UserData: Send + Sync {
    /// Deletes everything `uid` stores on `node`.
    async fn delete(&self, node: &str, uid: i64) -> Result<(), String>;
}

/// How storage data of purged records is handled.
pub enum DataPolicy<'a> {
    /// Delete it first; keep the record when that fails.
    Delete(&'a dyn UserData),
    /// Forget the records without touching any node.
    Skip,
}

/// Purges records replaced before `before_ms`, `chunk` at a time.
pub async fn purge_replaced(
    store: &dyn TokenStore,
    before_ms: i64,
    chunk: u64,
    data: &DataPolicy<'_>,
) -> DbResult<PurgeReport> {
    let mut report = PurgeReport::default();
    let mut seen = 0;
    loop {
        // Kept records stay in the table: skip past them.
        let batch = store.replaced_records(before_ms, seen + chunk).await?;
        let fresh: Vec<&UserRecord> = batch
            .iter()
            .skip(usize::try_from(seen).unwrap_or(usize::MAX))
            .collect();
        if fresh.is_empty() {
            return Ok(report);
        }
        for record in fresh {
            let deleted = match (data, record.node.as_deref()) {
                (DataPolicy::Delete(data), Some(node)) => data.delete(node, record.uid).await,
                (DataPolicy::Delete(_), None) => Err("its node is no longer registered".into()),
                (DataPolicy::Skip, _) => Ok(()),
            };
            match deleted {
                Ok(()) => {
                    store.delete_record(record.uid).await?;
                    report.purged += 1;
                }
                Err(e) => {
                    tracing::warn!(uid = record.uid, error = %e, "kept a replaced record: its data could not be deleted");
                    report.kept += 1;
                    seen += 1;
                }
            }
        }
    }
}

/// Storage nodes reached over HTTP: a HAWK-signed `DELETE /1.5/{uid}` with
/// a short token minted from the master secrets.
pub struct OverHttp {
    nodes: NodeClient,
}

impl OverHttp {
    pub fn new(secrets: TokenSecrets) -> Result<Self, String> {
        let nodes = NodeClient::new(secrets, Duration::from_secs(30))?;
        Ok(Self { nodes })
    }
}

#[async_trait::async_trait]
impl UserData for OverHttp {
    async fn delete(&self, node: &str, uid: i64) -> Result<(), String> {
        let uid = u64::try_from(uid).map_err(|e| e.to_string())?;
        let path = format!("/1.5/{uid}");
        let response = self
            .nodes
            .send("storage node", node, uid, Method::DELETE, &path, None)
            .await?;
        // 404: nothing stored; both mean the data is gone.
        if response.status().is_success() || response.status() == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(format!("the node answered {}", response.status()))
        }
    }
}
