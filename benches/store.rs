//! Verifications per second through the SQL stores, beside a raw sqlx baseline of the same
//! `SELECT` + `UPDATE` pair, with 16 concurrent tasks; and the statements (= round trips, see
//! below) each verification costs.
//!
//! A "verification" is what the service does for a correct TOTP code: `get_credentials` (read
//! the encrypted secret and the last step) then `advance_step` (compare-and-set of the step).
//! The raw baseline issues the identical SQL with `sqlx::query` on `&'static str`s against the
//! same tables, on the same pool, in the same run. Every task owns its users and steps only go
//! up, so every `advance_step` must succeed (checked).
//!
//! Round trips are counted by listening to sqlx's per-statement `sqlx::query` tracing event
//! during a separate pass on a current-thread runtime (so the counter does not slow the timed
//! runs). With the prepared statement cached on the connection (sqlx caches by SQL text), one
//! statement is one round trip (Bind/Execute/Sync, then ReadyForQuery). For PostgreSQL the
//! counted pass is cross-checked on the server: `pg_stat_user_tables.idx_scan` of the
//! credentials table in the bench's private schema (each statement is one primary-key scan).
//!
//! ```sh
//! TWOFACTOR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --all-features --bench store
//! ```
//! Without the variable the PostgreSQL half is skipped (with a message); SQLite always runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Executor};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use twofactor::Algorithm;
use twofactor::store::{CredentialRecord, CredentialStore, PostgresStore, SqliteStore};

const TASKS: usize = 16;
const USERS_PER_TASK: usize = 4;

const SELECT_PG: &str = "SELECT encrypted_secret, algorithm, digits, period, enabled, last_step, \
     drift, created_at FROM twofactor_credentials WHERE user_id = $1";
const UPDATE_PG: &str = "UPDATE twofactor_credentials SET last_step = $2, drift = $3 \
     WHERE user_id = $1 AND enabled = TRUE AND encrypted_secret = $4 \
     AND (last_step IS NULL OR last_step < $2)";
const SELECT_LITE: &str = "SELECT encrypted_secret, algorithm, digits, period, enabled, \
     last_step, drift, created_at FROM twofactor_credentials WHERE user_id = ?1";
const UPDATE_LITE: &str = "UPDATE twofactor_credentials SET last_step = ?2, drift = ?3 \
     WHERE user_id = ?1 AND enabled = 1 AND encrypted_secret = ?4 \
     AND (last_step IS NULL OR last_step < ?2)";

/// Steps handed out in increasing order, so every compare-and-set succeeds.
static STEP: AtomicU64 = AtomicU64::new(1_000);

fn next_step() -> u64 {
    STEP.fetch_add(1, Ordering::Relaxed)
}

fn user(task: usize, i: u64) -> String {
    format!("bench-user-{task}-{}", i % USERS_PER_TASK as u64)
}

fn record() -> CredentialRecord {
    CredentialRecord {
        id: "bench".into(),
        name: "Bench phone".into(),
        encrypted_secret: vec![7; 60],
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
        enabled: false,
        last_step: None,
        drift: 0,
        created_at: 1_700_000_000,
        last_used_at: None,
        replaces: None,
    }
}

async fn enrol<S: CredentialStore>(store: &S) {
    for task in 0..TASKS {
        for i in 0..USERS_PER_TASK as u64 {
            let u = user(task, i);
            assert!(store.put_pending(&u, &record(), true).await.unwrap());
            assert!(
                store
                    .activate(&u, &[7; 60], 1, 0, Some(&[]), 1)
                    .await
                    .unwrap()
            );
        }
    }
}

/// One verification through the store.
async fn verify_store<S: CredentialStore>(store: &S, user: &str) {
    let creds = store.get_credentials(user).await.unwrap();
    let cred = &creds[0];
    assert!(cred.enabled);
    assert!(
        store
            .advance_step(
                user,
                &cred.id,
                &cred.encrypted_secret,
                next_step(),
                0,
                1_700_000_000
            )
            .await
            .unwrap()
    );
}

/// Runs `iters` operations split over `TASKS` tasks and returns the wall time scaled to `iters`.
fn timed<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, op: F) -> Duration
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let per_task = iters.div_ceil(TASKS as u64).max(1);
    let start = Instant::now();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for task in 0..TASKS {
            let op = op.clone();
            set.spawn(async move {
                for i in 0..per_task {
                    op(task, i).await;
                }
            });
        }
        set.join_all().await;
    });
    let elapsed = start.elapsed();
    elapsed.mul_f64(iters as f64 / (per_task * TASKS as u64) as f64)
}

/// Whether the counting layer is listening (it is installed once, globally, because SQLite
/// connections run their statements on their own threads).
static COUNTING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

struct Count;

