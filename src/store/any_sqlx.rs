//! `SqliteStore` and `PostgresStore`: the SQL stores under one name, on the application's
//! own sqlx, 0.9 or 0.8.
//!
//! A sqlx pool is a type of one sqlx major version, so the crate compiles its SQL stores once
//! per version: `store::sqlite::SqliteStore` and `store::postgres::PostgresStore` on sqlx 0.9
//! (features `sqlite`, `postgres`), `store::sqlx08::{SqliteStore, PostgresStore}` on sqlx 0.8
//! (features `sqlite-sqlx08`, `postgres-sqlx08`). The two types here wrap whichever of them the
//! application's pool calls for: `SqliteStore::new(pool)` takes a `SqlitePool` of either sqlx,
//! so an application's code is the same on both, and only the feature names in its
//! `Cargo.toml` say which sqlx it is on:
//!
//! ```toml
//! twofactor = { version = "0.1", features = ["sqlite"] }        # sqlx 0.9
//! twofactor = { version = "0.1", features = ["sqlite-sqlx08"] } # sqlx 0.8
//! ```
//!
//! ```rust,no_run
//! # #[cfg(feature = "sqlite")]
//! # async fn app() -> Result<(), Box<dyn std::error::Error>> {
//! use sqlx::sqlite::SqlitePoolOptions; // the application's sqlx, 0.9 or 0.8
//! use twofactor::store::SqliteStore;
//!
//! let pool = SqlitePoolOptions::new()
//!     .connect_with(SqliteStore::recommended_options("app.db")) // options of that same sqlx
//!     .await?;
//! let store = SqliteStore::new(pool);
//! store.migrate().await?;
//! # Ok(()) }
//! ```
//!
//! Features are additive and Cargo unifies them across a build: when one crate of a build turns
//! on `sqlite` and another `sqlite-sqlx08`, both versions are compiled, and each crate's pool
//! still picks its own. A name never changes meaning with the features.
//!
//! Everything the stores do is the same on both versions (same schema, same table prefixes, same
//! contracts, one [`SqlStoreError`]), so the store traits, `migrate()` and
//! `purge_expired()` are here. What depends on the version, the pool
//! itself, is on the versioned store, which `as_sqlx09()` / `as_sqlx08()` hand out.
//!
//! The traits of this module name "a pool (or options) of either sqlx" in signatures. They are
//! sealed: implemented for the two sqlx versions' types only.

use super::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    DeletedCredentials, DeviceRecord, EphemeralStore, LimiterState, LimiterUpdate, Purge,
    RecoveryRecord, RemoveCredential, ScheduledChangeRecord, SqlStoreError, TokenHash,
};

/// The conversions behind the public traits, out of the application's reach.
mod sealed {
    use super::SqlStoreError;

    #[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
    pub trait SqlitePool {
        fn new_store(self) -> super::SqliteStore;
        fn store_with_prefix(self, prefix: &str) -> Result<super::SqliteStore, SqlStoreError>;
    }

    #[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
    pub trait SqliteConnectOptions {
        fn recommended(filename: &std::path::Path) -> Self;
    }

    #[cfg(any(feature = "postgres", feature = "postgres-sqlx08"))]
    pub trait PgPool {
        fn new_store(self) -> super::PostgresStore;
        fn store_with_prefix(self, prefix: &str) -> Result<super::PostgresStore, SqlStoreError>;
    }
}

/// A sqlx `SqlitePool` of either major version: sqlx 0.9's (feature `sqlite`) or sqlx 0.8's
/// (feature `sqlite-sqlx08`). Sealed.
#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))))]
pub trait SqlitePool: sealed::SqlitePool {}

#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
impl<T: sealed::SqlitePool> SqlitePool for T {}

/// sqlx's `SqliteConnectOptions` of either major version: sqlx 0.9's (feature `sqlite`) or
/// sqlx 0.8's (feature `sqlite-sqlx08`). Sealed.
#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))))]
pub trait SqliteConnectOptions: sealed::SqliteConnectOptions {}

