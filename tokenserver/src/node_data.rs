//! A user's data on a storage node, as live migration, `export` and
//! `import-user` read and write it: the calls under `/__migration__/{uid}`
//! (ADR 0013). [`OverHttp`] makes them to any node; the all-in-one server
//! makes them straight on its own storage database.

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sync_common::migration::{
    Fence, Finish, Import, Record, Records, UserState, MAX_RECORDS, PREFIX,
};
use sync_common::revocation::TOKENSERVER_UID;

use crate::node_client::{JsonBody, NodeClient};

/// Bytes of records per import request, well under a node's request limit.
const IMPORT_BYTES: usize = 1024 * 1024;

/// What a call failed on, for the operator.
pub type NodeResult<T> = Result<T, String>;

/// One user's data on storage nodes.
#[async_trait::async_trait]
pub trait NodeData: Send + Sync {
    /// The user's timestamps on `node`.
    async fn state(&self, node: &str, uid: u64) -> NodeResult<UserState>;
    /// Up to `limit` live records of a collection with ids after `after`,
    /// in id order (a page may end early past a byte budget).
    async fn records(
        &self,
        node: &str,
        uid: u64,
        coll: &str,
        after: &str,
        limit: usize,
    ) -> NodeResult<Vec<Record>>;
    /// Stores records (see [`Import`]).
    async fn import(&self, node: &str, uid: u64, coll: &str, import: Import) -> NodeResult<()>;
    /// Drops a collection.
    async fn drop_collection(&self, node: &str, uid: u64, coll: &str) -> NodeResult<()>;
    /// Sets the storage's timestamp once every collection is in.
    async fn finish(&self, node: &str, uid: u64, modified: i64) -> NodeResult<()>;
    /// Refuses the user's writes for `seconds` (0 lifts the fence).
    async fn fence(&self, node: &str, uid: u64, seconds: u64) -> NodeResult<()>;
    /// Serves the uid there: lifts any fence or revocation of it.
    async fn serve(&self, node: &str, uid: u64) -> NodeResult<()>;
    /// Deletes everything the uid stores there (a fence stays).
    async fn evict(&self, node: &str, uid: u64) -> NodeResult<()>;
}

/// A collection's live records, page by page, in id order.
pub struct Pages<'a> {
    data: &'a dyn NodeData,
    node: &'a str,
    uid: u64,
    coll: &'a str,
    after: String,
    done: bool,
}

impl<'a> Pages<'a> {
    pub fn new(data: &'a dyn NodeData, node: &'a str, uid: u64, coll: &'a str) -> Self {
        Self {
            data,
            node,
            uid,
            coll,
            after: String::new(),
            done: false,
        }
    }

    /// The next page; `None` once every record was read.
    pub async fn next(&mut self) -> NodeResult<Option<Vec<Record>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .data
            .records(self.node, self.uid, self.coll, &self.after, MAX_RECORDS)
            .await?;
        // A page may end early (past the node's byte budget): only an
        // empty one says the collection was read whole.
        match page.last() {
            Some(last) => self.after.clone_from(&last.id),
            None => self.done = true,
        }
        Ok((!page.is_empty()).then_some(page))
    }
}

/// Writes one collection to a node: it first replaces what the node held
/// of it, and takes the timestamp `modified`.
pub struct CollectionWriter<'a> {
    data: &'a dyn NodeData,
    node: &'a str,
    uid: u64,
    coll: &'a str,
    modified: i64,
    first: bool,
    pending: Vec<Record>,
    pending_bytes: usize,
    /// Records written so far.
    pub written: u64,
}

impl<'a> CollectionWriter<'a> {
    pub fn new(
        data: &'a dyn NodeData,
        node: &'a str,
        uid: u64,
        coll: &'a str,
        modified: i64,
    ) -> Self {
        Self {
            data,
            node,
            uid,
            coll,
            modified,
            first: true,
            pending: Vec::new(),
            pending_bytes: 0,
            written: 0,
        }
    }

    /// Adds a record; full requests go out as they fill.
    pub async fn push(&mut self, record: Record) -> NodeResult<()> {
        let len = record.payload.len() + record.id.len();
        if !self.pending.is_empty()
            && (self.pending_bytes + len > IMPORT_BYTES || self.pending.len() == MAX_RECORDS)
        {
            self.send().await?;
        }
        self.pending_bytes += len;
        self.pending.push(record);
        Ok(())
    }

