//! `/api/audit`: the whole audit log for those whose role reads it all (admins), with
//! filters, and the check of its chain.

use axum::extract::State;
use axum::routing::get;
use axum::Json;
use crm_core::audit::AuditEvent;
use crm_core::query::quote;
use crm_core::{Crm, EntityKind, Page};
use serde::Serialize;

use super::records::list_query;
use crate::error::ApiResult;
use crate::extract::{ApiQuery, Caller};
use crate::openapi::{list_params, query_param, Api, Spec};

/// The routes and their document.
pub fn api() -> Api {
    const T: &str = "audit";
    Api::new()
        .op(
            Spec::get("/api/audit", T, "The audit log, newest first: every event the caller may read (admins: all, events without an actor included)")
                .query(params())
                .page::<AuditEvent>("A page of events"),
            get(list),
        )
        .op(
            Spec::get("/api/audit/verify", T, "Recompute the audit chain: every link and keyed hash (admins)")
                .ok::<Verification>("What the check found"),
            get(verify),
        )
}

fn params() -> Vec<utoipa::openapi::path::Parameter> {
    use utoipa::openapi::schema::Type;
    let mut p: Vec<_> = list_params().into_iter().filter(|p| p.name != "includeDeleted").collect();
    p.push(query_param("actorId", Type::String, "Only events by this user (UUID)"));
    p.push(query_param(
        "entity",
        Type::String,
        "Only events about this entity: a kind (`contact`) or a record id (UUID)",
    ));
    p.push(query_param("action", Type::String, "Only this action (`auth.login`, `contact.created`, …)"));
    p.push(query_param("from", Type::String, "Only events at or after this time (RFC 3339)"));
    p.push(query_param("to", Type::String, "Only events before this time (RFC 3339)"));
    p
}

/// Turns the shorthand parameters (`name` → a filter term made by `term` from the value)
/// into terms of the list grammar's `filter`, beside any `filter` given.
pub(crate) fn shorthands(pairs: &mut Vec<(String, String)>, term: impl Fn(&str, &str) -> Option<String>) {
    let mut terms: Vec<String> = Vec::new();
    pairs.retain(|(k, v)| match term(k, v) {
        Some(t) => {
            terms.push(t);
            false
        }
        None => true,
    });
    if let Some(pos) = pairs.iter().position(|(k, _)| k == "filter") {
        let (_, f) = pairs.remove(pos);
        terms.push(f);
    }
    if !terms.is_empty() {
        pairs.push(("filter".into(), terms.join(",")));
    }
}

/// `?actorId&entity&action&from&to` (and the list grammar's `filter`, `limit`, `after`).
async fn list(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(mut pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Page<AuditEvent>>> {
    shorthands(&mut pairs, |k, v| {
        Some(match k {
            "actorId" => format!("actorId[eq]:{}", quote(v)),
            "entity" if uuid::Uuid::parse_str(v).is_ok() => format!("entityId[eq]:{}", quote(v)),
            "entity" => format!("entityType[eq]:{}", quote(v)),
            "action" => format!("action[eq]:{}", quote(v)),
            "from" => format!("at[gte]:{}", quote(v)),
            "to" => format!("at[lt]:{}", quote(v)),
            _ => return None,
        })
    });
    let q = list_query(EntityKind::AuditEvent, &pairs)?;
    Ok(Json(crm.audit().list(caller.actor(), q).await?))
}

/// What `GET /api/audit/verify` found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Is every event in place and unaltered?
    pub intact: bool,
    /// Events checked (all of them when intact).
    pub events: u64,
    /// Events hashed without a key (written before the chain was keyed).
    pub unkeyed: u64,
    /// The first bad position, when broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<i64>,
    /// What is wrong there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

async fn verify(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<Verification>> {
    use crm_core::ChainStatus;
    Ok(Json(match crm.audit().verify(caller.actor()).await? {
        ChainStatus::Intact { events, unkeyed } => {
            Verification { intact: true, events, unkeyed, broken_at: None, reason: None }
        }
        ChainStatus::Broken { seq, reason } => Verification {
            intact: false,
            events: u64::try_from(seq - 1).unwrap_or(0),
            unkeyed: 0,
            broken_at: Some(seq),
            reason: Some(reason),
        },
    }))
}
