//! `/healthz` (the process answers) and `/readyz` (the store answers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Json;
use crm_core::Crm;
use serde::Serialize;

use crate::openapi::{Api, Spec};

/// The routes and their document.
pub fn api() -> Api {
    Api::new()
        .op(
            Spec::get("/healthz", "health", "Liveness: the process answers").public().ok::<Health>("Alive"),
            get(healthz),
        )
        .op(
            Spec::get("/readyz", "health", "Readiness: the store answers")
                .public()
                .ok::<Health>("Ready")
                .ok_status::<Health>(503, "The store cannot be reached"),
            get(readyz),
        )
}

/// The health answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `unavailable`.
    status: &'static str,
    /// The storage backend (`sqlite`, `postgres`), on `/readyz`.
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<&'static str>,
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", backend: None })
}

async fn readyz(State(crm): State<Crm>) -> (StatusCode, Json<Health>) {
    let backend = Some(crm.store().backend());
    match crm.store().ping().await {
        Ok(()) => (StatusCode::OK, Json(Health { status: "ready", backend })),
        Err(e) => {
            tracing::warn!(error = %e, "store not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable", backend }))
        }
    }
}
