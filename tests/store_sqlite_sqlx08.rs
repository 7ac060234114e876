//! `store::sqlx08::SqliteStore` (feature `sqlite-sqlx08`) against a real SQLite file, on
//! sqlx 0.8. The store is the same source as `SqliteStore` compiled against the other sqlx, so
//! this file runs the conformance suite and what depends on sqlx itself (pools, transactions,
//! migrations, failures); the statement-level edge cases are in `store_sqlite.rs`. With
//! `sqlite` on as well, it also checks that both versions share one schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use sqlx08::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use twofactor::store::sqlx08::{SqlStoreError, SqliteStore};
use twofactor::store::{CredentialStore, EphemeralStore, conformance};

/// A fresh database file, deleted (with its WAL files) on drop.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("{}.db", common::unique("twofactor_test08")));
        Self { path }
    }

    async fn pool(&self) -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(SqliteStore::recommended_options(&self.path))
            .await
            .unwrap()
    }

    async fn store(&self) -> SqliteStore {
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
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    twofactor::store::sqlx08::sqlite::migrate(&pool)
        .await
        .unwrap();
    let store = SqliteStore::new(pool);
    conformance::credential_store(store.clone()).await;
    conformance::ephemeral_store(store).await;
}

#[tokio::test]
async fn migrate_is_idempotent_concurrent_safe_and_leaves_app_tables_alone() {
    let db = TempDb::new();
    let pool = db.pool().await;
    sqlx08::query("CREATE TABLE users (id TEXT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    let a = SqliteStore::new(pool.clone());
    let b = SqliteStore::new(db.pool().await);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    common::enrolled(&a, "alice", 2).await;
    twofactor::store::sqlx08::sqlite::migrate(&pool)
        .await
        .unwrap();
    assert_eq!(b.backup_codes_remaining("alice").await.unwrap(), 2);
    let tables: Vec<String> =
        sqlx08::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
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
            "twofactor_schema_version",
            "users"
        ]
    );
    let versions: Vec<i64> =
        sqlx08::query_scalar("SELECT version FROM twofactor_schema_version ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3, 4], "each schema file recorded once");
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
    conformance::credential_store(b).await;
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
    sqlx08::query(
        "UPDATE twofactor_authenticators SET algorithm = 'MD5' WHERE user_id = 'mallory'",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert!(matches!(
        store.get_credentials("mallory").await,
        Err(SqlStoreError::UnknownAlgorithm)
    ));
    sqlx08::query("UPDATE twofactor_authenticators SET algorithm = 'SHA1', last_step = -5")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.get_credentials("mallory").await,
        Err(SqlStoreError::OutOfRange { field: "last_step" })
    ));
}

/// One database file, written by the sqlx 0.9 store and read by the 0.8 one and back: an
/// application moves between the two with no data migration.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlx_0_8_and_0_9_share_one_schema() {
    use twofactor::store::ChallengeRecord;

    let db = TempDb::new();
    let new_pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(twofactor::store::SqliteStore::recommended_options(&db.path))
        .await
        .unwrap();
    let on_09 = twofactor::store::SqliteStore::new(new_pool);
    on_09.migrate().await.unwrap();
    common::enrolled(&on_09, "alice", 3).await;

    let on_08 = db.store().await;
    let cred = on_08
        .get_credentials("alice")
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(
        Some(cred),
        on_09
            .get_credentials("alice")
            .await
            .unwrap()
            .into_iter()
            .next()
    );
    assert_eq!(
        on_08
            .consume_backup_code("alice", &common::hash(2))
            .await
            .unwrap(),
        Some(2)
    );
    assert!(
        on_08
            .advance_step("alice", "first", b"secret-v1", 101, 0, 1_700_000_100)
            .await
            .unwrap()
    );
    let challenge = ChallengeRecord {
        user_id: "alice".into(),
        expires_at: 2_000_000_000,
    };
    on_08
        .put_challenge(&common::hash(7), &challenge)
        .await
        .unwrap();

    // Back on 0.9: the code is gone, the step moved, the challenge can be taken once.
    assert_eq!(
        on_09
            .consume_backup_code("alice", &common::hash(2))
            .await
            .unwrap(),
        None
    );
    assert!(
        !on_09
            .advance_step("alice", "first", b"secret-v1", 101, 0, 1_700_000_100)
            .await
            .unwrap()
    );
    assert_eq!(
        on_09
            .take_challenge(&common::hash(7), 1_900_000_000)
            .await
            .unwrap(),
        Some(challenge)
    );
    assert_eq!(
        on_08
            .take_challenge(&common::hash(7), 1_900_000_000)
            .await
            .unwrap(),
        None
    );
}
