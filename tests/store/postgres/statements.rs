//! PostgreSQL statement-level edge cases: connections killed mid-transaction, values out of
//! range, rows this version cannot read, what purging deletes (sqlx 0.9; the 0.8 copy runs the
//! same SQL).

use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Executor};
use twofactor::store::postgres::PostgresStore;
use twofactor::store::{
    ChallengeRecord, CredentialStore, DeviceRecord, EphemeralStore, LimiterState,
};

use super::on_sqlx09::Schema;
use crate::common;
use crate::sql_checks;

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
    let url = need_postgres!(connection_killed_mid_consume_consumes_nothing);
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
    let url = need_postgres!(connection_killed_mid_activate_changes_nothing);
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
    let url = need_postgres!(out_of_range_values_are_refused);
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
    let url = need_postgres!(purge_drops_only_expired_rows);
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

#[tokio::test]
async fn malformed_scheduled_changes_are_errors() {
    let url = need_postgres!(malformed_scheduled_changes_are_errors);
    let schema = Schema::create(&url).await;
    let store = schema.store().await;
    sql_checks::malformed_scheduled_changes_are_errors(&store).await;
    schema.drop(&[&store]).await;
}

#[tokio::test]
async fn purge_drops_expired_notice_tokens() {
    let url = need_postgres!(purge_drops_expired_notice_tokens);
    let schema = Schema::create(&url).await;
    let store = schema.store().await;
    sql_checks::purge_drops_expired_notice_tokens(&store).await;
    schema.drop(&[&store]).await;
}
