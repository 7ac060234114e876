//! The adversary of `twofactor::rate_limit`: an attacker who knows the user id and the password,
//! sends requests at any rate and concurrency, while the owner keeps logging in and store writes
//! fail. Every test counts what the attacker really got: code evaluations, counted by the cipher's
//! decryptions during the attacker's own requests, never by asking the limiter.
//!
//! Each scenario runs on `MemoryStore` and, with the `sqlite` feature, on an in-memory SQLite
//! database through `SqliteStore`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "service_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use support::{Instrumented, T0, code_at, email_at, reauth, wrong_code};
use twofactor::audit::AuditEvent;
use twofactor::rate_limit::YEAR_SECS;
use twofactor::service::{
    CompleteLogin, Config, LoginStart, Remember, SecondFactor, StartLogin, Verify,
};
use twofactor::store::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    DeviceRecord, EphemeralStore, LimiterState, LimiterUpdate, RecoveryRecord,
    ScheduledChangeRecord, TokenHash,
};
use twofactor::{
    BackupCode, BackupCodeKey, Clock, ConfirmOutcome, EnrolmentStart, ManualClock, MemoryStore,
    RecoveryCompletion, RecoveryRequest, Secret, TwoFactor, VerifyOutcome,
};

// ------------------------------------------------------------------------------------------
// The instruments: a counting cipher, a store whose writes fail, a service over any store.
// ------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Injected;

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected store failure")
    }
}

impl std::error::Error for Injected {}

