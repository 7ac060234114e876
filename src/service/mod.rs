//! The service layer: enrolment, login, backup codes, disable, recovery, on top of the store
//! traits. This is what an application calls.
//!
//! ```text
//! start_enrolment ─► (user scans QR) ─► confirm_enrolment(code) ─► backup codes, 2FA on
//! password ok ─► start_login(StartLogin) ─► NotRequired | TrustedDevice | Required{challenge}
//!             ─► complete_login(CompleteLogin::new(challenge, SecondFactor::Typed(code)))
//! step-up ─► verify(Verify::new(user, SecondFactor::Typed(code)))
//! ```
//!
//! # Guarantees
//!
//! - **Single use.** A TOTP step once accepted is never accepted again for that user (RFC 6238
//!   §5.2), including the step that confirmed the enrolment: acceptance is one atomic
//!   [`advance_step`](CredentialStore::advance_step). A backup code is consumed by one atomic
//!   delete-and-return, a challenge by one atomic take. The service never reads and then writes.
//! - **Indistinguishable rejections.** A wrong code, a replayed code, an unknown or expired
//!   challenge, a user without 2FA and an unknown user all give `Rejected`. Every code check
//!   does the work of [`Config::max_authenticators`] authenticators, whatever the user has: the
//!   missing ones, and all of them for a user without an enabled credential, are dummy rounds (a
//!   dummy secret, with associated data of the same length, decrypted and the code checked
//!   against it). By instruction count a user with one authenticator and one with five are
//!   within 4 % (`benches/README.md`). Input that cannot be a code at all is `Malformed` for
//!   everyone, before any of that work. What the
//!   store's lookup costs is the store's: `benches/timing.rs` measures `MemoryStore` with 4096
//!   users per class at about 400 ns/call faster for an unknown user than for one with 2FA on
//!   (the known user's record is not in the cache; by instruction count the two paths are within
//!   1 %: 18,504 and 18,678 per call under callgrind), so do not rely on timing alone to hide who
//!   exists. An unknown or expired
//!   challenge is answered without evaluating the code: it reveals nothing its holder does not
//!   know, and guessing a live one means guessing 256 random bits. The reason goes to the
//!   [audit trail](crate::audit) only.
//! - **Counted before evaluation.** Every code check first takes an attempt from a budget and
//!   counts it as a failure in the same atomic store operation (see [`crate::rate_limit`]), so
//!   concurrent guesses cannot exceed the budget and a store error after the evaluation can only
//!   over-count. A success gives back its own attempt and nothing more: the owner logging in does
//!   not refill an attacker's budget. TOTP and backup codes share the user's budget. On the
//!   user's budget a TOTP guess weighs as many units as the authenticators it is compared with,
//!   so the yearly bound counts **candidate secrets compared**, whatever their number.
//! - **The owner keeps a way in.** A browser that completed a login holds a [`DeviceToken`]; its
//!   attempts use that device's own budget, which an attacker guessing elsewhere never consumes
//!   ([`CompleteLogin::device`], [`Remember::Device`]).
//! - **The owner learns.** Every failed second factor on the user's budget is an
//!   [`AuditEvent::SecondFactorFailed`] with the count since the last login, and [`Status`] gives
//!   that count and the last login, so the application can say "3 failed attempts since your last
//!   login".
//! - **Fail closed.** `Err` means an infrastructure or cipher failure: nobody was let in. A store
//!   error before a consumption consumed nothing (the stores' contract).
//!
//! # The adversary
//!
//! These guarantees hold against an attacker who knows the user id and the password; sends
//! requests at any rate and concurrency, through any number of application instances; may be
//! patient (never guess, only request and wait); while the owner keeps logging in (as often as
//! hourly, or only through a trusted browser, or not at all) with TOTP codes and sometimes a
//! backup code; while any store write may fail (at any rate below 1); with a correct clock.
//! Such an attacker:
//!
//! - gets at most [`RateLimitPolicy::max_guesses_per_year`] candidate secrets compared in any
//!   365 days (92 with the defaults), with one authenticator or with
//!   [`Config::max_authenticators`]: a ±1 window gives `1 − (1 − 3×10⁻⁶)^92 ≈ 2.8×10⁻⁴` a year.
//!   Measured in `tests/service_takeover.rs`: 76 candidates with one authenticator, 85 with
//!   five (17 guesses), 76 when the application calls [`TwoFactor::password_changed`] in a loop;
//! - completes **no recovery**: without a second channel the application verified, a request
//!   needs an operator, however long it waits (`tests/service_takeover.rs`: 92 requests in a
//!   year on a quiet account, 0 completed), and every request is a notice to the owner;
//! - cannot cancel a request an operator approved;
//! - cannot lock the owner out of a browser that logged in before. On a **new** browser the
//!   owner shares the user's budget with the attacker, which the attacker can keep locked: the
//!   owner logs in from a known browser, or an operator approves a recovery.
//!
//! An attacker who also holds **one backup code** (or has added an authenticator with it) can
//! log in and add an authenticator, but removes, replaces, regenerates or disables nothing
//! before [`Config::change_delay_secs`] (72 hours): those are scheduled, the owner is told with a
//! [`NoticeToken`], and the owner's older authenticator, a browser trusted before, or the token
//! cancels them; [`TwoFactor::lock_down`] also removes what was added. An owner who ignores
//! every notice for the whole delay loses the factor after it, never sooner (the same test file
//! plays each of these for a simulated year).
//!
//! # Login challenges
//!
//! A failed `complete_login` does **not** consume the challenge: a typo must not send the user
//! back to the password step, and guesses are bounded by the per-user limiter, not by the
//! challenge. A success consumes it atomically ([`take_challenge`](EphemeralStore::take_challenge))
//! after the code was accepted; of two concurrent successes with different valid codes, only the
//! one that takes the challenge logs in (the other code is used up).
//!
//! # Drift
//!
//! The drift of every accepted code is recorded (see [`Status::last_drift`]). By default it does
//! **not** move later windows: a ±1 window already absorbs 30 s of skew, phones keep time by
//! network, and a window that followed a drifting clock would lock the user out the day the
//! phone's clock is corrected. With [`Config::follow_drift`], the window is centred on the last
//! drift (clamped to [`Window::MAX_STEPS`](crate::Window::MAX_STEPS)), as django-otp does; it
//! never grows, so an attacker's odds per guess stay the same.
//!
//! # Key rotation
//!
//! When a secret decrypts under a key that is no longer current, it is re-encrypted under the
//! current key and written back with [`rewrite_secret`](CredentialStore::rewrite_secret)
//! (compare-and-set) after the next successful TOTP check. A failed rewrite is logged, never
//! fatal.
//!
//! # Recovery
//!
//! When both phone and backup codes are lost, [`TwoFactor::request_recovery`] records a request.
//! It completes ([`TwoFactor::complete_recovery`]) after an operator approves it
//! ([`TwoFactor::approve_recovery`]), or after [`Config::recovery_delay_secs`] (72 hours) if it
//! came with a [`VerifiedChannel`] (the application verified a link or code sent to the
//! account's e-mail or phone) and the account stayed quiet. A request without one, or made while
//! the account was locked or had failed second factors since the last login, or that sees one
//! while it waits, completes only with an operator's approval. The password alone never removes
//! the second factor.
//!
//! Every request is a notice: its [`AuditEvent::RecoveryRequested`] carries a [`NoticeToken`]
//! that the application must send to **every** channel it has for the owner. A later request
//! keeps the pending one and never voids an earlier token. The owner cancels with the token
//! ([`TwoFactor::cancel_recovery_with_token`]), or with any proof: a code, a backup code, a
//! trusted browser, a device token. None of these cancels a request an operator approved (only
//! a notice token, [`TwoFactor::lock_down`] or [`TwoFactor::cancel_recovery`] does). An operator
//! can also remove the factor at once with [`TwoFactor::admin_reset`].
//!
//! # Changes of factors and lock-down
//!
//! See [`TwoFactor::scheduled_changes`], [`TwoFactor::complete_scheduled_changes`] and
//! [`TwoFactor::lock_down`]: a change that takes a factor away, asked for with a factor newer
//! than [`Config::change_delay_secs`], waits that long, is announced with a notice token, and is
//! cancelled by the owner's older factors. [`TwoFactor::password_changed`] ends a lockout only
//! with the [`FactorProof`] of an established factor checked in the same request.

