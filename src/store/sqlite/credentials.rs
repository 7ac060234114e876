//! The authenticator statements in SQLite: booleans are integers, parameters `?N`.

use super::super::sql::credentials::AuthenticatorSql;
use super::super::sql::stmt;

pub(super) fn sql(p: &str) -> AuthenticatorSql {
    AuthenticatorSql {
        get_credentials: stmt(
            "SELECT id, name, encrypted_secret, algorithm, digits, period, enabled, last_step, \
             drift, created_at, last_used_at, replaces FROM {p}authenticators \
             WHERE user_id = ?1 ORDER BY created_at, id",
            p,
        ),
        pending_blocked: stmt(
            "SELECT EXISTS (SELECT 1 FROM {p}authenticators WHERE user_id = ?1 \
             AND enabled = 1 AND (?3 OR id = ?2))",
            p,
        ),
        delete_pending: stmt(
            "DELETE FROM {p}authenticators WHERE user_id = ?1 AND enabled = 0",
            p,
        ),
        insert_pending: stmt(
            "INSERT INTO {p}authenticators (user_id, id, name, encrypted_secret, algorithm, \
             digits, period, enabled, last_step, drift, created_at, last_used_at, replaces) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10, ?11, ?12)",
            p,
        ),
        find_pending: stmt(
            "SELECT a.id, a.replaces, \
             (SELECT COUNT(*) FROM {p}authenticators e WHERE e.user_id = ?1 \
             AND e.enabled = 1) AS enabled_count, \
             EXISTS (SELECT 1 FROM {p}authenticators r WHERE r.user_id = ?1 \
             AND r.enabled = 1 AND r.id = a.replaces) AS replaced \
             FROM {p}authenticators a \
             WHERE a.user_id = ?1 AND a.enabled = 0 AND a.encrypted_secret = ?2",
            p,
        ),
        enable_pending: stmt(
            "UPDATE {p}authenticators SET enabled = 1, last_step = ?3, drift = ?4, \
             replaces = NULL WHERE user_id = ?1 AND id = ?2 AND enabled = 0",
            p,
        ),
        delete_one: stmt(
            "DELETE FROM {p}authenticators WHERE user_id = ?1 AND id = ?2",
            p,
        ),
        advance_step: stmt(
            "UPDATE {p}authenticators SET last_step = ?3, drift = ?4, last_used_at = ?5 \
             WHERE user_id = ?1 AND id = ?2 AND enabled = 1 AND encrypted_secret = ?6 \
             AND (last_step IS NULL OR last_step < ?3)",
            p,
        ),
        rewrite_secret: stmt(
            "UPDATE {p}authenticators SET encrypted_secret = ?4 \
             WHERE user_id = ?1 AND id = ?2 AND encrypted_secret = ?3",
            p,
        ),
        rename: stmt(
            "UPDATE {p}authenticators SET name = ?3 WHERE user_id = ?1 AND id = ?2",
            p,
        ),
        find_one: stmt(
            "SELECT enabled, (SELECT COUNT(*) FROM {p}authenticators e \
             WHERE e.user_id = ?1 AND e.enabled = 1) AS enabled_count \
             FROM {p}authenticators WHERE user_id = ?1 AND id = ?2",
            p,
        ),
        delete_credentials: stmt("DELETE FROM {p}authenticators WHERE user_id = ?1", p),
        enabled_credential: stmt(
            "SELECT 1 FROM {p}authenticators WHERE user_id = ?1 AND enabled = 1 LIMIT 1",
            p,
        ),
    }
}
