//! The floor under the second step: the SQL statements one `POST /api/login/2fa` runs, in the
//! same order and the same transactions, bare through sqlx at the same concurrency, on tables
//! of their own in the same database. No HTTP, no JSON, no HMAC, no AES-GCM, no service logic:
//! what is left is the database's own cost, which the server can approach but not beat.
//!
//! The statements mirror `src/store/sqlite.rs`, `src/store/postgres.rs` and the demo's
//! `examples/server/src/db.rs` (read off `RUST_LOG=sqlx::query=debug` of a real second step):
//!
//! 1. read the challenge;
//! 2. the limiter's `acquire`: one transaction that reads and writes the user's limiter row
//!    (`BEGIN IMMEDIATE` + SELECT + upsert on SQLite; locking upsert + UPDATE on PostgreSQL);
//! 3. read the user's authenticators;
//! 4. advance the matching authenticator's last accepted step (compare-and-set `UPDATE`);
//! 5. the limiter's `succeed`: the same transaction as 2;
//! 6. cancel any pending recovery (`DELETE`);
//! 7. take the challenge (`DELETE … RETURNING`);
//! 8. insert the session.
//!
//! If the store's statements change, change these with them.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Sqlite};
use twofactor::store::{
    ChallengeRecord, CredentialRecord, CredentialStore as _, EphemeralStore as _, PostgresStore,
    SqliteStore,
};

use crate::http::error_chain;
use crate::stats::Phase;

/// One simulated login's keys.
struct Row {
    user_id: String,
    challenge: [u8; 32],
    limiter_key: String,
}

fn rows(n: usize, prefix: &str) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let mut challenge = [0u8; 32];
            challenge[..8].copy_from_slice(&(i as u64).to_le_bytes());
            challenge[8..8 + prefix.len().min(24)]
                .copy_from_slice(&prefix.as_bytes()[..prefix.len().min(24)]);
            Row {
                user_id: format!("floor-user-{i:06}"),
                challenge,
                limiter_key: format!("u:floor-user-{i:06}"),
            }
        })
        .collect()
}

/// A table prefix of its own for this run (the store accepts `a-z0-9_`, at most 32 chars).
fn prefix() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
    format!("floor{}x{n}_", std::process::id() % 100_000)
}

/// The id of every simulated user's one authenticator.
const AUTHENTICATOR: &str = "floor-phone";

fn credential(now: u64) -> CredentialRecord {
    CredentialRecord {
        id: AUTHENTICATOR.to_owned(),
        name: "Phone".to_owned(),
        // The size of a real ciphertext (version, key id, nonce, 20-byte secret, tag).
        encrypted_secret: vec![7u8; 50],
        algorithm: twofactor::Algorithm::Sha1,
        digits: 6,
        period: 30,
        enabled: false,
        last_step: None,
        drift: 0,
        created_at: now,
        last_used_at: None,
        replaces: None,
    }
}

fn now() -> u64 {
    crate::flow::unix_now()
}

fn db_err(context: &str) -> impl Fn(sqlx::Error) -> String + '_ {
    move |e| format!("floor: {context}: {}", error_chain(&e))
}

