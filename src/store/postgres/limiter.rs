//! Limiter state in PostgreSQL: an upsert that creates and locks the row, then an `UPDATE`.

use super::super::compat::sqlx;
use super::super::sql::limiter::LimiterSql;
use super::super::sql::prelude::*;
use super::{PostgresStore, limiter_from_row, q};

pub(super) fn sql(p: &str) -> LimiterSql {
    LimiterSql {
        get_limiter: stmt(
            "SELECT window_start, attempts, consecutive_failures, locked_until, forgiven_at, \
             since_success, last_success_at FROM {p}limiter WHERE limiter_key = $1",
            p,
        ),
        save_limiter: stmt(
            "UPDATE {p}limiter SET window_start = $2, attempts = $3, \
             consecutive_failures = $4, locked_until = $5, forgiven_at = $6, \
             since_success = $7, last_success_at = $8, expire_at = $9 \
             WHERE limiter_key = $1",
            p,
        ),
        delete_limiter: stmt("DELETE FROM {p}limiter WHERE limiter_key = $1", p),
        purge_limiters: stmt("DELETE FROM {p}limiter WHERE expire_at < $1", p),
    }
}

/// `(limiter_key, expire_at)` -> the state's columns: creates the row if needed, locks it until
/// commit and returns the latest committed state.
pub(super) fn lock_limiter(p: &str) -> Stmt {
    stmt(
        "INSERT INTO {p}limiter AS l (limiter_key, window_start, attempts, \
         consecutive_failures, locked_until, forgiven_at, since_success, \
         last_success_at, expire_at) VALUES ($1, 0, 0, 0, 0, 0, 0, 0, $2) \
         ON CONFLICT (limiter_key) DO UPDATE SET expire_at = excluded.expire_at \
         RETURNING l.window_start, l.attempts, l.consecutive_failures, l.locked_until, \
         l.forgiven_at, l.since_success, l.last_success_at",
        p,
    )
}

impl PostgresStore {
    /// The state under `key`, its row created if absent and locked until `tx` ends, so
    /// concurrent updates of the key queue on the lock (a row that does not exist yet could not
    /// be locked by a `SELECT ... FOR UPDATE`). `save_limiter` is then a plain `UPDATE`.
    pub(super) async fn lock_limiter(
        &self,
        tx: &mut sqlx::PgConnection,
        key: &str,
        expire_at: u64,
    ) -> Result<LimiterState, SqlStoreError> {
        let row = q(&self.q.dialect.lock_limiter)
            .bind(key)
            .bind(expire_at_i64(expire_at))
            .fetch_one(&mut *tx)
            .await?;
        limiter_from_row(&row)
    }
}