/// Wraps a store; every write (limiter update, step advance, code consumption, recovery
/// cancellation) fails with probability `rate` (a seeded sequence, so runs repeat), before it is
/// applied. `only_after_evaluation` restricts failures to the limiter writes that come after a
/// code was evaluated (giving an attempt back, recording a success) and to the step advance.
#[derive(Clone)]
struct Faulty<S> {
    inner: S,
    rate: f64,
    only_after_evaluation: bool,
    rng: Arc<std::sync::Mutex<u64>>,
    failed: Arc<AtomicU64>,
    /// Failures start once armed (after the enrolment).
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl<S> Faulty<S> {
    fn new(inner: S, rate: f64, only_after_evaluation: bool) -> Self {
        Self {
            inner,
            rate,
            only_after_evaluation,
            rng: Arc::new(std::sync::Mutex::new(0x9E37_79B9_7F4A_7C15)),
            failed: Arc::default(),
            armed: Arc::default(),
        }
    }

    fn roll(&self) -> Result<(), Injected> {
        if !self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut x = self.rng.lock().unwrap();
        // xorshift64*
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        let r = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        if r < self.rate {
            self.failed.fetch_add(1, Ordering::SeqCst);
            Err(Injected)
        } else {
            Ok(())
        }
    }
}

fn lift<T, E: std::error::Error>(r: Result<T, E>) -> Result<T, Injected> {
    r.map_err(|e| panic!("the wrapped store failed: {e}"))
}

impl<S: CredentialStore> CredentialStore for Faulty<S> {
    type Error = Injected;
    async fn get_credentials(&self, u: &str) -> Result<Vec<CredentialRecord>, Injected> {
        lift(self.inner.get_credentials(u).await)
    }
    async fn put_pending(&self, u: &str, r: &CredentialRecord, o: bool) -> Result<bool, Injected> {
        lift(self.inner.put_pending(u, r, o).await)
    }
    async fn activate(
        &self,
        u: &str,
        s: &[u8],
        step: u64,
        drift: i64,
        c: Option<&[BackupCodeHash]>,
        max: u32,
    ) -> Result<bool, Injected> {
        lift(self.inner.activate(u, s, step, drift, c, max).await)
    }
    async fn advance_step(
        &self,
        u: &str,
        id: &str,
        s: &[u8],
        step: u64,
        d: i64,
        now: u64,
    ) -> Result<bool, Injected> {
        self.roll()?;
        lift(self.inner.advance_step(u, id, s, step, d, now).await)
    }
    async fn rewrite_secret(
        &self,
        u: &str,
        id: &str,
        o: &[u8],
        n: &[u8],
    ) -> Result<bool, Injected> {
        lift(self.inner.rewrite_secret(u, id, o, n).await)
    }
    async fn rename_credential(&self, u: &str, id: &str, n: &str) -> Result<bool, Injected> {
        lift(self.inner.rename_credential(u, id, n).await)
    }
    async fn remove_credential(
        &self,
        u: &str,
        id: &str,
    ) -> Result<twofactor::store::RemoveCredential, Injected> {
        lift(self.inner.remove_credential(u, id).await)
    }
    async fn delete_credentials(&self, u: &str) -> Result<bool, Injected> {
        lift(self.inner.delete_credentials(u).await)
    }
    async fn consume_backup_code(
        &self,
        u: &str,
        h: &BackupCodeHash,
    ) -> Result<Option<u32>, Injected> {
        if !self.only_after_evaluation {
            self.roll()?;
        }
        lift(self.inner.consume_backup_code(u, h).await)
    }
    async fn replace_backup_codes(&self, u: &str, h: &[BackupCodeHash]) -> Result<bool, Injected> {
        lift(self.inner.replace_backup_codes(u, h).await)
    }
    async fn backup_codes_remaining(&self, u: &str) -> Result<u32, Injected> {
        lift(self.inner.backup_codes_remaining(u).await)
    }
    async fn put_recovery(&self, u: &str, r: &RecoveryRecord) -> Result<(), Injected> {
        lift(self.inner.put_recovery(u, r).await)
    }
    async fn get_recovery(&self, u: &str) -> Result<Option<RecoveryRecord>, Injected> {
        lift(self.inner.get_recovery(u).await)
    }
    async fn approve_recovery(&self, u: &str) -> Result<bool, Injected> {
        lift(self.inner.approve_recovery(u).await)
    }
    async fn cancel_recovery(&self, u: &str, a: bool) -> Result<bool, Injected> {
        self.roll()?;
        lift(self.inner.cancel_recovery(u, a).await)
    }
    async fn put_change(&self, u: &str, r: &ScheduledChangeRecord) -> Result<bool, Injected> {
        lift(self.inner.put_change(u, r).await)
    }
    async fn list_changes(&self, u: &str) -> Result<Vec<ScheduledChangeRecord>, Injected> {
        lift(self.inner.list_changes(u).await)
    }
    async fn take_change(
        &self,
        u: &str,
        id: &str,
        due: u64,
    ) -> Result<Option<ScheduledChangeRecord>, Injected> {
        lift(self.inner.take_change(u, id, due).await)
    }
    async fn delete_changes(&self, u: &str) -> Result<u64, Injected> {
        self.roll()?;
        lift(self.inner.delete_changes(u).await)
    }
    async fn put_notice(&self, h: &TokenHash, u: &str, e: u64) -> Result<(), Injected> {
        lift(self.inner.put_notice(h, u, e).await)
    }
    async fn take_notice(&self, u: &str, h: &TokenHash, now: u64) -> Result<bool, Injected> {
        lift(self.inner.take_notice(u, h, now).await)
    }
    async fn cancel_recovery_with_token(&self, u: &str, h: &TokenHash) -> Result<bool, Injected> {
        lift(self.inner.cancel_recovery_with_token(u, h).await)
    }
    async fn complete_recovery(&self, u: &str, now: u64, a: bool) -> Result<bool, Injected> {
        lift(self.inner.complete_recovery(u, now, a).await)
    }
    async fn put_device(&self, h: &TokenHash, r: &DeviceRecord) -> Result<(), Injected> {
        lift(self.inner.put_device(h, r).await)
    }
    async fn use_device(&self, h: &TokenHash, now: u64) -> Result<Option<DeviceRecord>, Injected> {
        lift(self.inner.use_device(h, now).await)
    }
    async fn list_devices(
        &self,
        u: &str,
        now: u64,
    ) -> Result<Vec<(TokenHash, DeviceRecord)>, Injected> {
        lift(self.inner.list_devices(u, now).await)
    }
    async fn delete_device(&self, h: &TokenHash) -> Result<bool, Injected> {
        lift(self.inner.delete_device(h).await)
    }
    async fn delete_devices(&self, u: &str) -> Result<u64, Injected> {
        lift(self.inner.delete_devices(u).await)
    }
    async fn delete_user(&self, u: &str) -> Result<twofactor::store::DeletedCredentials, Injected> {
        lift(self.inner.delete_user(u).await)
    }
}

impl<S: EphemeralStore> EphemeralStore for Faulty<S> {
    type Error = Injected;
    async fn put_challenge(&self, h: &ChallengeHash, r: &ChallengeRecord) -> Result<(), Injected> {
        lift(self.inner.put_challenge(h, r).await)
    }
    async fn get_challenge(
        &self,
        h: &ChallengeHash,
        now: u64,
    ) -> Result<Option<ChallengeRecord>, Injected> {
        lift(self.inner.get_challenge(h, now).await)
    }
    async fn take_challenge(
        &self,
        h: &ChallengeHash,
        now: u64,
    ) -> Result<Option<ChallengeRecord>, Injected> {
        lift(self.inner.take_challenge(h, now).await)
    }
    async fn update_limiter<F>(
        &self,
        key: &str,
        expire_at: u64,
        update: F,
    ) -> Result<LimiterUpdate, Injected>
    where
        F: Fn(LimiterState) -> LimiterState + Send + Sync,
    {
        let gives_back = {
            // Classify the write by what it would do to the current state: an acquisition
            // counts a failure or refuses, and never lowers the failures since the last success;
            // giving back or recording a success does.
            let current = lift(self.inner.get_limiter(key).await)?;
            let next = update(current);
            next.since_success < current.since_success
                || next.last_success_at != current.last_success_at
        };
        if !self.only_after_evaluation || gives_back {
            self.roll()?;
        }
        lift(self.inner.update_limiter(key, expire_at, update).await)
    }
    async fn get_limiter(&self, key: &str) -> Result<LimiterState, Injected> {
        lift(self.inner.get_limiter(key).await)
    }
    async fn delete_user_state(&self, u: &str, keys: &[String]) -> Result<u64, Injected> {
        lift(self.inner.delete_user_state(u, keys).await)
    }
}

/// Whatever serves as both stores.
trait Store: CredentialStore + EphemeralStore + Clone + 'static {}
impl<S: CredentialStore + EphemeralStore + Clone + 'static> Store for S {}

type Svc<S> = TwoFactor<S, S, Instrumented, ManualClock>;

struct World<S: Store> {
    svc: Arc<Svc<S>>,
    cipher: Instrumented,
    clock: ManualClock,
    secret: Secret,
    backup_codes: Vec<BackupCode>,
    events: Arc<std::sync::Mutex<Vec<AuditEvent>>>,
    /// The device token of the owner's browser, from a login right after the enrolment (the
    /// browser keeps the newest one it was given).
    device: std::sync::Mutex<String>,
    /// Store failures are injected (the owner may be refused then).
    faulty: bool,
}

const USER: &str = "victim";

async fn world<S: Store>(store: S) -> World<S> {
    let cipher = Instrumented::new();
    let clock = ManualClock::new(T0);
    let events: Arc<std::sync::Mutex<Vec<AuditEvent>>> = Arc::default();
    let sink = events.clone();
    let svc = TwoFactor::new(
        store.clone(),
        store,
        cipher.clone(),
        BackupCodeKey::from_bytes([3u8; 32]),
        Config::new("Example"),
    )
    .unwrap()
    .with_clock(clock.clone())
    .with_audit_sink(Arc::new(move |_: u64, e: &AuditEvent| {
        sink.lock().unwrap().push(e.clone());
    }));
    let EnrolmentStart::Started(e) = svc
        .start_enrolment(USER, "victim@example.com")
        .await
        .unwrap()
    else {
        panic!()
    };
    let secret = e.secret().clone();
    let ConfirmOutcome::Confirmed { backup_codes } = svc
        .confirm_enrolment(USER, &code_at(&secret, T0))
        .await
        .unwrap()
    else {
        panic!()
    };
    clock.advance(30);
    let LoginStart::Required { challenge, .. } =
        svc.start_login(StartLogin::new(USER)).await.unwrap()
    else {
        panic!()
    };
    let VerifyOutcome::Success {
        device_token: Some(device),
        ..
    } = svc
        .complete_login(
            CompleteLogin::new(
                challenge.as_str(),
                SecondFactor::Typed(&code_at(&secret, T0 + 30)),
            )
            .remember(Remember::Device),
        )
        .await
        .unwrap()
    else {
        panic!("no device token")
    };
    World {
        svc: Arc::new(svc),
        cipher,
        clock,
        secret,
        backup_codes,
        events,
        device: std::sync::Mutex::new(device.as_str().to_owned()),
        faulty: false,
    }
}

impl<S: Store> World<S> {
    fn now(&self) -> u64 {
        self.clock.now()
    }