mod authenticators;
mod budget;
mod changes;
mod check;
mod config;
mod enrol;
mod import;
mod login;
mod manage;
mod outcomes;
mod recovery;
mod requests;
mod tokens;

use std::sync::{Arc, OnceLock};

use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use rand::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use authenticators::{
    AddAuthenticatorOutcome, AuthenticatorInfo, AuthenticatorKind, RemoveAuthenticatorOutcome,
    TrustedDevice,
};
pub use changes::{LockDownOutcome, ScheduledChange, ScheduledChangeKind};
pub use config::Config;
pub use import::{ImportOutcome, ImportedCredential};
pub use outcomes::{
    ConfirmOutcome, DisableOutcome, Enrolment, EnrolmentStart, LoginStart, Method,
    RecoveryCompletion, RecoveryRequest, RecoveryStatus, RegenerateOutcome, Status, VerifyOutcome,
};
pub use requests::{CompleteLogin, Remember, SecondFactor, StartLogin, Verify};
pub use tokens::{
    ChallengeToken, ChannelKind, DeviceToken, FactorProof, NoticeToken, RecoveryCancelToken,
    VerifiedChannel,
};

use crate::audit::{self, AuditEvent, AuditSink, CancelledBy, Factor, FailureReason};
use crate::backup_codes::{self, BackupCodeKey};
use crate::clock::{Clock, SystemClock};
use crate::crypto::{SecretCipher, secret_aad};
use crate::error::ServiceError;
use crate::otp::{Totp, TotpOutcome, Window};
use crate::rate_limit::{Decision, RateLimitPolicy};
use crate::secret::Secret;
use crate::store::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    DeviceRecord, EphemeralStore, LimiterState, RecoveryRecord, TokenHash,
};
use crate::uri::OtpAuthUri;

