//! The floor under the second step: the database work one `POST /api/login/2fa` needs, in the
//! same order and the same transactions, at the same concurrency, on tables of their own in the
//! same database. No HTTP, no JSON, no HMAC, no AES-GCM, no service logic: what is left is the
//! database's own cost, which the server can approach but not beat.
//!
//! The crate's part is run through the store itself (`SqliteStore`, `PostgresStore`: the very
//! statements the service's calls run, so the floor cannot drift from them), in the order of
//! `complete_login` with `Remember::Device` for a browser without a device token (`src/service/login.rs`,
//! `check.rs`, `budget.rs`, `changes.rs`), as `RUST_LOG=sqlx::query=debug` of a real second
//! step shows:
//!
//! 1. `get_challenge`: read the challenge;
//! 2. `get_credentials`: read the user's authenticators (before the budget: the attempt weighs
//!    as many units as there are candidates);
//! 3. `update_limiter` (acquire): one transaction that reads and writes the user's limiter row
//!    (`BEGIN IMMEDIATE` + SELECT + upsert on SQLite; locking upsert + UPDATE on PostgreSQL);
//! 4. `advance_step`: the matching authenticator's last accepted step (compare-and-set);
//! 5. `update_limiter` (succeed): the same transaction as 3;
//! 6. `cancel_recovery`: the owner proved a factor, a pending unapproved recovery goes;
//! 7. `delete_changes`: the factor is established (the user's oldest authenticator), so the
//!    scheduled changes of factors go too;
//! 8. `take_challenge`: `DELETE … RETURNING`;
//! 9. `put_device`: the browser's new device token;
//!
//! and the demo's own
//!
//! 10. session insert (`examples/server/src/db.rs`).
//!
//! Not in the floor: what the demo adds for its page, not for the login: the notice of failed
//! attempts (one limiter read) and, for the device cookie's name, the user's email (one read).
//! The report counts them as the server's overhead over the floor.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Sqlite};
use twofactor::store::{
    ChallengeRecord, CredentialRecord, CredentialStore, DeviceRecord, EphemeralStore, LimiterState,
    PostgresStore, SqliteStore,
};

use crate::http::error_chain;
use crate::stats::Phase;

/// The measured run and the CPU time this process spent in it (`None` off Linux).
pub type Floor = (Phase, Option<Duration>);

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

/// Runs `n` second steps' statements on SQLite at `url` with `clients` in flight (after as
/// many unmeasured ones to warm the pool up).
///
/// # Errors
/// Setup failures; a failed statement during the run is counted as status 0 instead.
pub async fn sqlite(url: &str, n: usize, clients: usize) -> Result<Floor, String> {
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
    // Twice the rows: the first half warms the pool up (connections opened, statements
    // prepared, as the server's are after the earlier phases) and is not measured.
    let mut rows = rows(2 * n, &p);
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
    let warm = rows.split_off(n);
    let insert_session = format!(
        "INSERT INTO {p}demo_sessions (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)"
    );
    let op = move |r: Row| {
        let (store, pool, sql) = (store.clone(), pool.clone(), insert_session.clone());
        async move {
            let started = Instant::now();
            let status = match sqlite_second_step(&store, &pool, &sql, &r).await {
                Ok(()) => 200,
                Err(e) => {
                    eprintln!("{e}");
                    0
                }
            };
            (r, status, started.elapsed())
        }
    };
    let (warmed, _) = crate::flow::concurrently("floor warm-up", warm, clients, op.clone()).await;
    if warmed.with_status(200) != u32::try_from(n).unwrap_or(u32::MAX) {
        return Err(format!("floor: the warm-up failed: {warmed}"));
    }
    let cpu = crate::server::cpu_time(std::process::id());
    let (phase, _) = crate::flow::concurrently("floor (SQL)", rows, clients, op).await;
    let cpu = cpu.zip(crate::server::cpu_time(std::process::id()));
    Ok((
        phase,
        cpu.map(|(before, after)| after.saturating_sub(before)),
    ))
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

fn store_err<E: std::error::Error>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("floor: {what}: {}", error_chain(&e))
}

