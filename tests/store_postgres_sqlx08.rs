//! `store::sqlx08::PostgresStore` (feature `postgres-sqlx08`) against a real PostgreSQL
//! (`TWOFACTOR_TEST_POSTGRES_URL`), on sqlx 0.8. The store is the same source as
//! `PostgresStore` compiled against the other sqlx, so this file runs the conformance suite and
//! what depends on sqlx itself (pools, transactions, migrations, failures); the statement-level
//! edge cases are in `store_postgres.rs`. Each test works in its own schema `tf_test08_*`,
//! dropped at the end, so tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use sqlx08::Executor;
use sqlx08::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use twofactor::store::sqlx08::{PostgresStore, SqlStoreError};
use twofactor::store::{CredentialStore, conformance};

/// A private schema on the test database; pools built from it see only that schema.
struct Schema {
    url: String,
    name: String,
    admin: PgPool,
}

impl Schema {
    async fn create(url: &str) -> Self {
        let name = common::unique("tf_test08");
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("TWOFACTOR_TEST_POSTGRES_URL is set but unreachable: {e}"));
        admin
            .execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .unwrap();
        Self {
            url: url.to_owned(),
            name,
            admin,
        }
    }

    /// A pool whose connections use this schema.
    async fn pool(&self) -> PgPool {
        self.pool_with_timeout(Duration::from_secs(30)).await
    }

    async fn pool_with_timeout(&self, acquire_timeout: Duration) -> PgPool {
        let schema = self.name.clone();
        let options: PgConnectOptions = self.url.parse().unwrap();
        PgPoolOptions::new()
            .max_connections(6)
            .acquire_timeout(acquire_timeout)
            .after_connect(move |conn, _meta| {
                let set = format!("SET search_path TO {schema}");
                Box::pin(async move {
                    conn.execute(set.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .unwrap()
    }

    async fn store(&self) -> PostgresStore {
        let store = PostgresStore::new(self.pool().await);
        store.migrate().await.unwrap();
        store
    }

    async fn drop(self, stores: &[&PostgresStore]) {
        for s in stores {
            s.pool().close().await;
        }
        self.admin
            .execute(format!("DROP SCHEMA {} CASCADE", self.name).as_str())
            .await
            .unwrap();
        self.admin.close().await;
    }
}

macro_rules! need_postgres {
    ($test:literal) => {
        match common::postgres_url($test) {
            Some(url) => url,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let url = need_postgres!("store_postgres_sqlx08::conformance");
    let schema = Schema::create(&url).await;
    let store = schema.store().await;
    conformance::credential_store(store.clone()).await;
    conformance::ephemeral_store(store.clone()).await;
    schema.drop(&[&store]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_two_pools_over_one_database() {
    let url = need_postgres!("store_postgres_sqlx08::conformance_two_pools_over_one_database");
    let schema = Schema::create(&url).await;
    let a = schema.store().await;
    let b = PostgresStore::new(schema.pool().await);
    conformance::credential_store_pair(a.clone(), b.clone()).await;
    conformance::ephemeral_store_pair(a.clone(), b.clone()).await;
    schema.drop(&[&a, &b]).await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_concurrent_safe() {
    let url = need_postgres!("store_postgres_sqlx08::migrate_is_idempotent_and_concurrent_safe");
    let schema = Schema::create(&url).await;
    let a = PostgresStore::new(schema.pool().await);
    let b = PostgresStore::new(schema.pool().await);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    common::enrolled(&a, "alice", 2).await;
    twofactor::store::sqlx08::postgres::migrate(b.pool())
        .await
        .unwrap();
    assert_eq!(b.backup_codes_remaining("alice").await.unwrap(), 2);
    let versions: Vec<i64> =
        sqlx08::query_scalar("SELECT version FROM twofactor_schema_version ORDER BY version")
            .fetch_all(a.pool())
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3, 4], "each schema file recorded once");
    schema.drop(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn custom_prefix_keeps_stores_apart() {
    let url = need_postgres!("store_postgres_sqlx08::custom_prefix_keeps_stores_apart");
    let schema = Schema::create(&url).await;
    let a = schema.store().await;
    let pool = a.pool().clone();
    let b = PostgresStore::with_prefix(pool.clone(), "tenant2_tf_").unwrap();
    b.migrate().await.unwrap();
    common::enrolled(&a, "alice", 3).await;
    assert_eq!(
        b.get_credentials("alice").await.unwrap().into_iter().next(),
        None
    );
    conformance::credential_store(b.clone()).await;
    assert_eq!(a.backup_codes_remaining("alice").await.unwrap(), 3);
    for bad in ["", "x; DROP TABLE users; --", "Upper", "9lives", "a-b"] {
        assert!(matches!(
            PostgresStore::with_prefix(pool.clone(), bad),
            Err(SqlStoreError::InvalidPrefix)
        ));
    }
    schema.drop(&[&a, &b]).await;
}

#[tokio::test]
async fn unreachable_database_fails_closed() {
    let url = need_postgres!("store_postgres_sqlx08::unreachable_database_fails_closed");
    let _ = url;
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/test")
        .unwrap();
    let store = PostgresStore::new(pool);
    assert!(matches!(
        store.migrate().await,
        Err(SqlStoreError::Database(_))
    ));
    conformance::credential_store_unreachable(&store).await;
    conformance::ephemeral_store_unreachable(&store).await;
}

#[tokio::test]
async fn server_gone_mid_life_fails_closed() {
    let url = need_postgres!("store_postgres_sqlx08::server_gone_mid_life_fails_closed");
    let schema = Schema::create(&url).await;
    let direct = schema.store().await;
    common::enrolled(&direct, "alice", 3).await;

    // The same schema reached through a proxy that we then cut.
    let options: PgConnectOptions = url.parse().unwrap();
    let target = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = common::Proxy::start(target).await;
    let hostport = format!("{}:{}", options.get_host(), options.get_port());
    let via_proxy = Schema {
        url: url.replacen(&hostport, &format!("127.0.0.1:{}", proxy.port), 1),
        name: schema.name.clone(),
        admin: schema.admin.clone(),
    };
    let pool = via_proxy
        .pool_with_timeout(Duration::from_millis(500))
        .await;
    let store = PostgresStore::new(pool.clone());
    assert!(
        store
            .get_credentials("alice")
            .await
            .unwrap()
            .into_iter()
            .next()
            .is_some()
    );
    proxy.cut();
    conformance::credential_store_unreachable(&store).await;
    conformance::ephemeral_store_unreachable(&store).await;
    assert_eq!(direct.backup_codes_remaining("alice").await.unwrap(), 3);
    pool.close().await;
    schema.drop(&[&direct]).await;
}

/// One schema, written by the sqlx 0.9 store and read by the 0.8 one and back: an application
/// moves between the two with no data migration.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn sqlx_0_8_and_0_9_share_one_schema() {
    let url = need_postgres!("store_postgres_sqlx08::sqlx_0_8_and_0_9_share_one_schema");
    let schema = Schema::create(&url).await;
    let search_path = format!("SET search_path TO {}", schema.name);
    let new_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .after_connect(move |conn, _meta| {
            let set = search_path.clone();
            Box::pin(async move {
                sqlx::Executor::execute(conn, sqlx::AssertSqlSafe(set)).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    let on_09 = twofactor::store::postgres::PostgresStore::new(new_pool);
    on_09.migrate().await.unwrap();
    common::enrolled(&on_09, "alice", 3).await;

    let on_08 = schema.store().await;
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
    assert_eq!(on_09.backup_codes_remaining("alice").await.unwrap(), 2);
    on_09.pool().close().await;
    schema.drop(&[&on_08]).await;
}