/// The SQLite pool as the demo server opens it (WAL, foreign keys, 10 s busy timeout, 8
/// connections).
///
/// # Errors
/// When the database cannot be opened.
pub async fn sqlite_pool(url: &str) -> Result<SqlitePool, String> {
    use std::str::FromStr as _;
    let options = SqliteConnectOptions::from_str(url)
        .map_err(db_err("url"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(db_err("open"))
}

/// The PostgreSQL pool as the demo server opens it (10 connections).
///
/// # Errors
/// When the database cannot be reached.
pub async fn pg_pool(url: &str) -> Result<PgPool, String> {
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(db_err("connect"))
}

/// Runs `n` second steps' statements on SQLite at `url` with `clients` in flight.
///
/// # Errors
/// Setup failures; a failed statement during the run is counted as status 0 instead.
pub async fn sqlite(url: &str, n: usize, clients: usize) -> Result<Phase, String> {
    let pool = sqlite_pool(url).await?;
    let p = prefix();
    let store = SqliteStore::with_prefix(pool.clone(), &p).map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    for stmt in [
        format!(
            "CREATE TABLE {p}demo_users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, \
             password_hash TEXT NOT NULL, created_at INTEGER NOT NULL)"
        ),
        format!(
            "CREATE TABLE {p}demo_sessions (token_hash BLOB PRIMARY KEY, user_id TEXT NOT NULL \
             REFERENCES {p}demo_users(id) ON DELETE CASCADE, expires_at INTEGER NOT NULL)"
        ),
    ] {
        sqlx::query(AssertSqlSafe(stmt))
            .execute(&pool)
            .await
            .map_err(db_err("create"))?;
    }
    let rows = rows(n, &p);
    let t = now();
    for r in &rows {
        seed_user(&pool, &p, &r.user_id).await?;
        let record = credential(t);
        store
            .put_pending(&r.user_id, &record, true)
            .await
            .map_err(|e| e.to_string())?;
        store
            .activate(
                &r.user_id,
                &record.encrypted_secret,
                t / 30 - 1,
                0,
                Some(&[]),
                5,
            )
            .await
            .map_err(|e| e.to_string())?;
        store
            .put_challenge(
                &r.challenge,
                &ChallengeRecord {
                    user_id: r.user_id.clone(),
                    expires_at: t + 600,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let sql = SqliteSql::new(&p);
    let (phase, _) = crate::flow::concurrently("floor (SQL)", rows, clients, move |r: Row| {
        let (pool, sql) = (pool.clone(), sql.clone());
        async move {
            let started = Instant::now();
            let status = match sqlite_second_step(&pool, &sql, &r).await {
                Ok(()) => 200,
                Err(e) => {
                    eprintln!("floor: {}", error_chain(&e));
                    0
                }
            };
            (r, status, started.elapsed())
        }
    })
    .await;
    Ok(phase)
}

async fn seed_user(pool: &SqlitePool, p: &str, id: &str) -> Result<(), String> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {p}demo_users (id, email, password_hash, created_at) VALUES (?1, ?2, 'x', 0)"
    )))
    .bind(id)
    .bind(format!("{id}@example.invalid"))
    .execute(pool)
    .await
    .map_err(db_err("seed"))?;
    Ok(())
}

/// The statement texts, with this run's prefix.
#[derive(Clone)]
struct SqliteSql {
    get_challenge: String,
    get_limiter: String,
    save_limiter: String,
    get_credential: String,
    advance_step: String,
    delete_recovery: String,
    take_challenge: String,
    insert_session: String,
}

impl SqliteSql {
    fn new(p: &str) -> Self {
        Self {
            get_challenge: format!(
                "SELECT user_id, expires_at FROM {p}challenges WHERE challenge_hash = ?1"
            ),
            get_limiter: format!(
                "SELECT window_start, attempts, consecutive_failures, locked_until, forgiven_at, \
                 since_success, last_success_at FROM {p}limiter WHERE limiter_key = ?1"
            ),
            save_limiter: format!(
                "INSERT INTO {p}limiter (limiter_key, window_start, attempts, \
                 consecutive_failures, locked_until, forgiven_at, since_success, \
                 last_success_at, expire_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (limiter_key) DO UPDATE SET window_start = excluded.window_start, \
                 attempts = excluded.attempts, \
                 consecutive_failures = excluded.consecutive_failures, \
                 locked_until = excluded.locked_until, forgiven_at = excluded.forgiven_at, \
                 since_success = excluded.since_success, \
                 last_success_at = excluded.last_success_at, expire_at = excluded.expire_at"
            ),
            get_credential: format!(
                "SELECT id, name, encrypted_secret, algorithm, digits, period, enabled, last_step, \
                 drift, created_at, last_used_at, replaces FROM {p}authenticators \
                 WHERE user_id = ?1 ORDER BY created_at, id"
            ),
            advance_step: format!(
                "UPDATE {p}authenticators SET last_step = ?3, drift = ?4, last_used_at = ?5 \
                 WHERE user_id = ?1 AND id = ?2 AND enabled = 1 AND encrypted_secret = ?6 \
                 AND (last_step IS NULL OR last_step < ?3)"
            ),
            delete_recovery: format!("DELETE FROM {p}recovery WHERE user_id = ?1"),
            take_challenge: format!(
                "DELETE FROM {p}challenges WHERE challenge_hash = ?1 RETURNING user_id, expires_at"
            ),
            insert_session: format!(
                "INSERT INTO {p}demo_sessions (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)"
            ),
        }
    }
}

fn sq(sql: &str) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query(AssertSqlSafe(sql.to_owned()))
}

