//! [`SqliteStore`]: both store traits over a `sqlx::SqlitePool` the application already has.
//!
//! Every write that must be atomic is one statement in autocommit mode or one `BEGIN IMMEDIATE`
//! transaction. `IMMEDIATE` takes SQLite's write lock up front, so a transaction never has to
//! upgrade a read lock (the case where SQLite reports `SQLITE_BUSY` without waiting); waiting
//! for the lock is governed by the pool's `busy_timeout` (sqlx's default is 5 s). Use WAL mode
//! ([`SqliteStore::recommended_options`]) so readers never wait for writers.

use std::sync::Arc;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite};

use super::compat::{Query, assert_sql_safe, sqlx};
use super::sql::{
    DEFAULT_TABLE_PREFIX, Migration, SqlStoreError, algorithm, change_columns, change_record,
    check_prefix, expire_at_i64, migration_sql, opt_i64, opt_u64, pending_migrations, stmt, to_i64,
    to_u32, to_u64, token_hash,
};
use super::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    DeletedCredentials, DeviceRecord, EphemeralStore, LimiterState, LimiterUpdate, Purge,
    RecoveryRecord, RemoveCredential, ScheduledChangeRecord, TokenHash,
};

/// The schema, embedded from `migrations/sqlite/`, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/sqlite/0001_twofactor_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/sqlite/0002_twofactor_adversary_model.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../../migrations/sqlite/0003_twofactor_authenticators.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../../migrations/sqlite/0004_twofactor_scheduled_changes.sql"),
    },
];

/// Credentials, backup codes, recovery requests, device tokens, challenges and rate limits in SQLite.
///
/// Cheap to clone (the pool and the prepared statement texts are shared). Build it on the pool
/// your application already uses, run [`migrate`](Self::migrate) once at start-up, and pass it
/// to the service as both the credential and the ephemeral store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    prefix: Arc<str>,
    q: Arc<Queries>,
}

impl core::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The statement texts, built once with the table prefix.
struct Queries {
    get_credentials: Arc<str>,
    pending_blocked: Arc<str>,
    delete_pending: Arc<str>,
    insert_pending: Arc<str>,
    find_pending: Arc<str>,
    enable_pending: Arc<str>,
    delete_one: Arc<str>,
    advance_step: Arc<str>,
    rewrite_secret: Arc<str>,
    rename: Arc<str>,
    find_one: Arc<str>,
    delete_credentials: Arc<str>,
    enabled_credential: Arc<str>,
    delete_codes: Arc<str>,
    insert_code: Arc<str>,
    consume_code: Arc<str>,
    count_codes: Arc<str>,
    put_recovery: Arc<str>,
    get_recovery: Arc<str>,
    approve_recovery: Arc<str>,
    delete_recovery: Arc<str>,
    cancel_recovery_token: Arc<str>,
    due_recovery: Arc<str>,
    cancel_recovery: Arc<str>,
    put_change: Arc<str>,
    list_changes: Arc<str>,
    take_change: Arc<str>,
    delete_changes: Arc<str>,
    put_notice: Arc<str>,
    take_notice: Arc<str>,
    delete_notices: Arc<str>,
    purge_notices: Arc<str>,
    put_device: Arc<str>,
    use_device: Arc<str>,
    list_devices: Arc<str>,
    delete_device: Arc<str>,
    delete_devices: Arc<str>,
    take_devices: Arc<str>,
    delete_user_challenges: Arc<str>,
    delete_limiter: Arc<str>,
    purge_devices: Arc<str>,
    put_challenge: Arc<str>,
    get_challenge: Arc<str>,
    take_challenge: Arc<str>,
    purge_challenges: Arc<str>,
    get_limiter: Arc<str>,
    save_limiter: Arc<str>,
    purge_limiters: Arc<str>,
}

