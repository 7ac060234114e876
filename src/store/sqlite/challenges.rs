//! The challenge statements in SQLite.

use super::super::sql::challenges::ChallengeSql;
use super::super::sql::stmt;

pub(super) fn sql(p: &str) -> ChallengeSql {
    ChallengeSql {
        put_challenge: stmt(
            "INSERT INTO {p}challenges (challenge_hash, user_id, expires_at) \
             VALUES (?1, ?2, ?3) ON CONFLICT (challenge_hash) DO UPDATE SET \
             user_id = excluded.user_id, expires_at = excluded.expires_at",
            p,
        ),
        get_challenge: stmt(
            "SELECT user_id, expires_at FROM {p}challenges WHERE challenge_hash = ?1",
            p,
        ),
        take_challenge: stmt(
            "DELETE FROM {p}challenges WHERE challenge_hash = ?1 \
             RETURNING user_id, expires_at",
            p,
        ),
        delete_user_challenges: stmt("DELETE FROM {p}challenges WHERE user_id = ?1", p),
        purge_challenges: stmt("DELETE FROM {p}challenges WHERE expires_at <= ?1", p),
    }
}