    fn count(&self, kind: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind() == kind)
            .count()
    }

    /// The owner's login from a browser (with or without a device token): password, then a
    /// fresh TOTP code, or a backup code. Returns the outcome (`None`: the store failed).
    async fn owner_login(
        &self,
        backup: Option<&str>,
        device: Option<&str>,
    ) -> Option<VerifyOutcome> {
        let LoginStart::Required { challenge, .. } =
            self.svc.start_login(StartLogin::new(USER)).await.ok()?
        else {
            panic!("2FA is on")
        };
        let code = match backup {
            Some(b) => b.to_owned(),
            None => code_at(&self.secret, self.now()),
        };
        let outcome = self
            .svc
            .complete_login(
                CompleteLogin::new(challenge.as_str(), SecondFactor::Typed(&code))
                    .device(device)
                    .remember(Remember::Device),
            )
            .await
            .ok();
        if let Some(VerifyOutcome::Success {
            device_token: Some(new),
            ..
        }) = &outcome
            && device.is_some()
        {
            *self.device.lock().unwrap() = new.as_str().to_owned();
        }
        outcome
    }

    fn device(&self) -> String {
        self.device.lock().unwrap().clone()
    }
}

/// How the owner behaves during the attack.
#[derive(Clone, Copy, Debug)]
enum Owner {
    Absent,
    /// A TOTP login every this many seconds, from a new browser (the user's budget).
    Totp(u64),
    /// A backup-code login every this many seconds (while codes last), TOTP otherwise.
    BackupCodes(u64),
    /// A TOTP login every this many seconds from the browser that holds a device token; it must
    /// get in every time.
    Device(u64),
}

