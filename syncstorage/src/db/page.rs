//! A collection GET's page: its head, known before its body, and its rows.
//! A small page is read whole and its connection released at once; a large
//! one is streamed from its read transaction only as fast as the client
//! takes it, so that a page holds a few records in memory whatever its
//! size (ADR 0010).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::Instrument;

use super::session::{PageRows, PageSummary, RowSink, Session};
use super::{DbError, DbResult, Uid};
use crate::model::bso::Bso;
use crate::model::paging::{BsoQuery, Offset, PageHead, Sort};
use crate::model::timestamp::SyncTimestamp;

/// Pages whose body would be at most about this size are read whole.
pub const WHOLE_PAGE_BYTES: u64 = 256 * 1024;
/// Rows read ahead of the client; each may be a record of the largest size.
const ROWS_AHEAD: usize = 1;
/// A streamed page is read in queries of at most this many bytes' worth of
/// its largest record: drivers read ahead (SQLite's thread 50 rows), and
/// this bounds what they hold.
const BYTES_PER_QUERY: u64 = 8 * 1024 * 1024;
/// How long a large page waits for a free stream before the client is
/// told to come back later (503).
const STREAM_WAIT: Duration = Duration::from_secs(10);
/// A streamed page holds its transaction for at most this long plus the
/// time its bytes take at `STREAM_MIN_BYTES_PER_SECOND`: a client that
/// reads a trickle cannot hold a connection for days.
const STREAM_GRACE: Duration = Duration::from_secs(60);
const STREAM_MIN_BYTES_PER_SECOND: u64 = 16 * 1024;

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
            rows: Rows::Whole(Vec::new().into_iter()),
        }
    }
}

/// A page's rows in order.
#[derive(Debug)]
pub enum Rows {
    /// Read already; the transaction is over.
    Whole(std::vec::IntoIter<Bso>),
    /// Fed by a task that holds the read transaction until it has read
    /// them all, the page is dropped, or its time is up.
    Streamed(mpsc::Receiver<DbResult<Bso>>),
}

impl Rows {
    /// The next row; `None` after the last, or after a failure's error.
    pub async fn next(&mut self) -> Option<DbResult<Bso>> {
        match self {
            Rows::Whole(rows) => rows.next().map(Ok),
            Rows::Streamed(rows) => rows.recv().await,
        }
    }

    pub fn is_streamed(&self) -> bool {
        matches!(self, Rows::Streamed(_))
    }
}

#[async_trait]
impl RowSink for Vec<Bso> {
    async fn take(&mut self, bso: Bso) -> bool {
        self.push(bso);
        true
    }
}

/// The streams that may be open at once: each holds a read connection, so
/// they get half the pool and the rest is left for everything else.
#[derive(Debug, Clone)]
pub(super) struct Streams(Arc<Semaphore>);

impl Streams {
    pub(super) fn new(connections: u32) -> Self {
        let slots = usize::try_from(connections / 2).unwrap_or(1).max(1);
        Self(Arc::new(Semaphore::new(slots)))
    }

    pub(super) fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }

    /// Waits for a free stream, for at most `STREAM_WAIT`.
    pub(super) async fn take(&self) -> DbResult<OwnedSemaphorePermit> {
        let busy = || DbError::Unavailable("every stream for large pages is in use".into());
        tokio::time::timeout(STREAM_WAIT, self.0.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())
    }
}

/// How large a page is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Size {
    pub(super) records: u64,
    /// The body's, roughly.
    pub(super) bytes: u64,
    /// Of the payloads read (none for a page of ids).
    pub(super) largest_payload: u64,
}

impl Size {
    /// A page of `records` rows whose `summary` counted one more at most.
    pub(super) fn of(query: &BsoQuery, records: u64, summary: PageSummary) -> Self {
        // What the body spends on each record besides its payload.
        let (bytes, largest_payload) = if query.full {
            (
                summary.payload_bytes + records * 128,
                summary.largest_payload,
            )
        } else {
            (records * 68, 0)
        };
        Self {
            records,
            bytes,
            largest_payload,
        }
    }
}

