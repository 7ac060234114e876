//! The SQL stores built on sqlx 0.8, for applications that have not moved to sqlx 0.9.
//!
//! A pool is a type of one sqlx major version: an application on sqlx 0.8 cannot hand its
//! `sqlx::PgPool` to a store built on 0.9 ("expected `Pool<Postgres>`, found a different
//! `Pool<Postgres>`"). The features `sqlite-sqlx08` and `postgres-sqlx08` compile the very same
//! store code a second time against sqlx 0.8, here. Same schema, same table prefix rules, same
//! contracts (the conformance suite runs against both copies), so an application can move from
//! one sqlx to the other without migrating data.
//!
//! # Moving an application
//!
//! An application on sqlx 0.8 turns on `postgres-sqlx08` (or `sqlite-sqlx08`) instead of
//! `postgres` (`sqlite`) and names the stores under this module:
//!
//! ```text
//! use twofactor::store::PostgresStore;          // sqlx 0.9, feature `postgres`
//! use twofactor::store::sqlx08::PostgresStore;  // sqlx 0.8, feature `postgres-sqlx08`
//! ```
//!
//! Everything else is the same: `new`, `with_prefix`, `migrate`, the [`SqlStoreError`]
//! variants, the service. Upgrading to sqlx 0.9 later is the same two edits backwards; the
//! tables need nothing.
//!
//! The 0.8 stores have their own paths rather than taking over `store::PostgresStore`, so that
//! features stay additive: Cargo unifies features across a build, and another crate turning on
//! `postgres` must not change what a name means under an application on sqlx 0.8. Both copies
//! can be in one build, the SQLite ones included: sqlx 0.8 and 0.9 then share one
//! `libsqlite3-sys` (0.30), which Cargo picks because both accept it.

// The store files are compiled twice on purpose, once per sqlx major version.
#![allow(clippy::duplicate_mod)]

use super::*;

#[path = "compat08.rs"]
mod compat;
#[path = "sql.rs"]
mod sql;

pub use sql::{DEFAULT_TABLE_PREFIX, SqlStoreError};

#[cfg(feature = "sqlite-sqlx08")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite-sqlx08")))]
#[path = "sqlite.rs"]
pub mod sqlite;
#[cfg(feature = "sqlite-sqlx08")]
pub use sqlite::SqliteStore;

#[cfg(feature = "postgres-sqlx08")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-sqlx08")))]
#[path = "postgres.rs"]
pub mod postgres;
#[cfg(feature = "postgres-sqlx08")]
pub use postgres::PostgresStore;
