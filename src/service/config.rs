//! The service's configuration.

use crate::backup_codes;
use crate::otp::{Algorithm, Totp, Window};
use crate::rate_limit::RateLimitPolicy;

/// Service configuration. Start from [`Config::new`] and change the fields you need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The issuer shown in authenticator apps (your product's name).
    pub issuer: String,
    /// HMAC algorithm of new secrets (default SHA-1: the only one every app supports).
    pub algorithm: Algorithm,
    /// Digits of new credentials (default 6).
    pub digits: u32,
    /// Period of new credentials in seconds (default 30).
    pub period: u64,
    /// Accepted steps around the current one (default ±1).
    pub window: Window,
    /// Centre the window on the drift recorded at the last accepted code (bounded by
    /// [`Window::MAX_STEPS`]). Default `false`; see the [service docs](crate::service#drift).
    pub follow_drift: bool,
    /// How long a login challenge lives, in seconds (default 300).
    pub challenge_ttl_secs: u64,
    /// Backup codes issued at confirmation and regeneration (default 8).
    pub backup_code_count: usize,
    /// The per-user budget for codes, TOTP and backup codes together, shared by every client
    /// without a device token (default [`RateLimitPolicy::totp_default`]). Successes never
    /// refill it; see [`crate::rate_limit`].
    pub rate_limit: RateLimitPolicy,
    /// The budget of each known device (a browser that presents a valid device token): its own,
    /// which failures from other clients never consume (default
    /// [`RateLimitPolicy::totp_default`]).
    pub device_rate_limit: RateLimitPolicy,
    /// How long a device token stays valid, in seconds (default 90 days). Expired tokens fall
    /// back to the per-user budget, and the next successful login issues a new one.
    pub device_ttl_secs: u64,
    /// How long a recovery request waits before it can complete without an operator's approval,
    /// in seconds (default 72 hours).
    pub recovery_delay_secs: u64,
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
        }
    }
}
