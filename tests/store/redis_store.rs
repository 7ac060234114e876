//! `RedisStore` against a real Redis (`TWOFACTOR_TEST_REDIS_URL`). Each test uses its own key
//! prefix and deletes its keys at the end, so tests run in parallel.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use twofactor::store::{ChallengeRecord, EphemeralStore, LimiterState, RedisStore, conformance};

use crate::common;

async fn manager(url: &str) -> ConnectionManager {
    let client = redis::Client::open(url).unwrap();
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1);
    ConnectionManager::new_with_config(client, config)
        .await
        .unwrap_or_else(|e| panic!("TWOFACTOR_TEST_REDIS_URL is set but unreachable: {e}"))
}

/// A unique prefix, and the keys under it deleted when the test is done.
struct Prefix {
    prefix: String,
    conn: ConnectionManager,
}

impl Prefix {
    async fn new(url: &str) -> Self {
        Self {
            prefix: format!("{}:", common::unique("twofactor_test")),
            conn: manager(url).await,
        }
    }

    fn store(&self, conn: ConnectionManager) -> RedisStore {
        RedisStore::with_prefix(conn, self.prefix.clone())
    }

    async fn keys(&self) -> Vec<String> {
        let mut conn = self.conn.clone();
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    async fn clean(self) {
        let keys = self.keys().await;
        if !keys.is_empty() {
            let mut conn = self.conn.clone();
            let _: i64 = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let url = need_redis!(conformance);
    let p = Prefix::new(&url).await;
    conformance::ephemeral_store(p.store(p.conn.clone())).await;
    p.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_two_connections() {
    let url = need_redis!(conformance_two_connections);
    let p = Prefix::new(&url).await;
    let a = p.store(p.conn.clone());
    let b = p.store(manager(&url).await);
    conformance::ephemeral_store_pair(a, b).await;
    p.clean().await;
}

#[tokio::test]
async fn keys_expire_after_their_record_plus_grace() {
    let url = need_redis!(keys_expire_after_their_record_plus_grace);
    let p = Prefix::new(&url).await;
    let store = p.store(p.conn.clone()).with_gc_grace(60);
    let mut conn = p.conn.clone();
    let server_now: u64 = redis::cmd("TIME")
        .query_async::<(u64, u64)>(&mut conn)
        .await
        .unwrap()
        .0;
    // A caller clock far behind the server's: the key must still live (grace), and validity
    // follows the caller's `now`.
    let old = ChallengeRecord {
        user_id: "u".into(),
        expires_at: 1_000,
    };
    store.put_challenge(&common::hash(1), &old).await.unwrap();
    assert_eq!(
        store.get_challenge(&common::hash(1), 999).await.unwrap(),
        Some(old)
    );
    // A real expiry an hour ahead.
    let fresh = ChallengeRecord {
        user_id: "u".into(),
        expires_at: server_now + 3_600,
    };
    store.put_challenge(&common::hash(2), &fresh).await.unwrap();
    store
        .update_limiter("k", server_now + 7_200, |mut s| {
            s.attempts += 1;
            s
        })
        .await
        .unwrap();
    let ttl = |key: String| {
        let mut conn = p.conn.clone();
        async move {
            redis::cmd("TTL")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    let hex = |n: u8| data_encoding::HEXLOWER.encode(&common::hash(n));
    let t1 = ttl(format!("{}challenge:{}", p.prefix, hex(1))).await;
    let t2 = ttl(format!("{}challenge:{}", p.prefix, hex(2))).await;
    let t3 = ttl(format!("{}limiter:k", p.prefix)).await;
    // A limiter whose expire_at is long past by the server's clock lives for the grace, so it
    // is still there for a caller with a clock far behind.
    let old = store
        .update_limiter("old", 2_000, |mut s| {
            s.attempts += 1;
            s
        })
        .await
        .unwrap()
        .after;
    assert_eq!(store.get_limiter("old").await.unwrap(), old);
    let t4 = ttl(format!("{}limiter:old", p.prefix)).await;
    assert!((55..=60).contains(&t4), "{t4}");
    assert!((55..=60).contains(&t1), "{t1}");
    assert!((3_650..=3_660).contains(&t2), "{t2}");
    assert!((7_250..=7_260).contains(&t3), "{t3}");
    p.clean().await;
}

#[tokio::test]
async fn foreign_values_are_errors() {
    let url = need_redis!(foreign_values_are_errors);
    let p = Prefix::new(&url).await;
    let store = p.store(p.conn.clone());
    let mut conn = p.conn.clone();
    let _: () = redis::cmd("SET")
        .arg(format!("{}limiter:k", p.prefix))
        .arg("not a limiter")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(store.get_limiter("k").await.is_err());
    assert!(store.update_limiter("k", 10, |s| s).await.is_err());
    p.clean().await;
}

#[tokio::test]
async fn server_gone_mid_life_fails_closed() {
    let url = need_redis!(server_gone_mid_life_fails_closed);
    let p = Prefix::new(&url).await;
    let info = redis::Client::open(url.as_str()).unwrap();
    let addr = match &info.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port) => tokio::net::lookup_host((host.as_str(), *port))
            .await
            .unwrap()
            .next()
            .unwrap(),
        other => panic!("the Redis test needs a TCP URL, got {other:?}"),
    };
    let proxy = common::Proxy::start(addr).await;
    let proxied = manager(&format!("redis://127.0.0.1:{}", proxy.port)).await;
    let store = p.store(proxied);
    let direct = p.store(p.conn.clone());
    let rec = ChallengeRecord {
        user_id: "u".into(),
        expires_at: 1_000,
    };
    store.put_challenge(&common::hash(3), &rec).await.unwrap();
    proxy.cut();
    conformance::ephemeral_store_unreachable(&store).await;
    // The challenge written before the cut is intact.
    assert_eq!(
        direct.take_challenge(&common::hash(3), 1).await.unwrap(),
        Some(rec)
    );
    p.clean().await;
}

#[tokio::test]
async fn limiter_keys_written_before_the_upgrade_keep_their_counts() {
    let url = need_redis!(limiter_keys_written_before_the_upgrade_keep_their_counts);
    let p = Prefix::new(&url).await;
    let store = p.store(p.conn.clone());
    let mut conn = p.conn.clone();
    // The four-field encoding of earlier versions: window_start:attempts:failures:locked_until.
    let _: () = redis::cmd("SET")
        .arg(format!("{}limiter:k", p.prefix))
        .arg("1700000000:3:11:1700001200")
        .query_async(&mut conn)
        .await
        .unwrap();
    let old = LimiterState::from_parts(1_700_000_000, 3, 11, 1_700_001_200, 0, 0, 0);
    assert_eq!(store.get_limiter("k").await.unwrap(), old);
    let update = store
        .update_limiter("k", 1_800_000_000, |mut s| {
            s.since_success = 4;
            s
        })
        .await
        .unwrap();
    assert_eq!(
        update.before, old,
        "the old value is what the update started from"
    );
    assert_eq!(update.after.failures, 11);
    assert_eq!(store.get_limiter("k").await.unwrap(), update.after);
    let raw: String = redis::cmd("GET")
        .arg(format!("{}limiter:k", p.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        raw, "1700000000:3:11:1700001200:0:4:0",
        "rewritten in the new encoding"
    );
    p.clean().await;
}
