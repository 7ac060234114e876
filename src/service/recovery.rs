//! Recovery when phone and backup codes are lost, and operator actions. A request completes by
//! waiting only with a second channel the application verified, on a quiet account; otherwise
//! it needs an operator. Every request is a notice to the owner.

use super::*;

impl<C, E, K, Clk> TwoFactor<C, E, K, Clk>
where
    C: CredentialStore,
    E: EphemeralStore,
    K: SecretCipher,
    Clk: Clock,
{
    /// Records a request to remove the user's second factor (phone and backup codes lost). Call
    /// it only after the password was verified.
    ///
    /// The password alone never completes one. A request completes after
    /// [`Config::recovery_delay_secs`] without an operator only if it came with a
    /// [`VerifiedChannel`] (your application verified, moments ago, a link or code sent to the
    /// account's e-mail or phone) **and** the account stayed quiet: not locked, no failed second
    /// factor since the last login, none while it waits. Any other request needs an operator's
    /// approval ([`TwoFactor::approve_recovery`]), never waiting.
    ///
    /// Every request is a notice: [`AuditEvent::RecoveryRequested`] carries a [`NoticeToken`]
    /// (also returned here as `cancel_token`) that your application must send to **every**
    /// channel it has for the owner. It cancels the request
    /// ([`TwoFactor::cancel_recovery_with_token`]) or locks the account down
    /// ([`TwoFactor::lock_down`]). Any proof of the owner cancels a request no operator approved:
    /// a code, a backup code, a trusted browser, a device token.
    ///
    /// A request while one is pending keeps the pending one (so the owner's earlier notice
    /// token stays valid) and sends a new notice; only a request with a verified channel may
    /// turn a pending request that needs approval into one that waits, restarting its delay.
    ///
    /// # Errors
    /// [`ServiceError::InvalidUserId`]; store failures (nothing recorded).
    pub async fn request_recovery(
        &self,
        user_id: &str,
        channel: Option<VerifiedChannel>,
    ) -> Result<RecoveryRequest, ServiceError> {
        check_user_id(user_id)?;
        let now = self.clock.now();
        if !self.has_enabled(user_id).await? {
            return Ok(RecoveryRequest::NotEnrolled);
        }
        let verified = channel.is_some_and(|c| c.is_fresh(now));
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
        let needs_approval = !verified || limiter.locked_until > now || limiter.since_success > 0;
        // The notice first: a request the owner was not told of must not exist.
        let notice = self.new_notice(user_id, now).await?;
        let kept = match earlier {
            // A pending request stays as it is (its notice token keeps working), unless this
            // one may wait where it needed an operator: then it waits from now.
            Some(r) if r.approved || needs_approval || !approval_required(&r, &limiter, now) => {
                Some(r)
            }
            _ => None,
        };
        let (not_before, needs_approval) = match kept {
            Some(r) => (
                r.not_before,
                !r.approved && approval_required(&r, &limiter, now),
            ),
            None => {
                let not_before = now.saturating_add(self.config.recovery_delay_secs);
                let record = RecoveryRecord {
                    requested_at: now,
                    not_before,
                    approved: false,
                    needs_approval,
                    failures_at_request: limiter.since_success,
                    cancel_hash: token_hash(notice.as_str()).unwrap_or_default(),
                };
                self.credentials
                    .put_recovery(user_id, &record)
                    .await
                    .map_err(credential_err)?;
                (not_before, needs_approval)
            }
        };
        self.emit(now, || AuditEvent::RecoveryRequested {
            user_id: user_id.to_owned(),
            not_before,
            needs_approval,
            notice: notice.clone(),
        });
        Ok(RecoveryRequest::Requested {
            not_before,
            needs_approval,
            cancel_token: notice,
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

    /// Cancels a recovery request, approved or not (an operator, or the owner from a session
    /// authenticated with an established factor: an attacker logged in with a stolen backup code
    /// must not reach this). A second-factor login cancels a request no operator approved
    /// automatically. Returns whether there was one.
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

    /// Cancels the user's recovery request (approved or not) with a notice token the owner
    /// received: the one of this request, of an earlier one, or of any other notice of this user
    /// (no second factor needed). Single use. Returns whether it cancelled; a wrong, used,
    /// expired, oversized or other user's token gives `false` (a valid token is not spent when
    /// there is no request).
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
        if self
            .credentials
            .get_recovery(user_id)
            .await
            .map_err(credential_err)?
            .is_none()
            || !self.spend_notice(user_id, token, now).await?
        {
            return Ok(false);
        }
        let cancelled = self
            .credentials
            .cancel_recovery(user_id, true)
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
