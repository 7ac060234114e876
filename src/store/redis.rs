//! [`RedisStore`]: the [`EphemeralStore`] (login challenges, rate-limit counters) in Redis, over
//! a connection the application already has.
//!
//! Authenticators, backup codes and device tokens (trusted browsers included) are durable
//! credentials: they live in the [`CredentialStore`](super::CredentialStore) (SQLite,
//! PostgreSQL), never in Redis, where an eviction or a restart without persistence would drop a
//! second factor or bring a revoked browser's trust back.
//!
//! - A challenge is one string key; `take_challenge` is one `GETDEL`, so of concurrent callers
//!   exactly one gets the value.
//! - A limiter is one string key updated by an optimistic compare-and-set: read the value, run
//!   the caller's pure `update` in Rust, then a Lua script writes the new value only if the key
//!   still holds what was read, and otherwise returns what it holds now so the loop can retry at
//!   once. This works on multiplexed connections (`ConnectionManager`, `MultiplexedConnection`),
//!   where `WATCH`/`MULTI` cannot (a `WATCH` belongs to the whole shared connection, so other
//!   tasks' commands would interleave with the transaction). After
//!   [`RedisStore::MAX_ATTEMPTS`] lost races the call fails closed with
//!   [`RedisStoreError::Contention`].
//!
//! - Each user's challenges are also listed in a set, `{prefix}user-challenges:{user id}`
//!   (expiring with its last challenge), so [`EphemeralStore::delete_user_state`] finds them
//!   without scanning the keyspace. Every command touches one key, so the store works on a
//!   Redis Cluster too.
//! - Expired keys are Redis's to drop: [`Purge::purge_expired`] does nothing and returns 0.
//!
//! Validity is always decided against the `now` the caller passes, never Redis's clock. Redis
//! expiry only collects garbage: a key is set to expire at the record's own expiry plus a grace
//! period ([`RedisStore::with_gc_grace`]), measured on the Redis server's clock, so a caller whose
//! clock is behind the server's (or a test with a fake clock) never sees a key vanish early.

use std::sync::LazyLock;

use redis::Script;
use redis::aio::ConnectionLike;
use thiserror::Error;

use super::{ChallengeHash, ChallengeRecord, EphemeralStore, LimiterState, LimiterUpdate, Purge};

/// The default prefix of every key the store writes.
pub const DEFAULT_KEY_PREFIX: &str = "twofactor:";

/// An infrastructure failure of [`RedisStore`]. Messages never contain a token, a code or a
/// hash.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// Redis could not be reached or refused a command.
    #[error("redis operation failed")]
    Redis(#[from] redis::RedisError),
    /// `update_limiter` lost the compare-and-set race this many times in a row. Fail closed
    /// (treat the attempt as rate limited); it means one key is being hammered.
    #[error("rate-limiter update lost {attempts} races in a row")]
    Contention {
        /// How many attempts were made.
        attempts: u32,
    },
    /// A key under the store's prefix holds a value this store did not write.
    #[error("redis key holds a malformed {what} value")]
    Corrupt {
        /// Which kind of value.
        what: &'static str,
    },
}

/// `SET` with an expiry taken from the record, floored at the server's current time, plus grace.
/// KEYS[1] = key; ARGV = value, expires_at (Unix s), grace (s).
static PUT_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(redis.call('TIME')[1])
local exp = tonumber(ARGV[2])
if exp < now then exp = now end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', string.format('%d', exp + tonumber(ARGV[3])))
return 1
",
    )
});

/// Adds a challenge key to its user's set and makes the set live at least as long as the
/// challenge. KEYS[1] = the set; ARGV = challenge key, expires_at (Unix s), grace (s).
static INDEX_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(redis.call('TIME')[1])
local exp = tonumber(ARGV[2])
if exp < now then exp = now end
exp = exp + tonumber(ARGV[3])
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 or now + ttl < exp then
  redis.call('EXPIREAT', KEYS[1], string.format('%d', exp))
