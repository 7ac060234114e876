//! `store::sqlite::SqliteStore` (sqlx 0.9) against a real SQLite file (embedded: these tests
//! always run). The versioned type, so the tests can reach its pool; `store::SqliteStore` wraps
//! it (`store_sql_any_sqlx.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use sqlx::AssertSqlSafe;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use twofactor::store::sqlite::SqliteStore;
use twofactor::store::{
    ChallengeRecord, ChangeKind, CredentialStore, DeviceRecord, EphemeralStore, LimiterState,
    RecoveryRecord, ScheduledChangeRecord, SqlStoreError, conformance,
};

/// A fresh database file, deleted (with its WAL files) on drop.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("{}.db", common::unique("twofactor_test")));
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
    twofactor::store::sqlite::migrate(&pool).await.unwrap();
    let store = SqliteStore::new(pool);
    conformance::credential_store(store.clone()).await;
    conformance::ephemeral_store(store).await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_leaves_app_tables_alone() {
    let db = TempDb::new();
    let pool = db.pool().await;
    sqlx::query("CREATE TABLE users (id TEXT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO users VALUES ('alice')")
        .execute(&pool)
        .await
        .unwrap();
    twofactor::store::sqlite::migrate(&pool).await.unwrap();
    let store = SqliteStore::new(pool.clone());
    common::enrolled(&store, "alice", 2).await;
    twofactor::store::sqlite::migrate(&pool).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.backup_codes_remaining("alice").await.unwrap(), 2);
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
    let tables: Vec<String> = sqlx::query_scalar(
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
        sqlx::query_scalar("SELECT version FROM twofactor_schema_version ORDER BY version")
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

/// The schema and rows exactly as version 1 of this crate (0001 only, no version table) left
/// them.
async fn version_1_database(pool: &SqlitePool) {
    sqlx::raw_sql(include_str!("../migrations/sqlite/0001_twofactor_init.sql"))
        .execute(pool)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO twofactor_credentials (user_id, encrypted_secret, algorithm, digits, period, \
         enabled, last_step, drift, created_at) \
         VALUES ('alice', x'01020300ff', 'SHA256', 8, 30, 1, 56666666, -1, 1700000000); \
         INSERT INTO twofactor_backup_codes (user_id, code_hash) VALUES ('alice', x'07'); \
         INSERT INTO twofactor_limiter (limiter_key, window_start, attempts, \
         consecutive_failures, locked_until, expire_at) \
         VALUES ('user:alice', 1700000000, 3, 11, 1700001200, 1731536000); \
         INSERT INTO twofactor_recovery (user_id, requested_at, not_before, approved) \
         VALUES ('alice', 1700000000, 1700259200, 0);",
    )
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_version_1_database_upgrades_in_place() {
    let db = TempDb::new();
    let pool = db.pool().await;
    version_1_database(&pool).await;
    let store = SqliteStore::new(pool.clone());
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
    let recovery = store.get_recovery("alice").await.unwrap().unwrap();
    assert_eq!(
        recovery,
        RecoveryRecord {
            requested_at: 1_700_000_000,
            not_before: 1_700_259_200,
            approved: false,
            needs_approval: false,
            failures_at_request: 0,
            cancel_hash: [0; 32],
        }
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
    twofactor::store::sqlite::migrate(&pool).await.unwrap();
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
            .fetch_all(&pool)
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
}

/// The schema and rows as version 2 of this crate left them: 0001 and 0002 applied and recorded
/// as `migrate()` records them, with tables under `prefix`. Alice has an enabled credential, two
/// backup codes and a device token; Bob a pending credential.
async fn version_2_database(pool: &SqlitePool, prefix: &str) {
    let mut tx = pool.begin().await.unwrap();
    for (version, file) in [
        (
            1,
            include_str!("../migrations/sqlite/0001_twofactor_init.sql"),
        ),
        (
            2,
            include_str!("../migrations/sqlite/0002_twofactor_adversary_model.sql"),
        ),
    ] {
        let schema_version = format!(
            "CREATE TABLE IF NOT EXISTS {prefix}schema_version (version INTEGER PRIMARY KEY); \
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
         enabled, last_step, drift, created_at) VALUES (?1, ?2, 'SHA1', 6, 30, ?3, ?4, ?5, ?6)"
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
            "INSERT INTO {prefix}backup_codes (user_id, code_hash) VALUES ('alice', ?1)"
        )))
        .bind(&common::hash(n)[..])
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {prefix}devices (token_hash, user_id, created_at, expires_at) \
         VALUES (?1, 'alice', 1700000000, 1800000000)"
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
    for prefix in ["twofactor_", "app2_tf_"] {
        let db = TempDb::new();
        let pool = db.pool().await;
        version_2_database(&pool, prefix).await;
        let store = SqliteStore::with_prefix(pool.clone(), prefix).unwrap();
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
}

/// The rollback that 0003's header describes works: version 2's table is back with its rows as
/// they were, and a later upgrade runs 0003 again.
#[tokio::test]
async fn migration_3_rolls_back_as_documented() {
    let db = TempDb::new();
    let pool = db.pool().await;
    version_2_database(&pool, "twofactor_").await;
    let store = SqliteStore::new(pool.clone());
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
}

#[tokio::test]
async fn a_failed_migration_changes_nothing() {
    let db = TempDb::new();
    let pool = db.pool().await;
    version_1_database(&pool).await;
    // A table in the way makes 0002 fail after its ALTERs ran.
    sqlx::query("CREATE TABLE twofactor_devices (x INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    let store = SqliteStore::new(pool.clone());
    assert!(store.migrate().await.is_err());
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('twofactor_limiter')")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        !columns.iter().any(|c| c == "forgiven_at"),
        "the whole migration is one transaction: {columns:?}"
    );
    let version_table: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'twofactor_schema_version'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(version_table, 0);
    sqlx::query("DROP TABLE twofactor_devices")
        .execute(&pool)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        store.get_limiter("user:alice").await.unwrap().attempts,
        3,
        "rows survive a failed attempt and the retry"
    );
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
    assert!(store.migrate().await.is_err());
    conformance::credential_store_unreachable(&store).await;
    conformance::ephemeral_store_unreachable(&store).await;
}

