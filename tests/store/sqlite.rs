//! `SqliteStore` against a real SQLite file (embedded: these tests always run), on both sqlx
//! versions: `store::sqlite` (sqlx 0.9) and `store::sqlx08::sqlite` (sqlx 0.8), the same store
//! source compiled twice. What depends on sqlx itself (pools, transactions, migrations,
//! failures) and the conformance suite run on both, from one macro; the upgrades from older
//! schemas (`upgrades`) and the statement-level edge cases (`statements`) run on sqlx 0.9, whose
//! SQL is the 0.8 copy's too. `store::SqliteStore` wraps either (`any_sqlx.rs`).

/// The tests every sqlx version runs, expanded in a module that imports `SqliteStore` and
/// `migrate` of that version; `$sqlx` is that sqlx crate.
macro_rules! sqlx_suite {
    ($sqlx:ident) => {
        use std::path::PathBuf;

        use $sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
        use twofactor::store::{
            ChallengeRecord, CredentialStore, EphemeralStore, SqlStoreError, conformance,
        };

        use crate::common;

        /// A fresh database file, deleted (with its WAL files) on drop.
        pub(super) struct TempDb {
            pub(super) path: PathBuf,
        }

        impl TempDb {
            pub(super) fn new() -> Self {
                let path = std::env::temp_dir().join(format!("{}.db", common::unique("twofactor_test")));
                Self { path }
            }

            pub(super) async fn pool(&self) -> SqlitePool {
                SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(SqliteStore::recommended_options(&self.path))
                    .await
                    .unwrap()
            }

            pub(super) async fn store(&self) -> SqliteStore {
                let store = SqliteStore::new(self.pool().await);
                store.migrate().await.unwrap();
                store
            }
        }

        impl Drop for TempDb {
            fn drop(&mut self) {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = self.path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance() {
            let db = TempDb::new();
            let store = db.store().await;
            conformance::credential_store(store.clone()).await;
            conformance::ephemeral_store(store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_two_pools_over_one_file() {
            let db = TempDb::new();
            let a = db.store().await;
            let b = SqliteStore::new(db.pool().await);
            conformance::credential_store_pair(a.clone(), b.clone()).await;
            conformance::ephemeral_store_pair(a, b).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn in_memory_database_on_one_connection() {
            // `sqlite::memory:` is private to each connection, so an in-memory store needs a pool of
            // exactly one connection that never closes.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect("sqlite::memory:")
                .await
                .unwrap();
            migrate(&pool).await.unwrap();
            let store = SqliteStore::new(pool);
            conformance::credential_store(store.clone()).await;
            conformance::ephemeral_store(store).await;
        }

        #[tokio::test]
        async fn migrate_is_idempotent_and_leaves_app_tables_alone() {
            let db = TempDb::new();
            let pool = db.pool().await;
            $sqlx::query("CREATE TABLE users (id TEXT PRIMARY KEY)")
                .execute(&pool)
                .await
                .unwrap();
            $sqlx::query("INSERT INTO users VALUES ('alice')")
                .execute(&pool)
                .await
                .unwrap();
            migrate(&pool).await.unwrap();
            let store = SqliteStore::new(pool.clone());
            common::enrolled(&store, "alice", 2).await;
            migrate(&pool).await.unwrap();
            store.migrate().await.unwrap();
            assert_eq!(store.backup_codes_remaining("alice").await.unwrap(), 2);
            let users: i64 = $sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(users, 1);
            let tables: Vec<String> = $sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'users' ORDER BY name",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            assert_eq!(
                tables,
                [
                    "twofactor_authenticators",
                    "twofactor_backup_codes",
                    "twofactor_challenges",
                    "twofactor_credentials_v2",
                    "twofactor_devices",
                    "twofactor_limiter",
                    "twofactor_notices",
                    "twofactor_recovery",
                    "twofactor_scheduled_changes",
                    "twofactor_schema_version"
                ]
            );
            let versions: Vec<i64> =
                $sqlx::query_scalar("SELECT version FROM twofactor_schema_version ORDER BY version")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            assert_eq!(versions, [1, 2, 3, 4], "each schema file recorded once");
        }

        #[tokio::test]
        async fn concurrent_migrations_apply_each_file_once() {
            let db = TempDb::new();
            let a = SqliteStore::new(db.pool().await);
            let b = SqliteStore::new(db.pool().await);
            // Two processes starting at once: the second waits for the first's BEGIN IMMEDIATE, then
            // finds both versions recorded (SQLite's ADD COLUMN would fail if run twice).
            let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
            ra.unwrap();
            rb.unwrap();
            common::enrolled(&a, "alice", 2).await;
            assert_eq!(b.backup_codes_remaining("alice").await.unwrap(), 2);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn custom_prefix_keeps_stores_apart() {
            let db = TempDb::new();
            let pool = db.pool().await;
            let a = SqliteStore::new(pool.clone());
            let b = SqliteStore::with_prefix(pool.clone(), "tenant2_tf_").unwrap();
            a.migrate().await.unwrap();
            b.migrate().await.unwrap();
            common::enrolled(&a, "alice", 3).await;
            assert_eq!(
                b.get_credentials("alice").await.unwrap().into_iter().next(),
                None
            );
            conformance::credential_store(b.clone()).await;
            conformance::ephemeral_store(b).await;
            assert_eq!(
                a.get_credentials("alice")
                    .await
                    .unwrap()
                    .into_iter()
                    .next()
                    .map(|c| c.enabled),
                Some(true),
                "the suite on one prefix must not touch the other"
            );
            assert_eq!(a.backup_codes_remaining("alice").await.unwrap(), 3);
            for bad in ["", "x; DROP TABLE users; --", "Upper", "9lives", "a-b"] {
                assert!(matches!(
                    SqliteStore::with_prefix(pool.clone(), bad),
                    Err(SqlStoreError::InvalidPrefix)
                ));
            }
        }

        #[tokio::test]
        async fn missing_tables_are_an_error_not_a_panic() {
            let db = TempDb::new();
            let store = SqliteStore::new(db.pool().await);
            conformance::credential_store_unreachable(&store).await;
            conformance::ephemeral_store_unreachable(&store).await;
        }

        #[tokio::test]
        async fn unreachable_database_fails_closed() {
            let dir = std::env::temp_dir().join(common::unique("twofactor_no_such_dir"));
            let options = SqliteConnectOptions::new()
                .filename(dir.join("db.sqlite"))
                .create_if_missing(false);
            let pool = SqlitePoolOptions::new()
                .acquire_timeout(std::time::Duration::from_millis(500))
                .connect_lazy_with(options);
            let store = SqliteStore::new(pool);
            assert!(matches!(
                store.migrate().await,
                Err(SqlStoreError::Database(_))
            ));
            conformance::credential_store_unreachable(&store).await;
            conformance::ephemeral_store_unreachable(&store).await;
        }

        #[tokio::test]
        async fn corrupt_rows_are_errors() {
            let db = TempDb::new();
            let store = db.store().await;
            common::enrolled(&store, "mallory", 1).await;
            $sqlx::query("UPDATE twofactor_authenticators SET algorithm = 'MD5' WHERE user_id = 'mallory'")
                .execute(store.pool())
                .await
                .unwrap();
            assert!(matches!(
                store.get_credentials("mallory").await,
                Err(SqlStoreError::UnknownAlgorithm)
            ));
            $sqlx::query("UPDATE twofactor_authenticators SET algorithm = 'SHA1', last_step = -5")
                .execute(store.pool())
                .await
                .unwrap();
            assert!(matches!(
                store.get_credentials("mallory").await,
                Err(SqlStoreError::OutOfRange { field: "last_step" })
            ));
            // A refused value changes nothing.
            let too_big = ChallengeRecord {
                user_id: "mallory".into(),
                expires_at: u64::MAX,
            };
            assert!(
                store
                    .put_challenge(&common::hash(1), &too_big)
                    .await
                    .is_err()
            );
            assert_eq!(
                store.get_challenge(&common::hash(1), 0).await.unwrap(),
                None
            );
        }
    };
}

#[cfg(feature = "sqlite")]
mod on_sqlx09 {
    use twofactor::store::sqlite::{SqliteStore, migrate};

    sqlx_suite!(sqlx);
}

#[cfg(feature = "sqlite-sqlx08")]
mod on_sqlx08 {
    use twofactor::store::sqlx08::sqlite::{SqliteStore, migrate};

    sqlx_suite!(sqlx08);
}

#[cfg(feature = "sqlite")]
mod upgrades;

#[cfg(feature = "sqlite")]
mod statements;

/// Both sqlx versions over one file.
#[cfg(all(feature = "sqlite", feature = "sqlite-sqlx08"))]
mod across_sqlx {
    use super::on_sqlx08::TempDb;
    use crate::sql_checks;

    #[tokio::test]
    async fn sqlx_0_8_and_0_9_share_one_schema() {
        let db = TempDb::new();
        let new_pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(twofactor::store::SqliteStore::recommended_options(&db.path))
            .await
            .unwrap();
        let on_09 = twofactor::store::SqliteStore::new(new_pool);
        on_09.migrate().await.unwrap();
        sql_checks::sqlx_0_8_and_0_9_share_one_schema(&on_09, &db.store().await).await;
    }
}
