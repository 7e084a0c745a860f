//! Query parameters of collection requests, validated into model types.

use super::extract::QueryPairs;
use crate::error::{ApiError, ApiResult, WeaveCode};
use crate::model::bso::BsoId;
use crate::model::limits::Limits;
use crate::model::paging::{BsoQuery, Offset, Sort};
use crate::model::timestamp::SyncTimestamp;

fn bad() -> ApiError {
    ApiError::BadRequest(WeaveCode::Unknown)
}

/// `ids=a,b,c`: at most `max_ids`, each a valid BSO id.
pub fn ids(query: &QueryPairs, limits: &Limits) -> ApiResult<Option<Vec<BsoId>>> {
    let Some(raw) = query.get("ids") else {
        return Ok(None);
    };
    let ids: Vec<BsoId> = raw
        .split(',')
        .filter(|id| !id.is_empty())
        .map(|id| BsoId::parse(id).ok_or(ApiError::BadRequest(WeaveCode::InvalidBso)))
        .collect::<ApiResult<_>>()?;
    if ids.len() as u64 > limits.max_ids {
        return Err(bad());
    }
    Ok(Some(ids))
}

/// The filters, order and page of a collection GET. `limit` is capped at
/// `max_total_records`, which is also the page size when none is given.
pub fn bso_query(query: &QueryPairs, limits: &Limits) -> ApiResult<BsoQuery> {
    let timestamp = |name| -> ApiResult<Option<SyncTimestamp>> {
        query
            .get(name)
            .map(|v| SyncTimestamp::parse_seconds(v).ok_or_else(bad))
            .transpose()
    };
    let sort = match query.get("sort") {
        None | Some("") => Sort::default(),
        Some(s) => Sort::parse(s).ok_or_else(bad)?,
    };
    let limit = match query.get("limit") {
        None | Some("") => limits.max_total_records,
        Some(l) => l
            .parse::<u64>()
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(bad)?
            .min(limits.max_total_records),
    };
    let offset = match query.get("offset") {
        None | Some("") => None,
        Some(token) => Some(Offset::decode(token, sort).ok_or_else(bad)?),
    };
    Ok(BsoQuery {
        ids: ids(query, limits)?.unwrap_or_default(),
        newer: timestamp("newer")?,
        older: timestamp("older")?,
        sort,
        limit,
        offset,
        full: query.get("full").is_some(),
    })
}

/// How a POST takes part in a multi-request batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchMode {
    /// A plain POST (also `batch=true&commit=true`).
    None,
    /// `batch=true`: open a batch.
    Create,
    /// `batch=<id>`: add to it.
    Append(String),
    /// `batch=<id>&commit=true`: add to it and commit.
    Commit(String),
}

/// `batch` and `commit`. `commit` must be `true` and needs `batch`; batch
/// ids are what we hand out (32 hex digits), anything else is a 400.
pub fn batch_mode(query: &QueryPairs) -> ApiResult<BatchMode> {
    let commit = match query.get("commit") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(_) => return Err(bad()),
    };
    let mode = match query.get("batch") {
        None if commit => return Err(bad()),
        None => BatchMode::None,
        Some(v) if v.is_empty() || v.eq_ignore_ascii_case("true") => {
            if commit {
                BatchMode::None
            } else {
                BatchMode::Create
            }
        }
        Some(id) if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
            if commit {
                BatchMode::Commit(id.to_owned())
            } else {
                BatchMode::Append(id.to_owned())
            }
        }
        Some(_) => return Err(bad()),
    };
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> QueryPairs {
        QueryPairs::from_pairs(serde_urlencoded::from_str(q).unwrap())
    }

    #[test]
    fn batch_modes() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(batch_mode(&pairs("")).unwrap(), BatchMode::None);
        assert_eq!(batch_mode(&pairs("batch=true")).unwrap(), BatchMode::Create);
        assert_eq!(
            batch_mode(&pairs("batch=TRUE&commit=true")).unwrap(),
            BatchMode::None
        );
        assert_eq!(
            batch_mode(&pairs(&format!("batch={id}"))).unwrap(),
            BatchMode::Append(id.into())
        );
        assert_eq!(
            batch_mode(&pairs(&format!("batch={id}&commit=true"))).unwrap(),
            BatchMode::Commit(id.into())
        );
        assert!(batch_mode(&pairs("commit=true")).is_err());
        assert!(batch_mode(&pairs("batch=xyz")).is_err());
        assert!(batch_mode(&pairs(&format!("batch={id}&commit=yes"))).is_err());
    }

    #[test]
    fn collection_queries() {
        let limits = Limits::default();
        let q = bso_query(
            &pairs("newer=1.5&full=&sort=index&limit=5&ids=a,b"),
            &limits,
        )
        .unwrap();
        assert_eq!(q.newer, SyncTimestamp::parse_seconds("1.5"));
        assert!(q.full);
        assert_eq!(q.sort, Sort::Index);
        assert_eq!(q.limit, 5);
        assert_eq!(q.ids.len(), 2);
        assert_eq!(bso_query(&pairs(""), &limits).unwrap().limit, 10_000);
        for bad in [
            "newer=x",
            "older=-1",
            "sort=random",
            "limit=0",
            "limit=x",
            "offset=zz",
        ] {
            assert!(bso_query(&pairs(bad), &limits).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        assert!(bso_query(&pairs(&format!("ids={}", many.join(","))), &limits).is_err());
    }
}
