//! Several authenticators per user: adding, replacing (a new phone), renaming, removing and
//! listing them; and the trusted browsers that skip the second factor.
//!
//! Every change to the set needs a code from a factor that already protects the account (a
//! backup code counts), so a password alone never adds or removes one, and the set never goes
//! empty except through [`TwoFactor::disable`] or recovery.

use super::*;
use crate::store::RemoveCredential;

/// What kind of factor an authenticator is, and so what it presents at login.
///
/// With the `serde` feature: `"totp"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum AuthenticatorKind {
    /// An authenticator app holding a TOTP secret: it presents
    /// [`SecondFactor::Totp`](super::SecondFactor::Totp) (or a typed code).
    #[default]
    Totp,
}

impl AuthenticatorKind {
    /// `"totp"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
        }
    }

    /// The kind of a stored authenticator. Every stored credential holds a TOTP secret; a store
    /// that keeps other kinds will say so in its record.
    pub(super) const fn of(_record: &CredentialRecord) -> Self {
        Self::Totp
    }
}

/// An enabled authenticator as the user's security page shows it. Never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct AuthenticatorInfo {
    /// Its id, to pass to [`TwoFactor::rename_authenticator`],
    /// [`TwoFactor::remove_authenticator`] and [`TwoFactor::replace_authenticator`].
    pub id: String,
    /// What kind of factor it is (an app with a TOTP secret).
    #[cfg_attr(feature = "serde", serde(default))]
    pub kind: AuthenticatorKind,
    /// The name the user gave it (names need not be unique: the id tells them apart).
    pub name: String,
    /// When it was added (Unix seconds).
    pub created_at: u64,
    /// When one of its codes was last accepted (Unix seconds), `None` if never since it was
    /// confirmed.
    pub last_used_at: Option<u64>,
    /// Until when it counts as new (Unix seconds): its codes can then only schedule the
    /// removal of a factor, not remove one at once. `None` for an established authenticator.
    #[cfg_attr(feature = "serde", serde(default))]
    pub new_until: Option<u64>,
}

/// A browser the user chose to trust, as the security page lists it. Never holds the token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TrustedDevice {
    /// An id for [`TwoFactor::revoke_trusted_device`], derived from the token's stored hash
    /// (neither the token nor its hash can be recovered from it).
    pub id: String,
    /// What the application called the browser when it was trusted.
    pub label: String,
    /// When it was trusted (Unix seconds).
    pub created_at: u64,
    /// When it last presented its token (Unix seconds).
    pub last_used_at: u64,
    /// When the trust ends (Unix seconds).
    pub trusted_until: u64,
}

impl TrustedDevice {
    /// Whether `device_token` (the browser's cookie) is this device's token, so a security page
    /// can mark "this browser".
    #[must_use]
    pub fn is_token(&self, device_token: &str) -> bool {
        use subtle::ConstantTimeEq;
        token_hash(device_token)
            .is_some_and(|hash| bool::from(device_id(&hash).as_bytes().ct_eq(self.id.as_bytes())))
    }
}

/// The result of [`TwoFactor::add_authenticator`] and [`TwoFactor::replace_authenticator`].
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum AddAuthenticatorOutcome {
    /// A new pending authenticator was stored (replacing any pending one): show it and confirm
    /// it with [`TwoFactor::confirm_enrolment`] and a code from the new app.
    Started(Enrolment),
    /// The input cannot be a code: empty, a letter or another character that is not a digit,
    /// the wrong number of digits, or a backup code of the wrong length or alphabet (spaces and
    /// dashes are ignored). Nothing was spent, evaluated or counted: tell the user "that is not
    /// a {digits}-digit code".
    Malformed {
        /// How many digits the user's codes have.
        digits: u32,
    },
    /// The code was wrong (or replayed): nothing was stored.
    Rejected,
    /// Too many attempts; nothing was evaluated.
    RateLimited {
        /// Seconds until an attempt may be allowed again.
        retry_after_secs: u64,
    },
    /// The user does not have 2FA on: use [`TwoFactor::start_enrolment`].
    NotEnabled,
    /// The user already has [`Config::max_authenticators`]: remove or replace one.
    LimitReached,
    /// The authenticator to replace is not one of the user's enabled authenticators.
    NotFound,
}

