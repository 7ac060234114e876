//! The SQL stores built on sqlx 0.8 (features `sqlite-sqlx08`, `postgres-sqlx08`).
//!
//! Applications do not need this module: `store::SqliteStore` and `store::PostgresStore` take a
//! pool of either sqlx, so an application on sqlx 0.8 writes the same code as one on 0.9 and
//! only names different features:
//!
//! ```toml
//! twofactor = { version = "0.1", features = ["postgres-sqlx08"] } # on sqlx 0.9: "postgres"
//! ```
//!
//! ```rust,no_run
//! # #[cfg(feature = "postgres-sqlx08")]
//! # async fn app(pool: sqlx08::PgPool) -> Result<(), twofactor::store::SqlStoreError> {
//! use twofactor::store::PostgresStore;
//!
//! let store = PostgresStore::new(pool); // the application's own sqlx 0.8 `PgPool`
//! store.migrate().await?;
//! # Ok(()) }
//! ```
//!
//! This module holds what those wrap when the pool is a sqlx 0.8 one: the same store code as
//! `store::sqlite` and `store::postgres` (sqlx 0.9), compiled a second time against sqlx 0.8,
//! because a pool is a type of one sqlx major version ("expected `Pool<Postgres>`, found a
//! different `Pool<Postgres>`"). Same schema, same table prefix rules, same contracts (the
//! conformance suite runs against both copies), same [`SqlStoreError`], so an application moves
//! between the two sqlx versions without migrating data. Name these types only for what depends
//! on the version, such as their `pool()` (`store::SqliteStore::as_sqlx08()` hands them out), or
//! for the free `migrate(&pool)` functions.
//!
//! Features are additive: Cargo unifies them across a build, so with one crate of a build on
//! sqlx 0.8 (`postgres-sqlx08`) and another on 0.9 (`postgres`), both copies are compiled and each
//! crate's pool still picks its own. Both SQLite copies can be in one build: sqlx 0.8 and 0.9 then
//! share one `libsqlite3-sys` (0.30), which Cargo picks because both accept it.

// The store files are compiled twice on purpose, once per sqlx major version.
#![allow(clippy::duplicate_mod)]

use super::*;

#[path = "compat08.rs"]
mod compat;

pub use super::{DEFAULT_TABLE_PREFIX, SqlStoreError};

#[cfg(feature = "sqlite-sqlx08")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite-sqlx08")))]
#[path = "sqlite/mod.rs"]
pub mod sqlite;
#[cfg(feature = "sqlite-sqlx08")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite-sqlx08")))]
pub use sqlite::SqliteStore;

#[cfg(feature = "postgres-sqlx08")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-sqlx08")))]
#[path = "postgres/mod.rs"]
pub mod postgres;
#[cfg(feature = "postgres-sqlx08")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-sqlx08")))]
pub use postgres::PostgresStore;
