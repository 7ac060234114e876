//! Checks of the SQL stores that read the same in both dialects but for the statement that edits
//! a row behind the store's back: written once here, run on SQLite (`sqlite::statements`) and
//! PostgreSQL (`postgres::statements`), and across the two sqlx versions of each (`across_sqlx`).

use std::future::Future;

use twofactor::store::{
    ChangeKind, CredentialStore, DeviceRecord, EphemeralStore, LimiterState, Purge, RecoveryRecord,
    ScheduledChangeRecord, SqlStoreError,
};

use crate::common;

/// A SQL store of this crate, as its error and its traits name it.
pub trait SqlStore:
    CredentialStore<Error = SqlStoreError>
    + EphemeralStore<Error = SqlStoreError>
    + Purge<Error = SqlStoreError>
{
}

impl<S> SqlStore for S where
    S: CredentialStore<Error = SqlStoreError>
        + EphemeralStore<Error = SqlStoreError>
        + Purge<Error = SqlStoreError>
{
}

/// Raw SQL on the store's own pool, in its dialect.
pub trait RawSql: SqlStore {
    /// A binary literal of the bytes `hex` spells (`x'0102'`, `'\x0102'`).
    fn blob(hex: &str) -> String;
    /// Runs `sql`.
    fn exec(&self, sql: String) -> impl Future<Output = ()>;
    /// Runs `sql`, which counts rows.
    fn count(&self, sql: &'static str) -> impl Future<Output = i64>;
    /// Runs the statements of `script` in one transaction.
    fn script(&self, script: String) -> impl Future<Output = ()>;
    /// The versions recorded in `{prefix}schema_version`, in order.
    fn versions(&self, prefix: &str) -> impl Future<Output = Vec<i64>>;
    /// The type of `schema_version.version` in this dialect (see `migrate()`).
    const VERSION_TYPE: &'static str;
    /// `migrate()` of the store.
    fn migrate(&self) -> impl Future<Output = Result<(), SqlStoreError>>;
    /// The free `migrate(pool)` of the dialect (default prefix) on the store's pool.
    fn migrate_default_prefix(&self) -> impl Future<Output = ()>;
}

/// `RawSql` for the sqlx 0.9 store `$store` of the dialect module `$dialect`, whose binary
/// literals are `$blob` (a format string of `hex`) and whose version column is `$version`.
macro_rules! raw_sql {
    ($store:ident in $dialect:ident, blob: $blob:literal, version: $version:literal) => {
        impl $crate::sql_checks::RawSql for twofactor::store::$dialect::$store {
            fn blob(hex: &str) -> String {
                format!($blob, hex = hex)
            }

            async fn exec(&self, sql: String) {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(self.pool())
                    .await
                    .unwrap();
            }

            async fn count(&self, sql: &'static str) -> i64 {
                sqlx::query_scalar(sql)
                    .fetch_one(self.pool())
                    .await
                    .unwrap()
            }

            async fn script(&self, script: String) {
                let mut tx = self.pool().begin().await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(script))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }

            async fn versions(&self, prefix: &str) -> Vec<i64> {
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT version FROM {prefix}schema_version ORDER BY version"
                )))
                .fetch_all(self.pool())
                .await
                .unwrap()
            }

            const VERSION_TYPE: &'static str = $version;

            async fn migrate(&self) -> Result<(), twofactor::store::SqlStoreError> {
                twofactor::store::$dialect::$store::migrate(self).await
            }

            async fn migrate_default_prefix(&self) {
                twofactor::store::$dialect::migrate(self.pool())
                    .await
                    .unwrap();
            }
        }
    };
}

#[cfg(feature = "sqlite")]
raw_sql!(SqliteStore in sqlite, blob: "x'{hex}'", version: "INTEGER");

#[cfg(feature = "postgres")]
raw_sql!(PostgresStore in postgres, blob: "'\\x{hex}'", version: "BIGINT");