#[tokio::test]
async fn corrupt_rows_are_errors() {
    let db = TempDb::new();
    let store = db.store().await;
    common::enrolled(&store, "mallory", 1).await;
    sqlx::query("UPDATE twofactor_authenticators SET algorithm = 'MD5' WHERE user_id = 'mallory'")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.get_credentials("mallory").await,
        Err(SqlStoreError::UnknownAlgorithm)
    ));
    sqlx::query("UPDATE twofactor_authenticators SET algorithm = 'SHA1', last_step = -5")
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

/// Values beyond a `BIGINT` are refused with an error (the suite also accepts storing them
/// exactly); nothing is written.
#[tokio::test]
async fn out_of_range_values_are_refused() {
    let db = TempDb::new();
    let store = db.store().await;
    common::enrolled(&store, "alice", 1).await;
    assert!(
        store
            .advance_step("alice", "first", b"secret-v1", u64::MAX, 0, 1_700_000_100)
            .await
            .is_err()
    );
    assert_eq!(
        store
            .get_credentials("alice")
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
                "alice",
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
}

#[tokio::test]
async fn purge_drops_only_expired_rows() {
    let db = TempDb::new();
    let store = db.store().await;
    for (n, expires_at) in [(1, 100), (2, 200)] {
        let rec = ChallengeRecord {
            user_id: "u".into(),
            expires_at,
        };
        store.put_challenge(&common::hash(n), &rec).await.unwrap();
    }
    store
        .update_limiter("old", 100, |mut s| {
            s.attempts += 1;
            s
        })
        .await
        .unwrap();
    store
        .update_limiter("new", 300, |mut s| {
            s.attempts += 1;
            s
        })
        .await
        .unwrap();
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
    assert_eq!(
        store.get_challenge(&common::hash(1), 0).await.unwrap(),
        None
    );
    assert!(
        store
            .get_challenge(&common::hash(2), 0)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.get_limiter("old").await.unwrap().attempts, 0);
    assert_eq!(store.get_limiter("new").await.unwrap().attempts, 1);
}

/// A scheduled change this version cannot read (an unknown kind, hashes that are not whole
/// 32-byte hashes) is an error, never a guess, and `take_change` leaves it where it was.
#[tokio::test]
async fn malformed_scheduled_changes_are_errors() {
    let db = TempDb::new();
    let store = db.store().await;
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
            "UPDATE twofactor_scheduled_changes SET backup_code_hashes = x'0102'",
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
}

#[tokio::test]
async fn purge_drops_expired_notice_tokens() {
    let db = TempDb::new();
    let store = db.store().await;
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
}

/// A version 3 database upgrades to 4 keeping every row, and the rollback in 0004's header
/// works: version 3's tables are untouched, and a later upgrade runs 0004 again.
#[tokio::test]
async fn migration_4_is_additive_and_rolls_back_as_documented() {
    for prefix in ["twofactor_", "app4_tf_"] {
        let db = TempDb::new();
        let pool = db.pool().await;
        let mut tx = pool.begin().await.unwrap();
        for (version, file) in [
            (
                1,
                include_str!("../migrations/sqlite/0001_twofactor_init.sql"),
            ),
            (
                2,
                include_str!("../migrations/sqlite/0002_twofactor_adversary_model.sql"),
            ),
            (
                3,
                include_str!("../migrations/sqlite/0003_twofactor_authenticators.sql"),
            ),
        ] {
            sqlx::raw_sql(AssertSqlSafe(format!(
                "{} CREATE TABLE IF NOT EXISTS {prefix}schema_version \
                 (version INTEGER PRIMARY KEY); \
                 INSERT INTO {prefix}schema_version (version) VALUES ({version});",
                file.replace("twofactor_", prefix)
            )))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let store = SqliteStore::with_prefix(pool.clone(), prefix).unwrap();
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
}
