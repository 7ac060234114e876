//! The store type, written once: its fields, constructors, `migrate`, `purge_expired`, and the
//! `CredentialStore`, `EphemeralStore` and `Purge` impls, whose methods come from the contract
//! files beside this one.

use std::sync::Arc;

use super::backup_codes::BackupCodeSql;
use super::challenges::ChallengeSql;
use super::changes::ChangeSql;
use super::credentials::AuthenticatorSql;
use super::devices::DeviceSql;
use super::limiter::LimiterSql;
use super::recovery::RecoverySql;

/// The statement texts of one store, built once with its table prefix: one group per contract,
/// and the statements only the dialect's own steps use (`X`).
pub(crate) struct Queries<X> {
    pub(crate) auth: AuthenticatorSql,
    pub(crate) codes: BackupCodeSql,
    pub(crate) recovery: RecoverySql,
    pub(crate) changes: ChangeSql,
    pub(crate) devices: DeviceSql,
    pub(crate) challenges: ChallengeSql,
    pub(crate) limiter: LimiterSql,
    pub(crate) dialect: X,
}

/// A statement text kept ready for the store's lifetime.
pub(crate) type Stmt = Arc<str>;

/// Defines a SQL store type and its trait impls in the dialect module that expands it.
///
/// The module provides, under these names (the flow calls them; the compiler checks each one
/// where the macro is expanded):
///
/// - `sqlx`, `Row` (the dialect's row type) and `sqlx::Row` in scope;
/// - `fn queries(prefix: &str) -> Queries<X>`: the statement texts with the prefix pasted in;
/// - `fn q(&Stmt) -> Query<'_, Db>`: a query on one of them;
/// - `async fn begin(&Pool) -> Result<sqlx::Transaction<'static, Db>, SqlStoreError>`;
/// - `async fn migrate_with_prefix(&Pool, &str)` (expand `migrate::flow!` for it);
/// - `fn digits_column(u32)` and `fn digits(&Row)`: how the `digits` column is typed;
/// - on the store, `lock_user(&self, &mut Conn, user_id)`, taken first by every transaction
///   that reads a user's authenticators before writing them; `write_codes(&self, &mut Conn,
///   user_id, hashes)`, replacing the user's backup codes; `consume_code(&self, user_id, hash)`,
///   the atomic delete-and-count of `consume_backup_code`; and `lock_limiter(&self, &mut Conn,
///   key, expire_at)`, which reads a limiter state so that no other transaction can change it
///   before this one commits.
macro_rules! sql_store {
    (
        $(#[$attr:meta])*
        pub struct $store:ident { pool: $pool:ty, dialect: $x:ty }
    ) => {
        $(#[$attr])*
        #[derive(Clone)]
        pub struct $store {
            pool: $pool,
            prefix: ::std::sync::Arc<str>,
            q: ::std::sync::Arc<$crate::store::sql::store::Queries<$x>>,
        }

        impl ::core::fmt::Debug for $store {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(stringify!($store))
                    .field("prefix", &self.prefix)
                    .finish_non_exhaustive()
            }
        }

        impl $store {
            /// A store on `pool` with the default table prefix `twofactor_`.
            pub fn new(pool: $pool) -> Self {
                use $crate::store::sql::DEFAULT_TABLE_PREFIX;
                Self {
                    pool,
                    prefix: DEFAULT_TABLE_PREFIX.into(),
                    q: ::std::sync::Arc::new(queries(DEFAULT_TABLE_PREFIX)),
                }
            }

            /// A store on `pool` whose tables start with `prefix` instead of `twofactor_`.
            ///
            /// # Errors
            ///
            /// [`SqlStoreError::InvalidPrefix`] unless `prefix` is 1 to 32 characters of `a-z`,
            /// `0-9` and `_`, not starting with a digit (it is pasted into SQL, so nothing else
            /// is accepted).
            pub fn with_prefix(pool: $pool, prefix: &str) -> Result<Self, SqlStoreError> {
                $crate::store::sql::check_prefix(prefix)?;
                Ok(Self {
                    pool,
                    prefix: prefix.into(),
                    q: ::std::sync::Arc::new(queries(prefix)),
                })
            }

            /// The pool this store uses.
            pub fn pool(&self) -> &$pool {
                &self.pool
            }

            /// Brings this store's tables up to date (each schema file once; see [`migrate`]).
            ///
            /// # Errors
            ///
            /// [`SqlStoreError::Database`] when the database cannot be reached or refuses the
            /// schema.
            pub async fn migrate(&self) -> Result<(), SqlStoreError> {
                migrate_with_prefix(&self.pool, &self.prefix).await
            }

            /// Deletes challenges, device tokens and notice tokens that expired at or before
            /// `now` and limiter rows whose `expire_at` is before `now`; returns how many rows
            /// went. Run it now and then (say every few minutes): expired rows are never
            /// returned as valid, they only take space.
            ///
            /// # Errors
            ///
            /// [`SqlStoreError::Database`] on a database failure; [`SqlStoreError::OutOfRange`]
            /// if `now` exceeds `i64::MAX`.
            pub async fn purge_expired(&self, now: u64) -> Result<u64, SqlStoreError> {
                let now = $crate::store::sql::to_i64(now, "now")?;
                let mut tx = begin(&self.pool).await?;
                let mut count = 0;
                for purge in [
                    &self.q.challenges.purge_challenges,
                    &self.q.limiter.purge_limiters,
                    &self.q.devices.purge_devices,
                    &self.q.recovery.purge_notices,
                ] {
                    count += q(purge).bind(now).execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(count)
            }
        }

        impl $crate::store::CredentialStore for $store {
            type Error = SqlStoreError;

            $crate::store::sql::credentials::methods!();
            $crate::store::sql::backup_codes::methods!();
            $crate::store::sql::recovery::methods!();
            $crate::store::sql::changes::methods!();
            $crate::store::sql::devices::methods!();
        }

        impl $crate::store::EphemeralStore for $store {
            type Error = SqlStoreError;

            $crate::store::sql::challenges::methods!();
            $crate::store::sql::limiter::methods!();
        }

        /// The same as the inherent `purge_expired`.
        impl $crate::store::Purge for $store {
            type Error = SqlStoreError;

            async fn purge_expired(&self, now: u64) -> Result<u64, Self::Error> {
                $store::purge_expired(self, now).await
            }
        }

        $crate::store::sql::credentials::rows!();
        $crate::store::sql::recovery::rows!();
        $crate::store::sql::changes::rows!();
        $crate::store::sql::devices::rows!();
        $crate::store::sql::challenges::rows!();
        $crate::store::sql::limiter::rows!();
    };
}
pub(crate) use sql_store;
