//! Every failure as a JSON `{error}` body with a 4xx status (or a detail-free 503 when the
//! database is down), and a JSON extractor whose rejections follow the same rule.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

/// What went wrong, as the client sees it. Messages are fixed words: never a secret, a code, a
/// token or an internal error text.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed or a field is invalid.
    BadRequest(String),
    /// 400: a second-factor code was wrong on an authenticated endpoint (a 401 there would read
    /// as "your session expired").
    WrongCode(&'static str),
    /// 401.
    Unauthorized(&'static str),
    /// 404: no such endpoint.
    NotFound,
    /// 404: no such item (an authenticator or a trusted browser) among the user's own.
    UnknownId(&'static str),
    /// 405.
    MethodNotAllowed,
    /// 409.
    Conflict(&'static str),
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 415: the body is not declared as JSON.
    UnsupportedMediaType,
    /// 429 with `Retry-After` in seconds.
    TooManyRequests {
        /// Seconds until the next attempt can count.
        retry_after: u64,
    },
    /// 503 with `Retry-After`: the server is saturated (the expected wait for password
    /// hashing exceeds the queue time) and turns the request away at once instead of queueing
    /// it without limit.
    Busy {
        /// Seconds after which a retry is likely to be served.
        retry_after: u64,
    },
    /// 503: the database (or another dependency) failed. Logged by the caller without secrets;
    /// the client only learns to retry later.
    Unavailable,
}

impl ApiError {
    /// Logs an infrastructure failure (its `Display`, which for sqlx and this crate carries no
    /// secret) and turns it into a detail-free 503.
    pub fn infra(context: &'static str, err: &dyn std::error::Error) -> Self {
        let mut chain = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "{context}");
        Self::Unavailable
    }
}

/// The `Retry-After` of a 503 for an unavailable dependency.
const UNAVAILABLE_RETRY_SECS: u64 = 5;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message, extra) = match self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m, None),
            Self::WrongCode(m) => (StatusCode::BAD_REQUEST, m.into(), None),
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.into(), None),
            Self::NotFound => (StatusCode::NOT_FOUND, "no such endpoint".into(), None),
            Self::UnknownId(m) => (StatusCode::NOT_FOUND, m.into(), None),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this endpoint".into(),
                None,
            ),
            Self::Conflict(m) => (StatusCode::CONFLICT, m.into(), None),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large (the limit is 64 KiB)".into(),
                None,
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send a JSON body with Content-Type: application/json".into(),
                None,
            ),
            Self::TooManyRequests { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many attempts; try again in {retry_after} seconds"),
                Some(retry_after),
            ),
            Self::Busy { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is busy; try again in a moment".into(),
                Some(retry_after),
            ),
            // Nobody was let in and nothing was consumed (the crate fails closed): a retry in a
            // few seconds is safe, and the answer says when.
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the service is unavailable (its database did not answer); nothing was done, \
                     try again in {UNAVAILABLE_RETRY_SECS} seconds"
                ),
                Some(UNAVAILABLE_RETRY_SECS),
            ),
        };
        let body = match extra {
            Some(retry_after) => json!({ "error": message, "retryAfter": retry_after }),
            None => json!({ "error": message }),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(retry_after) = extra {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `axum::Json`, but every rejection is an [`ApiError`]: 413 over the body limit, 415 without a
/// JSON content type, 400 for malformed JSON, missing fields and wrong types (naming the field,
/// never echoing the value).
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = body_bytes(req, state).await?;
        parse(&bytes).map(Self)
    }
}

/// [`Json`] for an optional body: an empty body (with any content type, or none) is `None`;
/// anything else must be JSON, with [`Json`]'s rejections.
pub struct OptionalJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(&req);
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse(&bytes).map(|v| Self(Some(v)))
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("could not read the request body".into())
        }
    })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(&mut de).map_err(|e| describe(&e))?;
    de.end().map_err(|e| describe(&e))?;
    Ok(value)
}

/// A client-facing description of a JSON error that never repeats the offending value (it may
/// be a password or a code).
fn describe(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::BadRequest("malformed JSON body".into())
        }
        Category::Data => {
            let text = e.to_string();
            // serde_json appends " at line L column C"; drop it.
            let text = text.split(" at line ").next().unwrap_or_default();
            let message = if let Some(field) = text.strip_prefix("missing field ") {
                format!("missing field {field}")
            } else if let Some((_, expected)) = text.split_once(", expected ") {
                if expected.starts_with("struct ") {
                    "the body must be a JSON object".into()
                } else {
                    format!("wrong type: expected {expected}")
                }
            } else if text.starts_with("invalid type") {
                "wrong type in the JSON body".into()
            } else {
                "the JSON body does not have the expected fields".into()
            };
            ApiError::BadRequest(message)
        }
    }
}
