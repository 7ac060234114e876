//! The seam between the SQL store files and sqlx 0.9 (features `sqlite`, `postgres`).
//!
//! `sql.rs`, `sqlite.rs` and `postgres.rs` are compiled once per sqlx major version; each copy
//! names sqlx and the few calls that differ between the versions through `super::compat`. This
//! is the 0.9 side; `compat08.rs` is the 0.8 side, with the same names.

pub(crate) use ::sqlx;

/// A query on a statement text, with its arguments.
pub(crate) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>;

/// A statement text this crate built, as sqlx 0.9 takes it: owned (an `Arc<str>` is cloned, not
/// copied) and marked safe. Every text passed here is a constant with the table prefix pasted in,
/// and the prefix was checked by `check_prefix`, so nothing an end user typed reaches SQL text.
pub(crate) fn assert_sql_safe<T: Clone>(text: &T) -> sqlx::AssertSqlSafe<T> {
    sqlx::AssertSqlSafe(text.clone())
}