use budget::{Attempt, Budget, user_key};
use check::factor_of;
use recovery::approval_required;

/// Longest user id accepted, in bytes.
pub const MAX_USER_ID_LEN: usize = 256;
/// Longest challenge token accepted by [`TwoFactor::complete_login`]; longer input is rejected
/// before hashing.
const MAX_CHALLENGE_LEN: usize = 128;
/// Longest code input looked at; longer input is rejected as malformed.
const MAX_CODE_INPUT: usize = 64;
/// Random bytes in a challenge, device or cancel token (256 bits).
const TOKEN_BYTES: usize = 32;
/// Longest device or cancel token accepted; longer input is ignored before hashing.
const MAX_TOKEN_LEN: usize = 128;
/// The stand-in user id of the dummy check, cut to the real id's length, so that its associated
/// data is built and authenticated like the real id's.
const DUMMY_USER_ID: &str = concat!(
    "dummy---------------------------------------------------------------",
    "----------------------------------------------------------------",
    "----------------------------------------------------------------",
    "------------------------------------------------------------",
);
const _: () = assert!(DUMMY_USER_ID.len() == MAX_USER_ID_LEN);

/// Two-factor authentication for an application: TOTP with backup codes, rate limits, replay
/// protection, encrypted secrets and recovery.
///
/// Generic over the durable [`CredentialStore`] `C`, the short-lived [`EphemeralStore`] `E`
/// (by default the same store), the [`SecretCipher`] `K` that encrypts secrets at rest (by
/// default the AES-256-GCM [`Keyring`](crate::Keyring)), and the [`Clock`] `Clk`. With one store
/// for both, build it with [`TwoFactor::from_store`]. Share one instance (in an `Arc`) between
/// requests; every method takes `&self`, and several instances on several machines can share
/// the same stores.
///
/// See the [module docs](self) for the guarantees.
pub struct TwoFactor<C, E = C, K = crate::Keyring, Clk = SystemClock> {
    credentials: C,
    ephemeral: E,
    cipher: K,
    backup_key: BackupCodeKey,
    config: Config,
    clock: Clk,
    audit: Option<Arc<dyn AuditSink>>,
    dummy_secret: Secret,
    /// The dummy secret encrypted for a stand-in id of each length, made on first use.
    dummy_blobs: Box<[OnceLock<Vec<u8>>]>,
}