/// One year: the attacker tries whenever the limiter allows (`burst` concurrent requests at a
/// time), the owner logs in on schedule. Returns the attacker's code evaluations.
async fn year_of_attack<S: Store>(w: &World<S>, owner: Owner, burst: usize) -> u64 {
    let start = w.now();
    let end = start + YEAR_SECS;
    let mut evaluated = 0u64;
    let mut next_owner = start + 3600;
    let mut codes_used = 0usize;
    let mut n = 0u32;
    while w.now() < end {
        let now = w.now();
        if now >= next_owner {
            match owner {
                Owner::Absent => next_owner = u64::MAX,
                Owner::Totp(every) => {
                    let _ = w.owner_login(None, None).await;
                    next_owner += every;
                }
                Owner::Device(every) => {
                    let outcome = w.owner_login(None, Some(&w.device())).await;
                    if !w.faulty {
                        assert!(
                            outcome.as_ref().is_some_and(VerifyOutcome::is_success),
                            "the owner's browser was refused: {outcome:?}"
                        );
                    }
                    next_owner += every;
                }
                Owner::BackupCodes(every) => {
                    let code = w
                        .backup_codes
                        .get(codes_used)
                        .map(|c| c.as_str().to_owned());
                    let outcome = w.owner_login(code.as_deref(), None).await;
                    if code.is_some() && outcome.as_ref().is_some_and(VerifyOutcome::is_success) {
                        codes_used += 1;
                    }
                    next_owner += every;
                }
            }
        }
        // The attacker: `burst` guesses at once, each counted by the cipher.
        let before = w.cipher.count();
        let mut tasks = Vec::with_capacity(burst);
        for _ in 0..burst {
            n = n.wrapping_add(1);
            let guess = wrong_code(&w.secret, now, n.wrapping_mul(7919));
            let svc = w.svc.clone();
            tasks.push(tokio::spawn(async move {
                svc.verify(Verify::new(USER, SecondFactor::Typed(&guess)))
                    .await
            }));
        }
        let mut retry = None;
        for t in tasks {
            match t.await.unwrap() {
                Ok(VerifyOutcome::RateLimited { retry_after_secs }) => {
                    retry = Some(retry.map_or(retry_after_secs, |r: u64| r.min(retry_after_secs)));
                }
                Ok(VerifyOutcome::Success { .. }) => panic!("a wrong code logged in"),
                Ok(_) | Err(_) => {}
            }
        }
        evaluated += w.cipher.count() - before;
        // Wait as the limiter says, but wake for the owner's next login.
        let wait = retry.unwrap_or(1).max(1);
        let wake = (now + wait).min(next_owner).min(end).max(now + 1);
        w.clock.set(wake);
    }
    evaluated
}