/// The rows of `query`'s page of `size`, from `session`'s snapshot, read
/// on a task of its own that ends the transaction whatever the reader does
/// and gives `stream` back after.
pub(super) fn stream(
    mut session: Box<dyn Session>,
    (uid, coll): (Uid, i64),
    (query, now): (BsoQuery, SyncTimestamp),
    size: Size,
    stream: OwnedSemaphorePermit,
) -> Rows {
    let (sender, receiver) = mpsc::channel(ROWS_AHEAD);
    let rate = Duration::from_secs(size.bytes / STREAM_MIN_BYTES_PER_SECOND);
    let mut feed = Feed {
        sender,
        deadline: Instant::now() + STREAM_GRACE + rate,
    };
    let per_query = (BYTES_PER_QUERY / size.largest_payload.max(1)).max(1);
    let count = (size.records, per_query);
    let task = async move {
        let read = feed_rows(&mut *session, (uid, coll), (query, now), count, &mut feed);
        if let Err(e) = read.await {
            let _ = feed.sender.send(Err(e)).await;
        }
        if let Err(e) = session.rollback().await {
            tracing::warn!("ending a page's read transaction failed: {e}");
        }
        drop(stream);
    };
    tokio::spawn(task.in_current_span());
    Rows::Streamed(receiver)
}

/// Feeds `count` rows of the page, `per_query` at a time, each query going
/// on from the last row of the one before; stops when the client does.
async fn feed_rows(
    session: &mut dyn Session,
    (uid, coll): (Uid, i64),
    (mut query, now): (BsoQuery, SyncTimestamp),
    (mut count, per_query): (u64, u64),
    feed: &mut Feed,
) -> DbResult<()> {
    while count > 0 {
        let rows = PageRows {
            count: count.min(per_query),
            payloads: query.full,
        };
        let mut part = Part {
            feed: &mut *feed,
            sort: query.sort,
            taken: 0,
            last: None,
            open: true,
        };
        session
            .stream_page(uid, coll, &query, now, rows, &mut part)
            .await?;
        if !part.open || part.taken == 0 {
            return Ok(());
        }
        count -= part.taken;
        query.offset = part.last;
    }
    Ok(())
}

/// One query's worth of a streamed page, noting where the next one starts.
struct Part<'f> {
    feed: &'f mut Feed,
    sort: Sort,
    taken: u64,
    last: Option<Offset>,
    /// False once the client is gone or out of time.
    open: bool,
}

#[async_trait]
impl RowSink for Part<'_> {
    async fn take(&mut self, bso: Bso) -> bool {
        let last = Offset::after(self.sort, &bso);
        self.open = self.feed.take(bso).await;
        self.taken += 1;
        self.last = Some(last);
        self.open
    }
}

/// A streamed page's channel and the time by which the client must have
/// taken the page's rows.
struct Feed {
    sender: mpsc::Sender<DbResult<Bso>>,
    deadline: Instant,
}

#[async_trait]
impl RowSink for Feed {
    async fn take(&mut self, bso: Bso) -> bool {
        match tokio::time::timeout_at(self.deadline, self.sender.send(Ok(bso))).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                tracing::warn!("a client took too long over a page; its download is cut off");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bso(id: &str) -> Bso {
        Bso {
            id: id.into(),
            modified: SyncTimestamp::ZERO,
            payload: String::new(),
            sortindex: None,
            expiry: SyncTimestamp::ZERO,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_stops_feeding_a_client_that_is_past_its_time() {
        let (sender, mut receiver) = mpsc::channel(ROWS_AHEAD);
        let mut feed = Feed {
            sender,
            deadline: Instant::now() + Duration::from_secs(5),
        };
        assert!(feed.take(bso("a")).await, "room in the channel");
        let started = Instant::now();
        assert!(!feed.take(bso("b")).await, "the client takes nothing");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(
            receiver.recv().await.map(|r| r.ok().map(|b| b.id)),
            Some(Some("a".into()))
        );
        drop(feed);
        assert!(receiver.recv().await.is_none(), "the page ends early");
    }
}