impl<C, E, K, Clk> core::fmt::Debug for TwoFactor<C, E, K, Clk> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TwoFactor")
            .field("config", &self.config)
            .field("audit_sink", &self.audit.is_some())
            .finish_non_exhaustive()
    }
}

/// What a code check concluded, before it is turned into the public outcome of each operation.
enum Checked {
    /// Accepted. `established`: the code came from an authenticator old enough to change the
    /// factors at once (see [`Config::change_delay_secs`]); a backup code never is.
    Success {
        method: Method,
        established: bool,
    },
    /// The input cannot be a code (empty, a letter, the wrong length; a backup code of the wrong
    /// shape): nothing was spent, evaluated or audited. `digits`: what a TOTP code of this user
    /// has.
    Malformed {
        digits: u32,
    },
    Rejected,
    RateLimited(u64),
}

fn challenge_hash(token: &str) -> ChallengeHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The stored hash of a device or cancel token; `None` for input too long to be one.
fn token_hash(token: &str) -> Option<TokenHash> {
    (token.len() <= MAX_TOKEN_LEN).then(|| Sha256::digest(token.as_bytes()).into())
}

/// A fresh authenticator id: 128 random bits, base64url (22 characters).
fn new_authenticator_id() -> String {
    let mut raw = [0u8; 16];
    fill(&mut crate::rng::os_rng(), &mut raw);
    BASE64URL_NOPAD.encode(&raw)
}

/// Longest authenticator name or device label, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A user-chosen authenticator name or device label, trimmed: 1 to 64 characters, no control
/// characters (they would let a name forge lines in a log or a listing).
fn check_name(name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ServiceError::InvalidName);
    }
    Ok(name.to_owned())
}

/// The name of the first authenticator, until the user renames it.
const FIRST_AUTHENTICATOR_NAME: &str = "Authenticator app";

/// A fresh 256-bit token, base64url, and its hash.
fn new_token() -> (Zeroizing<String>, TokenHash) {
    let mut raw = Zeroizing::new([0u8; TOKEN_BYTES]);
    fill(&mut crate::rng::os_rng(), raw.as_mut_slice());
    let token = Zeroizing::new(BASE64URL_NOPAD.encode(raw.as_slice()));
    let hash = Sha256::digest(token.as_bytes()).into();
    (token, hash)
}

fn fill<R: CryptoRng + ?Sized>(rng: &mut R, buf: &mut [u8]) {
    rng.fill_bytes(buf);
}

fn credential_err<Er: std::error::Error + Send + Sync + 'static>(e: Er) -> ServiceError {
    ServiceError::CredentialStore(Box::new(e))
}

fn ephemeral_err<Er: std::error::Error + Send + Sync + 'static>(e: Er) -> ServiceError {
    ServiceError::EphemeralStore(Box::new(e))
}

fn cipher_err<Er: std::error::Error + Send + Sync + 'static>(e: Er) -> ServiceError {
    ServiceError::Cipher(Box::new(e))
}

fn check_user_id(user_id: &str) -> Result<(), ServiceError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
        return Err(ServiceError::InvalidUserId);
    }
    Ok(())
}

impl<S, K> TwoFactor<S, S, K, SystemClock>
where
    S: CredentialStore + EphemeralStore + Clone,
    K: SecretCipher,
{
    /// A service over one store that keeps both credentials and short-lived state (SQLite,
    /// PostgreSQL, [`MemoryStore`](crate::MemoryStore)), on the system clock. See
    /// [`TwoFactor::new`].
    ///
    /// # Errors
    /// As [`TwoFactor::new`].
    pub fn from_store(
        store: S,
        cipher: K,
        backup_key: BackupCodeKey,
        config: Config,
    ) -> Result<Self, ServiceError> {
        Self::new(store.clone(), store, cipher, backup_key, config)
    }
}