impl Queries {
    fn new(p: &str) -> Self {
        Self {
            get_credentials: stmt(
                "SELECT id, name, encrypted_secret, algorithm, digits, period, enabled, last_step, \
                 drift, created_at, last_used_at, replaces FROM {p}authenticators \
                 WHERE user_id = ?1 ORDER BY created_at, id",
                p,
            ),
            // Whether `put_pending` must refuse: an enabled authenticator with the record's id,
            // or (with `only_if_none_enabled`) any enabled one.
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
            // The pending authenticator with this secret, the user's enabled count, and whether
            // the authenticator it replaces is still there (enabled).
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
            // Whether the authenticator is enabled, and how many the user has enabled.
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
            delete_codes: stmt("DELETE FROM {p}backup_codes WHERE user_id = ?1", p),
            insert_code: stmt(
                "INSERT INTO {p}backup_codes (user_id, code_hash) VALUES (?1, ?2) \
                 ON CONFLICT DO NOTHING",
                p,
            ),
            consume_code: stmt(
                "DELETE FROM {p}backup_codes WHERE user_id = ?1 AND code_hash = ?2",
                p,
            ),
            count_codes: stmt("SELECT COUNT(*) FROM {p}backup_codes WHERE user_id = ?1", p),
            put_recovery: stmt(
                "INSERT INTO {p}recovery (user_id, requested_at, not_before, approved, \
                 needs_approval, failures_at_request, cancel_hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (user_id) DO UPDATE SET \
                 requested_at = excluded.requested_at, not_before = excluded.not_before, \
                 approved = excluded.approved, needs_approval = excluded.needs_approval, \
                 failures_at_request = excluded.failures_at_request, \
                 cancel_hash = excluded.cancel_hash",
                p,
            ),
            get_recovery: stmt(
                "SELECT requested_at, not_before, approved, needs_approval, failures_at_request, \
                 cancel_hash FROM {p}recovery WHERE user_id = ?1",
                p,
            ),
            approve_recovery: stmt("UPDATE {p}recovery SET approved = 1 WHERE user_id = ?1", p),
            delete_recovery: stmt("DELETE FROM {p}recovery WHERE user_id = ?1", p),
            cancel_recovery_token: stmt(
                "DELETE FROM {p}recovery WHERE user_id = ?1 AND cancel_hash = ?2",
                p,
            ),
            due_recovery: stmt(
                "DELETE FROM {p}recovery WHERE user_id = ?1 AND (approved = 1 \
                 OR (?3 = 0 AND needs_approval = 0 AND not_before <= ?2))",
                p,
            ),
            // With `include_approved` false, an approved request stays: the condition is
            // checked on the row the DELETE removes, so an approval committed first wins.
            cancel_recovery: stmt(
                "DELETE FROM {p}recovery WHERE user_id = ?1 AND (?2 OR approved = 0)",
                p,
            ),
            put_change: stmt(
                "INSERT INTO {p}scheduled_changes (user_id, id, kind, authenticator, \
                 backup_code_hashes, requested_at, not_before) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (user_id, id) DO NOTHING",
                p,
            ),
            // Byte order for ids (as in Rust), whatever the database's collation.
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
            put_notice: stmt(
                "INSERT INTO {p}notices (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (token_hash) DO UPDATE SET user_id = excluded.user_id, \
                 expires_at = excluded.expires_at",
                p,
            ),
            take_notice: stmt(
                "DELETE FROM {p}notices \
                 WHERE token_hash = ?1 AND user_id = ?2 AND expires_at > ?3",
                p,
            ),
            delete_notices: stmt("DELETE FROM {p}notices WHERE user_id = ?1", p),
            purge_notices: stmt("DELETE FROM {p}notices WHERE expires_at <= ?1", p),
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
            delete_user_challenges: stmt("DELETE FROM {p}challenges WHERE user_id = ?1", p),
            delete_limiter: stmt("DELETE FROM {p}limiter WHERE limiter_key = ?1", p),
            purge_devices: stmt("DELETE FROM {p}devices WHERE expires_at <= ?1", p),
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
            purge_challenges: stmt("DELETE FROM {p}challenges WHERE expires_at <= ?1", p),
            // `consecutive_failures` holds `LimiterState::failures` (see migration 0002).
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
            purge_limiters: stmt("DELETE FROM {p}limiter WHERE expire_at < ?1", p),
        }
    }
}

