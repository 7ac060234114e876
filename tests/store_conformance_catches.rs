//! The conformance suite must fail a broken store. Each store here wraps `MemoryStore` and breaks
//! exactly one contract the way a hand-written adapter would. Most read and then write: they
//! check with a read, yield (a round trip to the database), then write blindly and report the
//! read's answer; sequential checks still pass and only the races can catch them. One forgets to
//! compare `advance_step`'s expected secret, which the re-enrolment checks must catch, one
//! reports a stale `before` from `update_limiter`, which only the chained race can see, and two
//! `take_notice`s forget a condition (the user, the expiry), which the single-call checks
//! must catch.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::future::Future;

use twofactor::store::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    DeviceRecord, EphemeralStore, LimiterState, LimiterUpdate, MemoryStore, RecoveryRecord,
    RemoveCredential, ScheduledChangeRecord, TokenHash, conformance,
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
    /// `remove_credential` counts, yields, then deletes: two removals can empty the set.
    RemoveCredential,
    /// `put_pending` checks for an enabled authenticator, then writes without the check.
    PutPending,
    /// `use_device` answers from a cache that `delete_device` does not invalidate.
    UseDevice,
    /// `take_change` lists the changes, yields, then deletes without a condition.
    TakeChange,
    /// `take_notice` accepts a live token whoever presents it.
    TakeNoticeIgnoresUser,
    /// `take_notice` accepts a token of the user whenever it is presented.
    TakeNoticeIgnoresExpiry,
    /// `cancel_recovery(_, false)` reads `approved`, yields, then deletes without the check.
    CancelRecovery,
}

/// Who each notice token was put for, as a `take_notice` that ignores the user id finds it (a
/// `DELETE ... WHERE token_hash = ?` without `AND user_id = ?`).
static NOTICE_OWNERS: std::sync::Mutex<Vec<(TokenHash, String)>> =
    std::sync::Mutex::new(Vec::new());

#[derive(Clone)]
struct ReadThenWrite(MemoryStore, Broken);

type R<T> = Result<T, Infallible>;

impl CredentialStore for ReadThenWrite {
    type Error = Infallible;

