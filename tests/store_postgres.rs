//! `store::postgres::PostgresStore` (sqlx 0.9) against a real PostgreSQL
//! (`TWOFACTOR_TEST_POSTGRES_URL`). Each test works in its own schema `tf_test_*`, dropped at the
//! end, so tests run in parallel. The versioned type, so the tests can reach its pool;
//! `store::PostgresStore` wraps it (`store_sql_any_sqlx.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor};
use twofactor::store::postgres::PostgresStore;
use twofactor::store::{
    ChallengeRecord, ChangeKind, CredentialStore, DeviceRecord, EphemeralStore, LimiterState,
    RecoveryRecord, ScheduledChangeRecord, SqlStoreError, conformance,
};

/// A private schema on the test database; pools built from it see only that schema.
struct Schema {
    url: String,
    name: String,
    admin: PgPool,
}

impl Schema {
    async fn create(url: &str) -> Self {
        let name = common::unique("tf_test");
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("TWOFACTOR_TEST_POSTGRES_URL is set but unreachable: {e}"));
        admin
            .execute(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
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
    async fn pool_named(&self, app: &str) -> PgPool {
        self.pool_with_timeout(app, Duration::from_secs(30)).await
    }

    async fn pool_with_timeout(&self, app: &str, acquire_timeout: Duration) -> PgPool {
        let schema = self.name.clone();
        let options: PgConnectOptions = self.url.parse().unwrap();
        PgPoolOptions::new()
            .max_connections(6)
            .acquire_timeout(acquire_timeout)
            .after_connect(move |conn, _meta| {
                let schema = schema.clone();
                Box::pin(async move {
                    conn.execute(AssertSqlSafe(format!("SET search_path TO {schema}")))
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options.application_name(app))
            .await
            .unwrap()
    }

    async fn store(&self) -> PostgresStore {
        let store = PostgresStore::new(self.pool_named(&self.name).await);
        store.migrate().await.unwrap();
        store
    }

    async fn drop(self, stores: &[&PostgresStore]) {
        for s in stores {
            s.pool().close().await;
        }
        self.admin
            .execute(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name)))
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
    let url = need_postgres!("store_postgres::conformance");
    let schema = Schema::create(&url).await;
    let store = schema.store().await;
    conformance::credential_store(store.clone()).await;
    conformance::ephemeral_store(store.clone()).await;
    schema.drop(&[&store]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_two_pools_over_one_database() {
    let url = need_postgres!("store_postgres::conformance_two_pools_over_one_database");
    let schema = Schema::create(&url).await;
    let a = schema.store().await;
    let b = PostgresStore::new(schema.pool_named("second-app-server").await);
    conformance::credential_store_pair(a.clone(), b.clone()).await;
    conformance::ephemeral_store_pair(a.clone(), b.clone()).await;
    schema.drop(&[&a, &b]).await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_concurrent_safe() {
    let url = need_postgres!("store_postgres::migrate_is_idempotent_and_concurrent_safe");
    let schema = Schema::create(&url).await;
    let a = PostgresStore::new(schema.pool_named("m1").await);
    let b = PostgresStore::new(schema.pool_named("m2").await);
    // Two application servers starting at once.
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    common::enrolled(&a, "alice", 2).await;
    twofactor::store::postgres::migrate(b.pool()).await.unwrap();
    assert_eq!(b.backup_codes_remaining("alice").await.unwrap(), 2);
    let tables: Vec<String> = sqlx::query_scalar(
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
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM twofactor_schema_version ORDER BY version")
            .fetch_all(a.pool())
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3, 4], "each schema file recorded once");
    schema.drop(&[&a, &b]).await;
}

/// The schema and rows exactly as version 1 of this crate (0001 only, no version table) left
/// them.
async fn version_1_database(pool: &PgPool) {
    sqlx::raw_sql(include_str!(
        "../migrations/postgres/0001_twofactor_init.sql"
    ))
    .execute(pool)
    .await
    .unwrap();
    sqlx::raw_sql(
        "INSERT INTO twofactor_credentials (user_id, encrypted_secret, algorithm, digits, period, \
         enabled, last_step, drift, created_at) \
         VALUES ('alice', '\\x01020300ff', 'SHA256', 8, 30, TRUE, 56666666, -1, 1700000000); \
         INSERT INTO twofactor_backup_codes (user_id, code_hash) VALUES ('alice', '\\x07'); \
         INSERT INTO twofactor_limiter (limiter_key, window_start, attempts, \
         consecutive_failures, locked_until, expire_at) \
         VALUES ('user:alice', 1700000000, 3, 11, 1700001200, 1731536000); \
         INSERT INTO twofactor_recovery (user_id, requested_at, not_before, approved) \
         VALUES ('alice', 1700000000, 1700259200, FALSE);",
    )
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_version_1_database_upgrades_in_place() {
    let url = need_postgres!("store_postgres::a_version_1_database_upgrades_in_place");
    let schema = Schema::create(&url).await;
    let store = PostgresStore::new(schema.pool_named(&schema.name).await);
    version_1_database(store.pool()).await;
    store.migrate().await.unwrap();

    let creds = store.get_credentials("alice").await.unwrap();
    assert_eq!(creds.len(), 1, "{creds:?}");
    let cred = creds.into_iter().next().unwrap();
    assert_eq!(
        (cred.id.as_str(), cred.name.as_str()),
        ("legacy", "Authenticator app")
    );
    assert_eq!(cred.encrypted_secret, [1, 2, 3, 0, 0xff]);
    assert_eq!(cred.algorithm, twofactor::Algorithm::Sha256);
    assert_eq!((cred.digits, cred.period, cred.enabled), (8, 30, true));
    assert_eq!((cred.last_step, cred.drift), (Some(56_666_666), -1));
    assert_eq!(cred.created_at, 1_700_000_000);
    assert_eq!(store.backup_codes_remaining("alice").await.unwrap(), 1);
    let limiter = LimiterState::from_parts(1_700_000_000, 3, 11, 1_700_001_200, 0, 0, 0);
    assert_eq!(store.get_limiter("user:alice").await.unwrap(), limiter);
    assert_eq!(
        store.get_recovery("alice").await.unwrap(),
        Some(RecoveryRecord {
            requested_at: 1_700_000_000,
            not_before: 1_700_259_200,
            approved: false,
            needs_approval: false,
            failures_at_request: 0,
            cancel_hash: [0; 32],
        })
    );
    // A request made before cancel tokens has none: no hash cancels it, not even all zeros.
    assert!(
        !store
            .cancel_recovery_with_token("alice", &[0; 32])
            .await
            .unwrap()
    );

    // The upgraded rows work with the new operations.
    assert!(
        store
            .advance_step(
                "alice",
                "legacy",
                &[1, 2, 3, 0, 0xff],
                56_666_667,
                0,
                1_700_000_100
            )
            .await
            .unwrap()
    );
    let update = store
        .update_limiter("user:alice", 1_731_536_000, |mut s| {
            s.since_success += 1;
            s
        })
        .await
        .unwrap();
    assert_eq!(update.before, limiter);
    assert_eq!(update.after.since_success, 1);
    let device = DeviceRecord {
        user_id: "alice".into(),
        created_at: 1_700_000_000,
        expires_at: 1_800_000_000,
        trusted_until: Some(1_750_000_000),
        label: "Firefox on Linux".into(),
        last_used_at: 1_700_000_000,
    };
    store.put_device(&common::hash(9), &device).await.unwrap();

    // Running it again changes nothing and keeps every row.
    store.migrate().await.unwrap();
    twofactor::store::postgres::migrate(store.pool())
        .await
        .unwrap();
    assert_eq!(
        store
            .use_device(&common::hash(9), 1_700_000_000)
            .await
            .unwrap(),
        Some(device)
    );
    assert_eq!(store.get_limiter("user:alice").await.unwrap(), update.after);
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM twofactor_schema_version ORDER BY version")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3, 4]);
    assert!(
        store
            .complete_recovery("alice", 1_700_259_200, false)
            .await
            .unwrap(),
        "a version-1 request that needs no approval completes after its wait"
    );
    schema.drop(&[&store]).await;
}

/// The schema and rows as version 2 of this crate left them: 0001 and 0002 applied and recorded
/// as `migrate()` records them, with tables under `prefix`. Alice has an enabled credential, two
/// backup codes and a device token; Bob a pending credential.
async fn version_2_database(pool: &PgPool, prefix: &str) {
    let mut tx = pool.begin().await.unwrap();
    for (version, file) in [
        (
            1,
            include_str!("../migrations/postgres/0001_twofactor_init.sql"),
        ),
        (
            2,
            include_str!("../migrations/postgres/0002_twofactor_adversary_model.sql"),
        ),
    ] {
        let schema_version = format!(
            "CREATE TABLE IF NOT EXISTS {prefix}schema_version (version BIGINT PRIMARY KEY); \
             INSERT INTO {prefix}schema_version (version) VALUES ({version});"
        );
        sqlx::raw_sql(AssertSqlSafe(file.replace("twofactor_", prefix)))
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::raw_sql(AssertSqlSafe(schema_version))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let credential = format!(
        "INSERT INTO {prefix}credentials (user_id, encrypted_secret, algorithm, digits, period, \
         enabled, last_step, drift, created_at) VALUES ($1, $2, 'SHA1', 6, 30, $3, $4, $5, $6)"
    );
    for (user, secret, enabled, last_step, drift, created_at) in [
        (
            "alice",
            &b"v2-secret"[..],
            true,
            Some(56_666_666_i64),
            1_i64,
            1_700_000_000_i64,
        ),
        ("bob", &b"v2-pending"[..], false, None, 0, 1_700_000_500),
    ] {
        sqlx::query(AssertSqlSafe(credential.clone()))
            .bind(user)
            .bind(secret)
            .bind(enabled)
            .bind(last_step)
            .bind(drift)
            .bind(created_at)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    for n in [1, 2] {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {prefix}backup_codes (user_id, code_hash) VALUES ('alice', $1)"
        )))
        .bind(&common::hash(n)[..])
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {prefix}devices (token_hash, user_id, created_at, expires_at) \
         VALUES ($1, 'alice', 1700000000, 1800000000)"
    )))
    .bind(&common::hash(9)[..])
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// A version 2 database (one credential per user) upgrades to authenticators: each credential
/// becomes the user's one authenticator `legacy` with the same secret and last step, and
/// backup codes and device tokens keep working. Checked with the default prefix and another one
/// (the migration renames a table, which the prefix rewriting must follow).
#[tokio::test]
async fn a_version_2_database_upgrades_to_authenticators() {
    let url = need_postgres!("store_postgres::a_version_2_database_upgrades_to_authenticators");
    let schema = Schema::create(&url).await;
    let pool = schema.pool_named(&schema.name).await;
    for prefix in ["twofactor_", "app2_tf_"] {
        version_2_database(&pool, prefix).await;
        let store = PostgresStore::with_prefix(pool.clone(), prefix).unwrap();
        store.migrate().await.unwrap();

        common::check_upgraded_from_version_2(&store, prefix).await;

        // The old table is kept for a rollback, under a name version 2 does not use: a
        // forgotten version 2 instance fails instead of reading a stale credential.
        let kept: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {prefix}credentials_v2"
        )))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(kept, 2);
        assert!(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT 1 FROM {prefix}credentials WHERE user_id = 'alice'"
            )))
            .fetch_optional(&pool)
            .await
            .is_err()
        );
        store.migrate().await.unwrap();
        let versions: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT version FROM {prefix}schema_version ORDER BY version"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(versions, [1, 2, 3, 4]);
        assert!(store.delete_user("alice").await.unwrap().credential);
        assert!(store.get_credentials("alice").await.unwrap().is_empty());
    }
    pool.close().await;
    schema.drop(&[]).await;
}

