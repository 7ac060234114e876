//! Limiter state in SQLite: an upsert, and a plain read under `BEGIN IMMEDIATE`'s write lock.

use super::super::compat::sqlx;
use super::super::sql::limiter::LimiterSql;
use super::super::sql::prelude::*;
use super::{SqliteStore, limiter_from_row, q};

pub(super) fn sql(p: &str) -> LimiterSql {
    LimiterSql {
        get_limiter: stmt(
            "SELECT window_start, attempts, consecutive_failures, locked_until, forgiven_at, \
             since_success, last_success_at FROM {p}limiter WHERE limiter_key = ?1",
            p,
        ),
        save_limiter: stmt(
            "INSERT INTO {p}limiter (limiter_key, window_start, attempts, \
             consecutive_failures, locked_until, forgiven_at, since_success, \
             last_success_at, expire_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (limiter_key) DO UPDATE SET window_start = excluded.window_start, \
             attempts = excluded.attempts, \
             consecutive_failures = excluded.consecutive_failures, \
             locked_until = excluded.locked_until, forgiven_at = excluded.forgiven_at, \
             since_success = excluded.since_success, \
             last_success_at = excluded.last_success_at, expire_at = excluded.expire_at",
            p,
        ),
        delete_limiter: stmt("DELETE FROM {p}limiter WHERE limiter_key = ?1", p),
        purge_limiters: stmt("DELETE FROM {p}limiter WHERE expire_at < ?1", p),
    }
}

impl SqliteStore {
    /// The state under `key` (the default when absent). The transaction began `IMMEDIATE`, so
    /// it already holds the database's write lock: nobody else writes until it commits.
    pub(super) async fn lock_limiter(
        &self,
        tx: &mut sqlx::SqliteConnection,
        key: &str,
        _expire_at: u64,
    ) -> Result<LimiterState, SqlStoreError> {
        match q(&self.q.limiter.get_limiter)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(row) => limiter_from_row(&row),
            None => Ok(LimiterState::default()),
        }
    }
}