async fn check_year<S: Store>(store: S, owner: Owner, burst: usize, label: &str) {
    let w = world(store).await;
    let evaluated = year_of_attack(&w, owner, burst).await;
    println!("{label}: owner {owner:?}, bursts of {burst}: {evaluated} codes evaluated in a year");
    assert!(
        evaluated <= 100,
        "{label}: {evaluated} codes evaluated in a year"
    );
    assert!(
        evaluated >= 50,
        "{label}: the attacker was active: {evaluated}"
    );
}

/// Every scenario of the adversary model, on one kind of store.
async fn all_scenarios<S: Store>(make: impl Fn() -> S, label: &str) {
    check_year(make(), Owner::Absent, 1, label).await;
    check_year(make(), Owner::Totp(86_400), 1, label).await;
    check_year(make(), Owner::Totp(3600), 1, label).await;
    check_year(make(), Owner::BackupCodes(7 * 86_400), 1, label).await;
    check_year(make(), Owner::Device(3600), 1, label).await;
    check_year(make(), Owner::Totp(86_400), 64, label).await;
    for (rate, after) in [(0.1, false), (1.0, true), (0.1, true)] {
        let name = format!("{label}, writes failing {rate} (only after evaluation: {after})");
        check_faulty(Faulty::new(make(), rate, after), &name).await;
    }
}

