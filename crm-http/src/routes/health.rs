//! `/healthz` (the process answers) and `/readyz` (the store answers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use crm_core::Crm;
use serde_json::{json, Value};

use crate::AppState;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(crm): State<Crm>) -> (StatusCode, Json<Value>) {
    match crm.store().ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready", "backend": crm.store().backend()}))),
        Err(e) => {
            tracing::warn!(error = %e, "store not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "backend": crm.store().backend()})))
        }
    }
}
