//! What the sqlx-based stores (SQLite, PostgreSQL) share: the error type, the table prefix, the
//! schema versions, the checked conversions between the traits' unsigned integers and SQL's
//! signed `BIGINT`, and the flow of every store operation, written once for both dialects.
//!
//! # One flow, two dialects, two sqlx versions
//!
//! A store operation is the same sequence in both dialects (open a transaction, take the user's
//! lock, check, write, commit); what differs is the SQL text, how a transaction takes its lock
//! (`BEGIN IMMEDIATE` in SQLite, an advisory lock in PostgreSQL), and three statements PostgreSQL
//! does in one round trip where SQLite needs a loop or a transaction (inserting backup codes,
//! consuming one, locking a limiter row). So each contract file here holds the statement texts'
//! shape (a struct of prepared texts, one field per statement, with what its parameters are) and
//! the flow as a `macro_rules!` macro; `store/sqlite/` and `store/postgres/` hold, per contract,
//! the SQL text and those few dialect steps, and expand the flow once with `store::sql_store!`.
//!
//! A macro rather than a dialect trait generic over sqlx's `Database`: the flow is compiled
//! against two sqlx major versions (`store::sqlx08` builds the same files on sqlx 0.8), whose
//! `Database`, `Arguments` and `Executor` traits differ in their lifetimes, and a generic flow
//! needs a bound for every column type it binds or reads (`Encode`, `Decode`, `Type`,
//! `ColumnIndex`, an `Executor` for `&mut Connection` under a higher-ranked lifetime) on each of
//! its forty methods, written twice. Expanded on the concrete pool and row types, the flow is
//! plain code that type-checks like a hand-written store, its futures are `Send` without proof
//! obligations, and a dialect is what a reader expects: a folder of SQL and the few steps that
//! really differ. What the flow asks of a dialect module is listed on `store::sql_store!`.
//!
//! Compiled once, for both sqlx major versions: nothing here names sqlx but the error's
//! [`DatabaseError`], which holds the error of either version, and the macros, which name the
//! sqlx of the module that expands them. So both copies of the stores (and the `SqliteStore` /
//! `PostgresStore` over them) have one error type, and an application matches the same variants
//! whichever sqlx it is on.

pub(crate) mod backup_codes;
pub(crate) mod challenges;
pub(crate) mod changes;
pub(crate) mod credentials;
pub(crate) mod devices;
pub(crate) mod limiter;
pub(crate) mod migrate;
pub(crate) mod recovery;
pub(crate) mod store;

use std::sync::Arc;

use thiserror::Error;

use super::{BackupCodeHash, ChangeKind, ScheduledChangeRecord, TokenHash};

/// What the flow macros name, for the dialect module that expands them to import at once.
pub(crate) mod prelude {
    pub(crate) use super::store::{Queries, Stmt, sql_store};
    pub(crate) use super::{
        Migration, SqlStoreError, algorithm, change_columns, change_record, expire_at_i64,
        migration_sql, opt_i64, opt_u64, pending_migrations, stmt, to_i64, to_u32, to_u64,
        token_hash,
    };
    pub(crate) use crate::store::{
        BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, DeletedCredentials,
        DeviceRecord, LimiterState, LimiterUpdate, RecoveryRecord, RemoveCredential,
        ScheduledChangeRecord, TokenHash,
    };
}

/// The default prefix of every table the SQL stores create (`twofactor_authenticators`, ...).
pub const DEFAULT_TABLE_PREFIX: &str = "twofactor_";

/// An infrastructure failure of a SQL store: `SqliteStore` or `PostgresStore`, on either sqlx.
///
/// The service treats every one of these as "fail closed": nobody is let in. Messages never
/// contain a secret, a code or a hash.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SqlStoreError {
    /// The database refused or could not run a statement (unreachable, connection lost,
    /// timeout, missing tables because `migrate()` was not run, ...). The sqlx error, of
    /// whichever sqlx the store is built on, is the [`source`](std::error::Error::source) of
    /// the [`DatabaseError`] (and `as_sqlx09()` / `as_sqlx08()` of it).
    #[error("database operation failed")]
    Database(#[source] DatabaseError),
    /// A value does not fit the column (the traits use `u64`, SQL `BIGINT` is signed), or a stored
    /// value does not fit the record. Nothing was written: values are refused, never wrapped.
    #[error("value of {field} is out of range for the database column")]
    OutOfRange {
        /// Which field.
        field: &'static str,
    },
    /// A stored algorithm name is not `SHA1`, `SHA256` or `SHA512` (the row was edited by hand
    /// or by a newer version of this crate).
    #[error("stored algorithm name is not SHA1, SHA256 or SHA512")]
    UnknownAlgorithm,
    /// A stored scheduled change's kind is not `remove_authenticator`,
    /// `regenerate_backup_codes` or `disable` (the row was edited by hand or by a newer version
    /// of this crate). The change is not acted on.
    #[error("stored scheduled change kind is not one this version knows")]
    UnknownChangeKind,
    /// The table prefix is not a safe SQL identifier prefix.
    #[error(
        "table prefix must be 1 to 32 characters a-z, 0-9 or '_', starting with a letter or '_'"
    )]
    InvalidPrefix,
}

