//! Authenticators: enrolment (`put_pending`, `activate`), the last accepted step, renaming,
//! removal, and deleting a user's credential.

use super::store::Stmt;

/// The authenticator statements. Parameters are numbered as the flow binds them.
pub(crate) struct AuthenticatorSql {
    /// `(user_id)`: every authenticator of the user, oldest first, ids in byte order.
    pub(crate) get_credentials: Stmt,
    /// `(user_id, id, only_if_none_enabled)` -> one bool: whether `put_pending` must refuse (an
    /// enabled authenticator with the record's id, or with the flag any enabled one).
    pub(crate) pending_blocked: Stmt,
    /// `(user_id)`: deletes the user's pending authenticator.
    pub(crate) delete_pending: Stmt,
    /// `(user_id, id, name, encrypted_secret, algorithm, digits, period, last_step, drift,
    /// created_at, last_used_at, replaces)`: inserts a pending (not enabled) authenticator.
    pub(crate) insert_pending: Stmt,
    /// `(user_id, encrypted_secret)` -> `id, replaces, enabled_count, replaced`: the pending
    /// authenticator with this secret, the user's enabled count, and whether the authenticator
    /// it replaces is still there (enabled).
    pub(crate) find_pending: Stmt,
    /// `(user_id, id, step, drift)`: enables the pending authenticator.
    pub(crate) enable_pending: Stmt,
    /// `(user_id, id)`: deletes one authenticator.
    pub(crate) delete_one: Stmt,
    /// `(user_id, id, step, drift, now, expected_secret)`: the compare-and-set of the last
    /// accepted step, on an enabled authenticator still holding `expected_secret`.
    pub(crate) advance_step: Stmt,
    /// `(user_id, id, old_secret, new_secret)`.
    pub(crate) rewrite_secret: Stmt,
    /// `(user_id, id, name)`.
    pub(crate) rename: Stmt,
    /// `(user_id, id)` -> `enabled, enabled_count`: whether the authenticator is enabled, and
    /// how many the user has enabled.
    pub(crate) find_one: Stmt,
    /// `(user_id)`: deletes every authenticator of the user.
    pub(crate) delete_credentials: Stmt,
    /// `(user_id)` -> a row if the user has an enabled authenticator.
    pub(crate) enabled_credential: Stmt,
}

