//! The CRM records: `/api/contacts`, `/api/companies`, `/api/deals`, `/api/tasks`,
//! `/api/interactions`, `/api/teams`. Each has list (`GET`, query string) and search
//! (`POST /search`, the same as JSON), create (201 + `Location`), get, update (`PUT` and
//! `PATCH`, both partial; `If-Match` or a `version` field), soft delete (204) and restore.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use crm_core::query::RawListParams;
use crm_core::{Crm, EntityKind, ListQuery};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::AppState;

/// The query parameters a list takes; any other is refused.
const LIST_PARAMS: [&str; 7] = ["filter", "q", "sort", "after", "limit", "includeDeleted", "count"];

/// A list query from the query string.
pub fn list_query(kind: EntityKind, pairs: &[(String, String)]) -> ApiResult<ListQuery> {
    for (k, _) in pairs {
        if !LIST_PARAMS.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter '{k}'; lists take {}",
                LIST_PARAMS.join(", ")
            )));
        }
    }
    let get = |name: &str| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let raw = RawListParams {
        filter: get("filter"),
        q: get("q"),
        sort: get("sort"),
        after: get("after"),
        limit: get("limit"),
        include_deleted: get("includeDeleted"),
        count: get("count"),
    };
    ListQuery::parse(kind, &raw).map_err(bad_query)
}

fn bad_query(e: crm_core::Error) -> ApiError {
    ApiError::from(e).with_status(StatusCode::BAD_REQUEST)
}

/// The body of `POST …/search`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchBody {
    /// Filter expression (the grammar of the query string).
    #[serde(default)]
    pub filter: Option<String>,
    /// Free text.
    #[serde(default)]
    pub q: Option<String>,
    /// Sort keys (`name`, `createdAt desc`, … comma-separated).
    #[serde(default)]
    pub sort: Option<String>,
    /// Cursor.
    #[serde(default)]
    pub after: Option<String>,
    /// Page size.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Include soft-deleted records.
    #[serde(default)]
    pub include_deleted: Option<bool>,
    /// Count every match.
    #[serde(default)]
    pub count: Option<bool>,
}

impl SearchBody {
    /// The list query it asks for.
    pub fn query(&self, kind: EntityKind) -> ApiResult<ListQuery> {
        let (limit, deleted, count) = (
            self.limit.map(|l| l.to_string()),
            self.include_deleted.map(|b| b.to_string()),
            self.count.map(|b| b.to_string()),
        );
        let raw = RawListParams {
            filter: self.filter.as_deref(),
            q: self.q.as_deref(),
            sort: self.sort.as_deref(),
            after: self.after.as_deref(),
            limit: limit.as_deref(),
            include_deleted: deleted.as_deref(),
            count: count.as_deref(),
        };
        ListQuery::parse(kind, &raw).map_err(bad_query)
    }
}

/// The version an `If-Match` header names (`"3"`, `3`, `W/"3"`).
pub fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(v) = headers.get(axum::http::header::IF_MATCH) else { return Ok(None) };
    let s = v.to_str().unwrap_or_default().trim();
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("If-Match takes a record version, like \"3\" (got {s:?})")))
}

/// The version to check: `If-Match`, else the body's `version`; both must agree.
pub fn expected_version(headers: &HeaderMap, body: Option<i64>) -> ApiResult<Option<i64>> {
    match (if_match(headers)?, body) {
        (Some(h), Some(b)) if h != b => Err(ApiError::bad_request("If-Match and the body's version differ")),
        (h, b) => Ok(h.or(b)),
    }
}

fn created<T: serde::Serialize>(path: &str, id: impl std::fmt::Display, rec: T) -> impl IntoResponse {
    (StatusCode::CREATED, [("location", format!("{path}/{id}"))], Json(rec))
}

