//! The conformance suite must fail a broken store. Each store here wraps `MemoryStore` and breaks
//! exactly one contract the way a hand-written adapter would. Most read and then write: they
//! check with a read, yield (a round trip to the database), then write blindly and report the
//! read's answer; sequential checks still pass and only the races can catch them. One forgets to
//! compare `advance_step`'s expected secret, which the re-enrolment checks must catch, and one
//! reports a stale `before` from `update_limiter`, which only the chained race can see.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::future::Future;

use twofactor::store::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    DeviceRecord, EphemeralStore, LimiterState, LimiterUpdate, MemoryStore, RecoveryRecord,
    TokenHash, conformance,
};

/// Which operation the store gets wrong.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Broken {
    None,
    AdvanceStep,
    /// `advance_step` compares the step but not the secret.
    AdvanceStepIgnoresSecret,
    CancelWithToken,
    TakeChallenge,
    UpdateLimiter,
    /// `update_limiter` is atomic but reports the state it read before, not the one it updated.
    StaleBefore,
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
    async fn advance_step(&self, u: &str, secret: &[u8], step: u64, drift: i64) -> R<bool> {
        match self.1 {
            Broken::AdvanceStep => {
                let ok = self.0.get_credential(u).await?.is_some_and(|c| {
                    c.enabled
                        && c.encrypted_secret == secret
                        && c.last_step.is_none_or(|last| last < step)
                });
                tokio::task::yield_now().await;
                if ok {
                    let _ = self.0.advance_step(u, secret, step, drift).await?;
                }
                Ok(ok)
            }
            Broken::AdvanceStepIgnoresSecret => {
                // Still one atomic step compare-and-set, but on whatever credential is stored.
                let Some(stored) = self.0.get_credential(u).await? else {
                    return Ok(false);
                };
                self.0
                    .advance_step(u, &stored.encrypted_secret, step, drift)
                    .await
            }
            _ => self.0.advance_step(u, secret, step, drift).await,
        }
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
    async fn cancel_recovery_with_token(&self, u: &str, h: &TokenHash) -> R<bool> {
        if self.1 != Broken::CancelWithToken {
            return self.0.cancel_recovery_with_token(u, h).await;
        }
        let ok = self
            .0
            .get_recovery(u)
            .await?
            .is_some_and(|r| r.cancel_hash == *h);
        tokio::task::yield_now().await;
        if ok {
            let _ = self.0.cancel_recovery(u).await?;
        }
        Ok(ok)
    }
    fn complete_recovery(
        &self,
        u: &str,
        now: u64,
        approval_required: bool,
    ) -> impl Future<Output = R<bool>> + Send {
        self.0.complete_recovery(u, now, approval_required)
    }
    fn put_device(&self, h: &TokenHash, r: &DeviceRecord) -> impl Future<Output = R<()>> + Send {
        self.0.put_device(h, r)
    }
    fn get_device(
        &self,
        h: &TokenHash,
        now: u64,
    ) -> impl Future<Output = R<Option<DeviceRecord>>> + Send {
        self.0.get_device(h, now)
    }
    fn delete_device(&self, h: &TokenHash) -> impl Future<Output = R<bool>> + Send {
        self.0.delete_device(h)
    }
    fn delete_devices(&self, u: &str) -> impl Future<Output = R<u64>> + Send {
        self.0.delete_devices(u)
    }
    fn delete_user(
        &self,
        u: &str,
    ) -> impl Future<Output = R<twofactor::store::DeletedCredentials>> + Send {
        self.0.delete_user(u)
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
    async fn update_limiter<F>(&self, key: &str, expire_at: u64, update: F) -> R<LimiterUpdate>
    where
        F: Fn(LimiterState) -> LimiterState + Send + Sync,
    {
        match self.1 {
            Broken::UpdateLimiter => {
                let next = update(self.0.get_limiter(key).await?);
                tokio::task::yield_now().await;
                self.0.update_limiter(key, expire_at, |_| next).await
            }
            Broken::StaleBefore => {
                let read = self.0.get_limiter(key).await?;
                tokio::task::yield_now().await;
                let done = self.0.update_limiter(key, expire_at, update).await?;
                Ok(LimiterUpdate {
                    before: read,
                    ..done
                })
            }
            _ => self.0.update_limiter(key, expire_at, update).await,
        }
    }
    fn get_limiter(&self, key: &str) -> impl Future<Output = R<LimiterState>> + Send {
        self.0.get_limiter(key)
    }
    fn delete_user_state(&self, u: &str, keys: &[String]) -> impl Future<Output = R<u64>> + Send {
        self.0.delete_user_state(u, keys)
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
#[should_panic(expected = "(expected_secret)")]
async fn catches_advance_step_ignoring_the_secret() {
    conformance::credential_store(broken(Broken::AdvanceStepIgnoresSecret)).await;
}

/// The pair suite has no sequential secret check: the re-enrolment race must catch it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "re-enrolment race")]
async fn pair_catches_advance_step_ignoring_the_secret() {
    let a = broken(Broken::AdvanceStepIgnoresSecret);
    conformance::credential_store_pair(a.clone(), a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "cancel_recovery_with_token race")]
async fn catches_read_then_write_cancel_with_token() {
    conformance::credential_store(broken(Broken::CancelWithToken)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "(before/after chain)")]
async fn catches_a_stale_limiter_before() {
    conformance::ephemeral_store(broken(Broken::StaleBefore)).await;
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
