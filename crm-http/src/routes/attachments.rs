//! Files attached to records: `POST /api/<things>/{id}/attachments` uploads one (a form
//! with part `file`, or the file as the body), `GET` on the same path lists them, and
//! `/api/attachments/{id}` describes, downloads (`/content`) and removes one.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use crm_core::bulk::attachments::{ATTACHABLE, MAX_ATTACHMENT_BYTES};
use crm_core::model::attachment::Attachment;
use crm_core::{Crm, EntityKind};
use serde::Deserialize;
use utoipa::openapi::schema::Type;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery, Caller};
use crate::openapi::{query_param, Api, Spec};
use crate::routes::List;

/// The query of an upload.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UploadQuery {
    #[serde(default)]
    file_name: Option<String>,
}

/// The routes.
pub fn api() -> Api {
    let per_kind = ATTACHABLE.into_iter().fold(Api::new(), |api, kind| {
        let things = kind.table();
        api.op(
            Spec::post(
                &format!("/api/{things}/{{id}}/attachments"),
                things,
                "Attach a file (at most 25 MiB; its type is found from its bytes): a form with the file in part `file`, or the file as the body with `fileName` in the query",
            )
            .query(vec![query_param("fileName", Type::String, "The file's name when the body is the file itself")])
            .bytes_body("application/octet-stream")
            .multipart_file("file")
            .created::<Attachment>("The attachment")
            .error(413, "A file over 25 MiB")
            .error(422, "An empty file, or a type that cannot be attached (`file`)"),
            post(move |crm, caller, path, query, req| upload(crm, caller, path, query, req, kind))
                .layer(axum::extract::DefaultBodyLimit::max(MAX_ATTACHMENT_BYTES + 64 * 1024)),
        )
        .op(
            Spec::get(&format!("/api/{things}/{{id}}/attachments"), things, "The files attached to the record, oldest first")
                .list::<Attachment>("The attachments"),
            get(move |crm, caller, path| list(crm, caller, path, kind)),
        )
    });
    per_kind
        .op(
            Spec::get("/api/attachments/{id}", "attachments", "An attachment's name, type, size and record")
                .ok::<Attachment>("The attachment"),
            get(one),
        )
        .op(
            Spec::get(
                "/api/attachments/{id}/content",
                "attachments",
                "Download an attachment (always as a download, never shown inline)",
            )
            .bytes("application/octet-stream", "The file, in the type found when it was attached"),
            get(content),
        )
        .op(
            Spec::delete(
                "/api/attachments/{id}",
                "attachments",
                "Remove an attachment, its bytes included (the right to update its record needed)",
            )
            .empty(204, "Removed"),
            delete(remove),
        )
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("a file has at most {} MiB", MAX_ATTACHMENT_BYTES / (1024 * 1024)),
    )
}

async fn upload(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    req: axum::extract::Request,
    kind: EntityKind,
) -> ApiResult<Response> {
    let file = crate::extract::uploaded_file(req, too_large).await?;
    let name = file.file_name.or(q.file_name).unwrap_or_else(|| "file".into());
    let a = crm.add_attachment(caller.actor(), kind, id, &name, file.bytes).await?;
    Ok(crate::routes::created(format!("/api/attachments/{}", a.id), a))
}

async fn list(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    kind: EntityKind,
) -> ApiResult<Json<List<Attachment>>> {
    Ok(Json(List { data: crm.attachments(caller.actor(), kind, id).await? }))
}

async fn one(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Attachment>> {
    Ok(Json(crm.attachment(caller.actor(), id).await?))
}

async fn remove(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    crm.delete_attachment(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn content(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Response> {
    let (a, bytes) = crm.attachment_content(caller.actor(), id).await?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    let media = if a.content_type.starts_with("text/") {
        format!("{}; charset=utf-8", a.content_type)
    } else {
        a.content_type.clone()
    };
    if let Ok(v) = HeaderValue::from_str(&media) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&a.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", a.sha256)) {
        h.insert(header::ETAG, v);
    }
    Ok(r)
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII name for old
/// clients, the exact one for the others.
pub(crate) fn content_disposition(name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut exact = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            exact.push(b as char);
        } else {
            exact.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_disposition_keeps_the_name_and_a_safe_fallback() {
        assert_eq!(
            super::content_disposition("Contrat signé.pdf"),
            "attachment; filename=\"Contrat sign_.pdf\"; filename*=UTF-8''Contrat%20sign%C3%A9.pdf"
        );
    }
}
