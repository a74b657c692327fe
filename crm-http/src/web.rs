//! The web app: `web/dist` (built from `web/` with `npm run build` and committed, so a
//! fresh machine needs no Node), embedded in the binary and served at `/`.
//!
//! - Files under `assets/` carry a content hash in their name: cached for a year,
//!   `immutable`. A missing one is a 404, never the app.
//! - Every other path that is not a file is the app's `index.html` (its router reads the
//!   path: `/contacts`, `/verify-email?token=…`), revalidated on every load (`no-cache`).
//! - Pages get a Content-Security-Policy that allows only this origin: no inline script or
//!   style, no framing.
//! - `/api/…` paths and methods other than GET and HEAD never fall through to the app.

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../web/dist");

/// What the app's pages may load: this origin only.
pub const APP_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

/// A year: hashed assets never change under their name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("webp") => "image/webp",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn file(path: &str, body: &'static [u8], cache: &'static str) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if path.ends_with(".html") {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(APP_CSP));
    }
    res
}

/// Is the app in this build? (A build from a checkout without `web/dist` has an empty
/// folder; the API still works.)
pub fn embedded() -> bool {
    DIST.get_file("index.html").is_some()
}

/// The fallback of every route: the app's files and pages, or the API's 404.
pub async fn serve(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") || !(method == Method::GET || method == Method::HEAD) {
        return crate::not_found().await.into_response();
    }
    let rel = path.trim_start_matches('/');
    if !rel.is_empty() && !rel.ends_with('/') {
        if let Some(f) = DIST.get_file(rel) {
            let cache = if rel.starts_with("assets/") { IMMUTABLE } else { "no-cache" };
            return file(rel, f.contents(), cache);
        }
        if rel.starts_with("assets/") || rel.rsplit('/').next().is_some_and(|last| last.contains('.')) {
            return crate::not_found().await.into_response();
        }
    }
    match DIST.get_file("index.html") {
        Some(index) => file("index.html", index.contents(), "no-cache"),
        None => crate::not_found().await.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_embedded_with_hashed_assets() {
        assert!(embedded(), "web/dist/index.html is missing: run `npm run build` in web/");
        let index = std::str::from_utf8(DIST.get_file("index.html").map(|f| f.contents()).unwrap_or_default())
            .unwrap_or_default();
        assert!(index.contains("/assets/index-"), "{index}");
        assert!(!index.contains("<script>") && !index.contains("<style"), "nothing inline: {index}");
    }
}
