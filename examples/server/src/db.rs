//! The two databases the demo runs on, and its own tables there: users (email + Argon2id hash)
//! and sessions (SHA-256 of the token). Everything about the second factor lives in the crate's
//! stores, not here.
//!
//! [`Backend`] is implemented by the crate's two SQL stores, so one value per database is both
//! the store the service runs on and the pool of the demo's tables. The demo's queries are
//! written once, in [`Db`], for any sqlx pool: the SQL is the same on both databases.

use std::future::Future;
use std::str::FromStr as _;

use sqlx::postgres::{PgPool, PgPoolOptions, PgQueryResult};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
// The sqlx 0.9 stores by their versioned names: the demo shares their pools
// (`store::SqliteStore` / `PostgresStore` wrap them for either sqlx and hand out no pool).
use twofactor::store::postgres::PostgresStore;
use twofactor::store::sqlite::SqliteStore;
use twofactor::store::{CredentialStore, EphemeralStore, SqlStoreError};

/// A database the demo runs on: the crate's store for the service, and the pool it shares with
/// the demo's own tables.
pub trait Backend: CredentialStore + EphemeralStore + Clone + 'static {
    /// The demo's tables, one statement each; run in one transaction.
    const SCHEMA: &'static [&'static str];
    /// The sqlx pool type the demo's own queries run on.
    type Db: Db;

    /// Opens a pool on `url` and the store on it.
    fn connect(url: &str) -> impl Future<Output = Result<Self, sqlx::Error>> + Send;
    /// The store's pool (a cheap clone), for the demo's own queries.
    fn db(&self) -> Self::Db;
    /// Creates or updates the crate's tables (`migrate()`; idempotent, safe from several
    /// processes).
    fn migrate_store(&self) -> impl Future<Output = Result<(), SqlStoreError>> + Send;
    /// Deletes expired challenges and stale limiter rows; how many went.
    fn purge_store(&self, now: u64) -> impl Future<Output = Result<u64, SqlStoreError>> + Send;
}

impl Backend for SqliteStore {
    const SCHEMA: &'static [&'static str] = &[
        "CREATE TABLE IF NOT EXISTS demo_users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS demo_sessions (
            token_hash BLOB PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES demo_users(id) ON DELETE CASCADE,
            expires_at INTEGER NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS demo_sessions_expires ON demo_sessions(expires_at)",
    ];
    type Db = SqlitePool;

    /// A SQLite file is created if missing and runs in WAL mode, so several requests can read
    /// while one writes.
    async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self::new(pool))
    }

    fn db(&self) -> SqlitePool {
        self.pool().clone()
    }

    async fn migrate_store(&self) -> Result<(), SqlStoreError> {
        self.migrate().await
    }

    async fn purge_store(&self, now: u64) -> Result<u64, SqlStoreError> {
        self.purge_expired(now).await
    }
}

impl Backend for PostgresStore {
    const SCHEMA: &'static [&'static str] = &[
        // Two servers starting at once would otherwise race on CREATE TABLE.
        "SELECT pg_advisory_xact_lock(7420196511)",
        "CREATE TABLE IF NOT EXISTS demo_users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS demo_sessions (
            token_hash BYTEA PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES demo_users(id) ON DELETE CASCADE,
            expires_at BIGINT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS demo_sessions_expires ON demo_sessions(expires_at)",
    ];
    type Db = PgPool;

    async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        // While the database is unreachable, a request waits at most this long for a
        // connection (sqlx's connect attempts included) and then answers 503: clients are told
        // at once instead of hanging, and the pool reconnects by itself once the database is
        // back. Every statement here takes milliseconds, so a second is never the normal wait.
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(std::time::Duration::from_secs(1))
            .connect(url)
            .await?;
        Ok(Self::new(pool))
    }

    fn db(&self) -> PgPool {
        self.pool().clone()
    }

    async fn migrate_store(&self) -> Result<(), SqlStoreError> {
        self.migrate().await
    }

    async fn purge_store(&self, now: u64) -> Result<u64, SqlStoreError> {
        self.purge_expired(now).await
    }
}