async fn check_faulty<S: Store>(store: Faulty<S>, label: &str) {
    let failed = store.failed.clone();
    let armed = store.armed.clone();
    let mut w = world(store).await;
    w.faulty = true;
    armed.store(true, Ordering::SeqCst);
    let evaluated = year_of_attack(&w, Owner::Device(86_400), 1).await;
    let injected = failed.load(Ordering::SeqCst);
    println!("{label}: {evaluated} codes evaluated in a year, {injected} writes failed");
    assert!(injected > 0, "{label}: no failure was injected");
    assert!(
        evaluated <= 100,
        "{label}: {evaluated} codes evaluated in a year"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_under_the_adversary_model_on_memory() {
    all_scenarios(MemoryStore::new, "memory").await;
}

#[cfg(feature = "sqlite")]
async fn sqlite_store() -> twofactor::store::SqliteStore {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    twofactor::store::sqlite::migrate(&pool).await.unwrap();
    twofactor::store::SqliteStore::new(pool)
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_under_the_adversary_model_on_sqlite() {
    // One database per scenario: build them first, then hand them out.
    let mut stores = Vec::new();
    for _ in 0..9 {
        stores.push(sqlite_store().await);
    }
    let stores = std::sync::Mutex::new(stores);
    all_scenarios(|| stores.lock().unwrap().pop().unwrap(), "sqlite").await;
}

// ------------------------------------------------------------------------------------------
// The owner keeps a way in, and learns.
// ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_on_a_known_device_gets_in_every_day_of_a_year_of_attack() {
    let w = world(MemoryStore::new()).await;
    let end = w.now() + YEAR_SECS;
    let mut day_start = w.now();
    let mut evaluated = 0;
    let mut days = 0;
    let mut n = 0u32;
    while w.now() < end {
        // The attacker at full rate until the next day.
        while w.now() < day_start + 86_400 {
            n += 1;
            let before = w.cipher.count();
            let guess = wrong_code(&w.secret, w.now(), n * 7919);
            let outcome = w
                .svc
                .verify(Verify::new(USER, SecondFactor::Typed(&guess)))
                .await
                .unwrap();
            evaluated += w.cipher.count() - before;
            let wait = match outcome {
                VerifyOutcome::RateLimited { retry_after_secs } => retry_after_secs,
                _ => 1,
            };
            w.clock.set((w.now() + wait).min(day_start + 86_400));
        }
        day_start = w.now();
        // The owner, on their browser: in at the first try, within 10 minutes for sure.
        let tried_at = w.now();
        let mut outcome = w.owner_login(None, Some(&w.device())).await.unwrap();
        while !outcome.is_success() && w.now() < tried_at + 600 {
            w.clock.advance(30);
            outcome = w.owner_login(None, Some(&w.device())).await.unwrap();
        }
        assert!(outcome.is_success(), "day {days}: {outcome:?}");
        days += 1;
    }
    assert!(days >= 364);
    assert!(evaluated <= 100, "{evaluated}");
    println!("known device: in every one of {days} days; attacker evaluated {evaluated}");
}

#[tokio::test]
async fn the_owner_is_told_of_failures_since_the_last_login() {
    let w = world(MemoryStore::new()).await;
    w.clock.advance(30);
    for i in 0..3 {
        let g = wrong_code(&w.secret, w.now(), 11 * i);
        assert_eq!(
            w.svc
                .verify(Verify::new(USER, SecondFactor::Typed(&g)))
                .await
                .unwrap(),
            VerifyOutcome::Rejected
        );
    }
    let status = w.svc.status(USER).await.unwrap();
    assert_eq!(status.failures_since_login, 3);
    let failed: Vec<u32> = w
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            AuditEvent::SecondFactorFailed {
                failures_since_login,
                ..
            } => Some(*failures_since_login),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [1, 2, 3]);
    w.clock.advance(30);
    assert!(w.owner_login(None, None).await.unwrap().is_success());
    let status = w.svc.status(USER).await.unwrap();
    assert_eq!(status.failures_since_login, 0);
    assert_eq!(status.last_login_at, Some(w.now()));
}

#[tokio::test]
async fn a_password_change_ends_the_lockout_and_the_recovery_request_only_with_a_fresh_factor() {
    let w = world(MemoryStore::new()).await;
    // The owner's password form asked for a code: the proof of it.
    w.clock.advance(30);
    let VerifyOutcome::Success { proof, .. } = w
        .svc
        .verify(Verify::new(
            USER,
            SecondFactor::Typed(&code_at(&w.secret, w.now())),
        ))
        .await
        .unwrap()
    else {
        panic!("the owner's code")
    };
    w.clock.advance(1);
    for i in 0..5 {
        let g = wrong_code(&w.secret, w.now(), 13 * i);
        let _ = w
            .svc
            .verify(Verify::new(USER, SecondFactor::Typed(&g)))
            .await
            .unwrap();
    }
    let _ = w.svc.request_recovery(USER, None).await.unwrap();
    assert!(w.svc.status(USER).await.unwrap().locked_until.is_some());
    // Without proof (the password alone changed it): the lock and the request stay.
    w.svc.password_changed(USER, None).await.unwrap();
    let status = w.svc.status(USER).await.unwrap();
    assert!(status.locked_until.is_some() && status.recovery.is_some());
    // Another user's proof does not count either.
    let other = w
        .svc
        .verify(Verify::new("someone-else", SecondFactor::Typed("123456")))
        .await
        .unwrap();
    assert!(!other.is_success());
    w.svc.password_changed(USER, Some(&proof)).await.unwrap();
    let status = w.svc.status(USER).await.unwrap();
    assert!(status.locked_until.is_none() && status.recovery.is_none());
    w.clock.advance(30);
    assert!(w.owner_login(None, None).await.unwrap().is_success());
    // A stale proof (older than a challenge) refills nothing.
    for i in 0..5 {
        let g = wrong_code(&w.secret, w.now(), 17 * i);
        let _ = w
            .svc
            .verify(Verify::new(USER, SecondFactor::Typed(&g)))
            .await
            .unwrap();
    }
    w.clock.advance(301);
    w.svc.password_changed(USER, Some(&proof)).await.unwrap();
    assert!(w.svc.status(USER).await.unwrap().failures_since_login >= 5);
}

// ------------------------------------------------------------------------------------------
// Recovery cannot be taken with the password alone.
// ------------------------------------------------------------------------------------------

/// The takeover of the issue: lock TOTP for more than 72 hours, keep the user's budget locked,
/// request recovery, wait. The owner meanwhile tries TOTP and backup codes from a new device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_takeover_ends_with_recovery_refused() {
    let w = world(MemoryStore::new()).await;
    // Phase 1: guess until a lockout is longer than 72 hours.
    let mut n = 0u32;
    loop {
        n += 1;
        let g = wrong_code(&w.secret, w.now(), n * 31);
        match w
            .svc
            .verify(Verify::new(USER, SecondFactor::Typed(&g)))
            .await
            .unwrap()
        {
            VerifyOutcome::RateLimited { retry_after_secs } if retry_after_secs > 72 * 3600 => {
                break;
            }
            VerifyOutcome::RateLimited { retry_after_secs } => w.clock.advance(retry_after_secs),
            _ => w.clock.advance(1),
        }
    }
    println!(
        "locked for more than 72 h after {n} requests, {} s",
        w.now() - T0
    );
    // Phase 2: request recovery, then keep hammering while waiting; the owner tries hourly.
    let RecoveryRequest::Requested {
        needs_approval,
        cancel_token,
        ..
    } = w
        .svc
        .request_recovery(USER, email_at(w.now()))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(
        needs_approval,
        "requested while locked, even with a verified e-mail"
    );
    let requested = w.now();
    let mut owner_in = 0;
    let mut backup = 0;
    while w.now() < requested + 72 * 3600 + 60 {
        let g = wrong_code(&w.secret, w.now(), n * 31);
        n += 1;
        let _ = w
            .svc
            .verify(Verify::new(USER, SecondFactor::Typed(&g)))
            .await
            .unwrap();
        let _ = w
            .svc
            .verify(Verify::new(USER, SecondFactor::Typed("AAAAA-BBBBB")))
            .await
            .unwrap();
        let code = w.backup_codes[backup % 8].as_str().to_owned();
        backup += 1;
        if w.owner_login(None, None).await.unwrap().is_success() {
            owner_in += 1;
        }
        if w.owner_login(Some(&code), None).await.unwrap().is_success() {
            owner_in += 1;
        }
        w.clock.advance(3600);
    }
    assert_eq!(owner_in, 0, "a new device shares the locked budget");
    // The attacker's completion: refused, however long they wait.
    assert_eq!(
        w.svc.complete_recovery(USER).await.unwrap(),
        RecoveryCompletion::AwaitingApproval
    );
    // Waiting longer changes nothing (within the notice token's 30 days, used below).
    w.clock.advance(25 * 86_400);
    assert_eq!(
        w.svc.complete_recovery(USER).await.unwrap(),
        RecoveryCompletion::AwaitingApproval
    );
    assert!(w.svc.status(USER).await.unwrap().enabled);
    assert!(
        w.svc
            .status(USER)
            .await
            .unwrap()
            .recovery
            .unwrap()
            .needs_approval
    );
    // The owner's cancel token (sent out of band) works once.
    assert!(
        w.svc
            .cancel_recovery_with_token(USER, cancel_token.as_str())
            .await
            .unwrap()
    );
    assert!(
        !w.svc
            .cancel_recovery_with_token(USER, cancel_token.as_str())
            .await
            .unwrap()
    );
    assert_eq!(
        w.svc.complete_recovery(USER).await.unwrap(),
        RecoveryCompletion::NoRequest
    );
}

