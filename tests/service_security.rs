//! Security properties of the service: rate limits and escalation (a simulated year of attacks),
//! races, fail-closed behaviour with failing stores and ciphers. (Secrets in logs:
//! `service_audit.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "service_support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use support::*;
use twofactor::rate_limit::{RateLimitPolicy, YEAR_SECS};
use twofactor::service::{
    CompleteLogin, LoginStart, Method, Remember, SecondFactor, StartLogin, Verify,
};
use twofactor::store::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    DeviceRecord, EphemeralStore, LimiterState, LimiterUpdate, RecoveryRecord,
    ScheduledChangeRecord, TokenHash,
};
use twofactor::{
    BackupCodeKey, ConfirmOutcome, EnrolmentStart, Keyring, ManualClock, MemoryStore, TwoFactor,
    VerifyOutcome,
};

// ------------------------------------------------------------------------------------------
// Rate limits
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn five_failures_per_ten_minutes_then_even_a_valid_code_is_refused() {
    let (svc, _store, clock, events) = service();
    let (secret, _) = enrol(&svc, &clock, "alice").await;
    // The confirmation at T0 opened a window; start after it, so the window starts at the first
    // failure (S + 40).
    let s0 = T0 + 600;
    clock.set(s0 + 30);
    for i in 0..5 {
        clock.advance(10);
        let now = clock.now_secs();
        assert_eq!(
            reauth(&svc, "alice", &wrong_code(&secret, now, i)).await,
            VerifyOutcome::Rejected
        );
    }
    assert_eq!(events.count("locked_out"), 1);
    // s0 + 80: the window started at T0 + 40, so 560 s remain. A valid code is refused too.
    assert_eq!(
        reauth(&svc, "alice", &code_at(&secret, s0 + 80)).await,
        VerifyOutcome::RateLimited {
            retry_after_secs: 560
        }
    );
    clock.set(s0 + 40 + 599);
    assert_eq!(
        reauth(&svc, "alice", &code_at(&secret, s0 + 639)).await,
        VerifyOutcome::RateLimited {
            retry_after_secs: 1
        }
    );
    clock.set(s0 + 40 + 600);
    assert!(
        reauth(&svc, "alice", &code_at(&secret, s0 + 640))
            .await
            .is_success()
    );
    // The success gave back only its own attempt: the five failures stay counted, so five more
    // failures reach the second lockout, twice as long.
    for i in 0..5 {
        assert_eq!(
            reauth(&svc, "alice", &wrong_code(&secret, s0 + 640, 100 + i)).await,
            VerifyOutcome::Rejected
        );
    }
    assert_eq!(
        reauth(&svc, "alice", "000000").await,
        VerifyOutcome::RateLimited {
            retry_after_secs: 1200
        }
    );
    // The challenge path shares the same per-user limiter.
    let c = challenge(&svc, "alice").await;
    assert!(matches!(
        login(&svc, &c, &code_at(&secret, s0 + 640)).await,
        VerifyOutcome::RateLimited { .. }
    ));
    assert!(events.count("rate_limited") >= 3);
}

