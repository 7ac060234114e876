//! [`SqliteStore`]: both store traits over a `sqlx::SqlitePool` the application already has.
//!
//! Every write that must be atomic is one statement in autocommit mode or one `BEGIN IMMEDIATE`
//! transaction. `IMMEDIATE` takes SQLite's write lock up front, so a transaction never has to
//! upgrade a read lock (the case where SQLite reports `SQLITE_BUSY` without waiting); waiting
//! for the lock is governed by the pool's `busy_timeout` (sqlx's default is 5 s). Use WAL mode
//! ([`SqliteStore::recommended_options`]) so readers never wait for writers.
//!
//! The flow of every operation is the one of `store::sql`, shared with PostgreSQL; this folder
//! holds the SQLite text of each statement, by contract, and the steps SQLite does its own way.

use sqlx::Row as _;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteRow, SqliteSynchronous,
};

use super::compat::{Query, assert_sql_safe, sqlx};
use super::sql::prelude::*;

mod backup_codes;
mod challenges;
mod changes;
mod credentials;
mod devices;
mod limiter;
mod migrate;
mod recovery;

pub use self::migrate::migrate;
use self::migrate::migrate_with_prefix;

type Row = SqliteRow;

/// The statements only SQLite's own steps use.
struct SqliteSql {
    insert_code: Stmt,
}

/// Every statement text, with the prefix `p` pasted in.
fn queries(p: &str) -> Queries<SqliteSql> {
    Queries {
        auth: credentials::sql(p),
        codes: backup_codes::sql(p),
        recovery: recovery::sql(p),
        changes: changes::sql(p),
        devices: devices::sql(p),
        challenges: challenges::sql(p),
        limiter: limiter::sql(p),
        dialect: SqliteSql {
            insert_code: backup_codes::insert_code(p),
        },
    }
}

/// A query on one of the prepared statement texts.
fn q(sql: &Stmt) -> Query<'_, Sqlite> {
    sqlx::query(assert_sql_safe(sql))
}

/// Opens a `BEGIN IMMEDIATE` transaction (takes the write lock now, waiting up to the pool's
/// `busy_timeout`).
async fn begin(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Sqlite>, SqlStoreError> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// `digits` is an `INTEGER` column.
fn digits_column(digits: u32) -> Result<i64, SqlStoreError> {
    Ok(i64::from(digits))
}

fn digits(row: &Row) -> Result<u32, SqlStoreError> {
    to_u32(row.try_get("digits")?, "digits")
}

sql_store! {
    /// Credentials, backup codes, recovery requests, device tokens, challenges and rate limits
    /// in SQLite.
    ///
    /// Cheap to clone (the pool and the prepared statement texts are shared). Build it on the
    /// pool your application already uses, run [`migrate`](Self::migrate) once at start-up, and
    /// pass it to the service as both the credential and the ephemeral store.
    pub struct SqliteStore { pool: SqlitePool, dialect: SqliteSql }
}

impl SqliteStore {
    /// Connection options this store works best with: WAL journal (readers never wait for the
    /// writer), `synchronous = NORMAL` (durable at every checkpoint, safe in WAL), a 5 s busy
    /// timeout, and the file created if missing. Use them to build your pool if you have no
    /// reason to choose otherwise.
    pub fn recommended_options(filename: impl AsRef<std::path::Path>) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(filename)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5))
    }

    /// Nothing to take: the `BEGIN IMMEDIATE` transaction already holds the database's write
    /// lock, so no other writer can touch the user's rows until it ends.
    #[allow(clippy::unused_async)]
    async fn lock_user(
        &self,
        _tx: &mut sqlx::SqliteConnection,
        _user_id: &str,
    ) -> Result<(), SqlStoreError> {
        Ok(())
    }
}
