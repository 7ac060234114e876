//! The service layer: enrolment, login, backup codes, disable, recovery, on top of the store
//! traits. This is what an application calls.
//!
//! ```text
//! start_enrolment ─► (user scans QR) ─► confirm_enrolment(code) ─► backup codes, 2FA on
//! password ok ─► start_login ─► NotRequired | Required{challenge} ─► complete_login(challenge, code)
//! ```
//!
//! # Guarantees
//!
//! - **Single use.** A TOTP step once accepted is never accepted again for that user (RFC 6238
//!   §5.2), including the step that confirmed the enrolment: acceptance is one atomic
//!   [`advance_step`](CredentialStore::advance_step). A backup code is consumed by one atomic
//!   delete-and-return, a challenge by one atomic take. The service never reads and then writes.
//! - **Indistinguishable rejections.** A wrong code, a replayed code, an unknown or expired
//!   challenge, a user without 2FA and an unknown user all give `Rejected`. A user without an
//!   enabled credential costs the same work as a wrong code (a dummy secret is decrypted and the
//!   code checked against it), so timing does not reveal who has 2FA. An unknown or expired
//!   challenge is answered without evaluating the code: it reveals nothing its holder does not
//!   know, and guessing a live one means guessing 256 random bits. The reason goes to the
//!   [audit trail](crate::audit) only.
//! - **Counted before evaluation.** Every code check first takes an attempt from a budget and
//!   counts it as a failure in the same atomic store operation (see [`crate::rate_limit`]), so
//!   concurrent guesses cannot exceed the budget and a store error after the evaluation can only
//!   over-count. A success gives back its own attempt and nothing more: the owner logging in does
//!   not refill an attacker's budget. TOTP and backup codes share the user's budget.
//! - **The owner keeps a way in.** A browser that completed a login holds a [`DeviceToken`]; its
//!   attempts use that device's own budget, which an attacker guessing elsewhere never consumes
//!   ([`TwoFactor::complete_login_with_device`]).
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
//! requests at any rate and concurrency, through any number of application instances; while the
//! owner keeps logging in (as often as hourly) with TOTP codes and sometimes a backup code; while
//! any store write may fail (at any rate below 1); with a correct clock. Such an attacker gets at
//! most [`RateLimitPolicy::max_guesses_per_year`] codes evaluated in any 365 days (92 with the
//! defaults: a ±1 window gives a `≈ 2.8×10⁻⁴` chance a year), cannot complete a recovery, and
//! cannot lock the owner out of a browser that logged in before. On a **new** browser the owner
//! shares the user's budget with the attacker, which the attacker can keep locked: the owner
//! logs in from a known browser, or an operator approves a recovery. Your application must ask
//! for the second factor before it changes the password, then call
//! [`TwoFactor::password_changed`], which ends the lockout.
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
//! ([`TwoFactor::approve_recovery`]), or after [`Config::recovery_delay_secs`] (72 hours) if the
//! account stayed quiet: a request made while the account was locked or had failed second
//! factors since the last login, or that sees one while it waits, completes only with an
//! operator's approval. The password alone never removes the second factor. The request returns a
//! single-use [`RecoveryCancelToken`] for the application to send to the owner out of band; the
//! owner cancels with it ([`TwoFactor::cancel_recovery_with_token`]), or by logging in with a
//! second factor. An operator can also remove the factor at once with
//! [`TwoFactor::admin_reset`].

mod types;

use std::sync::{Arc, OnceLock};

