//! The portable file of one user's data, as `export` writes it and
//! `import-user` reads it: JSON lines. The first line is the [`Header`]:
//! whose data it is (their FxA uid and keys) and every collection with its
//! timestamp and record count. Each further line is one [`Line`]: a record
//! (still encrypted by the client) and its collection, the records of a
//! collection together, collections in the header's order. The counts make
//! a cut-short file fail its import instead of restoring part of the data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sync_common::migration::Record;

use super::keys::ClientState;
use super::user::KeyState;

/// What the first line's `format` says.
pub const FORMAT: &str = "firefox-sync-user";
/// The only version so far.
pub const VERSION: u32 = 1;

/// The first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The account the data belongs to.
    pub fxa_uid: String,
    pub generation: i64,
    pub keys_changed_at: Option<i64>,
    /// The keys the records are encrypted with (hex).
    pub client_state: String,
    /// When the export was taken, in milliseconds since the epoch.
    pub exported_at: i64,
    /// The storage's timestamp, in milliseconds.
    pub modified: i64,
    pub collections: BTreeMap<String, Collection>,
}

/// A collection in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// Its timestamp, in milliseconds.
    pub modified: i64,
    /// How many record lines follow for it.
    pub records: u64,
}

/// A record line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub collection: String,
    #[serde(flatten)]
    pub record: Record,
}

impl Header {
    /// Parses and checks the first line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let header: Header = serde_json::from_str(line)
            .map_err(|e| format!("the first line is not a user export: {e}"))?;
        if header.format != FORMAT {
            return Err(format!("not a user export (format {:?})", header.format));
        }
        if header.version != VERSION {
            return Err(format!(
                "export version {} is not one this server reads (it reads {VERSION})",
                header.version
            ));
        }
        Ok(header)
    }

    /// The account's keys as the export saw them.
    pub fn keys(&self) -> KeyState {
        KeyState {
            generation: self.generation,
            keys_changed_at: self.keys_changed_at,
            client_state: ClientState::from_stored(self.client_state.to_ascii_lowercase()),
        }
    }
}

/// Checks that record lines come as the header announces them: one
/// collection after another, each whole.
#[derive(Debug)]
pub struct LineOrder<'a> {
    header: &'a Header,
    /// The collection being read, and its lines so far.
    current: Option<(String, u64)>,
    done: Vec<String>,
}

impl<'a> LineOrder<'a> {
    pub fn new(header: &'a Header) -> Self {
        Self {
            header,
            current: None,
            done: Vec::new(),
        }
    }

    /// Takes the next line's collection; says whether it starts a new one.
    pub fn next(&mut self, collection: &str) -> Result<bool, String> {
        if let Some((name, count)) = &mut self.current {
            if name == collection {
                *count += 1;
                return self.check_count(collection).map(|()| false);
            }
        }
        self.close_current()?;
        if !self.header.collections.contains_key(collection) {
            return Err(format!(
                "records of {collection}, which the header does not list"
            ));
        }
        if self.done.iter().any(|c| c == collection) {
            return Err(format!("the records of {collection} are not together"));
        }
        self.current = Some((collection.to_owned(), 1));
        self.check_count(collection).map(|()| true)
    }

    /// After the last line: every collection was whole.
    pub fn finish(mut self) -> Result<(), String> {
        self.close_current()?;
        for (name, collection) in &self.header.collections {
            if collection.records > 0 && !self.done.contains(name) {
                return Err(format!(
                    "the file ends before the records of {name}: it was cut short"
                ));
            }
        }
        Ok(())
    }

    fn check_count(&self, collection: &str) -> Result<(), String> {
        let expected = self.expected(collection);
        match &self.current {
            Some((_, count)) if *count > expected => Err(format!(
                "more records of {collection} than the header's {expected}"
            )),
            _ => Ok(()),
        }
    }

    fn close_current(&mut self) -> Result<(), String> {
        if let Some((name, count)) = self.current.take() {
            let expected = self.expected(&name);
            if count != expected {
                return Err(format!(
                    "{count} records of {name} where the header says {expected}: the file was cut short"
                ));
            }
            self.done.push(name);
        }
        Ok(())
    }

    fn expected(&self, collection: &str) -> u64 {
        self.header
            .collections
            .get(collection)
            .map_or(0, |c| c.records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(collections: &[(&str, u64)]) -> Header {
        Header {
            format: FORMAT.into(),
            version: VERSION,
            fxa_uid: "abc".into(),
            generation: 1,
            keys_changed_at: Some(1),
            client_state: "AA".into(),
            exported_at: 0,
            modified: 10,
            collections: collections
                .iter()
                .map(|(name, records)| {
                    let c = Collection {
                        modified: 10,
                        records: *records,
                    };
                    ((*name).to_owned(), c)
                })
                .collect(),
        }
    }

    fn check(header: &Header, lines: &[&str]) -> Result<(), String> {
        let mut order = LineOrder::new(header);
        for line in lines {
            order.next(line)?;
        }
        order.finish()
    }

    #[test]
    fn whole_collections_in_turn_pass() {
        let h = header(&[("bookmarks", 2), ("meta", 1), ("tabs", 0)]);
        assert_eq!(check(&h, &["bookmarks", "bookmarks", "meta"]), Ok(()));
        assert_eq!(h.keys().client_state.as_hex(), "aa");
    }

    #[test]
    fn cut_short_scattered_or_unlisted_records_fail() {
        let h = header(&[("bookmarks", 2), ("meta", 1)]);
        let short = check(&h, &["bookmarks", "bookmarks"]).unwrap_err();
        assert!(short.contains("cut short"), "{short}");
        let half = check(&h, &["bookmarks", "meta"]).unwrap_err();
        assert!(half.contains("1 records of bookmarks"), "{half}");
        let scattered = check(&h, &["meta", "bookmarks", "bookmarks", "meta"]).unwrap_err();
        assert!(scattered.contains("not together"), "{scattered}");
        let extra = check(&h, &["bookmarks", "bookmarks", "bookmarks"]).unwrap_err();
        assert!(extra.contains("more records"), "{extra}");
        let unlisted = check(&h, &["history"]).unwrap_err();
        assert!(unlisted.contains("does not list"), "{unlisted}");
    }

    #[test]
    fn foreign_files_and_other_versions_are_refused() {
        assert!(Header::parse("{\"a\":1}").is_err());
        let mut h = header(&[]);
        h.version = 2;
        let text = serde_json::to_string(&h).unwrap();
        assert!(Header::parse(&text).unwrap_err().contains("version 2"));
        h.version = VERSION;
        h.format = "other".into();
        let text = serde_json::to_string(&h).unwrap();
        assert!(Header::parse(&text)
            .unwrap_err()
            .contains("not a user export"));
    }
}