/// The sqlx error behind [`SqlStoreError::Database`], from sqlx 0.9 (features `sqlite`,
/// `postgres`) or sqlx 0.8 (features `sqlite-sqlx08`, `postgres-sqlx08`).
///
/// Displays as the sqlx error does, and its [`source`](std::error::Error::source) is that error's
/// source. Most applications only log it; one that needs the sqlx error itself (to tell a pool
/// timeout from a refused statement, say) asks for the version it is on.
#[derive(Debug)]
pub struct DatabaseError(SqlxError);

#[derive(Debug)]
enum SqlxError {
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    V09(::sqlx::Error),
    #[cfg(any(feature = "sqlite-sqlx08", feature = "postgres-sqlx08"))]
    V08(::sqlx08::Error),
}

impl DatabaseError {
    /// The sqlx 0.9 error, if the store that failed is built on sqlx 0.9.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[must_use]
    pub fn as_sqlx09(&self) -> Option<&::sqlx::Error> {
        match &self.0 {
            SqlxError::V09(e) => Some(e),
            #[cfg(any(feature = "sqlite-sqlx08", feature = "postgres-sqlx08"))]
            SqlxError::V08(_) => None,
        }
    }

    /// The sqlx 0.8 error, if the store that failed is built on sqlx 0.8.
    #[cfg(any(feature = "sqlite-sqlx08", feature = "postgres-sqlx08"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "sqlite-sqlx08", feature = "postgres-sqlx08")))
    )]
    #[must_use]
    pub fn as_sqlx08(&self) -> Option<&::sqlx08::Error> {
        match &self.0 {
            SqlxError::V08(e) => Some(e),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            SqlxError::V09(_) => None,
        }
    }

    fn inner(&self) -> &(dyn std::error::Error + 'static) {
        match &self.0 {
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            SqlxError::V09(e) => e,
            #[cfg(any(feature = "sqlite-sqlx08", feature = "postgres-sqlx08"))]
            SqlxError::V08(e) => e,
        }
    }
}

impl core::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self.inner(), f)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner().source()
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<::sqlx::Error> for SqlStoreError {
    fn from(e: ::sqlx::Error) -> Self {
        Self::Database(DatabaseError(SqlxError::V09(e)))
    }
}

#[cfg(any(feature = "sqlite-sqlx08", feature = "postgres-sqlx08"))]
impl From<::sqlx08::Error> for SqlStoreError {
    fn from(e: ::sqlx08::Error) -> Self {
        Self::Database(DatabaseError(SqlxError::V08(e)))
    }
}

/// Checks that `prefix` can be pasted into SQL as the start of an unquoted identifier. This is
/// the only dynamic part of any statement the stores build, so it is what keeps them free of
/// SQL injection.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), SqlStoreError> {
    let mut bytes = prefix.bytes();
    let first_ok = matches!(bytes.next(), Some(b'a'..=b'z' | b'_'));
    let rest_ok = bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'));
    if first_ok && rest_ok && prefix.len() <= 32 {
        Ok(())
    } else {
        Err(SqlStoreError::InvalidPrefix)
    }
}

/// Builds a statement by replacing every `{p}` in `template` with the (checked) prefix.
pub(crate) fn stmt(template: &str, prefix: &str) -> Arc<str> {
    template.replace("{p}", prefix).into()
}

/// One embedded schema file: the version its name starts with, and its text.
pub(crate) struct Migration {
    /// `1` for `0001_*.sql`; recorded in `{prefix}schema_version` once applied.
    pub(crate) version: i64,
    /// The SQL, written with the default prefix.
    pub(crate) sql: &'static str,
}

/// The embedded migration text with the default prefix replaced by `prefix`.
pub(crate) fn migration_sql(file: &str, prefix: &str) -> String {
    file.replace(DEFAULT_TABLE_PREFIX, prefix)
}

