//! Audit events: every state change and every verification result of the service.
//!
//! Each event goes to `tracing` (target `twofactor::audit`, level INFO, WARN for security
//! signals) and to the [`AuditSink`] the application gave
//! [`TwoFactor::with_audit_sink`](crate::service::TwoFactor::with_audit_sink), if any. Use the sink
//! to keep an audit trail and to tell users about security-relevant events: a recovery request on
//! their account (so they can cancel it), a lockout, a backup code used, 2FA disabled.
//!
//! Events never carry a secret, a code, a backup code, a challenge token or an otpauth URI: only
//! user ids, counts, drifts and times.
//!
//! # Notices
//!
//! Some events are notices the owner must receive: [`AuditEvent::RecoveryRequested`],
//! [`AuditEvent::ChangeScheduled`], [`AuditEvent::AuthenticatorAdded`] and
//! [`AuditEvent::BackupCodeUsed`]. They carry a
//! [`NoticeToken`]: send it, as a "this wasn't me" link, to **every** channel you have for the
//! owner (e-mail, SMS, push), never to the client whose request caused it. With it the owner
//! cancels the request or change, or locks the account down
//! ([`TwoFactor::lock_down`](crate::service::TwoFactor::lock_down)). It is the one secret an event
//! holds: its `Debug` is redacted, so the `tracing` output and [`fmt::Display`] never show it, and
//! the `serde` form leaves it out (store events without it). The reason a verification failed appears here and nowhere
//! else: callers only see [`Rejected`](crate::service::VerifyOutcome::Rejected).

use core::fmt;

pub use crate::service::NoticeToken;

/// Which kind of code an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Factor {
    /// A TOTP code from an authenticator app.
    Totp,
    /// A single-use backup code.
    BackupCode,
}

impl Factor {
    /// `"totp"` or `"backup_code"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::BackupCode => "backup_code",
        }
    }
}

/// Why a verification was rejected. Only for the audit trail: the caller of the service sees the
/// same `Rejected` for all of these, so an attacker cannot tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum FailureReason {
    /// The code matched no step of the window, or no stored backup code.
    WrongCode,
    /// The input was neither a well-formed TOTP code nor a backup code.
    Malformed,
    /// The user has no enabled second factor (or does not exist).
    NotEnrolled,
    /// No pending enrolment to confirm (never started, already confirmed, or replaced).
    NoPendingEnrolment,
    /// The login challenge is unknown, expired or already used.
    UnknownChallenge,
    /// The state changed under the request (e.g. enrolment replaced, 2FA disabled concurrently).
    Superseded,
    /// A valid TOTP code for a step already used (or for a credential replaced since).
    Replayed,
}

impl FailureReason {
    /// A short snake_case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::WrongCode => "wrong_code",
            Self::Malformed => "malformed",
            Self::NotEnrolled => "not_enrolled",
            Self::NoPendingEnrolment => "no_pending_enrolment",
            Self::UnknownChallenge => "unknown_challenge",
            Self::Superseded => "superseded",
            Self::Replayed => "replayed",
        }
    }
}

/// What cancelled a recovery request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum CancelledBy {
    /// An explicit `cancel_recovery` call (the owner, or an operator).
    Request,
    /// The owner logged in with a second factor, proving they still have it.
    SecondFactorLogin,
    /// The single-use cancel token sent to the owner out of band.
    Token,
    /// The application reported a password change with a fresh second factor.
    PasswordChange,
    /// A browser the owner trusts logged in.
    TrustedDevice,
    /// A browser that completed a second factor before presented its device token.
    KnownDevice,
    /// The owner locked the account down with a notice token.
    LockDown,
}

