//! The soak: a steady, moderate stream of complete logins (password, second step, a page view,
//! log out) for a given time, sampling the server's resident memory.
//!
//! Each user can complete a TOTP login once per 30-second step (replay protection), so the run
//! keeps a pool of enrolled users and enrols a new one whenever none is free; at a steady rate
//! the pool stops growing within the first minute or so, and from then on the load is the same
//! every second.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::flow::{PERIOD, Step, User, run_step, unix_now};
use crate::http::Client;
use crate::run::Backend;
use crate::server::{PgDatabase, Server, TempDir, resident_kib, server_binary};
use crate::stats::Phase;

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// How long.
    pub duration: Duration,
    /// How often to read the server's resident memory.
    pub sample_every: Duration,
    /// Logins started per second.
    pub rate: f64,
    /// The server's database.
    pub backend: Backend,
    /// The server binary (default: beside this executable).
    pub server_bin: Option<PathBuf>,
}

/// One memory reading.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Seconds since the load started.
    pub at: u64,
    /// `VmRSS` in KiB.
    pub rss_kib: u64,
}

/// What the soak found.
pub struct SoakReport {
    /// Every reading, in order.
    pub samples: Vec<Sample>,
    /// Per step: latencies and statuses over the whole run.
    pub phases: Vec<Phase>,
    /// Users enrolled along the way.
    pub users: usize,
}

impl SoakReport {
    /// The reading taken at (or first after) one minute: where memory settled.
    pub fn baseline(&self) -> Option<Sample> {
        self.samples.iter().copied().find(|s| s.at >= 60)
    }

    /// The largest deviation from the baseline after it, in percent.
    pub fn max_deviation_percent(&self) -> Option<f64> {
        let base = self.baseline()?;
        self.samples
            .iter()
            .filter(|s| s.at >= base.at)
            .map(|s| (s.rss_kib as f64 - base.rss_kib as f64).abs() * 100.0 / base.rss_kib as f64)
            .reduce(f64::max)
    }

