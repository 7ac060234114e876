//! Housekeeping in the background (feature `tokio`): the expired-entry purge every store needs,
//! started with one line.
//!
//! ```no_run
//! # #[tokio::main] async fn main() {
//! use std::time::Duration;
//! use twofactor::MemoryStore;
//!
//! let store = MemoryStore::new(); // or the SqliteStore / PostgresStore the service uses
//! let purge = twofactor::housekeeping::spawn(store.clone(), Duration::from_secs(300));
//! // ... serve requests; at shutdown, if you like:
//! purge.abort();
//! # }
//! ```
//!
//! Expired challenges, device tokens and limiter states are never reported valid, so the purge
//! is about space, not security: every few minutes is plenty. Several application instances may
//! all run it against one database; the deletes do not conflict with anything the service does.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::clock::{Clock, SystemClock};
use crate::store::Purge;

/// Spawns a task on the current Tokio runtime that calls [`Purge::purge_expired`] on `store`
/// now and then every `every` (a zero period is taken as one second), on the system clock.
///
/// The task never ends on its own and never panics: a failed purge is logged at WARN (target
/// `twofactor::housekeeping`, with the store's error, which holds no secret) and tried again at
/// the next tick; a successful one is logged at DEBUG with the number of entries removed. Drop
/// the handle to let it run detached, or `abort()` it.
///
/// # Panics
///
/// When called outside a Tokio runtime, like [`tokio::spawn`].
pub fn spawn<S>(store: S, every: Duration) -> JoinHandle<()>
where
    S: Purge + 'static,
{
    spawn_with_clock(store, every, SystemClock)
}

/// Like [`spawn`], with the clock injected (tests use [`ManualClock`](crate::ManualClock)).
///
/// # Panics
///
/// When called outside a Tokio runtime, like [`tokio::spawn`].
pub fn spawn_with_clock<S, C>(store: S, every: Duration, clock: C) -> JoinHandle<()>
where
    S: Purge + 'static,
    C: Clock + 'static,
{
    let every = if every.is_zero() {
        Duration::from_secs(1)
    } else {
        every
    };
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = clock.now();
            match store.purge_expired(now).await {
                Ok(purged) => {
                    tracing::debug!(target: "twofactor::housekeeping", purged, now, "purged expired 2FA state");
                }
                Err(error) => {
                    tracing::warn!(target: "twofactor::housekeeping", %error, now, "purging expired 2FA state failed; retrying at the next tick");
                }
            }
        }
    })
}
