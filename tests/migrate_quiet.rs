//! `migrate()` says nothing at INFO or above when the schema is already there: PostgreSQL's
//! NOTICEs ("relation ... already exists, skipping") and sqlx's statement logs stay out of the
//! application's logs at every start. One test per process: it installs the global subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{AssertSqlSafe, Executor};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::util::SubscriberInitExt;
use twofactor::store::{PostgresStore, SqliteStore};

/// Everything logged at INFO and above, from `tracing` and from the `log` crate.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_quiet_at_info() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(LevelFilter::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .try_init()
        .unwrap();

    // SQLite: a fresh database, then every later start.
    let sqlite = SqliteStore::new(
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap(),
    );
    for _ in 0..3 {
        sqlite.migrate().await.unwrap();
    }
    let said = logs.take();
    assert!(
        said.is_empty(),
        "SQLite migrate() logged at INFO or above:\n{said}"
    );

    let Some(url) = common::postgres_url("migrate_quiet::migrate_is_quiet_at_info") else {
        return;
    };
    let schema = common::unique("tf_quiet");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    admin
        .execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .unwrap();
    let search_path = schema.clone();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .after_connect(move |conn, _| {
            let s = search_path.clone();
            Box::pin(async move {
                conn.execute(AssertSqlSafe(format!("SET search_path TO {s}")))
                    .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    let store = PostgresStore::new(pool.clone());
    store.migrate().await.unwrap();
    logs.take(); // the first run creates tables; only later starts must be silent

    // The capture sees what PostgreSQL NOTICEs turn into, so its silence below means something.
    pool.execute(AssertSqlSafe(
        "CREATE TABLE IF NOT EXISTS twofactor_authenticators (user_id TEXT)".to_owned(),
    ))
    .await
    .unwrap();
    let notice = logs.take();
    assert!(
        notice.contains("already exists"),
        "the capture did not see a NOTICE at INFO; the test would prove nothing:\n{notice:?}"
    );

    for _ in 0..3 {
        store.migrate().await.unwrap();
    }
    let said = logs.take();
    pool.close().await;
    admin
        .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .unwrap();
    assert!(
        said.is_empty(),
        "PostgreSQL migrate() logged at INFO or above:\n{said}"
    );
}