    /// Memory stayed within 10 % of the baseline, and nothing answered 5xx or went unanswered.
    pub fn passed(&self) -> bool {
        let clean = self
            .phases
            .iter()
            .all(|p| p.with_status(0) == 0 && p.statuses.range(500..).next().is_none());
        clean && self.max_deviation_percent().is_some_and(|d| d <= 10.0)
    }
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "resident memory (VmRSS):")?;
        for s in &self.samples {
            writeln!(
                f,
                "  t={:>4}s  {:>7.1} MiB",
                s.at,
                s.rss_kib as f64 / 1024.0
            )?;
        }
        if let (Some(base), Some(dev)) = (self.baseline(), self.max_deviation_percent()) {
            writeln!(
                f,
                "  baseline (t={}s) {:.1} MiB; largest deviation after it {dev:.1} % ({})",
                base.at,
                base.rss_kib as f64 / 1024.0,
                if dev <= 10.0 {
                    "within 10 %"
                } else {
                    "OVER 10 %"
                }
            )?;
        }
        writeln!(f, "users enrolled: {}", self.users)?;
        for p in &self.phases {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Per-step figures shared by the workers.
struct Tally(Mutex<Vec<Phase>>);

impl Tally {
    fn record(&self, step: Step, status: u16, latency: Duration) {
        self.record_named(step.name(), status, latency);
    }

    fn record_named(&self, name: &str, status: u16, latency: Duration) {
        if let Ok(mut phases) = self.0.lock() {
            if let Some(p) = phases.iter_mut().find(|p| p.name == name) {
                p.record(status, latency);
            } else {
                let mut p = Phase::new(name);
                p.record(status, latency);
                phases.push(p);
            }
        }
    }
}

async fn step(client: &Client, tally: &Tally, s: Step, user: &mut User) -> bool {
    let reply = run_step(client, s, user).await;
    let (code, elapsed) = reply.map_or((0, Duration::ZERO), |r| (r.code(), r.elapsed));
    tally.record(s, code, elapsed);
    code == s.expected()
}

/// One unit of load: a full login of a free user, or the enrolment of a new one.
async fn iteration(client: &Client, tally: &Tally, pool: &Mutex<VecDeque<User>>, next_id: usize) {
    let now_step = unix_now() / PERIOD;
    let free = pool.lock().ok().and_then(|mut q| {
        let i = q
            .iter()
            .position(|u| u.last_step.is_some_and(|s| s < now_step))?;
        q.remove(i)
    });
    let Some(mut user) = free else {
        let mut user = User::new("soak", next_id);
        for s in [
            Step::Signup,
            Step::LoginSession,
            Step::Setup,
            Step::VerifySetup,
        ] {
            if !step(client, tally, s, &mut user).await {
                return;
            }
        }
        if let Ok(mut q) = pool.lock() {
            q.push_back(user);
        }
        return;
    };
    let ok = step(client, tally, Step::LoginChallenge, &mut user).await
        && step(client, tally, Step::SecondStep, &mut user).await;
    if ok {
        let token = user.token.clone();
        let me = client.get("/api/me", token.as_deref()).await;
        tally.record_named("me", me.code(), me.elapsed);
        let out = client
            .post("/api/logout", token.as_deref(), &serde_json::json!({}))
            .await;
        tally.record_named("logout", out.code(), out.elapsed);
    }
    if let Ok(mut q) = pool.lock() {
        q.push_back(user);
    }
}

/// Runs the soak.
///
/// # Errors
/// When the server or the database cannot be set up.
pub async fn soak(opts: &SoakOptions) -> Result<SoakReport, String> {
    let dir = TempDir::new("soak")?;
    let mut pg = None;
    let database = match &opts.backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("soak.db").display()),
        Backend::Postgres(admin) => {
            let db = PgDatabase::create(admin, "soak").await?;
            let url = db.url.clone();
            pg = Some(db);
            url
        }
    };
    let bin = match &opts.server_bin {
        // Absolute: the server runs in a temporary working directory.
        Some(b) => {
            std::fs::canonicalize(b).map_err(|e| format!("--server-bin {}: {e}", b.display()))?
        }
        None => server_binary()?,
    };
    let mut server = Server::start(&bin, dir.path(), &database, "warn")?;
    let pid = server.pid();
    let client = Client::new(&server.base, Duration::from_secs(30));
    let tally = Arc::new(Tally(Mutex::new(Vec::new())));
    let pool = Arc::new(Mutex::new(VecDeque::new()));
    let started = Instant::now();
    let mut samples = vec![Sample {
        at: 0,
        rss_kib: resident_kib(pid).unwrap_or(0),
    }];
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate.max(0.01)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_sample = opts.sample_every;
    let mut next_id = 0;
    let mut running = tokio::task::JoinSet::new();
    while started.elapsed() < opts.duration {
        tick.tick().await;
        if server.exited() {
            return Err(format!(
                "the server exited; its log:\n{}",
                server.log_text()
            ));
        }
        let (client, tally, pool) = (client.clone(), Arc::clone(&tally), Arc::clone(&pool));
        running.spawn(async move { iteration(&client, &tally, &pool, next_id).await });
        next_id += 1;
        while running.try_join_next().is_some() {}
        if started.elapsed() >= next_sample {
            let rss = resident_kib(pid).ok_or("the server's /proc status is unreadable")?;
            let at = started.elapsed().as_secs();
            eprintln!(
                "t={at:>4}s  rss {:.1} MiB  in flight {}",
                rss as f64 / 1024.0,
                running.len()
            );
            samples.push(Sample { at, rss_kib: rss });
            next_sample += opts.sample_every;
        }
    }
    while running.join_next().await.is_some() {}
    samples.push(Sample {
        at: started.elapsed().as_secs(),
        rss_kib: resident_kib(pid).unwrap_or(0),
    });
    let users = pool.lock().map_or(0, |q| q.len());
    drop(server);
    if let Some(db) = pg {
        db.drop_db().await;
    }
    let wall = started.elapsed();
    let mut phases = Arc::try_unwrap(tally)
        .ok()
        .and_then(|t| t.0.into_inner().ok())
        .unwrap_or_default();
    for p in &mut phases {
        p.wall = wall;
    }
    Ok(SoakReport {
        samples,
        phases,
        users,
    })
}
