//! The conformance suite must fail a store that reads and then writes. Each store here wraps
//! `MemoryStore` and breaks exactly one atomic operation the way a hand-written adapter would:
//! it checks with a read, yields (a round trip to the database), then writes blindly and
//! reports the read's answer. Sequential checks still pass; only the races can catch it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::future::Future;

use twofactor::store::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    EphemeralStore, LimiterState, MemoryStore, RecoveryRecord, conformance,
};

/// Which operation the store gets wrong.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Broken {
    None,
    AdvanceStep,
    TakeChallenge,
    UpdateLimiter,
}

#[derive(Clone)]
struct ReadThenWrite(MemoryStore, Broken);

type R<T> = Result<T, Infallible>;

impl CredentialStore for ReadThenWrite {
    type Error = Infallible;

    fn get_credential(&self, u: &str) -> impl Future<Output = R<Option<CredentialRecord>>> + Send {
        self.0.get_credential(u)
    }
    fn put_pending(&self, u: &str, r: &CredentialRecord) -> impl Future<Output = R<bool>> + Send {
        self.0.put_pending(u, r)
    }
    fn activate(
        &self,
        u: &str,
        s: &[u8],
        step: u64,
        drift: i64,
        codes: &[BackupCodeHash],
    ) -> impl Future<Output = R<bool>> + Send {
        self.0.activate(u, s, step, drift, codes)
    }
    async fn advance_step(&self, u: &str, step: u64, drift: i64) -> R<bool> {
        if self.1 != Broken::AdvanceStep {
            return self.0.advance_step(u, step, drift).await;
        }
        let ok = self
            .0
            .get_credential(u)
            .await?
            .is_some_and(|c| c.enabled && c.last_step.is_none_or(|last| last < step));
        tokio::task::yield_now().await;
        if ok {
            let _ = self.0.advance_step(u, step, drift).await?;
        }
        Ok(ok)
    }
    fn rewrite_secret(&self, u: &str, o: &[u8], n: &[u8]) -> impl Future<Output = R<bool>> + Send {
        self.0.rewrite_secret(u, o, n)
    }
    fn delete_credential(&self, u: &str) -> impl Future<Output = R<bool>> + Send {
        self.0.delete_credential(u)
    }
    fn consume_backup_code(
        &self,
        u: &str,
        h: &BackupCodeHash,
    ) -> impl Future<Output = R<Option<u32>>> + Send {
        self.0.consume_backup_code(u, h)
    }
    fn replace_backup_codes(
        &self,
        u: &str,
        h: &[BackupCodeHash],
    ) -> impl Future<Output = R<bool>> + Send {
        self.0.replace_backup_codes(u, h)
    }
    fn backup_codes_remaining(&self, u: &str) -> impl Future<Output = R<u32>> + Send {
        self.0.backup_codes_remaining(u)
    }
    fn put_recovery(&self, u: &str, r: &RecoveryRecord) -> impl Future<Output = R<()>> + Send {
        self.0.put_recovery(u, r)
    }
    fn get_recovery(&self, u: &str) -> impl Future<Output = R<Option<RecoveryRecord>>> + Send {
        self.0.get_recovery(u)
    }
    fn approve_recovery(&self, u: &str) -> impl Future<Output = R<bool>> + Send {
        self.0.approve_recovery(u)
    }
    fn cancel_recovery(&self, u: &str) -> impl Future<Output = R<bool>> + Send {
        self.0.cancel_recovery(u)
    }
    fn complete_recovery(&self, u: &str, now: u64) -> impl Future<Output = R<bool>> + Send {
        self.0.complete_recovery(u, now)
    }
}

impl EphemeralStore for ReadThenWrite {
    type Error = Infallible;

    fn put_challenge(
        &self,
        h: &ChallengeHash,
        r: &ChallengeRecord,
    ) -> impl Future<Output = R<()>> + Send {
        self.0.put_challenge(h, r)
    }
    fn get_challenge(
        &self,
        h: &ChallengeHash,
        now: u64,
    ) -> impl Future<Output = R<Option<ChallengeRecord>>> + Send {
        self.0.get_challenge(h, now)
    }
    async fn take_challenge(&self, h: &ChallengeHash, now: u64) -> R<Option<ChallengeRecord>> {
        if self.1 != Broken::TakeChallenge {
            return self.0.take_challenge(h, now).await;
        }
        let found = self.0.get_challenge(h, now).await?;
        tokio::task::yield_now().await;
        let _ = self.0.take_challenge(h, now).await?;
        Ok(found)
    }
    async fn update_limiter<F>(&self, key: &str, expire_at: u64, update: F) -> R<LimiterState>
    where
        F: Fn(LimiterState) -> LimiterState + Send + Sync,
    {
        if self.1 != Broken::UpdateLimiter {
            return self.0.update_limiter(key, expire_at, update).await;
        }
        let next = update(self.0.get_limiter(key).await?);
        tokio::task::yield_now().await;
        self.0.update_limiter(key, expire_at, |_| next).await
    }
    fn get_limiter(&self, key: &str) -> impl Future<Output = R<LimiterState>> + Send {
        self.0.get_limiter(key)
    }
}

fn broken(which: Broken) -> ReadThenWrite {
    ReadThenWrite(MemoryStore::new(), which)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrapper_is_correct_when_nothing_is_broken() {
    // Guards the tests below: they must fail for the broken operation, not for the wrapper.
    let store = broken(Broken::None);
    conformance::credential_store(store.clone()).await;
    conformance::ephemeral_store(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "advance_step race")]
async fn catches_read_then_write_advance_step() {
    conformance::credential_store(broken(Broken::AdvanceStep)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "advance_step race")]
async fn pair_catches_read_then_write_advance_step() {
    let a = broken(Broken::AdvanceStep);
    conformance::credential_store_pair(a.clone(), a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "take_challenge race")]
async fn catches_read_then_write_take_challenge() {
    conformance::ephemeral_store(broken(Broken::TakeChallenge)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "update_limiter race")]
async fn catches_lost_limiter_updates() {
    conformance::ephemeral_store(broken(Broken::UpdateLimiter)).await;
}
