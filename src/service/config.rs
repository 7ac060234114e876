//! The service's configuration.

use crate::backup_codes;
use crate::otp::{Algorithm, Totp, Window};
use crate::rate_limit::RateLimitPolicy;

/// Service configuration. Start from [`Config::new`] and change the fields you need.
///
/// With the `serde` feature it reads from a configuration file in which only `issuer` is
/// required; every other field left out takes its [`Config::new`] default, so files keep working
/// when fields are added:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// let config: twofactor::service::Config =
///     serde_json::from_str(r#"{"issuer": "Example", "digits": 8}"#).unwrap();
/// assert_eq!(config.digits, 8);
/// assert_eq!(config.window, twofactor::Window::ONE);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Config {
    /// The issuer shown in authenticator apps (your product's name).
    pub issuer: String,
    /// HMAC algorithm of new secrets (default SHA-1: the only one every app supports).
    #[cfg_attr(feature = "serde", serde(default = "defaults::algorithm"))]
    pub algorithm: Algorithm,
    /// Digits of new credentials (default 6).
    #[cfg_attr(feature = "serde", serde(default = "defaults::digits"))]
    pub digits: u32,
    /// Period of new credentials in seconds (default 30).
    #[cfg_attr(feature = "serde", serde(default = "defaults::period"))]
    pub period: u64,
    /// Accepted steps around the current one (default ±1).
    #[cfg_attr(feature = "serde", serde(default = "defaults::window"))]
    pub window: Window,
    /// Centre the window on the drift recorded at the last accepted code (bounded by
    /// [`Window::MAX_STEPS`]). Default `false`; see the [service docs](crate::service#drift).
    #[cfg_attr(feature = "serde", serde(default = "defaults::follow_drift"))]
    pub follow_drift: bool,
    /// How long a login challenge lives, in seconds (default 300).
    #[cfg_attr(feature = "serde", serde(default = "defaults::challenge_ttl_secs"))]
    pub challenge_ttl_secs: u64,
    /// Backup codes issued at confirmation and regeneration (default 8).
    #[cfg_attr(feature = "serde", serde(default = "defaults::backup_code_count"))]
    pub backup_code_count: usize,
    /// The per-user budget for codes, TOTP and backup codes together, shared by every client
    /// without a device token (default [`RateLimitPolicy::totp_default`]). Successes never
    /// refill it; see [`crate::rate_limit`].
    #[cfg_attr(feature = "serde", serde(default = "defaults::rate_limit"))]
    pub rate_limit: RateLimitPolicy,
    /// The budget of each known device (a browser that presents a valid device token): its own,
    /// which failures from other clients never consume (default
    /// [`RateLimitPolicy::totp_default`]).
    #[cfg_attr(feature = "serde", serde(default = "defaults::device_rate_limit"))]
    pub device_rate_limit: RateLimitPolicy,
    /// How long a device token stays valid, in seconds (default 90 days). Expired tokens fall
    /// back to the per-user budget, and the next successful login issues a new one.
    #[cfg_attr(feature = "serde", serde(default = "defaults::device_ttl_secs"))]
    pub device_ttl_secs: u64,
    /// How long a recovery request waits before it can complete without an operator's approval,
    /// in seconds (default 72 hours).
    #[cfg_attr(feature = "serde", serde(default = "defaults::recovery_delay_secs"))]
    pub recovery_delay_secs: u64,
    /// Most enabled authenticators a user may hold (default 5; 1 to
    /// [`MAX_AUTHENTICATORS`](crate::store::MAX_AUTHENTICATORS)). Every login code is checked
    /// against each of them, so a login costs up to this many checks, and on the user's shared
    /// budget a guess weighs that many units (the yearly bound counts candidates compared): a
    /// user with five authenticators gets one guess per window of
    /// [`Config::rate_limit`] on a browser without a device token, so a typo there costs a wait
    /// of up to `window_secs`. The owner's known browsers keep a budget of one unit per attempt.
    #[cfg_attr(feature = "serde", serde(default = "defaults::max_authenticators"))]
    pub max_authenticators: u32,
    /// How long a browser the user chose to remember skips the second factor, in seconds
    /// (default 30 days; at most [`Config::device_ttl_secs`]). See
    /// [`Remember::Trusted`](crate::service::Remember::Trusted).
    #[cfg_attr(
        feature = "serde",
        serde(default = "defaults::trusted_device_ttl_secs")
    )]
    pub trusted_device_ttl_secs: u64,
    /// How long a factor is *new*, in seconds (default 72 hours). A code from a new factor (a
    /// backup code, or an authenticator added less than this ago) can log in and add an
    /// authenticator at once, but removing or replacing one, regenerating the backup codes and
    /// turning 2FA off are then *scheduled*: they take effect this long after they were asked
    /// for, unless an older factor, a trusted browser or the owner's notice token cancels them.
    /// See [`TwoFactor::scheduled_changes`](crate::TwoFactor::scheduled_changes).
    #[cfg_attr(feature = "serde", serde(default = "defaults::change_delay_secs"))]
    pub change_delay_secs: u64,
    /// How long a notice token sent to the owner stays valid, in seconds (default 30 days; at
    /// least [`Config::change_delay_secs`] and [`Config::recovery_delay_secs`]). See
    /// [`NoticeToken`](crate::service::NoticeToken).
    #[cfg_attr(feature = "serde", serde(default = "defaults::notice_ttl_secs"))]
    pub notice_ttl_secs: u64,
}

