//! Password-guess limiting with the crate's limiter ([`RateLimitPolicy`] run inside
//! [`EphemeralStore::update_limiter`]), exactly as the service limits codes: an attempt is
//! counted as a failure in the same atomic store operation that grants it, before the password
//! is checked; a correct password gives its own attempt back; an attempt never evaluated (the
//! hasher was saturated, a store failed) is released. Budgets live in the crate's store, so
//! several server processes on one database share them.
//!
//! Four budgets:
//! - **per account**, keyed by the SHA-256 of the normalised email as typed, so an unknown email
//!   is limited exactly like a known one (a 429 reveals nothing about who has an account);
//!   escalating lockouts stop guessing one password;
//! - **per known device**: a request with a valid device token of the account (the crate's,
//!   issued after a completed 2FA login) draws on the device's own budget instead, which the
//!   attacker's failures never touch, so the owner's browser still gets in;
//! - **per session** for the current password of a password change, so a stolen session is no
//!   password oracle and a locked account budget does not stop its logged-in owner;
//! - **per client address**, counting failures only (a correct password gives its attempt back),
//!   sized for an office NAT or a load test from one address: it stops spraying one password
//!   across many accounts. Known devices are exempt.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use sha2::{Digest as _, Sha256};
use twofactor::rate_limit::{Decision, LimiterState, RateLimitPolicy};
use twofactor::store::{EphemeralStore, TokenHash};

use crate::error::ApiError;

/// The per-account (and per-device) password budget: 10 failures per 15 minutes, then lockouts
/// of 15 min, 30 min, 1 h, … capped at 24 h; one failure forgiven a day; remembered 30 days.
pub fn account_policy() -> RateLimitPolicy {
    let mut p = RateLimitPolicy::totp_default();
    p.max_failures = 10;
    p.window_secs = 15 * 60;
    p.escalate = true;
    p.max_lockout_secs = 24 * 3600;
    p.forgive_secs = 24 * 3600;
    p.memory_secs = 30 * 24 * 3600;
    p
}

/// The per-address budget: `max_failures` per `window_secs`, escalating, capped at one hour;
/// one failure forgiven every 10 minutes; remembered a day.
pub fn address_policy(max_failures: u32, window_secs: u64) -> RateLimitPolicy {
    let mut p = RateLimitPolicy::totp_default();
    p.max_failures = max_failures.max(1);
    p.window_secs = window_secs.max(1);
    p.escalate = true;
    p.max_lockout_secs = 3600;
    p.forgive_secs = 600;
    p.memory_secs = 24 * 3600;
    p
}

/// The limiter key of an account: `demo:pw:account:<SHA-256 hex of the email, trimmed and
/// lower-cased>` (the same for an existing and a made-up email).
pub fn account_key(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    format!(
        "demo:pw:account:{}",
        data_encoding::HEXLOWER.encode(&digest)
    )
}

/// The limiter key of a known device: `demo:pw:device:<hex of its token's hash>`.
pub fn device_key(hash: &TokenHash) -> String {
    format!("demo:pw:device:{}", data_encoding::HEXLOWER.encode(hash))
}

/// The limiter key of a session (the current-password check of a password change):
/// `demo:pw:session:<hex of the session token's hash>`.
pub fn session_key(token_hash: &[u8; 32]) -> String {
    format!(
        "demo:pw:session:{}",
        data_encoding::HEXLOWER.encode(token_hash)
    )
}

/// The limiter key of a client address: the IPv4 address, or the /64 of an IPv6 address (one
/// host usually holds a whole /64).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("demo:pw:addr:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("demo:pw:addr:{v4}"),
            None => {
                let s = v6.segments();
                format!(
                    "demo:pw:addr:{:x}:{:x}:{:x}:{:x}::/64",
                    s[0], s[1], s[2], s[3]
                )
            }
        },
    }
}

/// The client's address: the peer of the TCP connection; with `trust_forwarded_for`, the last
/// (rightmost) address in `X-Forwarded-For`, the one the trusted proxy in front appended.
/// Entries further left are whatever the client sent and are never used.
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for {
        let last = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        if let Some(ip) = last {
            return ip;
        }
    }
    peer.ip()
}

