//! Starting `twofactor-server` processes, the databases they run on, and reading their memory.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The fixed key the load runs and tests give the server (never a production key).
pub const TEST_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A unique-enough suffix for names (databases, emails, files): process id, a counter and the
/// clock's nanoseconds, so parallel runs on one machine do not collide.
pub fn unique_suffix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `twofactor-server` binary beside this executable (`target/<profile>/`), built first with
/// cargo when this process runs under cargo (`cargo run`, `cargo test`), so it is never stale.
///
/// # Errors
/// When the build fails or the binary is not there.
pub fn server_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    // target/<profile>/twofactor-load, or target/<profile>/deps/<test>-<hash> for tests.
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let release = dir.file_name().is_some_and(|n| n == "release");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "twofactor-server"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .map_err(|e| format!("cannot run cargo to build twofactor-server: {e}"))?;
        if !status.success() {
            return Err("cargo build -p twofactor-server failed".into());
        }
    }
    let bin = dir.join(format!("twofactor-server{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it with `cargo build {}-p twofactor-server`, or pass --server-bin",
            bin.display(),
            if release { "--release " } else { "" }
        ))
    }
}

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Where its log (stderr) goes.
    pub log: PathBuf,
}

impl Server {
    /// Starts `bin` in `dir` on a free port against `database_url` with the test key and
    /// `RUST_LOG=<log_level>`; waits (up to a minute) for its `listening on` line.
    ///
    /// # Errors
    /// When it cannot be started or does not come up.
    pub fn start(
        bin: &Path,
        dir: &Path,
        database_url: &str,
        log_level: &str,
    ) -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let log = dir.join(format!("server-{}.log", N.fetch_add(1, Ordering::Relaxed)));
        let log_file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = Command::new(bin)
            .current_dir(dir)
            .env("TWOFACTOR_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("TWOFACTOR_KEY", TEST_KEY)
            .env("RUST_LOG", log_level)
            .env_remove("TWOFACTOR_BACKUP_PEPPER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => Ok(Self { child, base, log }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "the server did not start; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ))
            }
        }
    }

    /// The process id (for [`resident_kib`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Has it exited?
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident memory of process `pid` in KiB (`VmRSS` in `/proc/<pid>/status`); `None` off Linux or
/// when the process is gone.
pub fn resident_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The most resident memory process `pid` has had, in KiB (`VmHWM`, the kernel's high-water
/// mark: it catches a peak between two samples); `None` off Linux or when the process is gone.
pub fn peak_resident_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// CPU time (user + system) process `pid` has used, from `/proc/<pid>/stat`; `None` off
/// Linux or when the process is gone. Ticks are taken as 100 per second (Linux's `USER_HZ`).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A directory under the system temp dir, removed on drop (kept when a thread panics, for the
/// server logs).
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `twofactor-<tag>-<unique>`.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(tag: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("twofactor-{tag}-{}", unique_suffix()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Self(dir))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A PostgreSQL database of its own, created on the server at `admin_url` and dropped by
/// [`PgDatabase::drop_db`] (or on drop).
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// The new database's URL.
    pub url: String,
    dropped: bool,
}

impl PgDatabase {
    /// Creates `twofactor_<tag>_<unique>`.
    ///
    /// # Errors
    /// When PostgreSQL cannot be reached or refuses.
    pub async fn create(admin_url: &str, tag: &str) -> Result<Self, String> {
        use sqlx::Connection as _;
        let name = format!("twofactor_{tag}_{}", unique_suffix());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL at the admin URL: {e}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("CREATE DATABASE failed: {e}"))?;
        let _ = conn.close().await;
        let url = replace_db_name(admin_url, &name);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
            dropped: false,
        })
    }

    /// Drops the database now.
    pub async fn drop_db(mut self) {
        drop_database(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    use sqlx::Connection as _;
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Possibly inside a runtime: a short-lived one on its own thread.
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&admin, &name));
            }
        })
        .join();
    }
}

/// `postgres://u@h:p/db?x` with `db` replaced by `name` (and with `host:port` replaced by
/// `authority` when given).
pub fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `url` with its `host:port` replaced by `addr` (to route a connection through a proxy).
pub fn replace_host(url: &str, addr: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let authority_end = rest.find(['/', '?']).map_or(rest.len(), |i| i);
    let authority = &rest[..authority_end];
    let userinfo = authority.rfind('@').map_or("", |i| &authority[..=i]);
    format!(
        "{}{userinfo}{addr}{}",
        &url[..after_scheme],
        &rest[authority_end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten() {
        assert_eq!(
            replace_db_name(
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
                "x"
            ),
            "postgres://postgres@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(
            replace_host("postgres://u:p@127.0.0.1:5432/db", "127.0.0.1:9"),
            "postgres://u:p@127.0.0.1:9/db"
        );
        assert_eq!(
            replace_host("postgres://localhost/db", "127.0.0.1:9"),
            "postgres://127.0.0.1:9/db"
        );
    }
}