/// The result of [`TwoFactor::remove_authenticator`]. With the `serde` feature:
/// `{"outcome": "removed"}`, `{"outcome": "rate_limited", "retry_after_secs": 60}`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "outcome", rename_all = "snake_case"))]
#[must_use]
#[non_exhaustive]
pub enum RemoveAuthenticatorOutcome {
    /// The authenticator is gone; its codes no longer work.
    Removed,
    /// The input cannot be a code: empty, a letter or another character that is not a digit,
    /// the wrong number of digits, or a backup code of the wrong length or alphabet (spaces and
    /// dashes are ignored). Nothing was spent, evaluated or counted: tell the user "that is not
    /// a {digits}-digit code".
    Malformed {
        /// How many digits the user's codes have.
        digits: u32,
    },
    /// The code was wrong, replayed, or came from the authenticator being removed.
    Rejected,
    /// Too many attempts; nothing was evaluated.
    RateLimited {
        /// Seconds until an attempt may be allowed again.
        retry_after_secs: u64,
    },
    /// It is the user's last authenticator: only [`TwoFactor::disable`] removes it.
    LastAuthenticator,
    /// The user has no authenticator with that id.
    NotFound,
    /// The code came from a new factor: the removal takes effect at `not_before` unless an
    /// older factor, a trusted browser or the owner's notice token cancels it.
    Scheduled {
        /// Unix time it takes effect.
        not_before: u64,
    },
}

