//! The store test suite, one target for every store: the conformance suite
//! (`twofactor::store::conformance`) and each adapter's own checks, against `MemoryStore`,
//! SQLite and PostgreSQL on both sqlx versions (one macro per adapter, expanded once per
//! version), Redis, and the one-name `SqliteStore` / `PostgresStore` over either pool. A backend
//! is compiled in when its feature is on; a test whose service is not configured says it is
//! skipped, and fails under `CI=true` (`common::service_url`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

/// The URL of the test database, or (outside CI) return: the test is skipped, and says so.
#[allow(unused_macros)]
macro_rules! need_postgres {
    ($test:ident) => {
        match crate::common::postgres_url(concat!(module_path!(), "::", stringify!($test))) {
            Some(url) => url,
            None => return,
        }
    };
}

/// The URL of the test Redis, or (outside CI) return: the test is skipped, and says so.
#[allow(unused_macros)]
macro_rules! need_redis {
    ($test:ident) => {
        match crate::common::redis_url(concat!(module_path!(), "::", stringify!($test))) {
            Some(url) => url,
            None => return,
        }
    };
}

mod memory;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql_checks;

#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
mod sqlite;

#[cfg(any(feature = "postgres", feature = "postgres-sqlx08"))]
mod postgres;

#[cfg(feature = "redis")]
mod redis_store;

#[cfg(all(
    feature = "sqlite",
    feature = "postgres",
    feature = "sqlite-sqlx08",
    feature = "postgres-sqlx08"
))]
mod any_sqlx;