#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
impl<T: sealed::SqliteConnectOptions> SqliteConnectOptions for T {}

/// A sqlx `PgPool` of either major version: sqlx 0.9's (feature `postgres`) or sqlx 0.8's
/// (feature `postgres-sqlx08`). Sealed.
#[cfg(any(feature = "postgres", feature = "postgres-sqlx08"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "postgres-sqlx08")))
)]
pub trait PgPool: sealed::PgPool {}

#[cfg(any(feature = "postgres", feature = "postgres-sqlx08"))]
impl<T: sealed::PgPool> PgPool for T {}

/// Credentials, backup codes, recovery requests, device tokens, challenges and rate limits in
/// SQLite, on a pool of the application's sqlx (0.9 with feature `sqlite`, 0.8 with
/// `sqlite-sqlx08`).
///
/// Cheap to clone (the pool and the statement texts are shared). Build it on the pool your
/// application already uses, run [`migrate`](Self::migrate) once at start-up, and pass it to the
/// service as both the credential and the ephemeral store. Every write that must be atomic is
/// one statement or one `BEGIN IMMEDIATE` transaction; use WAL mode
/// ([`recommended_options`](Self::recommended_options)) so readers never wait for writers. See
/// the [module docs](self) for how one type serves both sqlx versions.
#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))))]
#[derive(Clone, Debug)]
pub struct SqliteStore(SqliteVersion);

#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
#[derive(Clone, Debug)]
enum SqliteVersion {
    #[cfg(feature = "sqlite")]
    V09(super::sqlite::SqliteStore),
    #[cfg(feature = "sqlite-sqlx08")]
    V08(super::sqlx08::sqlite::SqliteStore),
}

/// Runs `$body` with `$store` bound to the SQLite store of whichever sqlx this one is on.
#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
macro_rules! on_sqlite {
    ($self:expr, $store:ident => $body:expr) => {
        match &$self.0 {
            #[cfg(feature = "sqlite")]
            SqliteVersion::V09($store) => $body,
            #[cfg(feature = "sqlite-sqlx08")]
            SqliteVersion::V08($store) => $body,
        }
    };
}

#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
impl SqliteStore {
    /// A store on `pool` (a `SqlitePool` of sqlx 0.9 or 0.8) with the default table prefix
    /// `twofactor_`.
    pub fn new<P: SqlitePool>(pool: P) -> Self {
        pool.new_store()
    }

    /// A store on `pool` (a `SqlitePool` of sqlx 0.9 or 0.8) whose tables start with `prefix`
    /// instead of `twofactor_`.
    ///
    /// # Errors
    ///
    /// [`SqlStoreError::InvalidPrefix`] unless `prefix` is 1 to 32 characters of `a-z`, `0-9`
    /// and `_`, not starting with a digit (it is pasted into SQL, so nothing else is accepted).
    pub fn with_prefix<P: SqlitePool>(pool: P, prefix: &str) -> Result<Self, SqlStoreError> {
        pool.store_with_prefix(prefix)
    }

    /// Connection options this store works best with: WAL journal (readers never wait for the
    /// writer), `synchronous = NORMAL` (durable at every checkpoint, safe in WAL), a 5 s busy
    /// timeout, and the file created if missing.
    ///
    /// They are `SqliteConnectOptions` of the sqlx the caller wants, which Rust infers from where
    /// they go: `SqlitePoolOptions::new().connect_with(SqliteStore::recommended_options(path))`
    /// needs no annotation. To change them first, name the type:
    /// `let options: sqlx::sqlite::SqliteConnectOptions = SqliteStore::recommended_options(path);`.
    pub fn recommended_options<O: SqliteConnectOptions>(
        filename: impl AsRef<std::path::Path>,
    ) -> O {
        O::recommended(filename.as_ref())
    }

