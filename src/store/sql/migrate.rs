//! `migrate()`: the embedded schema files, each applied once, in one transaction.

/// Defines `migrate_with_prefix(&$pool, prefix)` in the dialect's migration module, which
/// provides `MIGRATIONS`, `SCHEMA_VERSION_TABLE` (the `CREATE TABLE IF NOT EXISTS` of
/// `{p}schema_version`), `RECORD_VERSION` (its `INSERT`, the version as parameter 1), and
/// `lock_schema(&mut Conn, prefix)`, which makes other migrations of the same tables wait until
/// this transaction ends.
macro_rules! flow {
    ($pool:ty) => {
        pub(super) async fn migrate_with_prefix(
            pool: &$pool,
            prefix: &str,
        ) -> Result<(), SqlStoreError> {
            let mut tx = begin(pool).await?;
            lock_schema(&mut tx, prefix).await?;
            sqlx::raw_sql(assert_sql_safe(&stmt(SCHEMA_VERSION_TABLE, prefix)))
                .execute(&mut *tx)
                .await?;
            let applied: Vec<i64> = sqlx::query_scalar(assert_sql_safe(&stmt(
                "SELECT version FROM {p}schema_version",
                prefix,
            )))
            .fetch_all(&mut *tx)
            .await?;
            let record = stmt(RECORD_VERSION, prefix);
            for migration in pending_migrations(MIGRATIONS, &applied) {
                sqlx::raw_sql(assert_sql_safe(&migration_sql(migration.sql, prefix)))
                    .execute(&mut *tx)
                    .await?;
                q(&record).bind(migration.version).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }
    };
}
pub(crate) use flow;

/// The schema files of `migrations/$dir/`, in order, embedded. A new file is a new line here,
/// for both dialects at once (each dialect has a file for every version).
macro_rules! embedded {
    ($dir:literal) => {
        &[
            Migration {
                version: 1,
                sql: include_str!(concat!(
                    "../../../migrations/",
                    $dir,
                    "/0001_twofactor_init.sql"
                )),
            },
            Migration {
                version: 2,
                sql: include_str!(concat!(
                    "../../../migrations/",
                    $dir,
                    "/0002_twofactor_adversary_model.sql"
                )),
            },
            Migration {
                version: 3,
                sql: include_str!(concat!(
                    "../../../migrations/",
                    $dir,
                    "/0003_twofactor_authenticators.sql"
                )),
            },
            Migration {
                version: 4,
                sql: include_str!(concat!(
                    "../../../migrations/",
                    $dir,
                    "/0004_twofactor_scheduled_changes.sql"
                )),
            },
        ]
    };
}
pub(crate) use embedded;
