//! Collection queries: filters, sort orders and the opaque offset token.
//!
//! Paging is keyset-based so every page costs O(limit): the token names the
//! last row returned by its sort key and id, and the next page starts
//! strictly after it. Ties on the sort key are broken by id, so rows with
//! equal timestamps or sortindexes are neither skipped nor repeated.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::bso::{Bso, BsoId};
use super::timestamp::SyncTimestamp;

/// Where BSOs without a sortindex go in `sort=index`: after every real one
/// (|sortindex| ≤ 999,999,999).
pub const NULL_SORTINDEX_KEY: i64 = -1_000_000_000;

/// Result order of a collection GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Last-modified, largest first (then id, descending). The default.
    #[default]
    Newest,
    /// Last-modified, smallest first (then id, ascending).
    Oldest,
    /// Sortindex, highest first (then id, descending); no sortindex last.
    Index,
}

impl Sort {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "newest" => Some(Sort::Newest),
            "oldest" => Some(Sort::Oldest),
            "index" => Some(Sort::Index),
            _ => None,
        }
    }

    fn tag(self) -> char {
        match self {
            Sort::Newest => 'n',
            Sort::Oldest => 'o',
            Sort::Index => 'i',
        }
    }

    /// The value this order sorts `bso` by.
    pub fn key_of(self, bso: &Bso) -> i64 {
        match self {
            Sort::Newest | Sort::Oldest => bso.modified.as_db(),
            Sort::Index => bso.sortindex.map_or(NULL_SORTINDEX_KEY, i64::from),
        }
    }

    /// True when pages run from high keys to low ones.
    pub fn descending(self) -> bool {
        !matches!(self, Sort::Oldest)
    }
}

/// The position after the last row of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offset {
    pub sort: Sort,
    pub key: i64,
    pub id: String,
}

impl Offset {
    /// The position just after `bso` in `sort` order.
    pub fn after(sort: Sort, bso: &Bso) -> Self {
        Self {
            sort,
            key: sort.key_of(bso),
            id: bso.id.clone(),
        }
    }

    /// The urlsafe-base64 token sent in `X-Weave-Next-Offset`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}:{}", self.sort.tag(), self.key, self.id))
    }

    /// Decodes a token; `None` if it is garbage or was made for another sort.
    pub fn decode(token: &str, sort: Sort) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(token.as_bytes()).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let mut parts = raw.splitn(3, ':');
        let tag = parts.next()?;
        let key = parts.next()?.parse().ok()?;
        let id = BsoId::parse(parts.next()?)?;
        (tag.len() == 1 && tag.starts_with(sort.tag())).then(|| Self {
            sort,
            key,
            id: id.as_str().to_owned(),
        })
    }
}

/// A validated collection GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BsoQuery {
    /// Only these ids, if not empty.
    pub ids: Vec<BsoId>,
    /// Only BSOs modified strictly after this.
    pub newer: Option<SyncTimestamp>,
    /// Only BSOs modified strictly before this.
    pub older: Option<SyncTimestamp>,
    pub sort: Sort,
    /// At most this many; the server caps it at `max_total_records`.
    pub limit: u64,
    pub offset: Option<Offset>,
    /// Full BSOs rather than ids.
    pub full: bool,
}

/// What a page's headers say, known before its body is read: how many
/// records it holds and the token for the next page, if there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageHead {
    pub records: u64,
    pub next_offset: Option<String>,
}

impl PageHead {
    /// Rows to count for a head: the page's and one more, which only
    /// signals that there is more.
    pub fn rows_to_count(query: &BsoQuery) -> u64 {
        query.limit.saturating_add(1)
    }

    /// The head of a page followed by `counted` rows (up to
    /// `rows_to_count`), given its last row, needed only when more follow.
    pub fn new(query: &BsoQuery, counted: u64, last: Option<&Bso>) -> Self {
        let records = counted.min(query.limit);
        let next_offset = last
            .filter(|_| counted > query.limit)
            .map(|last| Offset::after(query.sort, last).encode());
        Self {
            records,
            next_offset,
        }
    }

    /// Whether `new` needs the page's last row.
    pub fn needs_last(query: &BsoQuery, counted: u64) -> bool {
        counted > query.limit && query.limit > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_are_bound_to_their_sort() {
        let o = Offset {
            sort: Sort::Index,
            key: NULL_SORTINDEX_KEY,
            id: "id:with:colons".into(),
        };
        let token = o.encode();
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Offset::decode(&token, Sort::Index), Some(o));
        assert_eq!(Offset::decode(&token, Sort::Newest), None);
        assert_eq!(Offset::decode("garbage!", Sort::Index), None);
        assert_eq!(Offset::decode("12", Sort::Index), None);
    }

    fn row(id: &str, modified: i64) -> Bso {
        Bso {
            id: id.into(),
            modified: SyncTimestamp::from_db(modified),
            payload: String::new(),
            sortindex: None,
            expiry: SyncTimestamp::from_db(i64::MAX),
        }
    }

    fn head_of(limit: u64, rows: &[Bso]) -> PageHead {
        let query = BsoQuery {
            limit,
            ..BsoQuery::default()
        };
        let counted = (rows.len() as u64).min(PageHead::rows_to_count(&query));
        let last = PageHead::needs_last(&query, counted).then(|| &rows[limit as usize - 1]);
        PageHead::new(&query, counted, last)
    }

    #[test]
    fn a_next_offset_only_when_a_row_follows_the_page() {
        let rows: Vec<Bso> = (0..3).map(|i| row(&format!("r{i}"), 300 - i)).collect();
        assert_eq!(
            head_of(5, &rows),
            PageHead {
                records: 3,
                next_offset: None
            }
        );
        assert_eq!(
            head_of(3, &rows),
            PageHead {
                records: 3,
                next_offset: None
            }
        );
        let two = head_of(2, &rows);
        assert_eq!(two.records, 2);
        let offset = Offset::decode(&two.next_offset.unwrap(), Sort::Newest).unwrap();
        assert_eq!((offset.key, offset.id.as_str()), (299, "r1"));
        assert_eq!(
            head_of(0, &rows),
            PageHead {
                records: 0,
                next_offset: None
            }
        );
    }
}
