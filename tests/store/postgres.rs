//! `PostgresStore` against a real PostgreSQL (`TWOFACTOR_TEST_POSTGRES_URL`), on both sqlx
//! versions: `store::postgres` (sqlx 0.9) and `store::sqlx08::postgres` (sqlx 0.8), the same
//! store source compiled twice. What depends on sqlx itself (pools, transactions, migrations,
//! failures) and the conformance suite run on both, from one macro; the statement-level edge
//! cases and killed connections (`statements`) and the upgrades from older schemas (`upgrades`)
//! run on sqlx 0.9, whose SQL is the 0.8 copy's too. Each test works in its own schema
//! `tf_test_*`, dropped at the end, so tests run in parallel. `store::PostgresStore` wraps
//! either (`any_sqlx.rs`).

/// The tests every sqlx version runs, expanded in a module that imports `PostgresStore` and
/// `migrate` of that version, and `dynamic`, which marks a statement built at run time as the
/// `execute` of that version takes it; `$sqlx` is that sqlx crate.
macro_rules! sqlx_suite {
    ($sqlx:ident) => {
        use std::time::Duration;

        use twofactor::store::{CredentialStore, SqlStoreError, conformance};
        use $sqlx::Executor;
        use $sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

        use crate::common;

        /// A private schema on the test database; pools built from it see only that schema.
        pub(super) struct Schema {
            pub(super) url: String,
            pub(super) name: String,
            pub(super) admin: PgPool,
        }

        impl Schema {
            pub(super) async fn create(url: &str) -> Self {
                let name = common::unique("tf_test");
                let admin = PgPoolOptions::new()
                    .max_connections(2)
                    .connect(url)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("TWOFACTOR_TEST_POSTGRES_URL is set but unreachable: {e}")
                    });
                admin
                    .execute(dynamic(format!("CREATE SCHEMA {name}")))
                    .await
                    .unwrap();
                Self {
                    url: url.to_owned(),
                    name,
                    admin,
                }
            }

            /// A pool whose connections use this schema, tagged with `application_name` so a test can
            /// find its backends in `pg_stat_activity`.
            pub(super) async fn pool_named(&self, app: &str) -> PgPool {
                self.pool_with_timeout(app, Duration::from_secs(30)).await
            }

            pub(super) async fn pool_with_timeout(
                &self,
                app: &str,
                acquire_timeout: Duration,
            ) -> PgPool {
                let schema = self.name.clone();
                let options: PgConnectOptions = self.url.parse().unwrap();
                PgPoolOptions::new()
                    .max_connections(6)
                    .acquire_timeout(acquire_timeout)
                    .after_connect(move |conn, _meta| {
                        let schema = schema.clone();
                        Box::pin(async move {
                            conn.execute(dynamic(format!("SET search_path TO {schema}")))
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options.application_name(app))
                    .await
                    .unwrap()
            }

            pub(super) async fn store(&self) -> PostgresStore {
                let store = PostgresStore::new(self.pool_named(&self.name).await);
                store.migrate().await.unwrap();
                store
            }

            pub(super) async fn drop(self, stores: &[&PostgresStore]) {
                for s in stores {
                    s.pool().close().await;
                }
                self.admin
                    .execute(dynamic(format!("DROP SCHEMA {} CASCADE", self.name)))
                    .await
                    .unwrap();
                self.admin.close().await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance() {
            let url = need_postgres!(conformance);
            let schema = Schema::create(&url).await;
            let store = schema.store().await;
            conformance::credential_store(store.clone()).await;
            conformance::ephemeral_store(store.clone()).await;
            schema.drop(&[&store]).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_two_pools_over_one_database() {
            let url = need_postgres!(conformance_two_pools_over_one_database);
            let schema = Schema::create(&url).await;
            let a = schema.store().await;
            let b = PostgresStore::new(schema.pool_named("second-app-server").await);
            conformance::credential_store_pair(a.clone(), b.clone()).await;
            conformance::ephemeral_store_pair(a.clone(), b.clone()).await;
            schema.drop(&[&a, &b]).await;
        }

        #[tokio::test]
        async fn migrate_is_idempotent_and_concurrent_safe() {
            let url = need_postgres!(migrate_is_idempotent_and_concurrent_safe);
            let schema = Schema::create(&url).await;
            let a = PostgresStore::new(schema.pool_named("m1").await);
            let b = PostgresStore::new(schema.pool_named("m2").await);
            // Two application servers starting at once.
            let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
            ra.unwrap();
            rb.unwrap();
            common::enrolled(&a, "alice", 2).await;
            migrate(b.pool()).await.unwrap();
            assert_eq!(b.backup_codes_remaining("alice").await.unwrap(), 2);
            let tables: Vec<String> = $sqlx::query_scalar(
                "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = $1 \
                 ORDER BY 1",
            )
            .bind(&schema.name)
            .fetch_all(&schema.admin)
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
            let versions: Vec<i64> = $sqlx::query_scalar(
                "SELECT version FROM twofactor_schema_version ORDER BY version",
            )
            .fetch_all(a.pool())
            .await
            .unwrap();
            assert_eq!(versions, [1, 2, 3, 4], "each schema file recorded once");
            schema.drop(&[&a, &b]).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn custom_prefix_keeps_stores_apart() {
            let url = need_postgres!(custom_prefix_keeps_stores_apart);
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
            let url = need_postgres!(unreachable_database_fails_closed);
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
            let url = need_postgres!(server_gone_mid_life_fails_closed);
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
            let proxied_url = {
                let mut u: String = url.clone();
                let hostport = format!("{}:{}", options.get_host(), options.get_port());
                u = u.replacen(&hostport, &format!("127.0.0.1:{}", proxy.port), 1);
                u
            };
            let via_proxy = Schema {
                url: proxied_url,
                name: schema.name.clone(),
                admin: schema.admin.clone(),
            };
            let pool = via_proxy
                .pool_with_timeout("proxied", Duration::from_millis(500))
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
    };
}

#[cfg(feature = "postgres")]
mod on_sqlx09 {
    use twofactor::store::postgres::{PostgresStore, migrate};

    fn dynamic(sql: String) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(sql)
    }

    sqlx_suite!(sqlx);
}

#[cfg(feature = "postgres-sqlx08")]
mod on_sqlx08 {
    use twofactor::store::sqlx08::postgres::{PostgresStore, migrate};

    /// sqlx 0.8 borrows the text for as long as the query may live; a test can afford the leak.
    fn dynamic(sql: String) -> &'static str {
        Box::leak(sql.into_boxed_str())
    }

    sqlx_suite!(sqlx08);
}

#[cfg(feature = "postgres")]
mod upgrades;

#[cfg(feature = "postgres")]
mod statements;

/// Both sqlx versions over one schema.
#[cfg(all(feature = "postgres", feature = "postgres-sqlx08"))]
mod across_sqlx {
    use super::on_sqlx08::Schema;
    use crate::sql_checks;

    #[tokio::test]
    async fn sqlx_0_8_and_0_9_share_one_schema() {
        let url = need_postgres!(sqlx_0_8_and_0_9_share_one_schema);
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
        let on_08 = schema.store().await;
        sql_checks::sqlx_0_8_and_0_9_share_one_schema(&on_09, &on_08).await;
        on_09.pool().close().await;
        schema.drop(&[&on_08]).await;
    }
}