use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use rand::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use types::{
    ChallengeToken, Config, ConfirmOutcome, DeviceToken, DisableOutcome, Enrolment, EnrolmentStart,
    LoginStart, Method, RecoveryCancelToken, RecoveryCompletion, RecoveryRequest, RecoveryStatus,
    RegenerateOutcome, Status, VerifyOutcome,
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

/// Two-factor authentication for an application: TOTP with backup codes, rate limits, replay
/// protection, encrypted secrets and recovery.
///
/// Generic over the durable [`CredentialStore`] `C`, the short-lived [`EphemeralStore`] `E`, the
/// [`SecretCipher`] `K` that encrypts secrets at rest, and the [`Clock`] `Clk`. Share one instance
/// (in an `Arc`) between requests; every method takes `&self`, and several instances on several
/// machines can share the same stores.
///
/// See the [module docs](self) for the guarantees.
pub struct TwoFactor<C, E, K, Clk = SystemClock> {
    credentials: C,
    ephemeral: E,
    cipher: K,
    backup_key: BackupCodeKey,
    config: Config,
    clock: Clk,
    audit: Option<Arc<dyn AuditSink>>,
    dummy_secret: Secret,
    dummy_blob: OnceLock<Vec<u8>>,
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
    Success(Method),
    Rejected,
    RateLimited(u64),
}

/// Whose attempt budget a code check draws on.
#[derive(Clone, Copy)]
enum Budget {
    /// The user's budget, shared by every client without a device token.
    User,
    /// The budget of one known device (the hash of its token).
    Device(TokenHash),
}

/// A granted attempt, already counted as a failure by the atomic acquisition. Settle it exactly
/// once: `succeed` (the code was accepted: give it back), `fail`/`counted` (it stays counted) or
/// `release_on_error` (never evaluated: give it back). Each consumes it.
#[must_use = "settle the attempt: succeed, fail, counted or release_on_error"]
struct Attempt {
    key: String,
    policy: RateLimitPolicy,
    device: bool,
    factor: Factor,
    now: u64,
    /// The state stored by the acquisition.
    counted: LimiterState,
}

/// The limiter key of a user's shared budget: `2fa:user:<user id>`.
fn user_key(user_id: &str) -> String {
    let mut key = String::with_capacity(9 + user_id.len());
    key.push_str("2fa:user:");
    key.push_str(user_id);
    key
}

fn challenge_hash(token: &str) -> ChallengeHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The stored hash of a device or cancel token; `None` for input too long to be one.
fn token_hash(token: &str) -> Option<TokenHash> {
    (token.len() <= MAX_TOKEN_LEN).then(|| Sha256::digest(token.as_bytes()).into())
}

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

/// A typed TOTP code without the spaces people type or paste ("123 456").
fn clean_totp_input(typed: &str) -> Option<Zeroizing<String>> {
    if typed.len() > MAX_CODE_INPUT {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(typed.len()));
    out.extend(typed.chars().filter(|c| !c.is_whitespace()));
    Some(out)
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
        Ok(Self {
            credentials,
            ephemeral,
            cipher,
            backup_key,
            config,
            clock: SystemClock,
            audit: None,
            dummy_secret,
            dummy_blob: OnceLock::new(),
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
            dummy_blob: self.dummy_blob,
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

    // ----------------------------------------------------------------------------------------
    // Enrolment
    // ----------------------------------------------------------------------------------------

    /// Starts enrolment: generates a secret, stores it encrypted as **pending** (replacing any
    /// pending one) and returns what the user needs to add it to an authenticator app. 2FA is not
    /// on until [`TwoFactor::confirm_enrolment`] gets a valid code.
    ///
    /// `account_name` is shown in the app next to the issuer (usually the email address).
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; [`ServiceError::InvalidAccountName`] when the account name
    /// cannot go into an otpauth URI (empty, too long, or containing `:`); store and cipher
    /// failures (nothing stored).
    pub async fn start_enrolment(
        &self,
        user_id: &str,
        account_name: &str,
    ) -> Result<EnrolmentStart, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let secret = Secret::generate(self.config.algorithm);
        let uri = OtpAuthUri::totp_builder(secret, account_name)
            .issuer(self.config.issuer.clone())
            .algorithm(self.config.algorithm)
            .digits(self.config.digits)
            .period(self.config.period)
            .build()
            .map_err(ServiceError::InvalidAccountName)?;
        let encrypted_secret = self
            .cipher
            .encrypt(uri.secret().expose_secret(), &secret_aad(user_id))
            .await
            .map_err(cipher_err)?;
        let record = CredentialRecord {
            encrypted_secret,
            algorithm: self.config.algorithm,
            digits: self.config.digits,
            period: self.config.period,
            enabled: false,
            last_step: None,
            drift: 0,
            created_at: now,
        };
        if !self
            .credentials
            .put_pending(user_id, &record)
            .await
            .map_err(credential_err)?
        {
            return Ok(EnrolmentStart::AlreadyEnabled);
        }
        self.emit(now, || AuditEvent::EnrolmentStarted {
            user_id: user_id.to_owned(),
        });
        Ok(EnrolmentStart::Started(Enrolment { uri }))
    }

    /// Confirms a pending enrolment with a code from the authenticator app: 2FA is on, the code's
    /// step counts as used, and the backup codes are returned, once.
    ///
    /// Rate limited like a login (the user's budget).
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (2FA stays off).
    pub async fn confirm_enrolment(
        &self,
        user_id: &str,
        code: &str,
    ) -> Result<ConfirmOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let attempt = match self
            .acquire(user_id, Budget::User, Factor::Totp, now)
            .await?
        {
            Ok(attempt) => attempt,
            Err(retry_after_secs) => return Ok(ConfirmOutcome::RateLimited { retry_after_secs }),
        };
        let Some((record, attempt)) = self.load_for_check(attempt, user_id, code, false).await?
        else {
            return Ok(ConfirmOutcome::Rejected);
        };
        let Some((_, m, attempt)) = self
            .decrypt_and_match(attempt, user_id, &record, code)
            .await?
        else {
            return Ok(ConfirmOutcome::Rejected);
        };
        let codes = backup_codes::generate(self.config.backup_code_count);
        let hashes: Vec<BackupCodeHash> = codes
            .iter()
            .map(|c| self.backup_key.hash(user_id, c))
            .collect();
        // The code was evaluated: a store error leaves the attempt counted.
        let activated = self
            .credentials
            .activate(user_id, &record.encrypted_secret, m.step, m.drift, &hashes)
            .await
            .map_err(credential_err)?;
        if !activated {
            // Replaced by a newer enrolment (or confirmed) between our read and the activation.
            self.fail(attempt, user_id, FailureReason::Superseded);
            return Ok(ConfirmOutcome::Rejected);
        }
        self.succeed(attempt, user_id).await;
        self.emit(now, || AuditEvent::EnrolmentConfirmed {
            user_id: user_id.to_owned(),
            drift: m.drift,
            backup_codes: u32::try_from(codes.len()).unwrap_or(u32::MAX),
        });
        Ok(ConfirmOutcome::Confirmed {
            backup_codes: codes,
        })
    }

    // ----------------------------------------------------------------------------------------
    // Login
    // ----------------------------------------------------------------------------------------

    /// Call after the password was verified. Returns whether a second factor is required and, if
    /// so, a fresh challenge token to pass to [`TwoFactor::complete_login`] with the code.
    ///
    /// A pending (unconfirmed) enrolment does not require a second factor.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (treat as "cannot log in now").
    pub async fn start_login(&self, user_id: &str) -> Result<LoginStart, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let enabled = self
            .credentials
            .get_credential(user_id)
            .await
            .map_err(credential_err)?
            .is_some_and(|r| r.enabled);
        if !enabled {
            return Ok(LoginStart::NotRequired);
        }
        let (token, _) = new_token();
        let expires_at = now.saturating_add(self.config.challenge_ttl_secs);
        self.ephemeral
            .put_challenge(
                &challenge_hash(&token),
                &ChallengeRecord {
                    user_id: user_id.to_owned(),
                    expires_at,
                },
            )
            .await
            .map_err(ephemeral_err)?;
        Ok(LoginStart::Required {
            challenge: ChallengeToken(token),
            expires_at,
        })
    }

    /// Completes a login with the challenge from [`TwoFactor::start_login`] and what the user
    /// typed: a TOTP code (spaces ignored) or a backup code, told apart by shape
    /// ([`backup_codes::looks_like_backup_code`]). On success returns the user id and consumes
    /// the challenge; a failure leaves the challenge usable until it expires (see the
    /// [module docs](self#login-challenges)).
    ///
    /// The attempt draws on the user's budget, which an attacker who has the password shares:
    /// prefer [`TwoFactor::complete_login_with_device`], which gives the owner's browsers their
    /// own.
    ///
    /// # Errors
    /// Store and cipher failures: nobody is let in, the challenge is not consumed.
    pub async fn complete_login(
        &self,
        challenge: &str,
        code: &str,
    ) -> Result<VerifyOutcome, ServiceError> {
        self.complete_login_inner(challenge, code, None, false)
            .await
    }

    /// [`TwoFactor::complete_login`] for a browser that may hold a device token from an earlier
    /// login of this user (pass `None` when it has none).
    ///
    /// A valid token for this user (not expired, not revoked) makes the attempt count against
    /// that device's own budget ([`Config::device_rate_limit`]), which failures from other
    /// clients never consume: an attacker who has the password and keeps the user's budget
    /// locked cannot lock the owner out of their own browser. An invalid, expired or foreign
    /// token is ignored (the user's budget applies); it is not an error.
    ///
    /// On success without a valid token, or with one past half its life
    /// ([`Config::device_ttl_secs`]), the outcome carries a new [`DeviceToken`] to store on the
    /// client in place of the old one. The token does not skip the second factor.
    ///
    /// # Errors
    /// Store and cipher failures: nobody is let in, the challenge is not consumed. Failing to
    /// store a new device token is logged, not returned (the login succeeded).
    pub async fn complete_login_with_device(
        &self,
        challenge: &str,
        code: &str,
        device_token: Option<&str>,
    ) -> Result<VerifyOutcome, ServiceError> {
        self.complete_login_inner(challenge, code, device_token, true)
            .await
    }

    async fn complete_login_inner(
        &self,
        challenge: &str,
        code: &str,
        device_token: Option<&str>,
        remember: bool,
    ) -> Result<VerifyOutcome, ServiceError> {
        let now = self.clock.now();
        let hash = (challenge.len() <= MAX_CHALLENGE_LEN).then(|| challenge_hash(challenge));
        let record = match &hash {
            Some(h) => self
                .ephemeral
                .get_challenge(h, now)
                .await
                .map_err(ephemeral_err)?,
            None => None,
        };
        let (Some(hash), Some(record)) = (hash, record) else {
            self.emit(now, || AuditEvent::VerificationFailed {
                user_id: None,
                factor: factor_of(code),
                reason: FailureReason::UnknownChallenge,
            });
            return Ok(VerifyOutcome::Rejected);
        };
        let user_id = record.user_id;
        let device = self.known_device(&user_id, device_token, now).await?;
        let budget = device.map_or(Budget::User, |(hash, _)| Budget::Device(hash));
        match self.check_code(&user_id, code, now, budget).await? {
            Checked::Success(method) => {
                // The code is used up; the challenge must be too, atomically. Losing this race
                // means another request completed this login first.
                let taken = self
                    .ephemeral
                    .take_challenge(&hash, now)
                    .await
                    .map_err(ephemeral_err)?;
                if taken.is_none_or(|t| t.user_id != user_id) {
                    self.emit(now, || AuditEvent::VerificationFailed {
                        user_id: Some(user_id),
                        factor: factor_of(code),
                        reason: FailureReason::UnknownChallenge,
                    });
                    return Ok(VerifyOutcome::Rejected);
                }
                // A browser without a valid token gets one; one whose token has lived half its
                // life gets a fresh one, so a browser in daily use never falls back to the
                // user's budget.
                let renew = device.is_none_or(|(_, created_at)| {
                    now >= created_at.saturating_add(self.config.device_ttl_secs / 2)
                });
                let device_token = if remember && renew {
                    self.remember_device(&user_id, now).await
                } else {
                    None
                };
                Ok(VerifyOutcome::Success {
                    user_id,
                    method,
                    device_token,
                })
            }
            Checked::Rejected => Ok(VerifyOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                Ok(VerifyOutcome::RateLimited { retry_after_secs })
            }
        }
    }

    /// The hash and issue time of `device_token` if it is a live device token of `user_id`.
    async fn known_device(
        &self,
        user_id: &str,
        device_token: Option<&str>,
        now: u64,
    ) -> Result<Option<(TokenHash, u64)>, ServiceError> {
        let Some(hash) = device_token.and_then(token_hash) else {
            return Ok(None);
        };
        let record = self
            .credentials
            .get_device(&hash, now)
            .await
            .map_err(credential_err)?;
        Ok(record
            .filter(|d| d.user_id == user_id)
            .map(|d| (hash, d.created_at)))
    }

    /// Issues and stores a device token (best effort: `None` if the store fails).
    async fn remember_device(&self, user_id: &str, now: u64) -> Option<DeviceToken> {
        let (token, hash) = new_token();
        let record = DeviceRecord {
            user_id: user_id.to_owned(),
            created_at: now,
            expires_at: now.saturating_add(self.config.device_ttl_secs),
        };
        match self.credentials.put_device(&hash, &record).await {
            Ok(()) => {
                self.emit(now, || AuditEvent::DeviceRemembered {
                    user_id: user_id.to_owned(),
                });
                Some(DeviceToken(token))
            }
            Err(e) => {
                tracing::warn!(target: "twofactor::service", error = %e, "could not store a device token");
                None
            }
        }
    }

    /// Checks a code for `user_id` without a challenge: one-step login (code sent with the
    /// password) and step-up verification before sensitive actions. Same checks, limits and
    /// single use as [`TwoFactor::complete_login`]. A user without 2FA gets `Rejected`: ask
    /// [`TwoFactor::start_login`] or [`TwoFactor::status`] first whether a code is required.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (nobody is let in).
    pub async fn verify(&self, user_id: &str, code: &str) -> Result<VerifyOutcome, ServiceError> {
        self.verify_with_device(user_id, code, None).await
    }

    /// [`TwoFactor::verify`] from a browser that may hold a device token of this user: a valid
    /// one draws on the device's own budget (see [`TwoFactor::complete_login_with_device`]). No
    /// new token is issued.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (nobody is let in).
    pub async fn verify_with_device(
        &self,
        user_id: &str,
        code: &str,
        device_token: Option<&str>,
    ) -> Result<VerifyOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let device = self.known_device(user_id, device_token, now).await?;
        let budget = device.map_or(Budget::User, |(hash, _)| Budget::Device(hash));
        Ok(match self.check_code(user_id, code, now, budget).await? {
            Checked::Success(method) => VerifyOutcome::Success {
                user_id: user_id.to_owned(),
                method,
                device_token: None,
            },
            Checked::Rejected => VerifyOutcome::Rejected,
            Checked::RateLimited(retry_after_secs) => {
                VerifyOutcome::RateLimited { retry_after_secs }
            }
        })
    }

    /// Revokes every device token of the user (a lost or stolen laptop, or "sign out
    /// everywhere"); returns how many there were. The next successful login issues a new one.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn forget_devices(&self, user_id: &str) -> Result<u64, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let count = self
            .credentials
            .delete_devices(user_id)
            .await
            .map_err(credential_err)?;
        if count > 0 {
            self.emit(now, || AuditEvent::DevicesForgotten {
                user_id: user_id.to_owned(),
                count,
            });
        }
        Ok(count)
    }

    /// Call after the user changed their password (which your application must allow only with
    /// the second factor: the old password may be the attacker's). A new password cuts an
    /// attacker who had the old one off, so this ends the user's lockout (the per-user budget
    /// starts clean) and cancels a pending recovery request.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (call it again).
    pub async fn password_changed(&self, user_id: &str) -> Result<(), ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        self.reset_limiter(user_id, now).await?;
        if self
            .credentials
            .cancel_recovery(user_id)
            .await
            .map_err(credential_err)?
        {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by: CancelledBy::PasswordChange,
            });
        }
        self.emit(now, || AuditEvent::PasswordChanged {
            user_id: user_id.to_owned(),
        });
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // Managing an enabled factor
    // ----------------------------------------------------------------------------------------

    /// Turns 2FA off, after a valid current code (TOTP or backup code): removes the secret, the
    /// backup codes and any recovery request.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (2FA stays on).
    pub async fn disable(&self, user_id: &str, code: &str) -> Result<DisableOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        match self.check_code(user_id, code, now, Budget::User).await? {
            Checked::Success(_) => {
                if !self
                    .credentials
                    .delete_credential(user_id)
                    .await
                    .map_err(credential_err)?
                {
                    return Ok(DisableOutcome::Rejected);
                }
                self.emit(now, || AuditEvent::Disabled {
                    user_id: user_id.to_owned(),
                });
                Ok(DisableOutcome::Disabled)
            }
            Checked::Rejected => Ok(DisableOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                Ok(DisableOutcome::RateLimited { retry_after_secs })
            }
        }
    }

    /// Replaces the backup codes with a new set, after a valid current code (TOTP or backup
    /// code). The old codes stop working at the same moment.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (the old codes stay valid).
    pub async fn regenerate_backup_codes(
        &self,
        user_id: &str,
        code: &str,
    ) -> Result<RegenerateOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        match self.check_code(user_id, code, now, Budget::User).await? {
            Checked::Success(_) => {
                let codes = backup_codes::generate(self.config.backup_code_count);
                let hashes: Vec<BackupCodeHash> = codes
                    .iter()
                    .map(|c| self.backup_key.hash(user_id, c))
                    .collect();
                if !self
                    .credentials
                    .replace_backup_codes(user_id, &hashes)
                    .await
                    .map_err(credential_err)?
                {
                    return Ok(RegenerateOutcome::Rejected);
                }
                self.emit(now, || AuditEvent::BackupCodesRegenerated {
                    user_id: user_id.to_owned(),
                    count: u32::try_from(codes.len()).unwrap_or(u32::MAX),
                });
                Ok(RegenerateOutcome::Regenerated {
                    backup_codes: codes,
                })
            }
            Checked::Rejected => Ok(RegenerateOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                Ok(RegenerateOutcome::RateLimited { retry_after_secs })
            }
        }
    }

    /// The user's 2FA state, with what the owner should be told: failed attempts since the last
    /// login, a lockout, a recovery request.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn status(&self, user_id: &str) -> Result<Status, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let record = self
            .credentials
            .get_credential(user_id)
            .await
            .map_err(credential_err)?;
        let enabled = record.as_ref().is_some_and(|r| r.enabled);
        let backup_codes_remaining = if enabled {
            self.credentials
                .backup_codes_remaining(user_id)
                .await
                .map_err(credential_err)?
        } else {
            0
        };
        let recovery = self
            .credentials
            .get_recovery(user_id)
            .await
            .map_err(credential_err)?;
        let limiter = self
            .ephemeral
            .get_limiter(&user_key(user_id))
            .await
            .map_err(ephemeral_err)?;
        Ok(Status {
            enabled,
            pending: record.as_ref().is_some_and(|r| !r.enabled),
            backup_codes_remaining,
            last_drift: record.filter(|r| r.enabled).map(|r| r.drift),
            failures_since_login: limiter.since_success,
            last_login_at: (limiter.last_success_at > 0).then_some(limiter.last_success_at),
            locked_until: (limiter.locked_until > now).then_some(limiter.locked_until),
            recovery: recovery.map(|r| RecoveryStatus {
                requested_at: r.requested_at,
                not_before: r.not_before,
                approved: r.approved,
                needs_approval: approval_required(&r, &limiter, now),
            }),
        })
    }

    // ----------------------------------------------------------------------------------------
    // Recovery and administration
    // ----------------------------------------------------------------------------------------

    /// Records a request to remove the user's second factor (phone and backup codes lost),
    /// replacing an earlier one. Call it only after the password was verified.
    ///
    /// The request completes after [`Config::recovery_delay_secs`] only if the account is quiet:
    /// if it is locked, or saw a failed second factor since the last successful login, or sees
    /// one while the request waits, only an operator's approval completes it
    /// ([`TwoFactor::approve_recovery`]), never waiting. So the password alone never removes
    /// the second factor of an account under attack.
    ///
    /// Send the returned cancel token to the owner out of band (with the news of the request):
    /// [`TwoFactor::cancel_recovery_with_token`] cancels with it once, without a second factor.
    /// Any successful second-factor login cancels too.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (nothing recorded).
    pub async fn request_recovery(&self, user_id: &str) -> Result<RecoveryRequest, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let enabled = self
            .credentials
            .get_credential(user_id)
            .await
            .map_err(credential_err)?
            .is_some_and(|r| r.enabled);
        if !enabled {
            return Ok(RecoveryRequest::NotEnrolled);
        }
        let limiter = self
            .ephemeral
            .get_limiter(&user_key(user_id))
            .await
            .map_err(ephemeral_err)?;
        let earlier = self
            .credentials
            .get_recovery(user_id)
            .await
            .map_err(credential_err)?;
        // A request replacing one that needed approval needs it too.
        let needs_approval = limiter.locked_until > now
            || limiter.since_success > 0
            || earlier
                .as_ref()
                .is_some_and(|r| approval_required(r, &limiter, now));
        let not_before = now.saturating_add(self.config.recovery_delay_secs);
        let (token, cancel_hash) = new_token();
        self.credentials
            .put_recovery(
                user_id,
                &RecoveryRecord {
                    requested_at: now,
                    not_before,
                    approved: false,
                    needs_approval,
                    failures_at_request: limiter.since_success,
                    cancel_hash,
                },
            )
            .await
            .map_err(credential_err)?;
        self.emit(now, || AuditEvent::RecoveryRequested {
            user_id: user_id.to_owned(),
            not_before,
            needs_approval,
        });
        Ok(RecoveryRequest::Requested {
            not_before,
            needs_approval,
            cancel_token: RecoveryCancelToken(token),
        })
    }

    /// Operator approval of a recovery request (after checking the user's identity out of band):
    /// it may complete at once. Returns whether there was a request.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn approve_recovery(&self, user_id: &str) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let approved = self
            .credentials
            .approve_recovery(user_id)
            .await
            .map_err(credential_err)?;
        if approved {
            self.emit(now, || AuditEvent::RecoveryApproved {
                user_id: user_id.to_owned(),
            });
        }
        Ok(approved)
    }

    /// Cancels a recovery request (the owner from a session authenticated with a second factor,
    /// or an operator). A second-factor login cancels it automatically. Returns whether there was
    /// one.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn cancel_recovery(&self, user_id: &str) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let cancelled = self
            .credentials
            .cancel_recovery(user_id)
            .await
            .map_err(credential_err)?;
        if cancelled {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by: CancelledBy::Request,
            });
        }
        Ok(cancelled)
    }

    /// Cancels the user's recovery request with the token [`TwoFactor::request_recovery`]
    /// returned (the owner, from the link sent out of band; no second factor needed). Single
    /// use. Returns whether it cancelled; a wrong, used or oversized token gives `false`.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn cancel_recovery_with_token(
        &self,
        user_id: &str,
        token: &str,
    ) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let Some(hash) = token_hash(token) else {
            return Ok(false);
        };
        let cancelled = self
            .credentials
            .cancel_recovery_with_token(user_id, &hash)
            .await
            .map_err(credential_err)?;
        if cancelled {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by: CancelledBy::Token,
            });
        }
        Ok(cancelled)
    }

    /// Completes a recovery request if an operator approved it, or if the waiting period has
    /// passed and the account stayed quiet (see [`TwoFactor::request_recovery`]): the second
    /// factor, backup codes, device tokens and limiter state are removed.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (nothing removed).
    pub async fn complete_recovery(
        &self,
        user_id: &str,
    ) -> Result<RecoveryCompletion, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let Some(request) = self
            .credentials
            .get_recovery(user_id)
            .await
            .map_err(credential_err)?
        else {
            return Ok(RecoveryCompletion::NoRequest);
        };
        let limiter = self
            .ephemeral
            .get_limiter(&user_key(user_id))
            .await
            .map_err(ephemeral_err)?;
        let needs_approval = approval_required(&request, &limiter, now);
        if self
            .credentials
            .complete_recovery(user_id, now, needs_approval)
            .await
            .map_err(credential_err)?
        {
            self.after_removal(user_id, now).await?;
            self.emit(now, || AuditEvent::RecoveryCompleted {
                user_id: user_id.to_owned(),
            });
            return Ok(RecoveryCompletion::Completed);
        }
        Ok(
            match self
                .credentials
                .get_recovery(user_id)
                .await
                .map_err(credential_err)?
            {
                Some(r) if !r.approved && (needs_approval || r.needs_approval) => {
                    RecoveryCompletion::AwaitingApproval
                }
                Some(r) => RecoveryCompletion::Waiting {
                    retry_after_secs: r.not_before.saturating_sub(now).max(1),
                },
                None => RecoveryCompletion::NoRequest,
            },
        )
    }

    /// Operator action: removes the user's second factor (pending or enabled), backup codes,
    /// recovery request, device tokens and limiter state at once. Returns whether a credential
    /// existed.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn admin_reset(&self, user_id: &str) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let existed = self
            .credentials
            .delete_credential(user_id)
            .await
            .map_err(credential_err)?;
        self.after_removal(user_id, now).await?;
        self.emit(now, || AuditEvent::AdminReset {
            user_id: user_id.to_owned(),
            existed,
        });
        Ok(existed)
    }

    /// After the second factor was removed by recovery or an operator: the account may have been
    /// in an attacker's hands, so device tokens go, and the budget starts clean.
    async fn after_removal(&self, user_id: &str, now: u64) -> Result<(), ServiceError> {
        let count = self
            .credentials
            .delete_devices(user_id)
            .await
            .map_err(credential_err)?;
        if count > 0 {
            self.emit(now, || AuditEvent::DevicesForgotten {
                user_id: user_id.to_owned(),
                count,
            });
        }
        self.reset_limiter(user_id, now).await
    }

    // ----------------------------------------------------------------------------------------
    // The checks
    // ----------------------------------------------------------------------------------------

    /// Checks a TOTP or backup code for an enabled credential on `budget`, with limits, single
    /// use, audit, and the success side effects (attempt given back, recovery cancelled, lazy
    /// rotation).
    async fn check_code(
        &self,
        user_id: &str,
        code: &str,
        now: u64,
        budget: Budget,
    ) -> Result<Checked, ServiceError> {
        let factor = factor_of(code);
        let attempt = match self.acquire(user_id, budget, factor, now).await? {
            Ok(attempt) => attempt,
            Err(retry_after_secs) => return Ok(Checked::RateLimited(retry_after_secs)),
        };
        match factor {
            Factor::BackupCode => self.check_backup_code(user_id, code, attempt).await,
            Factor::Totp => self.check_totp_login(user_id, code, attempt).await,
        }
    }

    async fn check_totp_login(
        &self,
        user_id: &str,
        code: &str,
        attempt: Attempt,
    ) -> Result<Checked, ServiceError> {
        let now = attempt.now;
        let Some((record, attempt)) = self.load_for_check(attempt, user_id, code, true).await?
        else {
            return Ok(Checked::Rejected);
        };
        let Some((decrypted, m, attempt)) = self
            .decrypt_and_match(attempt, user_id, &record, code)
            .await?
        else {
            return Ok(Checked::Rejected);
        };
        // The code was evaluated: from here on the attempt stays counted unless it succeeds.
        let advanced = self
            .credentials
            .advance_step(user_id, &record.encrypted_secret, m.step, m.drift)
            .await
            .map_err(credential_err)?;
        if !advanced {
            // A valid code for a step already used, or for a credential replaced or disabled
            // since it was read: never twice.
            self.emit(now, || AuditEvent::ReplayRejected {
                user_id: user_id.to_owned(),
            });
            self.counted(attempt, user_id);
            return Ok(Checked::Rejected);
        }
        self.succeed(attempt, user_id).await;
        self.after_second_factor(user_id, now).await?;
        if decrypted.stale_key {
            self.rotate(
                user_id,
                &record.encrypted_secret,
                &decrypted.plaintext,
                &secret_aad(user_id),
                now,
            )
            .await;
        }
        self.emit(now, || AuditEvent::VerificationSucceeded {
            user_id: user_id.to_owned(),
            factor: Factor::Totp,
            drift: m.drift,
        });
        Ok(Checked::Success(Method::Totp { drift: m.drift }))
    }

    async fn check_backup_code(
        &self,
        user_id: &str,
        code: &str,
        attempt: Attempt,
    ) -> Result<Checked, ServiceError> {
        let now = attempt.now;
        let Some(hash) = self.backup_key.hash_input(user_id, code) else {
            self.fail(attempt, user_id, FailureReason::Malformed);
            return Ok(Checked::Rejected);
        };
        // One atomic delete-and-return: of concurrent uses of one code, exactly one gets here. A
        // store error leaves the attempt counted: the store may have compared the code.
        let remaining = self
            .credentials
            .consume_backup_code(user_id, &hash)
            .await
            .map_err(credential_err)?;
        let Some(remaining) = remaining else {
            self.fail(attempt, user_id, FailureReason::WrongCode);
            return Ok(Checked::Rejected);
        };
        self.succeed(attempt, user_id).await;
        self.after_second_factor(user_id, now).await?;
        self.emit(now, || AuditEvent::BackupCodeUsed {
            user_id: user_id.to_owned(),
            remaining,
        });
        self.emit(now, || AuditEvent::VerificationSucceeded {
            user_id: user_id.to_owned(),
            factor: Factor::BackupCode,
            drift: 0,
        });
        Ok(Checked::Success(Method::BackupCode { remaining }))
    }

    /// Loads the user's credential for a code check: the enabled one (`enabled`) or the pending
    /// one (`!enabled`). Without one, does the same work as a wrong code for an enrolled user
    /// (decrypt a blob, check a code), leaves the attempt counted and gives `Ok(None)`. An
    /// infrastructure error before the code was looked at gives the attempt back.
    async fn load_for_check(
        &self,
        attempt: Attempt,
        user_id: &str,
        code: &str,
        enabled: bool,
    ) -> Result<Option<(CredentialRecord, Attempt)>, ServiceError> {
        let record = match self.credentials.get_credential(user_id).await {
            Ok(r) => r.filter(|r| r.enabled == enabled),
            Err(e) => return Err(self.release_on_error(attempt, credential_err(e)).await),
        };
        let Some(record) = record else {
            if let Err(e) = self.dummy_check(user_id, code, attempt.now).await {
                return Err(self.release_on_error(attempt, e).await);
            }
            let reason = if enabled {
                FailureReason::NotEnrolled
            } else {
                FailureReason::NoPendingEnrolment
            };
            self.fail(attempt, user_id, reason);
            return Ok(None);
        };
        Ok(Some((record, attempt)))
    }

    /// Decrypts the user's secret and checks `code` against it. A wrong code leaves the attempt
    /// counted and gives `Ok(None)`; an infrastructure error before the check gives it back.
    async fn decrypt_and_match(
        &self,
        attempt: Attempt,
        user_id: &str,
        record: &CredentialRecord,
        code: &str,
    ) -> Result<Option<(crate::crypto::Decrypted, crate::TotpMatch, Attempt)>, ServiceError> {
        let decrypted = match self
            .cipher
            .decrypt(&record.encrypted_secret, &secret_aad(user_id))
            .await
        {
            Ok(d) => d,
            Err(e) => return Err(self.release_on_error(attempt, cipher_err(e)).await),
        };
        let matched = match self.check_totp(&decrypted.plaintext, record, code, attempt.now) {
            Ok(m) => m,
            Err(e) => return Err(self.release_on_error(attempt, e).await),
        };
        let Some(m) = matched else {
            self.fail(attempt, user_id, FailureReason::WrongCode);
            return Ok(None);
        };
        Ok(Some((decrypted, m, attempt)))
    }

    fn check_totp(
        &self,
        plaintext: &[u8],
        record: &CredentialRecord,
        code: &str,
        now: u64,
    ) -> Result<Option<crate::TotpMatch>, ServiceError> {
        let secret = Secret::from_bytes_unchecked_len(plaintext)
            .map_err(|e| ServiceError::CorruptCredential(Box::new(e)))?;
        let totp = self.totp_for(&secret, record)?;
        let Some(clean) = clean_totp_input(code) else {
            return Ok(None);
        };
        let shift = if self.config.follow_drift && record.enabled {
            let max = i64::from(Window::MAX_STEPS);
            record.drift.clamp(-max, max)
        } else {
            0
        };
        match totp.verify_shifted_at(&clean, now, shift) {
            Ok(TotpOutcome::Valid(m)) => {
                Ok(Some(later_match(&totp, record, &clean, m, now, shift)))
            }
            Ok(TotpOutcome::Invalid) => Ok(None),
            // Wrong length or not digits: an ordinary wrong code.
            Err(crate::OtpError::CodeLength { .. } | crate::OtpError::CodeNotDigits) => Ok(None),
            Err(e) => Err(ServiceError::CorruptCredential(Box::new(e))),
        }
    }

    /// The work of a code check for a user without an enabled credential: decrypt a dummy blob
    /// and verify the code against the dummy secret. The result is thrown away.
    async fn dummy_check(&self, user_id: &str, code: &str, now: u64) -> Result<(), ServiceError> {
        // The same associated-data construction as a real check, so its cost is the same too.
        let _ = secret_aad(user_id);
        let aad = secret_aad("");
        let blob = match self.dummy_blob.get() {
            Some(b) => b,
            None => {
                let blob = self
                    .cipher
                    .encrypt(self.dummy_secret.expose_secret(), &aad)
                    .await
                    .map_err(cipher_err)?;
                self.dummy_blob.get_or_init(|| blob)
            }
        };
        let decrypted = self.cipher.decrypt(blob, &aad).await.map_err(cipher_err)?;
        let record = CredentialRecord {
            encrypted_secret: Vec::new(),
            algorithm: self.config.algorithm,
            digits: self.config.digits,
            period: self.config.period,
            enabled: true,
            last_step: None,
            drift: 0,
            created_at: 0,
        };
        let _ = self.check_totp(&decrypted.plaintext, &record, code, now)?;
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // The attempt budget
    // ----------------------------------------------------------------------------------------

    /// The limiter key and policy of a budget (the keys stores see: `2fa:user:<user id>`,
    /// `2fa:device:<hex of the device token's hash>`).
    fn budget(&self, user_id: &str, budget: Budget) -> (String, RateLimitPolicy) {
        match budget {
            Budget::User => (user_key(user_id), self.config.rate_limit),
            Budget::Device(hash) => {
                let mut key = String::with_capacity(11 + 64);
                key.push_str("2fa:device:");
                key.push_str(&HEXLOWER.encode(&hash));
                (key, self.config.device_rate_limit)
            }
        }
    }

    /// Takes an attempt from `budget` and counts it as a failure, in one atomic store operation.
    /// `Err(retry_after)` when refused: the code must not be evaluated.
    async fn acquire(
        &self,
        user_id: &str,
        budget: Budget,
        factor: Factor,
        now: u64,
    ) -> Result<Result<Attempt, u64>, ServiceError> {
        let (key, policy) = self.budget(user_id, budget);
        let update = self
            .ephemeral
            .update_limiter(&key, policy.expire_at(now), move |s| {
                policy.acquire(s, now).0
            })
            .await
            .map_err(ephemeral_err)?;
        match policy.decide(update.before, now) {
            Decision::Allowed => Ok(Ok(Attempt {
                key,
                policy,
                device: matches!(budget, Budget::Device(_)),
                factor,
                now,
                counted: update.after,
            })),
            Decision::Refused { retry_after_secs } => {
                self.emit(now, || AuditEvent::RateLimited {
                    user_id: user_id.to_owned(),
                    factor,
                    retry_after_secs,
                });
                Ok(Err(retry_after_secs))
            }
        }
    }

    /// Settles an attempt whose code was wrong: it is already counted, so this only audits.
    fn fail(&self, attempt: Attempt, user_id: &str, reason: FailureReason) {
        self.emit(attempt.now, || AuditEvent::VerificationFailed {
            user_id: Some(user_id.to_owned()),
            factor: attempt.factor,
            reason,
        });
        self.counted(attempt, user_id);
    }

    /// Leaves an evaluated attempt counted as a failure and tells the owner's audit trail.
    fn counted(&self, attempt: Attempt, user_id: &str) {
        let Attempt {
            device,
            factor,
            now,
            counted,
            ..
        } = attempt;
        if !device {
            self.emit(now, || AuditEvent::SecondFactorFailed {
                user_id: user_id.to_owned(),
                failures_since_login: counted.since_success,
            });
        }
        if counted.locked_until > now {
            self.emit(now, || AuditEvent::LockedOut {
                user_id: user_id.to_owned(),
                factor,
                failures: counted.failures,
                until: counted.locked_until,
            });
        }
    }

    /// Settles an attempt whose code was accepted: gives it back and records the login (on the
    /// user's budget too, when it came from a device). The code is already consumed, so a store
    /// failure here is logged, not returned: it only leaves the limiter stricter.
    async fn succeed(&self, attempt: Attempt, user_id: &str) {
        let Attempt {
            key,
            policy,
            device,
            now,
            ..
        } = attempt;
        self.update_best_effort(&key, policy, now, move |s| policy.succeed(s, now))
            .await;
        if device {
            let policy = self.config.rate_limit;
            self.update_best_effort(&user_key(user_id), policy, now, move |s| {
                policy.note_success(s, now)
            })
            .await;
        }
    }

    /// Gives an attempt back after an infrastructure error that came before its code was
    /// evaluated (best effort) and returns the error.
    async fn release_on_error(&self, attempt: Attempt, error: ServiceError) -> ServiceError {
        let Attempt {
            key, policy, now, ..
        } = attempt;
        self.update_best_effort(&key, policy, now, move |s| policy.release(s, now))
            .await;
        error
    }

    async fn update_best_effort<F>(&self, key: &str, policy: RateLimitPolicy, now: u64, update: F)
    where
        F: Fn(LimiterState) -> LimiterState + Send + Sync,
    {
        if let Err(e) = self
            .ephemeral
            .update_limiter(key, policy.expire_at(now), update)
            .await
        {
            tracing::warn!(target: "twofactor::service", error = %e, "could not update a rate limiter");
        }
    }

    /// Forgets the user's budget (recovery, admin reset, password change): a clean state.
    async fn reset_limiter(&self, user_id: &str, now: u64) -> Result<(), ServiceError> {
        let policy = self.config.rate_limit;
        self.ephemeral
            .update_limiter(&user_key(user_id), policy.expire_at(now), |_| {
                LimiterState::default()
            })
            .await
            .map_err(ephemeral_err)?;
        Ok(())
    }

    /// A second factor was proved: a pending recovery request was not the owner's wish.
    ///
    /// # Errors
    /// A store failure is returned: the owner's login must not leave an attacker's recovery
    /// request standing unnoticed.
    async fn after_second_factor(&self, user_id: &str, now: u64) -> Result<(), ServiceError> {
        if self
            .credentials
            .cancel_recovery(user_id)
            .await
            .map_err(credential_err)?
        {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by: CancelledBy::SecondFactorLogin,
            });
        }
        Ok(())
    }
    /// Lazy key rotation: re-encrypt under the current key, compare-and-set. Best effort.
    async fn rotate(&self, user_id: &str, old: &[u8], plaintext: &[u8], aad: &[u8], now: u64) {
        let new = match self.cipher.encrypt(plaintext, aad).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(target: "twofactor::service", error = %e, "could not re-encrypt a secret under the current key");
                return;
            }
        };
        match self.credentials.rewrite_secret(user_id, old, &new).await {
            Ok(true) => self.emit(now, || AuditEvent::SecretReencrypted {
                user_id: user_id.to_owned(),
            }),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(target: "twofactor::service", error = %e, "could not store a re-encrypted secret");
            }
        }
    }
}