async fn sqlite_limiter(pool: &SqlitePool, sql: &SqliteSql, key: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let row = sq(&sql.get_limiter)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
    let attempts = i64::from(row.is_some());
    sq(&sql.save_limiter)
        .bind(key)
        .bind(0_i64)
        .bind(attempts)
        .bind(0_i64)
        .bind(0_i64)
        .bind(0_i64)
        .bind(0_i64)
        .bind(0_i64)
        .bind(i64::MAX)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn sqlite_second_step(
    pool: &SqlitePool,
    sql: &SqliteSql,
    r: &Row,
) -> Result<(), sqlx::Error> {
    let t = i64::try_from(now()).unwrap_or(i64::MAX);
    sq(&sql.get_challenge)
        .bind(&r.challenge[..])
        .fetch_optional(pool)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    sqlite_limiter(pool, sql, &r.limiter_key).await?;
    sq(&sql.get_credential)
        .bind(&r.user_id)
        .fetch_all(pool)
        .await?
        .first()
        .ok_or(sqlx::Error::RowNotFound)?;
    let advanced = sq(&sql.advance_step)
        .bind(&r.user_id)
        .bind(AUTHENTICATOR)
        .bind(t / 30)
        .bind(0_i64)
        .bind(t)
        .bind(vec![7u8; 50])
        .execute(pool)
        .await?;
    if advanced.rows_affected() != 1 {
        return Err(sqlx::Error::RowNotFound);
    }
    sqlite_limiter(pool, sql, &r.limiter_key).await?;
    sq(&sql.delete_recovery)
        .bind(&r.user_id)
        .execute(pool)
        .await?;
    sq(&sql.take_challenge)
        .bind(&r.challenge[..])
        .fetch_optional(pool)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    sq(&sql.insert_session)
        .bind(&session_hash(&r.challenge)[..])
        .bind(&r.user_id)
        .bind(t + 43_200)
        .execute(pool)
        .await?;
    Ok(())
}

/// A session token hash distinct per login (its value does not matter to the database).
fn session_hash(challenge: &[u8; 32]) -> [u8; 32] {
    let mut h = *challenge;
    h[31] ^= 0xa5;
    h
}

/// Runs `n` second steps' statements on PostgreSQL at `url` with `clients` in flight.
///
/// # Errors
/// Setup failures; a failed statement during the run is counted as status 0 instead.
pub async fn postgres(url: &str, n: usize, clients: usize) -> Result<Phase, String> {
    let pool = pg_pool(url).await?;
    let p = prefix();
    let store = PostgresStore::with_prefix(pool.clone(), &p).map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    for stmt in [
        format!(
            "CREATE TABLE {p}demo_users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, \
             password_hash TEXT NOT NULL, created_at BIGINT NOT NULL)"
        ),
        format!(
            "CREATE TABLE {p}demo_sessions (token_hash BYTEA PRIMARY KEY, user_id TEXT NOT NULL \
             REFERENCES {p}demo_users(id) ON DELETE CASCADE, expires_at BIGINT NOT NULL)"
        ),
    ] {
        sqlx::query(AssertSqlSafe(stmt))
            .execute(&pool)
            .await
            .map_err(db_err("create"))?;
    }
    let rows = rows(n, &p);
    let t = now();
    for r in &rows {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}demo_users (id, email, password_hash, created_at) \
             VALUES ($1, $2, 'x', 0)"
        )))
        .bind(&r.user_id)
        .bind(format!("{}@example.invalid", r.user_id))
        .execute(&pool)
        .await
        .map_err(db_err("seed"))?;
        let record = credential(t);
        store
            .put_pending(&r.user_id, &record, true)
            .await
            .map_err(|e| e.to_string())?;
        store
            .activate(
                &r.user_id,
                &record.encrypted_secret,
                t / 30 - 1,
                0,
                Some(&[]),
                5,
            )
            .await
            .map_err(|e| e.to_string())?;
        store
            .put_challenge(
                &r.challenge,
                &ChallengeRecord {
                    user_id: r.user_id.clone(),
                    expires_at: t + 600,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let sql = PgSql::new(&p);
    let (phase, _) = crate::flow::concurrently("floor (SQL)", rows, clients, move |r: Row| {
        let (pool, sql) = (pool.clone(), sql.clone());
        async move {
            let started = Instant::now();
            let status = match pg_second_step(&pool, &sql, &r).await {
                Ok(()) => 200,
                Err(e) => {
                    eprintln!("floor: {}", error_chain(&e));
                    0
                }
            };
            (r, status, started.elapsed())
        }
    })
    .await;
    Ok(phase)
}

#[derive(Clone)]
struct PgSql {
    get_challenge: String,
    lock_limiter: String,
    save_limiter: String,
    get_credential: String,
    advance_step: String,
    delete_recovery: String,
    take_challenge: String,
    insert_session: String,
}

impl PgSql {
    fn new(p: &str) -> Self {
        Self {
            get_challenge: format!(
                "SELECT user_id, expires_at FROM {p}challenges WHERE challenge_hash = $1"
            ),
            lock_limiter: format!(
                "INSERT INTO {p}limiter AS l (limiter_key, window_start, attempts, \
                 consecutive_failures, locked_until, forgiven_at, since_success, \
                 last_success_at, expire_at) VALUES ($1, 0, 0, 0, 0, 0, 0, 0, $2) \
                 ON CONFLICT (limiter_key) DO UPDATE SET expire_at = excluded.expire_at \
                 RETURNING l.window_start, l.attempts, l.consecutive_failures, l.locked_until, \
                 l.forgiven_at, l.since_success, l.last_success_at"
            ),
            save_limiter: format!(
                "UPDATE {p}limiter SET window_start = $2, attempts = $3, \
                 consecutive_failures = $4, locked_until = $5, forgiven_at = $6, \
                 since_success = $7, last_success_at = $8, expire_at = $9 \
                 WHERE limiter_key = $1"
            ),
            get_credential: format!(
                "SELECT id, name, encrypted_secret, algorithm, digits, period, enabled, last_step, \
                 drift, created_at, last_used_at, replaces FROM {p}authenticators \
                 WHERE user_id = $1 ORDER BY created_at, id COLLATE \"C\""
            ),
            advance_step: format!(
                "UPDATE {p}authenticators SET last_step = $3, drift = $4, last_used_at = $5 \
                 WHERE user_id = $1 AND id = $2 AND enabled AND encrypted_secret = $6 \
                 AND (last_step IS NULL OR last_step < $3)"
            ),
            delete_recovery: format!("DELETE FROM {p}recovery WHERE user_id = $1"),
            take_challenge: format!(
                "DELETE FROM {p}challenges WHERE challenge_hash = $1 RETURNING user_id, expires_at"
            ),
            insert_session: format!(
                "INSERT INTO {p}demo_sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)"
            ),
        }
    }
}

fn pq(sql: &str) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(AssertSqlSafe(sql.to_owned()))
}