/// The rollback that 0003's header describes works: version 2's table is back with its rows as
/// they were, and a later upgrade runs 0003 again.
#[tokio::test]
async fn migration_3_rolls_back_as_documented() {
    let url = need_postgres!("store_postgres::migration_3_rolls_back_as_documented");
    let schema = Schema::create(&url).await;
    let pool = schema.pool_named(&schema.name).await;
    version_2_database(&pool, "twofactor_").await;
    let store = PostgresStore::new(pool.clone());
    store.migrate().await.unwrap();
    sqlx::raw_sql(
        "ALTER TABLE twofactor_credentials_v2 RENAME TO twofactor_credentials; \
         DROP TABLE twofactor_authenticators; \
         ALTER TABLE twofactor_devices DROP COLUMN trusted_until; \
         ALTER TABLE twofactor_devices DROP COLUMN label; \
         ALTER TABLE twofactor_devices DROP COLUMN last_used_at; \
         DELETE FROM twofactor_schema_version WHERE version = 3;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (secret, last_step): (Vec<u8>, i64) = sqlx::query_as(
        "SELECT encrypted_secret, last_step FROM twofactor_credentials WHERE user_id = 'alice'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (secret.as_slice(), last_step),
        (&b"v2-secret"[..], 56_666_666)
    );

    store.migrate().await.unwrap();
    let creds = store.get_credentials("alice").await.unwrap();
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0].last_step, Some(56_666_666));
    assert!(
        store
            .use_device(&common::hash(9), 1_700_000_100)
            .await
            .unwrap()
            .is_some()
    );
    pool.close().await;
    schema.drop(&[]).await;
}

