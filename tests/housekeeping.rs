//! `housekeeping::spawn`: the purge runs on its own, on every tick, and survives store errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use twofactor::store::{ChallengeRecord, EphemeralStore, Purge};
use twofactor::{ManualClock, MemoryStore};

#[tokio::test]
async fn purges_expired_entries_in_the_background() {
    let store = MemoryStore::new();
    let record = |expires_at| ChallengeRecord {
        user_id: "u".into(),
        expires_at,
    };
    store.put_challenge(&[1; 32], &record(100)).await.unwrap();
    store.put_challenge(&[2; 32], &record(1_000)).await.unwrap();
    let task = twofactor::housekeeping::spawn_with_clock(
        store.clone(),
        Duration::from_millis(10),
        ManualClock::new(150),
    );
    let mut purged = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Read "as of" time 50, when both were live: only a purge removes the expired one.
        if store.get_challenge(&[1; 32], 50).await.unwrap().is_none() {
            purged = true;
            break;
        }
    }
    assert!(purged, "the expired challenge was never purged");
    assert!(store.get_challenge(&[2; 32], 50).await.unwrap().is_some());
    assert!(!task.is_finished());
    task.abort();
}

/// A store whose purge always fails, counting the calls.
#[derive(Clone, Default)]
struct Failing(Arc<AtomicU32>);

#[derive(Debug, thiserror::Error)]
#[error("database is down")]
struct Down;

impl Purge for Failing {
    type Error = Down;
    async fn purge_expired(&self, _now: u64) -> Result<u64, Down> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Down)
    }
}

#[tokio::test]
async fn keeps_going_when_the_store_fails() {
    let store = Failing::default();
    let task = twofactor::housekeeping::spawn(store.clone(), Duration::from_millis(5));
    for _ in 0..400 {
        if store.0.load(Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        store.0.load(Ordering::SeqCst) >= 3,
        "the task stopped after a failure"
    );
    assert!(
        !task.is_finished(),
        "the task ended (or panicked) on a store error"
    );
    task.abort();
}