    /// Brings this store's tables up to date; safe to call at every start-up.
    ///
    /// Each file of `migrations/sqlite/` runs once: the versions applied are recorded in
    /// `{prefix}schema_version`. Everything runs in one `BEGIN IMMEDIATE` transaction, so several
    /// processes starting at once apply each file once, and a failure leaves the schema as it
    /// was. The application's own sqlx migrations (`_sqlx_migrations`) are never touched.
    ///
    /// # Errors
    ///
    /// [`SqlStoreError::Database`] when the database cannot be reached or refuses the schema.
    pub async fn migrate(&self) -> Result<(), SqlStoreError> {
        on_sqlite!(self, store => store.migrate().await)
    }

    /// Deletes challenges, device tokens and notice tokens that expired at or before `now` and
    /// limiter rows whose `expire_at` is before `now`; returns how many rows went. Run it now and
    /// then (say every few minutes): expired rows are never returned as valid, they only take
    /// space.
    ///
    /// # Errors
    ///
    /// [`SqlStoreError::Database`] on a database failure; [`SqlStoreError::OutOfRange`] if
    /// `now` exceeds `i64::MAX`.
    pub async fn purge_expired(&self, now: u64) -> Result<u64, SqlStoreError> {
        on_sqlite!(self, store => store.purge_expired(now).await)
    }

    /// The store on sqlx 0.9 this one is, or `None` if it is on sqlx 0.8. For what depends on
    /// the version, such as [`pool`](super::sqlite::SqliteStore::pool).
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[must_use]
    pub fn as_sqlx09(&self) -> Option<&super::sqlite::SqliteStore> {
        match &self.0 {
            SqliteVersion::V09(store) => Some(store),
            #[cfg(feature = "sqlite-sqlx08")]
            SqliteVersion::V08(_) => None,
        }
    }

