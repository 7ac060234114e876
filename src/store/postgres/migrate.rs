//! The PostgreSQL schema, embedded from `migrations/postgres/`, and `migrate()`.

use super::super::compat::{assert_sql_safe, sqlx};
use super::super::sql::prelude::*;
use super::super::sql::{DEFAULT_TABLE_PREFIX, migrate::embedded, migrate::flow};
use super::{begin, q};
use sqlx::postgres::PgPool;

/// The schema files, in order.
const MIGRATIONS: &[Migration] = embedded!("postgres");

const SCHEMA_VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS {p}schema_version (version BIGINT PRIMARY KEY)";
const RECORD_VERSION: &str = "INSERT INTO {p}schema_version (version) VALUES ($1)";

/// A transaction-level advisory lock on the prefix: instances starting at once migrate one
/// after the other.
async fn lock_schema(tx: &mut sqlx::PgConnection, prefix: &str) -> Result<(), SqlStoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("twofactor migrate {prefix}"))
        .execute(&mut *tx)
        .await?;
    // `IF NOT EXISTS` on an existing table is a NOTICE, which sqlx would log at INFO level at
    // every start-up.
    sqlx::raw_sql("SET LOCAL client_min_messages TO WARNING")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

flow!(PgPool);

/// Brings the schema (default `twofactor_` prefix) up to date; safe to call at every start-up.
///
/// Each file of `migrations/postgres/` runs once: the versions applied are recorded in
/// `twofactor_schema_version`. A database created before that table existed (version 1 only)
/// is upgraded in place, keeping its rows. Everything runs in one transaction under a
/// transaction-level advisory lock, so several application instances starting at once apply
/// each file once, and a failure leaves the schema as it was. The application's own
/// `_sqlx_migrations` is never touched. Tables go into the first schema of the connection's
/// `search_path`.
///
/// # Errors
///
/// [`SqlStoreError::Database`] when the database cannot be reached or refuses the schema.
pub async fn migrate(pool: &PgPool) -> Result<(), SqlStoreError> {
    migrate_with_prefix(pool, DEFAULT_TABLE_PREFIX).await
}