#[tokio::test]
async fn backup_codes_share_the_users_budget_and_do_not_refill_it() {
    let (svc, _store, clock, _events) = service();
    let (secret, codes) = enrol(&svc, &clock, "bob").await;
    for i in 0..5 {
        let _ = svc
            .verify(Verify::new(
                "bob",
                SecondFactor::Typed(&wrong_code(&secret, T0, i)),
            ))
            .await
            .unwrap();
    }
    // The user's budget is locked for both factors: a backup code is not evaluated either.
    assert!(matches!(
        reauth(&svc, "bob", codes[0].as_str()).await,
        VerifyOutcome::RateLimited { .. }
    ));
    assert_eq!(svc.status("bob").await.unwrap().backup_codes_remaining, 8);
    clock.advance(600);
    let c = challenge(&svc, "bob").await;
    assert!(matches!(
        login(&svc, &c, codes[0].as_str()).await,
        VerifyOutcome::Success {
            user_id,
            method: Method::BackupCode { remaining: 7 },
            device_token: None,
            proof,
        } if user_id == "bob" && proof.user_id() == "bob" && !proof.is_established()
    ));
    // The backup code did not lift the failures: four TOTP failures and a backup-code guess reach
    // the second lockout.
    for i in 0..4 {
        assert_eq!(
            reauth(&svc, "bob", &wrong_code(&secret, T0 + 600, 50 + i)).await,
            VerifyOutcome::Rejected
        );
    }
    assert_eq!(
        reauth(&svc, "bob", "AAAAA-AAAAA").await,
        VerifyOutcome::Rejected
    );
    assert_eq!(
        reauth(&svc, "bob", codes[1].as_str()).await,
        VerifyOutcome::RateLimited {
            retry_after_secs: 1200
        }
    );
}

/// Drives an attacker who never stops against `verify` for one year of simulated time, trying
/// again the moment the limiter allows (or every `pace` seconds if slower), and returns the
/// guesses evaluated (counted by the cipher's decryptions) and the `Rejected` answers.
async fn attack_for_a_year(
    svc: &Svc<Instrumented>,
    cipher: &Instrumented,
    clock: &ManualClock,
    secret: &twofactor::Secret,
    pace: Option<u64>,
) -> (u64, u64) {
    let start = clock.now_secs();
    let before = cipher.decrypts.load(Ordering::SeqCst);
    let mut rejected = 0u64;
    let mut n = 0u32;
    while clock.now_secs() < start + YEAR_SECS {
        n = n.wrapping_add(1);
        let guess = wrong_code(secret, clock.now_secs(), n.wrapping_mul(7919));
        match svc
            .verify(Verify::new("victim", SecondFactor::Typed(&guess)))
            .await
            .unwrap()
        {
            VerifyOutcome::Rejected => {
                rejected += 1;
                if let Some(p) = pace {
                    clock.advance(p);
                }
            }
            VerifyOutcome::RateLimited { retry_after_secs } => {
                assert!(retry_after_secs >= 1);
                // Stop at the end of the year rather than jumping past it.
                let left = start + YEAR_SECS - clock.now_secs();
                let wait = pace.map_or(retry_after_secs, |p| p.min(retry_after_secs));
                clock.advance(wait.min(left));
            }
            VerifyOutcome::Success { .. } => panic!("a wrong code logged in"),
            other => panic!("unexpected {other:?}"),
        }
    }
    let evaluated = cipher.decrypts.load(Ordering::SeqCst) - before;
    (evaluated, rejected)
}

#[tokio::test]
async fn a_year_of_attacks_gets_at_most_100_guesses_and_the_owner_still_gets_in() {
    let cipher = Instrumented::new();
    // The owner stays away all year: a device token that outlives the year (the default 90 days
    // is renewed by use; see service_adversary.rs for an owner who logs in daily).
    let mut config = config();
    config.device_ttl_secs = 400 * 86_400;
    let (svc, clock, events) = service_with(MemoryStore::new(), cipher.clone(), config);
    let (secret, codes) = enrol(&svc, &clock, "victim").await;
    // The owner logged in from their browser once: it holds a device token.
    clock.advance(30);
    let device = log_in_keeping_device(&svc, "victim", &code_at(&secret, T0 + 30)).await;
    events.clear();

    let (evaluated, rejected) = attack_for_a_year(&svc, &cipher, &clock, &secret, None).await;
    println!("fast attacker: {evaluated} guesses evaluated in a year ({rejected} rejected)");
    assert_eq!(evaluated, rejected);
    assert!(evaluated <= 100, "{evaluated} guesses in a year");
    assert!(evaluated <= RateLimitPolicy::totp_default().max_guesses_per_year());
    assert!(
        evaluated >= 70,
        "the attacker was at full rate: {evaluated}"
    );
    assert!(events.count("locked_out") >= 16);

    // A year later the user's budget is locked for TOTP and backup codes alike ...
    let now = clock.now_secs();
    clock.advance(30);
    assert!(matches!(
        reauth(&svc, "victim", &code_at(&secret, now + 30)).await,
        VerifyOutcome::RateLimited { .. }
    ));
    let c = challenge(&svc, "victim").await;
    assert!(matches!(
        login(&svc, &c, codes[0].as_str()).await,
        VerifyOutcome::RateLimited { .. }
    ));
    // ... but the owner's browser has its own budget, which the attacker never touched (past
    // half its life, the token is renewed).
    let outcome = svc
        .complete_login(
            CompleteLogin::new(&c, SecondFactor::Typed(&code_at(&secret, now + 30)))
                .device(Some(device.as_str()))
                .remember(Remember::Device),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            VerifyOutcome::Success {
                device_token: Some(_),
                ..
            }
        ),
        "{outcome:?}"
    );
    let status = svc.status("victim").await.unwrap();
    assert_eq!(status.failures_since_login, 0, "the login reset the notice");
    assert_eq!(status.last_login_at, Some(now + 30));
    assert!(
        status.locked_until.is_some(),
        "the attacker's lockout stays"
    );
}

