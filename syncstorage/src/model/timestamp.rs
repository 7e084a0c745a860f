//! Server timestamps: milliseconds since the epoch, written as decimal
//! seconds with exactly two places (10 ms resolution).

use serde::{Serialize, Serializer};

/// A point in time as the protocol sees it. Server-made values are multiples
/// of 10 ms; values parsed from clients keep whatever precision they had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncTimestamp(u64);

impl SyncTimestamp {
    pub const ZERO: SyncTimestamp = SyncTimestamp(0);

    /// The current server time, truncated to 10 ms.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self::truncated(ms)
    }

    /// `ms` rounded down to the protocol's 10 ms resolution.
    pub fn truncated(ms: u64) -> Self {
        Self(ms - ms % 10)
    }

    /// A stored value, taken as is.
    pub fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Database columns are signed; negative values never occur.
    pub fn from_db(ms: i64) -> Self {
        Self(u64::try_from(ms).unwrap_or(0))
    }

    pub fn as_millis(self) -> u64 {
        self.0
    }

    pub fn as_db(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// Whole seconds, as tokens and HAWK count time.
    pub fn as_seconds(self) -> u64 {
        self.0 / 1000
    }

    /// `self` plus `secs` seconds, saturating.
    pub fn plus_seconds(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// The timestamp of the next write for a user whose last write was at
    /// `last`: the current time, but always at least 10 ms after `last`, so
    /// per-user timestamps strictly increase even if the clock steps back.
    pub fn next_write(now: Self, last: Self) -> Self {
        let now = Self::truncated(now.0);
        let after_last = Self::truncated(last.0).0.saturating_add(10);
        Self(now.0.max(after_last))
    }

    /// Parses decimal seconds (`"1388635807.41"`) as sent in headers and
    /// query parameters. Negative, non-finite or non-numeric values fail.
    pub fn parse_seconds(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() || value.starts_with('-') || value.starts_with('+') {
            return None;
        }
        let seconds: f64 = value.parse().ok()?;
        if !seconds.is_finite() || !(0.0..=1e15).contains(&seconds) {
            return None;
        }
        // Rounding to whole ms undoes binary noise (0.29 * 1000 = 289.999…).
        Some(Self((seconds * 1000.0).round() as u64))
    }
}

impl std::fmt::Display for SyncTimestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 1000, (self.0 % 1000) / 10)
    }
}

impl Serialize for SyncTimestamp {
    /// A JSON number with exactly two decimals, e.g. `1591142320.30`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(self.to_string())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_two_decimals() {
        assert_eq!(SyncTimestamp::ZERO.to_string(), "0.00");
        assert_eq!(
            SyncTimestamp::from_millis(1_591_142_320_300).to_string(),
            "1591142320.30"
        );
        assert_eq!(SyncTimestamp::from_millis(5).to_string(), "0.00");
        assert_eq!(
            serde_json::to_string(&vec![SyncTimestamp::from_millis(1_010)]).unwrap(),
            "[1.01]"
        );
    }

    #[test]
    fn parses_decimal_seconds() {
        assert_eq!(
            SyncTimestamp::parse_seconds("1.29"),
            Some(SyncTimestamp(1_290))
        );
        assert_eq!(
            SyncTimestamp::parse_seconds("12"),
            Some(SyncTimestamp(12_000))
        );
        assert_eq!(SyncTimestamp::parse_seconds("0"), Some(SyncTimestamp(0)));
        for bad in ["", "-1", "abc", "NaN", "inf", "1e400", "+1"] {
            assert_eq!(SyncTimestamp::parse_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn next_write_is_strictly_after_the_last_even_if_the_clock_steps_back() {
        let last = SyncTimestamp(10_000);
        assert_eq!(
            SyncTimestamp::next_write(SyncTimestamp(20_005), last),
            SyncTimestamp(20_000)
        );
        assert_eq!(
            SyncTimestamp::next_write(SyncTimestamp(10_000), last),
            SyncTimestamp(10_010)
        );
        assert_eq!(
            SyncTimestamp::next_write(SyncTimestamp(5_000), last),
            SyncTimestamp(10_010)
        );
    }
}
