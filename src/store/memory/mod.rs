//! An in-memory store that implements both storage traits.
//!
//! [`MemoryStore`] is for tests, prototypes and single-process applications. Everything lives
//! in one process behind one mutex, so every atomicity contract holds trivially, and everything
//! is lost when the process exits: users who enabled 2FA would have to enrol again, and used
//! backup codes and TOTP steps would become usable again after a restart. An application that
//! runs more than one instance, or must survive a restart, needs a shared durable store
//! (SQLite, PostgreSQL, or your own implementation checked with `store::conformance`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::sync::{Arc, Mutex, MutexGuard};

use subtle::ConstantTimeEq;

mod credential;
mod ephemeral;

use super::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, DeviceRecord, LimiterState,
    Purge, RecoveryRecord, ScheduledChangeRecord, TokenHash,
};

/// After this many `take_challenge` calls, expired challenges and limiter states are swept, so
/// a long-running process does not grow without bound even if it never calls
/// [`Purge::purge_expired`].
const SWEEP_EVERY: u32 = 1024;

/// A [`CredentialStore`](super::CredentialStore) and [`EphemeralStore`](super::EphemeralStore)
/// kept in process memory.
///
/// Clones share the same state (an `Arc` inside), so one store can be handed to the service and
/// kept by the test that inspects it. The error type is [`Infallible`]: no operation can fail.
///
/// Not durable and not shared between processes: see the [module docs](self) for when to use
/// something else.
///
/// # Expiry
///
/// The store never reads a clock. Expired challenges are dropped when they are looked up, and
/// expired challenges and limiter states are swept every 1024 `take_challenge` calls (using
/// that call's `now`) or when you call [`Purge::purge_expired`].
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// Every user's authenticators, oldest first.
    credentials: HashMap<String, Vec<CredentialRecord>>,
    backup_codes: HashMap<String, Vec<BackupCodeHash>>,
    recovery: HashMap<String, RecoveryRecord>,
    challenges: HashMap<ChallengeHash, ChallengeRecord>,
    devices: HashMap<TokenHash, DeviceRecord>,
    limiters: HashMap<String, (LimiterState, u64)>,
    /// Every user's scheduled changes, oldest first.
    changes: HashMap<String, Vec<ScheduledChangeRecord>>,
    /// Notice tokens: hash to (user, expires_at).
    notices: HashMap<TokenHash, (String, u64)>,
    takes_since_sweep: u32,
}

impl Inner {
    fn enabled_count(&self, user_id: &str) -> usize {
        self.credentials
            .get(user_id)
            .map_or(0, |list| list.iter().filter(|c| c.enabled).count())
    }

    fn has_enabled(&self, user_id: &str) -> bool {
        self.enabled_count(user_id) > 0
    }

    fn credential_mut(&mut self, user_id: &str, id: &str) -> Option<&mut CredentialRecord> {
        self.credentials
            .get_mut(user_id)?
            .iter_mut()
            .find(|c| c.id == id)
    }

    /// Removes the user's entry once their last authenticator went.
    fn drop_if_empty(&mut self, user_id: &str) {
        if self.credentials.get(user_id).is_some_and(Vec::is_empty) {
            self.credentials.remove(user_id);
        }
    }

    /// Drops what has expired; returns how many entries went.
    fn sweep(&mut self, now: u64) -> u64 {
        let count =
            |i: &Self| i.challenges.len() + i.devices.len() + i.limiters.len() + i.notices.len();
        let before = count(self);
        self.challenges.retain(|_, c| now < c.expires_at);
        self.devices.retain(|_, d| now < d.expires_at);
        self.limiters.retain(|_, (_, expire_at)| now <= *expire_at);
        self.notices.retain(|_, (_, expires_at)| now < *expires_at);
        self.takes_since_sweep = 0;
        let after = count(self);
        u64::try_from(before - after).unwrap_or(u64::MAX)
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the state. Every critical section finishes its reads and any caller-supplied
    /// computation before it mutates, so a panic while the lock is held (only possible inside a
    /// caller's `update_limiter` closure) leaves the maps consistent, and a poisoned lock can be
    /// recovered instead of turning one panic into a panic on every later call.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl core::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("credentials", &inner.credentials.len())
            .field("challenges", &inner.challenges.len())
            .field("limiters", &inner.limiters.len())
            .finish_non_exhaustive()
    }
}

