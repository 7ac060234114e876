//! Changes of factors that a new factor may only schedule, the owner's notices, and lock-down.
//!
//! A stolen password and one stolen backup code must not give an attacker the account. So a code
//! from a *new* factor (a backup code, or an authenticator added less than
//! [`Config::change_delay_secs`] ago) can log in and add an authenticator at once (the owner who
//! lost a phone is not stranded), but what takes a factor away (removing or replacing an
//! authenticator, regenerating the backup codes, turning 2FA off) is only **scheduled**: it takes
//! effect after the delay ([`TwoFactor::complete_scheduled_changes`]), the owner is told at once
//! ([`AuditEvent::ChangeScheduled`] with a [`NoticeToken`]), and any older factor, a browser the
//! owner trusted before, or the notice token cancels it. With a code from an established
//! authenticator the same changes happen at once.
//!
//! The user's first authenticator counts as established from its enrolment (before it, the
//! password alone held the account, so it cannot be an attacker's addition), as does the oldest
//! enabled authenticator whenever the others were added after it.

use super::*;
use crate::store::{ChangeKind, RemoveCredential, ScheduledChangeRecord};

/// A scheduled change of the user's factors, as a security page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ScheduledChange {
    /// Its id, for [`TwoFactor::cancel_scheduled_change_with_token`].
    pub id: String,
    /// What it does.
    pub kind: ScheduledChangeKind,
    /// When it was asked for (Unix seconds).
    pub requested_at: u64,
    /// When it takes effect unless cancelled (Unix seconds).
    pub not_before: u64,
}

/// What a [`ScheduledChange`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ScheduledChangeKind {
    /// Removes this authenticator.
    RemoveAuthenticator {
        /// Its id.
        authenticator: String,
    },
    /// Replaces the backup codes with the set shown when it was asked for.
    RegenerateBackupCodes,
    /// Turns 2FA off.
    Disable,
}

impl ScheduledChange {
    fn from_record(r: &ScheduledChangeRecord) -> Self {
        let kind = match &r.kind {
            ChangeKind::RemoveAuthenticator { authenticator } => {
                ScheduledChangeKind::RemoveAuthenticator {
                    authenticator: authenticator.clone(),
                }
            }
            ChangeKind::RegenerateBackupCodes { .. } => ScheduledChangeKind::RegenerateBackupCodes,
            ChangeKind::Disable => ScheduledChangeKind::Disable,
        };
        Self {
            id: r.id.clone(),
            kind,
            requested_at: r.requested_at,
            not_before: r.not_before,
        }
    }
}

/// The result of [`TwoFactor::lock_down`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "outcome", rename_all = "snake_case"))]
#[must_use]
#[non_exhaustive]
pub enum LockDownOutcome {
    /// Done. Tell the owner to change the password too: the attacker may have it.
    LockedDown {
        /// Device tokens (trusted browsers included) revoked.
        devices: u64,
        /// Scheduled changes cancelled.
        changes: u64,
        /// Whether a recovery request was cancelled.
        recovery: bool,
        /// Ids of the authenticators removed (those added within the change delay).
        authenticators_removed: Vec<String>,
    },
    /// The token is wrong, used, expired or another user's: nothing changed.
    Rejected,
}

/// The id of the user's oldest enabled authenticator, if exactly one was created first (two
/// created in the same second are both treated as new: which was the user's own cannot be told).
pub(super) fn oldest_enabled(records: &[CredentialRecord]) -> Option<&str> {
    let first = records
        .iter()
        .filter(|r| r.enabled)
        .map(|r| r.created_at)
        .min()?;
    let mut oldest = records
        .iter()
        .filter(|r| r.enabled && r.created_at == first);
    let one = oldest.next()?;
    oldest.next().is_none().then_some(one.id.as_str())
}