impl<C, E, K> TwoFactor<C, E, K, SystemClock>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
{
    /// A service over these stores, encrypting secrets with `cipher`, hashing backup codes with
    /// `backup_key` (keep both keys outside the database), on the system clock.
    ///
    /// # Errors
    /// [`ServiceError::InvalidConfig`] when the configuration cannot produce valid otpauth URIs
    /// (empty or too long issuer, digits outside 6..=10, period 0 or over a day) or asks for no
    /// backup codes.
    pub fn new(
        credentials: C,
        ephemeral: E,
        cipher: K,
        backup_key: BackupCodeKey,
        config: Config,
    ) -> Result<Self, ServiceError> {
        let dummy_secret = Secret::generate(config.algorithm);
        // Building a URI checks issuer, digits and period once, here, rather than at the first
        // enrolment.
        OtpAuthUri::totp_builder(dummy_secret.clone(), "config-check")
            .issuer(config.issuer.clone())
            .algorithm(config.algorithm)
            .digits(config.digits)
            .period(config.period)
            .build()
            .map_err(|e| ServiceError::InvalidConfig(Box::new(e)))?;
        if config.issuer.trim().is_empty() || config.backup_code_count == 0 {
            return Err(ServiceError::InvalidConfig(
                "issuer must not be empty and backup_code_count must be at least 1".into(),
            ));
        }
        if !(1..=crate::store::MAX_AUTHENTICATORS).contains(&config.max_authenticators)
            || config.trusted_device_ttl_secs > config.device_ttl_secs
        {
            return Err(ServiceError::InvalidConfig(
                "max_authenticators must be 1 to 20 and trusted_device_ttl_secs at most device_ttl_secs"
                    .into(),
            ));
        }
        if config.notice_ttl_secs < config.change_delay_secs.max(config.recovery_delay_secs) {
            return Err(ServiceError::InvalidConfig(
                "notice_ttl_secs must be at least change_delay_secs and recovery_delay_secs".into(),
            ));
        }
        Ok(Self {
            credentials,
            ephemeral,
            cipher,
            backup_key,
            config,
            clock: SystemClock,
            audit: None,
            dummy_secret,
            dummy_blobs: (0..=MAX_USER_ID_LEN).map(|_| OnceLock::new()).collect(),
        })
    }
}

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// Replaces the clock (tests and simulations use [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn with_clock<Clk2: Clock>(self, clock: Clk2) -> TwoFactor<C, E, K, Clk2> {
        TwoFactor {
            credentials: self.credentials,
            ephemeral: self.ephemeral,
            cipher: self.cipher,
            backup_key: self.backup_key,
            config: self.config,
            clock,
            audit: self.audit,
            dummy_secret: self.dummy_secret,
            dummy_blobs: self.dummy_blobs,
        }
    }

    /// Sends every [`AuditEvent`] to `sink` as well as to `tracing`.
    #[must_use]
    pub fn with_audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The credential store.
    pub fn credential_store(&self) -> &C {
        &self.credentials
    }

    /// The ephemeral store.
    pub fn ephemeral_store(&self) -> &E {
        &self.ephemeral
    }

    /// The clock.
    pub fn clock(&self) -> &Clk {
        &self.clock
    }

    /// Emits an audit event, built only if someone listens (a sink, or a `tracing` subscriber
    /// interested in warnings), so the hot path does not allocate for nothing.
    fn emit(&self, now: u64, event: impl FnOnce() -> AuditEvent) {
        if self.audit.is_none()
            && !tracing::enabled!(target: "twofactor::audit", tracing::Level::WARN)
        {
            return;
        }
        let event = event();
        audit::trace(now, &event);
        if let Some(sink) = &self.audit {
            sink.record(now, &event);
        }
    }

    fn totp_for(&self, secret: &Secret, record: &CredentialRecord) -> Result<Totp, ServiceError> {
        Totp::builder(secret)
            .algorithm(record.algorithm)
            .digits(record.digits)
            .period(record.period)
            .window(self.config.window)
            .build()
            .map_err(|e| ServiceError::CorruptCredential(Box::new(e)))
    }
}