/// The crate's part of one second step, through the store (see the module docs).
async fn store_second_step<S>(store: &S, r: &Row) -> Result<(), String>
where
    S: CredentialStore + EphemeralStore,
{
    let t = now();
    store
        .get_challenge(&r.challenge, t)
        .await
        .map_err(store_err("get_challenge"))?
        .ok_or("no challenge")?;
    let records = store
        .get_credentials(&r.user_id)
        .await
        .map_err(store_err("get_credentials"))?;
    let record = records.first().ok_or("no authenticator")?;
    // The service's acquire and succeed: a failure counted, then given back.
    let count = |s: LimiterState| {
        LimiterState::from_parts(
            s.window_start,
            s.attempts + 1,
            s.failures + 1,
            s.locked_until,
            s.forgiven_at,
            s.since_success + 1,
            s.last_success_at,
        )
    };
    store
        .update_limiter(&r.limiter_key, t + 86_400, count)
        .await
        .map_err(store_err("update_limiter"))?;
    let advanced = store
        .advance_step(
            &r.user_id,
            &record.id,
            &record.encrypted_secret,
            t / 30,
            0,
            t,
        )
        .await
        .map_err(store_err("advance_step"))?;
    if !advanced {
        return Err("the step did not advance".into());
    }
    let give_back = move |s: LimiterState| {
        LimiterState::from_parts(
            s.window_start,
            s.attempts.saturating_sub(1),
            s.failures.saturating_sub(1),
            s.locked_until,
            s.forgiven_at,
            0,
            t,
        )
    };
    store
        .update_limiter(&r.limiter_key, t + 86_400, give_back)
        .await
        .map_err(store_err("update_limiter"))?;
    store
        .cancel_recovery(&r.user_id, false)
        .await
        .map_err(store_err("cancel_recovery"))?;
    store
        .delete_changes(&r.user_id)
        .await
        .map_err(store_err("delete_changes"))?;
    store
        .take_challenge(&r.challenge, t)
        .await
        .map_err(store_err("take_challenge"))?
        .ok_or("the challenge was taken already")?;
    store
        .put_device(
            &device_hash(&r.challenge),
            &DeviceRecord {
                user_id: r.user_id.clone(),
                created_at: t,
                expires_at: t + 90 * 86_400,
                trusted_until: None,
                label: String::new(),
                last_used_at: t,
            },
        )
        .await
        .map_err(store_err("put_device"))?;
    Ok(())
}

async fn sqlite_second_step(
    store: &SqliteStore,
    pool: &SqlitePool,
    insert_session: &str,
    r: &Row,
) -> Result<(), String> {
    store_second_step(store, r).await?;
    let t = i64::try_from(now()).unwrap_or(i64::MAX);
    sqlx::query::<Sqlite>(AssertSqlSafe(insert_session.to_owned()))
        .bind(&session_hash(&r.challenge)[..])
        .bind(&r.user_id)
        .bind(t + 43_200)
        .execute(pool)
        .await
        .map_err(db_err("insert session"))?;
    Ok(())
}

/// A device token hash distinct per login.
fn device_hash(challenge: &[u8; 32]) -> [u8; 32] {
    let mut h = *challenge;
    h[30] ^= 0x5a;
    h
}

/// A session token hash distinct per login (its value does not matter to the database).
fn session_hash(challenge: &[u8; 32]) -> [u8; 32] {
    let mut h = *challenge;
    h[31] ^= 0xa5;
    h
}

/// Runs `n` second steps' statements on PostgreSQL at `url` with `clients` in flight (after
/// as many unmeasured ones to warm the pool up).
///
/// # Errors
/// Setup failures; a failed statement during the run is counted as status 0 instead.
pub async fn postgres(url: &str, n: usize, clients: usize) -> Result<Floor, String> {
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
    // Twice the rows: the first half warms the pool up (connections opened, statements
    // prepared, as the server's are after the earlier phases) and is not measured.
    let mut rows = rows(2 * n, &p);
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
    let warm = rows.split_off(n);
    let insert_session = format!(
        "INSERT INTO {p}demo_sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)"
    );
    let op = move |r: Row| {
        let (store, pool, sql) = (store.clone(), pool.clone(), insert_session.clone());
        async move {
            let started = Instant::now();
            let status = match pg_second_step(&store, &pool, &sql, &r).await {
                Ok(()) => 200,
                Err(e) => {
                    eprintln!("{e}");
                    0
                }
            };
            (r, status, started.elapsed())
        }
    };
    let (warmed, _) = crate::flow::concurrently("floor warm-up", warm, clients, op.clone()).await;
    if warmed.with_status(200) != u32::try_from(n).unwrap_or(u32::MAX) {
        return Err(format!("floor: the warm-up failed: {warmed}"));
    }
    let cpu = crate::server::cpu_time(std::process::id());
    let (phase, _) = crate::flow::concurrently("floor (SQL)", rows, clients, op).await;
    let cpu = cpu.zip(crate::server::cpu_time(std::process::id()));
    Ok((
        phase,
        cpu.map(|(before, after)| after.saturating_sub(before)),
    ))
}

async fn pg_second_step(
    store: &PostgresStore,
    pool: &PgPool,
    insert_session: &str,
    r: &Row,
) -> Result<(), String> {
    store_second_step(store, r).await?;
    let t = i64::try_from(now()).unwrap_or(i64::MAX);
    sqlx::query::<sqlx::Postgres>(AssertSqlSafe(insert_session.to_owned()))
        .bind(&session_hash(&r.challenge)[..])
        .bind(&r.user_id)
        .bind(t + 43_200)
        .execute(pool)
        .await
        .map_err(db_err("insert session"))?;
    Ok(())
}