end
return 1
",
    )
});

/// Compare-and-set. KEYS[1] = key; ARGV = expected value ('' = absent), new value, expire_at,
/// grace. Returns {1, new} when written, {0, current} ('' = absent) when the key changed.
static CAS_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return {0, cur} end
local now = tonumber(redis.call('TIME')[1])
local exp = tonumber(ARGV[3])
if exp < now then exp = now end
redis.call('SET', KEYS[1], ARGV[2], 'EXAT', string.format('%d', exp + tonumber(ARGV[4])))
return {1, ARGV[2]}
",
    )
});

/// Expiry instants are capped here (year ~36800) so that Lua's doubles and Redis's millisecond
/// arithmetic stay exact; a later `expires_at` only delays garbage collection.
const MAX_EXPIRE_AT: u64 = 1 << 40;

/// Login challenges and rate-limit counters in Redis.
///
/// Generic over the connection: pass a `redis::aio::ConnectionManager` (reconnects on its own;
/// the default) or a `redis::aio::MultiplexedConnection`. Cloning the store clones the
/// connection handle, which for both of those shares one connection.
#[derive(Clone)]
pub struct RedisStore<C = redis::aio::ConnectionManager> {
    conn: C,
    prefix: String,
    gc_grace: u64,
}

impl<C> core::fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("gc_grace", &self.gc_grace)
            .finish_non_exhaustive()
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// How many times `update_limiter` retries its compare-and-set before giving up.
    pub const MAX_ATTEMPTS: u32 = 100;

    /// The default grace period (seconds) added to every key's Redis expiry.
    pub const DEFAULT_GC_GRACE: u64 = 300;

    /// A store on `conn` whose keys start with `twofactor:`.
    pub fn new(conn: C) -> Self {
        Self::with_prefix(conn, DEFAULT_KEY_PREFIX)
    }

    /// A store on `conn` whose keys start with `prefix` (for example `myapp:2fa:`). Keys are
    /// `{prefix}challenge:{hex of the token hash}` and `{prefix}limiter:{key}`.
    pub fn with_prefix(conn: C, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            gc_grace: Self::DEFAULT_GC_GRACE,
        }
    }

    /// Sets how long (seconds, by the Redis server's clock) a key outlives its own expiry before
    /// Redis drops it. The default of 300 s covers clock skew between application servers and
    /// Redis; a key past its expiry is never reported valid, whatever the grace.
    #[must_use]
    pub fn with_gc_grace(mut self, seconds: u64) -> Self {
        self.gc_grace = seconds.min(MAX_EXPIRE_AT);
        self
    }

    fn challenge_key(&self, hash: &ChallengeHash) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 10 + 64);
        key.push_str(&self.prefix);
        key.push_str("challenge:");
        key.push_str(&data_encoding::HEXLOWER.encode(hash));
        key
    }

    fn user_challenges_key(&self, user_id: &str) -> String {
        format!("{}user-challenges:{user_id}", self.prefix)
    }

    fn limiter_key(&self, key: &str) -> String {
        format!("{}limiter:{key}", self.prefix)
    }
}

/// `"{expires_at}:{user_id}"`.
fn encode_challenge(record: &ChallengeRecord) -> String {
    format!("{}:{}", record.expires_at, record.user_id)
}

fn decode_challenge(raw: &[u8], now: u64) -> Result<Option<ChallengeRecord>, RedisStoreError> {
    let corrupt = RedisStoreError::Corrupt { what: "challenge" };
    let text =
        std::str::from_utf8(raw).map_err(|_| RedisStoreError::Corrupt { what: "challenge" })?;
    let (expires_at, user_id) = text.split_once(':').ok_or(corrupt)?;
    let expires_at: u64 = expires_at
        .parse()
        .map_err(|_| RedisStoreError::Corrupt { what: "challenge" })?;
    Ok((now < expires_at).then(|| ChallengeRecord {
        user_id: user_id.to_owned(),
        expires_at,
    }))
}