impl<S: tracing::Subscriber> Layer<S> for Count {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            STATEMENTS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Installs the counter. The filter is evaluated at every statement (not cached per call
/// site), so outside a counted pass sqlx sees logging as disabled and pays nothing for it.
fn install_counter() {
    let filter = tracing_subscriber::filter::dynamic_filter_fn(|meta, _| {
        COUNTING.load(Ordering::Relaxed) && meta.target() == "sqlx::query"
    });
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(Count.with_filter(filter)),
    );
}

/// Counts the statements sqlx executes while `op` runs `n` times (after a warm-up of 50 that
/// fills the prepared-statement caches).
fn statements_per_op<F, Fut>(rt: &tokio::runtime::Runtime, n: u64, op: F) -> f64
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(async {
        for i in 0..50 {
            op(i).await;
        }
        STATEMENTS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        for i in 0..n {
            op(i).await;
        }
        COUNTING.store(false, Ordering::Relaxed);
    });
    STATEMENTS.load(Ordering::Relaxed) as f64 / n as f64
}

/// Runs the raw pair and the store alternately, `ROUNDS` times `OPS` verifications each, and
/// prints the median of the per-round throughput ratios: on a shared machine, load drifts between
/// criterion's sequential groups, and alternating cancels most of that drift.
fn interleaved<R, RF, S, SF>(rt: &tokio::runtime::Runtime, name: &str, raw: R, store: S)
where
    R: Fn(usize, u64) -> RF + Clone + Send + 'static,
    RF: Future<Output = ()> + Send,
    S: Fn(usize, u64) -> SF + Clone + Send + 'static,
    SF: Future<Output = ()> + Send,
{
    const ROUNDS: usize = 15;
    const OPS: u64 = 1_600;
    let mut ratios = Vec::with_capacity(ROUNDS);
    let (mut raw_total, mut store_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let r = timed(rt, OPS, raw.clone());
        let s = timed(rt, OPS, store.clone());
        raw_total += r;
        store_total += s;
        ratios.push(r.as_secs_f64() / s.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let per_sec = |d: Duration| (OPS * ROUNDS as u64) as f64 / d.as_secs_f64();
    println!(
        "{name}: interleaved {ROUNDS}x{OPS} verifications, {TASKS} tasks: raw {:.0}/s, store \
         {:.0}/s, store/raw median {:.2} (min {:.2}, max {:.2})",
        per_sec(raw_total),
        per_sec(store_total),
        ratios[ROUNDS / 2],
        ratios[0],
        ratios[ROUNDS - 1]
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let path = std::env::temp_dir().join(format!("twofactor_bench_{}.db", std::process::id()));
    let pool: SqlitePool = rt.block_on(async {
        let pool = SqlitePoolOptions::new()
            .max_connections(TASKS as u32)
            .connect_with(SqliteStore::recommended_options(&path))
            .await
            .unwrap();
        twofactor::store::sqlite::migrate(&pool).await.unwrap();
        pool
    });
    let store = SqliteStore::new(pool.clone());
    rt.block_on(enrol(&store));

    let raw = {
        let pool = pool.clone();
        move |task: usize, i: u64| {
            let pool = pool.clone();
            async move {
                let u = user(task, i);
                let row: (Vec<u8>, String, i64, i64, bool, Option<i64>, i64, i64) =
                    sqlx::query_as(SELECT_LITE)
                        .bind(&u)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                assert!(row.4);
                let done = sqlx::query(UPDATE_LITE)
                    .bind(&u)
                    .bind(i64::try_from(next_step()).unwrap())
                    .bind(0_i64)
                    .bind(&[7u8; 60][..])
                    .execute(&pool)
                    .await
                    .unwrap();
                assert_eq!(done.rows_affected(), 1);
            }
        }
    };
    let via_store = {
        let store = store.clone();
        move |task: usize, i: u64| {
            let store = store.clone();
            async move { verify_store(&store, &user(task, i)).await }
        }
    };

    install_counter();
    let store_stmts = statements_per_op(&rt, 500, |i| via_store(0, i));
    let raw_stmts = statements_per_op(&rt, 500, |i| raw(0, i));
    println!(
        "sqlite: statements per verification: store {store_stmts:.2}, raw baseline {raw_stmts:.2}"
    );

    interleaved(&rt, "sqlite", raw.clone(), via_store.clone());

    let mut g = c.benchmark_group("sqlite_verify_16_tasks");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("raw_sqlx", |b| {
        b.iter_custom(|iters| timed(&rt, iters, raw.clone()))
    });
    g.bench_function("store", |b| {
        b.iter_custom(|iters| timed(&rt, iters, via_store.clone()))
    });
    g.finish();
    rt.block_on(pool.close());
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

async fn pg_pool(url: &str, schema: &str) -> PgPool {
    let schema = schema.to_owned();
    PgPoolOptions::new()
        .max_connections(TASKS as u32)
        .after_connect(move |conn, _| {
            let schema = schema.clone();
            Box::pin(async move {
                conn.execute(AssertSqlSafe(format!("SET search_path TO {schema}")))
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .unwrap()
}

/// Primary-key scans of the credentials table, as PostgreSQL counts them.
async fn idx_scans(admin: &PgPool, schema: &str) -> i64 {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(admin)
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT COALESCE(idx_scan, 0) FROM pg_stat_user_tables \
         WHERE schemaname = $1 AND relname = 'twofactor_credentials'",
    )
    .bind(schema)
    .fetch_one(admin)
    .await
    .unwrap()
}

fn postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("TWOFACTOR_TEST_POSTGRES_URL") else {
        println!("skipped the PostgreSQL store bench: set TWOFACTOR_TEST_POSTGRES_URL to run it");
        return;
    };
    let rt = runtime();
    let schema = format!("tf_bench_{}", std::process::id());
    let admin = rt.block_on(async {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        admin
            .execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .await
            .unwrap();
        admin
    });
    let pool = rt.block_on(pg_pool(&url, &schema));
    let store = PostgresStore::new(pool.clone());
    rt.block_on(async {
        store.migrate().await.unwrap();
        enrol(&store).await;
    });

    let raw = {
        let pool = pool.clone();
        move |task: usize, i: u64| {
            let pool = pool.clone();
            async move {
                let u = user(task, i);
                let row: (Vec<u8>, String, i32, i64, bool, Option<i64>, i64, i64) =
                    sqlx::query_as(SELECT_PG)
                        .bind(&u)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                assert!(row.4);
                let done = sqlx::query(UPDATE_PG)
                    .bind(&u)
                    .bind(i64::try_from(next_step()).unwrap())
                    .bind(0_i64)
                    .bind(&[7u8; 60][..])
                    .execute(&pool)
                    .await
                    .unwrap();
                assert_eq!(done.rows_affected(), 1);
            }
        }
    };
    let via_store = {
        let store = store.clone();
        move |task: usize, i: u64| {
            let store = store.clone();
            async move { verify_store(&store, &user(task, i)).await }
        }
    };

    // Counted passes on their own pools, closed afterwards so the backends flush their
    // statistics to the server before we read them.
    install_counter();
    let n = 500;
    let count = |raw_path: bool| {
        let pool = rt.block_on(pg_pool(&url, &schema));
        let store = PostgresStore::new(pool.clone());
        let before = rt.block_on(idx_scans(&admin, &schema));
        let client = if raw_path {
            statements_per_op(&rt, n, |i| raw_with(&pool, i))
        } else {
            statements_per_op(&rt, n, |i| {
                let store = store.clone();
                async move { verify_store(&store, &user(0, i)).await }
            })
        };
        rt.block_on(pool.close());
        // Wait until the exited backends' statistics have arrived and stopped changing.
        let (mut last, mut stable) = (before, 0);
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(200));
            let now = rt.block_on(idx_scans(&admin, &schema));
            stable = if now == last { stable + 1 } else { 0 };
            last = now;
            if stable >= 5 {
                break;
            }
        }
        (client, (last - before) as f64 / (n + 50) as f64)
    };
    let (store_client, store_server) = count(false);
    let (raw_client, raw_server) = count(true);
    println!(
        "postgres: statements (= round trips) per verification: store {store_client:.2} \
         (server-side PK scans {store_server:.2}), raw baseline {raw_client:.2} \
         (server-side {raw_server:.2})"
    );

    interleaved(&rt, "postgres", raw.clone(), via_store.clone());

    let mut g = c.benchmark_group("postgres_verify_16_tasks");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("raw_sqlx", |b| {
        b.iter_custom(|iters| timed(&rt, iters, raw.clone()))
    });
    g.bench_function("store", |b| {
        b.iter_custom(|iters| timed(&rt, iters, via_store.clone()))
    });
    g.finish();

    rt.block_on(async {
        pool.close().await;
        admin
            .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .await
            .unwrap();
        admin.close().await;
    });
}

/// The raw pair on a given pool (for the counted pass).
async fn raw_with(pool: &PgPool, i: u64) {
    let u = user(0, i);
    let row: (Vec<u8>, String, i32, i64, bool, Option<i64>, i64, i64) = sqlx::query_as(SELECT_PG)
        .bind(&u)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(row.4);
    let done = sqlx::query(UPDATE_PG)
        .bind(&u)
        .bind(i64::try_from(next_step()).unwrap())
        .bind(0_i64)
        .bind(&[7u8; 60][..])
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
