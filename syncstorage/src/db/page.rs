//! A collection GET's page: its head, read at once, and its rows, read from
//! the database only as fast as the client takes them, so that serving a
//! page holds a few records in memory whatever its size.

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::session::{PageRows, RowSink, Session};
use super::{DbResult, Uid};
use crate::model::bso::Bso;
use crate::model::paging::{BsoQuery, PageHead};
use crate::model::timestamp::SyncTimestamp;

/// Rows read ahead of the client; each may be a record of the largest size.
const ROWS_AHEAD: usize = 1;

/// One page of a collection.
#[derive(Debug)]
pub struct Page {
    pub head: PageHead,
    /// Exactly `head.records` rows, unless reading them fails.
    pub rows: Rows,
}

impl Page {
    pub fn empty() -> Self {
        Self {
            head: PageHead::default(),
            rows: Rows(mpsc::channel(1).1),
        }
    }
}

/// A page's rows in order, fed by a task that holds the read transaction
/// until it has read them all or the page is dropped.
#[derive(Debug)]
pub struct Rows(mpsc::Receiver<DbResult<Bso>>);

impl Rows {
    /// The next row; `None` after the last, or after a failure's error.
    pub async fn next(&mut self) -> Option<DbResult<Bso>> {
        self.0.recv().await
    }

    /// Reads `rows` of `query`'s page in `session`'s snapshot on a task of
    /// its own, which ends the transaction whatever the reader does.
    pub(super) fn read(
        mut session: Box<dyn Session>,
        (uid, coll): (Uid, i64),
        query: BsoQuery,
        now: SyncTimestamp,
        rows: PageRows,
    ) -> Self {
        let (mut sink, receiver) = mpsc::channel(ROWS_AHEAD);
        tokio::spawn(async move {
            let read = session
                .stream_page(uid, coll, &query, now, rows, &mut sink)
                .await;
            if let Err(e) = read {
                let _ = sink.send(Err(e)).await;
            }
            if let Err(e) = session.rollback().await {
                tracing::warn!("ending a page's read transaction failed: {e}");
            }
        });
        Self(receiver)
    }
}

#[async_trait]
impl RowSink for mpsc::Sender<DbResult<Bso>> {
    async fn take(&mut self, bso: Bso) -> bool {
        self.send(Ok(bso)).await.is_ok()
    }
}