/// A query on one of the prepared statement texts.
fn q(sql: &Arc<str>) -> Query<'_, Sqlite> {
    sqlx::query(assert_sql_safe(sql))
}

/// Opens a `BEGIN IMMEDIATE` transaction (takes the write lock now, waiting up to the pool's
/// `busy_timeout`).
async fn begin_immediate(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, Sqlite>, SqlStoreError> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// Brings the schema (default `twofactor_` prefix) up to date; safe to call at every start-up.
///
/// Each file of `migrations/sqlite/` runs once: the versions applied are recorded in
/// `twofactor_schema_version`. A database created before that table existed (version 1 only)
/// is upgraded in place, keeping its rows. Everything runs in one `BEGIN IMMEDIATE`
/// transaction, so several processes starting at once apply each file once, and a failure
/// leaves the schema as it was. The application's own sqlx migrations (`_sqlx_migrations`) are
/// never touched.
///
/// # Errors
///
/// [`SqlStoreError::Database`] when the database cannot be reached or refuses the schema.
pub async fn migrate(pool: &SqlitePool) -> Result<(), SqlStoreError> {
    migrate_with_prefix(pool, DEFAULT_TABLE_PREFIX).await
}

async fn migrate_with_prefix(pool: &SqlitePool, prefix: &str) -> Result<(), SqlStoreError> {
    let mut tx = begin_immediate(pool).await?;
    sqlx::raw_sql(assert_sql_safe(&stmt(
        "CREATE TABLE IF NOT EXISTS {p}schema_version (version INTEGER PRIMARY KEY)",
        prefix,
    )))
    .execute(&mut *tx)
    .await?;
    let applied: Vec<i64> = sqlx::query_scalar(assert_sql_safe(&stmt(
        "SELECT version FROM {p}schema_version",
        prefix,
    )))
    .fetch_all(&mut *tx)
    .await?;
    let record = stmt(
        "INSERT INTO {p}schema_version (version) VALUES (?1)",
        prefix,
    );
    for migration in pending_migrations(MIGRATIONS, &applied) {
        sqlx::raw_sql(assert_sql_safe(&migration_sql(migration.sql, prefix)))
            .execute(&mut *tx)
            .await?;
        q(&record).bind(migration.version).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

impl SqliteStore {
    /// A store on `pool` with the default table prefix `twofactor_`.
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            prefix: DEFAULT_TABLE_PREFIX.into(),
            q: Arc::new(Queries::new(DEFAULT_TABLE_PREFIX)),
        }
    }

    /// A store on `pool` whose tables start with `prefix` instead of `twofactor_`.
    ///
    /// # Errors
    ///
    /// [`SqlStoreError::InvalidPrefix`] unless `prefix` is 1 to 32 characters of `a-z`, `0-9`
    /// and `_`, not starting with a digit (it is pasted into SQL, so nothing else is accepted).
    pub fn with_prefix(pool: SqlitePool, prefix: &str) -> Result<Self, SqlStoreError> {
        check_prefix(prefix)?;
        Ok(Self {
            pool,
            prefix: prefix.into(),
            q: Arc::new(Queries::new(prefix)),
        })
    }

    /// Connection options this store works best with: WAL journal (readers never wait for the
    /// writer), `synchronous = NORMAL` (durable at every checkpoint, safe in WAL), a 5 s busy
    /// timeout, and the file created if missing. Use them to build your pool if you have no
    /// reason to choose otherwise.
    pub fn recommended_options(filename: impl AsRef<std::path::Path>) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(filename)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5))
    }

    /// The pool this store uses.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Brings this store's tables up to date (each schema file once; see [`migrate`]).
    ///
    /// # Errors
    ///
    /// [`SqlStoreError::Database`] when the database cannot be reached or refuses the schema.
    pub async fn migrate(&self) -> Result<(), SqlStoreError> {
        migrate_with_prefix(&self.pool, &self.prefix).await
    }

    /// Deletes challenges, device tokens and notice tokens that expired at or before `now` and
    /// limiter rows whose `expire_at` is before `now`; returns how many rows went. Run it now and
    /// then (say every few minutes): expired rows are never returned as valid, they only take
    /// space.
    ///
    /// # Errors
    ///
    /// [`SqlStoreError::Database`] on a database failure; [`SqlStoreError::OutOfRange`] if
    /// `now` exceeds `i64::MAX`.
    pub async fn purge_expired(&self, now: u64) -> Result<u64, SqlStoreError> {
        let now = to_i64(now, "now")?;
        let mut tx = begin_immediate(&self.pool).await?;
        let a = q(&self.q.purge_challenges)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let b = q(&self.q.purge_limiters)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let c = q(&self.q.purge_devices).bind(now).execute(&mut *tx).await?;
        let d = q(&self.q.purge_notices).bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(a.rows_affected() + b.rows_affected() + c.rows_affected() + d.rows_affected())
    }
}

