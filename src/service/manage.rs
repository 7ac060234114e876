//! Managing an enabled factor: disable, regenerate backup codes, and the status an account page
//! shows.

use super::*;

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// Turns 2FA off, after a valid current code: removes every authenticator, the backup
    /// codes, any recovery request and every device token (a trusted browser must not skip a
    /// second factor enrolled later).
    ///
    /// With a code from an established authenticator this happens at once. With a backup code,
    /// or a code from an authenticator added within [`Config::change_delay_secs`], it is
    /// **scheduled** ([`DisableOutcome::Scheduled`]): see [`TwoFactor::scheduled_changes`].
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (2FA stays on).
    pub async fn disable(&self, user_id: &str, code: &str) -> Result<DisableOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        match self
            .check_code(user_id, SecondFactor::Typed(code), now, Budget::User)
            .await?
        {
            Checked::Success {
                established: false, ..
            } => {
                let (change, _) = self
                    .schedule(user_id, crate::store::ChangeKind::Disable, now)
                    .await?;
                Ok(DisableOutcome::Scheduled {
                    change: change.id,
                    not_before: change.not_before,
                })
            }
            Checked::Success { .. } => {
                if !self.turn_off(user_id, now).await? {
                    return Ok(DisableOutcome::Rejected);
                }
                Ok(DisableOutcome::Disabled)
            }
            Checked::Malformed { digits } => Ok(DisableOutcome::Malformed { digits }),
            Checked::Rejected => Ok(DisableOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                Ok(DisableOutcome::RateLimited { retry_after_secs })
            }
        }
    }

    /// Replaces the backup codes with a new set, after a valid current code (TOTP or backup
    /// code). The old codes stop working at the same moment.
    ///
    /// With a backup code, or a code from an authenticator added within
    /// [`Config::change_delay_secs`], the new set is shown now but takes effect only after the
    /// delay ([`RegenerateOutcome::Scheduled`]; the old codes work until then): a stolen code
    /// must not void the owner's.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store and cipher failures (the old codes stay valid).
    pub async fn regenerate_backup_codes(
        &self,
        user_id: &str,
        code: &str,
    ) -> Result<RegenerateOutcome, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        match self
            .check_code(user_id, SecondFactor::Typed(code), now, Budget::User)
            .await?
        {
            Checked::Success { established, .. } => {
                let codes = backup_codes::generate(self.config.backup_code_count);
                let hashes: Vec<BackupCodeHash> = codes
                    .iter()
                    .map(|c| self.backup_key.hash(user_id, c))
                    .collect();
                if !established {
                    let kind = crate::store::ChangeKind::RegenerateBackupCodes { hashes };
                    let (change, new) = self.schedule(user_id, kind, now).await?;
                    if !new {
                        return Ok(RegenerateOutcome::AlreadyScheduled {
                            change: change.id,
                            not_before: change.not_before,
                        });
                    }
                    return Ok(RegenerateOutcome::Scheduled {
                        backup_codes: codes,
                        change: change.id,
                        not_before: change.not_before,
                    });
                }
                if !self
                    .credentials
                    .replace_backup_codes(user_id, &hashes)
                    .await
                    .map_err(credential_err)?
                {
                    return Ok(RegenerateOutcome::Rejected);
                }
                self.emit(now, || AuditEvent::BackupCodesRegenerated {
                    user_id: user_id.to_owned(),
                    count: u32::try_from(codes.len()).unwrap_or(u32::MAX),
                });
                Ok(RegenerateOutcome::Regenerated {
                    backup_codes: codes,
                })
            }
            Checked::Malformed { digits } => Ok(RegenerateOutcome::Malformed { digits }),
            Checked::Rejected => Ok(RegenerateOutcome::Rejected),
            Checked::RateLimited(retry_after_secs) => {
                Ok(RegenerateOutcome::RateLimited { retry_after_secs })
            }
        }
    }

    /// Removes everything this crate holds for the user: the credential (pending or enabled),
    /// backup codes, recovery request, device tokens, the rate-limit states of the user and of
    /// those devices, and open login challenges. Call it when the application deletes the
    /// account or erases its data on request; it needs no code (your application decides who may
    /// delete an account). Returns whether a credential existed. Idempotent: deleting a user
    /// with nothing stored succeeds. Emits [`AuditEvent::UserDeleted`].
    ///
    /// To turn 2FA off and keep the account, use [`TwoFactor::disable`] (with a code) or
    /// [`TwoFactor::admin_reset`] (an operator) instead: those keep the failure history the
    /// limiter needs.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures. The credential store is emptied first, in
    /// one atomic step, so after an error the user either kept everything or lost the
    /// credential, backup codes and devices; call it again to finish (the devices' rate-limit
    /// states, which hold no user id, then expire by themselves).
    pub async fn delete_user(&self, user_id: &str) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let deleted = self
            .credentials
            .delete_user(user_id)
            .await
            .map_err(credential_err)?;
        let keys: Vec<String> = core::iter::once(user_key(user_id))
            .chain(
                deleted
                    .devices
                    .iter()
                    .map(|hash| self.budget(user_id, Budget::Device(*hash)).0),
            )
            .collect();
        self.ephemeral
            .delete_user_state(user_id, &keys)
            .await
            .map_err(ephemeral_err)?;
        self.emit(now, || AuditEvent::UserDeleted {
            user_id: user_id.to_owned(),
            existed: deleted.credential,
            devices: u64::try_from(deleted.devices.len()).unwrap_or(u64::MAX),
        });
        Ok(deleted.credential)
    }

    /// The user's 2FA state, with what the owner should be told: failed attempts since the last
    /// login, a lockout, a recovery request.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn status(&self, user_id: &str) -> Result<Status, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let records = self
            .credentials
            .get_credentials(user_id)
            .await
            .map_err(credential_err)?;
        let authenticators = records.iter().filter(|r| r.enabled).count();
        let enabled = authenticators > 0;
        // The drift of the most recently used authenticator.
        let last_drift = records
            .iter()
            .filter(|r| r.enabled)
            .max_by_key(|r| (r.last_used_at, r.created_at))
            .map(|r| r.drift);
        let backup_codes_remaining = if enabled {
            self.credentials
                .backup_codes_remaining(user_id)
                .await
                .map_err(credential_err)?
        } else {
            0
        };
        let recovery = self
            .credentials
            .get_recovery(user_id)
            .await
            .map_err(credential_err)?;
        let limiter = self
            .ephemeral
            .get_limiter(&user_key(user_id))
            .await
            .map_err(ephemeral_err)?;
        let scheduled_changes = self
            .credentials
            .list_changes(user_id)
            .await
            .map_err(credential_err)?
            .len();
        Ok(Status {
            enabled,
            pending: records.iter().any(|r| !r.enabled),
            authenticators: u32::try_from(authenticators).unwrap_or(u32::MAX),
            backup_codes_remaining,
            last_drift,
            failures_since_login: limiter.since_success,
            last_login_at: (limiter.last_success_at > 0).then_some(limiter.last_success_at),
            locked_until: (limiter.locked_until > now).then_some(limiter.locked_until),
            recovery: recovery.map(|r| RecoveryStatus {
                requested_at: r.requested_at,
                not_before: r.not_before,
                approved: r.approved,
                needs_approval: approval_required(&r, &limiter, now),
            }),
            scheduled_changes: u32::try_from(scheduled_changes).unwrap_or(u32::MAX),
        })
    }
}
