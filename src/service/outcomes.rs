//! What the service's operations return.

use core::fmt;

use zeroize::Zeroizing;

use super::tokens::{ChallengeToken, DeviceToken, FactorProof, RecoveryCancelToken};
use crate::backup_codes::BackupCode;
use crate::secret::Secret;
use crate::uri::OtpAuthUri;

/// What a user needs to add the account to an authenticator app. Show it once, over HTTPS, to the
/// user who is enrolling; never log it (`Debug` is redacted).
pub struct Enrolment {
    pub(crate) uri: OtpAuthUri,
    pub(crate) scheduled: Option<super::ScheduledChange>,
}

impl Enrolment {
    /// For a replacement asked for with a new factor
    /// ([`replace_authenticator`](super::TwoFactor::replace_authenticator)): the scheduled
    /// removal of the old authenticator (tell the user when it takes effect). `None` otherwise.
    #[must_use]
    pub fn scheduled_removal(&self) -> Option<&super::ScheduledChange> {
        self.scheduled.as_ref()
    }

    /// The new secret. Never log it.
    #[must_use]
    pub fn secret(&self) -> &Secret {
        self.uri.secret()
    }

    /// The secret in base32, for users who type it in by hand (zeroized on drop).
    #[must_use]
    pub fn secret_base32(&self) -> Zeroizing<String> {
        self.uri.secret().to_base32()
    }

    /// The otpauth:// URI (contains the secret; zeroized on drop).
    #[must_use]
    pub fn otpauth_uri(&self) -> Zeroizing<String> {
        self.uri.to_uri()
    }

    /// The parsed URI, with issuer, account and parameters.
    #[must_use]
    pub fn uri(&self) -> &OtpAuthUri {
        &self.uri
    }

    /// The QR code of the URI, to render as SVG, PNG or a `data:` URL (feature `qr`).
    ///
    /// # Errors
    /// [`QrError::DataTooLong`](crate::error::QrError::DataTooLong) if the URI does not fit (not
    /// possible for the lengths the service accepts, but reported rather than assumed).
    #[cfg(feature = "qr")]
    #[cfg_attr(docsrs, doc(cfg(feature = "qr")))]
    pub fn qr(&self) -> Result<crate::qr::Qr, crate::error::QrError> {
        crate::qr::Qr::new(&self.uri)
    }
}

impl fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Enrolment([REDACTED])")
    }
}

/// The result of [`TwoFactor::start_enrolment`](super::TwoFactor::start_enrolment).
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum EnrolmentStart {
    /// A new pending secret was stored (replacing any pending one): show it and ask for a code.
    Started(Enrolment),
    /// The user already has 2FA on: add another authenticator with
    /// [`add_authenticator`](super::TwoFactor::add_authenticator) or replace one with
    /// [`replace_authenticator`](super::TwoFactor::replace_authenticator), both of which need a
    /// code from an existing factor.
    AlreadyEnabled,
}

/// The result of [`TwoFactor::confirm_enrolment`](super::TwoFactor::confirm_enrolment).
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum ConfirmOutcome {
    /// 2FA is on. Show the backup codes once and tell the user to keep them safe: they are not
    /// stored anywhere in readable form.
    Confirmed {
        /// The new backup codes.
        backup_codes: Vec<BackupCode>,
    },
    /// An authenticator was added to those the user already had (the backup codes stay as they
    /// were), and the one it replaces, if any, was removed in the same step.
    Added {
        /// The new authenticator's id.
        authenticator: String,
        /// The id of the authenticator removed in its place, if this was a replacement and that
        /// one still existed.
        replaced: Option<String>,
    },
    /// The input cannot be a code: empty, a letter or another character that is not a digit,
    /// the wrong number of digits, or a backup code of the wrong length or alphabet (spaces and
    /// dashes are ignored). Nothing was spent, evaluated or counted: tell the user "that is not
    /// a {digits}-digit code".
    Malformed {
        /// How many digits the user's codes have.
        digits: u32,
    },
    /// Wrong code, or nothing pending to confirm, or the user reached
    /// [`Config::max_authenticators`](super::Config::max_authenticators) meanwhile.
    Rejected,
    /// Too many attempts; nothing was evaluated.
    RateLimited {
        /// Seconds until an attempt may be allowed again.
        retry_after_secs: u64,
    },
    /// The code is wrong for the parameters the QR code asked for (algorithm, digits, period)
    /// but right for SHA-1 / 6 digits / 30 s: the user's app ignored them, and its codes would
    /// never log in. Nothing was turned on: tell the user, and offer to enrol again with the
    /// defaults (a [`Config`](super::Config) with them) or another app.
    AppIgnoredSettings,
}

