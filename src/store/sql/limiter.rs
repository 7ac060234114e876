//! Rate-limit state: the atomic read-modify-write of one limiter row.

use super::store::Stmt;

/// The limiter statements. How a row is read and locked for an update is the dialect's own
/// (`lock_limiter`).
pub(crate) struct LimiterSql {
    /// `(limiter_key)` -> the state's columns. `consecutive_failures` holds
    /// `LimiterState::failures` (see migration 0002).
    pub(crate) get_limiter: Stmt,
    /// `(limiter_key, window_start, attempts, failures, locked_until, forgiven_at,
    /// since_success, last_success_at, expire_at)`: writes the state.
    pub(crate) save_limiter: Stmt,
    /// `(limiter_key)`.
    pub(crate) delete_limiter: Stmt,
    /// `(now)`: deletes the rows whose `expire_at` is before `now`.
    pub(crate) purge_limiters: Stmt,
}

/// The `EphemeralStore` methods on limiter state.
macro_rules! methods {
    () => {
        async fn update_limiter<F>(
            &self,
            key: &str,
            expire_at: u64,
            update: F,
        ) -> Result<LimiterUpdate, Self::Error>
        where
            F: Fn(LimiterState) -> LimiterState + Send + Sync,
        {
            let mut tx = begin(&self.pool).await?;
            // Locked until commit: concurrent callers on the key queue, none is lost.
            let current = self.lock_limiter(&mut tx, key, expire_at).await?;
            let next = update(current);
            q(&self.q.limiter.save_limiter)
                .bind(key)
                .bind(to_i64(next.window_start, "window_start")?)
                .bind(i64::from(next.attempts))
                .bind(i64::from(next.failures))
                .bind(to_i64(next.locked_until, "locked_until")?)
                .bind(to_i64(next.forgiven_at, "forgiven_at")?)
                .bind(i64::from(next.since_success))
                .bind(to_i64(next.last_success_at, "last_success_at")?)
                .bind(expire_at_i64(expire_at))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(LimiterUpdate {
                before: current,
                after: next,
            })
        }

        async fn get_limiter(&self, key: &str) -> Result<LimiterState, Self::Error> {
            match q(&self.q.limiter.get_limiter)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
            {
                Some(row) => limiter_from_row(&row),
                None => Ok(LimiterState::default()),
            }
        }
    };
}
pub(crate) use methods;

/// Reading a limiter row.
macro_rules! rows {
    () => {
        fn limiter_from_row(row: &Row) -> Result<LimiterState, SqlStoreError> {
            Ok(LimiterState::from_parts(
                to_u64(row.try_get("window_start")?, "window_start")?,
                to_u32(row.try_get("attempts")?, "attempts")?,
                to_u32(row.try_get("consecutive_failures")?, "failures")?,
                to_u64(row.try_get("locked_until")?, "locked_until")?,
                to_u64(row.try_get("forgiven_at")?, "forgiven_at")?,
                to_u32(row.try_get("since_success")?, "since_success")?,
                to_u64(row.try_get("last_success_at")?, "last_success_at")?,
            ))
        }
    };
}
pub(crate) use rows;
