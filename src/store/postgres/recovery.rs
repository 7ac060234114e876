//! The recovery request and notice token statements in PostgreSQL.

use super::super::sql::recovery::RecoverySql;
use super::super::sql::stmt;

pub(super) fn sql(p: &str) -> RecoverySql {
    RecoverySql {
        put_recovery: stmt(
            "INSERT INTO {p}recovery (user_id, requested_at, not_before, approved, \
             needs_approval, failures_at_request, cancel_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id) DO UPDATE SET \
             requested_at = excluded.requested_at, not_before = excluded.not_before, \
             approved = excluded.approved, needs_approval = excluded.needs_approval, \
             failures_at_request = excluded.failures_at_request, \
             cancel_hash = excluded.cancel_hash",
            p,
        ),
        get_recovery: stmt(
            "SELECT requested_at, not_before, approved, needs_approval, failures_at_request, \
             cancel_hash FROM {p}recovery WHERE user_id = $1",
            p,
        ),
        approve_recovery: stmt(
            "UPDATE {p}recovery SET approved = TRUE WHERE user_id = $1",
            p,
        ),
        delete_recovery: stmt("DELETE FROM {p}recovery WHERE user_id = $1", p),
        cancel_recovery_token: stmt(
            "DELETE FROM {p}recovery WHERE user_id = $1 AND cancel_hash = $2",
            p,
        ),
        due_recovery: stmt(
            "DELETE FROM {p}recovery WHERE user_id = $1 AND (approved = TRUE \
             OR (NOT $3::BOOLEAN AND needs_approval = FALSE AND not_before <= $2))",
            p,
        ),
        cancel_recovery: stmt(
            "DELETE FROM {p}recovery WHERE user_id = $1 AND ($2::BOOLEAN OR NOT approved)",
            p,
        ),
        put_notice: stmt(
            "INSERT INTO {p}notices (token_hash, user_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (token_hash) DO UPDATE SET user_id = excluded.user_id, \
             expires_at = excluded.expires_at",
            p,
        ),
        take_notice: stmt(
            "DELETE FROM {p}notices \
             WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3",
            p,
        ),
        delete_notices: stmt("DELETE FROM {p}notices WHERE user_id = $1", p),
        purge_notices: stmt("DELETE FROM {p}notices WHERE expires_at <= $1", p),
    }
}