/// The result of [`TwoFactor::start_login`](super::TwoFactor::start_login).
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum LoginStart {
    /// The user has no enabled second factor: the password was enough.
    NotRequired,
    /// Ask for a code, and call [`complete_login`](super::TwoFactor::complete_login) with this
    /// challenge and the code.
    Required {
        /// The challenge token.
        challenge: ChallengeToken,
        /// Unix time the challenge expires.
        expires_at: u64,
    },
    /// The browser presented a device token the user chose to trust
    /// ([`Remember::Trusted`](super::Remember::Trusted)), still trusted: the password was enough
    /// this time. Only a request with [`StartLogin::device`](super::StartLogin::device) gets it
    /// (also for
    /// a user whose 2FA is off, where the password is enough anyway: turning 2FA off revokes
    /// the tokens, so this is rare).
    TrustedDevice,
}

/// How a user proved the second factor.
///
/// With the `serde` feature: `{"type": "totp", "drift": 0}` or
/// `{"type": "backup_code", "remaining": 7}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Method {
    /// A TOTP code.
    Totp {
        /// The code's step minus the current step (−1: the code was from the previous step).
        drift: i64,
    },
    /// A backup code, now used up.
    BackupCode {
        /// Unused backup codes left: suggest regenerating when this is low.
        remaining: u32,
    },
}

/// The result of a second-factor check ([`complete_login`](super::TwoFactor::complete_login),
/// [`verify`](super::TwoFactor::verify)).
///
/// With the `serde` feature it serialises (for logs and API responses) as
/// `{"outcome": "success", "user_id": ..., "method": {...}}`, `{"outcome": "rejected"}` or
/// `{"outcome": "rate_limited", "retry_after_secs": 60}`, **without** the device token: that is a
/// credential, to be set as a cookie, never written into a body or a log. There is no
/// `Deserialize`: an outcome is made by a check, not read from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "outcome", rename_all = "snake_case"))]
#[must_use]
#[non_exhaustive]
pub enum VerifyOutcome {
    /// The code was right: let the user in.
    Success {
        /// Whose code it was.
        user_id: String,
        /// TOTP (with drift) or backup code (with the number left).
        method: Method,
        /// A new device token to store on this browser in place of its old one: from
        /// [`complete_login`](super::TwoFactor::complete_login) with
        /// [`Remember::Trusted`](super::Remember::Trusted), or with
        /// [`Remember::Device`](super::Remember::Device) when the browser had no valid token or
        /// one past half its life. Never serialised.
        #[cfg_attr(feature = "serde", serde(skip))]
        device_token: Option<DeviceToken>,
        /// Proof of this second factor, for
        /// [`password_changed`](super::TwoFactor::password_changed) in the same request. Never
        /// serialised.
        #[cfg_attr(feature = "serde", serde(skip))]
        proof: FactorProof,
    },
    /// The input cannot be a code: empty, a letter or another character that is not a digit,
    /// the wrong number of digits, or a backup code of the wrong length or alphabet (spaces and
    /// dashes are ignored). Nothing was spent, evaluated or counted: tell the user "that is not
    /// a {digits}-digit code".
    Malformed {
        /// How many digits the user's codes have.
        digits: u32,
    },
    /// Refused. Wrong code, replayed code, unknown or expired challenge, user without 2FA: all
    /// look the same from outside on purpose. The reason is in the audit trail only.
    Rejected,
    /// Too many attempts: refused without evaluating the code, even if it was right.
    RateLimited {
        /// Seconds until an attempt may be allowed again: send it as `Retry-After`.
        retry_after_secs: u64,
    },
}

impl VerifyOutcome {
    /// `true` for [`VerifyOutcome::Success`].
    #[must_use]
    pub const fn is_success(&self) -> bool {
        matches!(self, Self::Success { .. })
    }
}

/// The result of [`TwoFactor::disable`](super::TwoFactor::disable).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "outcome", rename_all = "snake_case"))]
#[must_use]
#[non_exhaustive]
pub enum DisableOutcome {
    /// 2FA is off: the secret, backup codes and any recovery request are gone.
    Disabled,
    /// The code came from a new factor: 2FA goes off at `not_before` unless an older factor, a
    /// trusted browser or the owner's notice token cancels it (see
    /// [`scheduled_changes`](super::TwoFactor::scheduled_changes)).
    Scheduled {
        /// The scheduled change's id.
        change: String,
        /// Unix time it takes effect.
        not_before: u64,
    },
    /// The input cannot be a code: empty, a letter or another character that is not a digit,
    /// the wrong number of digits, or a backup code of the wrong length or alphabet (spaces and
    /// dashes are ignored). Nothing was spent, evaluated or counted: tell the user "that is not
    /// a {digits}-digit code".
    Malformed {
        /// How many digits the user's codes have.
        digits: u32,
    },
    /// Wrong code (or no 2FA to disable).
    Rejected,
    /// Too many attempts.
    RateLimited {
        /// Seconds until an attempt may be allowed again.
        retry_after_secs: u64,
    },
}