/// The `CredentialStore` methods on authenticators, and `delete_user`.
macro_rules! methods {
    () => {
        async fn get_credentials(
            &self,
            user_id: &str,
        ) -> Result<Vec<CredentialRecord>, Self::Error> {
            q(&self.q.auth.get_credentials)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(credential_from_row)
                .collect()
        }

        /// Stores the record with `enabled` forced to `false`, whatever the caller passed.
        async fn put_pending(
            &self,
            user_id: &str,
            record: &CredentialRecord,
            only_if_none_enabled: bool,
        ) -> Result<bool, Self::Error> {
            // Every value is checked before the transaction, so a refused value writes nothing.
            let digits = digits_column(record.digits)?;
            let period = to_i64(record.period, "period")?;
            let last_step = opt_i64(record.last_step, "last_step")?;
            let created_at = to_i64(record.created_at, "created_at")?;
            let last_used_at = opt_i64(record.last_used_at, "last_used_at")?;
            let mut tx = begin(&self.pool).await?;
            // Under the user's lock, an `activate` cannot enable an authenticator between the
            // check and the insert.
            self.lock_user(&mut tx, user_id).await?;
            let blocked: bool = q(&self.q.auth.pending_blocked)
                .bind(user_id)
                .bind(record.id.as_str())
                .bind(only_if_none_enabled)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if blocked {
                tx.rollback().await?;
                return Ok(false);
            }
            q(&self.q.auth.delete_pending)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            q(&self.q.auth.insert_pending)
                .bind(user_id)
                .bind(record.id.as_str())
                .bind(record.name.as_str())
                .bind(&record.encrypted_secret[..])
                .bind(record.algorithm.as_str())
                .bind(digits)
                .bind(period)
                .bind(last_step)
                .bind(record.drift)
                .bind(created_at)
                .bind(last_used_at)
                .bind(record.replaces.as_deref())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn activate(
            &self,
            user_id: &str,
            expected_secret: &[u8],
            step: u64,
            drift: i64,
            backup_codes: Option<&[BackupCodeHash]>,
            max_enabled: u32,
        ) -> Result<bool, Self::Error> {
            let step = to_i64(step, "step")?;
            let mut tx = begin(&self.pool).await?;
            // Under the user's lock, the pending authenticator, the enabled count and the
            // replaced authenticator cannot change between these reads and the writes below.
            self.lock_user(&mut tx, user_id).await?;
            let Some(row) = q(&self.q.auth.find_pending)
                .bind(user_id)
                .bind(expected_secret)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(false);
            };
            let id: String = row.try_get("id")?;
            let enabled = to_u64(row.try_get("enabled_count")?, "enabled count")?;
            let replaced = backup_codes.is_none() && row.try_get::<bool, _>("replaced")?;
            let allowed = match backup_codes {
                Some(_) => enabled == 0,
                None => enabled > 0,
            };
            let after = enabled - u64::from(replaced) + 1;
            if !allowed || after > u64::from(max_enabled) {
                tx.rollback().await?;
                return Ok(false);
            }
            let old = if replaced {
                row.try_get::<Option<String>, _>("replaces")?
            } else {
                None
            };
            q(&self.q.auth.enable_pending)
                .bind(user_id)
                .bind(id.as_str())
                .bind(step)
                .bind(drift)
                .execute(&mut *tx)
                .await?;
            if let Some(old) = old {
                q(&self.q.auth.delete_one)
                    .bind(user_id)
                    .bind(old.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(codes) = backup_codes {
                self.write_codes(&mut tx, user_id, codes).await?;
            }
            tx.commit().await?;
            Ok(true)
        }

        async fn advance_step(
            &self,
            user_id: &str,
            id: &str,
            expected_secret: &[u8],
            step: u64,
            drift: i64,
            now: u64,
        ) -> Result<bool, Self::Error> {
            // One statement: the secret, the enabled flag and the step are checked where the
            // row is written (in PostgreSQL re-checked after a concurrent writer commits), so an
            // authenticator removed or re-enrolled since the code was checked is never advanced.
            let done = q(&self.q.auth.advance_step)
                .bind(user_id)
                .bind(id)
                .bind(to_i64(step, "step")?)
                .bind(drift)
                .bind(to_i64(now, "now")?)
                .bind(expected_secret)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn rewrite_secret(
            &self,
            user_id: &str,
            id: &str,
            old_secret: &[u8],
            new_secret: &[u8],
        ) -> Result<bool, Self::Error> {
            let done = q(&self.q.auth.rewrite_secret)
                .bind(user_id)
                .bind(id)
                .bind(old_secret)
                .bind(new_secret)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn rename_credential(
            &self,
            user_id: &str,
            id: &str,
            name: &str,
        ) -> Result<bool, Self::Error> {
            let done = q(&self.q.auth.rename)
                .bind(user_id)
                .bind(id)
                .bind(name)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn remove_credential(
            &self,
            user_id: &str,
            id: &str,
        ) -> Result<RemoveCredential, Self::Error> {
            let mut tx = begin(&self.pool).await?;
            // Under the user's lock, two removals of a user's last two enabled authenticators
            // run one after the other, and the second counts one left.
            self.lock_user(&mut tx, user_id).await?;
            let Some(row) = q(&self.q.auth.find_one)
                .bind(user_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(RemoveCredential::NotFound);
            };
            let enabled: bool = row.try_get("enabled")?;
            let enabled_count: i64 = row.try_get("enabled_count")?;
            if enabled && enabled_count <= 1 {
                tx.rollback().await?;
                return Ok(RemoveCredential::LastEnabled);
            }
            q(&self.q.auth.delete_one)
                .bind(user_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(RemoveCredential::Removed)
        }

        async fn delete_credentials(&self, user_id: &str) -> Result<bool, Self::Error> {
            let mut tx = begin(&self.pool).await?;
            self.lock_user(&mut tx, user_id).await?;
            let done = q(&self.q.auth.delete_credentials)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for delete in [
                &self.q.codes.delete_codes,
                &self.q.recovery.delete_recovery,
                &self.q.changes.delete_changes,
            ] {
                q(delete).bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        }

        async fn delete_user(&self, user_id: &str) -> Result<DeletedCredentials, Self::Error> {
            let mut tx = begin(&self.pool).await?;
            // The user's lock first: this queues behind any transaction on the user's
            // authenticators, and the ones that start later find nothing.
            self.lock_user(&mut tx, user_id).await?;
            let credential = q(&self.q.auth.delete_credentials)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            for delete in [
                &self.q.codes.delete_codes,
                &self.q.recovery.delete_recovery,
                &self.q.changes.delete_changes,
                &self.q.recovery.delete_notices,
            ] {
                q(delete).bind(user_id).execute(&mut *tx).await?;
            }
            let devices = q(&self.q.devices.take_devices)
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| token_hash(row.try_get("token_hash")?, "token_hash"))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit().await?;
            Ok(DeletedCredentials {
                credential,
                devices,
            })
        }
    };
}
pub(crate) use methods;

/// Reading an authenticator row.
macro_rules! rows {
    () => {
        fn credential_from_row(row: &Row) -> Result<CredentialRecord, SqlStoreError> {
            Ok(CredentialRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                encrypted_secret: row.try_get("encrypted_secret")?,
                algorithm: algorithm(row.try_get::<&str, _>("algorithm")?)?,
                digits: digits(row)?,
                period: to_u64(row.try_get("period")?, "period")?,
                enabled: row.try_get("enabled")?,
                last_step: opt_u64(row.try_get("last_step")?, "last_step")?,
                drift: row.try_get("drift")?,
                created_at: to_u64(row.try_get("created_at")?, "created_at")?,
                last_used_at: opt_u64(row.try_get("last_used_at")?, "last_used_at")?,
                replaces: row.try_get("replaces")?,
            })
        }
    };
}
pub(crate) use rows;
