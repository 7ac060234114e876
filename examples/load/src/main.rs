//! `twofactor-load`: drives the demo server with many users and prints what it measured.
//!
//! ```sh
//! cargo run --release -p twofactor-load -- --users 200 --clients 64            # SQLite
//! cargo run --release -p twofactor-load -- --postgres postgres://postgres@127.0.0.1:5432/test
//! cargo run --release -p twofactor-load -- soak --minutes 10 --sample-secs 30  # memory soak
//! cargo run --release -p twofactor-load -- logins --concurrent 128              # peak memory
//! ```
//!
//! See examples/load/README.md for every option and the figures measured.

use std::process::ExitCode;
use std::time::Duration;

use twofactor_load::burst::{BurstOptions, burst};
use twofactor_load::run::{Backend, Options, headline};
use twofactor_load::soak::{SoakOptions, soak};

const USAGE: &str = "\
usage: twofactor-load [OPTIONS]          the headline scenario (one run, then the SQL floor)
       twofactor-load soak [OPTIONS]     steady load, sampling the server's resident memory
       twofactor-load logins [OPTIONS]   password logins all at once, with the server's peak memory

options:
  --sqlite                 start the server on a fresh SQLite file (default)
  --postgres URL           start the server on a fresh database created at URL (dropped after)
  --users N                users (default 200)
  --clients N              requests in flight for setup and the second step (default 64)
  --password-clients N     requests in flight for sign-up and logins (default 8)
  --url URL                drive a server already running at URL instead of starting one
  --database URL           with --url: its database, to measure the floor on
  --server-bin PATH        the twofactor-server binary (default: beside this one)
  --no-floor               skip the SQL floor
soak options:
  --minutes N              duration (default 10)
  --sample-secs N          memory sample interval (default 30)
  --rate N                 logins started per second (default 4)
logins options (also --users, default 8, and --password-clients for their sign-up):
  --concurrent N           logins released at once (default 128)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Parses the arguments and runs; `Ok(false)` when a check failed.
async fn dispatch(args: &[String]) -> Result<bool, String> {
    let (mode, args) = match args.first().map(String::as_str) {
        Some(m @ ("soak" | "logins")) => (m, &args[1..]),
        _ => ("headline", args),
    };
    let mut concurrent = 128;
    let mut users = None;
    let mut opts = Options::default();
    let mut soak_opts = SoakOptions {
        duration: Duration::from_secs(600),
        sample_every: Duration::from_secs(30),
        rate: 4.0,
        backend: Backend::Sqlite,
        server_bin: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--sqlite" => opts.backend = Backend::Sqlite,
            "--postgres" => opts.backend = Backend::Postgres(value()?),
            "--users" => users = Some(number(arg, &value()?)?),
            "--concurrent" => concurrent = number(arg, &value()?)?,
            "--clients" => opts.clients = number(arg, &value()?)?,
            "--password-clients" => opts.password_clients = number(arg, &value()?)?,
            "--url" => opts.url = Some(value()?),
            "--database" => opts.database = Some(value()?),
            "--server-bin" => opts.server_bin = Some(value()?.into()),
            "--no-floor" => opts.floor = false,
            "--minutes" => {
                soak_opts.duration = Duration::from_secs(number::<u64>(arg, &value()?)? * 60);
            }
            "--sample-secs" => {
                soak_opts.sample_every = Duration::from_secs(number(arg, &value()?)?);
            }
            "--rate" => soak_opts.rate = number(arg, &value()?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(true);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if mode == "logins" {
        let burst_opts = BurstOptions {
            concurrent,
            users: users.unwrap_or(8),
            password_clients: opts.password_clients,
            backend: opts.backend.clone(),
            server_bin: opts.server_bin.clone(),
        };
        println!(
            "{} password logins at once over {} users",
            burst_opts.concurrent, burst_opts.users
        );
        let report = burst(&burst_opts).await?;
        print!("{report}");
        return Ok(report.passed());
    }
    if let Some(users) = users {
        opts.users = users;
    }
    if mode == "soak" {
        soak_opts.backend = opts.backend.clone();
        soak_opts.server_bin = opts.server_bin.clone();
        println!(
            "soak: {} s at {} logins/s, memory every {} s",
            soak_opts.duration.as_secs(),
            soak_opts.rate,
            soak_opts.sample_every.as_secs()
        );
        let report = soak(&soak_opts).await?;
        print!("{report}");
        return Ok(report.passed());
    }
    println!(
        "{} users; {} clients for setup and the second step, {} for password steps",
        opts.users, opts.clients, opts.password_clients
    );
    let report = headline(&opts).await?;
    print!("{report}");
    Ok(report.passed())
}

fn number<T: std::str::FromStr>(arg: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{arg} wants a number, not {value:?}"))
}
