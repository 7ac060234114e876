//! The headline scenario: N users through sign-up, 2FA setup and login, then every second step
//! fired at once, then every one of them replayed; and the SQL floor in the same run.

use std::path::PathBuf;
use std::time::Duration;

use crate::flow::{PERIOD, Step, User, run_phase, unix_now, wait_for_step_after};
use crate::http::Client;
use crate::server::{PgDatabase, Server, TempDir, cpu_time, server_binary};
use crate::stats::Phase;

/// Which database a spawned server runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database created on the PostgreSQL server at this (admin) URL, dropped after.
    Postgres(String),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many users.
    pub users: usize,
    /// Requests in flight during the second-step burst (and its floor).
    pub clients: usize,
    /// Requests in flight during the password phases (Argon2 is slow by design).
    pub password_clients: usize,
    /// The database of the server this run starts.
    pub backend: Backend,
    /// Drive this already running server instead of starting one (no floor, no log check
    /// unless `database` is given).
    pub url: Option<String>,
    /// The database URL of the server at `url`, for the floor.
    pub database: Option<String>,
    /// The server binary (default: beside this executable).
    pub server_bin: Option<PathBuf>,
    /// Measure the SQL floor.
    pub floor: bool,
    /// Per-request deadline.
    pub deadline: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            users: 200,
            clients: 64,
            password_clients: 8,
            backend: Backend::Sqlite,
            url: None,
            database: None,
            server_bin: None,
            floor: true,
            deadline: Duration::from_secs(30),
        }
    }
}

/// What a run found.
pub struct Report {
    /// "SQLite" or "PostgreSQL" (or "external").
    pub backend: &'static str,
    /// One per step, in order.
    pub phases: Vec<Phase>,
    /// The SQL floor of the second step, when measured.
    pub floor: Option<Phase>,
    /// Each acceptance check and whether it held.
    pub checks: Vec<(String, bool)>,
    /// CPU time per request of the second step (server and load generator) and of the floor
    /// (this process, which runs SQLite itself or PostgreSQL's client side), when readable.
    pub cpu: Vec<String>,
}

impl Report {
    /// Did every check hold?
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|(_, ok)| *ok)
    }

    /// The phase of `step`.
    pub fn phase(&self, step: Step) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == step.name())
    }

    /// Second-step throughput over the floor's.
    pub fn floor_ratio(&self) -> Option<f64> {
        let floor = self.floor.as_ref()?.throughput();
        let served = self.phase(Step::SecondStep)?.throughput();
        (floor > 0.0).then(|| served / floor)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "backend: {}", self.backend)?;
        for phase in &self.phases {
            writeln!(f, "  {phase}")?;
        }
        if let Some(floor) = &self.floor {
            writeln!(f, "  {floor}")?;
        }
        if let Some(ratio) = self.floor_ratio() {
            writeln!(f, "  second step / floor = {ratio:.2}×")?;
        }
        for line in &self.cpu {
            writeln!(f, "  cpu: {line}")?;
        }
        for (check, ok) in &self.checks {
            writeln!(f, "  [{}] {check}", if *ok { "ok" } else { "FAILED" })?;
        }
        Ok(())
    }
}

