//! `store::SqliteStore` and `store::PostgresStore`, the one-name stores, built on a pool of
//! either sqlx: the conformance suite through the wrapper on a sqlx 0.9 pool and on a sqlx 0.8
//! pool, then the pair races with one instance on each version over one database (the same
//! type holds both, so the suite can mix them), and the errors of either version through the
//! one `SqlStoreError`. PostgreSQL (`TWOFACTOR_TEST_POSTGRES_URL`) runs in the test database's
//! schema, each test under a table prefix of its own, dropped at the end.

use std::path::PathBuf;
use std::time::Duration;

use twofactor::store::{
    CredentialStore, PostgresStore, Purge, SqlStoreError, SqliteStore, conformance,
};

use crate::common;

/// A fresh database file, deleted (with its WAL files) on drop.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("{}.db", common::unique("twofactor_any")));
        Self { path }
    }

    /// A pool of sqlx 0.9, on the options the wrapper recommends (inferred as 0.9's).
    async fn pool_09(&self) -> sqlx::SqlitePool {
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(SqliteStore::recommended_options(&self.path))
            .await
            .unwrap()
    }

    /// A pool of sqlx 0.8 on the same file, on the same call inferred as 0.8's options.
    async fn pool_08(&self) -> sqlx08::SqlitePool {
        sqlx08::sqlite::SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(SqliteStore::recommended_options(&self.path))
            .await
            .unwrap()
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
async fn sqlite_on_sqlx09_conforms() {
    let db = TempDb::new();
    let store = SqliteStore::new(db.pool_09().await);
    assert!(store.as_sqlx09().is_some() && store.as_sqlx08().is_none());
    store.migrate().await.unwrap();
    conformance::credential_store(store.clone()).await;
    conformance::ephemeral_store(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_on_sqlx08_conforms() {
    let db = TempDb::new();
    let store = SqliteStore::new(db.pool_08().await);
    assert!(store.as_sqlx08().is_some() && store.as_sqlx09().is_none());
    store.migrate().await.unwrap();
    conformance::credential_store(store.clone()).await;
    conformance::ephemeral_store(store).await;
}

/// One file, one instance on each sqlx: every race has exactly one winner across the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_sqlx09_and_sqlx08_race_over_one_file() {
    let db = TempDb::new();
    let on_09 = SqliteStore::with_prefix(db.pool_09().await, "mixed_").unwrap();
    let on_08 = SqliteStore::with_prefix(db.pool_08().await, "mixed_").unwrap();
    let (a, b) = tokio::join!(on_09.migrate(), on_08.migrate());
    a.unwrap();
    b.unwrap();
    conformance::credential_store_pair(on_09.clone(), on_08.clone()).await;
    conformance::ephemeral_store_pair(on_09, on_08).await;
}

#[tokio::test]
async fn sqlite_errors_are_one_type_on_either_sqlx() {
    let db = TempDb::new();
    for bad in ["", "x; DROP TABLE users; --", "Upper", "9lives"] {
        assert!(matches!(
            SqliteStore::with_prefix(db.pool_09().await, bad),
            Err(SqlStoreError::InvalidPrefix)
        ));
        assert!(matches!(
            SqliteStore::with_prefix(db.pool_08().await, bad),
            Err(SqlStoreError::InvalidPrefix)
        ));
    }

    // No tables: every call fails closed, with the sqlx error of the store's own version.
    let on_09 = SqliteStore::new(db.pool_09().await);
    let on_08 = SqliteStore::new(db.pool_08().await);
    match on_09.backup_codes_remaining("alice").await {
        Err(SqlStoreError::Database(e)) => {
            assert!(e.as_sqlx09().is_some() && e.as_sqlx08().is_none());
            assert!(e.to_string().contains("no such table"), "{e}");
        }
        other => panic!("expected a database error, got {other:?}"),
    }
    match on_08.purge_expired(1).await {
        Err(SqlStoreError::Database(e)) => {
            assert!(e.as_sqlx08().is_some() && e.as_sqlx09().is_none());
            assert!(e.to_string().contains("no such table"), "{e}");
        }
        other => panic!("expected a database error, got {other:?}"),
    }
    assert!(matches!(
        Purge::purge_expired(&on_08, u64::MAX).await,
        Err(SqlStoreError::OutOfRange { field: "now" })
    ));
    conformance::credential_store_unreachable(&on_09).await;
    conformance::ephemeral_store_unreachable(&on_09).await;
    conformance::credential_store_unreachable(&on_08).await;
    conformance::ephemeral_store_unreachable(&on_08).await;
}

/// A table prefix no other test uses, and its tables dropped at the end.
struct Prefix {
    name: String,
    admin: sqlx::PgPool,
}

impl Prefix {
    async fn create(url: &str) -> Self {
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("TWOFACTOR_TEST_POSTGRES_URL is set but unreachable: {e}"));
        let name = format!("{}_", common::unique("tfa"));
        assert!(name.len() <= 32, "{name}");
        Self { name, admin }
    }

    async fn pool_09(url: &str) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(6)
            .connect(url)
            .await
            .unwrap()
    }

    async fn pool_08(url: &str) -> sqlx08::PgPool {
        sqlx08::postgres::PgPoolOptions::new()
            .max_connections(6)
            .connect(url)
            .await
            .unwrap()
    }

    async fn drop(self) {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             AND left(tablename, length($1)) = $1",
        )
        .bind(&self.name)
        .fetch_all(&self.admin)
        .await
        .unwrap();
        assert!(
            !tables.is_empty(),
            "the test created tables under {}",
            self.name
        );
        for table in tables {
            // The names start with a checked prefix and come from the catalogue.
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table} CASCADE")))
                .execute(&self.admin)
                .await
                .unwrap();
        }
        self.admin.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_on_sqlx09_conforms() {
    let url = need_postgres!(postgres_on_sqlx09_conforms);
    let prefix = Prefix::create(&url).await;
    let store = PostgresStore::with_prefix(Prefix::pool_09(&url).await, &prefix.name).unwrap();
    assert!(store.as_sqlx09().is_some() && store.as_sqlx08().is_none());
    store.migrate().await.unwrap();
    conformance::credential_store(store.clone()).await;
    conformance::ephemeral_store(store.clone()).await;
    store.as_sqlx09().unwrap().pool().close().await;
    prefix.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_on_sqlx08_conforms() {
    let url = need_postgres!(postgres_on_sqlx08_conforms);
    let prefix = Prefix::create(&url).await;
    let store = PostgresStore::with_prefix(Prefix::pool_08(&url).await, &prefix.name).unwrap();
    assert!(store.as_sqlx08().is_some() && store.as_sqlx09().is_none());
    store.migrate().await.unwrap();
    conformance::credential_store(store.clone()).await;
    conformance::ephemeral_store(store.clone()).await;
    store.as_sqlx08().unwrap().pool().close().await;
    prefix.drop().await;
}

/// One database, one instance on each sqlx: every race has exactly one winner across the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_sqlx09_and_sqlx08_race_over_one_database() {
    let url = need_postgres!(postgres_sqlx09_and_sqlx08_race_over_one_database);
    let prefix = Prefix::create(&url).await;
    let on_09 = PostgresStore::with_prefix(Prefix::pool_09(&url).await, &prefix.name).unwrap();
    let on_08 = PostgresStore::with_prefix(Prefix::pool_08(&url).await, &prefix.name).unwrap();
    let (a, b) = tokio::join!(on_09.migrate(), on_08.migrate());
    a.unwrap();
    b.unwrap();
    conformance::credential_store_pair(on_09.clone(), on_08.clone()).await;
    conformance::ephemeral_store_pair(on_09.clone(), on_08.clone()).await;
    on_09.as_sqlx09().unwrap().pool().close().await;
    on_08.as_sqlx08().unwrap().pool().close().await;
    prefix.drop().await;
}

#[tokio::test]
async fn postgres_unreachable_fails_closed_on_either_sqlx() {
    let url = need_postgres!(postgres_unreachable_fails_closed_on_either_sqlx);
    let _ = url;
    let nowhere = "postgres://postgres@127.0.0.1:1/test";
    let on_09 = PostgresStore::new(
        sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(500))
            .connect_lazy(nowhere)
            .unwrap(),
    );
    let on_08 = PostgresStore::new(
        sqlx08::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(500))
            .connect_lazy(nowhere)
            .unwrap(),
    );
    match on_09.migrate().await {
        Err(SqlStoreError::Database(e)) => assert!(e.as_sqlx09().is_some()),
        other => panic!("expected a database error, got {other:?}"),
    }
    match on_08.migrate().await {
        Err(SqlStoreError::Database(e)) => assert!(e.as_sqlx08().is_some()),
        other => panic!("expected a database error, got {other:?}"),
    }
    conformance::credential_store_unreachable(&on_09).await;
    conformance::ephemeral_store_unreachable(&on_09).await;
    conformance::credential_store_unreachable(&on_08).await;
    conformance::ephemeral_store_unreachable(&on_08).await;
}
