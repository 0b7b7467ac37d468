//! The data layer: one diesel code path over SQLite and PostgreSQL.
//!
//! Backend-specific code is confined to this file: connection setup (SQLite
//! pragmas) and running the matching embedded migration folder.

pub mod models;
pub mod schema;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("migration failed: {0}")]
    Migration(String),
}

/// Which backend a URL names; the only place that decides.
#[derive(Debug, Clone)]
pub enum DbUrl {
    Sqlite(String),
    Postgres(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl, DbError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(DbUrl::Sqlite(path.to_string()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DbUrl::Postgres(url.to_string()))
        } else {
            Err(DbError::Connect(format!(
                "unsupported database URL {url:?}"
            )))
        }
    }
}

/// r2d2 manager that builds the right variant and prepares each SQLite connection.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DbUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.url {
            DbUrl::Sqlite(path) => {
                let mut c =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers proceed while a publication commits; the busy
                // timeout turns writer contention into waiting instead of errors.
                // busy_timeout first: switching to WAL itself needs the lock.
                // synchronous = FULL syncs the WAL at every commit: with NORMAL, an
                // OS crash or power loss could roll back an upload or promotion
                // that was already acknowledged (docs/security.md, Durability).
                c.batch_execute(
                    "PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(c))
            }
            DbUrl::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Pg)
                .map_err(r2d2::Error::ConnectionError),
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    /// A connection given back while a panic unwinds, or with a transaction
    /// left open or broken, is dropped, never handed to the next request
    /// (panics in request work are caught, so this can happen).
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        use diesel::connection::TransactionManager;
        std::thread::panicking()
            || <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

/// Opens the pool and brings the schema up to date.
pub fn connect(url: &str) -> Result<Pool, DbError> {
    let url = DbUrl::parse(url)?;
    if let DbUrl::Sqlite(path) = &url {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| DbError::Connect(format!("{}: {e}", parent.display())))?;
            }
        }
    }
    let max = match url {
        DbUrl::Sqlite(_) => 8,
        DbUrl::Postgres(_) => 16,
    };
    // A PostgreSQL connection can die with its server; a SQLite file cannot,
    // so checking it with a query on every checkout is pure cost.
    let check = matches!(url, DbUrl::Postgres(_));
    // Errors name the file; never a PostgreSQL URL, which may carry a password.
    let what = match &url {
        DbUrl::Sqlite(path) => format!("SQLite database {path}"),
        DbUrl::Postgres(_) => "PostgreSQL".to_string(),
    };
    let manager = Manager { url };
    let pool = r2d2::Pool::builder()
        .max_size(max)
        .test_on_check_out(check)
        .connection_timeout(std::time::Duration::from_secs(30))
        .build(manager)
        .map_err(|e| DbError::Connect(format!("{what}: {e}")))?;
    // Instances starting together must not apply the same migration twice.
    let _startup = lock_startup(&pool)?;
    let mut conn = pool.get()?;
    run_migrations(&mut conn)?;
    Ok(pool)
}

/// A PostgreSQL session-level advisory lock, held by one pooled connection
/// until dropped. If this process dies, the server ends the session and the
/// lock with it, so a crashed instance never blocks the others. SQLite serves
/// one instance, whose in-process locks suffice: there it holds nothing.
pub struct SessionLock {
    conn: Option<PooledConn>,
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        use diesel::RunQueryDsl;
        if let Some(conn) = self.conn.as_mut() {
            if let DbConnection::Pg(c) = &mut **conn {
                if let Err(e) = diesel::sql_query("SELECT pg_advisory_unlock_all()").execute(c) {
                    tracing::error!(error = %e, "cannot release advisory locks");
                }
            }
        }
    }
}

/// Lock classes, the first half of each two-part advisory lock key (the
/// single-key space is the event log's, in `lock_event_log`).
const STARTUP_LOCK: i32 = 70310002;
const CHANNEL_LOCK: i32 = 70310003;

