//! SQLite statement-level edge cases: values out of range, rows this version cannot read, what
//! purging deletes (sqlx 0.9; the 0.8 copy runs the same SQL).

use twofactor::store::{
    ChallengeRecord, CredentialStore, DeviceRecord, EphemeralStore, LimiterState,
};

use super::on_sqlx09::TempDb;
use crate::common;
use crate::sql_checks;

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

#[tokio::test]
async fn malformed_scheduled_changes_are_errors() {
    let db = TempDb::new();
    sql_checks::malformed_scheduled_changes_are_errors(&db.store().await).await;
}

#[tokio::test]
async fn purge_drops_expired_notice_tokens() {
    let db = TempDb::new();
    sql_checks::purge_drops_expired_notice_tokens(&db.store().await).await;
}