#[tokio::test]
async fn failures_while_a_clean_request_waits_make_it_need_approval() {
    let w = world(MemoryStore::new()).await;
    let RecoveryRequest::Requested { needs_approval, .. } = w
        .svc
        .request_recovery(USER, email_at(w.now()))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(!needs_approval);
    w.clock.advance(3600);
    let g = wrong_code(&w.secret, w.now(), 5);
    assert_eq!(
        w.svc
            .verify(Verify::new(USER, SecondFactor::Typed(&g)))
            .await
            .unwrap(),
        VerifyOutcome::Rejected
    );
    w.clock.advance(72 * 3600);
    assert_eq!(
        w.svc.complete_recovery(USER).await.unwrap(),
        RecoveryCompletion::AwaitingApproval
    );
    // A new request cannot launder it.
    let RecoveryRequest::Requested { needs_approval, .. } = w
        .svc
        .request_recovery(USER, email_at(w.now()))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(needs_approval);
    // An operator who checked the owner's identity can approve it.
    assert!(w.svc.approve_recovery(USER).await.unwrap());
    assert_eq!(
        w.svc.complete_recovery(USER).await.unwrap(),
        RecoveryCompletion::Completed
    );
    assert!(!w.svc.status(USER).await.unwrap().enabled);
}

#[tokio::test]
async fn a_clean_request_completes_after_the_wait_and_a_wrong_token_cancels_nothing() {
    let w = world(MemoryStore::new()).await;
    let RecoveryRequest::Requested { cancel_token, .. } = w
        .svc
        .request_recovery(USER, email_at(w.now()))
        .await
        .unwrap()
    else {
        panic!()
    };
    let mut wrong = cancel_token.as_str().to_owned();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    assert!(
        !w.svc
            .cancel_recovery_with_token(USER, &wrong)
            .await
            .unwrap()
    );
    assert!(
        !w.svc
            .cancel_recovery_with_token("someone-else", cancel_token.as_str())
            .await
            .unwrap()
    );
    assert!(
        !w.svc
            .cancel_recovery_with_token(USER, &"x".repeat(10_000))
            .await
            .unwrap()
    );
    w.clock.advance(72 * 3600);
    assert_eq!(
        w.svc.complete_recovery(USER).await.unwrap(),
        RecoveryCompletion::Completed
    );
    assert_eq!(w.count("recovery_completed"), 1);
}

