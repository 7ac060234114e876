//! Recovery requests (the delayed reset), and the single-use notice tokens sent with a notice.

use super::store::Stmt;

/// The recovery and notice token statements.
pub(crate) struct RecoverySql {
    /// `(user_id, requested_at, not_before, approved, needs_approval, failures_at_request,
    /// cancel_hash)`: inserts or replaces the user's request.
    pub(crate) put_recovery: Stmt,
    /// `(user_id)` -> the request's columns.
    pub(crate) get_recovery: Stmt,
    /// `(user_id)`.
    pub(crate) approve_recovery: Stmt,
    /// `(user_id)`.
    pub(crate) delete_recovery: Stmt,
    /// `(user_id, cancel_hash)`: deletes the request if the token matches.
    pub(crate) cancel_recovery_token: Stmt,
    /// `(user_id, now, approval_required)`: deletes the request if it is due.
    pub(crate) due_recovery: Stmt,
    /// `(user_id, include_approved)`. With `include_approved` false an approved request stays:
    /// the condition is checked on the row the `DELETE` removes, so an approval committed first
    /// wins.
    pub(crate) cancel_recovery: Stmt,
    /// `(token_hash, user_id, expires_at)`: inserts or replaces a notice token.
    pub(crate) put_notice: Stmt,
    /// `(token_hash, user_id, now)`: deletes the token if it is the user's and live.
    pub(crate) take_notice: Stmt,
    /// `(user_id)`.
    pub(crate) delete_notices: Stmt,
    /// `(now)`: deletes the tokens expired at `now`.
    pub(crate) purge_notices: Stmt,
}

/// The `CredentialStore` methods on recovery requests and notice tokens.
macro_rules! methods {
    () => {
        async fn put_recovery(
            &self,
            user_id: &str,
            record: &RecoveryRecord,
        ) -> Result<(), Self::Error> {
            q(&self.q.recovery.put_recovery)
                .bind(user_id)
                .bind(to_i64(record.requested_at, "requested_at")?)
                .bind(to_i64(record.not_before, "not_before")?)
                .bind(record.approved)
                .bind(record.needs_approval)
                .bind(i64::from(record.failures_at_request))
                .bind(&record.cancel_hash[..])
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn get_recovery(&self, user_id: &str) -> Result<Option<RecoveryRecord>, Self::Error> {
            let Some(row) = q(&self.q.recovery.get_recovery)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?
            else {
                return Ok(None);
            };
            recovery_from_row(&row).map(Some)
        }

        async fn approve_recovery(&self, user_id: &str) -> Result<bool, Self::Error> {
            let done = q(&self.q.recovery.approve_recovery)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn cancel_recovery(
            &self,
            user_id: &str,
            include_approved: bool,
        ) -> Result<bool, Self::Error> {
            // One statement: whether the request is approved is checked on the row it deletes.
            let done = q(&self.q.recovery.cancel_recovery)
                .bind(user_id)
                .bind(include_approved)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn cancel_recovery_with_token(
            &self,
            user_id: &str,
            cancel_hash: &TokenHash,
        ) -> Result<bool, Self::Error> {
            // One statement: of concurrent calls with the token, one deletes the row.
            let done = q(&self.q.recovery.cancel_recovery_token)
                .bind(user_id)
                .bind(&cancel_hash[..])
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn complete_recovery(
            &self,
            user_id: &str,
            now: u64,
            approval_required: bool,
        ) -> Result<bool, Self::Error> {
            // A `now` beyond i64::MAX is later than any stored `not_before`.
            let now = i64::try_from(now).unwrap_or(i64::MAX);
            let mut tx = begin(&self.pool).await?;
            self.lock_user(&mut tx, user_id).await?;
            let done = q(&self.q.recovery.due_recovery)
                .bind(user_id)
                .bind(now)
                .bind(approval_required)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            for delete in [
                &self.q.auth.delete_credentials,
                &self.q.codes.delete_codes,
                &self.q.changes.delete_changes,
            ] {
                q(delete).bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(true)
        }

        async fn put_notice(
            &self,
            hash: &TokenHash,
            user_id: &str,
            expires_at: u64,
        ) -> Result<(), Self::Error> {
            q(&self.q.recovery.put_notice)
                .bind(&hash[..])
                .bind(user_id)
                .bind(to_i64(expires_at, "expires_at")?)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn take_notice(
            &self,
            user_id: &str,
            hash: &TokenHash,
            now: u64,
        ) -> Result<bool, Self::Error> {
            // Every stored expiry is at most i64::MAX, so at a later `now` every token has
            // expired.
            let Ok(now) = i64::try_from(now) else {
                return Ok(false);
            };
            // One statement: owner, expiry and existence are checked on the row it deletes, so
            // a token is accepted at most once.
            let done = q(&self.q.recovery.take_notice)
                .bind(&hash[..])
                .bind(user_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }
    };
}
pub(crate) use methods;

/// Reading a recovery request row.
macro_rules! rows {
    () => {
        fn recovery_from_row(row: &Row) -> Result<RecoveryRecord, SqlStoreError> {
            Ok(RecoveryRecord {
                requested_at: to_u64(row.try_get("requested_at")?, "requested_at")?,
                not_before: to_u64(row.try_get("not_before")?, "not_before")?,
                approved: row.try_get("approved")?,
                needs_approval: row.try_get("needs_approval")?,
                failures_at_request: to_u32(
                    row.try_get("failures_at_request")?,
                    "failures_at_request",
                )?,
                cancel_hash: token_hash(row.try_get("cancel_hash")?, "cancel_hash")?,
            })
        }
    };
}
pub(crate) use rows;
