//! [`PostgresStore`]: both store traits over a `sqlx::PgPool` the application already has.
//!
//! Atomicity comes from single statements and short transactions at PostgreSQL's default
//! `READ COMMITTED` level: a conditional `UPDATE` for the last accepted step, a `DELETE` in the
//! same statement that counts what remains for backup codes, `DELETE ... RETURNING` for
//! challenges, `UPDATE ... RETURNING` for device tokens, and locks wherever a transaction reads
//! before it writes. A transaction that reads a user's authenticators before writing them
//! (enrolment, activation, removal, recovery, deleting the user) first takes the **user's lock**:
//! a transaction-level advisory lock keyed by the table prefix and the user id. A row lock would
//! not do: the rows that decide (how many are enabled, whether one is pending) may not exist yet.
//! Each transaction takes at most that one advisory lock before any row lock, so they queue
//! behind each other instead of deadlocking. The keys are 32-bit hashes in the two-key space, so
//! only an application that takes two-key advisory locks of its own could meet one, by a hash
//! collision.
//!
//! A successful TOTP verification costs two round trips: `get_credentials` (one `SELECT`) and
//! `advance_step` (one `UPDATE`), each a single prepared statement that sqlx caches per
//! connection.
//!
//! The flow of every operation is the one of `store::sql`, shared with SQLite; this folder holds
//! the PostgreSQL text of each statement, by contract, and the steps PostgreSQL does its own way.

use sqlx::Postgres;
use sqlx::Row as _;
use sqlx::postgres::{PgPool, PgRow};

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

type Row = PgRow;

/// The statements only PostgreSQL's own steps use.
struct PgSql {
    lock_user: Stmt,
    insert_codes: Stmt,
    lock_limiter: Stmt,
}

/// Every statement text, with the prefix `p` pasted in.
fn queries(p: &str) -> Queries<PgSql> {
    Queries {
        auth: credentials::sql(p),
        codes: backup_codes::sql(p),
        recovery: recovery::sql(p),
        changes: changes::sql(p),
        devices: devices::sql(p),
        challenges: challenges::sql(p),
        limiter: limiter::sql(p),
        dialect: PgSql {
            lock_user: credentials::lock_user(p),
            insert_codes: backup_codes::insert_codes(p),
            lock_limiter: limiter::lock_limiter(p),
        },
    }
}

/// A query on one of the prepared statement texts.
fn q(sql: &Stmt) -> Query<'_, Postgres> {
    sqlx::query(assert_sql_safe(sql))
}

/// Opens a `READ COMMITTED` transaction.
async fn begin(pool: &PgPool) -> Result<sqlx::Transaction<'static, Postgres>, SqlStoreError> {
    Ok(pool.begin().await?)
}

/// `digits` is an `INTEGER` (32-bit) column.
fn digits_column(digits: u32) -> Result<i32, SqlStoreError> {
    i32::try_from(digits).map_err(|_| SqlStoreError::OutOfRange { field: "digits" })
}

fn digits(row: &Row) -> Result<u32, SqlStoreError> {
    to_u32(i64::from(row.try_get::<i32, _>("digits")?), "digits")
}

sql_store! {
    /// Credentials, backup codes, recovery requests, device tokens, challenges and rate limits
    /// in PostgreSQL.
    ///
    /// Cheap to clone (the pool and the prepared statement texts are shared). Build it on the
    /// pool your application already uses, run [`migrate`](Self::migrate) once at start-up, and
    /// pass it to the service as both the credential and the ephemeral store.
    pub struct PostgresStore { pool: PgPool, dialect: PgSql }
}