fn session_lock(pool: &Pool, keys: &[(i32, i32)]) -> Result<SessionLock, DbError> {
    use diesel::sql_types::Integer;
    use diesel::RunQueryDsl;
    let conn = pool.get()?;
    if !matches!(&*conn, DbConnection::Pg(_)) {
        return Ok(SessionLock { conn: None });
    }
    // Owned by the guard before the first lock, so a failure half way
    // releases what was taken.
    let mut lock = SessionLock { conn: Some(conn) };
    if let Some(DbConnection::Pg(c)) = lock.conn.as_deref_mut() {
        for &(class, key) in keys {
            diesel::sql_query("SELECT pg_advisory_lock($1, $2)")
                .bind::<Integer, _>(class)
                .bind::<Integer, _>(key)
                .execute(c)?;
        }
    }
    Ok(lock)
}

/// Held while an instance starts (migrations, channel rows, configured
/// policies and webhooks), so instances starting together take turns.
pub fn lock_startup(pool: &Pool) -> Result<SessionLock, DbError> {
    session_lock(pool, &[(STARTUP_LOCK, 0)])
}

/// Held while channels publish: serialises publication of each channel
/// across every instance on this database. `channels` in a fixed order
/// (every caller sorts), which rules out deadlocks.
pub fn lock_channels(pool: &Pool, channels: &[&str]) -> Result<SessionLock, DbError> {
    use sha2::Digest as _;
    let keys: Vec<(i32, i32)> = channels
        .iter()
        .map(|c| {
            let h = sha2::Sha256::digest(c.as_bytes());
            (CHANNEL_LOCK, i32::from_be_bytes([h[0], h[1], h[2], h[3]]))
        })
        .collect();
    session_lock(pool, &keys)
}

pub fn run_migrations(conn: &mut DbConnection) -> Result<(), DbError> {
    let r = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    r.map_err(|e| DbError::Migration(e.to_string()))
}

/// True when the error is a unique-constraint violation (a lost race to insert).
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// A transaction that writes. On SQLite its first statement takes the write
/// lock (waiting up to busy_timeout), before anything is read: a deferred
/// transaction that reads first and then writes fails at once with "database is
/// locked" when another writer committed in between, because its snapshot went
/// stale, and the busy timeout does not apply to that. On PostgreSQL it is a
/// plain transaction. Nested calls become savepoints.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(|conn| {
        if let DbConnection::Sqlite(c) = conn {
            use diesel::RunQueryDsl;
            // A write that changes nothing still takes SQLite's write lock.
            diesel::sql_query("UPDATE channels SET head = head WHERE 0").execute(c)?;
        }
        f(conn)
    })
}

/// Events are the webhook outbox, read in id order. On PostgreSQL an id is
/// taken at insert but becomes visible at commit, so two transactions could
/// commit out of id order and a reader could pass over an event for good.
/// Taking this transaction-scoped lock before inserting events serialises the
/// writers of events (SQLite serialises all writers already). The one
/// backend-specific statement of the outbox.
pub fn lock_event_log(conn: &mut DbConnection) -> Result<(), diesel::result::Error> {
    use diesel::RunQueryDsl;
    if let DbConnection::Pg(c) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(70310001)").execute(c)?;
    }
    Ok(())
}

/// A consistent copy of the SQLite database into `path`, which must not
/// exist yet: `VACUUM INTO`, SQLite's transactional online copy, during
/// which writers carry on (WAL). Returns false, doing nothing, on PostgreSQL.
pub fn sqlite_snapshot(conn: &mut DbConnection, path: &std::path::Path) -> Result<bool, DbError> {
    use diesel::sql_types::Text;
    use diesel::RunQueryDsl;
    let DbConnection::Sqlite(c) = conn else {
        return Ok(false);
    };
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(path.to_string_lossy().to_string())
        .execute(c)?;
    Ok(true)
}

/// A SQLite file opened as it is, for reading a snapshot: no pragmas, no
/// migrations, nothing written beside it.
pub fn open_sqlite_file(path: &std::path::Path) -> Result<DbConnection, DbError> {
    let p = path.to_string_lossy();
    SqliteConnection::establish(&p)
        .map(DbConnection::Sqlite)
        .map_err(|e| DbError::Connect(format!("SQLite database {p}: {e}")))
}

