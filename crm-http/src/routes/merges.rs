//! Duplicate contacts and their merge: `GET /api/contacts/{id}/duplicates` lists the
//! likely duplicates of a contact, `POST /api/contacts/{id}/merge` folds others into it,
//! and `/api/contacts/merges/{id}` shows a merge and undoes it within 30 days.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Json;
use crm_core::bulk::{DuplicateCandidate, MergeOutcome, MergeRequest};
use crm_core::model::merge::ContactMerge;
use crm_core::{Contact, ContactId, Crm};
use serde::Deserialize;
use utoipa::openapi::schema::Type;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::openapi::{query_param, Api, Spec};
use crate::routes::List;

/// The query of the duplicates list.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DuplicatesQuery {
    #[serde(default)]
    limit: Option<usize>,
}

/// The routes.
pub fn api() -> Api {
    const T: &str = "contacts";
    Api::new()
        .op(
            Spec::get(
                "/api/contacts/{id}/duplicates",
                T,
                "The contacts likely to be the same person (same email once case, +tags and Gmail dots are set aside, same phone, same name at the same company or email domain), surest first",
            )
            .query(vec![query_param("limit", Type::Integer, "At most this many (1 to 50, default 10)")])
            .list::<DuplicateCandidate>("The candidates with their reasons and score"),
            get(duplicates),
        )
        .op(
            Spec::post(
                "/api/contacts/{id}/merge",
                T,
                "Merge contacts into this one: fields chosen one by one (the rest kept, empty ones filled), every deal, task, interaction, campaign recipient, quote, invoice, subscription and attachment relinked, the others soft-deleted; undoable for 30 days",
            )
            .body::<MergeRequest>()
            .ok::<MergeOutcome>("The survivor and the merge")
            .error(409, "The survivor changed since the version given")
            .error(422, "A field that cannot be chosen, a contact named twice or not found (`mergeIds.1`)"),
            post(merge),
        )
        .op(
            Spec::get("/api/contacts/{id}/merges", T, "The merges into this contact, newest first")
                .list::<ContactMerge>("The merges"),
            get(merges),
        )
        .op(
            Spec::get("/api/contacts/merges/{id}", T, "A merge: who was merged, what moved, what each field took")
                .ok::<ContactMerge>("The merge"),
            get(one),
        )
        .op(
            Spec::post(
                "/api/contacts/merges/{id}/undo",
                T,
                "Undo a merge (within 30 days): the merged contacts come back with what was theirs; the survivor's fields go back unless changed since",
            )
            .ok::<Contact>("The survivor as it is now")
            .error(409, "Undone already, older than 30 days, or a merged contact was purged since"),
            post(undo),
        )
}

async fn duplicates(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<ContactId>,
    ApiQuery(q): ApiQuery<DuplicatesQuery>,
) -> ApiResult<Json<List<DuplicateCandidate>>> {
    let data = crm.contact_duplicates(caller.actor(), id, q.limit.unwrap_or(10)).await?;
    Ok(Json(List { data }))
}

async fn merge(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<ContactId>,
    ApiJson(request): ApiJson<MergeRequest>,
) -> ApiResult<Json<MergeOutcome>> {
    Ok(Json(crm.merge_contacts(caller.actor(), id, request).await?))
}

async fn merges(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<ContactId>,
) -> ApiResult<Json<List<ContactMerge>>> {
    Ok(Json(List { data: crm.contact_merges(caller.actor(), id).await? }))
}

async fn one(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<ContactMerge>> {
    Ok(Json(crm.contact_merge(caller.actor(), id).await?))
}

async fn undo(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Contact>> {
    Ok(Json(crm.undo_contact_merge(caller.actor(), id).await?))
}