#[tokio::test]
async fn a_failed_migration_changes_nothing() {
    let url = need_postgres!("store_postgres::a_failed_migration_changes_nothing");
    let schema = Schema::create(&url).await;
    let store = PostgresStore::new(schema.pool_named(&schema.name).await);
    version_1_database(store.pool()).await;
    // A table in the way makes 0002 fail after its ALTERs ran.
    sqlx::query("CREATE TABLE twofactor_devices (x INTEGER)")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(store.migrate().await.is_err());
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::TEXT FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = 'twofactor_limiter'",
    )
    .bind(&schema.name)
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    assert!(
        !columns.iter().any(|c| c == "forgiven_at"),
        "the whole migration is one transaction: {columns:?}"
    );
    let version_table: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = 'twofactor_schema_version'",
    )
    .bind(&schema.name)
    .fetch_one(&schema.admin)
    .await
    .unwrap();
    assert_eq!(version_table, 0);
    sqlx::query("DROP TABLE twofactor_devices")
        .execute(store.pool())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        store.get_limiter("user:alice").await.unwrap().attempts,
        3,
        "rows survive a failed attempt and the retry"
    );
    schema.drop(&[&store]).await;
}

#[tokio::test]
async fn unreachable_database_fails_closed() {
    let url = need_postgres!("store_postgres::unreachable_database_fails_closed");
    let _ = url;
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/test")
        .unwrap();
    let store = PostgresStore::new(pool);
    assert!(store.migrate().await.is_err());
    conformance::credential_store_unreachable(&store).await;
    conformance::ephemeral_store_unreachable(&store).await;
}