/// Runs `f` in a read-only transaction that sees one snapshot throughout,
/// so that several queries agree while publications commit: REPEATABLE READ
/// on PostgreSQL; on SQLite (WAL) every read transaction does, and writers
/// never wait for it.
pub fn read_snapshot<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(|conn| {
        if let DbConnection::Pg(c) = conn {
            use diesel::RunQueryDsl;
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(c)?;
        }
        f(conn)
    })
}

#[derive(diesel::QueryableByName)]
struct Text1 {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

#[derive(diesel::QueryableByName)]
struct Count1 {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Inside [`read_snapshot`] on PostgreSQL: the snapshot's id, which
/// `pg_dump --snapshot` takes to dump exactly what this transaction sees.
/// None on SQLite.
pub fn export_snapshot(conn: &mut DbConnection) -> Result<Option<String>, DbError> {
    use diesel::RunQueryDsl;
    let DbConnection::Pg(c) = conn else {
        return Ok(None);
    };
    let row: Text1 = diesel::sql_query("SELECT pg_export_snapshot() AS v").get_result(c)?;
    Ok(Some(row.v))
}

/// What an existing Forklift database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Content {
    pub channels: i64,
    pub packages: i64,
    pub tokens: i64,
}

/// What the database at `url` holds, found without creating or migrating
/// anything: None when it has no Forklift tables (no SQLite file, or an
/// empty database).
pub fn existing_content(url: &str) -> Result<Option<Content>, DbError> {
    use diesel::RunQueryDsl;
    use diesel::{ExpressionMethods as _, QueryDsl as _};
    let (mut conn, probe) = match DbUrl::parse(url)? {
        DbUrl::Sqlite(path) => {
            if !std::path::Path::new(&path).exists() {
                return Ok(None);
            }
            let c = SqliteConnection::establish(&path)
                .map_err(|e| DbError::Connect(format!("SQLite database {path}: {e}")))?;
            (
                DbConnection::Sqlite(c),
                "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'channels'",
            )
        }
        DbUrl::Postgres(u) => {
            let c = PgConnection::establish(&u)
                .map_err(|e| DbError::Connect(format!("PostgreSQL: {e}")))?;
            (
                DbConnection::Pg(c),
                "SELECT count(*) AS n FROM pg_catalog.pg_tables \
                 WHERE schemaname = current_schema() AND tablename = 'channels'",
            )
        }
    };
    let tables: Count1 = match &mut conn {
        DbConnection::Sqlite(c) => diesel::sql_query(probe).get_result(c)?,
        DbConnection::Pg(c) => diesel::sql_query(probe).get_result(c)?,
    };
    if tables.n == 0 {
        return Ok(None);
    }
    use schema::{channels, packages, tokens};
    Ok(Some(Content {
        channels: channels::table.count().get_result(&mut conn)?,
        packages: packages::table.count().get_result(&mut conn)?,
        tokens: tokens::table
            .filter(tokens::revoked_at.is_null())
            .count()
            .get_result(&mut conn)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::Integer;
    use diesel::{QueryableByName, RunQueryDsl};

    #[derive(QueryableByName)]
    struct Pragma {
        #[diesel(sql_type = Integer)]
        synchronous: i32,
    }

    /// An acknowledged commit must survive an OS crash: FULL (2) syncs the WAL
    /// at every commit, NORMAL (1) does not.
    #[test]
    fn sqlite_commits_are_synced() {
        let dir = tempfile::tempdir().expect("tmp");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let pool = connect(&url).expect("pool");
        let mut conn = pool.get().expect("conn");
        let DbConnection::Sqlite(c) = &mut *conn else {
            panic!("not SQLite");
        };
        let p: Pragma = diesel::sql_query("PRAGMA synchronous")
            .get_result(c)
            .expect("pragma");
        assert_eq!(p.synchronous, 2, "synchronous is not FULL");
    }
}
