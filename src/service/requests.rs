//! What the application passes to the login steps: one value per step, built with defaults and
//! a few builder methods, so a new kind of factor or browser state is a new variant or method,
//! not a new family of `TwoFactor` methods.
//!
//! ```text
//! start_login(StartLogin::new(user).device(cookie))
//!     ─► complete_login(CompleteLogin::new(challenge, SecondFactor::Typed(code))
//!            .device(cookie).remember(Remember::Device))
//! verify(Verify::new(user, SecondFactor::Typed(code)).device(cookie))
//! ```

use core::fmt;

use crate::audit::Factor;

#[cfg(doc)]
use super::{Config, LoginStart, TwoFactor, VerifyOutcome};

/// The second factor a user presents, as the login form sent it.
///
/// A login form with one field sends [`SecondFactor::Typed`]; a form that asks for a backup code
/// in its own field ("Lost your phone?") can say so with [`SecondFactor::BackupCode`], and then a
/// TOTP code typed there is not tried as one (and the other way round).
///
/// Whatever the variant, input that cannot be a code of that kind is
/// [`VerifyOutcome::Malformed`] before any budget is touched, a wrong code costs one attempt,
/// and the outcome says nothing more than `Rejected` does. `Debug` never shows the code, and
/// there is no `PartialEq`: codes are compared by the service, in constant time.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum SecondFactor<'a> {
    /// What the user typed into a single code field: a TOTP code (separators such as spaces and
    /// dashes ignored) or a backup code, told apart by shape
    /// ([`looks_like_backup_code`](crate::backup_codes::looks_like_backup_code)).
    Typed(&'a str),
    /// A TOTP code from an authenticator app, and nothing else.
    Totp(&'a str),
    /// A single-use backup code, and nothing else.
    BackupCode(&'a str),
}

impl<'a> SecondFactor<'a> {
    /// The kind of code this is checked as, and its text. A typed code is routed by shape.
    pub(super) fn route(self) -> (Factor, &'a str) {
        match self {
            Self::Typed(code) => (super::factor_of(code), code),
            Self::Totp(code) => (Factor::Totp, code),
            Self::BackupCode(code) => (Factor::BackupCode, code),
        }
    }
}

impl fmt::Debug for SecondFactor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Typed(_) => "Typed([REDACTED])",
            Self::Totp(_) => "Totp([REDACTED])",
            Self::BackupCode(_) => "BackupCode([REDACTED])",
        })
    }
}

/// What a successful [`TwoFactor::complete_login`] leaves on the browser.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remember<'a> {
    /// Nothing: no device token is issued or renewed.
    #[default]
    No,
    /// A device token ([`DeviceToken`](super::DeviceToken)): issued when the browser came
    /// without a valid one, renewed once the old one has lived half of
    /// [`Config::device_ttl_secs`] (a renewed token keeps its trust, not extended). The
    /// browser's later attempts use its own budget ([`Config::device_rate_limit`]), which
    /// failures from other clients never consume. It does not skip the second factor.
    Device,
    /// The user ticked "remember this browser": a new device token that is also **trusted**, so
    /// [`TwoFactor::start_login`] with it answers [`LoginStart::TrustedDevice`] until
    /// [`Config::trusted_device_ttl_secs`] (30 days) have passed or the trust is revoked. The
    /// label is what the user will see in [`TwoFactor::trusted_devices`] (for example "Firefox
    /// on Linux", from the User-Agent), 1 to 64 characters. The browser's old token, if any, is
    /// revoked.
    Trusted(&'a str),
}

impl fmt::Debug for Remember<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::No => f.write_str("No"),
            Self::Device => f.write_str("Device"),
            Self::Trusted(label) => f.debug_tuple("Trusted").field(label).finish(),
        }
    }
}

/// The password step passed: [`TwoFactor::start_login`] for this user, from a browser that may
/// hold a device token.
///
/// ```
/// use twofactor::service::StartLogin;
/// # let cookie: Option<String> = None;
/// let request = StartLogin::new("user-42").device(cookie.as_deref());
/// # let _ = request;
/// ```
#[derive(Clone, Copy)]
#[must_use]
pub struct StartLogin<'a> {
    pub(super) user_id: &'a str,
    pub(super) device: Option<&'a str>,
}

impl<'a> StartLogin<'a> {
    /// For the user whose password was just verified, without a device token.
    pub const fn new(user_id: &'a str) -> Self {
        Self {
            user_id,
            device: None,
        }
    }