/// Something the service did or refused. See the [module docs](self).
///
/// With the `serde` feature an event is a JSON object tagged by [`AuditEvent::kind`]:
/// `{"event": "backup_code_used", "user_id": "u1", "remaining": 7}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "event", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum AuditEvent {
    /// A new secret was generated and stored as pending (replacing any pending one).
    EnrolmentStarted {
        /// The user.
        user_id: String,
    },
    /// The pending secret was confirmed by a valid code: 2FA is on, backup codes were issued.
    EnrolmentConfirmed {
        /// The user.
        user_id: String,
        /// Drift of the confirming code, in steps.
        drift: i64,
        /// Number of backup codes issued.
        backup_codes: u32,
    },
    /// A code was accepted.
    VerificationSucceeded {
        /// The user.
        user_id: String,
        /// TOTP or backup code.
        factor: Factor,
        /// Drift of an accepted TOTP code in steps (0 for backup codes).
        drift: i64,
    },
    /// A code was rejected (not a replay; see [`AuditEvent::ReplayRejected`]).
    VerificationFailed {
        /// The user, when known (`None` for an unknown login challenge).
        user_id: Option<String>,
        /// TOTP or backup code (by the shape of the input).
        factor: Factor,
        /// Why. Never shown to the caller.
        reason: FailureReason,
    },
    /// A valid TOTP code for a step not later than the last accepted one: a replay, or the owner
    /// submitting the same code twice.
    ReplayRejected {
        /// The user.
        user_id: String,
    },
    /// An attempt was refused by the rate limiter without evaluating the code.
    RateLimited {
        /// The user.
        user_id: String,
        /// Which limiter refused.
        factor: Factor,
        /// Seconds until an attempt may be allowed again.
        retry_after_secs: u64,
    },
    /// A failure started a lockout: tell the owner, someone may be guessing.
    LockedOut {
        /// The user.
        user_id: String,
        /// The factor of the attempt that locked.
        factor: Factor,
        /// Failures counted by the limiter (forgiven slowly, not reset by a success).
        failures: u32,
        /// Unix time the lockout ends.
        until: u64,
    },
    /// The password was right (a challenge or a session exists) but the second factor failed on
    /// the user's shared budget. Tell the owner when it keeps happening: someone may have the
    /// password.
    SecondFactorFailed {
        /// The user.
        user_id: String,
        /// Failed attempts since the last successful login, this one included.
        failures_since_login: u32,
    },
    /// A device token was issued to a browser that completed a login.
    DeviceRemembered {
        /// The user.
        user_id: String,
    },
    /// An authenticator was added to those of a user who had 2FA on (after a code from an
    /// existing factor). Tell the owner: "a new authenticator was added to your account".
    AuthenticatorAdded {
        /// The user.
        user_id: String,
        /// The new authenticator's id.
        authenticator: String,
        /// The authenticator it replaced, removed in the same step.
        replaced: Option<String>,
        /// The owner's notice token (see [Notices](self#notices)); `None` if it could not be
        /// stored. Never serialised.
        #[cfg_attr(feature = "serde", serde(skip))]
        notice: Option<NoticeToken>,
    },
    /// A change of factors was scheduled because the code that asked for it came from a new
    /// factor: tell the owner at once, with the notice token (see [Notices](self#notices)).
    ChangeScheduled {
        /// The user.
        user_id: String,
        /// The change's id.
        change: String,
        /// `"remove_authenticator"`, `"regenerate_backup_codes"` or `"disable"`.
        kind: String,
        /// Unix time it takes effect unless cancelled.
        not_before: u64,
        /// The owner's notice token. Never serialised.
        #[cfg_attr(feature = "serde", serde(skip))]
        notice: NoticeToken,
    },
    /// A scheduled change took effect (`applied`), or found nothing left to do (the
    /// authenticator already gone, or the user's last).
    ChangeApplied {
        /// The user.
        user_id: String,
        /// The change's id.
        change: String,
        /// Its kind, as in [`AuditEvent::ChangeScheduled`].
        kind: String,
        /// Whether it changed anything.
        applied: bool,
    },
    /// Scheduled changes were cancelled.
    ChangesCancelled {
        /// The user.
        user_id: String,
        /// How many.
        count: u64,
        /// By what.
        by: CancelledBy,
    },
    /// The owner locked the account down with a notice token: trusted browsers and device
    /// tokens ended, recovery requests and scheduled changes cancelled, new authenticators
    /// removed.
    LockedDown {
        /// The user.
        user_id: String,
        /// Device tokens revoked.
        devices: u64,
        /// Scheduled changes cancelled.
        changes: u64,
        /// Whether a recovery request was cancelled.
        recovery: bool,
        /// Ids of the authenticators removed (added within the change delay).
        authenticators_removed: Vec<String>,
    },
    /// An authenticator was removed (after a code from a factor that stays).
    AuthenticatorRemoved {
        /// The user.
        user_id: String,
        /// The removed authenticator's id.
        authenticator: String,
    },
    /// The user chose to trust a browser: logins from it skip the second factor until the trust
    /// expires or is revoked.
    DeviceTrusted {
        /// The user.
        user_id: String,
        /// Unix time the trust ends.
        trusted_until: u64,
    },
    /// A login skipped the second factor because the browser is trusted.
    TrustedDeviceUsed {
        /// The user.
        user_id: String,
    },
    /// Device tokens were revoked.
    DevicesForgotten {
        /// The user.
        user_id: String,
        /// How many.
        count: u64,
    },
    /// The application reported a password change: the lockout and any recovery request ended.
    PasswordChanged {
        /// The user.
        user_id: String,
    },
    /// A backup code was used: a notice (see [Notices](self#notices)), since a stolen code is
    /// how an attacker who has the password gets in.
    BackupCodeUsed {
        /// The user.
        user_id: String,
        /// Unused backup codes left.
        remaining: u32,
        /// The owner's notice token; `None` if it could not be stored. Never serialised.
        #[cfg_attr(feature = "serde", serde(skip))]
        notice: Option<NoticeToken>,
    },
    /// The backup codes were replaced by a new set.
    BackupCodesRegenerated {
        /// The user.
        user_id: String,
        /// Number of new codes.
        count: u32,
    },
    /// The owner turned 2FA off (with a valid code).
    Disabled {
        /// The user.
        user_id: String,
    },
    /// An operator removed the user's second factor.
    AdminReset {
        /// The user.
        user_id: String,
        /// Whether a credential existed.
        existed: bool,
    },
    /// Everything the crate held for the user was deleted
    /// ([`TwoFactor::delete_user`](crate::service::TwoFactor::delete_user)): the account is
    /// gone, or its data erased on request.
    UserDeleted {
        /// The user.
        user_id: String,
        /// Whether a credential (pending or enabled) existed.
        existed: bool,
        /// Device tokens removed.
        devices: u64,
    },
    /// A credential made elsewhere was imported
    /// ([`TwoFactor::import_credential`](crate::service::TwoFactor::import_credential)): 2FA is on
    /// with the user's existing authenticator entry.
    CredentialImported {
        /// The user.
        user_id: String,
        /// Whether an enabled credential was replaced (only when the import asked to).
        replaced: bool,
    },
    /// Someone asked to remove the second factor because phone and backup codes are lost. Tell
    /// the owner at once: if it was not them, logging in with a second factor cancels it.
    RecoveryRequested {
        /// The user.
        user_id: String,
        /// Unix time the request takes effect without an operator's approval.
        not_before: u64,
        /// Whether only an operator's approval can complete it.
        needs_approval: bool,
        /// The owner's notice token (see [Notices](self#notices)): it cancels this request or
        /// locks the account down. Never serialised.
        #[cfg_attr(feature = "serde", serde(skip))]
        notice: NoticeToken,
    },
    /// An operator approved a recovery request.
    RecoveryApproved {
        /// The user.
        user_id: String,
    },
    /// A recovery request was cancelled.
    RecoveryCancelled {
        /// The user.
        user_id: String,
        /// By whom.
        by: CancelledBy,
    },
    /// A recovery request took effect: the second factor was removed.
    RecoveryCompleted {
        /// The user.
        user_id: String,
    },
    /// The encrypted secret was rewritten under the current key (lazy rotation).
    SecretReencrypted {
        /// The user.
        user_id: String,
    },
}