    /// The store on sqlx 0.8 this one is, or `None` if it is on sqlx 0.9. For what depends on
    /// the version, such as [`pool`](super::sqlx08::sqlite::SqliteStore::pool).
    #[cfg(feature = "sqlite-sqlx08")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite-sqlx08")))]
    #[must_use]
    pub fn as_sqlx08(&self) -> Option<&super::sqlx08::sqlite::SqliteStore> {
        match &self.0 {
            SqliteVersion::V08(store) => Some(store),
            #[cfg(feature = "sqlite")]
            SqliteVersion::V09(_) => None,
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<super::sqlite::SqliteStore> for SqliteStore {
    fn from(store: super::sqlite::SqliteStore) -> Self {
        Self(SqliteVersion::V09(store))
    }
}

#[cfg(feature = "sqlite-sqlx08")]
impl From<super::sqlx08::sqlite::SqliteStore> for SqliteStore {
    fn from(store: super::sqlx08::sqlite::SqliteStore) -> Self {
        Self(SqliteVersion::V08(store))
    }
}

#[cfg(feature = "sqlite")]
impl sealed::SqlitePool for ::sqlx::SqlitePool {
    fn new_store(self) -> SqliteStore {
        super::sqlite::SqliteStore::new(self).into()
    }

    fn store_with_prefix(self, prefix: &str) -> Result<SqliteStore, SqlStoreError> {
        super::sqlite::SqliteStore::with_prefix(self, prefix).map(Into::into)
    }
}

#[cfg(feature = "sqlite-sqlx08")]
impl sealed::SqlitePool for ::sqlx08::SqlitePool {
    fn new_store(self) -> SqliteStore {
        super::sqlx08::sqlite::SqliteStore::new(self).into()
    }

    fn store_with_prefix(self, prefix: &str) -> Result<SqliteStore, SqlStoreError> {
        super::sqlx08::sqlite::SqliteStore::with_prefix(self, prefix).map(Into::into)
    }
}

#[cfg(feature = "sqlite")]
impl sealed::SqliteConnectOptions for ::sqlx::sqlite::SqliteConnectOptions {
    fn recommended(filename: &std::path::Path) -> Self {
        super::sqlite::SqliteStore::recommended_options(filename)
    }
}

#[cfg(feature = "sqlite-sqlx08")]
impl sealed::SqliteConnectOptions for ::sqlx08::sqlite::SqliteConnectOptions {
    fn recommended(filename: &std::path::Path) -> Self {
        super::sqlx08::sqlite::SqliteStore::recommended_options(filename)
    }
}

/// Credentials, backup codes, recovery requests, device tokens, challenges and rate limits in
/// PostgreSQL, on a pool of the application's sqlx (0.9 with feature `postgres`, 0.8 with
/// `postgres-sqlx08`).
///
/// Cheap to clone (the pool and the statement texts are shared). Build it on the pool your
/// application already uses, run [`migrate`](Self::migrate) once at start-up, and pass it to the
/// service as the credential store, and as the ephemeral store unless that lives in Redis.
/// Several application servers can share one database: every write that must be atomic is one
/// conditional statement or one transaction holding a row lock. See the [module docs](self) for
/// how one type serves both sqlx versions.
#[cfg(any(feature = "postgres", feature = "postgres-sqlx08"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "postgres-sqlx08")))
)]
#[derive(Clone, Debug)]
pub struct PostgresStore(PostgresVersion);

#[cfg(any(feature = "postgres", feature = "postgres-sqlx08"))]
#[derive(Clone, Debug)]
enum PostgresVersion {
    #[cfg(feature = "postgres")]
    V09(super::postgres::PostgresStore),
    #[cfg(feature = "postgres-sqlx08")]
    V08(super::sqlx08::postgres::PostgresStore),
}

/// Runs `$body` with `$store` bound to the PostgreSQL store of whichever sqlx this one is on.
#[cfg(any(feature = "postgres", feature = "postgres-sqlx08"))]
macro_rules! on_postgres {
    ($self:expr, $store:ident => $body:expr) => {
        match &$self.0 {
            #[cfg(feature = "postgres")]
            PostgresVersion::V09($store) => $body,
            #[cfg(feature = "postgres-sqlx08")]
            PostgresVersion::V08($store) => $body,
        }
    };
}

#[cfg(any(feature = "postgres", feature = "postgres-sqlx08"))]
impl PostgresStore {
    /// A store on `pool` (a `PgPool` of sqlx 0.9 or 0.8) with the default table prefix
    /// `twofactor_`.
    pub fn new<P: PgPool>(pool: P) -> Self {
        pool.new_store()
    }

    /// A store on `pool` (a `PgPool` of sqlx 0.9 or 0.8) whose tables start with `prefix`
    /// instead of `twofactor_`.
    ///
    /// # Errors
    ///
    /// [`SqlStoreError::InvalidPrefix`] unless `prefix` is 1 to 32 characters of `a-z`, `0-9`
    /// and `_`, not starting with a digit (it is pasted into SQL, so nothing else is accepted).
    pub fn with_prefix<P: PgPool>(pool: P, prefix: &str) -> Result<Self, SqlStoreError> {
        pool.store_with_prefix(prefix)
    }

    /// Brings this store's tables up to date; safe to call at every start-up.
    ///
    /// Each file of `migrations/postgres/` runs once: the versions applied are recorded in
    /// `{prefix}schema_version`. Everything runs in one transaction under a transaction-level
    /// advisory lock, so several application instances starting at once apply each file once,
    /// and a failure leaves the schema as it was. The application's own `_sqlx_migrations` is
    /// never touched. Tables go into the first schema of the connection's `search_path`.
    ///
    /// # Errors
    ///
    /// [`SqlStoreError::Database`] when the database cannot be reached or refuses the schema.
    pub async fn migrate(&self) -> Result<(), SqlStoreError> {
        on_postgres!(self, store => store.migrate().await)
    }