/// The result of [`TwoFactor::regenerate_backup_codes`](super::TwoFactor::regenerate_backup_codes).
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum RegenerateOutcome {
    /// The old codes are void; show these once.
    Regenerated {
        /// The new backup codes.
        backup_codes: Vec<BackupCode>,
    },
    /// The code came from a new factor: show these once, and say they replace the old ones at
    /// `not_before` (the old ones work until then) unless the change is cancelled.
    Scheduled {
        /// The new backup codes, valid from `not_before`.
        backup_codes: Vec<BackupCode>,
        /// The scheduled change's id.
        change: String,
        /// Unix time the new set takes effect.
        not_before: u64,
    },
    /// A new set is already scheduled (and was shown when it was asked for): nothing changed.
    AlreadyScheduled {
        /// The scheduled change's id.
        change: String,
        /// Unix time that set takes effect.
        not_before: u64,
    },
    /// The input cannot be a code: empty, a letter or another character that is not a digit,
    /// the wrong number of digits, or a backup code of the wrong length or alphabet (spaces and
    /// dashes are ignored). Nothing was spent, evaluated or counted: tell the user "that is not
    /// a {digits}-digit code".
    Malformed {
        /// How many digits the user's codes have.
        digits: u32,
    },
    /// Wrong code (or no 2FA).
    Rejected,
    /// Too many attempts.
    RateLimited {
        /// Seconds until an attempt may be allowed again.
        retry_after_secs: u64,
    },
}

/// A user's 2FA state, for settings pages and support tools.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Status {
    /// 2FA is on (a confirmed secret).
    pub enabled: bool,
    /// An enrolment was started and not confirmed (2FA is not on because of it).
    pub pending: bool,
    /// How many enabled authenticators the user has (0 when 2FA is off).
    pub authenticators: u32,
    /// Unused backup codes.
    pub backup_codes_remaining: u32,
    /// Drift in steps of the last accepted TOTP code (`None` if 2FA is off). A steady ±1 or more
    /// means the phone's clock is off: tell the user to turn on automatic time.
    pub last_drift: Option<i64>,
    /// Failed second-factor attempts on the user's budget since the last successful login
    /// (attempts from known devices not included). Tell the owner: "3 failed attempts since your
    /// last login: if this wasn't you, change your password".
    pub failures_since_login: u32,
    /// The last successful second-factor login (Unix seconds), if the limiter remembers one.
    pub last_login_at: Option<u64>,
    /// Unix time until which the per-user budget refuses attempts, if it is locked now.
    pub locked_until: Option<u64>,
    /// A recovery request in progress.
    pub recovery: Option<RecoveryStatus>,
    /// Changes of factors scheduled and not yet in effect (see
    /// [`scheduled_changes`](super::TwoFactor::scheduled_changes)).
    #[cfg_attr(feature = "serde", serde(default))]
    pub scheduled_changes: u32,
}

/// A recovery request in progress, as [`Status`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct RecoveryStatus {
    /// When the request was made.
    pub requested_at: u64,
    /// When it may complete without approval (unless `needs_approval`).
    pub not_before: u64,
    /// Whether an operator approved it.
    pub approved: bool,
    /// Whether it completes only with an operator's approval (the account saw failed second
    /// factors or a lockout).
    pub needs_approval: bool,
}

/// The result of [`TwoFactor::request_recovery`](super::TwoFactor::request_recovery).
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum RecoveryRequest {
    /// Recorded (or, when one was already pending, that one kept): it completes after an
    /// operator approves it, or at `not_before` unless `needs_approval`, unless the owner cancels
    /// it (any second factor, trusted browser or device token of the owner does, and so does a
    /// notice token).
    Requested {
        /// Unix time the request may complete without approval.
        not_before: u64,
        /// Only an operator can complete it: no verified second channel came with it, or the
        /// account saw failed second factors or a lockout.
        needs_approval: bool,
        /// The notice token of this request, the same as in the
        /// [`AuditEvent::RecoveryRequested`](crate::audit::AuditEvent::RecoveryRequested) event:
        /// send it to **every** channel of the owner, never to the client that asked. It cancels
        /// the request, or locks the account down.
        cancel_token: RecoveryCancelToken,
    },
    /// The user has no enabled second factor: nothing to recover.
    NotEnrolled,
}

/// The result of [`TwoFactor::complete_recovery`](super::TwoFactor::complete_recovery).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "outcome", rename_all = "snake_case"))]
#[must_use]
#[non_exhaustive]
pub enum RecoveryCompletion {
    /// The second factor was removed: the user can log in with the password and enrol again.
    Completed,
    /// Not approved and the waiting period has not passed.
    Waiting {
        /// Seconds until it may complete.
        retry_after_secs: u64,
    },
    /// The account saw failed second factors or a lockout while the request was open (or before
    /// it): it completes only with an operator's approval, never by waiting.
    AwaitingApproval,
    /// No recovery request (never made, cancelled, or already completed).
    NoRequest,
}