fn credential_from_row(row: &SqliteRow) -> Result<CredentialRecord, SqlStoreError> {
    Ok(CredentialRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        encrypted_secret: row.try_get("encrypted_secret")?,
        algorithm: algorithm(row.try_get::<&str, _>("algorithm")?)?,
        digits: to_u32(row.try_get("digits")?, "digits")?,
        period: to_u64(row.try_get("period")?, "period")?,
        enabled: row.try_get("enabled")?,
        last_step: opt_u64(row.try_get("last_step")?, "last_step")?,
        drift: row.try_get("drift")?,
        created_at: to_u64(row.try_get("created_at")?, "created_at")?,
        last_used_at: opt_u64(row.try_get("last_used_at")?, "last_used_at")?,
        replaces: row.try_get("replaces")?,
    })
}

fn limiter_from_row(row: &SqliteRow) -> Result<LimiterState, SqlStoreError> {
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

fn recovery_from_row(row: &SqliteRow) -> Result<RecoveryRecord, SqlStoreError> {
    Ok(RecoveryRecord {
        requested_at: to_u64(row.try_get("requested_at")?, "requested_at")?,
        not_before: to_u64(row.try_get("not_before")?, "not_before")?,
        approved: row.try_get("approved")?,
        needs_approval: row.try_get("needs_approval")?,
        failures_at_request: to_u32(row.try_get("failures_at_request")?, "failures_at_request")?,
        cancel_hash: token_hash(row.try_get("cancel_hash")?, "cancel_hash")?,
    })
}

fn change_from_row(row: &SqliteRow) -> Result<ScheduledChangeRecord, SqlStoreError> {
    change_record(
        row.try_get("id")?,
        row.try_get("kind")?,
        row.try_get("authenticator")?,
        row.try_get("backup_code_hashes")?,
        row.try_get("requested_at")?,
        row.try_get("not_before")?,
    )
}

fn device_from_row(row: &SqliteRow) -> Result<DeviceRecord, SqlStoreError> {
    Ok(DeviceRecord {
        user_id: row.try_get("user_id")?,
        created_at: to_u64(row.try_get("created_at")?, "created_at")?,
        expires_at: to_u64(row.try_get("expires_at")?, "expires_at")?,
        trusted_until: opt_u64(row.try_get("trusted_until")?, "trusted_until")?,
        label: row.try_get("label")?,
        last_used_at: to_u64(row.try_get("last_used_at")?, "last_used_at")?,
    })
}

fn challenge_from_row(row: &SqliteRow, now: u64) -> Result<Option<ChallengeRecord>, SqlStoreError> {
    let expires_at = to_u64(row.try_get("expires_at")?, "expires_at")?;
    if now < expires_at {
        Ok(Some(ChallengeRecord {
            user_id: row.try_get("user_id")?,
            expires_at,
        }))
    } else {
        Ok(None)
    }
}

impl SqliteStore {
    /// Replaces the user's backup codes inside `tx`.
    async fn write_codes(
        &self,
        tx: &mut sqlx::SqliteConnection,
        user_id: &str,
        hashes: &[BackupCodeHash],
    ) -> Result<(), SqlStoreError> {
        q(&self.q.delete_codes)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            q(&self.q.insert_code)
                .bind(user_id)
                .bind(&hash[..])
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

impl CredentialStore for SqliteStore {
    type Error = SqlStoreError;

    async fn get_credentials(&self, user_id: &str) -> Result<Vec<CredentialRecord>, Self::Error> {
        q(&self.q.get_credentials)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(credential_from_row)
            .collect()
    }

    /// Stores the record with `enabled` forced to `false`, whatever the caller passed.
    async fn put_pending(
        &self,
        user_id: &str,
        record: &CredentialRecord,
        only_if_none_enabled: bool,
    ) -> Result<bool, Self::Error> {
        // Every value is checked before the transaction, so a refused value writes nothing.
        let period = to_i64(record.period, "period")?;
        let last_step = opt_i64(record.last_step, "last_step")?;
        let created_at = to_i64(record.created_at, "created_at")?;
        let last_used_at = opt_i64(record.last_used_at, "last_used_at")?;
        let mut tx = begin_immediate(&self.pool).await?;
        let blocked: bool = q(&self.q.pending_blocked)
            .bind(user_id)
            .bind(record.id.as_str())
            .bind(only_if_none_enabled)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if blocked {
            tx.rollback().await?;
            return Ok(false);
        }
        q(&self.q.delete_pending)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        q(&self.q.insert_pending)
            .bind(user_id)
            .bind(record.id.as_str())
            .bind(record.name.as_str())
            .bind(&record.encrypted_secret[..])
            .bind(record.algorithm.as_str())
            .bind(i64::from(record.digits))
            .bind(period)
            .bind(last_step)
            .bind(record.drift)
            .bind(created_at)
            .bind(last_used_at)
            .bind(record.replaces.as_deref())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn activate(
        &self,
        user_id: &str,
        expected_secret: &[u8],
        step: u64,
        drift: i64,
        backup_codes: Option<&[BackupCodeHash]>,
        max_enabled: u32,
    ) -> Result<bool, Self::Error> {
        let step = to_i64(step, "step")?;
        // `BEGIN IMMEDIATE` holds the write lock from the first read: no other writer can
        // enable, add or remove one of the user's authenticators between the checks and the
        // writes.
        let mut tx = begin_immediate(&self.pool).await?;
        let Some(row) = q(&self.q.find_pending)
            .bind(user_id)
            .bind(expected_secret)
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.rollback().await?;
            return Ok(false);
        };
        let id: String = row.try_get("id")?;
        let enabled = to_u64(row.try_get("enabled_count")?, "enabled count")?;
        let replaced = backup_codes.is_none() && row.try_get::<bool, _>("replaced")?;
        let allowed = match backup_codes {
            Some(_) => enabled == 0,
            None => enabled > 0,
        };
        let after = enabled - u64::from(replaced) + 1;
        if !allowed || after > u64::from(max_enabled) {
            tx.rollback().await?;
            return Ok(false);
        }
        let old = if replaced {
            row.try_get::<Option<String>, _>("replaces")?
        } else {
            None
        };
        q(&self.q.enable_pending)
            .bind(user_id)
            .bind(id.as_str())
            .bind(step)
            .bind(drift)
            .execute(&mut *tx)
            .await?;
        if let Some(old) = old {
            q(&self.q.delete_one)
                .bind(user_id)
                .bind(old.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(codes) = backup_codes {
            self.write_codes(&mut tx, user_id, codes).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn advance_step(
        &self,
        user_id: &str,
        id: &str,
        expected_secret: &[u8],
        step: u64,
        drift: i64,
        now: u64,
    ) -> Result<bool, Self::Error> {
        // One statement: the secret, the enabled flag and the step are checked where the row is
        // written, so an authenticator removed or re-enrolled since the code was checked is
        // never advanced.
        let done = q(&self.q.advance_step)
            .bind(user_id)
            .bind(id)
            .bind(to_i64(step, "step")?)
            .bind(drift)
            .bind(to_i64(now, "now")?)
            .bind(expected_secret)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn rewrite_secret(
        &self,
        user_id: &str,
        id: &str,
        old_secret: &[u8],
        new_secret: &[u8],
    ) -> Result<bool, Self::Error> {
        let done = q(&self.q.rewrite_secret)
            .bind(user_id)
            .bind(id)
            .bind(old_secret)
            .bind(new_secret)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn rename_credential(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> Result<bool, Self::Error> {
        let done = q(&self.q.rename)
            .bind(user_id)
            .bind(id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_credential(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<RemoveCredential, Self::Error> {
        // Under the write lock, so two removals of a user's last two enabled authenticators
        // run one after the other and the second sees one left.
        let mut tx = begin_immediate(&self.pool).await?;
        let Some(row) = q(&self.q.find_one)
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.rollback().await?;
            return Ok(RemoveCredential::NotFound);
        };
        let enabled: bool = row.try_get("enabled")?;
        let enabled_count: i64 = row.try_get("enabled_count")?;
        if enabled && enabled_count <= 1 {
            tx.rollback().await?;
            return Ok(RemoveCredential::LastEnabled);
        }
        q(&self.q.delete_one)
            .bind(user_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RemoveCredential::Removed)
    }

    async fn delete_credentials(&self, user_id: &str) -> Result<bool, Self::Error> {
        let mut tx = begin_immediate(&self.pool).await?;
        let done = q(&self.q.delete_credentials)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        q(&self.q.delete_codes)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        q(&self.q.delete_recovery)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        q(&self.q.delete_changes)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn consume_backup_code(
        &self,
        user_id: &str,
        hash: &BackupCodeHash,
    ) -> Result<Option<u32>, Self::Error> {
        let mut tx = begin_immediate(&self.pool).await?;
        let done = q(&self.q.consume_code)
            .bind(user_id)
            .bind(&hash[..])
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let remaining: i64 = q(&self.q.count_codes)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let remaining = to_u32(remaining, "backup code count")?;
        tx.commit().await?;
        Ok(Some(remaining))
    }

    async fn replace_backup_codes(
        &self,
        user_id: &str,
        hashes: &[BackupCodeHash],
    ) -> Result<bool, Self::Error> {
        let mut tx = begin_immediate(&self.pool).await?;
        let enabled = q(&self.q.enabled_credential)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !enabled {
            tx.rollback().await?;
            return Ok(false);
        }
        self.write_codes(&mut tx, user_id, hashes).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn backup_codes_remaining(&self, user_id: &str) -> Result<u32, Self::Error> {
        let count: i64 = q(&self.q.count_codes)
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        to_u32(count, "backup code count")
    }

    async fn put_recovery(
        &self,
        user_id: &str,
        record: &RecoveryRecord,
    ) -> Result<(), Self::Error> {
        q(&self.q.put_recovery)
            .bind(user_id)
            .bind(to_i64(record.requested_at, "requested_at")?)
            .bind(to_i64(record.not_before, "not_before")?)
            .bind(record.approved)
            .bind(record.needs_approval)
            .bind(i64::from(record.failures_at_request))
            .bind(&record.cancel_hash[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_recovery(&self, user_id: &str) -> Result<Option<RecoveryRecord>, Self::Error> {
        let Some(row) = q(&self.q.get_recovery)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        recovery_from_row(&row).map(Some)
    }

    async fn approve_recovery(&self, user_id: &str) -> Result<bool, Self::Error> {
        let done = q(&self.q.approve_recovery)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn cancel_recovery(
        &self,
        user_id: &str,
        include_approved: bool,
    ) -> Result<bool, Self::Error> {
        // One statement: whether the request is approved is checked on the row it deletes.
        let done = q(&self.q.cancel_recovery)
            .bind(user_id)
            .bind(include_approved)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn cancel_recovery_with_token(
        &self,
        user_id: &str,
        cancel_hash: &TokenHash,
    ) -> Result<bool, Self::Error> {
        // One statement: of concurrent calls with the token, one deletes the row.
        let done = q(&self.q.cancel_recovery_token)
            .bind(user_id)
            .bind(&cancel_hash[..])
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn complete_recovery(
        &self,
        user_id: &str,
        now: u64,
        approval_required: bool,
    ) -> Result<bool, Self::Error> {
        // A `now` beyond i64::MAX is later than any stored `not_before`.
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let mut tx = begin_immediate(&self.pool).await?;
        let done = q(&self.q.due_recovery)
            .bind(user_id)
            .bind(now)
            .bind(approval_required)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        q(&self.q.delete_credentials)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        q(&self.q.delete_codes)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        q(&self.q.delete_changes)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn put_change(
        &self,
        user_id: &str,
        record: &ScheduledChangeRecord,
    ) -> Result<bool, Self::Error> {
        let (kind, authenticator, hashes) = change_columns(&record.kind);
        // One statement: of two puts with one id, the primary key lets the first stay.
        let done = q(&self.q.put_change)
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

    async fn list_changes(&self, user_id: &str) -> Result<Vec<ScheduledChangeRecord>, Self::Error> {
        q(&self.q.list_changes)
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
        // Every stored `not_before` is at most i64::MAX, so a later `due_by` takes any change.
        let due_by = i64::try_from(due_by).unwrap_or(i64::MAX);
        // One statement takes the row: it is gone for every other caller the moment it is
        // returned. The transaction only lets a row this version cannot read stay where it was
        // (reported as an error, neither acted on nor lost).
        let mut tx = begin_immediate(&self.pool).await?;
        let row = q(&self.q.take_change)
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
        let done = q(&self.q.delete_changes)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn put_notice(
        &self,
        hash: &TokenHash,
        user_id: &str,
        expires_at: u64,
    ) -> Result<(), Self::Error> {
        q(&self.q.put_notice)
            .bind(&hash[..])
            .bind(user_id)
            .bind(to_i64(expires_at, "expires_at")?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_notice(
        &self,
        user_id: &str,
        hash: &TokenHash,
        now: u64,
    ) -> Result<bool, Self::Error> {
        // Every stored expiry is at most i64::MAX, so at a later `now` every token has expired.
        let Ok(now) = i64::try_from(now) else {
            return Ok(false);
        };
        // One statement: owner, expiry and existence are checked on the row it deletes, so a
        // token is accepted at most once.
        let done = q(&self.q.take_notice)
            .bind(&hash[..])
            .bind(user_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_device(&self, hash: &TokenHash, record: &DeviceRecord) -> Result<(), Self::Error> {
        q(&self.q.put_device)
            .bind(&hash[..])
            .bind(record.user_id.as_str())
            .bind(to_i64(record.created_at, "created_at")?)
            .bind(to_i64(record.expires_at, "expires_at")?)
            .bind(opt_i64(record.trusted_until, "trusted_until")?)
            .bind(record.label.as_str())
            .bind(to_i64(record.last_used_at, "last_used_at")?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn use_device(
        &self,
        hash: &TokenHash,
        now: u64,
    ) -> Result<Option<DeviceRecord>, Self::Error> {
        // Every stored expiry is at most i64::MAX, so at a later `now` every token has expired.
        let Ok(now) = i64::try_from(now) else {
            return Ok(None);
        };
        // One statement: a token deleted before it runs is not found, one deleted after it was
        // found was live when it was presented.
        q(&self.q.use_device)
            .bind(&hash[..])
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(device_from_row)
            .transpose()
    }

    async fn list_devices(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(TokenHash, DeviceRecord)>, Self::Error> {
        let Ok(now) = i64::try_from(now) else {
            return Ok(Vec::new());
        };
        q(&self.q.list_devices)
            .bind(user_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let hash = token_hash(row.try_get("token_hash")?, "token_hash")?;
                Ok((hash, device_from_row(row)?))
            })
            .collect()
    }

    async fn delete_device(&self, hash: &TokenHash) -> Result<bool, Self::Error> {
        let done = q(&self.q.delete_device)
            .bind(&hash[..])
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_devices(&self, user_id: &str) -> Result<u64, Self::Error> {
        let done = q(&self.q.delete_devices)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
    async fn delete_user(&self, user_id: &str) -> Result<DeletedCredentials, Self::Error> {
        let mut tx = begin_immediate(&self.pool).await?;
        let credential = q(&self.q.delete_credentials)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        q(&self.q.delete_codes)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        q(&self.q.delete_recovery)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        q(&self.q.delete_changes)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        q(&self.q.delete_notices)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let devices = q(&self.q.take_devices)
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| token_hash(row.try_get("token_hash")?, "token_hash"))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        Ok(DeletedCredentials {
            credential,
            devices,
        })
    }
}

impl EphemeralStore for SqliteStore {
    type Error = SqlStoreError;

    async fn put_challenge(
        &self,
        hash: &ChallengeHash,
        record: &ChallengeRecord,
    ) -> Result<(), Self::Error> {
        q(&self.q.put_challenge)
            .bind(&hash[..])
            .bind(record.user_id.as_str())
            .bind(to_i64(record.expires_at, "expires_at")?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_challenge(
        &self,
        hash: &ChallengeHash,
        now: u64,
    ) -> Result<Option<ChallengeRecord>, Self::Error> {
        let row = q(&self.q.get_challenge)
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => challenge_from_row(&row, now),
            None => Ok(None),
        }
    }

    async fn take_challenge(
        &self,
        hash: &ChallengeHash,
        now: u64,
    ) -> Result<Option<ChallengeRecord>, Self::Error> {
        // One statement: the row is gone for every other caller the moment it is returned.
        // An expired challenge is deleted as well, and reported as absent.
        let row = q(&self.q.take_challenge)
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => challenge_from_row(&row, now),
            None => Ok(None),
        }
    }

    async fn update_limiter<F>(
        &self,
        key: &str,
        expire_at: u64,
        update: F,
    ) -> Result<LimiterUpdate, Self::Error>
    where
        F: Fn(LimiterState) -> LimiterState + Send + Sync,
    {
        let mut tx = begin_immediate(&self.pool).await?;
        let current = match q(&self.q.get_limiter)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(row) => limiter_from_row(&row)?,
            None => LimiterState::default(),
        };
        let next = update(current);
        q(&self.q.save_limiter)
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
        match q(&self.q.get_limiter)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
        {
            Some(row) => limiter_from_row(&row),
            None => Ok(LimiterState::default()),
        }
    }
    async fn delete_user_state(
        &self,
        user_id: &str,
        limiter_keys: &[String],
    ) -> Result<u64, Self::Error> {
        let mut tx = begin_immediate(&self.pool).await?;
        let mut count = q(&self.q.delete_user_challenges)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for key in limiter_keys {
            count += q(&self.q.delete_limiter)
                .bind(key.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(count)
    }
}

/// The same as the inherent [`SqliteStore::purge_expired`].
impl Purge for SqliteStore {
    type Error = SqlStoreError;

    async fn purge_expired(&self, now: u64) -> Result<u64, Self::Error> {
        SqliteStore::purge_expired(self, now).await
    }
}