/// The migrations of `all` not in `applied`, in order.
pub(crate) fn pending_migrations<'a>(
    all: &'a [Migration],
    applied: &[i64],
) -> impl Iterator<Item = &'a Migration> {
    all.iter().filter(move |m| !applied.contains(&m.version))
}

/// A stored token hash. `NULL` (a recovery request made before cancel tokens existed) reads as
/// all zeros, which is no token's SHA-256; the stores never match `NULL` in SQL either.
pub(crate) fn token_hash(
    value: Option<Vec<u8>>,
    field: &'static str,
) -> Result<TokenHash, SqlStoreError> {
    match value {
        None => Ok([0; 32]),
        Some(bytes) => {
            TokenHash::try_from(bytes.as_slice()).map_err(|_| SqlStoreError::OutOfRange { field })
        }
    }
}

/// `u64` to a `BIGINT` column; refuses values above `i64::MAX`.
pub(crate) fn to_i64(value: u64, field: &'static str) -> Result<i64, SqlStoreError> {
    i64::try_from(value).map_err(|_| SqlStoreError::OutOfRange { field })
}

/// A `BIGINT` column to `u64`; refuses negative values.
pub(crate) fn to_u64(value: i64, field: &'static str) -> Result<u64, SqlStoreError> {
    u64::try_from(value).map_err(|_| SqlStoreError::OutOfRange { field })
}

/// An optional `u64` to a nullable `BIGINT` column; refuses values above `i64::MAX`.
pub(crate) fn opt_i64(
    value: Option<u64>,
    field: &'static str,
) -> Result<Option<i64>, SqlStoreError> {
    value.map(|v| to_i64(v, field)).transpose()
}

/// A nullable `BIGINT` column to an optional `u64`; refuses negative values.
pub(crate) fn opt_u64(
    value: Option<i64>,
    field: &'static str,
) -> Result<Option<u64>, SqlStoreError> {
    value.map(|v| to_u64(v, field)).transpose()
}

/// A `BIGINT` column to `u32`; refuses values outside `0..=u32::MAX`.
pub(crate) fn to_u32(value: i64, field: &'static str) -> Result<u32, SqlStoreError> {
    u32::try_from(value).map_err(|_| SqlStoreError::OutOfRange { field })
}

/// An algorithm name read back from the database.
pub(crate) fn algorithm(name: &str) -> Result<crate::Algorithm, SqlStoreError> {
    crate::Algorithm::from_name(name).ok_or(SqlStoreError::UnknownAlgorithm)
}

/// The columns a [`ChangeKind`] is stored in: its name, the target authenticator (only for
/// `remove_authenticator`) and the new backup code hashes, concatenated (only for
/// `regenerate_backup_codes`; empty, not `NULL`, for no codes).
pub(crate) fn change_columns(kind: &ChangeKind) -> (&'static str, Option<&str>, Option<Vec<u8>>) {
    match kind {
        ChangeKind::RemoveAuthenticator { authenticator } => {
            (kind.as_str(), Some(authenticator.as_str()), None)
        }
        ChangeKind::RegenerateBackupCodes { hashes } => {
            (kind.as_str(), None, Some(hashes.concat()))
        }
        ChangeKind::Disable => (kind.as_str(), None, None),
    }
}

/// A scheduled change read back from its columns. A kind this version does not know, a
/// `remove_authenticator` without a target, or hashes that are not whole 32-byte hashes are
/// refused: the change is never acted on half-understood.
pub(crate) fn change_record(
    id: String,
    kind: &str,
    authenticator: Option<String>,
    hashes: Option<Vec<u8>>,
    requested_at: i64,
    not_before: i64,
) -> Result<ScheduledChangeRecord, SqlStoreError> {
    let kind = match kind {
        "remove_authenticator" => ChangeKind::RemoveAuthenticator {
            authenticator: authenticator.ok_or(SqlStoreError::OutOfRange {
                field: "authenticator",
            })?,
        },
        "regenerate_backup_codes" => {
            let field = "backup_code_hashes";
            let bytes = hashes.ok_or(SqlStoreError::OutOfRange { field })?;
            let chunks = bytes.chunks_exact(32);
            if !chunks.remainder().is_empty() {
                return Err(SqlStoreError::OutOfRange { field });
            }
            let hashes = chunks
                .map(|c| {
                    BackupCodeHash::try_from(c).map_err(|_| SqlStoreError::OutOfRange { field })
                })
                .collect::<Result<_, _>>()?;
            ChangeKind::RegenerateBackupCodes { hashes }
        }
        "disable" => ChangeKind::Disable,
        _ => return Err(SqlStoreError::UnknownChangeKind),
    };
    Ok(ScheduledChangeRecord {
        id,
        kind,
        requested_at: to_u64(requested_at, "requested_at")?,
        not_before: to_u64(not_before, "not_before")?,
    })
}

