//! `X-If-Modified-Since` / `X-If-Unmodified-Since`, checked against the
//! target resource's last-modified time inside the operation's transaction.

use super::timestamp::SyncTimestamp;

/// The client's condition on the target resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// Reads only: 304 unless the resource changed after this time.
    IfModifiedSince(SyncTimestamp),
    /// 412 (nothing written) if the resource changed after this time.
    IfUnmodifiedSince(SyncTimestamp),
}

/// A precondition that did not hold, with the resource's last-modified time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmet {
    NotModified(SyncTimestamp),
    Modified(SyncTimestamp),
}

impl Precondition {
    /// Checks the condition against the resource's `last_modified`.
    pub fn check(self, last_modified: SyncTimestamp) -> Result<(), Unmet> {
        match self {
            Precondition::IfModifiedSince(t) if last_modified <= t => {
                Err(Unmet::NotModified(last_modified))
            }
            Precondition::IfUnmodifiedSince(t) if last_modified > t => {
                Err(Unmet::Modified(last_modified))
            }
            _ => Ok(()),
        }
    }

    /// Writes honour only `X-If-Unmodified-Since`.
    pub fn for_write(self) -> Self {
        match self {
            Precondition::IfModifiedSince(_) => Precondition::None,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: u64) -> SyncTimestamp {
        SyncTimestamp::from_millis(ms)
    }

    #[test]
    fn modified_since_is_304_when_not_newer() {
        let p = Precondition::IfModifiedSince(ts(100));
        assert_eq!(p.check(ts(100)), Err(Unmet::NotModified(ts(100))));
        assert_eq!(p.check(ts(110)), Ok(()));
    }

    #[test]
    fn unmodified_since_is_412_when_newer() {
        let p = Precondition::IfUnmodifiedSince(ts(100));
        assert_eq!(p.check(ts(100)), Ok(()));
        assert_eq!(p.check(ts(110)), Err(Unmet::Modified(ts(110))));
        // "0" means "only if it does not exist yet".
        assert_eq!(Precondition::IfUnmodifiedSince(ts(0)).check(ts(0)), Ok(()));
    }
}