#[tokio::test]
async fn server_gone_mid_life_fails_closed() {
    let url = need_postgres!("store_postgres::server_gone_mid_life_fails_closed");
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

/// Waits until a backend of `app` is blocked on a lock, then terminates it.
async fn terminate_when_blocked(admin: &PgPool, app: &str) {
    for _ in 0..200 {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
             AND wait_event_type = 'Lock' LIMIT 1",
        )
        .bind(app)
        .fetch_optional(admin)
        .await
        .unwrap();
        if let Some(pid) = pid {
            let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .fetch_one(admin)
                .await
                .unwrap();
            assert!(killed);
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the store's statement never blocked on the lock");
}

#[tokio::test]
async fn connection_killed_mid_consume_consumes_nothing() {
    let url = need_postgres!("store_postgres::connection_killed_mid_consume_consumes_nothing");
    let schema = Schema::create(&url).await;
    let app = format!("{}_victim", schema.name);
    let store = PostgresStore::new(schema.pool_named(&app).await);
    store.migrate().await.unwrap();
    common::enrolled(&store, "alice", 3).await;

    // Hold the code's row lock so the store's DELETE waits; kill the store's backend there.
    let mut blocker = schema.admin.begin().await.unwrap();
    blocker
        .execute(AssertSqlSafe(format!(
            "SET LOCAL search_path TO {}",
            schema.name
        )))
        .await
        .unwrap();
    sqlx::query("SELECT 1 FROM twofactor_backup_codes WHERE user_id = 'alice' FOR UPDATE")
        .fetch_all(&mut *blocker)
        .await
        .unwrap();
    let victim = {
        let store = store.clone();
        tokio::spawn(async move { store.consume_backup_code("alice", &common::hash(2)).await })
    };
    terminate_when_blocked(&schema.admin, &app).await;
    blocker.rollback().await.unwrap();
    let result = victim.await.unwrap();
    assert!(result.is_err(), "a killed connection is an error");

    // Nothing was consumed: the code still works, exactly once.
    assert_eq!(store.backup_codes_remaining("alice").await.unwrap(), 3);
    assert_eq!(
        store
            .consume_backup_code("alice", &common::hash(2))
            .await
            .unwrap(),
        Some(2)
    );
    schema.drop(&[&store]).await;
}

#[tokio::test]
async fn connection_killed_mid_activate_changes_nothing() {
    let url = need_postgres!("store_postgres::connection_killed_mid_activate_changes_nothing");
    let schema = Schema::create(&url).await;
    let app = format!("{}_victim", schema.name);
    let store = PostgresStore::new(schema.pool_named(&app).await);
    store.migrate().await.unwrap();
    assert!(
        store
            .put_pending("alice", &common::pending(b"s1"), true)
            .await
            .unwrap()
    );

    // An uncommitted row with the same key makes activate's INSERT of the codes wait, after
    // its UPDATE already turned the credential on inside the transaction.
    let mut blocker = schema.admin.begin().await.unwrap();
    blocker
        .execute(AssertSqlSafe(format!(
            "SET LOCAL search_path TO {}",
            schema.name
        )))
        .await
        .unwrap();
    sqlx::query("INSERT INTO twofactor_backup_codes (user_id, code_hash) VALUES ('alice', $1)")
        .bind(&common::hash(5)[..])
        .execute(&mut *blocker)
        .await
        .unwrap();
    let victim = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .activate(
                    "alice",
                    b"s1",
                    42,
                    0,
                    Some(&[common::hash(5), common::hash(6)]),
                    20,
                )
                .await
        })
    };
    terminate_when_blocked(&schema.admin, &app).await;
    blocker.rollback().await.unwrap();
    assert!(victim.await.unwrap().is_err());

    // All or nothing: still pending, no codes, and activation still possible.
    let cred = store
        .get_credentials("alice")
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    assert!(!cred.enabled);
    assert_eq!(cred.last_step, None);
    assert_eq!(store.backup_codes_remaining("alice").await.unwrap(), 0);
    assert!(
        !store
            .advance_step("alice", "first", b"s1", 43, 0, 1_700_000_100)
            .await
            .unwrap()
    );
    assert!(
        store
            .activate("alice", b"s1", 42, 0, Some(&[common::hash(5)]), 20)
            .await
            .unwrap()
    );
    schema.drop(&[&store]).await;
}

