//! The seam between the SQL store files and sqlx 0.8 (features `sqlite-sqlx08`,
//! `postgres-sqlx08`): the same names as `compat09.rs`, for the second copy of the stores in
//! [`store::sqlx08`](crate::store::sqlx08).

pub(crate) use ::sqlx08 as sqlx;

/// A query on a statement text, with its arguments (sqlx 0.8 borrows both for `'q`).
pub(crate) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>;

/// A statement text this crate built, as sqlx 0.8 takes it: borrowed. Every text passed here is
/// a constant with the table prefix pasted in, and the prefix was checked by `check_prefix`, so
/// nothing an end user typed reaches SQL text.
pub(crate) fn assert_sql_safe<T>(text: &T) -> &str
where
    T: AsRef<str> + ?Sized,
{
    text.as_ref()
}