macro_rules! record_routes {
    (
        $module:ident, $path:literal, $kind:expr, $svc:ident, $create:ident,
        $id:ty, $new:ty, $patch:ty, $rec:ty
    ) => {
        /// The routes of one kind of record.
        pub mod $module {
            use super::*;

            /// The routes.
            pub fn routes() -> Router<AppState> {
                Router::new()
                    .route("/", get(list).post(create))
                    .route("/search", post(search))
                    .route("/{id}", get(one).put(update).patch(update).delete(remove))
                    .route("/{id}/restore", post(restore))
            }

            async fn list(
                State(crm): State<Crm>,
                caller: Caller,
                Query(pairs): Query<Vec<(String, String)>>,
            ) -> ApiResult<Json<crm_core::Page<$rec>>> {
                let q = list_query($kind, &pairs)?;
                Ok(Json(crm.$svc().list(caller.actor(), q).await?))
            }

            async fn search(
                State(crm): State<Crm>,
                caller: Caller,
                ApiJson(body): ApiJson<SearchBody>,
            ) -> ApiResult<Json<crm_core::Page<$rec>>> {
                Ok(Json(crm.$svc().list(caller.actor(), body.query($kind)?).await?))
            }

            async fn create(
                State(crm): State<Crm>,
                caller: Caller,
                ApiJson(input): ApiJson<$new>,
            ) -> ApiResult<impl IntoResponse> {
                let rec = crm.$svc().$create(caller.actor(), input).await?;
                Ok(created($path, rec.id, rec))
            }

            async fn one(State(crm): State<Crm>, caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<$rec>> {
                Ok(Json(crm.$svc().get(caller.actor(), <$id>::from(id)).await?))
            }

            async fn update(
                State(crm): State<Crm>,
                caller: Caller,
                Path(id): Path<Uuid>,
                headers: HeaderMap,
                ApiJson(mut patch): ApiJson<$patch>,
            ) -> ApiResult<Json<$rec>> {
                patch.version = expected_version(&headers, patch.version)?;
                Ok(Json(crm.$svc().update(caller.actor(), <$id>::from(id), patch).await?))
            }

            async fn remove(
                State(crm): State<Crm>,
                caller: Caller,
                Path(id): Path<Uuid>,
                headers: HeaderMap,
            ) -> ApiResult<StatusCode> {
                crm.$svc().delete(caller.actor(), <$id>::from(id), if_match(&headers)?).await?;
                Ok(StatusCode::NO_CONTENT)
            }

            async fn restore(State(crm): State<Crm>, caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<$rec>> {
                Ok(Json(crm.$svc().restore(caller.actor(), <$id>::from(id)).await?))
            }
        }
    };
}

use crm_core::service::{
    CompanyPatch, ContactPatch, DealPatch, InteractionPatch, NewCompany, NewContact, NewDeal, NewInteraction, NewTask,
    NewTeam, TaskPatch, TeamPatch,
};
use crm_core::{
    Company, CompanyId, Contact, ContactId, Deal, DealId, Interaction, InteractionId, Task, TaskId, Team, TeamId,
};

record_routes!(
    contacts,
    "/api/contacts",
    EntityKind::Contact,
    contacts,
    create,
    ContactId,
    NewContact,
    ContactPatch,
    Contact
);
record_routes!(
    companies,
    "/api/companies",
    EntityKind::Company,
    companies,
    create,
    CompanyId,
    NewCompany,
    CompanyPatch,
    Company
);
record_routes!(deals, "/api/deals", EntityKind::Deal, deals, create, DealId, NewDeal, DealPatch, Deal);
record_routes!(tasks, "/api/tasks", EntityKind::Task, tasks, create, TaskId, NewTask, TaskPatch, Task);
record_routes!(
    interactions,
    "/api/interactions",
    EntityKind::Interaction,
    interactions,
    log,
    InteractionId,
    NewInteraction,
    InteractionPatch,
    Interaction
);
record_routes!(teams, "/api/teams", EntityKind::Team, teams, create, TeamId, NewTeam, TeamPatch, Team);

/// Deal extras: the stage history of a deal, and the pipeline.
pub mod deal_extras {
    use super::*;

    /// `GET /api/deals/{id}/history`, `GET /api/pipelines`.
    pub fn routes() -> Router<AppState> {
        Router::new().route("/api/deals/{id}/history", get(history)).route("/api/pipelines", get(pipelines))
    }

    async fn history(State(crm): State<Crm>, caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<Value>> {
        let data = crm.deals().history(caller.actor(), DealId::from(id)).await?;
        Ok(Json(serde_json::json!({ "data": data })))
    }

    async fn pipelines(State(crm): State<Crm>, _caller: Caller) -> Json<Value> {
        Json(serde_json::json!({ "data": [{ "id": "default", "name": "Sales", "stages": crm.deals().pipeline() }] }))
    }
}

/// Task extras: assignment.
pub mod task_extras {
    use super::*;
    use crm_core::UserId;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct AssignBody {
        assigned_user: UserId,
    }

    /// `POST /api/tasks/{id}/assign`, `POST /api/tasks/{id}/complete`.
    pub fn routes() -> Router<AppState> {
        Router::new().route("/api/tasks/{id}/assign", post(assign)).route("/api/tasks/{id}/complete", post(complete))
    }

    async fn assign(
        State(crm): State<Crm>,
        caller: Caller,
        Path(id): Path<Uuid>,
        ApiJson(b): ApiJson<AssignBody>,
    ) -> ApiResult<Json<Task>> {
        Ok(Json(crm.tasks().assign(caller.actor(), TaskId::from(id), b.assigned_user).await?))
    }

    async fn complete(State(crm): State<Crm>, caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<Task>> {
        Ok(Json(crm.tasks().complete(caller.actor(), TaskId::from(id)).await?))
    }
}
