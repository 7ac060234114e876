//! A burst of password logins at once, measuring what the server holds while it answers them:
//! Argon2id needs 19 MiB per hash, so the bounded hasher is what keeps the peak flat. Users are
//! signed up first (`--password-clients` at a time), then `--concurrent` logins (users reused
//! round-robin, all with the right password) are released together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::flow::{Step, User, run_phase};
use crate::http::Client;
use crate::run::Backend;
use crate::server::{PgDatabase, Server, TempDir, peak_resident_kib, resident_kib, server_binary};
use crate::stats::Phase;

/// What to run.
#[derive(Clone, Debug)]
pub struct BurstOptions {
    /// Logins released at once.
    pub concurrent: usize,
    /// Distinct users they log in as.
    pub users: usize,
    /// Sign-ups in flight while preparing.
    pub password_clients: usize,
    /// The database of the server this run starts.
    pub backend: Backend,
    /// The server binary (default: beside this executable).
    pub server_bin: Option<std::path::PathBuf>,
}

/// What a burst found.
pub struct BurstReport {
    /// The sign-ups before the burst.
    pub signup: Phase,
    /// The burst itself.
    pub logins: Phase,
    /// `VmRSS` just before the burst, KiB.
    pub before_kib: u64,
    /// The largest `VmRSS` sampled (every 10 ms) during the burst, KiB.
    pub sampled_peak_kib: u64,
    /// `VmHWM` after the burst: the process's peak over its whole life, KiB.
    pub peak_kib: u64,
    /// The check that it stays under.
    pub limit_kib: u64,
}

impl BurstReport {
    /// Every login answered 200, no 503, and the peak under the limit.
    pub fn passed(&self) -> bool {
        let n = u32::try_from(self.logins.count()).unwrap_or(u32::MAX);
        self.logins.with_status(200) == n && self.peak_kib < self.limit_kib
    }
}

impl std::fmt::Display for BurstReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |k: u64| k as f64 / 1024.0;
        writeln!(f, "  {}", self.signup)?;
        writeln!(f, "  {}", self.logins)?;
        writeln!(
            f,
            "  resident memory: {:.1} MiB before, {:.1} MiB sampled peak, {:.1} MiB VmHWM",
            mib(self.before_kib),
            mib(self.sampled_peak_kib),
            mib(self.peak_kib)
        )?;
        let n = u32::try_from(self.logins.count()).unwrap_or(u32::MAX);
        let all = self.logins.with_status(200) == n;
        writeln!(
            f,
            "  [{}] every login answered 200 (503: {})",
            if all { "ok" } else { "FAILED" },
            self.logins.with_status(503)
        )?;
        writeln!(
            f,
            "  [{}] peak resident memory under {:.0} MiB",
            if self.peak_kib < self.limit_kib {
                "ok"
            } else {
                "FAILED"
            },
            mib(self.limit_kib)
        )
    }
}

/// Runs the burst.
///
/// # Errors
/// When the server or the database cannot be set up.
pub async fn burst(opts: &BurstOptions) -> Result<BurstReport, String> {
    let dir = TempDir::new("burst")?;
    let mut pg = None;
    let database = match &opts.backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("burst.db").display()),
        Backend::Postgres(admin) => {
            let db = PgDatabase::create(admin, "burst").await?;
            let url = db.url.clone();
            pg = Some(db);
            url
        }
    };
    let bin = match &opts.server_bin {
        Some(b) => {
            std::fs::canonicalize(b).map_err(|e| format!("--server-bin {}: {e}", b.display()))?
        }
        None => server_binary()?,
    };
    let server = Server::start(&bin, dir.path(), &database, "info,sqlx=warn")?;
    let pid = server.pid();
    let client = Client::new(&server.base, Duration::from_secs(60));
    let tag = crate::server::unique_suffix();
    let mut users: Vec<User> = (0..opts.users.max(1)).map(|i| User::new(&tag, i)).collect();
    let signup = run_phase(&client, Step::Signup, &mut users, opts.password_clients).await;

    let before_kib = resident_kib(pid).ok_or("the server's /proc status is unreadable")?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampled = Arc::new(AtomicU64::new(before_kib));
    let sampler = {
        let (stop, sampled) = (Arc::clone(&stop), Arc::clone(&sampled));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(k) = resident_kib(pid) {
                    sampled.fetch_max(k, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let n = users.len();
    let mut logins: Vec<User> = (0..opts.concurrent)
        .map(|i| User::new(&tag, i % n))
        .collect();
    let mut phase = run_phase(&client, Step::LoginSession, &mut logins, opts.concurrent).await;
    phase.name = format!("{} logins at once", opts.concurrent);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let peak_kib = peak_resident_kib(pid).unwrap_or(0);
    drop(server);
    if let Some(db) = pg {
        db.drop_db().await;
    }
    Ok(BurstReport {
        signup,
        logins: phase,
        before_kib,
        sampled_peak_kib: sampled.load(Ordering::Relaxed),
        peak_kib,
        limit_kib: 400 * 1024,
    })
}