/// Password attempts granted on one or more budgets and counted as failures. Settle exactly
/// once: [`Guess::succeed`] (the password was right), [`Guess::fail`] (it was wrong: it stays
/// counted) or [`Guess::release`] (it was never checked).
#[must_use = "settle the guess: succeed, fail or release"]
pub struct Guess {
    taken: Vec<(String, RateLimitPolicy)>,
    now: u64,
    /// The first budget's state before this attempt (its `since_success` is the failures since
    /// the last correct password).
    pub before: LimiterState,
}

impl Guess {
    /// Takes one attempt from every budget in `budgets`, in order, each in one atomic store
    /// operation. `Ok(Err(retry_after))` when one refuses (the attempts already taken are
    /// given back): the password must not be checked.
    ///
    /// # Errors
    /// A store failure (503); the attempts already taken are given back first.
    pub async fn take<E: EphemeralStore>(
        store: &E,
        budgets: Vec<(String, RateLimitPolicy)>,
        now: u64,
    ) -> Result<Result<Self, u64>, ApiError> {
        let mut guess = Self {
            taken: Vec::with_capacity(budgets.len()),
            now,
            before: LimiterState::default(),
        };
        for (key, policy) in budgets {
            let update = match store
                .update_limiter(&key, policy.expire_at(now), move |s| {
                    policy.acquire(s, now).0
                })
                .await
            {
                Ok(update) => update,
                Err(e) => {
                    guess.release(store).await;
                    return Err(ApiError::infra("password rate limiter failed", &e));
                }
            };
            if guess.taken.is_empty() {
                guess.before = update.before;
            }
            match policy.decision(&update.before, &update.after, now) {
                Decision::Allowed => guess.taken.push((key, policy)),
                Decision::Refused { retry_after_secs } => {
                    guess.release(store).await;
                    return Ok(Err(retry_after_secs));
                }
            }
        }
        Ok(Ok(guess))
    }

    /// The password was right: every budget gets this attempt back (failures other requests
    /// caused stay). Best effort: a lost write only leaves the limiter stricter.
    pub async fn succeed<E: EphemeralStore>(self, store: &E) {
        let now = self.now;
        for (key, policy) in self.taken {
            update_best_effort(store, &key, policy, now, move |s| policy.succeed(s, now)).await;
        }
    }

    /// The password was wrong: the attempt stays counted.
    pub fn fail(self) {}

    /// The password was never checked: every budget gets this attempt back.
    pub async fn release<E: EphemeralStore>(self, store: &E) {
        let now = self.now;
        for (key, policy) in self.taken {
            update_best_effort(store, &key, policy, now, move |s| policy.release(s, now)).await;
        }
    }
}

async fn update_best_effort<E: EphemeralStore>(
    store: &E,
    key: &str,
    policy: RateLimitPolicy,
    now: u64,
    update: impl Fn(LimiterState) -> LimiterState + Send + Sync,
) {
    if let Err(e) = store
        .update_limiter(key, policy.expire_at(now), update)
        .await
    {
        tracing::warn!(error = %e, "could not update a password rate limiter");
    }
}

/// Forgets an account's password budget (after a password change: whoever was guessing the old
/// one has nothing left to guess).
///
/// # Errors
/// A store failure (503).
pub async fn reset_account<E: EphemeralStore>(
    store: &E,
    email: &str,
    now: u64,
) -> Result<(), ApiError> {
    let policy = account_policy();
    store
        .update_limiter(&account_key(email), policy.expire_at(now), |_| {
            LimiterState::default()
        })
        .await
        .map_err(|e| ApiError::infra("password rate limiter failed", &e))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn keys_do_not_reveal_the_email_and_ignore_case() {
        let k = account_key("  Alice@Example.COM ");
        assert_eq!(k, account_key("alice@example.com"));
        assert!(!k.contains("alice"));
        assert_eq!(
            address_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            address_key("2001:db8:1:2:ffff::1".parse().unwrap())
        );
        assert_eq!(
            address_key("::ffff:10.0.0.1".parse().unwrap()),
            address_key("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted_and_only_its_last_entry() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 10.1.2.3"),
        );
        assert_eq!(client_ip(&h, peer, false), peer.ip());
        assert_eq!(
            client_ip(&h, peer, true),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        h.append("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_ip(&h, peer, true), peer.ip());
    }

    #[test]
    fn the_account_budget_bounds_a_years_guesses() {
        // The figure the README states.
        assert_eq!(account_policy().max_guesses_per_year(), 4_075);
    }
}