impl Config {
    /// The defaults, with `issuer` as the name shown in authenticator apps.
    #[must_use]
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: Totp::DEFAULT_PERIOD,
            window: Window::ONE,
            follow_drift: false,
            challenge_ttl_secs: 300,
            backup_code_count: backup_codes::DEFAULT_COUNT,
            rate_limit: RateLimitPolicy::totp_default(),
            device_rate_limit: RateLimitPolicy::totp_default(),
            device_ttl_secs: 90 * 24 * 3600,
            recovery_delay_secs: 72 * 3600,
            max_authenticators: 5,
            trusted_device_ttl_secs: 30 * 24 * 3600,
            change_delay_secs: 72 * 3600,
            notice_ttl_secs: 30 * 24 * 3600,
        }
    }
}

/// The defaults of the fields a configuration file leaves out: those of [`Config::new`].
#[cfg(feature = "serde")]
mod defaults {
    use super::Config;
    use crate::otp::{Algorithm, Window};
    use crate::rate_limit::RateLimitPolicy;

    fn base() -> Config {
        Config::new(String::new())
    }
    pub(super) fn algorithm() -> Algorithm {
        base().algorithm
    }
    pub(super) fn digits() -> u32 {
        base().digits
    }
    pub(super) fn period() -> u64 {
        base().period
    }
    pub(super) fn window() -> Window {
        base().window
    }
    pub(super) fn follow_drift() -> bool {
        base().follow_drift
    }
    pub(super) fn challenge_ttl_secs() -> u64 {
        base().challenge_ttl_secs
    }
    pub(super) fn backup_code_count() -> usize {
        base().backup_code_count
    }
    pub(super) fn rate_limit() -> RateLimitPolicy {
        base().rate_limit
    }
    pub(super) fn device_rate_limit() -> RateLimitPolicy {
        base().device_rate_limit
    }
    pub(super) fn device_ttl_secs() -> u64 {
        base().device_ttl_secs
    }
    pub(super) fn recovery_delay_secs() -> u64 {
        base().recovery_delay_secs
    }
    pub(super) fn max_authenticators() -> u32 {
        base().max_authenticators
    }
    pub(super) fn trusted_device_ttl_secs() -> u64 {
        base().trusted_device_ttl_secs
    }
    pub(super) fn change_delay_secs() -> u64 {
        base().change_delay_secs
    }
    pub(super) fn notice_ttl_secs() -> u64 {
        base().notice_ttl_secs
    }
}