// ------------------------------------------------------------------------------------------
// Replay across re-enrolment, and uncounted guesses.
// ------------------------------------------------------------------------------------------

/// A code of a revoked secret, in flight while the owner disables, re-enrols and confirms, is
/// refused: the step advance names the credential the code was checked against.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_of_a_revoked_secret_in_flight_is_refused() {
    let w = world(MemoryStore::new()).await;
    w.clock.advance(60);
    let old_code = code_at(&w.secret, w.now());
    // The attacker's request stalls in decrypt, after loading the old credential.
    w.cipher.delay_ms.store(300, Ordering::SeqCst);
    let svc = w.svc.clone();
    let code = old_code.clone();
    let attacker = tokio::spawn(async move { reauth(&svc, USER, &code).await });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    w.cipher.delay_ms.store(0, Ordering::SeqCst);
    // The owner: disable (with a backup code), enrol again, confirm with the new app.
    let owner = w.svc.clone();
    // (A backup code would only schedule it: the owner's own app, next step, does it at once.)
    let b = code_at(&w.secret, w.now() + 30);
    assert!(matches!(
        owner.disable(USER, &b).await.unwrap(),
        twofactor::DisableOutcome::Disabled
    ));
    let EnrolmentStart::Started(e) = owner.start_enrolment(USER, "v@example.com").await.unwrap()
    else {
        panic!()
    };
    // Confirm at an earlier step than the attacker's code, so only the credential check can
    // refuse it.
    let new_secret = e.secret().clone();
    w.clock.set(w.now() - 30);
    let c = code_at(&new_secret, w.now());
    assert!(matches!(
        owner.confirm_enrolment(USER, &c).await.unwrap(),
        ConfirmOutcome::Confirmed { .. }
    ));
    w.clock.set(w.now() + 30);
    assert_eq!(attacker.await.unwrap(), VerifyOutcome::Rejected);
    assert!(w.count("replay_rejected") >= 1);
}

/// With every write after an evaluation failing, 30 days of attack: every evaluation is
/// counted anyway, so the lockouts come as if nothing failed.
#[tokio::test]
async fn lost_writes_after_evaluation_only_over_count() {
    let store = Faulty::new(MemoryStore::new(), 1.0, true);
    let inner = store.inner.clone();
    let armed = store.armed.clone();
    let failed = store.failed.clone();
    let w = world(store).await;
    armed.store(true, Ordering::SeqCst);
    let start = w.now();
    let mut evaluated = 0;
    let mut owner_days = 0;
    let mut n = 0u32;
    while w.now() < start + 30 * 86_400 {
        n += 1;
        let before = w.cipher.count();
        let g = wrong_code(&w.secret, w.now(), n * 7);
        let outcome = w
            .svc
            .verify(Verify::new(USER, SecondFactor::Typed(&g)))
            .await;
        evaluated += w.cipher.count() - before;
        match outcome {
            Ok(VerifyOutcome::RateLimited { retry_after_secs }) => {
                w.clock.advance(retry_after_secs);
            }
            Ok(VerifyOutcome::Success { .. }) => panic!("a wrong code logged in"),
            _ => w.clock.advance(1),
        }
        // The owner logs in every day; every write after their evaluation fails.
        if (w.now() - start) / 86_400 > owner_days {
            owner_days += 1;
            let _ = w.owner_login(None, None).await;
        }
    }
    let state = inner
        .get_limiter(&format!("2fa:user:{USER}"))
        .await
        .unwrap();
    println!(
        "30 days, writes after evaluation failing: {evaluated} evaluated, {} writes failed",
        failed.load(Ordering::SeqCst)
    );
    assert!(failed.load(Ordering::SeqCst) > 0);
    assert!(evaluated <= 70, "{evaluated}");
    assert!(u64::from(state.failures) >= evaluated - 1, "{state:?}");
}