/// Codes repeat: two steps of one window share a code once in 10^digits pairs. When the code
/// matched a step already used, look for a later step of the window it also matches before the
/// atomic advance calls it a replay; otherwise the owner's fresh code would be refused. The
/// stored `last_step` only picks the candidate: `advance_step` still decides.
fn later_match(
    totp: &Totp,
    record: &CredentialRecord,
    code: &str,
    m: crate::TotpMatch,
    now: u64,
    shift: i64,
) -> crate::TotpMatch {
    use subtle::ConstantTimeEq;
    let Some(last) = record.last_step.filter(|&l| m.step <= l) else {
        return m;
    };
    let Ok(current) = totp.step_at(now) else {
        return m;
    };
    let Some(end) = current
        .checked_add_signed(shift)
        .and_then(|c| c.checked_add(u64::from(totp.window().future())))
    else {
        return m;
    };
    let mut found = m;
    for step in last.saturating_add(1)..=end {
        let hit: bool = totp
            .generate_step(step)
            .as_str()
            .as_bytes()
            .ct_eq(code.as_bytes())
            .into();
        if hit && found.step <= last {
            let drift = i64::try_from(i128::from(step) - i128::from(current)).unwrap_or(0);
            found = crate::TotpMatch { step, drift };
        }
    }
    found
}

/// Whether a recovery request may complete only with an operator's approval: it was made under
/// attack, or the account is locked, or more second factors failed since it was made.
fn approval_required(request: &RecoveryRecord, limiter: &LimiterState, now: u64) -> bool {
    request.needs_approval
        || limiter.locked_until > now
        || limiter.since_success > request.failures_at_request
}

/// The factor a typed code is routed to, by shape.
fn factor_of(code: &str) -> Factor {
    if code.len() <= MAX_CODE_INPUT && backup_codes::looks_like_backup_code(code) {
        Factor::BackupCode
    } else {
        Factor::Totp
    }
}