/// `"{window_start}:{attempts}:{failures}:{locked_until}:{forgiven_at}:{since_success}:\
/// {last_success_at}"`; absent = `""`.
fn encode_limiter(state: &LimiterState) -> String {
    format!(
        "{}:{}:{}:{}:{}:{}:{}",
        state.window_start,
        state.attempts,
        state.failures,
        state.locked_until,
        state.forgiven_at,
        state.since_success,
        state.last_success_at
    )
}

/// Reads [`encode_limiter`]'s format, and the four-field one of earlier versions
/// (`"{window_start}:{attempts}:{failures}:{locked_until}"`, the rest 0), so keys written before
/// an upgrade keep their counts.
fn decode_limiter(raw: &[u8]) -> Result<LimiterState, RedisStoreError> {
    if raw.is_empty() {
        return Ok(LimiterState::default());
    }
    let corrupt = || RedisStoreError::Corrupt { what: "limiter" };
    let text = std::str::from_utf8(raw).map_err(|_| corrupt())?;
    let parts: Vec<&str> = text.split(':').collect();
    let (old, new) = match parts.len() {
        4 => (&parts[..], &["0", "0", "0"][..]),
        7 => parts.split_at(4),
        _ => return Err(corrupt()),
    };
    let u64_at = |fields: &[&str], i: usize| fields[i].parse::<u64>().map_err(|_| corrupt());
    let u32_at = |fields: &[&str], i: usize| fields[i].parse::<u32>().map_err(|_| corrupt());
    Ok(LimiterState::from_parts(
        u64_at(old, 0)?,
        u32_at(old, 1)?,
        u32_at(old, 2)?,
        u64_at(old, 3)?,
        u64_at(new, 0)?,
        u32_at(new, 1)?,
        u64_at(new, 2)?,
    ))
}

impl<C> EphemeralStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    type Error = RedisStoreError;

    async fn put_challenge(
        &self,
        hash: &ChallengeHash,
        record: &ChallengeRecord,
    ) -> Result<(), Self::Error> {
        let mut conn = self.conn.clone();
        let key = self.challenge_key(hash);
        // The user's set first: a challenge is never live without being findable by
        // `delete_user_state` (a failure here puts nothing; one after it leaves a dangling name).
        let _: i64 = INDEX_SCRIPT
            .key(self.user_challenges_key(&record.user_id))
            .arg(&key)
            .arg(record.expires_at.min(MAX_EXPIRE_AT))
            .arg(self.gc_grace)
            .invoke_async(&mut conn)
            .await?;
        let _: i64 = PUT_SCRIPT
            .key(key)
            .arg(encode_challenge(record))
            .arg(record.expires_at.min(MAX_EXPIRE_AT))
            .arg(self.gc_grace)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn get_challenge(
        &self,
        hash: &ChallengeHash,
        now: u64,
    ) -> Result<Option<ChallengeRecord>, Self::Error> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.challenge_key(hash))
            .query_async(&mut conn)
            .await?;
        match raw {
            Some(raw) => decode_challenge(&raw, now),
            None => Ok(None),
        }
    }

    async fn take_challenge(
        &self,
        hash: &ChallengeHash,
        now: u64,
    ) -> Result<Option<ChallengeRecord>, Self::Error> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = redis::cmd("GETDEL")
            .arg(self.challenge_key(hash))
            .query_async(&mut conn)
            .await?;
        match raw {
            Some(raw) => decode_challenge(&raw, now),
            None => Ok(None),
        }
    }

    async fn update_limiter<F>(
        &self,
        key: &str,
        expire_at: u64,
        update: F,
    ) -> Result<LimiterUpdate, Self::Error>
    where
        F: Fn(LimiterState) -> LimiterState + Send + Sync,
    {
        let mut conn = self.conn.clone();
        let key = self.limiter_key(key);
        let mut current: Vec<u8> = redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<Vec<u8>>>(&mut conn)
            .await?
            .unwrap_or_default();
        for _ in 0..Self::MAX_ATTEMPTS {
            // `before` is decoded from the very bytes the script compares against, so what is
            // returned is the state the stored one was computed from, whatever retries came first.
            let before = decode_limiter(&current)?;
            let next = update(before);
            let (written, now_held): (i64, Vec<u8>) = CAS_SCRIPT
                .key(&key)
                .arg(&current[..])
                .arg(encode_limiter(&next))
                .arg(expire_at.min(MAX_EXPIRE_AT))
                .arg(self.gc_grace)
                .invoke_async(&mut conn)
                .await?;
            if written == 1 {
                return Ok(LimiterUpdate {
                    before,
                    after: next,
                });
            }
            current = now_held;
        }
        Err(RedisStoreError::Contention {
            attempts: Self::MAX_ATTEMPTS,
        })
    }

    async fn get_limiter(&self, key: &str) -> Result<LimiterState, Self::Error> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.limiter_key(key))
            .query_async(&mut conn)
            .await?;
        decode_limiter(raw.as_deref().unwrap_or_default())
    }
    async fn delete_user_state(
        &self,
        user_id: &str,
        limiter_keys: &[String],
    ) -> Result<u64, Self::Error> {
        let mut conn = self.conn.clone();
        let index = self.user_challenges_key(user_id);
        let challenges: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&index)
            .query_async(&mut conn)
            .await?;
        // Only names this store wrote; one key per command (Redis Cluster), in one round trip.
        let challenge_prefix = format!("{}challenge:", self.prefix);
        let keys: Vec<String> = challenges
            .into_iter()
            .filter(|k| k.starts_with(&challenge_prefix))
            .chain(limiter_keys.iter().map(|k| self.limiter_key(k)))
            .collect();
        let mut deleted: Vec<u64> = Vec::new();
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("DEL").arg(key);
            }
            deleted = pipe.query_async(&mut conn).await?;
        }
        let _: u64 = redis::cmd("DEL").arg(&index).query_async(&mut conn).await?;
        Ok(deleted.iter().sum())
    }
}

