//! The CRM records: `/api/contacts`, `/api/companies`, `/api/deals`, `/api/tasks`,
//! `/api/interactions`, `/api/teams`. Each has list (`GET`, query string) and search
//! (`POST /search`, the same as JSON), create (201 + `Location`), get, update (`PUT` and
//! `PATCH`, both partial; `If-Match` or a `version` field), soft delete (204) and restore.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use crm_core::query::RawListParams;
use crm_core::{Crm, EntityKind, ListQuery};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::openapi::{list_params, Api, Spec};
use utoipa::openapi::HttpMethod;

/// The query parameters a list takes; any other is refused.
const LIST_PARAMS: [&str; 7] = ["filter", "q", "sort", "after", "limit", "includeDeleted", "count"];

/// A list query from the query string.
pub fn list_query(kind: EntityKind, pairs: &[(String, String)]) -> ApiResult<ListQuery> {
    for (k, _) in pairs {
        if !LIST_PARAMS.contains(&k.as_str()) {
            return Err(ApiError::bad_field(
                k.clone(),
                "unknown_field",
                format!("unknown query parameter '{k}'; lists take {}", LIST_PARAMS.join(", ")),
            ));
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
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchBody {
    /// Filter expression (the grammar of the query string).
    #[serde(default)]
    pub filter: Option<String>,
    /// Free text.
    #[serde(default)]
    pub q: Option<String>,
    /// Sort keys, comma-separated (`name`, `-createdAt` for descending).
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
    s.parse::<i64>().map(Some).map_err(|_| {
        ApiError::bad_field(
            "If-Match",
            "invalid_value",
            format!("If-Match takes a record version, like \"3\" (got {s:?})"),
        )
    })
}

/// The version to check: `If-Match`, else the body's `version`; both must agree.
pub fn expected_version(headers: &HeaderMap, body: Option<i64>) -> ApiResult<Option<i64>> {
    match (if_match(headers)?, body) {
        (Some(h), Some(b)) if h != b => {
            Err(ApiError::bad_field("version", "invalid_value", "If-Match and the body's version differ"))
        }
        (h, b) => Ok(h.or(b)),
    }
}

/// A write's answer; a version conflict carries the record as it is now (`current`,
/// read with the caller's rights: omitted when they may no longer read it).
pub async fn or_current<T, C, F>(answer: crm_core::Result<T>, now: impl FnOnce() -> F) -> ApiResult<T>
where
    C: serde::Serialize,
    F: std::future::Future<Output = crm_core::Result<C>>,
{
    match answer {
        Ok(v) => Ok(v),
        Err(e) => {
            let e = ApiError::from(e);
            if !e.is_version_conflict() {
                return Err(e);
            }
            match now().await {
                Ok(current) => Err(e.with_current(&current)),
                Err(_) => Err(e),
            }
        }
    }
}

fn created<T: serde::Serialize>(path: &str, id: impl std::fmt::Display, rec: T) -> impl IntoResponse {
    (StatusCode::CREATED, [("location", format!("{path}/{id}"))], Json(rec))
}

/// The nine routes of one kind of record (list, search, create, get, put, patch,
/// delete, restore) with their OpenAPI document, as a module named `module`. Each member
/// says what it is: the path and tag, the words the document uses ("a" "contact",
/// "contacts"), the kind (for the list grammar), the `Crm` service and its create
/// method, the id, input, patch and record types, and the examples of a create and of a
/// change.
macro_rules! record_routes {
    (
        module: $module:ident,
        path: $path:literal,
        tag: $tag:literal,
        article: $a:literal,
        singular: $singular:literal,
        plural: $plural:literal,
        kind: $kind:expr,
        service: $svc:ident,
        create: $create:ident,
        id: $id:ty,
        new: $new:ty,
        patch: $patch:ty,
        record: $rec:ty,
        example: $example:expr,
        change_example: $change:expr $(,)?
    ) => {
        /// The routes of one kind of record.
        pub mod $module {
            use super::*;

            /// The routes and their document.
            pub fn api() -> Api {
                const ONE: &str = concat!($path, "/{id}");
                Api::new()
                    .op(
                        Spec::get($path, $tag, concat!("List ", $plural)).query(list_params()).page::<$rec>("A page"),
                        get(list),
                    )
                    .op(
                        Spec::post($path, $tag, concat!("Create ", $a, " ", $singular))
                            .body::<$new>()
                            .example($example)
                            .created::<$rec>(concat!("The new ", $singular))
                            .link("get", HttpMethod::Get, ONE)
                            .link("put", HttpMethod::Put, ONE)
                            .link("patch", HttpMethod::Patch, ONE)
                            .link("delete", HttpMethod::Delete, ONE)
                            .link("restore", HttpMethod::Post, concat!($path, "/{id}/restore")),
                        post(create),
                    )
                    .op(
                        Spec::post(
                            concat!($path, "/search"),
                            $tag,
                            concat!("Search ", $plural, " (the list query as JSON)"),
                        )
                        .body::<SearchBody>()
                        .page::<$rec>("A page"),
                        post(search),
                    )
                    .op(
                        Spec::get(ONE, $tag, concat!("Get ", $a, " ", $singular))
                            .ok::<$rec>(concat!("The ", $singular)),
                        get(one),
                    )
                    .op(
                        Spec::put(ONE, $tag, concat!("Update ", $a, " ", $singular, " (partial, like PATCH)"))
                            .body::<$patch>()
                            .example($change)
                            .if_match()
                            .ok::<$rec>(concat!("The updated ", $singular)),
                        put(update),
                    )
                    .op(
                        Spec::patch(ONE, $tag, concat!("Update ", $a, " ", $singular))
                            .body::<$patch>()
                            .example($change)
                            .if_match()
                            .ok::<$rec>(concat!("The updated ", $singular)),
                        patch(update),
                    )
                    .op(
                        Spec::delete(ONE, $tag, concat!("Delete ", $a, " ", $singular, " (soft; restorable)"))
                            .if_match()
                            .empty(204, "Deleted"),
                        delete(remove),
                    )
                    .op(
                        Spec::post(
                            concat!($path, "/{id}/restore"),
                            $tag,
                            concat!("Restore ", $a, " deleted ", $singular),
                        )
                        .ok::<$rec>(concat!("The restored ", $singular)),
                        post(restore),
                    )
            }

            async fn list(
                State(crm): State<Crm>,
                caller: Caller,
                ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
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

            async fn one(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<$rec>> {
                Ok(Json(crm.$svc().get(caller.actor(), <$id>::from(id)).await?))
            }

            async fn update(
                State(crm): State<Crm>,
                caller: Caller,
                ApiPath(id): ApiPath<Uuid>,
                headers: HeaderMap,
                ApiJson(mut patch): ApiJson<$patch>,
            ) -> ApiResult<Json<$rec>> {
                patch.version = expected_version(&headers, patch.version)?;
                let (actor, id) = (caller.actor(), <$id>::from(id));
                let answer = crm.$svc().update(actor, id, patch).await;
                Ok(Json(or_current(answer, || async { crm.$svc().get(actor, id).await }).await?))
            }

            async fn remove(
                State(crm): State<Crm>,
                caller: Caller,
                ApiPath(id): ApiPath<Uuid>,
                headers: HeaderMap,
            ) -> ApiResult<StatusCode> {
                let (actor, id) = (caller.actor(), <$id>::from(id));
                let answer = crm.$svc().delete(actor, id, if_match(&headers)?).await;
                or_current(answer, || async { crm.$svc().get(actor, id).await }).await?;
                Ok(StatusCode::NO_CONTENT)
            }

            async fn restore(
                State(crm): State<Crm>,
                caller: Caller,
                ApiPath(id): ApiPath<Uuid>,
            ) -> ApiResult<Json<$rec>> {
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

record_routes! {
    module: contacts,
    path: "/api/contacts",
    tag: "contacts",
    article: "a",
    singular: "contact",
    plural: "contacts",
    kind: EntityKind::Contact,
    service: contacts,
    create: create,
    id: ContactId,
    new: NewContact,
    patch: ContactPatch,
    record: Contact,
    example: json!({"name": "Ada Lovelace", "email": "ada@example.com", "phoneNumber": "+44 20 7946 0958", "jobTitle": "Analyst", "leadSource": "referral", "lifecycleStage": "lead", "tags": ["vip"], "address": {"city": "London"}}),
    change_example: json!({"jobTitle": "Head of Analytics", "lifecycleStage": "mql"}),
}
record_routes! {
    module: companies,
    path: "/api/companies",
    tag: "companies",
    article: "a",
    singular: "company",
    plural: "companies",
    kind: EntityKind::Company,
    service: companies,
    create: create,
    id: CompanyId,
    new: NewCompany,
    patch: CompanyPatch,
    record: Company,
    example: json!({"name": "Analytical Engines Ltd", "domain": "engines.example.com", "industry": "Manufacturing", "size": 120, "country": "GB", "contactDetails": {"website": "https://engines.example.com"}}),
    change_example: json!({"size": 150}),
}
record_routes! {
    module: deals,
    path: "/api/deals",
    tag: "deals",
    article: "a",
    singular: "deal",
    plural: "deals",
    kind: EntityKind::Deal,
    service: deals,
    create: create,
    id: DealId,
    new: NewDeal,
    patch: DealPatch,
    record: Deal,
    example: json!({"name": "Engines for the Royal Society", "amount": 450000, "currency": "EUR", "stage": "prospecting", "expectedCloseDate": "2030-06-30", "products": [{"name": "Difference engine", "quantity": 2, "unitPrice": 225000}]}),
    change_example: json!({"stage": "qualification"}),
}
record_routes! {
    module: tasks,
    path: "/api/tasks",
    tag: "tasks",
    article: "a",
    singular: "task",
    plural: "tasks",
    kind: EntityKind::Task,
    service: tasks,
    create: create,
    id: TaskId,
    new: NewTask,
    patch: TaskPatch,
    record: Task,
    example: json!({"name": "Call Ada about the proposal", "priority": "high", "dueDate": "2030-01-15T09:00:00Z"}),
    change_example: json!({"status": "in_progress"}),
}
record_routes! {
    module: interactions,
    path: "/api/interactions",
    tag: "interactions",
    article: "an",
    singular: "interaction",
    plural: "interactions",
    kind: EntityKind::Interaction,
    service: interactions,
    create: log,
    id: InteractionId,
    new: NewInteraction,
    patch: InteractionPatch,
    record: Interaction,
    example: json!({"contactId": "0190a4c1-1111-7000-8000-000000000001", "kind": "call", "subject": "Intro call", "body": "Talked about the engines."}),
    change_example: json!({"subject": "Intro call (30 min)"}),
}
record_routes! {
    module: teams,
    path: "/api/teams",
    tag: "teams",
    article: "a",
    singular: "team",
    plural: "teams",
    kind: EntityKind::Team,
    service: teams,
    create: create,
    id: TeamId,
    new: NewTeam,
    patch: TeamPatch,
    record: Team,
    example: json!({"name": "Enterprise", "description": "Large accounts"}),
    change_example: json!({"description": "Accounts over 1,000 people"}),
}

use crm_core::service::{NewSavedReport, SavedReportPatch};
use crm_core::{SavedReport, SavedReportId};

record_routes! {
    module: saved_reports,
    path: "/api/reports/saved",
    tag: "reports",
    article: "a",
    singular: "saved report",
    plural: "saved reports",
    kind: EntityKind::SavedReport,
    service: saved_reports,
    create: create,
    id: SavedReportId,
    new: NewSavedReport,
    patch: SavedReportPatch,
    record: SavedReport,
    example: json!({"name": "Pipeline this quarter", "standard": "r2_forecast_by_month", "parameters": {"forecastEnd": "2030-12-31"}, "chart": {"type": "bar", "x": "month", "y": ["total_amount", "weighted_amount"]}, "sharedWith": {"roles": ["manager"]}}),
    change_example: json!({"description": "Weighted forecast for the board"}),
}

/// Deal extras: the stage history of a deal, and the pipeline.
pub mod deal_extras {
    use super::*;

    /// `GET /api/deals/{id}/history`, `GET /api/pipelines`.
    pub fn api() -> Api {
        Api::new()
            .op(
                Spec::get("/api/deals/{id}/history", "deals", "A deal's stage history, oldest first")
                    .list::<crm_core::DealStageChange>("The stage changes"),
                get(history),
            )
            .op(
                Spec::get("/api/pipelines", "deals", "The deal pipelines and their stages")
                    .list::<Pipeline>("The pipelines"),
                get(pipelines),
            )
    }

    /// A pipeline as answered.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    pub struct Pipeline {
        /// Stable key of the pipeline (`default`).
        id: &'static str,
        /// The pipeline's display name.
        name: &'static str,
        /// The stages, in order.
        stages: Vec<crm_core::service::PipelineStage>,
    }

    async fn history(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Value>> {
        let data = crm.deals().history(caller.actor(), DealId::from(id)).await?;
        Ok(Json(serde_json::json!({ "data": data })))
    }

    async fn pipelines(State(crm): State<Crm>, _caller: Caller) -> Json<Value> {
        let p = Pipeline { id: "default", name: "Sales", stages: crm.deals().pipeline() };
        Json(serde_json::json!({ "data": [p] }))
    }
}

/// Task extras: assignment.
pub mod task_extras {
    use super::*;
    use crm_core::UserId;

    /// The body of `POST /api/tasks/{id}/assign`.
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct AssignBody {
        /// The user who gets the task.
        assigned_user: UserId,
    }

    /// `POST /api/tasks/{id}/assign`, `POST /api/tasks/{id}/complete`.
    pub fn api() -> Api {
        Api::new()
            .op(
                Spec::post("/api/tasks/{id}/assign", "tasks", "Assign a task to a user")
                    .body::<AssignBody>()
                    .ok::<Task>("The task"),
                post(assign),
            )
            .op(
                Spec::post("/api/tasks/{id}/complete", "tasks", "Mark a task done").ok::<Task>("The task"),
                post(complete),
            )
    }

    async fn assign(
        State(crm): State<Crm>,
        caller: Caller,
        ApiPath(id): ApiPath<Uuid>,
        ApiJson(b): ApiJson<AssignBody>,
    ) -> ApiResult<Json<Task>> {
        Ok(Json(crm.tasks().assign(caller.actor(), TaskId::from(id), b.assigned_user).await?))
    }

    async fn complete(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Task>> {
        Ok(Json(crm.tasks().complete(caller.actor(), TaskId::from(id)).await?))
    }
}
