//! The database a test server runs on, chosen by `SYNC_TEST_BACKEND`
//! (`sqlite`, the default, `postgres` or `mysql`). Every test gets a fresh
//! database of its own, dropped afterwards, so runs never interfere.
//!
//! The servers are found at `SYNC_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `SYNC_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306/test`). An unreachable server fails
//! the test loudly: a backend that was asked for is never skipped.

use std::time::Duration;

use sqlx::{Connection, Executor};

/// Which backend the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
    MySql,
}

impl TestBackend {
    /// From `SYNC_TEST_BACKEND`; an unknown value fails the test.
    pub fn from_env() -> Self {
        match std::env::var("SYNC_TEST_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => TestBackend::Sqlite,
            Ok("postgres") | Ok("postgresql") => TestBackend::Postgres,
            Ok("mysql") | Ok("mariadb") => TestBackend::MySql,
            Ok(other) => panic!("SYNC_TEST_BACKEND={other}: use sqlite, postgres or mysql"),
        }
    }

    /// The name heartbeats and logs use for it.
    pub fn name(self) -> &'static str {
        match self {
            TestBackend::Sqlite => "sqlite",
            TestBackend::Postgres => "postgres",
            TestBackend::MySql => "mysql",
        }
    }

    /// The server URL that fresh databases are created through.
    pub fn admin_url(self) -> Option<String> {
        let (var, default) = match self {
            TestBackend::Sqlite => return None,
            TestBackend::Postgres => (
                "SYNC_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ),
            TestBackend::MySql => ("SYNC_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
        };
        Some(std::env::var(var).unwrap_or_else(|_| default.to_owned()))
    }

    /// The database server's `host:port` (none for SQLite), for a proxy.
    pub fn server_address(self) -> Option<String> {
        let url = self.admin_url()?;
        let rest = &url[url.find("://")? + 3..];
        let authority = rest.split(['/', '?']).next()?;
        Some(authority.rsplit('@').next()?.to_owned())
    }
}

/// A fresh, empty database for one test; dropped with this value.
pub struct TestDb {
    pub backend: TestBackend,
    /// The URL to configure a server with.
    pub url: String,
    name: String,
    admin_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh database on the backend `SYNC_TEST_BACKEND` names; `label`
    /// shows up in its name, for whoever looks at the server.
    pub async fn fresh(label: &str) -> Self {
        Self::fresh_on(TestBackend::from_env(), label).await
    }

    pub async fn fresh_on(backend: TestBackend, label: &str) -> Self {
        let name = format!(
            "synctest_{label}_{}",
            hex::encode(rand::random::<[u8; 6]>())
        );
        let Some(admin_url) = backend.admin_url() else {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite:{}", dir.path().join(format!("{name}.db")).display());
            return Self {
                backend,
                url,
                name,
                admin_url: None,
                _dir: Some(dir),
            };
        };
        run_admin(&admin_url, &format!("CREATE DATABASE {name}")).await;
        let url = with_database(&admin_url, &name);
        Self {
            backend,
            url,
            name,
            admin_url: Some(admin_url),
            _dir: None,
        }
    }

    /// Cuts the database off (`true`: its sessions ended, new ones
    /// refused) or brings it back, as an outage of this one database would;
    /// the server and every other database stay up. PostgreSQL only.
    pub async fn cut_off(&self, off: bool) {
        assert_eq!(
            self.backend,
            TestBackend::Postgres,
            "only PostgreSQL cuts one database off"
        );
        let admin_url = self.admin_url.as_deref().unwrap();
        let name = &self.name;
        run_admin(
            admin_url,
            &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {}", !off),
        )
        .await;
        if off {
            let sessions = format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            );
            run_admin(admin_url, &sessions).await;
        }
    }

    /// The SQLite file, for tests that look at it directly.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        self.url.strip_prefix("sqlite:").map(Into::into)
    }
}

