//! # crm-http
//!
//! The REST API of crm-rs (the contract is `docs/API.md`) on axum, and the
//! `crm-server` binary. Handlers are thin: they parse, call a crm-core service with the
//! caller's [`crm_core::Actor`], and map the answer; every rule lives in crm-core.
//!
//! ```no_run
//! # async fn demo(crm: crm_core::Crm) -> std::io::Result<()> {
//! let app = crm_http::router(crm_http::AppState::new(crm));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
//! # }
//! ```

use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRef, Request};
use axum::http::Method;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use crm_core::Crm;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub mod backup;
pub mod client;
pub mod config;
pub use crm_core::demo;
pub mod error;
pub mod extract;
pub mod headers;
pub mod idempotency;
pub mod limit;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod stream;
pub mod views;
pub mod web;

pub use error::{ApiError, ApiResult, Problem};

/// The largest JSON body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The engine.
    pub crm: Crm,
    /// The auth routes' rate limits.
    pub limits: limit::RateLimits,
    /// Their counters.
    pub limiter: std::sync::Arc<limit::RateLimiter>,
    /// Browser origins allowed to call the API (CORS); none by default.
    pub cors_origins: Vec<String>,
    /// The proxies whose `Forwarded`/`X-Forwarded-For` name the client; none by default.
    pub trusted_proxies: client::TrustedProxies,
    /// Is the server reached over `https://`? Then answers carry HSTS.
    pub https: bool,
    /// How many reports each user may have running at once.
    pub report_slots: std::sync::Arc<limit::ReportSlots>,
    /// The campaign sender (for test sends), when this server sends campaigns.
    pub campaigns: Option<std::sync::Arc<crm_core::campaign::CampaignSender>>,
    /// Online payments, when a gateway is configured.
    pub payments: Option<std::sync::Arc<Payments>>,
    /// The address customers and recipients reach the server at (links in emails).
    pub public_url: String,
}

/// A payment gateway and how its webhooks are checked.
#[derive(Clone)]
pub struct Payments {
    /// The gateway.
    pub gateway: std::sync::Arc<dyn crm_core::billing::gateway::PaymentGateway>,
    /// The webhook signing secrets (several during a rotation).
    pub webhook_secrets: Vec<String>,
    /// How old a webhook's signature may be, in seconds (Stripe's default: 300).
    pub tolerance: i64,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("gateway", &self.gateway.name())
            .field("webhook_secrets", &self.webhook_secrets.len())
            .finish()
    }
}

impl AppState {
    /// State around an engine, with the default rate limits.
    pub fn new(crm: Crm) -> Self {
        Self {
            crm,
            limits: limit::RateLimits::default(),
            limiter: Default::default(),
            cors_origins: vec![],
            trusted_proxies: client::TrustedProxies::none(),
            https: false,
            report_slots: Default::default(),
            campaigns: None,
            payments: None,
            public_url: "http://127.0.0.1:8080".into(),
        }
    }

    /// The same taking online payments through `payments`.
    pub fn with_payments(mut self, payments: Payments) -> Self {
        self.payments = Some(std::sync::Arc::new(payments));
        self
    }

    /// The same sending campaign test messages through `sender`.
    pub fn with_campaigns(mut self, sender: std::sync::Arc<crm_core::campaign::CampaignSender>) -> Self {
        self.campaigns = Some(sender);
        self
    }

    /// The same letting each user run `n` reports at once (default 2).
    pub fn with_report_concurrency(mut self, n: usize) -> Self {
        self.report_slots = std::sync::Arc::new(limit::ReportSlots::new(n));
        self
    }

    /// The same for a server reached at this public URL (`https://…` turns HSTS on).
    pub fn with_public_url(mut self, url: &str) -> Self {
        self.https = url.trim().to_ascii_lowercase().starts_with("https://");
        self.public_url = url.trim().trim_end_matches('/').to_string();
        self
    }

    /// The same believing the forwarding headers of these proxies.
    pub fn with_trusted_proxies(mut self, proxies: client::TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The same allowing these browser origins (`https://app.example.com`).
    pub fn with_cors(mut self, origins: Vec<String>) -> Self {
        self.cors_origins = origins;
        self
    }

    /// The same with other rate limits.
    pub fn with_limits(mut self, limits: limit::RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The rate limits' windows and the report slots counted in this Redis, with every
    /// replica given the same (call it after [`AppState::with_report_concurrency`]).
    pub fn with_redis(mut self, redis: limit::SharedRedis) -> Self {
        self.limiter = std::sync::Arc::new(limit::RateLimiter::shared(redis.clone()));
        self.report_slots = std::sync::Arc::new(limit::ReportSlots::shared(self.report_slots.per_user(), redis));
        self
    }
}

impl FromRef<AppState> for std::sync::Arc<limit::ReportSlots> {
    fn from_ref(s: &AppState) -> Self {
        s.report_slots.clone()
    }
}

impl FromRef<AppState> for Crm {
    fn from_ref(s: &AppState) -> Crm {
        s.crm.clone()
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    metrics::handle();
    let request_id = HeaderName::from_static(extract::REQUEST_ID);
    let cors = cors(&state.cors_origins);
    // Every route comes from `api()`, which documents each one it adds.
    let (routes, doc) = api().split();
    // The document the handler serves is the one of these very routes.
    let _ = DOC.set(doc.to_json().unwrap_or_default());
    let app = routes
        .merge(routes::docs::router())
        .fallback(web::serve)
        .layer(middleware::from_fn_with_state(state.clone(), extract::audit_denied))
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .layer(middleware::from_fn_with_state(state.clone(), limit::public_limits))
        .layer(middleware::from_fn_with_state(state.clone(), client::resolve))
        .layer(middleware::from_fn(metrics::track))
        .with_state(state.clone())
        .layer(middleware::from_fn(problem_request_id))
        // Bodies over 1 MiB are refused (413) by the extractors; the avatar route allows more.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // Every log line of a request carries its id, method and route.
            let id = req.headers().get(extract::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let route = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str()).unwrap_or_default();
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path(), route = %route)
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)))
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(state, headers::secure))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::from_fn(headers::check_request_id));
    match cors {
        Some(c) => app.layer(c),
        None => app,
    }
}

