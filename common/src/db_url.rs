//! The database URL setting: the backend is chosen from its scheme at run
//! time, and the password never appears in logs.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which SQL backend a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    /// The error for a URL naming a backend this build leaves out.
    pub fn not_built(self, url: &DatabaseUrl) -> String {
        format!(
            "the {} backend is not available in this build (database URL {url})",
            self.name()
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

/// A database URL whose `Debug`/`Display`/serialised forms hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The full URL, password included, for the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The backend named by the scheme, or a sentence saying what is accepted.
    pub fn backend(&self) -> Result<Backend, String> {
        let scheme = self.0.split(':').next().unwrap_or("").to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(format!(
                "unsupported database URL {self}: use sqlite:…, postgres://… or mysql://…"
            )),
        }
    }

    /// The file of an SQLite URL (`sqlite:path`, `sqlite://path`, with or
    /// without `?options`); `None` for other backends and in-memory databases.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        let rest = self.0.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
    }

    /// The URL with every password hidden: the one in the user info
    /// (`user:***@host`) and any `…password=` query parameter.
    fn redacted(&self) -> String {
        let (base, query) = match self.0.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (self.0.as_str(), None),
        };
        let mut url = redact_userinfo(base);
        if let Some(query) = query {
            url.push('?');
            url.push_str(&redact_query(query));
        }
        url
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`.
fn redact_userinfo(base: &str) -> String {
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return base.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => base.to_owned(),
    }
}

/// `a=1&password=x` → `a=1&password=***` (also `sslpassword` and the like).
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(DatabaseUrl)
    }
}

/// Creates the folder an SQLite file lives in, so a fresh `./data` works.
pub fn create_parent_dir(file: &std::path::Path) -> Result<(), String> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the data folder {}: {e}", dir.display())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_come_from_the_scheme() {
        assert_eq!(
            DatabaseUrl::new("sqlite:data/x.db").backend(),
            Ok(Backend::Sqlite)
        );
        assert_eq!(
            DatabaseUrl::new("postgresql://h/db").backend(),
            Ok(Backend::Postgres)
        );
        assert_eq!(
            DatabaseUrl::new("mysql://h/db").backend(),
            Ok(Backend::MySql)
        );
        assert!(DatabaseUrl::new("redis://h")
            .backend()
            .unwrap_err()
            .contains("unsupported"));
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        let path = |u: &str| DatabaseUrl::new(u).sqlite_path();
        assert_eq!(path("sqlite:./data/x.db"), Some("./data/x.db".into()));
        assert_eq!(
            path("sqlite:///srv/x.db?mode=rwc"),
            Some("/srv/x.db".into())
        );
        assert_eq!(path("sqlite::memory:"), None);
        assert_eq!(path("postgres://h/db"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        let url = DatabaseUrl::new("postgres://sync:pw@db:5432/sync");
        assert_eq!(url.to_string(), "postgres://sync:***@db:5432/sync");
        assert!(!format!("{url:?}").contains("pw"));
        assert_eq!(url.expose(), "postgres://sync:pw@db:5432/sync");
    }

    #[test]
    fn passwords_in_the_query_are_redacted() {
        let url = DatabaseUrl::new("postgres://sync@db/sync?sslmode=require&password=s3cret");
        assert_eq!(
            url.to_string(),
            "postgres://sync@db/sync?sslmode=require&password=***"
        );
        let url = DatabaseUrl::new("mysql://u:p1@db/s?PASSWORD=p2&sslpassword=p3");
        let shown = format!("{url} {url:?} {}", serde_json::json!(url));
        for secret in ["p1", "p2", "p3"] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
    }
}
