//! Security headers on every response, page, script, API success, API error and 404 alike.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The page's policy: its script and stylesheet come from this origin only (no inline code, so
/// an injected `<script>` or `on…=` attribute does not run), the QR code is inline SVG markup,
/// the page talks only to this origin and may not be framed.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src data:; connect-src 'self'; form-action 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Every other response (JSON, the script, the stylesheet) may load nothing and not be framed.
const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers a response lacks: `Cache-Control: no-store` (responses carry session
/// tokens, TOTP secrets and backup codes, which must not sit in a cache), `nosniff`, the CSP,
/// `Referrer-Policy: no-referrer` and `X-Frame-Options: DENY` (for browsers without
/// `frame-ancestors`).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let set: [(HeaderName, &'static str); 5] = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, DEFAULT_CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}