    fn get_credentials(&self, u: &str) -> impl Future<Output = R<Vec<CredentialRecord>>> + Send {
        self.0.get_credentials(u)
    }
    async fn put_pending(&self, u: &str, r: &CredentialRecord, only_if_none: bool) -> R<bool> {
        if self.1 != Broken::PutPending || !only_if_none {
            return self.0.put_pending(u, r, only_if_none).await;
        }
        // Checks for an enabled authenticator, yields, then writes blindly.
        if self.0.get_credentials(u).await?.iter().any(|c| c.enabled) {
            return Ok(false);
        }
        tokio::task::yield_now().await;
        self.0.put_pending(u, r, false).await
    }
    fn activate(
        &self,
        u: &str,
        s: &[u8],
        step: u64,
        drift: i64,
        codes: Option<&[BackupCodeHash]>,
        max: u32,
    ) -> impl Future<Output = R<bool>> + Send {
        self.0.activate(u, s, step, drift, codes, max)
    }
    async fn advance_step(
        &self,
        u: &str,
        id: &str,
        secret: &[u8],
        step: u64,
        drift: i64,
        now: u64,
    ) -> R<bool> {
        let stored = || async {
            Ok::<_, Infallible>(
                self.0
                    .get_credentials(u)
                    .await?
                    .into_iter()
                    .find(|c| c.id == id),
            )
        };
        match self.1 {
            Broken::AdvanceStep => {
                let ok = stored().await?.is_some_and(|c| {
                    c.enabled
                        && c.encrypted_secret == secret
                        && c.last_step.is_none_or(|last| last < step)
                });
                tokio::task::yield_now().await;
                if ok {
                    let _ = self.0.advance_step(u, id, secret, step, drift, now).await?;
                }
                Ok(ok)
            }
            Broken::AdvanceStepIgnoresSecret => {
                // Still one atomic step compare-and-set, but on whatever credential is stored.
                let Some(stored) = stored().await? else {
                    return Ok(false);
                };
                self.0
                    .advance_step(u, id, &stored.encrypted_secret, step, drift, now)
                    .await
            }
            _ => self.0.advance_step(u, id, secret, step, drift, now).await,
        }
    }
    fn rewrite_secret(
        &self,
        u: &str,
        id: &str,
        o: &[u8],
        n: &[u8],
    ) -> impl Future<Output = R<bool>> + Send {
        self.0.rewrite_secret(u, id, o, n)
    }
    fn rename_credential(
        &self,
        u: &str,
        id: &str,
        name: &str,
    ) -> impl Future<Output = R<bool>> + Send {
        self.0.rename_credential(u, id, name)
    }
    async fn remove_credential(&self, u: &str, id: &str) -> R<RemoveCredential> {
        if self.1 != Broken::RemoveCredential {
            return self.0.remove_credential(u, id).await;
        }
        // Counts the enabled authenticators, yields, then deletes blindly.
        let list = self.0.get_credentials(u).await?;
        let enabled = list.iter().filter(|c| c.enabled).count();
        let Some(target) = list.iter().find(|c| c.id == id) else {
            return Ok(RemoveCredential::NotFound);
        };
        if target.enabled && enabled <= 1 {
            return Ok(RemoveCredential::LastEnabled);
        }
        tokio::task::yield_now().await;
        // Sidestep MemoryStore's own guard to delete as a blind `DELETE` would.
        let mut rest = self.0.get_credentials(u).await?;
        rest.retain(|c| c.id != id);
        let _ = self.0.delete_credentials(u).await?;
        for c in rest {
            let _ = self.0.put_pending(u, &c, false).await?;
            if c.enabled {
                let last = c.last_step.unwrap_or(0);
                let _ = self
                    .0
                    .activate(u, &c.encrypted_secret, last, c.drift, None, 100)
                    .await?;
                let _ = self
                    .0
                    .activate(u, &c.encrypted_secret, last, c.drift, Some(&[]), 100)
                    .await?;
            }
        }
        Ok(RemoveCredential::Removed)
    }
    fn delete_credentials(&self, u: &str) -> impl Future<Output = R<bool>> + Send {
        self.0.delete_credentials(u)
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
    async fn cancel_recovery(&self, u: &str, include_approved: bool) -> R<bool> {
        if self.1 != Broken::CancelRecovery || include_approved {
            return self.0.cancel_recovery(u, include_approved).await;
        }
        let Some(request) = self.0.get_recovery(u).await? else {
            return Ok(false);
        };
        if request.approved {
            return Ok(false);
        }
        tokio::task::yield_now().await;
        self.0.cancel_recovery(u, true).await
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
            let _ = self.0.cancel_recovery(u, true).await?;
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
    fn put_change(
        &self,
        u: &str,
        r: &ScheduledChangeRecord,
    ) -> impl Future<Output = R<bool>> + Send {
        self.0.put_change(u, r)
    }
    fn list_changes(&self, u: &str) -> impl Future<Output = R<Vec<ScheduledChangeRecord>>> + Send {
        self.0.list_changes(u)
    }
    async fn take_change(
        &self,
        u: &str,
        id: &str,
        due_by: u64,
    ) -> R<Option<ScheduledChangeRecord>> {
        if self.1 != Broken::TakeChange {
            return self.0.take_change(u, id, due_by).await;
        }
        let found = self
            .0
            .list_changes(u)
            .await?
            .into_iter()
            .find(|c| c.id == id && c.not_before <= due_by);
        tokio::task::yield_now().await;
        if found.is_some() {
            let _ = self.0.take_change(u, id, u64::MAX).await?;
        }
        Ok(found)
    }
    fn delete_changes(&self, u: &str) -> impl Future<Output = R<u64>> + Send {
        self.0.delete_changes(u)
    }
    fn put_notice(
        &self,
        h: &TokenHash,
        u: &str,
        expires_at: u64,
    ) -> impl Future<Output = R<()>> + Send {
        if self.1 == Broken::TakeNoticeIgnoresUser {
            NOTICE_OWNERS.lock().unwrap().push((*h, u.to_owned()));
        }
        self.0.put_notice(h, u, expires_at)
    }
    async fn take_notice(&self, u: &str, h: &TokenHash, now: u64) -> R<bool> {
        match self.1 {
            Broken::TakeNoticeIgnoresUser => {
                let owner = NOTICE_OWNERS
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .find(|(k, _)| k == h)
                    .map(|(_, owner)| owner.clone());
                match owner {
                    Some(owner) => self.0.take_notice(&owner, h, now).await,
                    None => Ok(false),
                }
            }
            Broken::TakeNoticeIgnoresExpiry => self.0.take_notice(u, h, 0).await,
            _ => self.0.take_notice(u, h, now).await,
        }
    }
    fn put_device(&self, h: &TokenHash, r: &DeviceRecord) -> impl Future<Output = R<()>> + Send {
        self.0.put_device(h, r)
    }
    async fn use_device(&self, h: &TokenHash, now: u64) -> R<Option<DeviceRecord>> {
        if self.1 != Broken::UseDevice {
            return self.0.use_device(h, now).await;
        }
        // A cache in front of the store that a delete does not invalidate.
        static CACHE: std::sync::Mutex<Vec<(TokenHash, DeviceRecord)>> =
            std::sync::Mutex::new(Vec::new());
        let cached = CACHE
            .lock()
            .unwrap()
            .iter()
            .find(|(k, d)| k == h && now < d.expires_at)
            .map(|(_, d)| DeviceRecord {
                last_used_at: now,
                ..d.clone()
            });
        if cached.is_some() {
            return Ok(cached);
        }
        let read = self.0.use_device(h, now).await?;
        if let Some(d) = &read {
            CACHE.lock().unwrap().push((*h, d.clone()));
        }
        Ok(read)
    }
    fn list_devices(
        &self,
        u: &str,
        now: u64,
    ) -> impl Future<Output = R<Vec<(TokenHash, DeviceRecord)>>> + Send {
        self.0.list_devices(u, now)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "remove_credential")]
async fn catches_read_then_write_remove_credential() {
    conformance::credential_store(broken(Broken::RemoveCredential)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "use_device")]
async fn catches_use_device_answering_from_a_stale_read() {
    conformance::credential_store(broken(Broken::UseDevice)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "put_pending(only_if_none_enabled) racing activate")]
async fn catches_read_then_write_put_pending() {
    conformance::credential_store(broken(Broken::PutPending)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "take_change race")]
async fn catches_read_then_write_take_change() {
    conformance::credential_store(broken(Broken::TakeChange)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "take_change race")]
async fn pair_catches_read_then_write_take_change() {
    let a = broken(Broken::TakeChange);
    conformance::credential_store_pair(a.clone(), a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "take_notice with another user's id must refuse")]
async fn catches_take_notice_ignoring_the_user() {
    conformance::credential_store(broken(Broken::TakeNoticeIgnoresUser)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "take_notice with now == expires_at must refuse")]
async fn catches_take_notice_ignoring_the_expiry() {
    conformance::credential_store(broken(Broken::TakeNoticeIgnoresExpiry)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "racing approve_recovery")]
async fn catches_read_then_write_cancel_recovery_sparing_approved() {
    conformance::credential_store(broken(Broken::CancelRecovery)).await;
}