/// Does nothing and returns 0: every key the store writes expires by itself, a grace period
/// ([`RedisStore::with_gc_grace`]) after the record's own expiry.
impl<C> Purge for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    type Error = RedisStoreError;

    async fn purge_expired(&self, _now: u64) -> Result<u64, Self::Error> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_round_trip_and_expiry() {
        let rec = ChallengeRecord {
            user_id: "a:b".into(),
            expires_at: 100,
        };
        let raw = encode_challenge(&rec);
        assert_eq!(decode_challenge(raw.as_bytes(), 99).unwrap(), Some(rec));
        assert_eq!(decode_challenge(raw.as_bytes(), 100).unwrap(), None);
        assert!(decode_challenge(b"x:alice", 0).is_err());
        assert!(decode_challenge(b"nocolon", 0).is_err());
    }

    #[test]
    fn limiter_round_trip() {
        let s = LimiterState::from_parts(u64::MAX, 3, u32::MAX, 7, u64::MAX - 1, u32::MAX - 1, 9);
        assert_eq!(decode_limiter(encode_limiter(&s).as_bytes()).unwrap(), s);
        assert_eq!(decode_limiter(b"").unwrap(), LimiterState::default());
        for bad in [
            &b"1:2:3"[..],
            b"1:2:3:4:5",
            b"1:2:3:4:5:6",
            b"1:2:3:4:5:6:7:8",
            b"1:2:-3:4",
            b"1:2:3:4:5:-6:7",
            b"1:2:3:4:5:4294967296:7",
            b"1:2:3:4::6:7",
        ] {
            assert!(decode_limiter(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limiter_keys_written_before_the_new_fields_still_decode() {
        assert_eq!(
            decode_limiter(b"1700000000:4:9:1700000600").unwrap(),
            LimiterState::from_parts(1_700_000_000, 4, 9, 1_700_000_600, 0, 0, 0)
        );
    }
}