/// Every route with its document; [`router`] serves the routes, and the document at
/// `/api/openapi.json`.
pub fn api() -> openapi::Api {
    let auth = routes::auth::api();
    openapi::Api::new()
        .merge(routes::health::api())
        .merge(auth)
        .merge(routes::users::api())
        .merge(routes::audit::api())
        .merge(routes::integrations::api())
        .merge(routes::campaigns::api())
        .merge(routes::billing::api())
        .merge(routes::bulk::api())
        .merge(routes::merges::api())
        .merge(routes::attachments::api())
        .merge(routes::records::contacts::api())
        .merge(routes::records::companies::api())
        .merge(routes::records::deals::api())
        .merge(routes::records::tasks::api())
        .merge(routes::records::interactions::api())
        .merge(routes::records::teams::api())
        .merge(routes::records::deal_extras::api())
        .merge(routes::records::task_extras::api())
        .merge(routes::records::saved_reports::api())
        .merge(routes::reports::api())
        .op(
            openapi::Spec::get("/api/openapi.json", "health", "This document (OpenAPI 3.1)").public().ok_schema(
                "application/json",
                utoipa::openapi::schema::Object::new(),
                "The document",
            ),
            axum::routing::get(openapi_json),
        )
        .op(
            openapi::Spec::get("/metrics", "health", "Prometheus metrics").public().ok_schema(
                "text/plain",
                utoipa::openapi::schema::Object::new(),
                "The metrics, text exposition format",
            ),
            axum::routing::get(metrics::render),
        )
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split().1
}

/// The OpenAPI document as served, set when the router is built.
static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `GET /api/openapi.json`.
async fn openapi_json() -> Response {
    let doc = DOC.get_or_init(|| openapi().to_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str()).into_response()
}

/// The CORS layer for the configured origins (none: no CORS headers at all).
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()).collect();
    if allowed.is_empty() {
        return None;
    }
    let h = |s: &'static str| HeaderName::from_static(s);
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH, h("idempotency-key")])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                h("x-request-id"),
                h("ratelimit-limit"),
                h("ratelimit-remaining"),
                h("ratelimit-reset"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Puts the request id into every problem document, and turns the bare answers of the
/// tower layers (413 body too large, 503 timeout) into problem documents too.
async fn problem_request_id(req: Request, next: Next) -> Response {
    let id = req.headers().get(extract::REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_string);
    let res = next.run(req).await;
    let is_problem =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    let (parts, body) = res.into_parts();
    let mut problem: serde_json::Value = if is_problem {
        match axum::body::to_bytes(body, 64 * 1024).await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        }
    } else if parts.status == StatusCode::PAYLOAD_TOO_LARGE {
        serde_json::to_value(problem_of(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the body is too large"))
            .unwrap_or_default()
    } else if parts.status == StatusCode::METHOD_NOT_ALLOWED && !parts.headers.contains_key(header::CONTENT_TYPE) {
        let allowed = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let detail = format!("this route takes {allowed}");
        serde_json::to_value(problem_of(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &detail))
            .unwrap_or_default()
    } else if parts.status == StatusCode::SERVICE_UNAVAILABLE && !parts.headers.contains_key(header::CONTENT_TYPE) {
        serde_json::to_value(problem_of(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request took too long"))
            .unwrap_or_default()
    } else {
        return Response::from_parts(parts, body);
    };
    if let (Some(obj), Some(id)) = (problem.as_object_mut(), id) {
        obj.insert("requestId".into(), serde_json::Value::String(id));
    }
    let mut res = Response::from_parts(parts, Body::from(serde_json::to_vec(&problem).unwrap_or_default()));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    res.headers_mut().remove(header::CONTENT_LENGTH);
    res
}

fn problem_of(status: StatusCode, code: &str, detail: &str) -> Problem {
    Problem {
        kind: format!("/problems/{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail: detail.to_string(),
        code: code.to_string(),
        errors: vec![],
        current: None,
        current_version: None,
        request_id: None,
    }
}
