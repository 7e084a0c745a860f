//! A page of records as a response body, JSON (`[r1,r2]`) or newlines
//! (`r1\nr2\n`), written record by record. A page read whole goes out
//! whole, with a `Content-Length`; a streamed one goes out in chunks as its
//! rows arrive from the database.

use axum::body::Body;
use bytes::Bytes;
use futures_util::{stream, Stream, StreamExt};

use super::extract::ReplyFormat;
use crate::db::{DbError, Rows};
use crate::error::{ApiError, ApiResult};
use crate::metrics;
use crate::model::bso::Bso;

/// A streamed body's chunks: about this size, or one record if larger.
const CHUNK_BYTES: usize = 64 * 1024;

/// The body of a page of `count` records: full records, or only their ids.
/// What is sent is counted in `read`.
pub async fn body(
    format: ReplyFormat,
    full: bool,
    count: u64,
    rows: Rows,
    read: metrics::Read,
) -> ApiResult<Body> {
    let mut records = Records {
        format,
        full,
        rows,
        count,
        left: count,
        read,
    };
    let whole = !records.rows.is_streamed();
    let mut first = Vec::new();
    // What fails before anything is sent still gets an error status.
    let up_to = if whole { usize::MAX } else { CHUNK_BYTES };
    if records.fill(&mut first, up_to).await? {
        return Ok(Body::from(first));
    }
    Ok(Body::from_stream(records.rest_after(first)))
}

/// What is left of a page to write.
struct Records {
    format: ReplyFormat,
    full: bool,
    rows: Rows,
    count: u64,
    left: u64,
    read: metrics::Read,
}

impl Records {
    /// Appends records to `out` until it holds `up_to` bytes or the page
    /// ends; true when it ended (and `out` ends the body).
    async fn fill(&mut self, out: &mut Vec<u8>, up_to: usize) -> ApiResult<bool> {
        while self.left > 0 && out.len() < up_to {
            let bso = self
                .rows
                .next()
                .await
                .unwrap_or_else(|| Err(ended_early()))?;
            self.write(out, &bso)?;
            self.read.add(&bso);
            self.left -= 1;
        }
        let ended = self.left == 0;
        if ended {
            self.end(out);
        }
        Ok(ended)
    }

    fn write(&mut self, out: &mut Vec<u8>, bso: &Bso) -> ApiResult<()> {
        if self.format == ReplyFormat::Json {
            out.push(if self.left == self.count { b'[' } else { b',' });
        }
        // Room for the escapes of a typical payload (quotes), so that a large
        // record is not copied again and again as its buffer doubles.
        out.reserve(bso.payload.len() + bso.payload.len() / 8 + bso.id.len() + 64);
        // serde_json escapes newlines inside strings: one record, one line.
        let written = if self.full {
            serde_json::to_writer(&mut *out, bso)
        } else {
            serde_json::to_writer(&mut *out, &bso.id)
        };
        written.map_err(|e| ApiError::Internal(Box::new(e)))?;
        if self.format == ReplyFormat::Newlines {
            out.push(b'\n');
        }
        Ok(())
    }

    fn end(&self, out: &mut Vec<u8>) {
        if self.format == ReplyFormat::Json {
            out.extend_from_slice(if self.count == 0 { b"[]" } else { b"]" });
        }
    }

    /// `first`, then the rest of the page chunk by chunk, as the client
    /// takes them. A failure now can only cut the body short (hyper then
    /// drops the connection, so the client never sees a complete page).
    fn rest_after(self, first: Vec<u8>) -> impl Stream<Item = ApiResult<Bytes>> {
        let rest = stream::unfold(Some(self), |records| async move {
            let mut records = records?;
            let mut chunk = Vec::with_capacity(CHUNK_BYTES);
            match records.fill(&mut chunk, CHUNK_BYTES).await {
                Ok(ended) => Some((Ok(chunk.into()), (!ended).then_some(records))),
                Err(e) => {
                    tracing::error!("a page could not be read to its end: {e}");
                    Some((Err(e), None))
                }
            }
        });
        stream::once(async { Ok(first.into()) }).chain(rest)
    }
}

fn ended_early() -> DbError {
    DbError::Other("the page's rows ended before its head said".into())
}