#[tokio::test]
async fn out_of_range_values_are_refused() {
    let url = need_postgres!("store_postgres::out_of_range_values_are_refused");
    let schema = Schema::create(&url).await;
    let store = schema.store().await;
    let mut rec = common::pending(b"s");
    rec.created_at = u64::MAX;
    assert!(store.put_pending("alice", &rec, true).await.is_err());
    assert_eq!(
        store
            .get_credentials("alice")
            .await
            .unwrap()
            .into_iter()
            .next(),
        None
    );
    // Beyond a BIGINT is an error (the suite also accepts storing it exactly), never a wrap.
    common::enrolled(&store, "bob", 1).await;
    assert!(
        store
            .advance_step("bob", "first", b"secret-v1", u64::MAX, 0, 1_700_000_100)
            .await
            .is_err()
    );
    assert_eq!(
        store
            .get_credentials("bob")
            .await
            .unwrap()
            .into_iter()
            .next()
            .unwrap()
            .last_step,
        Some(100)
    );
    assert!(
        store
            .advance_step(
                "bob",
                "first",
                b"secret-v1",
                i64::MAX as u64,
                0,
                1_700_000_100
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .update_limiter("k", 10, |mut s| {
                s.locked_until = u64::MAX;
                s
            })
            .await
            .is_err()
    );
    assert_eq!(
        store.get_limiter("k").await.unwrap(),
        LimiterState::default()
    );
    schema.drop(&[&store]).await;
}

#[tokio::test]
async fn purge_drops_only_expired_rows() {
    let url = need_postgres!("store_postgres::purge_drops_only_expired_rows");
    let schema = Schema::create(&url).await;
    let store = schema.store().await;
    let challenge = ChallengeRecord {
        user_id: "u".into(),
        expires_at: 100,
    };
    store
        .put_challenge(&common::hash(1), &challenge)
        .await
        .unwrap();
    for (key, expire_at) in [("old", 100), ("new", 300)] {
        store
            .update_limiter(key, expire_at, |mut s| {
                s.attempts += 1;
                s
            })
            .await
            .unwrap();
    }
    for (n, expires_at) in [(3, 100), (4, 150), (5, 151)] {
        let device = DeviceRecord {
            user_id: "u".into(),
            created_at: 0,
            expires_at,
            trusted_until: None,
            label: String::new(),
            last_used_at: 0,
        };
        store.put_device(&common::hash(n), &device).await.unwrap();
    }
    assert_eq!(store.purge_expired(150).await.unwrap(), 4);
    assert_eq!(store.get_limiter("old").await.unwrap().attempts, 0);
    assert_eq!(
        store.get_limiter("new").await.unwrap().attempts,
        1,
        "a limiter state is kept until purged after its expire_at, whatever the clock says"
    );
    for (n, kept) in [(3, false), (4, false), (5, true)] {
        assert_eq!(
            store
                .use_device(&common::hash(n), 0)
                .await
                .unwrap()
                .is_some(),
            kept,
            "devices expired at or before `now` are purged"
        );
    }
    schema.drop(&[&store]).await;
}

/// A scheduled change this version cannot read (an unknown kind, hashes that are not whole
/// 32-byte hashes) is an error, never a guess, and `take_change` leaves it where it was.
#[tokio::test]
async fn malformed_scheduled_changes_are_errors() {
    let url = need_postgres!("store_postgres::malformed_scheduled_changes_are_errors");
    let schema = Schema::create(&url).await;
    let store = schema.store().await;
    let record = ScheduledChangeRecord {
        id: "regenerate".into(),
        kind: ChangeKind::RegenerateBackupCodes {
            hashes: vec![common::hash(1), common::hash(2)],
        },
        requested_at: 100,
        not_before: 200,
    };
    assert!(store.put_change("mallory", &record).await.unwrap());
    for (edit, expected) in [
        (
            "UPDATE twofactor_scheduled_changes SET backup_code_hashes = '\\x0102'",
            "backup_code_hashes",
        ),
        (
            "UPDATE twofactor_scheduled_changes SET backup_code_hashes = NULL",
            "backup_code_hashes",
        ),
        (
            "UPDATE twofactor_scheduled_changes SET kind = 'remove_authenticator'",
            "authenticator",
        ),
        (
            "UPDATE twofactor_scheduled_changes SET kind = 'format_disk'",
            "kind",
        ),
    ] {
        sqlx::query(edit).execute(store.pool()).await.unwrap();
        let check = |e: SqlStoreError| match (&e, expected) {
            (SqlStoreError::UnknownChangeKind, "kind") => {}
            (SqlStoreError::OutOfRange { field }, _) if *field == expected => {}
            _ => panic!("{edit}: expected an error about {expected}, got {e:?}"),
        };
        check(store.list_changes("mallory").await.unwrap_err());
        check(
            store
                .take_change("mallory", "regenerate", u64::MAX)
                .await
                .unwrap_err(),
        );
    }
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM twofactor_scheduled_changes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        kept, 1,
        "a take_change that could not read the row keeps it"
    );
    schema.drop(&[&store]).await;
}