/// The caller's `expire_at` for a limiter row. It only tells the store when it may purge the
/// row, so a value beyond `i64::MAX` ("never") is saturated rather than refused.
pub(crate) fn expire_at_i64(expire_at: u64) -> i64 {
    i64::try_from(expire_at).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rules() {
        for ok in ["twofactor_", "_x", "a", "app2_tf_"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Tf_",
            "tf-",
            "tf_;drop",
            "tf \"x",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conversions_refuse_instead_of_wrapping() {
        assert_eq!(to_i64(i64::MAX as u64, "f").unwrap(), i64::MAX);
        assert!(to_i64(i64::MAX as u64 + 1, "f").is_err());
        assert!(to_u64(-1, "f").is_err());
        assert!(to_u32(i64::from(u32::MAX) + 1, "f").is_err());
        assert!(to_u32(-1, "f").is_err());
        assert_eq!(opt_i64(None, "f").unwrap(), None);
        assert!(opt_i64(Some(u64::MAX), "f").is_err());
        assert_eq!(opt_u64(Some(7), "f").unwrap(), Some(7));
        assert!(opt_u64(Some(-1), "f").is_err());
        assert_eq!(expire_at_i64(u64::MAX), i64::MAX);
    }

    #[test]
    fn token_hashes_must_be_32_bytes() {
        assert_eq!(token_hash(None, "f").unwrap(), [0; 32]);
        assert_eq!(token_hash(Some(vec![7; 32]), "f").unwrap(), [7; 32]);
        assert!(token_hash(Some(vec![7; 31]), "f").is_err());
        assert!(token_hash(Some(vec![7; 33]), "f").is_err());
    }

    #[test]
    fn changes_round_trip_through_their_columns() {
        let kinds = [
            ChangeKind::RemoveAuthenticator {
                authenticator: "phone".into(),
            },
            ChangeKind::RegenerateBackupCodes { hashes: vec![] },
            ChangeKind::RegenerateBackupCodes {
                hashes: (0..10).map(|i| [i; 32]).collect(),
            },
            ChangeKind::Disable,
        ];
        for kind in kinds {
            let (name, target, hashes) = change_columns(&kind);
            let record =
                change_record("c".into(), name, target.map(str::to_owned), hashes, 1, 2).unwrap();
            assert_eq!(record.kind, kind);
            assert_eq!((record.requested_at, record.not_before), (1, 2));
        }
    }

    #[test]
    fn malformed_changes_are_refused() {
        let read = |kind: &str, target: Option<&str>, hashes: Option<Vec<u8>>| {
            change_record("c".into(), kind, target.map(str::to_owned), hashes, 1, 2)
        };
        assert!(matches!(
            read("format_disk", None, None),
            Err(SqlStoreError::UnknownChangeKind)
        ));
        assert!(matches!(
            read("Disable", None, None),
            Err(SqlStoreError::UnknownChangeKind)
        ));
        assert!(matches!(
            read("remove_authenticator", None, None),
            Err(SqlStoreError::OutOfRange {
                field: "authenticator"
            })
        ));
        for bad in [
            None,
            Some(vec![0; 31]),
            Some(vec![0; 33]),
            Some(vec![0; 65]),
        ] {
            assert!(matches!(
                read("regenerate_backup_codes", None, bad),
                Err(SqlStoreError::OutOfRange {
                    field: "backup_code_hashes"
                })
            ));
        }
        assert!(matches!(
            change_record("c".into(), "disable", None, None, -1, 2),
            Err(SqlStoreError::OutOfRange { .. })
        ));
    }

    #[test]
    fn only_unapplied_migrations_run() {
        const ALL: &[Migration] = &[
            Migration {
                version: 1,
                sql: "a",
            },
            Migration {
                version: 2,
                sql: "b",
            },
            Migration {
                version: 3,
                sql: "c",
            },
        ];
        let run = |applied: &[i64]| -> Vec<i64> {
            pending_migrations(ALL, applied)
                .map(|m| m.version)
                .collect()
        };
        assert_eq!(run(&[]), [1, 2, 3]);
        assert_eq!(run(&[1]), [2, 3]);
        assert_eq!(run(&[1, 2, 3]), Vec::<i64>::new());
    }
}
