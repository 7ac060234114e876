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
/// [`complete_login_with_device`](super::TwoFactor::complete_login_with_device), so the owner's
/// attempts use the device's own budget and an attacker guessing elsewhere cannot lock them out.
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

/// A single-use token that cancels a recovery request without a second factor. Send it to the
/// owner out of band (e-mail, SMS) as a link; 256 random bits, only its hash is stored. Never log
/// it (`Debug` is redacted).
pub struct RecoveryCancelToken(pub(crate) Zeroizing<String>);

impl RecoveryCancelToken {
    /// The token text to send to the owner.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RecoveryCancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCancelToken([REDACTED])")
    }
}
