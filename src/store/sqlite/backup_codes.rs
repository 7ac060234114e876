//! Backup codes in SQLite: one `INSERT` per code, and consuming one inside `BEGIN IMMEDIATE`.

use super::super::sql::backup_codes::BackupCodeSql;
use super::super::sql::prelude::*;
use super::{SqliteStore, begin, q};
use sqlx::Row;

use super::super::compat::sqlx;

pub(super) fn sql(p: &str) -> BackupCodeSql {
    BackupCodeSql {
        delete_codes: stmt("DELETE FROM {p}backup_codes WHERE user_id = ?1", p),
        consume_code: stmt(
            "DELETE FROM {p}backup_codes WHERE user_id = ?1 AND code_hash = ?2",
            p,
        ),
        count_codes: stmt("SELECT COUNT(*) FROM {p}backup_codes WHERE user_id = ?1", p),
    }
}

/// `(user_id, code_hash)`: inserts one code.
pub(super) fn insert_code(p: &str) -> Stmt {
    stmt(
        "INSERT INTO {p}backup_codes (user_id, code_hash) VALUES (?1, ?2) \
         ON CONFLICT DO NOTHING",
        p,
    )
}

impl SqliteStore {
    /// Replaces the user's backup codes inside `tx`.
    pub(super) async fn write_codes(
        &self,
        tx: &mut sqlx::SqliteConnection,
        user_id: &str,
        hashes: &[BackupCodeHash],
    ) -> Result<(), SqlStoreError> {
        q(&self.q.codes.delete_codes)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            q(&self.q.dialect.insert_code)
                .bind(user_id)
                .bind(&hash[..])
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Deletes the code and counts what remains, under the write lock: of concurrent callers
    /// with the same hash, the first deletes it and the others find nothing.
    pub(super) async fn consume_code(
        &self,
        user_id: &str,
        hash: &BackupCodeHash,
    ) -> Result<Option<u32>, SqlStoreError> {
        let mut tx = begin(&self.pool).await?;
        let done = q(&self.q.codes.consume_code)
            .bind(user_id)
            .bind(&hash[..])
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let remaining: i64 = q(&self.q.codes.count_codes)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let remaining = to_u32(remaining, "backup code count")?;
        tx.commit().await?;
        Ok(Some(remaining))
    }
}
