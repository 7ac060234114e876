//! Scheduled changes: a change that takes a factor away, held until its delay has passed.

use super::store::Stmt;

/// The scheduled change statements.
pub(crate) struct ChangeSql {
    /// `(user_id, id, kind, authenticator, backup_code_hashes, requested_at, not_before)`:
    /// inserts the change unless one with its id exists.
    pub(crate) put_change: Stmt,
    /// `(user_id)` -> the changes, oldest first, ids in byte order (as in Rust), whatever the
    /// database's collation.
    pub(crate) list_changes: Stmt,
    /// `(user_id, id, due_by)` -> the deleted change, if it was due.
    pub(crate) take_change: Stmt,
    /// `(user_id)`.
    pub(crate) delete_changes: Stmt,
}

/// The `CredentialStore` methods on scheduled changes.
macro_rules! methods {
    () => {
        async fn put_change(
            &self,
            user_id: &str,
            record: &ScheduledChangeRecord,
        ) -> Result<bool, Self::Error> {
            let (kind, authenticator, hashes) = change_columns(&record.kind);
            // One statement: of two puts with one id, the primary key lets the first stay.
            let done = q(&self.q.changes.put_change)
                .bind(user_id)
                .bind(record.id.as_str())
                .bind(kind)
                .bind(authenticator)
                .bind(hashes)
                .bind(to_i64(record.requested_at, "requested_at")?)
                .bind(to_i64(record.not_before, "not_before")?)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn list_changes(
            &self,
            user_id: &str,
        ) -> Result<Vec<ScheduledChangeRecord>, Self::Error> {
            q(&self.q.changes.list_changes)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(change_from_row)
                .collect()
        }

        async fn take_change(
            &self,
            user_id: &str,
            id: &str,
            due_by: u64,
        ) -> Result<Option<ScheduledChangeRecord>, Self::Error> {
            // Every stored `not_before` is at most i64::MAX, so a later `due_by` takes any
            // change.
            let due_by = i64::try_from(due_by).unwrap_or(i64::MAX);
            // One statement takes the row: it is gone for every other caller the moment it is
            // returned. The transaction only lets a row this version cannot read stay where it
            // was (reported as an error, neither acted on nor lost).
            let mut tx = begin(&self.pool).await?;
            let row = q(&self.q.changes.take_change)
                .bind(user_id)
                .bind(id)
                .bind(due_by)
                .fetch_optional(&mut *tx)
                .await?;
            match row.as_ref().map(change_from_row).transpose() {
                Ok(taken) => {
                    tx.commit().await?;
                    Ok(taken)
                }
                Err(e) => {
                    tx.rollback().await?;
                    Err(e)
                }
            }
        }

        async fn delete_changes(&self, user_id: &str) -> Result<u64, Self::Error> {
            let done = q(&self.q.changes.delete_changes)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        }
    };
}
pub(crate) use methods;

/// Reading a scheduled change row.
macro_rules! rows {
    () => {
        fn change_from_row(row: &Row) -> Result<ScheduledChangeRecord, SqlStoreError> {
            change_record(
                row.try_get("id")?,
                row.try_get("kind")?,
                row.try_get("authenticator")?,
                row.try_get("backup_code_hashes")?,
                row.try_get("requested_at")?,
                row.try_get("not_before")?,
            )
        }
    };
}
pub(crate) use rows;