    /// Deletes challenges, device tokens and notice tokens that expired at or before `now` and
    /// limiter rows whose `expire_at` is before `now`; returns how many rows went. Run it now and
    /// then (say every few minutes): expired rows are never returned as valid, they only take
    /// space.
    ///
    /// # Errors
    ///
    /// [`SqlStoreError::Database`] on a database failure; [`SqlStoreError::OutOfRange`] if
    /// `now` exceeds `i64::MAX`.
    pub async fn purge_expired(&self, now: u64) -> Result<u64, SqlStoreError> {
        on_postgres!(self, store => store.purge_expired(now).await)
    }

    /// The store on sqlx 0.9 this one is, or `None` if it is on sqlx 0.8. For what depends on
    /// the version, such as [`pool`](super::postgres::PostgresStore::pool).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[must_use]
    pub fn as_sqlx09(&self) -> Option<&super::postgres::PostgresStore> {
        match &self.0 {
            PostgresVersion::V09(store) => Some(store),
            #[cfg(feature = "postgres-sqlx08")]
            PostgresVersion::V08(_) => None,
        }
    }

    /// The store on sqlx 0.8 this one is, or `None` if it is on sqlx 0.9. For what depends on
    /// the version, such as [`pool`](super::sqlx08::postgres::PostgresStore::pool).
    #[cfg(feature = "postgres-sqlx08")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres-sqlx08")))]
    #[must_use]
    pub fn as_sqlx08(&self) -> Option<&super::sqlx08::postgres::PostgresStore> {
        match &self.0 {
            PostgresVersion::V08(store) => Some(store),
            #[cfg(feature = "postgres")]
            PostgresVersion::V09(_) => None,
        }
    }
}

#[cfg(feature = "postgres")]
impl From<super::postgres::PostgresStore> for PostgresStore {
    fn from(store: super::postgres::PostgresStore) -> Self {
        Self(PostgresVersion::V09(store))
    }
}

#[cfg(feature = "postgres-sqlx08")]
impl From<super::sqlx08::postgres::PostgresStore> for PostgresStore {
    fn from(store: super::sqlx08::postgres::PostgresStore) -> Self {
        Self(PostgresVersion::V08(store))
    }
}

#[cfg(feature = "postgres")]
impl sealed::PgPool for ::sqlx::PgPool {
    fn new_store(self) -> PostgresStore {
        super::postgres::PostgresStore::new(self).into()
    }

    fn store_with_prefix(self, prefix: &str) -> Result<PostgresStore, SqlStoreError> {
        super::postgres::PostgresStore::with_prefix(self, prefix).map(Into::into)
    }
}

#[cfg(feature = "postgres-sqlx08")]
impl sealed::PgPool for ::sqlx08::PgPool {
    fn new_store(self) -> PostgresStore {
        super::sqlx08::postgres::PostgresStore::new(self).into()
    }

