//! The seed tutorial's login flow done right: an axum server with sign-up, password login, TOTP
//! two-factor authentication with backup codes, and a one-page UI.
//!
//! ```sh
//! cargo run -p twofactor-server    # http://127.0.0.1:3000, SQLite file twofactor-demo.db
//! ```
//!
//! Configuration (environment): `TWOFACTOR_ADDR`, `DATABASE_URL` (`sqlite://…` or
//! `postgres://…`), `TWOFACTOR_KEY` (64 hex digits, or the crate's key ring format),
//! `TWOFACTOR_BACKUP_PEPPER` (optional, 64 hex digits), `TWOFACTOR_HASH_WORKERS`,
//! `TWOFACTOR_HASH_QUEUE_SECS`, `TWOFACTOR_ADDR_FAILURES`, `TWOFACTOR_ADDR_WINDOW_SECS`,
//! `TWOFACTOR_TRUST_FORWARDED_FOR`, `TWOFACTOR_TOTP_ALGORITHM` / `TWOFACTOR_TOTP_DIGITS` /
//! `TWOFACTOR_TOTP_PERIOD` (the parameters of new enrolments; default SHA1 / 6 / 30),
//! `RUST_LOG`. See examples/server/README.md.

mod api;
mod config;
mod db;
mod error;
mod guard;
mod hashing;
mod headers;
mod login;
mod random;
mod security;
mod twofa;
mod user_agent;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use zeroize::Zeroizing;

use twofactor::store::postgres::PostgresStore;
use twofactor::store::sqlite::SqliteStore;

use crate::config::{Config, Database};
use crate::db::{Backend, Db as _};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let shutdown = shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let config = Config::from_env()?;
    // The one place that looks at which database it is.
    match &config.database {
        Database::Sqlite(url) => serve::<SqliteStore>(&config, url, shutdown).await,
        Database::Postgres(url) => serve::<PostgresStore>(&config, url, shutdown).await,
    }
}

/// Runs the server on backend `S` until `shutdown` resolves.
async fn serve<S: Backend>(
    config: &Config,
    url: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = S::connect(url)
        .await
        .map_err(|e| format!("cannot open the {} database: {e}", config.database.kind()))?;
    let db = store.db();
    db.migrate(S::SCHEMA)
        .await
        .map_err(|e| format!("cannot create the demo tables: {e}"))?;
    let twofa = twofa::services(store, config)
        .await
        .map_err(|e| format!("cannot set up two-factor authentication: {e}"))?;
    let limits = config.limits;
    let hasher = hashing::Hasher::new(hashing::Admission {
        workers: limits.hash_workers,
        queue_time: std::time::Duration::from_secs(limits.hash_queue_secs),
    })
    .map_err(|e| format!("cannot start the password hashing threads: {e}"))?;
    let mut random_password = Zeroizing::new([0u8; 32]);
    random::fill(&mut random_password[..])?;
    let dummy_hash = hasher
        .hash(Zeroizing::new(
            data_encoding::HEXLOWER.encode(&random_password[..]),
        ))
        .await
        .map_err(|_| "cannot hash the dummy password")?;
    // That hash was also the calibration: admission starts from its measured time.
    let calibrated_ms = hasher.hash_time().map_or(0, |t| t.as_millis());

    let pool = db.clone();
    let state = Arc::new(api::AppState {
        db,
        twofa: twofa.main,
        twofa_defaults: twofa.defaults,
        dummy_hash,
        hasher,
        address_policy: guard::address_policy(limits.address_failures, limits.address_window_secs),
        trust_forwarded_for: limits.trust_forwarded_for,
    });
    tokio::spawn(housekeeping(Arc::clone(&state)));
    let app = api::router(state)
        .layer(axum::middleware::from_fn(headers::security_headers))
        .layer(axum::middleware::from_fn(log_request));

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
    let local = listener.local_addr()?;
    tracing::info!(
        database = config.database.kind(),
        hash_workers = limits.hash_workers,
        hash_queue_secs = limits.hash_queue_secs,
        calibrated_ms,
        address_failures = limits.address_failures,
        address_window_secs = limits.address_window_secs,
        trust_forwarded_for = limits.trust_forwarded_for,
        totp_algorithm = config.totp.algorithm.as_str(),
        totp_digits = config.totp.digits,
        totp_period = config.totp.period,
        "listening on http://{local}"
    );
    // Tests and scripts wait for this exact line on stdout.
    println!("listening on http://{local}");
    // The peer address feeds the per-address password-guess budget.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    // Close the pool: connections finish cleanly (SQLite checkpoints its WAL) before exit.
    pool.close().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Every five minutes (and at start): delete expired sessions, challenges and limiter rows.
/// Failures are logged and retried next time; expired rows are never honoured anyway.
async fn housekeeping<S: Backend>(state: Arc<api::AppState<S>>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
    loop {
        tick.tick().await;
        let now = api::now();
        match state.db.purge_expired_sessions(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "removed expired sessions"),
            Err(e) => tracing::warn!(error = %e, "purging sessions failed"),
        }
        match state.twofa.ephemeral_store().purge_store(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "removed expired challenges and limiter rows"),
            Err(e) => tracing::warn!(error = %e, "purging challenges failed"),
        }
    }
}

/// Logs method, path and status only: bodies, headers and query strings can carry passwords,
/// codes and tokens, so they never reach the log.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    // The route pattern, not the raw path: a client-chosen path could smuggle anything into logs.
    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis(),
        "request"
    );
    response
}

/// Installs the Ctrl-C and SIGTERM handlers now (so a signal that arrives while the server is
/// starting is not lost to the default action) and returns a future that resolves on either;
/// in-flight requests then finish before the process exits.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("Ctrl-C: shutting down"),
                _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C: shutting down");
            } else {
                std::future::pending::<()>().await;
            }
        })
    }
}
