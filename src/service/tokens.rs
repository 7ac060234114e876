//! The tokens the service hands out: login challenges, device tokens, recovery cancel tokens.
//! Only their hashes are stored; `Debug` is redacted.

use core::fmt;

use zeroize::Zeroizing;

#[cfg(doc)]
use super::Config;

/// A login challenge token: proof that the password step passed, owed a second factor.
///
/// At least 128 random bits (256, base64url: 43 characters). Only its SHA-256 hash is stored; it
/// expires after [`Config::challenge_ttl_secs`] and is consumed by a successful
/// [`complete_login`](super::TwoFactor::complete_login). Put it in a hidden form field or an
/// HTTP-only cookie; never log it (`Debug` is redacted).
pub struct ChallengeToken(pub(crate) Zeroizing<String>);

impl ChallengeToken {
    /// The token text to hand to the client.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ChallengeToken {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChallengeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengeToken([REDACTED])")
    }
}

/// A device token: this browser completed a login for this user. Store it on the client (a
/// long-lived, `Secure`, `HttpOnly` cookie per user) and pass it back to
/// [`complete_login`](super::TwoFactor::complete_login) with
/// [`CompleteLogin::device`](super::CompleteLogin::device), so the owner's attempts use the
/// device's own budget and an attacker guessing elsewhere cannot lock them out.
///
/// 256 random bits, base64url (43 characters); only its SHA-256 hash is stored, bound to the
/// user, expiring after [`Config::device_ttl_secs`], revocable
/// ([`forget_devices`](super::TwoFactor::forget_devices)). It does **not** skip the second
/// factor. Never log it (`Debug` is redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceToken(pub(crate) Zeroizing<String>);

impl DeviceToken {
    /// The token text to hand to the client.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceToken([REDACTED])")
    }
}

/// A single-use token sent to the owner with a notice: a recovery request, a scheduled change of
/// factors, a new authenticator. It lets the owner say "this wasn't me" without a second factor:
/// [`cancel_recovery_with_token`](super::TwoFactor::cancel_recovery_with_token),
/// [`cancel_scheduled_change_with_token`](super::TwoFactor::cancel_scheduled_change_with_token)
/// or, for everything at once, [`lock_down`](super::TwoFactor::lock_down).
///
/// It arrives in the [`AuditEvent`](crate::audit::AuditEvent) of the notice. Send it, as a link,
/// to **every** channel you have for the owner (e-mail, SMS, push), never to the client that made
/// the request. 256 random bits; only its hash is stored; valid for
/// [`Config::notice_ttl_secs`]. Never log it: `Debug` is redacted, and serialising an event
/// leaves it out.
#[derive(Clone, Default)]
pub struct NoticeToken(pub(crate) Zeroizing<String>);

impl NoticeToken {
    /// The token text to send to the owner.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for NoticeToken {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == other.0.len() && bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }
}

impl Eq for NoticeToken {}

impl fmt::Debug for NoticeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoticeToken([REDACTED])")
    }
}

/// The notice token a recovery request sends to the owner (the same type as every notice's).
pub type RecoveryCancelToken = NoticeToken;

/// Proof that a second factor was completed, in this session, moments ago: carried by
/// [`VerifyOutcome::Success`](super::VerifyOutcome::Success), checked by
/// [`password_changed`](super::TwoFactor::password_changed). Only the service makes one; it is
/// bound to the user and fresh for [`Config::challenge_ttl_secs`] after the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorProof {
    pub(crate) user_id: String,
    pub(crate) at: u64,
    pub(crate) established: bool,
}

impl FactorProof {
    /// Whose factor it proves.
    #[must_use]
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// When the factor was checked (Unix seconds).
    #[must_use]
    pub fn at(&self) -> u64 {
        self.at
    }

    /// Whether the factor was an authenticator old enough to change factors at once (not a
    /// backup code, not an authenticator added within [`Config::change_delay_secs`]).
    #[must_use]
    pub fn is_established(&self) -> bool {
        self.established
    }
}

/// What kind of channel the application verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ChannelKind {
    /// A link or code sent to the account's e-mail address was used.
    Email,
    /// A code sent to the account's phone number was used.
    Phone,
    /// Another channel the application trusts as much (a support call with identity checks
    /// should go through [`approve_recovery`](super::TwoFactor::approve_recovery) instead).
    Other,
}

/// The application's word that the person asking for a recovery just proved control of a second
/// channel of the account (an e-mail link, an SMS code), besides the password. Without one, a
/// recovery request needs an operator's approval.
///
/// The service cannot check the channel: build it only after your own verification succeeded,
/// and only for a channel the account had before the request (never one changed in the same
/// session). It counts while fresh: at most [`VerifiedChannel::MAX_AGE_SECS`] old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedChannel {
    pub(crate) kind: ChannelKind,
    pub(crate) verified_at: u64,
}

impl VerifiedChannel {
    /// How old a verification may be when the request is made: 15 minutes.
    pub const MAX_AGE_SECS: u64 = 15 * 60;

    /// The application verified `kind` at `verified_at` (Unix seconds).
    #[must_use]
    pub const fn new(kind: ChannelKind, verified_at: u64) -> Self {
        Self { kind, verified_at }
    }

    /// The channel's kind.
    #[must_use]
    pub const fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// Whether it still counts at `now` (not older than [`Self::MAX_AGE_SECS`], not from the
    /// future beyond a minute of clock skew).
    #[must_use]
    pub const fn is_fresh(&self, now: u64) -> bool {
        self.verified_at <= now.saturating_add(60)
            && now.saturating_sub(self.verified_at) <= Self::MAX_AGE_SECS
    }
}
