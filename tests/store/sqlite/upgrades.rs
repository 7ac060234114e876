//! SQLite databases left by older versions of this crate upgrade in place, and each schema
//! file's documented rollback works (sqlx 0.9; the 0.8 copy embeds the same files).

use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqlitePool;
use twofactor::store::sqlite::SqliteStore;
use twofactor::store::{CredentialStore, EphemeralStore};

use super::on_sqlx09::TempDb;
use crate::common;
use crate::sql_checks;

/// The schema and rows exactly as version 1 of this crate (0001 only, no version table) left
/// them.
async fn version_1_database(pool: &SqlitePool) {
    sqlx::raw_sql(include_str!(
        "../../../migrations/sqlite/0001_twofactor_init.sql"
    ))
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
    sql_checks::upgraded_from_version_1(&SqliteStore::new(pool)).await;
}

/// The schema and rows as version 2 of this crate left them: 0001 and 0002 applied and recorded
/// as `migrate()` records them, with tables under `prefix`. Alice has an enabled credential, two
/// backup codes and a device token; Bob a pending credential.
async fn version_2_database(pool: &SqlitePool, prefix: &str) {
    let mut tx = pool.begin().await.unwrap();
    for (version, file) in [
        (
            1,
            include_str!("../../../migrations/sqlite/0001_twofactor_init.sql"),
        ),
        (
            2,
            include_str!("../../../migrations/sqlite/0002_twofactor_adversary_model.sql"),
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

/// A version 3 database upgrades to 4 keeping every row, and the rollback in 0004's header
/// works (`sql_checks`), with the default prefix and another one.
#[tokio::test]
async fn migration_4_is_additive_and_rolls_back_as_documented() {
    for prefix in ["twofactor_", "app4_tf_"] {
        let db = TempDb::new();
        let store = SqliteStore::with_prefix(db.pool().await, prefix).unwrap();
        sql_checks::migration_4_is_additive_and_rolls_back_as_documented(
            &store,
            prefix,
            [
                include_str!("../../../migrations/sqlite/0001_twofactor_init.sql"),
                include_str!("../../../migrations/sqlite/0002_twofactor_adversary_model.sql"),
                include_str!("../../../migrations/sqlite/0003_twofactor_authenticators.sql"),
            ],
        )
        .await;
    }
}