#[tokio::test]
async fn purge_drops_expired_notice_tokens() {
    let url = need_postgres!("store_postgres::purge_drops_expired_notice_tokens");
    let schema = Schema::create(&url).await;
    let store = schema.store().await;
    for (n, expires_at) in [(1, 100), (2, 150), (3, 151)] {
        store
            .put_notice(&common::hash(n), "u", expires_at)
            .await
            .unwrap();
    }
    assert_eq!(store.purge_expired(150).await.unwrap(), 2);
    for (n, kept) in [(1, false), (2, false), (3, true)] {
        assert_eq!(
            store.take_notice("u", &common::hash(n), 0).await.unwrap(),
            kept,
            "notice tokens expired at or before `now` are purged"
        );
    }
    schema.drop(&[&store]).await;
}

/// A version 3 database upgrades to 4 keeping every row, and the rollback in 0004's header
/// works: version 3's tables are untouched, and a later upgrade runs 0004 again.
#[tokio::test]
async fn migration_4_is_additive_and_rolls_back_as_documented() {
    let url =
        need_postgres!("store_postgres::migration_4_is_additive_and_rolls_back_as_documented");
    let schema = Schema::create(&url).await;
    let pool = schema.pool_named(&schema.name).await;
    for prefix in ["twofactor_", "app4_tf_"] {
        let mut tx = pool.begin().await.unwrap();
        for (version, file) in [
            (
                1,
                include_str!("../migrations/postgres/0001_twofactor_init.sql"),
            ),
            (
                2,
                include_str!("../migrations/postgres/0002_twofactor_adversary_model.sql"),
            ),
            (
                3,
                include_str!("../migrations/postgres/0003_twofactor_authenticators.sql"),
            ),
        ] {
            sqlx::raw_sql(AssertSqlSafe(format!(
                "{} CREATE TABLE IF NOT EXISTS {prefix}schema_version \
                 (version BIGINT PRIMARY KEY); \
                 INSERT INTO {prefix}schema_version (version) VALUES ({version});",
                file.replace("twofactor_", prefix)
            )))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let store = PostgresStore::with_prefix(pool.clone(), prefix).unwrap();
        common::enrolled(&store, "alice", 2).await;
        store.migrate().await.unwrap();
        assert_eq!(store.backup_codes_remaining("alice").await.unwrap(), 2);
        let change = ScheduledChangeRecord {
            id: "disable".into(),
            kind: ChangeKind::Disable,
            requested_at: 100,
            not_before: 200,
        };
        assert!(store.put_change("alice", &change).await.unwrap());
        store
            .put_notice(&common::hash(7), "alice", 300)
            .await
            .unwrap();

        sqlx::raw_sql(AssertSqlSafe(
            "DROP TABLE twofactor_notices; \
             DROP TABLE twofactor_scheduled_changes; \
             DELETE FROM twofactor_schema_version WHERE version = 4;"
                .replace("twofactor_", prefix),
        ))
        .execute(&pool)
        .await
        .unwrap();
        assert_eq!(store.backup_codes_remaining("alice").await.unwrap(), 2);
        assert!(store.list_changes("alice").await.is_err(), "rolled back");
        store.migrate().await.unwrap();
        assert_eq!(store.list_changes("alice").await.unwrap(), []);
        let versions: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT version FROM {prefix}schema_version ORDER BY version"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(versions, [1, 2, 3, 4]);
    }
    pool.close().await;
    schema.drop(&[]).await;
}