/// The id of the one change of each kind and target a user can have scheduled.
fn change_id(kind: &ChangeKind) -> String {
    match kind {
        ChangeKind::RemoveAuthenticator { authenticator } => format!("remove:{authenticator}"),
        ChangeKind::RegenerateBackupCodes { .. } => "regenerate".to_owned(),
        ChangeKind::Disable => "disable".to_owned(),
    }
}

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// Whether a code of `record` may change the factors at once: the authenticator is older
    /// than the change delay, or it is the user's oldest enabled one (`oldest`).
    pub(super) fn is_established(
        &self,
        record: &CredentialRecord,
        oldest: Option<&str>,
        now: u64,
    ) -> bool {
        oldest == Some(record.id.as_str())
            || record
                .created_at
                .saturating_add(self.config.change_delay_secs)
                <= now
    }

    /// Whether a trusted browser was trusted before the change delay began (an attacker who
    /// logged in with a stolen backup code and ticked "remember" is not).
    pub(super) fn device_established(&self, device: &DeviceRecord, now: u64) -> bool {
        device.trusted_until.is_some_and(|until| {
            now < until
                && until
                    .saturating_sub(self.config.trusted_device_ttl_secs)
                    .saturating_add(self.config.change_delay_secs)
                    <= now
        })
    }

    /// The owner proved something only they hold (a code, a backup code, a device token): a
    /// recovery request an operator has not approved goes. With an `established` proof, so do
    /// the scheduled changes.
    pub(super) async fn owner_proved(
        &self,
        user_id: &str,
        now: u64,
        by: CancelledBy,
        established: bool,
    ) -> Result<(), ServiceError> {
        if self
            .credentials
            .cancel_recovery(user_id, false)
            .await
            .map_err(credential_err)?
        {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by,
            });
        }
        if established {
            self.cancel_changes(user_id, now, by).await?;
        }
        Ok(())
    }

    async fn cancel_changes(
        &self,
        user_id: &str,
        now: u64,
        by: CancelledBy,
    ) -> Result<u64, ServiceError> {
        let count = self
            .credentials
            .delete_changes(user_id)
            .await
            .map_err(credential_err)?;
        if count > 0 {
            self.emit(now, || AuditEvent::ChangesCancelled {
                user_id: user_id.to_owned(),
                count,
                by,
            });
        }
        Ok(count)
    }

    /// Issues and stores a notice token for the owner of `user_id`.
    pub(super) async fn new_notice(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<NoticeToken, ServiceError> {
        let (token, hash) = new_token();
        self.credentials
            .put_notice(
                &hash,
                user_id,
                now.saturating_add(self.config.notice_ttl_secs),
            )
            .await
            .map_err(credential_err)?;
        Ok(NoticeToken(token))
    }

    /// Spends one of the user's notice tokens: whether `token` was a live one of `user_id` (a
    /// wrong, used, expired, oversized or other user's token is `false`).
    pub(super) async fn spend_notice(
        &self,
        user_id: &str,
        token: &str,
        now: u64,
    ) -> Result<bool, ServiceError> {
        let Some(hash) = token_hash(token) else {
            return Ok(false);
        };
        self.credentials
            .take_notice(user_id, &hash, now)
            .await
            .map_err(credential_err)
    }

    /// [`Self::new_notice`] for an event that already happened: a store failure is logged and
    /// the event goes out without a token.
    pub(super) async fn best_effort_notice(&self, user_id: &str, now: u64) -> Option<NoticeToken> {
        match self.new_notice(user_id, now).await {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(target: "twofactor::service", error = %e, "could not store a notice token");
                None
            }
        }
    }

    /// Schedules `kind` for the user after the change delay and notifies the owner. Returns the
    /// change, and whether it is new (`false`: the same change was already scheduled, and keeps
    /// its own time).
    pub(super) async fn schedule(
        &self,
        user_id: &str,
        kind: ChangeKind,
        now: u64,
    ) -> Result<(ScheduledChange, bool), ServiceError> {
        let record = ScheduledChangeRecord {
            id: change_id(&kind),
            kind,
            requested_at: now,
            not_before: now.saturating_add(self.config.change_delay_secs),
        };
        // The notice first: a change nobody was told of must not exist.
        let notice = self.new_notice(user_id, now).await?;
        let stored = self
            .credentials
            .put_change(user_id, &record)
            .await
            .map_err(credential_err)?;
        if !stored {
            let existing = self
                .credentials
                .list_changes(user_id)
                .await
                .map_err(credential_err)?
                .into_iter()
                .find(|c| c.id == record.id)
                .unwrap_or(record);
            return Ok((ScheduledChange::from_record(&existing), false));
        }
        self.emit(now, || AuditEvent::ChangeScheduled {
            user_id: user_id.to_owned(),
            change: record.id.clone(),
            kind: record.kind.as_str().to_owned(),
            not_before: record.not_before,
            notice,
        });
        Ok((ScheduledChange::from_record(&record), true))
    }

    /// The user's scheduled changes of factors, oldest first.
    ///
    /// A code from a *new* factor (a backup code, or an authenticator added less than
    /// [`Config::change_delay_secs`] ago; the user's oldest authenticator is never new) can log
    /// in and add an authenticator at once, but removing or replacing one, regenerating the
    /// backup codes and turning 2FA off are only scheduled: they take effect after the delay
    /// ([`TwoFactor::complete_scheduled_changes`]), the owner is told at once
    /// ([`AuditEvent::ChangeScheduled`] with a [`NoticeToken`]), and a login with an older
    /// authenticator, a browser trusted since before the delay, or the notice token
    /// ([`TwoFactor::cancel_scheduled_change_with_token`], [`TwoFactor::lock_down`]) cancels them.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn scheduled_changes(
        &self,
        user_id: &str,
    ) -> Result<Vec<ScheduledChange>, ServiceError> {
        check_user_id(user_id)?;
        Ok(self
            .credentials
            .list_changes(user_id)
            .await
            .map_err(credential_err)?
            .iter()
            .map(ScheduledChange::from_record)
            .collect())
    }

    /// Applies the user's scheduled changes that are due, each at most once (an atomic take),
    /// and returns those applied. Call it when the user's account or security page is shown,
    /// at login, or from a periodic job: a change takes effect only when this runs.
    ///
    /// A removal that would take the user's last authenticator, or whose authenticator is gone,
    /// changes nothing (audited as not applied).
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures. A failure while applying a change that
    /// was already taken leaves the factors as they were (the change is then gone: ask again).
    pub async fn complete_scheduled_changes(
        &self,
        user_id: &str,
    ) -> Result<Vec<ScheduledChange>, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let due: Vec<ScheduledChangeRecord> = self
            .credentials
            .list_changes(user_id)
            .await
            .map_err(credential_err)?
            .into_iter()
            .filter(|c| c.not_before <= now)
            .collect();
        let mut applied = Vec::new();
        for change in due {
            let Some(change) = self
                .credentials
                .take_change(user_id, &change.id, now)
                .await
                .map_err(credential_err)?
            else {
                continue;
            };
            let done = self.apply(user_id, &change, now).await?;
            self.emit(now, || AuditEvent::ChangeApplied {
                user_id: user_id.to_owned(),
                change: change.id.clone(),
                kind: change.kind.as_str().to_owned(),
                applied: done,
            });
            if done {
                applied.push(ScheduledChange::from_record(&change));
            }
        }
        Ok(applied)
    }

    async fn apply(
        &self,
        user_id: &str,
        change: &ScheduledChangeRecord,
        now: u64,
    ) -> Result<bool, ServiceError> {
        Ok(match &change.kind {
            ChangeKind::RemoveAuthenticator { authenticator } => {
                let removed = self
                    .credentials
                    .remove_credential(user_id, authenticator)
                    .await
                    .map_err(credential_err)?;
                let done = removed == RemoveCredential::Removed;
                if done {
                    self.emit(now, || AuditEvent::AuthenticatorRemoved {
                        user_id: user_id.to_owned(),
                        authenticator: authenticator.clone(),
                    });
                }
                done
            }
            ChangeKind::RegenerateBackupCodes { hashes } => {
                let done = self
                    .credentials
                    .replace_backup_codes(user_id, hashes)
                    .await
                    .map_err(credential_err)?;
                if done {
                    self.emit(now, || AuditEvent::BackupCodesRegenerated {
                        user_id: user_id.to_owned(),
                        count: u32::try_from(hashes.len()).unwrap_or(u32::MAX),
                    });
                }
                done
            }
            ChangeKind::Disable => self.turn_off(user_id, now).await?,
        })
    }

    /// Removes every factor and device token of the user (2FA off). Returns whether there was
    /// an authenticator.
    pub(super) async fn turn_off(&self, user_id: &str, now: u64) -> Result<bool, ServiceError> {
        if !self
            .credentials
            .delete_credentials(user_id)
            .await
            .map_err(credential_err)?
        {
            return Ok(false);
        }
        self.forget_devices(user_id).await?;
        self.emit(now, || AuditEvent::Disabled {
            user_id: user_id.to_owned(),
        });
        Ok(true)
    }

    /// Cancels the scheduled change `change_id` with a notice token the owner received (from any
    /// notice of this user; single use). Returns whether it cancelled; a wrong, used, expired or
    /// oversized token, or an unknown change, gives `false` (and a valid token is then not
    /// spent).
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn cancel_scheduled_change_with_token(
        &self,
        user_id: &str,
        change_id: &str,
        token: &str,
    ) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let exists = self
            .credentials
            .list_changes(user_id)
            .await
            .map_err(credential_err)?
            .iter()
            .any(|c| c.id == change_id);
        if !exists || !self.spend_notice(user_id, token, now).await? {
            return Ok(false);
        }
        let cancelled = self
            .credentials
            .take_change(user_id, change_id, u64::MAX)
            .await
            .map_err(credential_err)?
            .is_some();
        if cancelled {
            self.emit(now, || AuditEvent::ChangesCancelled {
                user_id: user_id.to_owned(),
                count: 1,
                by: CancelledBy::Token,
            });
        }
        Ok(cancelled)
    }

    /// "This wasn't me": with a notice token the owner received (from any notice of this user;
    /// single use), ends every device token of the user (trusted browsers too), cancels the
    /// recovery request (approved or not) and every scheduled change, and removes the
    /// authenticators added within [`Config::change_delay_secs`] (and a pending one), never the
    /// user's oldest enabled authenticator. What the owner held before stays. Tell the owner to
    /// change the password next.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (call it again with a new token: the
    /// steps are idempotent, and the token was spent).
    pub async fn lock_down(
        &self,
        user_id: &str,
        token: &str,
    ) -> Result<LockDownOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        if !self.spend_notice(user_id, token, now).await? {
            return Ok(LockDownOutcome::Rejected);
        }
        let devices = self.forget_devices(user_id).await?;
        let recovery = self
            .credentials
            .cancel_recovery(user_id, true)
            .await
            .map_err(credential_err)?;
        if recovery {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by: CancelledBy::LockDown,
            });
        }
        let changes = self
            .cancel_changes(user_id, now, CancelledBy::LockDown)
            .await?;
        let records = self
            .credentials
            .get_credentials(user_id)
            .await
            .map_err(credential_err)?;
        let oldest = oldest_enabled(&records).map(str::to_owned);
        let mut authenticators_removed = Vec::new();
        for r in &records {
            let new = r.created_at.saturating_add(self.config.change_delay_secs) > now;
            if (new || !r.enabled) && Some(&r.id) != oldest.as_ref() {
                let removed = self
                    .credentials
                    .remove_credential(user_id, &r.id)
                    .await
                    .map_err(credential_err)?;
                if removed == RemoveCredential::Removed && r.enabled {
                    self.emit(now, || AuditEvent::AuthenticatorRemoved {
                        user_id: user_id.to_owned(),
                        authenticator: r.id.clone(),
                    });
                    authenticators_removed.push(r.id.clone());
                }
            }
        }
        self.emit(now, || AuditEvent::LockedDown {
            user_id: user_id.to_owned(),
            devices,
            changes,
            recovery,
            authenticators_removed: authenticators_removed.clone(),
        });
        Ok(LockDownOutcome::LockedDown {
            devices,
            changes,
            recovery,
            authenticators_removed,
        })
    }
}
