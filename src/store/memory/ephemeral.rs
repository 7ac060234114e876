//! `EphemeralStore` for [`MemoryStore`]: challenges and limiter states.

use std::convert::Infallible;
use std::future::Future;

use super::{MemoryStore, SWEEP_EVERY, done};
use crate::store::{ChallengeHash, ChallengeRecord, EphemeralStore, LimiterState, LimiterUpdate};

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