/// The listing id of a device token's stored hash: a hash of the hash, so a page that shows it
/// reveals nothing a database reader could present.
fn device_id(hash: &TokenHash) -> String {
    let mut h = Sha256::new();
    h.update(b"twofactor device id\0");
    h.update(hash);
    HEXLOWER.encode(&h.finalize()[..16])
}

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// The user's enabled authenticators, oldest first: names and times, never secrets, and
    /// which ones are still new ([`AuthenticatorInfo::new_until`]).
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn authenticators(
        &self,
        user_id: &str,
    ) -> Result<Vec<AuthenticatorInfo>, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let records = self
            .credentials
            .get_credentials(user_id)
            .await
            .map_err(credential_err)?;
        let oldest = super::changes::oldest_enabled(&records).map(str::to_owned);
        Ok(records
            .into_iter()
            .filter(|r| r.enabled)
            .map(|r| {
                let new_until = (!self.is_established(&r, oldest.as_deref(), now))
                    .then(|| r.created_at.saturating_add(self.config.change_delay_secs));
                AuthenticatorInfo {
                    kind: AuthenticatorKind::of(&r),
                    id: r.id,
                    name: r.name,
                    created_at: r.created_at,
                    last_used_at: r.last_used_at,
                    new_until,
                }
            })
            .collect())
    }

    /// Starts adding another authenticator for a user who has 2FA on, after a valid code from
    /// an existing factor (TOTP from any authenticator, or a backup code; the user's budget).
    /// The new one is pending until [`TwoFactor::confirm_enrolment`] gets a code from it.
    ///
    /// `name` is the user's name for it ("Work phone"); `account_name` is shown in the app, as
    /// in [`TwoFactor::start_enrolment`].
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`], [`ServiceError::InvalidName`],
    /// [`ServiceError::InvalidAccountName`] (checked before any code is looked at); store and
    /// cipher failures (nothing stored).
    pub async fn add_authenticator(
        &self,
        user_id: &str,
        name: &str,
        account_name: &str,
        code: &str,
    ) -> Result<AddAuthenticatorOutcome, ServiceError> {
        self.start_additional(user_id, name, account_name, code, None)
            .await
    }

    /// Starts replacing authenticator `old_id` (a new phone): like
    /// [`TwoFactor::add_authenticator`], and when the new one is confirmed the old one is removed
    /// **in the same atomic step**, so at no moment is the account without a second factor, and
    /// until then the old phone keeps working. The code may come from the old phone or any other
    /// factor, a backup code included. Replacing works even when the user is at
    /// [`Config::max_authenticators`].
    ///
    /// With a backup code, or a code from an authenticator added within
    /// [`Config::change_delay_secs`], the new authenticator is still added at once, but the old
    /// one's removal is **scheduled** ([`Enrolment::scheduled_removal`]); at the limit that gives
    /// [`AddAuthenticatorOutcome::LimitReached`].
    ///
    /// # Errors
    /// As [`TwoFactor::add_authenticator`].
    pub async fn replace_authenticator(
        &self,
        user_id: &str,
        old_id: &str,
        name: &str,
        account_name: &str,
        code: &str,
    ) -> Result<AddAuthenticatorOutcome, ServiceError> {
        self.start_additional(user_id, name, account_name, code, Some(old_id))
            .await
    }

    async fn start_additional(
        &self,
        user_id: &str,
        name: &str,
        account_name: &str,
        code: &str,
        replaces: Option<&str>,
    ) -> Result<AddAuthenticatorOutcome, ServiceError> {
        check_user_id(user_id)?;
        let name = check_name(name)?;
        let now = self.clock.now();
        let uri = self.new_uri(account_name)?;
        let records = self
            .credentials
            .get_credentials(user_id)
            .await
            .map_err(credential_err)?;
        let enabled = records.iter().filter(|r| r.enabled).count();
        if enabled == 0 {
            return Ok(AddAuthenticatorOutcome::NotEnabled);
        }
        let at_limit = enabled >= self.config.max_authenticators as usize;
        match replaces {
            Some(old) if !records.iter().any(|r| r.enabled && r.id == old) => {
                return Ok(AddAuthenticatorOutcome::NotFound);
            }
            None if at_limit => {
                return Ok(AddAuthenticatorOutcome::LimitReached);
            }
            _ => {}
        }
        let established = match self
            .check_code(user_id, SecondFactor::Typed(code), now, Budget::User)
            .await?
        {
            Checked::Success { established, .. } => established,
            Checked::Malformed { digits } => {
                return Ok(AddAuthenticatorOutcome::Malformed { digits });
            }
            Checked::Rejected => return Ok(AddAuthenticatorOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                return Ok(AddAuthenticatorOutcome::RateLimited { retry_after_secs });
            }
        };
        // A new factor adds at once but only schedules the old one's removal.
        let (replaces, scheduled) = match replaces {
            Some(old) if !established => {
                if at_limit {
                    return Ok(AddAuthenticatorOutcome::LimitReached);
                }
                let kind = crate::store::ChangeKind::RemoveAuthenticator {
                    authenticator: old.to_owned(),
                };
                (None, Some(self.schedule(user_id, kind, now).await?.0))
            }
            other => (other, None),
        };
        let record = self
            .pending_record(user_id, &uri, name, replaces.map(str::to_owned), now)
            .await?;
        // Not refused by an enabled authenticator: the code above proved the user.
        self.credentials
            .put_pending(user_id, &record, false)
            .await
            .map_err(credential_err)?;
        self.emit(now, || AuditEvent::EnrolmentStarted {
            user_id: user_id.to_owned(),
        });
        Ok(AddAuthenticatorOutcome::Started(Enrolment {
            uri,
            scheduled,
        }))
    }

    /// Renames one of the user's authenticators (pending or enabled); returns whether it
    /// exists. Needs no code: call it from a logged-in session.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`], [`ServiceError::InvalidName`]; store failures.
    pub async fn rename_authenticator(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let name = check_name(name)?;
        if id.len() > crate::store::MAX_AUTHENTICATOR_ID_LEN {
            return Ok(false);
        }
        self.credentials
            .rename_credential(user_id, id, &name)
            .await
            .map_err(credential_err)
    }

    /// Removes one of the user's authenticators, after a valid code from a factor that **stays**
    /// (another authenticator, or a backup code; the user's budget). The last authenticator
    /// cannot be removed this way: [`TwoFactor::disable`] turns 2FA off. A login racing the
    /// removal with a code of the removed authenticator is refused once this returns.
    ///
    /// With a backup code, or a code from an authenticator added within
    /// [`Config::change_delay_secs`], the removal is **scheduled**
    /// ([`RemoveAuthenticatorOutcome::Scheduled`]): see [`TwoFactor::scheduled_changes`].
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (nothing removed).
    pub async fn remove_authenticator(
        &self,
        user_id: &str,
        id: &str,
        code: &str,
    ) -> Result<RemoveAuthenticatorOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let records = self
            .credentials
            .get_credentials(user_id)
            .await
            .map_err(credential_err)?;
        let Some(target) = records.iter().find(|r| r.id == id) else {
            return Ok(RemoveAuthenticatorOutcome::NotFound);
        };
        let enabled = records.iter().filter(|r| r.enabled).count();
        if target.enabled && enabled <= 1 {
            return Ok(RemoveAuthenticatorOutcome::LastAuthenticator);
        }
        match self
            .check_code_except(
                user_id,
                SecondFactor::Typed(code),
                now,
                Budget::User,
                Some(id),
            )
            .await?
        {
            Checked::Success {
                established: true, ..
            } => {}
            Checked::Success { .. } => {
                let kind = crate::store::ChangeKind::RemoveAuthenticator {
                    authenticator: id.to_owned(),
                };
                let (change, _) = self.schedule(user_id, kind, now).await?;
                return Ok(RemoveAuthenticatorOutcome::Scheduled {
                    not_before: change.not_before,
                });
            }
            Checked::Malformed { digits } => {
                return Ok(RemoveAuthenticatorOutcome::Malformed { digits });
            }
            Checked::Rejected => return Ok(RemoveAuthenticatorOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                return Ok(RemoveAuthenticatorOutcome::RateLimited { retry_after_secs });
            }
        }
        let removed = self
            .credentials
            .remove_credential(user_id, id)
            .await
            .map_err(credential_err)?;
        Ok(match removed {
            RemoveCredential::Removed => {
                self.emit(now, || AuditEvent::AuthenticatorRemoved {
                    user_id: user_id.to_owned(),
                    authenticator: id.to_owned(),
                });
                RemoveAuthenticatorOutcome::Removed
            }
            RemoveCredential::NotFound => RemoveAuthenticatorOutcome::NotFound,
            RemoveCredential::LastEnabled => RemoveAuthenticatorOutcome::LastAuthenticator,
        })
    }

    /// The browsers the user trusts now (see [`Remember::Trusted`]), oldest first. Tokens that
    /// are only known (an own attempt budget, no skip) are not listed.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn trusted_devices(&self, user_id: &str) -> Result<Vec<TrustedDevice>, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let devices = self
            .credentials
            .list_devices(user_id, now)
            .await
            .map_err(credential_err)?;
        Ok(devices
            .into_iter()
            .filter_map(|(hash, d)| {
                let until = d.trusted_until.filter(|&t| now < t)?;
                Some(TrustedDevice {
                    id: device_id(&hash),
                    label: d.label,
                    created_at: d.created_at,
                    last_used_at: d.last_used_at,
                    trusted_until: until,
                })
            })
            .collect())
    }

    /// Revokes one trusted browser by its [`TrustedDevice::id`]: its token is deleted, so its
    /// next login asks for a code again. Returns whether the user had it. Once this returns, no
    /// login with that token skips the second factor.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn revoke_trusted_device(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let devices = self
            .credentials
            .list_devices(user_id, now)
            .await
            .map_err(credential_err)?;
        let Some((hash, _)) = devices.iter().find(|(hash, _)| device_id(hash) == id) else {
            return Ok(false);
        };
        let deleted = self
            .credentials
            .delete_device(hash)
            .await
            .map_err(credential_err)?;
        if deleted {
            self.emit(now, || AuditEvent::DevicesForgotten {
                user_id: user_id.to_owned(),
                count: 1,
            });
        }
        Ok(deleted)
    }
}
