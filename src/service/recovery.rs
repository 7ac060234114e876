//! Recovery when phone and backup codes are lost, and operator actions. A request completes by
//! waiting only on a quiet account; under attack it needs an operator.

use super::*;

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// Records a request to remove the user's second factor (phone and backup codes lost),
    /// replacing an earlier one. Call it only after the password was verified.
    ///
    /// The request completes after [`Config::recovery_delay_secs`] only if the account is quiet:
    /// if it is locked, or saw a failed second factor since the last successful login, or sees
    /// one while the request waits, only an operator's approval completes it
    /// ([`TwoFactor::approve_recovery`]), never waiting. So the password alone never removes
    /// the second factor of an account under attack.
    ///
    /// Send the returned cancel token to the owner out of band (with the news of the request):
    /// [`TwoFactor::cancel_recovery_with_token`] cancels with it once, without a second factor.
    /// Any successful second-factor login cancels too.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (nothing recorded).
    pub async fn request_recovery(&self, user_id: &str) -> Result<RecoveryRequest, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        if !self.has_enabled(user_id).await? {
            return Ok(RecoveryRequest::NotEnrolled);
        }
        let limiter = self
            .ephemeral
            .get_limiter(&user_key(user_id))
            .await
            .map_err(ephemeral_err)?;
        let earlier = self
            .credentials
            .get_recovery(user_id)
            .await
            .map_err(credential_err)?;
        // A request replacing one that needed approval needs it too.
        let needs_approval = limiter.locked_until > now
            || limiter.since_success > 0
            || earlier
                .as_ref()
                .is_some_and(|r| approval_required(r, &limiter, now));
        let not_before = now.saturating_add(self.config.recovery_delay_secs);
        let (token, cancel_hash) = new_token();
        self.credentials
            .put_recovery(
                user_id,
                &RecoveryRecord {
                    requested_at: now,
                    not_before,
                    approved: false,
                    needs_approval,
                    failures_at_request: limiter.since_success,
                    cancel_hash,
                },
            )
            .await
            .map_err(credential_err)?;
        self.emit(now, || AuditEvent::RecoveryRequested {
            user_id: user_id.to_owned(),
            not_before,
            needs_approval,
        });
        Ok(RecoveryRequest::Requested {
            not_before,
            needs_approval,
            cancel_token: RecoveryCancelToken(token),
        })
    }

    /// Operator approval of a recovery request (after checking the user's identity out of band):
    /// it may complete at once. Returns whether there was a request.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn approve_recovery(&self, user_id: &str) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let approved = self
            .credentials
            .approve_recovery(user_id)
            .await
            .map_err(credential_err)?;
        if approved {
            self.emit(now, || AuditEvent::RecoveryApproved {
                user_id: user_id.to_owned(),
            });
        }
        Ok(approved)
    }

    /// Cancels a recovery request (the owner from a session authenticated with a second factor,
    /// or an operator). A second-factor login cancels it automatically. Returns whether there was
    /// one.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn cancel_recovery(&self, user_id: &str) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let cancelled = self
            .credentials
            .cancel_recovery(user_id, true)
            .await
            .map_err(credential_err)?;
        if cancelled {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by: CancelledBy::Request,
            });
        }
        Ok(cancelled)
    }

    /// Cancels the user's recovery request with the token [`TwoFactor::request_recovery`]
    /// returned (the owner, from the link sent out of band; no second factor needed). Single
    /// use. Returns whether it cancelled; a wrong, used or oversized token gives `false`.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn cancel_recovery_with_token(
        &self,
        user_id: &str,
        token: &str,
    ) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let Some(hash) = token_hash(token) else {
            return Ok(false);
        };
        let cancelled = self
            .credentials
            .cancel_recovery_with_token(user_id, &hash)
            .await
            .map_err(credential_err)?;
        if cancelled {
            self.emit(now, || AuditEvent::RecoveryCancelled {
                user_id: user_id.to_owned(),
                by: CancelledBy::Token,
            });
        }
        Ok(cancelled)
    }

    /// Completes a recovery request if an operator approved it, or if the waiting period has
    /// passed and the account stayed quiet (see [`TwoFactor::request_recovery`]): the second
    /// factor, backup codes, device tokens and limiter state are removed.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (nothing removed).
    pub async fn complete_recovery(
        &self,
        user_id: &str,
    ) -> Result<RecoveryCompletion, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let Some(request) = self
            .credentials
            .get_recovery(user_id)
            .await
            .map_err(credential_err)?
        else {
            return Ok(RecoveryCompletion::NoRequest);
        };
        let limiter = self
            .ephemeral
            .get_limiter(&user_key(user_id))
            .await
            .map_err(ephemeral_err)?;
        let needs_approval = approval_required(&request, &limiter, now);
        if self
            .credentials
            .complete_recovery(user_id, now, needs_approval)
            .await
            .map_err(credential_err)?
        {
            self.after_removal(user_id, now).await?;
            self.emit(now, || AuditEvent::RecoveryCompleted {
                user_id: user_id.to_owned(),
            });
            return Ok(RecoveryCompletion::Completed);
        }
        Ok(
            match self
                .credentials
                .get_recovery(user_id)
                .await
                .map_err(credential_err)?
            {
                Some(r) if !r.approved && (needs_approval || r.needs_approval) => {
                    RecoveryCompletion::AwaitingApproval
                }
                Some(r) => RecoveryCompletion::Waiting {
                    retry_after_secs: r.not_before.saturating_sub(now).max(1),
                },
                None => RecoveryCompletion::NoRequest,
            },
        )
    }

    /// Operator action: removes the user's second factor (pending or enabled), backup codes,
    /// recovery request, device tokens and limiter state at once. Returns whether a credential
    /// existed.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures.
    pub async fn admin_reset(&self, user_id: &str) -> Result<bool, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        let existed = self
            .credentials
            .delete_credentials(user_id)
            .await
            .map_err(credential_err)?;
        self.after_removal(user_id, now).await?;
        self.emit(now, || AuditEvent::AdminReset {
            user_id: user_id.to_owned(),
            existed,
        });
        Ok(existed)
    }

    /// After the second factor was removed by recovery or an operator: the account may have been
    /// in an attacker's hands, so device tokens go, and the budget starts clean.
    pub(super) async fn after_removal(&self, user_id: &str, now: u64) -> Result<(), ServiceError> {
        let count = self
            .credentials
            .delete_devices(user_id)
            .await
            .map_err(credential_err)?;
        if count > 0 {
            self.emit(now, || AuditEvent::DevicesForgotten {
                user_id: user_id.to_owned(),
                count,
            });
        }
        self.reset_limiter(user_id, now).await
    }
}

/// Whether a recovery request may complete only with an operator's approval: it was made under
/// attack, or the account is locked, or more second factors failed since it was made.
pub(super) fn approval_required(
    request: &RecoveryRecord,
    limiter: &LimiterState,
    now: u64,
) -> bool {
    request.needs_approval
        || limiter.locked_until > now
        || limiter.since_success > request.failures_at_request
}