impl AuditEvent {
    /// The notice token of a notice event (see [Notices](self#notices)), to send to every
    /// channel of the owner.
    #[must_use]
    pub fn notice(&self) -> Option<&NoticeToken> {
        match self {
            Self::RecoveryRequested { notice, .. } | Self::ChangeScheduled { notice, .. } => {
                Some(notice)
            }
            Self::AuthenticatorAdded { notice, .. } | Self::BackupCodeUsed { notice, .. } => {
                notice.as_ref()
            }
            _ => None,
        }
    }

    /// A short snake_case name of the event, e.g. `"verification_failed"`.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::EnrolmentStarted { .. } => "enrolment_started",
            Self::EnrolmentConfirmed { .. } => "enrolment_confirmed",
            Self::VerificationSucceeded { .. } => "verification_succeeded",
            Self::VerificationFailed { .. } => "verification_failed",
            Self::ReplayRejected { .. } => "replay_rejected",
            Self::RateLimited { .. } => "rate_limited",
            Self::LockedOut { .. } => "locked_out",
            Self::SecondFactorFailed { .. } => "second_factor_failed",
            Self::DeviceRemembered { .. } => "device_remembered",
            Self::DevicesForgotten { .. } => "devices_forgotten",
            Self::AuthenticatorAdded { .. } => "authenticator_added",
            Self::AuthenticatorRemoved { .. } => "authenticator_removed",
            Self::ChangeScheduled { .. } => "change_scheduled",
            Self::ChangeApplied { .. } => "change_applied",
            Self::ChangesCancelled { .. } => "changes_cancelled",
            Self::LockedDown { .. } => "locked_down",
            Self::DeviceTrusted { .. } => "device_trusted",
            Self::TrustedDeviceUsed { .. } => "trusted_device_used",
            Self::PasswordChanged { .. } => "password_changed",
            Self::BackupCodeUsed { .. } => "backup_code_used",
            Self::BackupCodesRegenerated { .. } => "backup_codes_regenerated",
            Self::Disabled { .. } => "disabled",
            Self::AdminReset { .. } => "admin_reset",
            Self::UserDeleted { .. } => "user_deleted",
            Self::CredentialImported { .. } => "credential_imported",
            Self::RecoveryRequested { .. } => "recovery_requested",
            Self::RecoveryApproved { .. } => "recovery_approved",
            Self::RecoveryCancelled { .. } => "recovery_cancelled",
            Self::RecoveryCompleted { .. } => "recovery_completed",
            Self::SecretReencrypted { .. } => "secret_reencrypted",
        }
    }

    /// The user the event is about, if known.
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::VerificationFailed { user_id, .. } => user_id.as_deref(),
            Self::EnrolmentStarted { user_id }
            | Self::EnrolmentConfirmed { user_id, .. }
            | Self::VerificationSucceeded { user_id, .. }
            | Self::ReplayRejected { user_id }
            | Self::RateLimited { user_id, .. }
            | Self::LockedOut { user_id, .. }
            | Self::SecondFactorFailed { user_id, .. }
            | Self::DeviceRemembered { user_id }
            | Self::DevicesForgotten { user_id, .. }
            | Self::AuthenticatorAdded { user_id, .. }
            | Self::AuthenticatorRemoved { user_id, .. }
            | Self::ChangeScheduled { user_id, .. }
            | Self::ChangeApplied { user_id, .. }
            | Self::ChangesCancelled { user_id, .. }
            | Self::LockedDown { user_id, .. }
            | Self::DeviceTrusted { user_id, .. }
            | Self::TrustedDeviceUsed { user_id }
            | Self::PasswordChanged { user_id }
            | Self::BackupCodeUsed { user_id, .. }
            | Self::BackupCodesRegenerated { user_id, .. }
            | Self::Disabled { user_id }
            | Self::AdminReset { user_id, .. }
            | Self::UserDeleted { user_id, .. }
            | Self::CredentialImported { user_id, .. }
            | Self::RecoveryRequested { user_id, .. }
            | Self::RecoveryApproved { user_id }
            | Self::RecoveryCancelled { user_id, .. }
            | Self::RecoveryCompleted { user_id }
            | Self::SecretReencrypted { user_id } => Some(user_id),
        }
    }

    /// Security signals worth a warning: failures, replays, rate limits, lockouts, resets,
    /// recovery requests, changes of factors and lock-downs.
    #[must_use]
    pub const fn is_warning(&self) -> bool {
        matches!(
            self,
            Self::VerificationFailed { .. }
                | Self::ReplayRejected { .. }
                | Self::RateLimited { .. }
                | Self::LockedOut { .. }
                | Self::SecondFactorFailed { .. }
                | Self::AdminReset { .. }
                | Self::AuthenticatorAdded { .. }
                | Self::AuthenticatorRemoved { .. }
                | Self::ChangeScheduled { .. }
                | Self::ChangeApplied { .. }
                | Self::LockedDown { .. }
                | Self::CredentialImported { replaced: true, .. }
                | Self::RecoveryRequested { .. }
                | Self::RecoveryCompleted { .. }
        )
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Debug form carries only ids, counts and times (see the module docs).
        write!(f, "{}: {self:?}", self.kind())
    }
}

/// Where the application receives audit events (an audit table, a queue, a notifier).
///
/// Called synchronously on the request path, after the state change: do not block; hand the
/// event to a channel or a background task. A sink cannot veto or fail an operation.
pub trait AuditSink: Send + Sync {
    /// Receives one event that happened at Unix time `at`.
    fn record(&self, at: u64, event: &AuditEvent);
}

impl<F> AuditSink for F
where
    F: Fn(u64, &AuditEvent) + Send + Sync,
{
    fn record(&self, at: u64, event: &AuditEvent) {
        self(at, event);
    }
}

/// Emits `event` to `tracing` (target `twofactor::audit`).
pub(crate) fn trace(at: u64, event: &AuditEvent) {
    let kind = event.kind();
    let user_id = event.user_id().unwrap_or("");
    if event.is_warning() {
        tracing::warn!(target: "twofactor::audit", at, kind, user_id, detail = ?event, "2fa audit");
    } else {
        tracing::info!(target: "twofactor::audit", at, kind, user_id, detail = ?event, "2fa audit");
    }
}
