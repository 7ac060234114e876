//! One user's way through the demo, step by step, as a browser would go: sign up, log in,
//! start 2FA setup, confirm it with a code from the authenticator, log in again (password), and
//! complete the second step with a fresh code. Codes are computed with the `twofactor` crate
//! from the secret the server returned at setup, exactly as an authenticator app would.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http::{Client, Reply};
use crate::stats::Phase;

/// The TOTP period the demo uses.
pub const PERIOD: u64 = 30;

/// A simulated user and what the server gave it so far.
pub struct User {
    /// Unique per run.
    pub email: String,
    /// Test data, never logged.
    pub password: String,
    /// Session token (after a login without 2FA, or after the second step).
    pub token: Option<String>,
    /// The base32 secret from setup (what the QR code carries).
    pub secret: Option<String>,
    /// The time step of the last code the server accepted; the next code must be later.
    pub last_step: Option<u64>,
    /// The login challenge from the password step.
    pub challenge: Option<String>,
    /// The code sent with the last second step (to try it again: it must be refused).
    pub last_code: Option<String>,
}

impl User {
    /// A fresh user, `tag` and `i` making the email unique.
    pub fn new(tag: &str, i: usize) -> Self {
        Self {
            email: format!("load-{tag}-{i}@example.invalid"),
            password: format!("correct horse {i} battery staple"),
            token: None,
            secret: None,
            last_step: None,
            challenge: None,
            last_code: None,
        }
    }
}

/// Current Unix time.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The code an authenticator shows for base32 `secret` at Unix time `t`.
///
/// # Errors
/// When the secret the server returned is not valid base32 of a usable length.
pub fn totp_at(secret: &str, t: u64) -> Result<String, String> {
    let secret = twofactor::Secret::from_base32(secret).map_err(|e| format!("secret: {e}"))?;
    let totp = twofactor::Totp::builder(&secret)
        .build()
        .map_err(|e| format!("totp: {e}"))?;
    let code = totp.generate_at(t).map_err(|e| format!("code: {e}"))?;
    Ok(code.as_str().to_owned())
}

/// Sleeps until the current time step is later than `step` (a code of the next step is then
/// fresh for every user whose last accepted step is at most `step`).
pub async fn wait_for_step_after(step: u64) {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if now.as_secs() / PERIOD > step {
            return;
        }
        let next = Duration::from_secs((step + 1) * PERIOD);
        tokio::time::sleep(next.saturating_sub(now) + Duration::from_millis(20)).await;
    }
}

/// What a step asks of the server and what it expects back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `POST /api/signup` → 201.
    Signup,
    /// `POST /api/login` for a user without 2FA → 200 with a session token.
    LoginSession,
    /// `POST /api/2fa/setup` → 200 with the secret.
    Setup,
    /// `POST /api/2fa/verify-setup` with a current code → 200 with backup codes.
    VerifySetup,
    /// `POST /api/login` for a user with 2FA → 200 with a challenge.
    LoginChallenge,
    /// `POST /api/login/2fa` with the challenge and a fresh code → 200 with a session token.
    SecondStep,
    /// The same challenge and code again → must not be 200.
    Replay,
}

impl Step {
    /// The name printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::LoginSession => "login",
            Self::Setup => "2fa setup",
            Self::VerifySetup => "verify-setup",
            Self::LoginChallenge => "login (pw)",
            Self::SecondStep => "second step",
            Self::Replay => "replay",
        }
    }

    /// The status that means the step did what it should.
    pub fn expected(self) -> u16 {
        match self {
            Self::Signup => 201,
            Self::Replay => 401,
            _ => 200,
        }
    }
}

/// Runs `step` for `user` and updates it from the answer. A step that cannot even be sent
/// (a missing token or secret because an earlier step failed) returns `None`.
pub async fn run_step(client: &Client, step: Step, user: &mut User) -> Option<Reply> {
    let credentials = json!({ "email": user.email, "password": user.password });
    let reply = match step {
        Step::Signup => client.post("/api/signup", None, &credentials).await,
        Step::LoginSession | Step::LoginChallenge => {
            client.post("/api/login", None, &credentials).await
        }
        Step::Setup => {
            client
                .post("/api/2fa/setup", user.token.as_deref(), &json!({}))
                .await
        }
        Step::VerifySetup => {
            let now = unix_now();
            let code = totp_at(user.secret.as_deref()?, now).ok()?;
            let token = user.token.clone()?;
            let reply = client
                .post(
                    "/api/2fa/verify-setup",
                    Some(&token),
                    &json!({ "code": code }),
                )
                .await;
            if reply.code() == 200 {
                user.last_step = Some(now / PERIOD);
            }
            reply
        }
        Step::SecondStep => {
            let now = unix_now();
            let code = totp_at(user.secret.as_deref()?, now).ok()?;
            let body = json!({ "challenge": user.challenge.as_deref()?, "code": code });
            let reply = client.post("/api/login/2fa", None, &body).await;
            if reply.code() == 200 {
                user.last_step = Some(now / PERIOD);
            }
            user.last_code = Some(code);
            reply
        }
        Step::Replay => {
            let body = json!({ "challenge": user.challenge.as_deref()?, "code": user.last_code.as_deref()? });
            client.post("/api/login/2fa", None, &body).await
        }
    };
    match step {
        Step::LoginSession | Step::SecondStep => {
            user.token = reply.str("token").map(str::to_owned);
        }
        Step::Setup => user.secret = reply.str("secret").map(str::to_owned),
        Step::LoginChallenge => user.challenge = reply.str("challenge").map(str::to_owned),
        _ => {}
    }
    Some(reply)
}

/// Runs `step` for every user with at most `clients` requests in flight, all released at once;
/// returns the phase's figures. Users for whom the step could not be sent are counted as
/// status 0 with zero latency (nothing was sent, so nothing is hidden).
pub async fn run_phase(
    client: &Client,
    step: Step,
    users: &mut Vec<User>,
    clients: usize,
) -> Phase {
    let taken = std::mem::take(users);
    let (phase, back) = concurrently(step.name(), taken, clients, {
        let client = client.clone();
        move |mut user: User| {
            let client = client.clone();
            async move {
                let reply = run_step(&client, step, &mut user).await;
                let (code, elapsed) = reply.map_or((0, Duration::ZERO), |r| (r.code(), r.elapsed));
                (user, code, elapsed)
            }
        }
    })
    .await;
    *users = back;
    phase
}

/// Runs `op` on every item with at most `clients` in flight, every task spawned up front and
/// released together; returns the phase and the items in their original order.
pub async fn concurrently<T, F, Fut>(
    name: &str,
    items: Vec<T>,
    clients: usize,
    op: F,
) -> (Phase, Vec<T>)
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (T, u16, Duration)> + Send + 'static,
{
    let gate = Arc::new(tokio::sync::Semaphore::new(clients.max(1)));
    let start = Arc::new(tokio::sync::Barrier::new(items.len() + 1));
    let op = Arc::new(op);
    let mut tasks = Vec::with_capacity(items.len());
    for item in items {
        let (gate, start, op) = (Arc::clone(&gate), Arc::clone(&start), Arc::clone(&op));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let _permit = gate.acquire().await;
            op(item).await
        }));
    }
    start.wait().await;
    let began = Instant::now();
    let mut phase = Phase::new(name);
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok((item, status, latency)) = task.await {
            phase.record(status, latency);
            out.push(item);
        }
    }
    phase.wall = began.elapsed();
    (phase, out)
}