    /// Sends what is left; an empty collection still gets its timestamp.
    pub async fn close(mut self) -> NodeResult<u64> {
        if self.first || !self.pending.is_empty() {
            self.send().await?;
        }
        Ok(self.written)
    }

    async fn send(&mut self) -> NodeResult<()> {
        let import = Import {
            modified: self.modified,
            replace: self.first,
            records: std::mem::take(&mut self.pending),
        };
        let count = u64::try_from(import.records.len()).unwrap_or(0);
        self.data
            .import(self.node, self.uid, self.coll, import)
            .await?;
        self.first = false;
        self.written += count;
        self.pending_bytes = 0;
        Ok(())
    }
}

/// Copies one collection whole from `from` to `to` (the same uid on both),
/// replacing what `to` held of it; returns the records copied.
pub async fn copy_collection(
    data: &dyn NodeData,
    from: &str,
    to: &str,
    uid: u64,
    coll: &str,
    modified: i64,
) -> NodeResult<u64> {
    let mut pages = Pages::new(data, from, uid, coll);
    let mut writer = CollectionWriter::new(data, to, uid, coll, modified);
    while let Some(page) = pages.next().await? {
        for record in page {
            writer.push(record).await?;
        }
    }
    writer.close().await
}

/// Storage nodes reached over HTTP, signed as the tokenserver's own uid.
pub struct OverHttp {
    nodes: NodeClient,
}

impl OverHttp {
    pub fn new(nodes: NodeClient) -> Self {
        Self { nodes }
    }

    async fn get<T: DeserializeOwned>(&self, node: &str, path: &str) -> NodeResult<T> {
        let response = self.call(node, Method::GET, path, None).await?;
        response.json().await.map_err(|e| e.to_string())
    }

    async fn send<T: Serialize>(
        &self,
        node: &str,
        method: Method,
        path: &str,
        body: &T,
    ) -> NodeResult<()> {
        let body = JsonBody(serde_json::to_vec(body).map_err(|e| e.to_string())?);
        self.call(node, method, path, Some(body)).await.map(drop)
    }

    async fn call(
        &self,
        node: &str,
        method: Method,
        path: &str,
        body: Option<JsonBody>,
    ) -> NodeResult<reqwest::Response> {
        let response = self
            .nodes
            .send("storage node", node, TOKENSERVER_UID, method, path, body)
            .await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(format!("{node}{path} answered {}", response.status()))
        }
    }
}

#[async_trait::async_trait]
impl NodeData for OverHttp {
    async fn state(&self, node: &str, uid: u64) -> NodeResult<UserState> {
        self.get(node, &user_path(uid)).await
    }

    async fn records(
        &self,
        node: &str,
        uid: u64,
        coll: &str,
        after: &str,
        limit: usize,
    ) -> NodeResult<Vec<Record>> {
        let path = format!(
            "{}/{coll}?after={}&limit={limit}",
            user_path(uid),
            encode(after)
        );
        let page: Records = self.get(node, &path).await?;
        Ok(page.records)
    }

    async fn import(&self, node: &str, uid: u64, coll: &str, import: Import) -> NodeResult<()> {
        let path = format!("{}/{coll}", user_path(uid));
        self.send(node, Method::PUT, &path, &import).await
    }

    async fn drop_collection(&self, node: &str, uid: u64, coll: &str) -> NodeResult<()> {
        let path = format!("{}/{coll}", user_path(uid));
        self.call(node, Method::DELETE, &path, None).await.map(drop)
    }

    async fn finish(&self, node: &str, uid: u64, modified: i64) -> NodeResult<()> {
        let finish = Finish { modified };
        self.send(node, Method::PUT, &user_path(uid), &finish).await
    }

    async fn fence(&self, node: &str, uid: u64, seconds: u64) -> NodeResult<()> {
        let fence = Fence { seconds };
        self.send(node, Method::POST, &user_path(uid), &fence).await
    }

    async fn serve(&self, node: &str, uid: u64) -> NodeResult<()> {
        self.call(node, Method::PATCH, &user_path(uid), None)
            .await
            .map(drop)
    }

    async fn evict(&self, node: &str, uid: u64) -> NodeResult<()> {
        self.call(node, Method::DELETE, &user_path(uid), None)
            .await
            .map(drop)
    }
}

fn user_path(uid: u64) -> String {
    format!("{PREFIX}/{uid}")
}

/// A BSO id as a query value (ids are printable ASCII).
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
