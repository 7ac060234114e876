//! An application on sqlx with a second factor from `twofactor`, the same source on sqlx 0.8 and
//! 0.9.
//!
//! It keeps its users in its own table, through its own sqlx pool, and hands that same pool to
//! `twofactor::store::{SqliteStore, PostgresStore}`. This file and its tests are built twice:
//! as `twofactor-sqlx08-app` on sqlx 0.8 (twofactor's features `sqlite-sqlx08`,
//! `postgres-sqlx08`) and as `twofactor-sqlx09-app` on sqlx 0.9 (features `sqlite`, `postgres`);
//! the two `Cargo.toml` differ only in those lines. Its tests log in against SQLite and
//! PostgreSQL.
//!
//! The password check is a stub (plain text in a table) to keep the example about 2FA; a real
//! application hashes passwords (see `examples/server`, which uses Argon2id).

use sqlx::{PgPool, SqlitePool};
use twofactor::service::{CompleteLogin, Config, LoginStart, SecondFactor, StartLogin};
use twofactor::store::{CredentialStore, EphemeralStore, PostgresStore, SqliteStore};
use twofactor::{BackupCodeKey, Keyring, ServiceError, TwoFactor, VerifyOutcome};

/// The application's own database: the pool it already had before adding 2FA.
#[derive(Clone, Debug)]
pub enum Db {
    /// SQLite through the app's sqlx.
    Sqlite(SqlitePool),
    /// PostgreSQL through the app's sqlx.
    Postgres(PgPool),
}

/// What the password step answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    /// Unknown user or wrong password.
    Denied,
    /// Logged in: this user has no second factor.
    Welcome(String),
    /// Password right; the code for this challenge is still owed.
    SecondFactor(String),
}

/// The app: its users, and `TwoFactor` over the store built on the same pool.
pub struct App<S> {
    db: Db,
    /// The 2FA service; the app calls it for enrolment and the second step.
    pub twofactor: TwoFactor<S>,
}

const USERS: &str = "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, \
                     name TEXT NOT NULL UNIQUE, password TEXT NOT NULL)";

impl<S> App<S>
where
    S: CredentialStore + EphemeralStore + Clone,
{
    /// Creates the users table (stub) next to the stores' tables.
    async fn with_store(db: Db, store: S) -> Result<Self, Box<dyn std::error::Error>> {
        match &db {
            Db::Sqlite(pool) => sqlx::query(USERS).execute(pool).await.map(drop)?,
            Db::Postgres(pool) => sqlx::query(USERS).execute(pool).await.map(drop)?,
        }
        let (_, key_config) = Keyring::generate(); // demo key; a real app reads it from its secrets
        let twofactor = TwoFactor::from_store(
            store,
            Keyring::from_config(&key_config)?,
            BackupCodeKey::derive(b"a master key kept outside the database"),
            Config::new("sqlx-app"),
        )?;
        Ok(Self { db, twofactor })
    }

    /// Adds a user (the sign-up stub).
    ///
    /// # Errors
    ///
    /// The database refused the insert (e.g. the name is taken).
    pub async fn add_user(&self, id: &str, name: &str, password: &str) -> Result<(), sqlx::Error> {
        let insert = "INSERT INTO users (id, name, password) VALUES ($1, $2, $3)";
        match &self.db {
            Db::Sqlite(pool) => sqlx::query(insert)
                .bind(id)
                .bind(name)
                .bind(password)
                .execute(pool)
                .await
                .map(drop)?,
            Db::Postgres(pool) => sqlx::query(insert)
                .bind(id)
                .bind(name)
                .bind(password)
                .execute(pool)
                .await
                .map(drop)?,
        };
        Ok(())
    }

    /// The first step: the password, then whether a code is owed.
    ///
    /// # Errors
    ///
    /// The database or the 2FA store is unavailable.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Login, Box<dyn std::error::Error>> {
        let find = "SELECT id FROM users WHERE name = $1 AND password = $2";
        let id: Option<String> = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_scalar(find)
                    .bind(name)
                    .bind(password)
                    .fetch_optional(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar(find)
                    .bind(name)
                    .bind(password)
                    .fetch_optional(pool)
                    .await?
            }
        };
        let Some(id) = id else {
            return Ok(Login::Denied);
        };
        let start = self.twofactor.start_login(StartLogin::new(&id)).await?;
        Ok(match start {
            LoginStart::Required { challenge, .. } => {
                Login::SecondFactor(challenge.as_str().to_owned())
            }
            _ => Login::Welcome(id),
        })
    }

    /// The second step: the code (TOTP or backup code) for a challenge. `Some(user id)` when
    /// the login is complete.
    ///
    /// # Errors
    ///
    /// The 2FA store is unavailable.
    pub async fn second_factor(
        &self,
        challenge: &str,
        code: &str,
    ) -> Result<Option<String>, ServiceError> {
        let attempt = CompleteLogin::new(challenge, SecondFactor::Typed(code));
        Ok(match self.twofactor.complete_login(attempt).await? {
            VerifyOutcome::Success { user_id, .. } => Some(user_id),
            _ => None, // wrong, replayed, expired or rate limited: one answer for the user
        })
    }
}

impl App<SqliteStore> {
    /// The app on SQLite: the stores' tables are created next to the app's own.
    ///
    /// # Errors
    ///
    /// The database refused the schema.
    pub async fn sqlite(pool: SqlitePool) -> Result<Self, Box<dyn std::error::Error>> {
        let store = SqliteStore::new(pool.clone());
        store.migrate().await?;
        Self::with_store(Db::Sqlite(pool), store).await
    }
}

impl App<PostgresStore> {
    /// The app on PostgreSQL: the stores' tables are created next to the app's own.
    ///
    /// # Errors
    ///
    /// The database refused the schema.
    pub async fn postgres(pool: PgPool) -> Result<Self, Box<dyn std::error::Error>> {
        let store = PostgresStore::new(pool.clone());
        store.migrate().await?;
        Self::with_store(Db::Postgres(pool), store).await
    }
}
