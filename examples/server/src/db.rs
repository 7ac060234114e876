//! The demo application's own tables: users (email + Argon2id hash) and sessions (SHA-256 of
//! the token). Everything about the second factor lives in the crate's stores, not here.

use std::str::FromStr as _;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::config::Database;

/// A connection pool on one of the two supported databases.
#[derive(Clone)]
pub enum Db {
    /// SQLite (the demo default).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
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

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

const SQLITE_SCHEMA: &[&str] = &[
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

const POSTGRES_SCHEMA: &[&str] = &[
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

/// Unix seconds as SQL `BIGINT`, saturating (far-future times are fine for expiry checks).
fn sql_time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl Db {
    /// Opens the pool; a SQLite file is created if missing and runs in WAL mode so several
    /// requests can read while one writes.
    pub async fn connect(database: &Database) -> Result<Self, sqlx::Error> {
        match database {
            Database::Sqlite(url) => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(std::time::Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(options)
                    .await?;
                Ok(Self::Sqlite(pool))
            }
            Database::Postgres(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(10)
                    .acquire_timeout(std::time::Duration::from_secs(10))
                    .connect(url)
                    .await?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    /// Creates the demo's own tables if they do not exist (idempotent, safe at every start and
    /// from several processes: PostgreSQL serialises the DDL under an advisory lock).
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                for stmt in SQLITE_SCHEMA {
                    sqlx::query(*stmt).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // Two servers starting at once would otherwise race on CREATE TABLE.
                sqlx::query("SELECT pg_advisory_xact_lock(7420196511)")
                    .execute(&mut *tx)
                    .await?;
                for stmt in POSTGRES_SCHEMA {
                    sqlx::query(*stmt).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
        }
    }

    /// Inserts a user; `false` when the email is taken (the unique constraint decides, so two
    /// concurrent sign-ups with one email cannot both succeed).
    pub async fn create_user(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
        now: u64,
    ) -> Result<bool, sqlx::Error> {
        const SQL: &str = "INSERT INTO demo_users (id, email, password_hash, created_at) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING";
        let rows = on_pool!(self, pool => sqlx::query(SQL)
            .bind(id)
            .bind(email)
            .bind(password_hash)
            .bind(sql_time(now))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(rows == 1)
    }

    /// The user with this (normalised) email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, sqlx::Error> {
        const SQL: &str = "SELECT id, email, password_hash FROM demo_users WHERE email = $1";
        let row: Option<(String, String, String)> = on_pool!(self, pool =>
            sqlx::query_as(SQL).bind(email).fetch_optional(pool).await?);
        Ok(row.map(|(id, email, password_hash)| User {
            id,
            email,
            password_hash,
        }))
    }

    /// Stores a session under the hash of its token.
    pub async fn create_session(
        &self,
        token_hash: &[u8; 32],
        user_id: &str,
        expires_at: u64,
    ) -> Result<(), sqlx::Error> {
        const SQL: &str =
            "INSERT INTO demo_sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)";
        on_pool!(self, pool => sqlx::query(SQL)
            .bind(&token_hash[..])
            .bind(user_id)
            .bind(sql_time(expires_at))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The user owning the unexpired session with this token hash.
    pub async fn session_user(
        &self,
        token_hash: &[u8; 32],
        now: u64,
    ) -> Result<Option<User>, sqlx::Error> {
        const SQL: &str = "SELECT u.id, u.email, u.password_hash FROM demo_sessions s \
                           JOIN demo_users u ON u.id = s.user_id \
                           WHERE s.token_hash = $1 AND s.expires_at > $2";
        let row: Option<(String, String, String)> = on_pool!(self, pool =>
            sqlx::query_as(SQL)
                .bind(&token_hash[..])
                .bind(sql_time(now))
                .fetch_optional(pool)
                .await?);
        Ok(row.map(|(id, email, password_hash)| User {
            id,
            email,
            password_hash,
        }))
    }

    /// Ends one session (log out).
    pub async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), sqlx::Error> {
        const SQL: &str = "DELETE FROM demo_sessions WHERE token_hash = $1";
        on_pool!(self, pool => sqlx::query(SQL).bind(&token_hash[..]).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Ends every other session of a user (after turning 2FA off or on, the other devices must
    /// log in again).
    pub async fn delete_other_sessions(
        &self,
        user_id: &str,
        keep: &[u8; 32],
    ) -> Result<(), sqlx::Error> {
        const SQL: &str = "DELETE FROM demo_sessions WHERE user_id = $1 AND token_hash <> $2";
        on_pool!(self, pool => sqlx::query(SQL)
            .bind(user_id)
            .bind(&keep[..])
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Closes every connection, waiting for each to finish cleanly.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// Drops expired sessions (housekeeping at start).
    pub async fn purge_expired_sessions(&self, now: u64) -> Result<u64, sqlx::Error> {
        const SQL: &str = "DELETE FROM demo_sessions WHERE expires_at <= $1";
        Ok(on_pool!(self, pool => sqlx::query(SQL)
            .bind(sql_time(now))
            .execute(pool)
            .await?
            .rows_affected()))
    }
}
