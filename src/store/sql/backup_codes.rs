//! Backup codes: consuming one (delete-and-count, a dialect step), replacing them all, counting.

use super::store::Stmt;

/// The backup code statements. How codes are inserted is the dialect's own (`write_codes`).
pub(crate) struct BackupCodeSql {
    /// `(user_id)`: deletes the user's codes.
    pub(crate) delete_codes: Stmt,
    /// `(user_id, code_hash)`: deletes the code; the dialect's `consume_code` says what it returns.
    pub(crate) consume_code: Stmt,
    /// `(user_id)` -> one count.
    pub(crate) count_codes: Stmt,
}

/// The `CredentialStore` methods on backup codes.
macro_rules! methods {
    () => {
        async fn consume_backup_code(
            &self,
            user_id: &str,
            hash: &BackupCodeHash,
        ) -> Result<Option<u32>, Self::Error> {
            self.consume_code(user_id, hash).await
        }

        async fn replace_backup_codes(
            &self,
            user_id: &str,
            hashes: &[BackupCodeHash],
        ) -> Result<bool, Self::Error> {
            let mut tx = begin(&self.pool).await?;
            // Under the user's lock, the last enabled authenticator cannot go
            // (`remove_credential`, `complete_recovery`) between the check and the write.
            self.lock_user(&mut tx, user_id).await?;
            let enabled = q(&self.q.auth.enabled_credential)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !enabled {
                tx.rollback().await?;
                return Ok(false);
            }
            self.write_codes(&mut tx, user_id, hashes).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn backup_codes_remaining(&self, user_id: &str) -> Result<u32, Self::Error> {
            let count: i64 = q(&self.q.codes.count_codes)
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            to_u32(count, "backup code count")
        }
    };
}
pub(crate) use methods;
