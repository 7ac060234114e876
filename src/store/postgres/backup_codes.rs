//! Backup codes in PostgreSQL: all codes in one `INSERT`, and consuming one in one statement.

use super::super::compat::sqlx;
use super::super::sql::backup_codes::BackupCodeSql;
use super::super::sql::prelude::*;
use super::{PostgresStore, q};
use sqlx::Row;

pub(super) fn sql(p: &str) -> BackupCodeSql {
    BackupCodeSql {
        delete_codes: stmt("DELETE FROM {p}backup_codes WHERE user_id = $1", p),
        // -> `used, before`. The count runs on the statement's snapshot, which still holds the
        // deleted row.
        consume_code: stmt(
            "WITH used AS (DELETE FROM {p}backup_codes \
             WHERE user_id = $1 AND code_hash = $2 RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM used) AS used, \
             (SELECT COUNT(*) FROM {p}backup_codes WHERE user_id = $1) AS before",
            p,
        ),
        count_codes: stmt("SELECT COUNT(*) FROM {p}backup_codes WHERE user_id = $1", p),
    }
}

/// `(user_id, code_hashes)`: inserts every code of the array.
pub(super) fn insert_codes(p: &str) -> Stmt {
    stmt(
        "INSERT INTO {p}backup_codes (user_id, code_hash) \
         SELECT $1, h FROM UNNEST($2::BYTEA[]) AS t(h) ON CONFLICT DO NOTHING",
        p,
    )
}

impl PostgresStore {
    /// Replaces the user's backup codes inside `tx`.
    pub(super) async fn write_codes(
        &self,
        tx: &mut sqlx::PgConnection,
        user_id: &str,
        hashes: &[BackupCodeHash],
    ) -> Result<(), SqlStoreError> {
        q(&self.q.codes.delete_codes)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if !hashes.is_empty() {
            q(&self.q.dialect.insert_codes)
                .bind(user_id)
                .bind(hashes)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// One statement: of concurrent callers with the same hash, the row lock lets exactly one
    /// delete it; the others re-check after it commits and find nothing.
    pub(super) async fn consume_code(
        &self,
        user_id: &str,
        hash: &BackupCodeHash,
    ) -> Result<Option<u32>, SqlStoreError> {
        let row = q(&self.q.codes.consume_code)
            .bind(user_id)
            .bind(&hash[..])
            .fetch_one(&self.pool)
            .await?;
        let used: i64 = row.try_get("used")?;
        if used != 1 {
            return Ok(None);
        }
        let before: i64 = row.try_get("before")?;
        Ok(Some(to_u32(
            before.saturating_sub(1).max(0),
            "backup code count",
        )?))
    }
}