    /// The device token this browser holds for the user, if any (its cookie; `None` or an
    /// invalid, expired or foreign token is ignored, never an error). A valid, still trusted one
    /// skips the second factor ([`LoginStart::TrustedDevice`]); any valid one of the user cancels
    /// a recovery request no operator approved.
    pub const fn device(mut self, token: Option<&'a str>) -> Self {
        self.device = token;
        self
    }
}

impl fmt::Debug for StartLogin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartLogin")
            .field("user_id", &self.user_id)
            .field("device", &self.device.map(|_| "[REDACTED]"))
            .finish()
    }
}

/// The user answered a login challenge: [`TwoFactor::complete_login`] with the challenge from
/// [`LoginStart::Required`] and the second factor, from a browser that may hold a device token,
/// leaving on it what [`Remember`] says (nothing by default).
///
/// ```
/// use twofactor::service::{CompleteLogin, Remember, SecondFactor};
/// # let (challenge, typed, cookie, ticked) = ("c", "123456", None::<String>, true);
/// let remember = if ticked { Remember::Trusted("Firefox on Linux") } else { Remember::Device };
/// let request = CompleteLogin::new(challenge, SecondFactor::Typed(typed))
///     .device(cookie.as_deref())
///     .remember(remember);
/// # let _ = request;
/// ```
#[derive(Clone, Copy)]
#[must_use]
pub struct CompleteLogin<'a> {
    pub(super) challenge: &'a str,
    pub(super) factor: SecondFactor<'a>,
    pub(super) device: Option<&'a str>,
    pub(super) remember: Remember<'a>,
}

impl<'a> CompleteLogin<'a> {
    /// The challenge token the client sent back, and the factor the user presented.
    pub const fn new(challenge: &'a str, factor: SecondFactor<'a>) -> Self {
        Self {
            challenge,
            factor,
            device: None,
            remember: Remember::No,
        }
    }

    /// The device token this browser holds for the user, if any. A valid one (this user's, not
    /// expired, not revoked) makes the attempt count against that device's own budget, so an
    /// attacker who has the password and keeps the user's budget locked cannot lock the owner
    /// out of their own browser. An invalid, expired or foreign token is ignored (the user's
    /// budget applies); it is not an error.
    pub const fn device(mut self, token: Option<&'a str>) -> Self {
        self.device = token;
        self
    }

    /// What to leave on the browser on success (default [`Remember::No`]). Prefer
    /// [`Remember::Device`] for browsers that keep cookies: it gives the owner's browsers their
    /// own budget.
    pub const fn remember(mut self, remember: Remember<'a>) -> Self {
        self.remember = remember;
        self
    }
}

impl fmt::Debug for CompleteLogin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompleteLogin")
            .field("challenge", &"[REDACTED]")
            .field("factor", &self.factor)
            .field("device", &self.device.map(|_| "[REDACTED]"))
            .field("remember", &self.remember)
            .finish()
    }
}

/// A second factor checked without a challenge: [`TwoFactor::verify`], for a one-step login (the
/// code sent with the password) or a step-up before a sensitive action.
///
/// ```
/// use twofactor::service::{SecondFactor, Verify};
/// # let (typed, cookie) = ("123456", None::<String>);
/// let request = Verify::new("user-42", SecondFactor::Typed(typed)).device(cookie.as_deref());
/// # let _ = request;
/// ```
#[derive(Clone, Copy)]
#[must_use]
pub struct Verify<'a> {
    pub(super) user_id: &'a str,
    pub(super) factor: SecondFactor<'a>,
    pub(super) device: Option<&'a str>,
}

impl<'a> Verify<'a> {
    /// The user to check, and the factor they presented.
    pub const fn new(user_id: &'a str, factor: SecondFactor<'a>) -> Self {
        Self {
            user_id,
            factor,
            device: None,
        }
    }

    /// The device token this browser holds for the user, if any: a valid one draws on the
    /// device's own budget (see [`CompleteLogin::device`]). No token is issued or renewed.
    pub const fn device(mut self, token: Option<&'a str>) -> Self {
        self.device = token;
        self
    }
}

impl fmt::Debug for Verify<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verify")
            .field("user_id", &self.user_id)
            .field("factor", &self.factor)
            .field("device", &self.device.map(|_| "[REDACTED]"))
            .finish()
    }
}