#[tokio::test]
async fn a_slow_attacker_escalates_too() {
    // Two guesses per window never fill it; consecutive failures still lock.
    let cipher = Instrumented::new();
    let (svc, clock, _events) = service_with(MemoryStore::new(), cipher.clone(), config());
    let (secret, _) = enrol(&svc, &clock, "victim").await;
    let (evaluated, _) = attack_for_a_year(&svc, &cipher, &clock, &secret, Some(300)).await;
    println!("slow attacker: {evaluated} guesses evaluated in a year");
    assert!(evaluated <= 100, "{evaluated} guesses in a year");
    assert!(evaluated >= 60, "the attacker was active: {evaluated}");
}

#[test]
fn a_fixed_window_alone_allows_262800_guesses_a_year() {
    assert_eq!(
        RateLimitPolicy::fixed_window().max_guesses_per_year(),
        262_800 + 12
    );
    // 1 - (1 - 3e-6)^262800 ≈ 0.545: more likely than not to get in.
    let p = 1.0 - (1.0 - 3e-6f64).powi(262_800);
    assert!((0.54..0.56).contains(&p), "{p}");
    let q = 1.0 - (1.0 - 3e-6f64).powi(92);
    assert!(q <= 3e-4, "{q}");
}

// ------------------------------------------------------------------------------------------
// Races
// ------------------------------------------------------------------------------------------

type ArcSvc = Arc<Svc<Keyring>>;