    fn store_with_prefix(self, prefix: &str) -> Result<PostgresStore, SqlStoreError> {
        super::sqlx08::postgres::PostgresStore::with_prefix(self, prefix).map(Into::into)
    }
}

/// Trait methods that hand their arguments to the same method of the store of either version
/// (`$on` is `on_sqlite` or `on_postgres`).
macro_rules! forward {
    ($on:ident; $(fn $method:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;)*) => {$(
        async fn $method(&self $(, $arg: $ty)*) -> Result<$ret, SqlStoreError> {
            $on!(self, store => store.$method($($arg),*).await)
        }
    )*};
}

/// The store traits for a facade type, each method forwarded to the versioned store.
macro_rules! store_traits {
    ($facade:ident, $on:ident) => {
        impl CredentialStore for $facade {
            type Error = SqlStoreError;

            forward! { $on;
                fn get_credentials(&self, user_id: &str) -> Vec<CredentialRecord>;
                fn put_pending(
                    &self,
                    user_id: &str,
                    record: &CredentialRecord,
                    only_if_none_enabled: bool,
                ) -> bool;
                fn activate(
                    &self,
                    user_id: &str,
                    expected_secret: &[u8],
                    step: u64,
                    drift: i64,
                    backup_codes: Option<&[BackupCodeHash]>,
                    max_enabled: u32,
                ) -> bool;
                fn advance_step(
                    &self,
                    user_id: &str,
                    id: &str,
                    expected_secret: &[u8],
                    step: u64,
                    drift: i64,
                    now: u64,
                ) -> bool;
                fn rewrite_secret(
                    &self,
                    user_id: &str,
                    id: &str,
                    old_secret: &[u8],
                    new_secret: &[u8],
                ) -> bool;
                fn rename_credential(&self, user_id: &str, id: &str, name: &str) -> bool;
                fn remove_credential(&self, user_id: &str, id: &str) -> RemoveCredential;
                fn delete_credentials(&self, user_id: &str) -> bool;
                fn consume_backup_code(&self, user_id: &str, hash: &BackupCodeHash) -> Option<u32>;
                fn replace_backup_codes(&self, user_id: &str, hashes: &[BackupCodeHash]) -> bool;
                fn backup_codes_remaining(&self, user_id: &str) -> u32;
                fn put_recovery(&self, user_id: &str, record: &RecoveryRecord) -> ();
                fn get_recovery(&self, user_id: &str) -> Option<RecoveryRecord>;
                fn approve_recovery(&self, user_id: &str) -> bool;
                fn cancel_recovery(&self, user_id: &str, include_approved: bool) -> bool;
                fn cancel_recovery_with_token(&self, user_id: &str, cancel_hash: &TokenHash) -> bool;
                fn complete_recovery(&self, user_id: &str, now: u64, approval_required: bool) -> bool;
                fn put_change(&self, user_id: &str, record: &ScheduledChangeRecord) -> bool;
                fn list_changes(&self, user_id: &str) -> Vec<ScheduledChangeRecord>;
                fn take_change(
                    &self,
                    user_id: &str,
                    id: &str,
                    due_by: u64,
                ) -> Option<ScheduledChangeRecord>;
                fn delete_changes(&self, user_id: &str) -> u64;
                fn put_notice(&self, hash: &TokenHash, user_id: &str, expires_at: u64) -> ();
                fn take_notice(&self, user_id: &str, hash: &TokenHash, now: u64) -> bool;
                fn put_device(&self, hash: &TokenHash, record: &DeviceRecord) -> ();
                fn use_device(&self, hash: &TokenHash, now: u64) -> Option<DeviceRecord>;
                fn list_devices(&self, user_id: &str, now: u64) -> Vec<(TokenHash, DeviceRecord)>;
                fn delete_device(&self, hash: &TokenHash) -> bool;
                fn delete_devices(&self, user_id: &str) -> u64;
                fn delete_user(&self, user_id: &str) -> DeletedCredentials;
            }
        }

        impl EphemeralStore for $facade {
            type Error = SqlStoreError;

            forward! { $on;
                fn put_challenge(&self, hash: &ChallengeHash, record: &ChallengeRecord) -> ();
                fn get_challenge(&self, hash: &ChallengeHash, now: u64) -> Option<ChallengeRecord>;
                fn take_challenge(&self, hash: &ChallengeHash, now: u64) -> Option<ChallengeRecord>;
                fn get_limiter(&self, key: &str) -> LimiterState;
                fn delete_user_state(&self, user_id: &str, limiter_keys: &[String]) -> u64;
            }

            async fn update_limiter<F>(
                &self,
                key: &str,
                expire_at: u64,
                update: F,
            ) -> Result<LimiterUpdate, SqlStoreError>
            where
                F: Fn(LimiterState) -> LimiterState + Send + Sync,
            {
                $on!(self, store => store.update_limiter(key, expire_at, update).await)
            }
        }

        /// The same as the inherent `purge_expired`.
        impl Purge for $facade {
            type Error = SqlStoreError;

            async fn purge_expired(&self, now: u64) -> Result<u64, SqlStoreError> {
                $facade::purge_expired(self, now).await
            }
        }
    };
}

#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
store_traits!(SqliteStore, on_sqlite);
#[cfg(any(feature = "postgres", feature = "postgres-sqlx08"))]
store_traits!(PostgresStore, on_postgres);