/// A scheduled change this version cannot read (an unknown kind, hashes that are not whole
/// 32-byte hashes) is an error, never a guess, and `take_change` leaves it where it was.
pub async fn malformed_scheduled_changes_are_errors<S: RawSql>(store: &S) {
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
            format!(
                "UPDATE twofactor_scheduled_changes SET backup_code_hashes = {}",
                S::blob("0102")
            ),
            "backup_code_hashes",
        ),
        (
            "UPDATE twofactor_scheduled_changes SET backup_code_hashes = NULL".into(),
            "backup_code_hashes",
        ),
        (
            "UPDATE twofactor_scheduled_changes SET kind = 'remove_authenticator'".into(),
            "authenticator",
        ),
        (
            "UPDATE twofactor_scheduled_changes SET kind = 'format_disk'".into(),
            "kind",
        ),
    ] {
        store.exec(edit.clone()).await;
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
    let kept = store
        .count("SELECT COUNT(*) FROM twofactor_scheduled_changes")
        .await;
    assert_eq!(
        kept, 1,
        "a take_change that could not read the row keeps it"
    );
}

/// What a version 1 database (one credential per user, no version table) holds reads back after
/// `migrate()` (run here on `store`), works with the new operations, and survives migrating again.
pub async fn upgraded_from_version_1<S: RawSql>(store: &S) {
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
    store.migrate_default_prefix().await;
    assert_eq!(
        store
            .use_device(&common::hash(9), 1_700_000_000)
            .await
            .unwrap(),
        Some(device)
    );
    assert_eq!(store.get_limiter("user:alice").await.unwrap(), update.after);
    assert_eq!(store.versions("twofactor_").await, [1, 2, 3, 4]);
    assert!(
        store
            .complete_recovery("alice", 1_700_259_200, false)
            .await
            .unwrap(),
        "a version-1 request that needs no approval completes after its wait"
    );
}

/// A version 3 database (`files`: the dialect's 0001 to 0003) upgrades to 4 keeping every row,
/// and the rollback in 0004's header works: version 3's tables are untouched, and a later
/// upgrade runs 0004 again. `store` has the table prefix `prefix`, and no tables yet.
pub async fn migration_4_is_additive_and_rolls_back_as_documented<S: RawSql>(
    store: &S,
    prefix: &str,
    files: [&str; 3],
) {
    let mut script = String::new();
    for (version, file) in (1..).zip(files) {
        script += &format!(
            "{} CREATE TABLE IF NOT EXISTS {prefix}schema_version \
             (version {} PRIMARY KEY); \
             INSERT INTO {prefix}schema_version (version) VALUES ({version});",
            file.replace("twofactor_", prefix),
            S::VERSION_TYPE,
        );
    }
    store.script(script).await;
    common::enrolled(store, "alice", 2).await;
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

    store
        .script(
            "DROP TABLE twofactor_notices; \
             DROP TABLE twofactor_scheduled_changes; \
             DELETE FROM twofactor_schema_version WHERE version = 4;"
                .replace("twofactor_", prefix),
        )
        .await;
    assert_eq!(store.backup_codes_remaining("alice").await.unwrap(), 2);
    assert!(store.list_changes("alice").await.is_err(), "rolled back");
    store.migrate().await.unwrap();
    assert_eq!(store.list_changes("alice").await.unwrap(), []);
    assert_eq!(store.versions(prefix).await, [1, 2, 3, 4]);
}

/// Notice tokens expired at or before `now` are purged, the others kept.
pub async fn purge_drops_expired_notice_tokens<S: SqlStore>(store: &S) {
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

/// One database, written by the sqlx 0.9 store and read by the 0.8 one and back: an application
/// moves between the two with no data migration.
#[cfg(any(
    all(feature = "sqlite", feature = "sqlite-sqlx08"),
    all(feature = "postgres", feature = "postgres-sqlx08")
))]
pub async fn sqlx_0_8_and_0_9_share_one_schema(on_09: &impl SqlStore, on_08: &impl SqlStore) {
    common::enrolled(on_09, "alice", 3).await;
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
    let challenge = twofactor::store::ChallengeRecord {
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
    assert_eq!(on_09.backup_codes_remaining("alice").await.unwrap(), 2);
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