/// A user row.
pub struct User {
    /// Random id, also the user id given to the 2FA service.
    pub id: String,
    /// Normalised (trimmed, lower-case) email.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// The demo's own tables: users and sessions. Implemented once for every sqlx pool below.
pub trait Db: Clone + Send + Sync + 'static {
    /// Runs `schema` in one transaction (idempotent, safe at every start).
    fn migrate(
        &self,
        schema: &'static [&'static str],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Inserts a user; `false` when the email is taken (the unique constraint decides, so two
    /// concurrent sign-ups with one email cannot both succeed).
    fn create_user(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
        now: u64,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;

    /// The user with this (normalised) email.
    fn user_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<User>, sqlx::Error>> + Send;

    /// Replaces a user's password hash; `false` when the user is gone.
    fn set_password_hash(
        &self,
        id: &str,
        password_hash: &str,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;

    /// Stores a session under the hash of its token; returns the account's email, read by the
    /// same statement (a login that issues a device cookie names it after the email, and this
    /// saves a query per login). `None` only if the user vanished meanwhile.
    fn create_session(
        &self,
        token_hash: &[u8; 32],
        user_id: &str,
        expires_at: u64,
    ) -> impl Future<Output = Result<Option<String>, sqlx::Error>> + Send;

    /// The user owning the unexpired session with this token hash.
    fn session_user(
        &self,
        token_hash: &[u8; 32],
        now: u64,
    ) -> impl Future<Output = Result<Option<User>, sqlx::Error>> + Send;

    /// Ends one session (log out).
    fn delete_session(
        &self,
        token_hash: &[u8; 32],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Ends every other session of a user (after turning 2FA off or on and after a password
    /// change, the other devices must log in again).
    fn delete_other_sessions(
        &self,
        user_id: &str,
        keep: &[u8; 32],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Drops expired sessions (housekeeping); how many went.
    fn purge_expired_sessions(
        &self,
        now: u64,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Closes every connection, waiting for each to finish cleanly.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// How many rows a statement changed (sqlx has no common trait for it).
pub trait RowsAffected {
    /// The count.
    fn rows(&self) -> u64;
}

impl RowsAffected for SqliteQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for PgQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

/// Unix seconds as SQL `BIGINT`, saturating (far-future times are fine for expiry checks).
fn sql_time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn user((id, email, password_hash): (String, String, String)) -> User {
    User {
        id,
        email,
        password_hash,
    }
}

impl<DB> Db for Pool<DB>
where
    DB: Database,
    DB::QueryResult: RowsAffected,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> &'a [u8]: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    (String, String, String): for<'r> FromRow<'r, DB::Row>,
    (Option<String>,): for<'r> FromRow<'r, DB::Row>,
{
    async fn migrate(&self, schema: &'static [&'static str]) -> Result<(), sqlx::Error> {
        let mut tx = self.begin().await?;
        for stmt in schema {
            sqlx::query(*stmt).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    async fn create_user(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
        now: u64,
    ) -> Result<bool, sqlx::Error> {
        const SQL: &str = "INSERT INTO demo_users (id, email, password_hash, created_at) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING";
        let done = sqlx::query(SQL)
            .bind(id)
            .bind(email)
            .bind(password_hash)
            .bind(sql_time(now))
            .execute(self)
            .await?;
        Ok(done.rows() == 1)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, sqlx::Error> {
        const SQL: &str = "SELECT id, email, password_hash FROM demo_users WHERE email = $1";
        let row = sqlx::query_as(SQL).bind(email).fetch_optional(self).await?;
        Ok(row.map(user))
    }

    async fn set_password_hash(&self, id: &str, password_hash: &str) -> Result<bool, sqlx::Error> {
        const SQL: &str = "UPDATE demo_users SET password_hash = $2 WHERE id = $1";
        let done = sqlx::query(SQL)
            .bind(id)
            .bind(password_hash)
            .execute(self)
            .await?;
        Ok(done.rows() == 1)
    }

    async fn create_session(
        &self,
        token_hash: &[u8; 32],
        user_id: &str,
        expires_at: u64,
    ) -> Result<Option<String>, sqlx::Error> {
        const SQL: &str = "INSERT INTO demo_sessions (token_hash, user_id, expires_at) \
                           VALUES ($1, $2, $3) \
                           RETURNING (SELECT email FROM demo_users WHERE id = $2)";
        let (email,): (Option<String>,) = sqlx::query_as(SQL)
            .bind(&token_hash[..])
            .bind(user_id)
            .bind(sql_time(expires_at))
            .fetch_one(self)
            .await?;
        Ok(email)
    }

    async fn session_user(
        &self,
        token_hash: &[u8; 32],
        now: u64,
    ) -> Result<Option<User>, sqlx::Error> {
        const SQL: &str = "SELECT u.id, u.email, u.password_hash FROM demo_sessions s \
                           JOIN demo_users u ON u.id = s.user_id \
                           WHERE s.token_hash = $1 AND s.expires_at > $2";
        let row = sqlx::query_as(SQL)
            .bind(&token_hash[..])
            .bind(sql_time(now))
            .fetch_optional(self)
            .await?;
        Ok(row.map(user))
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), sqlx::Error> {
        const SQL: &str = "DELETE FROM demo_sessions WHERE token_hash = $1";
        sqlx::query(SQL).bind(&token_hash[..]).execute(self).await?;
        Ok(())
    }

    async fn delete_other_sessions(
        &self,
        user_id: &str,
        keep: &[u8; 32],
    ) -> Result<(), sqlx::Error> {
        const SQL: &str = "DELETE FROM demo_sessions WHERE user_id = $1 AND token_hash <> $2";
        sqlx::query(SQL)
            .bind(user_id)
            .bind(&keep[..])
            .execute(self)
            .await?;
        Ok(())
    }

    async fn purge_expired_sessions(&self, now: u64) -> Result<u64, sqlx::Error> {
        const SQL: &str = "DELETE FROM demo_sessions WHERE expires_at <= $1";
        let done = sqlx::query(SQL).bind(sql_time(now)).execute(self).await?;
        Ok(done.rows())
    }

    async fn close(&self) {
        Pool::close(self).await;
    }
}
