//! A small JSON-over-HTTP client for the demo's API, with a deadline on every request so a
//! hanging server shows up as a timeout instead of a stuck load generator.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// What came back: the status (or why there was none), the parsed body and how long it took.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status, or `None` when the request failed without one (connection refused or
    /// reset, or no answer before the deadline).
    pub status: Option<StatusCode>,
    /// The JSON body (`Null` when there was none or it was not JSON).
    pub json: Value,
    /// From sending to the last byte of the body (or to the failure).
    pub elapsed: Duration,
    /// Why there is no status: `"timeout"` or the transport error's text.
    pub failure: Option<String>,
}

impl Reply {
    /// The status as a number, 0 when there was none.
    pub fn code(&self) -> u16 {
        self.status.map_or(0, |s| s.as_u16())
    }

    /// A string field of the body.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(Value::as_str)
    }
}

/// A client for one server. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
    deadline: Duration,
}

impl Client {
    /// A client for `base` (`http://host:port`) that gives up on a request after `deadline`.
    pub fn new(base: &str, deadline: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(deadline));
        Self {
            inner: HyperClient::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            base: base.trim_end_matches('/').to_owned(),
            deadline,
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST path` with a JSON body and an optional bearer token.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    /// `GET path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let started = Instant::now();
        let fail = |why: String| Reply {
            status: None,
            json: Value::Null,
            elapsed: started.elapsed(),
            failure: Some(why),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let bytes = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = match req.body(Full::new(bytes)) {
            Ok(r) => r,
            Err(e) => return fail(format!("bad request: {e}")),
        };
        let exchange = async {
            let res = self.inner.request(req).await.map_err(|e| error_chain(&e))?;
            let status = res.status();
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| error_chain(&e))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        match tokio::time::timeout(self.deadline, exchange).await {
            Ok(Ok((status, body))) => Reply {
                status: Some(status),
                json: serde_json::from_slice(&body).unwrap_or(Value::Null),
                elapsed: started.elapsed(),
                failure: None,
            },
            Ok(Err(e)) => fail(e),
            Err(_) => fail("timeout".into()),
        }
    }
}

/// An error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
