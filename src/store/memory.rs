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

use super::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    DeletedCredentials, DeviceRecord, EphemeralStore, LimiterState, LimiterUpdate, Purge,
    RecoveryRecord, RemoveCredential, ScheduledChangeRecord, TokenHash,
};

/// After this many `take_challenge` calls, expired challenges and limiter states are swept, so
/// a long-running process does not grow without bound even if it never calls
/// [`Purge::purge_expired`].
const SWEEP_EVERY: u32 = 1024;

/// A [`CredentialStore`] and [`EphemeralStore`] kept in process memory.
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

impl CredentialStore for MemoryStore {
    type Error = Infallible;

    fn get_credentials(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<CredentialRecord>, Infallible>> + Send {
        done(
            self.lock()
                .credentials
                .get(user_id)
                .cloned()
                .unwrap_or_default(),
        )
    }

    /// Stores the record with `enabled` forced to `false`, whatever the caller passed.
    fn put_pending(
        &self,
        user_id: &str,
        record: &CredentialRecord,
        only_if_none_enabled: bool,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        if only_if_none_enabled && inner.has_enabled(user_id) {
            return done(false);
        }
        let mut record = record.clone();
        record.enabled = false;
        let list = inner.credentials.entry(user_id.to_owned()).or_default();
        if list.iter().any(|c| c.enabled && c.id == record.id) {
            return done(false);
        }
        list.retain(|c| c.enabled);
        list.push(record);
        done(true)
    }

    fn activate(
        &self,
        user_id: &str,
        expected_secret: &[u8],
        step: u64,
        drift: i64,
        backup_codes: Option<&[BackupCodeHash]>,
        max_enabled: u32,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(list) = inner.credentials.get_mut(user_id) else {
            return done(false);
        };
        let Some(pending) = list
            .iter()
            .position(|c| !c.enabled && ct_eq(&c.encrypted_secret, expected_secret))
        else {
            return done(false);
        };
        let enabled = list.iter().filter(|c| c.enabled).count();
        let replaced = match (&backup_codes, &list[pending].replaces) {
            (Some(_), _) => None,
            (None, Some(old)) => list.iter().position(|c| c.enabled && &c.id == old),
            (None, None) => None,
        };
        let after = enabled - usize::from(replaced.is_some()) + 1;
        let allowed = match backup_codes {
            Some(_) => enabled == 0,
            None => enabled > 0,
        };
        if !allowed || after > max_enabled as usize {
            return done(false);
        }
        let record = &mut list[pending];
        record.enabled = true;
        record.last_step = Some(step);
        record.drift = drift;
        record.replaces = None;
        if let Some(i) = replaced {
            list.remove(i);
        }
        if let Some(codes) = backup_codes {
            inner
                .backup_codes
                .insert(user_id.to_owned(), codes.to_vec());
        }
        done(true)
    }

    fn advance_step(
        &self,
        user_id: &str,
        id: &str,
        expected_secret: &[u8],
        step: u64,
        drift: i64,
        now: u64,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(record) = inner.credential_mut(user_id, id) else {
            return done(false);
        };
        // The blob is ciphertext, not a secret: a plain comparison is enough (and several times
        // cheaper than a constant-time one over 60 bytes on this hot path).
        if !record.enabled
            || record.encrypted_secret != expected_secret
            || record.last_step.is_some_and(|last| last >= step)
        {
            return done(false);
        }
        record.last_step = Some(step);
        record.drift = drift;
        record.last_used_at = Some(now);
        done(true)
    }

    fn rewrite_secret(
        &self,
        user_id: &str,
        id: &str,
        old_secret: &[u8],
        new_secret: &[u8],
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(record) = inner.credential_mut(user_id, id) else {
            return done(false);
        };
        if !ct_eq(&record.encrypted_secret, old_secret) {
            return done(false);
        }
        record.encrypted_secret = new_secret.to_vec();
        done(true)
    }

    fn rename_credential(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(record) = inner.credential_mut(user_id, id) else {
            return done(false);
        };
        name.clone_into(&mut record.name);
        done(true)
    }

    fn remove_credential(
        &self,
        user_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<RemoveCredential, Infallible>> + Send {
        let mut inner = self.lock();
        let enabled = inner.enabled_count(user_id);
        let Some(list) = inner.credentials.get_mut(user_id) else {
            return done(RemoveCredential::NotFound);
        };
        let Some(i) = list.iter().position(|c| c.id == id) else {
            return done(RemoveCredential::NotFound);
        };
        if list[i].enabled && enabled <= 1 {
            return done(RemoveCredential::LastEnabled);
        }
        list.remove(i);
        inner.drop_if_empty(user_id);
        done(RemoveCredential::Removed)
    }

    fn delete_credentials(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        inner.backup_codes.remove(user_id);
        inner.recovery.remove(user_id);
        inner.changes.remove(user_id);
        done(inner.credentials.remove(user_id).is_some())
    }

    fn consume_backup_code(
        &self,
        user_id: &str,
        hash: &BackupCodeHash,
    ) -> impl Future<Output = Result<Option<u32>, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(codes) = inner.backup_codes.get_mut(user_id) else {
            return done(None);
        };
        // Look at every code, without an early exit, so timing says nothing about which matched.
        let mut found = None;
        for (i, stored) in codes.iter().enumerate() {
            if bool::from(stored.ct_eq(hash)) && found.is_none() {
                found = Some(i);
            }
        }
        done(found.map(|i| {
            codes.swap_remove(i);
            u32::try_from(codes.len()).unwrap_or(u32::MAX)
        }))
    }

    fn replace_backup_codes(
        &self,
        user_id: &str,
        hashes: &[BackupCodeHash],
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        if !inner.has_enabled(user_id) {
            return done(false);
        }
        inner
            .backup_codes
            .insert(user_id.to_owned(), hashes.to_vec());
        done(true)
    }

    fn backup_codes_remaining(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<u32, Infallible>> + Send {
        let inner = self.lock();
        let n = inner.backup_codes.get(user_id).map_or(0, Vec::len);
        done(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn put_recovery(
        &self,
        user_id: &str,
        record: &RecoveryRecord,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.lock()
            .recovery
            .insert(user_id.to_owned(), record.clone());
        done(())
    }

    fn get_recovery(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<RecoveryRecord>, Infallible>> + Send {
        done(self.lock().recovery.get(user_id).cloned())
    }

    fn approve_recovery(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        done(match inner.recovery.get_mut(user_id) {
            Some(record) => {
                record.approved = true;
                true
            }
            None => false,
        })
    }

    fn cancel_recovery(
        &self,
        user_id: &str,
        include_approved: bool,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let cancel = inner
            .recovery
            .get(user_id)
            .is_some_and(|r| include_approved || !r.approved);
        if cancel {
            inner.recovery.remove(user_id);
        }
        done(cancel)
    }

    fn cancel_recovery_with_token(
        &self,
        user_id: &str,
        cancel_hash: &TokenHash,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let matches = inner
            .recovery
            .get(user_id)
            .is_some_and(|r| bool::from(r.cancel_hash.ct_eq(cancel_hash)));
        if matches {
            inner.recovery.remove(user_id);
        }
        done(matches)
    }

    fn complete_recovery(
        &self,
        user_id: &str,
        now: u64,
        approval_required: bool,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let due = inner.recovery.get(user_id).is_some_and(|r| {
            r.approved || (!approval_required && !r.needs_approval && r.not_before <= now)
        });
        if !due {
            return done(false);
        }
        inner.recovery.remove(user_id);
        inner.credentials.remove(user_id);
        inner.backup_codes.remove(user_id);
        inner.changes.remove(user_id);
        done(true)
    }

    fn put_change(
        &self,
        user_id: &str,
        record: &ScheduledChangeRecord,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let list = inner.changes.entry(user_id.to_owned()).or_default();
        if list.iter().any(|c| c.id == record.id) {
            return done(false);
        }
        list.push(record.clone());
        list.sort_by(|a, b| (a.requested_at, &a.id).cmp(&(b.requested_at, &b.id)));
        done(true)
    }

    fn list_changes(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<ScheduledChangeRecord>, Infallible>> + Send {
        done(
            self.lock()
                .changes
                .get(user_id)
                .cloned()
                .unwrap_or_default(),
        )
    }

    fn take_change(
        &self,
        user_id: &str,
        id: &str,
        due_by: u64,
    ) -> impl Future<Output = Result<Option<ScheduledChangeRecord>, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(list) = inner.changes.get_mut(user_id) else {
            return done(None);
        };
        let Some(i) = list
            .iter()
            .position(|c| c.id == id && c.not_before <= due_by)
        else {
            return done(None);
        };
        let taken = list.remove(i);
        if list.is_empty() {
            inner.changes.remove(user_id);
        }
        done(Some(taken))
    }

    fn delete_changes(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        let n = self.lock().changes.remove(user_id).map_or(0, |l| l.len());
        done(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn put_notice(
        &self,
        hash: &TokenHash,
        user_id: &str,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.lock()
            .notices
            .insert(*hash, (user_id.to_owned(), expires_at));
        done(())
    }

    fn take_notice(
        &self,
        user_id: &str,
        hash: &TokenHash,
        now: u64,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let live = inner
            .notices
            .get(hash)
            .is_some_and(|(user, expires_at)| user == user_id && now < *expires_at);
        if live {
            inner.notices.remove(hash);
        }
        done(live)
    }

    fn put_device(
        &self,
        hash: &TokenHash,
        record: &DeviceRecord,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.lock().devices.insert(*hash, record.clone());
        done(())
    }

    fn use_device(
        &self,
        hash: &TokenHash,
        now: u64,
    ) -> impl Future<Output = Result<Option<DeviceRecord>, Infallible>> + Send {
        let mut inner = self.lock();
        let live = inner
            .devices
            .get_mut(hash)
            .filter(|d| now < d.expires_at)
            .map(|d| {
                d.last_used_at = now;
                d.clone()
            });
        done(live)
    }

    fn list_devices(
        &self,
        user_id: &str,
        now: u64,
    ) -> impl Future<Output = Result<Vec<(TokenHash, DeviceRecord)>, Infallible>> + Send {
        let inner = self.lock();
        let mut list: Vec<(TokenHash, DeviceRecord)> = inner
            .devices
            .iter()
            .filter(|(_, d)| d.user_id == user_id && now < d.expires_at)
            .map(|(h, d)| (*h, d.clone()))
            .collect();
        list.sort_by_key(|(hash, d)| (d.created_at, *hash));
        done(list)
    }

    fn delete_device(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        done(self.lock().devices.remove(hash).is_some())
    }

    fn delete_devices(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        let mut inner = self.lock();
        let before = inner.devices.len();
        inner.devices.retain(|_, d| d.user_id != user_id);
        done(u64::try_from(before - inner.devices.len()).unwrap_or(u64::MAX))
    }

    fn delete_user(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<DeletedCredentials, Infallible>> + Send {
        let mut inner = self.lock();
        inner.backup_codes.remove(user_id);
        inner.recovery.remove(user_id);
        inner.changes.remove(user_id);
        inner.notices.retain(|_, (user, _)| user != user_id);
        let credential = inner.credentials.remove(user_id).is_some();
        let mut devices = Vec::new();
        inner.devices.retain(|hash, d| {
            let theirs = d.user_id == user_id;
            if theirs {
                devices.push(*hash);
            }
            !theirs
        });
        done(DeletedCredentials {
            credential,
            devices,
        })
    }
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

impl EphemeralStore for MemoryStore {
    type Error = Infallible;

    fn put_challenge(
        &self,
        hash: &ChallengeHash,
        record: &ChallengeRecord,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.lock().challenges.insert(*hash, record.clone());
        done(())
    }

    fn get_challenge(
        &self,
        hash: &ChallengeHash,
        now: u64,
    ) -> impl Future<Output = Result<Option<ChallengeRecord>, Infallible>> + Send {
        let mut inner = self.lock();
        let live = match inner.challenges.get(hash) {
            Some(record) if now < record.expires_at => Some(record.clone()),
            Some(_) => {
                inner.challenges.remove(hash);
                None
            }
            None => None,
        };
        done(live)
    }

    fn take_challenge(
        &self,
        hash: &ChallengeHash,
        now: u64,
    ) -> impl Future<Output = Result<Option<ChallengeRecord>, Infallible>> + Send {
        let mut inner = self.lock();
        let taken = inner
            .challenges
            .remove(hash)
            .filter(|record| now < record.expires_at);
        inner.takes_since_sweep = inner.takes_since_sweep.saturating_add(1);
        if inner.takes_since_sweep >= SWEEP_EVERY {
            inner.sweep(now);
        }
        done(taken)
    }

    /// Runs `update` exactly once, under the store's lock.
    fn update_limiter<F>(
        &self,
        key: &str,
        expire_at: u64,
        update: F,
    ) -> impl Future<Output = Result<LimiterUpdate, Infallible>> + Send
    where
        F: Fn(LimiterState) -> LimiterState + Send + Sync,
    {
        let mut inner = self.lock();
        // The caller's closure runs before any mutation (see `lock`). An existing row is
        // updated in place: the key is allocated only for a new one.
        let (before, after) = if let Some(slot) = inner.limiters.get_mut(key) {
            let before = slot.0;
            let after = update(before);
            *slot = (after, expire_at);
            (before, after)
        } else {
            let before = LimiterState::default();
            let after = update(before);
            inner.limiters.insert(key.to_owned(), (after, expire_at));
            (before, after)
        };
        done(LimiterUpdate { before, after })
    }

    fn get_limiter(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<LimiterState, Infallible>> + Send {
        let inner = self.lock();
        done(
            inner
                .limiters
                .get(key)
                .map(|(state, _)| *state)
                .unwrap_or_default(),
        )
    }

    fn delete_user_state(
        &self,
        user_id: &str,
        limiter_keys: &[String],
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        let mut inner = self.lock();
        let before = inner.challenges.len();
        inner.challenges.retain(|_, c| c.user_id != user_id);
        let mut count = before - inner.challenges.len();
        for key in limiter_keys {
            count += usize::from(inner.limiters.remove(key).is_some());
        }
        done(u64::try_from(count).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
