//! Shared helpers for the service tests: a service over `MemoryStore` with a `ManualClock`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

mod cipher;
#[allow(unused_imports)] // used by the adversary tests, not by every test file
pub use cipher::Instrumented;

use twofactor::audit::AuditEvent;
use twofactor::service::{CompleteLogin, Config, LoginStart, Remember, SecondFactor, StartLogin};
use twofactor::{
    BackupCode, BackupCodeKey, ConfirmOutcome, DeviceToken, EnrolmentStart, Keyring, ManualClock,
    MemoryStore, Secret, Totp, TwoFactor, VerifyOutcome,
};

/// 2023-11-14T22:13:20Z, 20 s into a 30-second step.
pub const T0: u64 = 1_700_000_000;
pub const KEY1: [u8; 32] = [7u8; 32];
pub const KEY2: [u8; 32] = [9u8; 32];

pub type Svc<K = Keyring> = TwoFactor<MemoryStore, MemoryStore, K, ManualClock>;

/// Audit events recorded by the sink, with their time.
#[derive(Clone, Default)]
pub struct Events(pub Arc<Mutex<Vec<(u64, AuditEvent)>>>);

impl Events {
    pub fn all(&self) -> Vec<AuditEvent> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }
    pub fn kinds(&self) -> Vec<&'static str> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.kind())
            .collect()
    }
    pub fn count(&self, kind: &str) -> usize {
        self.kinds().iter().filter(|k| **k == kind).count()
    }
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// The application's word that it verified the owner's e-mail at `now` (a second channel).
pub fn email_at(now: u64) -> Option<twofactor::service::VerifiedChannel> {
    Some(twofactor::service::VerifiedChannel::new(
        twofactor::service::ChannelKind::Email,
        now,
    ))
}

pub fn config() -> Config {
    Config::new("Example")
}

pub fn service_with<K: twofactor::SecretCipher>(
    store: MemoryStore,
    cipher: K,
    config: Config,
) -> (Svc<K>, ManualClock, Events) {
    let clock = ManualClock::new(T0);
    let events = Events::default();
    let sink = events.clone();
    let svc = TwoFactor::new(
        store.clone(),
        store,
        cipher,
        BackupCodeKey::from_bytes([3u8; 32]),
        config,
    )
    .unwrap()
    .with_clock(clock.clone())
    .with_audit_sink(Arc::new(move |at: u64, e: &AuditEvent| {
        sink.0.lock().unwrap().push((at, e.clone()));
    }));
    (svc, clock, events)
}

pub fn service() -> (Svc, MemoryStore, ManualClock, Events) {
    let store = MemoryStore::new();
    let (svc, clock, events) = service_with(store.clone(), Keyring::single(1, KEY1), config());
    (svc, store, clock, events)
}

pub fn totp(secret: &Secret) -> Totp {
    Totp::builder(secret).build().unwrap()
}

/// The code the user's app shows at `unix`.
pub fn code_at(secret: &Secret, unix: u64) -> String {
    totp(secret).generate_at(unix).unwrap().as_str().to_owned()
}

/// A 6-digit code that is valid at none of the steps around `unix` (±2).
pub fn wrong_code(secret: &Secret, unix: u64, seed: u32) -> String {
    let t = totp(secret);
    let step = t.step_at(unix).unwrap();
    let valid: Vec<String> = (step - 2..=step + 2)
        .map(|s| t.generate_step(s).as_str().to_owned())
        .collect();
    let mut n = seed % 1_000_000;
    loop {
        let c = format!("{n:06}");
        if !valid.contains(&c) {
            return c;
        }
        n = (n + 1) % 1_000_000;
    }
}

/// Enrols `user` (start + confirm with the current code) and returns the secret and backup codes.
pub async fn enrol<K: twofactor::SecretCipher>(
    svc: &Svc<K>,
    clock: &ManualClock,
    user: &str,
) -> (Secret, Vec<BackupCode>) {
    let EnrolmentStart::Started(enrolment) = svc
        .start_enrolment(user, &format!("{user}@example.com"))
        .await
        .unwrap()
    else {
        panic!("already enabled");
    };
    let secret = enrolment.secret().clone();
    let code = code_at(&secret, clock.now_secs());
    match svc.confirm_enrolment(user, &code).await.unwrap() {
        ConfirmOutcome::Confirmed { backup_codes } => (secret, backup_codes),
        other => panic!("confirmation failed: {other:?}"),
    }
}

/// Starts a login and returns the challenge token text.
pub async fn challenge<K: twofactor::SecretCipher>(svc: &Svc<K>, user: &str) -> String {
    match svc.start_login(StartLogin::new(user)).await.unwrap() {
        LoginStart::Required { challenge, .. } => challenge.as_str().to_owned(),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// Logs `user` in with `code` from a browser that keeps a device token ([`Remember::Device`]),
/// and returns the new token.
pub async fn log_in_keeping_device<K: twofactor::SecretCipher>(
    svc: &Svc<K>,
    user: &str,
    code: &str,
) -> DeviceToken {
    let c = challenge(svc, user).await;
    let attempt = CompleteLogin::new(&c, SecondFactor::Typed(code)).remember(Remember::Device);
    match svc.complete_login(attempt).await.unwrap() {
        VerifyOutcome::Success {
            device_token: Some(token),
            ..
        } => token,
        other => panic!("no device token: {other:?}"),
    }
}

pub trait NowSecs {
    fn now_secs(&self) -> u64;
}

impl NowSecs for ManualClock {
    fn now_secs(&self) -> u64 {
        twofactor::Clock::now(self)
    }
}

/// [`TwoFactor::complete_login`] with what the user typed, from a client without a device token.
pub async fn login<C, E, K, Clk>(
    svc: &TwoFactor<C, E, K, Clk>,
    challenge: &str,
    typed: &str,
) -> VerifyOutcome
where
    C: twofactor::store::CredentialStore,
    E: twofactor::store::EphemeralStore,
    K: twofactor::SecretCipher,
    Clk: twofactor::Clock,
{
    svc.complete_login(CompleteLogin::new(challenge, SecondFactor::Typed(typed)))
        .await
        .unwrap()
}

/// [`TwoFactor::verify`] (re-authentication) with what the user typed, without a device token.
pub async fn reauth<C, E, K, Clk>(
    svc: &TwoFactor<C, E, K, Clk>,
    user: &str,
    typed: &str,
) -> VerifyOutcome
where
    C: twofactor::store::CredentialStore,
    E: twofactor::store::EphemeralStore,
    K: twofactor::SecretCipher,
    Clk: twofactor::Clock,
{
    svc.verify(twofactor::service::Verify::new(
        user,
        SecondFactor::Typed(typed),
    ))
    .await
    .unwrap()
}
