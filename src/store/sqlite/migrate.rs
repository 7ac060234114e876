//! The SQLite schema, embedded from `migrations/sqlite/`, and `migrate()`.

use super::super::compat::{assert_sql_safe, sqlx};
use super::super::sql::prelude::*;
use super::super::sql::{DEFAULT_TABLE_PREFIX, migrate::embedded, migrate::flow};
use super::{begin, q};
use sqlx::sqlite::SqlitePool;

/// The schema files, in order.
const MIGRATIONS: &[Migration] = embedded!("sqlite");

const SCHEMA_VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS {p}schema_version (version INTEGER PRIMARY KEY)";
const RECORD_VERSION: &str = "INSERT INTO {p}schema_version (version) VALUES (?1)";

/// Nothing to take: the `BEGIN IMMEDIATE` transaction holds the database's write lock.
async fn lock_schema(_tx: &mut sqlx::SqliteConnection, _prefix: &str) -> Result<(), SqlStoreError> {
    Ok(())
}

flow!(SqlitePool);

/// Brings the schema (default `twofactor_` prefix) up to date; safe to call at every start-up.
///
/// Each file of `migrations/sqlite/` runs once: the versions applied are recorded in
/// `twofactor_schema_version`. A database created before that table existed (version 1 only)
/// is upgraded in place, keeping its rows. Everything runs in one `BEGIN IMMEDIATE`
/// transaction, so several processes starting at once apply each file once, and a failure
/// leaves the schema as it was. The application's own sqlx migrations (`_sqlx_migrations`) are
/// never touched.
///
/// # Errors
///
/// [`SqlStoreError::Database`] when the database cannot be reached or refuses the schema.
pub async fn migrate(pool: &SqlitePool) -> Result<(), SqlStoreError> {
    migrate_with_prefix(pool, DEFAULT_TABLE_PREFIX).await
}
