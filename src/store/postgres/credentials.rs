//! The authenticator statements in PostgreSQL, and the user's lock.

use super::super::compat::sqlx;
use super::super::sql::credentials::AuthenticatorSql;
use super::super::sql::prelude::*;
use super::{PostgresStore, q};

pub(super) fn sql(p: &str) -> AuthenticatorSql {
    AuthenticatorSql {
        // Byte order for ids (as in Rust), whatever the database's collation.
        get_credentials: stmt(
            "SELECT id, name, encrypted_secret, algorithm, digits, period, enabled, last_step, \
             drift, created_at, last_used_at, replaces FROM {p}authenticators \
             WHERE user_id = $1 ORDER BY created_at, id COLLATE \"C\"",
            p,
        ),
        pending_blocked: stmt(
            "SELECT EXISTS (SELECT 1 FROM {p}authenticators WHERE user_id = $1 \
             AND enabled AND ($3::BOOLEAN OR id = $2))",
            p,
        ),
        delete_pending: stmt(
            "DELETE FROM {p}authenticators WHERE user_id = $1 AND NOT enabled",
            p,
        ),
        insert_pending: stmt(
            "INSERT INTO {p}authenticators (user_id, id, name, encrypted_secret, algorithm, \
             digits, period, enabled, last_step, drift, created_at, last_used_at, replaces) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8, $9, $10, $11, $12)",
            p,
        ),
        find_pending: stmt(
            "SELECT a.id, a.replaces, \
             (SELECT COUNT(*) FROM {p}authenticators e WHERE e.user_id = $1 \
             AND e.enabled) AS enabled_count, \
             EXISTS (SELECT 1 FROM {p}authenticators r WHERE r.user_id = $1 \
             AND r.enabled AND r.id = a.replaces) AS replaced \
             FROM {p}authenticators a \
             WHERE a.user_id = $1 AND NOT a.enabled AND a.encrypted_secret = $2",
            p,
        ),
        enable_pending: stmt(
            "UPDATE {p}authenticators SET enabled = TRUE, last_step = $3, drift = $4, \
             replaces = NULL WHERE user_id = $1 AND id = $2 AND NOT enabled",
            p,
        ),
        delete_one: stmt(
            "DELETE FROM {p}authenticators WHERE user_id = $1 AND id = $2",
            p,
        ),
        advance_step: stmt(
            "UPDATE {p}authenticators SET last_step = $3, drift = $4, last_used_at = $5 \
             WHERE user_id = $1 AND id = $2 AND enabled AND encrypted_secret = $6 \
             AND (last_step IS NULL OR last_step < $3)",
            p,
        ),
        rewrite_secret: stmt(
            "UPDATE {p}authenticators SET encrypted_secret = $4 \
             WHERE user_id = $1 AND id = $2 AND encrypted_secret = $3",
            p,
        ),
        rename: stmt(
            "UPDATE {p}authenticators SET name = $3 WHERE user_id = $1 AND id = $2",
            p,
        ),
        find_one: stmt(
            "SELECT enabled, (SELECT COUNT(*) FROM {p}authenticators e \
             WHERE e.user_id = $1 AND e.enabled) AS enabled_count \
             FROM {p}authenticators WHERE user_id = $1 AND id = $2",
            p,
        ),
        delete_credentials: stmt("DELETE FROM {p}authenticators WHERE user_id = $1", p),
        enabled_credential: stmt(
            "SELECT 1 FROM {p}authenticators WHERE user_id = $1 AND enabled LIMIT 1",
            p,
        ),
    }
}

/// `(user_id)`: the user's lock (see the module docs), a transaction-level advisory lock in the
/// two-key space, the first key naming this store's tables, the second the user. Two users
/// whose ids hash alike only wait for each other.
pub(super) fn lock_user(p: &str) -> Stmt {
    stmt(
        "SELECT pg_advisory_xact_lock(hashtext('twofactor user {p}'), hashtext($1))",
        p,
    )
}

impl PostgresStore {
    /// Takes the user's lock inside `tx`, held until it commits or rolls back (see the module
    /// docs). Every transaction that reads a user's authenticators before it writes takes it
    /// first, and only it, so they queue behind each other and cannot deadlock.
    pub(super) async fn lock_user(
        &self,
        tx: &mut sqlx::PgConnection,
        user_id: &str,
    ) -> Result<(), SqlStoreError> {
        q(&self.q.dialect.lock_user)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}
