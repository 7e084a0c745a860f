//! The all-in-one server is the only storage node of its tokenserver.

use tokenserver::db::{NodeUpdate, TokenStore};

use crate::StartError;

/// Users the built-in node may hold: every user of a self-hosted server.
const NODE_CAPACITY: i64 = i32::MAX as i64;

/// Makes `url` the tokenserver's node. If the only node has another URL
/// (the public URL changed), it is renamed: its users keep their uids, and
/// so their data. Other nodes would get users this server cannot serve, so
/// their presence stops the start with a way out.
pub async fn register(store: &dyn TokenStore, url: &str) -> Result<(), StartError> {
    let nodes = store.nodes().await?;
    match nodes.as_slice() {
        [] => {
            store.add_node(url, NODE_CAPACITY, false, false).await?;
            tracing::info!(node = %url, "registered this server as the storage node");
        }
        [only] if only.node == url => {}
        [only] => {
            let rename = NodeUpdate {
                node: Some(url.to_owned()),
                ..NodeUpdate::default()
            };
            store.update_node(&only.node, &rename).await?;
            tracing::warn!(from = %only.node, to = %url, "the public URL changed; users keep their data");
        }
        several => {
            let others: Vec<&str> = several
                .iter()
                .map(|n| n.node.as_str())
                .filter(|n| *n != url)
                .collect();
            return Err(StartError::Config(vec![format!(
                "the tokenserver database lists other storage nodes ({}); the all-in-one server must be \
                 the only one. Remove them with `syncserver node remove URL`, or run the tokenserver \
                 and syncstorage binaries for a multi-node deployment",
                others.join(", ")
            )]));
        }
    }
    Ok(())
}