/// Runs the scenario.
///
/// # Errors
/// When the server or the database cannot be set up. Failed requests are not errors: they
/// are counted and fail the report's checks.
pub async fn headline(opts: &Options) -> Result<Report, String> {
    let dir = TempDir::new("load")?;
    let mut pg = None;
    let mut server = None;
    let (base, database, backend) = if let Some(url) = &opts.url {
        (url.clone(), opts.database.clone(), "external")
    } else {
        let (database, name) = match &opts.backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("load.db").display()),
                "SQLite",
            ),
            Backend::Postgres(admin) => {
                let db = PgDatabase::create(admin, "load").await?;
                let url = db.url.clone();
                pg = Some(db);
                (url, "PostgreSQL")
            }
        };
        let bin = match &opts.server_bin {
            // Absolute: the server runs in a temporary working directory.
            Some(b) => std::fs::canonicalize(b)
                .map_err(|e| format!("--server-bin {}: {e}", b.display()))?,
            None => server_binary()?,
        };
        let s = Server::start(&bin, dir.path(), &database, "info,sqlx=warn")?;
        let base = s.base.clone();
        server = Some(s);
        (base, Some(database), name)
    };
    let client = Client::new(&base, opts.deadline);
    let tag = crate::server::unique_suffix();
    let mut users: Vec<User> = (0..opts.users).map(|i| User::new(&tag, i)).collect();

    let mut phases = Vec::new();
    for step in [
        Step::Signup,
        Step::LoginSession,
        Step::Setup,
        Step::VerifySetup,
        Step::LoginChallenge,
    ] {
        let clients = match step {
            Step::Signup | Step::LoginSession | Step::LoginChallenge => opts.password_clients,
            _ => opts.clients,
        };
        phases.push(run_phase(&client, step, &mut users, clients).await);
    }
    // Each user's next code must be of a later step than the one that confirmed setup.
    let last = users.iter().filter_map(|u| u.last_step).max();
    if let Some(last) = last {
        wait_for_step_after(last).await;
    }
    // Not too close to the end of the step either: the burst should be one step's codes.
    if PERIOD - unix_now() % PERIOD < 3 {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let me = std::process::id();
    let server_pid = server.as_ref().map(Server::pid);
    let per_request = |before: Option<Duration>, after: Option<Duration>| {
        let n = u32::try_from(opts.users.max(1)).unwrap_or(u32::MAX);
        Some(after?.saturating_sub(before?) / n)
    };
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let (server_cpu, own_cpu) = (server_pid.and_then(cpu_time), cpu_time(me));
    phases.push(run_phase(&client, Step::SecondStep, &mut users, opts.clients).await);
    let mut cpu = Vec::new();
    if let Some(d) = per_request(server_cpu, server_pid.and_then(cpu_time)) {
        cpu.push(format!("second step: server {} per request", ms(d)));
    }
    if let Some(d) = per_request(own_cpu, cpu_time(me)) {
        cpu.push(format!("second step: load generator {} per request", ms(d)));
    }
    phases.push(run_phase(&client, Step::Replay, &mut users, opts.clients).await);

    let floor = match (&database, opts.floor) {
        (Some(db), true) if db.starts_with("sqlite:") => {
            Some(crate::floor::sqlite(db, opts.users, opts.clients).await?)
        }
        (Some(db), true) => Some(crate::floor::postgres(db, opts.users, opts.clients).await?),
        _ => None,
    };
    let floor = floor.map(|(phase, spent)| {
        if let Some(d) = spent {
            let n = u32::try_from(opts.users.max(1)).unwrap_or(u32::MAX);
            cpu.push(format!("floor: this process {} per step", ms(d / n)));
        }
        phase
    });

    let mut checks = Vec::new();
    let n = u32::try_from(opts.users).unwrap_or(u32::MAX);
    for phase in &phases {
        let server_errors: u32 = phase.statuses.range(500..).map(|(_, c)| c).sum();
        checks.push((
            format!(
                "{}: {} requests, none unanswered, no 5xx",
                phase.name,
                phase.count()
            ),
            phase.count() == opts.users && phase.with_status(0) == 0 && server_errors == 0,
        ));
    }
    if let Some(second) = phases.iter().find(|p| p.name == Step::SecondStep.name()) {
        checks.push((
            format!("second step: all {n} answered 200"),
            second.with_status(200) == n,
        ));
    }
    if let Some(replay) = phases.iter().find(|p| p.name == Step::Replay.name()) {
        checks.push((
            "replay: no second step accepted twice (0 × 200)".into(),
            replay.with_status(200) == 0,
        ));
    }
    if let Some(s) = &server {
        let log = s.log_text();
        checks.push((
            "server log: no \"database is locked\"".into(),
            !log.contains("database is locked"),
        ));
    }
    if let Some(floor) = &floor {
        checks.push((
            "floor: every bare second step succeeded".into(),
            floor.with_status(200) == n,
        ));
    }
    drop(server);
    if let Some(db) = pg {
        db.drop_db().await;
    }
    Ok(Report {
        backend,
        phases,
        floor,
        checks,
        cpu,
    })
}