impl TestDb {
    /// Runs a `SELECT COUNT(*) …` (or any one-BIGINT query) on the database.
    pub async fn count(&self, sql: &str) -> i64 {
        match self.backend {
            TestBackend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            TestBackend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            TestBackend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Another process taking a storage user's write lock, as a concurrent
    /// writer would (SQLite: the database's write lock), until released.
    pub async fn hold_user_lock(&self, uid: i64) -> HeldLock {
        match self.backend {
            TestBackend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                conn.execute("BEGIN IMMEDIATE").await.unwrap();
                HeldLock::Sqlite(conn)
            }
            TestBackend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                conn.execute("BEGIN").await.unwrap();
                let lock = format!(
                    "INSERT INTO user_timestamps (userid, modified) VALUES ({uid}, 0) \
                     ON CONFLICT (userid) DO NOTHING; \
                     SELECT modified FROM user_timestamps WHERE userid = {uid} FOR UPDATE"
                );
                conn.execute(lock.as_str()).await.unwrap();
                HeldLock::Postgres(conn)
            }
            TestBackend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                conn.execute("BEGIN").await.unwrap();
                let lock = format!(
                    "INSERT INTO user_timestamps (userid, modified) VALUES ({uid}, 0) \
                     ON DUPLICATE KEY UPDATE modified = modified"
                );
                conn.execute(lock.as_str()).await.unwrap();
                HeldLock::MySql(conn)
            }
        }
    }
}

/// A connection holding a lock inside an open transaction.
pub enum HeldLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
}

impl HeldLock {
    /// Rolls the transaction back, releasing the lock.
    pub async fn release(self) {
        match self {
            HeldLock::Sqlite(mut c) => c.execute("ROLLBACK").await.map(|_| ()),
            HeldLock::Postgres(mut c) => c.execute("ROLLBACK").await.map(|_| ()),
            HeldLock::MySql(mut c) => c.execute("ROLLBACK").await.map(|_| ()),
        }
        .unwrap();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(admin_url) = self.admin_url.take() else {
            return;
        };
        let (backend, name) = (self.backend, self.name.clone());
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let dropped = drop_database(backend, &admin_url, &name);
                match tokio::time::timeout(Duration::from_secs(20), dropped).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("test database {name} was not dropped: {e}"),
                    Err(_) => eprintln!("test database {name} was not dropped in 20 s"),
                }
            });
        })
        .join();
    }
}

/// Runs one statement on the admin database, failing the test loudly when
/// the server cannot be reached.
pub async fn run_admin(admin_url: &str, sql: &str) {
    if let Err(e) = try_admin(admin_url, sql).await {
        panic!(
            "the test database server at {admin_url} failed `{sql}`: {e}\n\
             (SYNC_TEST_BACKEND asks for it; is it running?)"
        );
    }
}

/// Ends the sessions still on the database (servers of a finished test may
/// hold idle connections, or a transaction), then drops it.
async fn drop_database(
    backend: TestBackend,
    admin_url: &str,
    name: &str,
) -> Result<(), sqlx::Error> {
    if backend == TestBackend::MySql {
        let mut conn = sqlx::MySqlConnection::connect(admin_url).await?;
        let sessions: Vec<u64> =
            sqlx::query_scalar("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ?")
                .bind(name)
                .fetch_all(&mut conn)
                .await?;
        for id in sessions {
            let _ = conn.execute(format!("KILL {id}").as_str()).await;
        }
        conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await?;
        conn.close().await
    } else {
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut conn)
        .await?;
        conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await?;
        conn.close().await
    }
}

async fn try_admin(admin_url: &str, sql: &str) -> Result<(), sqlx::Error> {
    if admin_url.starts_with("mysql:") || admin_url.starts_with("mariadb:") {
        let mut conn = sqlx::MySqlConnection::connect(admin_url).await?;
        conn.execute(sql).await?;
        conn.close().await
    } else {
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        conn.execute(sql).await?;
        conn.close().await
    }
}

/// `admin_url` with its database path replaced by `name`.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn urls_get_the_fresh_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("mysql://root@h:3306/test?ssl-mode=disabled", "x"),
            "mysql://root@h:3306/x?ssl-mode=disabled"
        );
        assert_eq!(with_database("mysql://root@h", "x"), "mysql://root@h/x");
    }
}
