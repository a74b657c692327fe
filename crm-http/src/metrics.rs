//! `/metrics` in the Prometheus text format: requests and their latency by route, method
//! and status; the store's answer time; the outbox backlog (events not yet dispatched);
//! per delivery consumer, the deliveries waiting and the age of the oldest (from the
//! store, so every replica reports the same), and the engine's attempt, failure and
//! dead counters (this process's).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_core::query::{Cmp, Filter, Predicate};
use crm_core::{Crm, EntityKind};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The process-wide recorder (the first router made installs it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = || {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), &BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new())
        };
        match builder().install_recorder() {
            Ok(h) => h,
            // Another recorder is installed (an embedding program's): render ours empty.
            Err(_) => builder().build_recorder().handle(),
        }
    })
}

/// Counts and times every request by its route pattern (never the raw path).
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let res = next.run(req).await;
    let labels = [("method", method), ("route", route), ("status", res.status().as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(start.elapsed().as_secs_f64());
    res
}

/// `GET /metrics`.
pub async fn render(State(crm): State<Crm>) -> impl IntoResponse {
    let start = Instant::now();
    let up = crm.store().ping().await.is_ok();
    metrics::histogram!("crm_store_ping_duration_seconds").record(start.elapsed().as_secs_f64());
    metrics::gauge!("crm_store_up").set(if up { 1.0 } else { 0.0 });
    if let Some(col) = EntityKind::OutboxEvent.column("delivered_at") {
        let pending = Filter::Cmp(Cmp { column: col, pred: Predicate::IsNull });
        if let Ok(n) = crm.store().count(EntityKind::OutboxEvent, Some(&pending), true).await {
            metrics::gauge!("crm_outbox_backlog").set(n as f64);
        }
    }
    let now = crm.now();
    for consumer in crm_core::delivery::CONSUMERS {
        if let Ok((n, oldest)) = crm_core::delivery::DeliveryEngine::backlog(crm.store(), consumer, now).await {
            let label = [("consumer", consumer)];
            metrics::gauge!("crm_delivery_backlog", &label).set(n as f64);
            metrics::gauge!("crm_delivery_oldest_seconds", &label).set(oldest.num_milliseconds() as f64 / 1000.0);
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle().render())
}