async fn race<F, Fut>(n: usize, f: F) -> Vec<VerifyOutcome>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = VerifyOutcome> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut handles = Vec::new();
    for _ in 0..n {
        let b = barrier.clone();
        let fut = f();
        handles.push(tokio::spawn(async move {
            b.wait().await;
            fut.await
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_logins_with_one_code_let_exactly_one_in() {
    for round in 0..20u64 {
        let (svc, _store, clock, _events) = service();
        let (secret, codes) = enrol(&svc, &clock, "alice").await;
        clock.advance(30);
        let svc: ArcSvc = Arc::new(svc);
        let c = challenge(&svc, "alice").await;
        let code = code_at(&secret, T0 + 30);
        let outcomes = race(32, || {
            let (svc, c, code) = (svc.clone(), c.clone(), code.clone());
            async move { login(&svc, &c, &code).await }
        })
        .await;
        let wins = outcomes.iter().filter(|o| o.is_success()).count();
        assert_eq!(wins, 1, "round {round}: {outcomes:?}");

        // The same backup code, 32 times at once (fresh challenges each).
        let code = codes[0].as_str().to_owned();
        let outcomes = race(32, || {
            let (svc, code) = (svc.clone(), code.clone());
            async move { reauth(&svc, "alice", &code).await }
        })
        .await;
        let wins = outcomes.iter().filter(|o| o.is_success()).count();
        assert_eq!(wins, 1, "round {round}: {outcomes:?}");
        assert_eq!(svc.status("alice").await.unwrap().backup_codes_remaining, 7);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_cannot_exceed_the_budget() {
    let cipher = Instrumented::new();
    let (svc, clock, _events) = service_with(MemoryStore::new(), cipher.clone(), config());
    let (secret, _) = enrol(&svc, &clock, "alice").await;
    let svc = Arc::new(svc);
    let before = cipher.decrypts.load(Ordering::SeqCst);
    let n = std::sync::atomic::AtomicU32::new(0);
    let guesses: Vec<String> = (0..64)
        .map(|_| wrong_code(&secret, T0, n.fetch_add(13, Ordering::SeqCst)))
        .collect();
    let guesses = Arc::new(Mutex::new(guesses));
    let outcomes = race(64, || {
        let (svc, guesses) = (svc.clone(), guesses.clone());
        let g = guesses.lock().unwrap().pop().unwrap();
        async move { reauth(&svc, "alice", &g).await }
    })
    .await;
    let evaluated = cipher.decrypts.load(Ordering::SeqCst) - before;
    let rejected = outcomes
        .iter()
        .filter(|o| **o == VerifyOutcome::Rejected)
        .count();
    assert_eq!(evaluated, 5);
    assert_eq!(rejected, 5);
}

// ------------------------------------------------------------------------------------------
// Fail closed
// ------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("store is down")
    }
}

impl std::error::Error for Down {}

/// A `MemoryStore` whose named operations fail on demand.
#[derive(Clone, Default)]
struct Flaky {
    inner: MemoryStore,
    failing: Arc<Mutex<HashSet<&'static str>>>,
}

impl Flaky {
    fn fail(&self, op: &'static str) {
        self.failing.lock().unwrap().insert(op);
    }
    fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }
    fn check(&self, op: &'static str) -> Result<(), Down> {
        if self.failing.lock().unwrap().contains(op) {
            Err(Down)
        } else {
            Ok(())
        }
    }
}

fn ok<T>(r: Result<T, std::convert::Infallible>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => match e {},
    }
}

impl CredentialStore for Flaky {
    type Error = Down;
    async fn get_credentials(&self, u: &str) -> Result<Vec<CredentialRecord>, Down> {
        self.check("get_credentials")?;
        Ok(ok(self.inner.get_credentials(u).await))
    }
    async fn put_pending(&self, u: &str, r: &CredentialRecord, o: bool) -> Result<bool, Down> {
        self.check("put_pending")?;
        Ok(ok(self.inner.put_pending(u, r, o).await))
    }
    async fn activate(
        &self,
        u: &str,
        s: &[u8],
        step: u64,
        drift: i64,
        codes: Option<&[BackupCodeHash]>,
        max: u32,
    ) -> Result<bool, Down> {
        self.check("activate")?;
        Ok(ok(self.inner.activate(u, s, step, drift, codes, max).await))
    }
    async fn advance_step(
        &self,
        u: &str,
        id: &str,
        s: &[u8],
        step: u64,
        drift: i64,
        now: u64,
    ) -> Result<bool, Down> {
        self.check("advance_step")?;
        Ok(ok(self
            .inner
            .advance_step(u, id, s, step, drift, now)
            .await))
    }
    async fn rewrite_secret(&self, u: &str, id: &str, o: &[u8], n: &[u8]) -> Result<bool, Down> {
        self.check("rewrite_secret")?;
        Ok(ok(self.inner.rewrite_secret(u, id, o, n).await))
    }
    async fn rename_credential(&self, u: &str, id: &str, n: &str) -> Result<bool, Down> {
        self.check("rename_credential")?;
        Ok(ok(self.inner.rename_credential(u, id, n).await))
    }
    async fn remove_credential(
        &self,
        u: &str,
        id: &str,
    ) -> Result<twofactor::store::RemoveCredential, Down> {
        self.check("remove_credential")?;
        Ok(ok(self.inner.remove_credential(u, id).await))
    }
    async fn delete_credentials(&self, u: &str) -> Result<bool, Down> {
        self.check("delete_credentials")?;
        Ok(ok(self.inner.delete_credentials(u).await))
    }
    async fn consume_backup_code(&self, u: &str, h: &BackupCodeHash) -> Result<Option<u32>, Down> {
        self.check("consume_backup_code")?;
        Ok(ok(self.inner.consume_backup_code(u, h).await))
    }
    async fn replace_backup_codes(&self, u: &str, h: &[BackupCodeHash]) -> Result<bool, Down> {
        self.check("replace_backup_codes")?;
        Ok(ok(self.inner.replace_backup_codes(u, h).await))
    }
    async fn backup_codes_remaining(&self, u: &str) -> Result<u32, Down> {
        self.check("backup_codes_remaining")?;
        Ok(ok(self.inner.backup_codes_remaining(u).await))
    }
    async fn put_recovery(&self, u: &str, r: &RecoveryRecord) -> Result<(), Down> {
        self.check("put_recovery")?;
        ok(self.inner.put_recovery(u, r).await);
        Ok(())
    }
    async fn get_recovery(&self, u: &str) -> Result<Option<RecoveryRecord>, Down> {
        self.check("get_recovery")?;
        Ok(ok(self.inner.get_recovery(u).await))
    }
    async fn approve_recovery(&self, u: &str) -> Result<bool, Down> {
        self.check("approve_recovery")?;
        Ok(ok(self.inner.approve_recovery(u).await))
    }
    async fn cancel_recovery(&self, u: &str, a: bool) -> Result<bool, Down> {
        self.check("cancel_recovery")?;
        Ok(ok(self.inner.cancel_recovery(u, a).await))
    }
    async fn put_change(&self, u: &str, r: &ScheduledChangeRecord) -> Result<bool, Down> {
        self.check("put_change")?;
        Ok(ok(self.inner.put_change(u, r).await))
    }
    async fn list_changes(&self, u: &str) -> Result<Vec<ScheduledChangeRecord>, Down> {
        self.check("list_changes")?;
        Ok(ok(self.inner.list_changes(u).await))
    }
    async fn take_change(
        &self,
        u: &str,
        id: &str,
        due: u64,
    ) -> Result<Option<ScheduledChangeRecord>, Down> {
        self.check("take_change")?;
        Ok(ok(self.inner.take_change(u, id, due).await))
    }
    async fn delete_changes(&self, u: &str) -> Result<u64, Down> {
        self.check("delete_changes")?;
        Ok(ok(self.inner.delete_changes(u).await))
    }
    async fn put_notice(&self, h: &TokenHash, u: &str, e: u64) -> Result<(), Down> {
        self.check("put_notice")?;
        ok(self.inner.put_notice(h, u, e).await);
        Ok(())
    }
    async fn take_notice(&self, u: &str, h: &TokenHash, now: u64) -> Result<bool, Down> {
        self.check("take_notice")?;
        Ok(ok(self.inner.take_notice(u, h, now).await))
    }
    async fn cancel_recovery_with_token(&self, u: &str, h: &TokenHash) -> Result<bool, Down> {
        self.check("cancel_recovery_with_token")?;
        Ok(ok(self.inner.cancel_recovery_with_token(u, h).await))
    }
    async fn complete_recovery(&self, u: &str, now: u64, approval: bool) -> Result<bool, Down> {
        self.check("complete_recovery")?;
        Ok(ok(self.inner.complete_recovery(u, now, approval).await))
    }
    async fn put_device(&self, h: &TokenHash, r: &DeviceRecord) -> Result<(), Down> {
        self.check("put_device")?;
        ok(self.inner.put_device(h, r).await);
        Ok(())
    }
    async fn use_device(&self, h: &TokenHash, now: u64) -> Result<Option<DeviceRecord>, Down> {
        self.check("use_device")?;
        Ok(ok(self.inner.use_device(h, now).await))
    }
    async fn list_devices(
        &self,
        u: &str,
        now: u64,
    ) -> Result<Vec<(TokenHash, DeviceRecord)>, Down> {
        self.check("list_devices")?;
        Ok(ok(self.inner.list_devices(u, now).await))
    }
    async fn delete_device(&self, h: &TokenHash) -> Result<bool, Down> {
        self.check("delete_device")?;
        Ok(ok(self.inner.delete_device(h).await))
    }
    async fn delete_devices(&self, u: &str) -> Result<u64, Down> {
        self.check("delete_devices")?;
        Ok(ok(self.inner.delete_devices(u).await))
    }
    async fn delete_user(&self, u: &str) -> Result<twofactor::store::DeletedCredentials, Down> {
        self.check("delete_user")?;
        Ok(ok(self.inner.delete_user(u).await))
    }
}

impl EphemeralStore for Flaky {
    type Error = Down;
    async fn put_challenge(&self, h: &ChallengeHash, r: &ChallengeRecord) -> Result<(), Down> {
        self.check("put_challenge")?;
        ok(self.inner.put_challenge(h, r).await);
        Ok(())
    }
    async fn get_challenge(
        &self,
        h: &ChallengeHash,
        now: u64,
    ) -> Result<Option<ChallengeRecord>, Down> {
        self.check("get_challenge")?;
        Ok(ok(self.inner.get_challenge(h, now).await))
    }
    async fn take_challenge(
        &self,
        h: &ChallengeHash,
        now: u64,
    ) -> Result<Option<ChallengeRecord>, Down> {
        self.check("take_challenge")?;
        Ok(ok(self.inner.take_challenge(h, now).await))
    }
    async fn update_limiter<F>(
        &self,
        key: &str,
        expire_at: u64,
        update: F,
    ) -> Result<LimiterUpdate, Down>
    where
        F: Fn(LimiterState) -> LimiterState + Send + Sync,
    {
        self.check("update_limiter")?;
        Ok(ok(self.inner.update_limiter(key, expire_at, update).await))
    }
    async fn get_limiter(&self, key: &str) -> Result<LimiterState, Down> {
        self.check("get_limiter")?;
        Ok(ok(self.inner.get_limiter(key).await))
    }
    async fn delete_user_state(&self, u: &str, keys: &[String]) -> Result<u64, Down> {
        self.check("delete_user_state")?;
        Ok(ok(self.inner.delete_user_state(u, keys).await))
    }
}

#[tokio::test]
async fn infrastructure_failures_fail_closed_and_consume_nothing() {
    let store = Flaky::default();
    let cipher = Instrumented::new();
    let clock = ManualClock::new(T0);
    let svc = TwoFactor::new(
        store.clone(),
        store.clone(),
        cipher.clone(),
        BackupCodeKey::from_bytes([3u8; 32]),
        config(),
    )
    .unwrap()
    .with_clock(clock.clone());

    // Enrolment: a failing store or cipher leaves nothing half-done.
    store.fail("put_pending");
    assert!(svc.start_enrolment("alice", "alice").await.is_err());
    store.heal();
    let EnrolmentStart::Started(e) = svc.start_enrolment("alice", "alice").await.unwrap() else {
        panic!()
    };
    let secret = e.secret().clone();
    store.fail("activate");
    assert!(
        svc.confirm_enrolment("alice", &code_at(&secret, T0))
            .await
            .is_err()
    );
    assert!(!svc.status("alice").await.unwrap().enabled);
    store.heal();
    let ConfirmOutcome::Confirmed { backup_codes } = svc
        .confirm_enrolment("alice", &code_at(&secret, T0))
        .await
        .unwrap()
    else {
        panic!()
    };

    clock.advance(30);
    let code = code_at(&secret, T0 + 30);
    // Each failure point on the TOTP path before the step is consumed: an error, and the code
    // still works afterwards.
    for op in ["update_limiter", "get_credentials", "advance_step"] {
        store.fail(op);
        assert!(
            svc.verify(Verify::new("alice", SecondFactor::Typed(&code)))
                .await
                .is_err(),
            "{op}"
        );
        store.heal();
    }
    cipher.fail.store(true, Ordering::SeqCst);
    assert!(
        svc.verify(Verify::new("alice", SecondFactor::Typed(&code)))
            .await
            .is_err()
    );
    cipher.fail.store(false, Ordering::SeqCst);
    // An outage does not lock the owner out: errors give their limiter attempts back.
    store.fail("get_credentials");
    for _ in 0..10 {
        assert!(
            svc.verify(Verify::new("alice", SecondFactor::Typed(&code)))
                .await
                .is_err()
        );
    }
    store.heal();
    assert!(reauth(&svc, "alice", &code).await.is_success());
    // After the step is consumed, a failing recovery cancellation still lets nobody in (the
    // owner types the next code).
    clock.advance(30);
    let code = code_at(&secret, T0 + 60);
    store.fail("cancel_recovery");
    assert!(
        svc.verify(Verify::new("alice", SecondFactor::Typed(&code)))
            .await
            .is_err()
    );
    store.heal();
    assert_eq!(reauth(&svc, "alice", &code).await, VerifyOutcome::Rejected);

    // Backup codes: a failing consumption consumes nothing.
    store.fail("consume_backup_code");
    assert!(
        svc.verify(Verify::new(
            "alice",
            SecondFactor::Typed(backup_codes[0].as_str())
        ))
        .await
        .is_err()
    );
    store.heal();
    assert_eq!(svc.status("alice").await.unwrap().backup_codes_remaining, 8);
    assert!(
        reauth(&svc, "alice", backup_codes[0].as_str())
            .await
            .is_success()
    );

    // Challenges: a failing take lets nobody in and the challenge survives.
    let LoginStart::Required { challenge, .. } =
        svc.start_login(StartLogin::new("alice")).await.unwrap()
    else {
        panic!()
    };
    store.fail("take_challenge");
    assert!(
        svc.complete_login(CompleteLogin::new(
            challenge.as_str(),
            SecondFactor::Typed(backup_codes[1].as_str())
        ))
        .await
        .is_err()
    );
    store.heal();
    assert!(
        login(&svc, challenge.as_str(), backup_codes[2].as_str())
            .await
            .is_success()
    );
    // Unknown users fail closed too when the cipher is down (same work as a known user).
    cipher.fail.store(true, Ordering::SeqCst);
    assert!(
        svc.verify(Verify::new("nobody", SecondFactor::Typed("123456")))
            .await
            .is_err()
    );
}

// ------------------------------------------------------------------------------------------
// API shape
// ------------------------------------------------------------------------------------------

#[test]
fn futures_are_send_for_web_servers() {
    fn assert_send<T: Send>(_: T) {}
    let (svc, _store, _clock, _events) = service();
    assert_send(svc.start_enrolment("u", "a"));
    assert_send(svc.confirm_enrolment("u", "1"));
    assert_send(svc.start_login(StartLogin::new("u")));
    assert_send(svc.complete_login(CompleteLogin::new("c", SecondFactor::Typed("1"))));
    assert_send(svc.verify(Verify::new("u", SecondFactor::Typed("1"))));
    assert_send(svc.disable("u", "1"));
    assert_send(svc.regenerate_backup_codes("u", "1"));
    assert_send(svc.status("u"));
    assert_send(svc.request_recovery("u", None));
    assert_send(svc.complete_recovery("u"));
    assert_send(svc.admin_reset("u"));
    fn assert_sync<T: Send + Sync>(_: &T) {}
    assert_sync(&svc);
}
