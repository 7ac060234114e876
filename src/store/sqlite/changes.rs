//! The scheduled change statements in SQLite (`BINARY` collation: ids sort by bytes).

use super::super::sql::changes::ChangeSql;
use super::super::sql::stmt;

pub(super) fn sql(p: &str) -> ChangeSql {
    ChangeSql {
        put_change: stmt(
            "INSERT INTO {p}scheduled_changes (user_id, id, kind, authenticator, \
             backup_code_hashes, requested_at, not_before) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (user_id, id) DO NOTHING",
            p,
        ),
        list_changes: stmt(
            "SELECT id, kind, authenticator, backup_code_hashes, requested_at, not_before \
             FROM {p}scheduled_changes WHERE user_id = ?1 \
             ORDER BY requested_at, id",
            p,
        ),
        take_change: stmt(
            "DELETE FROM {p}scheduled_changes \
             WHERE user_id = ?1 AND id = ?2 AND not_before <= ?3 \
             RETURNING id, kind, authenticator, backup_code_hashes, requested_at, not_before",
            p,
        ),
        delete_changes: stmt("DELETE FROM {p}scheduled_changes WHERE user_id = ?1", p),
    }
}