async fn pg_limiter(pool: &PgPool, sql: &PgSql, key: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    pq(&sql.lock_limiter)
        .bind(key)
        .bind(i64::MAX)
        .fetch_one(&mut *tx)
        .await?;
    pq(&sql.save_limiter)
        .bind(key)
        .bind(0_i64)
        .bind(1_i64)
        .bind(0_i64)
        .bind(0_i64)
        .bind(0_i64)
        .bind(0_i64)
        .bind(0_i64)
        .bind(i64::MAX)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn pg_second_step(pool: &PgPool, sql: &PgSql, r: &Row) -> Result<(), sqlx::Error> {
    let t = i64::try_from(now()).unwrap_or(i64::MAX);
    pq(&sql.get_challenge)
        .bind(&r.challenge[..])
        .fetch_optional(pool)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    pg_limiter(pool, sql, &r.limiter_key).await?;
    pq(&sql.get_credential)
        .bind(&r.user_id)
        .fetch_all(pool)
        .await?
        .first()
        .ok_or(sqlx::Error::RowNotFound)?;
    let advanced = pq(&sql.advance_step)
        .bind(&r.user_id)
        .bind(AUTHENTICATOR)
        .bind(t / 30)
        .bind(0_i64)
        .bind(t)
        .bind(vec![7u8; 50])
        .execute(pool)
        .await?;
    if advanced.rows_affected() != 1 {
        return Err(sqlx::Error::RowNotFound);
    }
    pg_limiter(pool, sql, &r.limiter_key).await?;
    pq(&sql.delete_recovery)
        .bind(&r.user_id)
        .execute(pool)
        .await?;
    pq(&sql.take_challenge)
        .bind(&r.challenge[..])
        .fetch_optional(pool)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    pq(&sql.insert_session)
        .bind(&session_hash(&r.challenge)[..])
        .bind(&r.user_id)
        .bind(t + 43_200)
        .execute(pool)
        .await?;
    Ok(())
}
