//! The device token statements in SQLite.

use super::super::sql::devices::DeviceSql;
use super::super::sql::stmt;

pub(super) fn sql(p: &str) -> DeviceSql {
    DeviceSql {
        put_device: stmt(
            "INSERT INTO {p}devices (token_hash, user_id, created_at, expires_at, \
             trusted_until, label, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (token_hash) DO UPDATE SET user_id = excluded.user_id, \
             created_at = excluded.created_at, expires_at = excluded.expires_at, \
             trusted_until = excluded.trusted_until, label = excluded.label, \
             last_used_at = excluded.last_used_at",
            p,
        ),
        use_device: stmt(
            "UPDATE {p}devices SET last_used_at = ?2 WHERE token_hash = ?1 AND expires_at > ?2 \
             RETURNING user_id, created_at, expires_at, trusted_until, label, last_used_at",
            p,
        ),
        list_devices: stmt(
            "SELECT token_hash, user_id, created_at, expires_at, trusted_until, label, \
             last_used_at FROM {p}devices WHERE user_id = ?1 AND expires_at > ?2 \
             ORDER BY created_at, token_hash",
            p,
        ),
        delete_device: stmt("DELETE FROM {p}devices WHERE token_hash = ?1", p),
        delete_devices: stmt("DELETE FROM {p}devices WHERE user_id = ?1", p),
        take_devices: stmt(
            "DELETE FROM {p}devices WHERE user_id = ?1 RETURNING token_hash",
            p,
        ),
        purge_devices: stmt("DELETE FROM {p}devices WHERE expires_at <= ?1", p),
    }
}