type Done<T> = Ready<Result<T, Infallible>>;

fn done<T>(value: T) -> Done<T> {
    ready(Ok(value))
}

/// Constant-time comparison of two byte strings (the length is not secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Drops challenges and device tokens with `expires_at <= now` and limiter states whose
/// `expire_at` is before `now`. Optional: the store also sweeps on its own (see
/// [Expiry](MemoryStore#expiry)).
impl Purge for MemoryStore {
    type Error = Infallible;

    fn purge_expired(&self, now: u64) -> impl Future<Output = Result<u64, Infallible>> + Send {
        done(self.lock().sweep(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CredentialStore, EphemeralStore};

    /// Resolves a future that is ready on first poll (every `MemoryStore` future is).
    trait Now {
        type Value;
        fn now(self) -> Self::Value;
    }

    impl<F: Future<Output = Result<T, Infallible>>, T> Now for F {
        type Value = T;
        fn now(self) -> T {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match std::pin::pin!(self).poll(&mut cx) {
                std::task::Poll::Ready(Ok(v)) => v,
                std::task::Poll::Ready(Err(e)) => match e {},
                std::task::Poll::Pending => panic!("MemoryStore future was not ready"),
            }
        }
    }

    #[test]
    fn poisoned_lock_is_recovered() {
        let store = MemoryStore::new();
        let clone = store.clone();
        let result = std::thread::spawn(move || {
            let fut = clone.update_limiter("k", 10, |_| panic!("caller bug"));
            drop(fut);
        })
        .join();
        assert!(result.is_err());
        assert!(store.inner.is_poisoned());
        let state = store.get_limiter("k").now();
        assert_eq!(state, LimiterState::default());
        let state = store
            .update_limiter("k", 10, |mut s| {
                s.attempts += 1;
                s
            })
            .now();
        assert_eq!(state.after.attempts, 1);
    }

    #[test]
    fn sweep_drops_only_expired_state() {
        let store = MemoryStore::new();
        let rec = |expires_at| ChallengeRecord {
            user_id: "u".into(),
            expires_at,
        };
        store.put_challenge(&[1; 32], &rec(100)).now();
        store.put_challenge(&[2; 32], &rec(200)).now();
        store.update_limiter("old", 100, |s| s).now();
        store.update_limiter("new", 200, |s| s).now();
        assert_eq!(store.purge_expired(150).now(), 2);
        let inner = store.lock();
        assert!(!inner.challenges.contains_key(&[1; 32]));
        assert!(inner.challenges.contains_key(&[2; 32]));
        assert!(!inner.limiters.contains_key("old"));
        assert!(inner.limiters.contains_key("new"));
    }

    #[test]
    fn take_challenge_sweeps_periodically() {
        let store = MemoryStore::new();
        let rec = ChallengeRecord {
            user_id: "u".into(),
            expires_at: 100,
        };
        store.put_challenge(&[1; 32], &rec).now();
        for _ in 0..SWEEP_EVERY {
            assert!(store.take_challenge(&[9; 32], 150).now().is_none());
        }
        assert!(store.lock().challenges.is_empty());
    }

    #[test]
    fn debug_shows_counts_only() {
        let store = MemoryStore::new();
        let secret_bytes = vec![0xAB; 20];
        let record = CredentialRecord {
            id: "a1".into(),
            name: "Phone".into(),
            encrypted_secret: secret_bytes,
            algorithm: crate::Algorithm::Sha1,
            digits: 6,
            period: 30,
            enabled: false,
            last_step: None,
            drift: 0,
            created_at: 0,
            last_used_at: None,
            replaces: None,
        };
        assert!(store.put_pending("alice", &record, true).now());
        let debug = format!("{store:?}");
        assert!(debug.contains("credentials: 1"), "{debug}");
        assert!(
            !debug.contains("alice") && !debug.contains("171"),
            "{debug}"
        );
    }
}
