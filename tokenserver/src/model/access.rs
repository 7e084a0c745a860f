//! Who may sync (ADR 0014): an allowlist of accounts, as pure rules. A
//! token request names only the FxA uid; an email is known only when FxA's
//! profile server tells it for the request's own OAuth token.

use std::fmt;

/// One allowlist entry, normalised (lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entry {
    /// An FxA uid: 32 hex digits.
    Uid(String),
    /// One email address.
    Email(String),
    /// Every address at a domain, written `@example.com`.
    Domain(String),
}

impl Entry {
    /// Parses `0123…cdef` (an FxA uid), `alice@example.com` or `@example.com`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        // Stored in a VARCHAR(255): never longer.
        if text.len() > 255 {
            return Err(format!("{text:.40}… is longer than 255 characters"));
        }
        let bad = || {
            format!(
                "{text:?} is not an account: give an FxA uid (32 hex digits), \
                 an email address or @domain"
            )
        };
        if let Some(domain) = text.strip_prefix('@') {
            return if plausible_domain(domain) {
                Ok(Self::Domain(domain.to_owned()))
            } else {
                Err(bad())
            };
        }
        if let Some((local, domain)) = text.split_once('@') {
            return if !local.is_empty() && plausible_domain(domain) {
                Ok(Self::Email(text))
            } else {
                Err(bad())
            };
        }
        if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Self::Uid(text));
        }
        Err(bad())
    }

    /// Whether matching it needs the account's email.
    pub fn needs_email(&self) -> bool {
        !matches!(self, Self::Uid(_))
    }

    fn matches(&self, fxa_uid: &str, email: Option<&str>) -> bool {
        match (self, email) {
            (Self::Uid(uid), _) => uid.eq_ignore_ascii_case(fxa_uid),
            (Self::Email(wanted), Some(email)) => wanted.eq_ignore_ascii_case(email),
            (Self::Domain(domain), Some(email)) => email
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
            (_, None) => false,
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uid(v) | Self::Email(v) => f.write_str(v),
            Self::Domain(d) => write!(f, "@{d}"),
        }
    }
}

fn plausible_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && !domain.contains(['@', ' ', '/'])
        && domain.split('.').all(|label| !label.is_empty())
}

/// The accounts a server admits: everyone when the list is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<Entry>,
}

/// What the list says of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admitted,
    /// Only an email or domain entry could admit it: ask for the email.
    NeedsEmail,
    Refused,
}

impl Allowlist {
    pub fn new(mut entries: Vec<Entry>) -> Self {
        entries.sort();
        entries.dedup();
        Self { entries }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    /// The verdict for `fxa_uid`, whose email is `email` if known.
    pub fn verdict(&self, fxa_uid: &str, email: Option<&str>) -> Verdict {
        if self.is_open() || self.entries.iter().any(|e| e.matches(fxa_uid, email)) {
            return Verdict::Admitted;
        }
        if email.is_none() && self.entries.iter().any(Entry::needs_email) {
            return Verdict::NeedsEmail;
        }
        Verdict::Refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0123456789abcdef0123456789abcdef";

    fn list(entries: &[&str]) -> Allowlist {
        Allowlist::new(entries.iter().map(|e| Entry::parse(e).unwrap()).collect())
    }

    #[test]
    fn entries_parse_and_normalise() {
        assert_eq!(
            Entry::parse(" Alice@Example.COM ").unwrap(),
            Entry::Email("alice@example.com".into())
        );
        assert_eq!(
            Entry::parse("@Family.example").unwrap(),
            Entry::Domain("family.example".into())
        );
        assert_eq!(
            Entry::parse(&UID.to_uppercase()).unwrap(),
            Entry::Uid(UID.into())
        );
        for bad in [
            "",
            "alice",
            "@",
            "a@",
            "@a..b",
            "a@b@c",
            "0123",
            "x@exa mple.com",
        ] {
            assert!(Entry::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(Entry::parse("@a.b").unwrap().to_string(), "@a.b");
        assert!(Entry::parse(&format!("@{}.example", "a".repeat(250))).is_err());
        assert!(Entry::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn an_empty_list_admits_everyone() {
        assert_eq!(Allowlist::default().verdict(UID, None), Verdict::Admitted);
    }

    #[test]
    fn uids_match_without_an_email() {
        let allow = list(&[UID, "bob@example.com"]);
        assert_eq!(allow.verdict(&UID.to_uppercase(), None), Verdict::Admitted);
        assert_eq!(
            allow.verdict("ffffffffffffffffffffffffffffffff", None),
            Verdict::NeedsEmail
        );
        assert_eq!(list(&[UID]).verdict("ff", None), Verdict::Refused);
    }

    #[test]
    fn emails_and_domains_match_a_known_email() {
        let allow = list(&["bob@example.com", "@family.example"]);
        let other = "ffffffffffffffffffffffffffffffff";
        assert_eq!(
            allow.verdict(other, Some("BOB@example.com")),
            Verdict::Admitted
        );
        assert_eq!(
            allow.verdict(other, Some("carol@family.example")),
            Verdict::Admitted
        );
        assert_eq!(
            allow.verdict(other, Some("carol@notfamily.example")),
            Verdict::Refused
        );
        assert_eq!(
            allow.verdict(other, Some("bob@example.com.evil")),
            Verdict::Refused
        );
        // A domain entry is that domain only, not its subdomains.
        assert_eq!(
            allow.verdict(other, Some("carol@sub.family.example")),
            Verdict::Refused
        );
    }
}
