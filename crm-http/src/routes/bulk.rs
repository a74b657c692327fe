//! Work on many records: `GET /api/<things>/export` streams every record a list query
//! finds as CSV, XLSX or Parquet; `POST /api/<things>/batch` creates, updates, upserts and
//! deletes up to 100 records in one call; `/api/imports` takes CSV and XLSX files in.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use crm_core::bulk::export::EXPORTABLE;
use crm_core::bulk::import::{IMPORTABLE, RESULTS_HEADER};
use crm_core::bulk::{BatchOp, BatchRequest, Batchable, ExportFormat, ImportStart, ItemResult};
use crm_core::model::import::{ImportJob, ImportProgress};
use crm_core::{Company, Contact, Crm, Deal, EntityKind, Task};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::openapi::schema::Type;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::openapi::{list_params, query_param, Api, Spec};
use crate::routes::records::list_query;

/// The query parameters of an export; any other is refused.
const EXPORT_PARAMS: [&str; 5] = ["format", "filter", "q", "sort", "includeDeleted"];

/// The export route of every exportable kind, and the batch route of contacts,
/// companies, deals and tasks.
pub fn api() -> Api {
    exports()
        .merge(batch_api::<Contact>())
        .merge(batch_api::<Company>())
        .merge(batch_api::<Deal>())
        .merge(batch_api::<Task>())
        .merge(imports_api())
}

fn exports() -> Api {
    let media: Vec<&'static str> = ExportFormat::ALL.iter().map(|f| f.media_type()).collect();
    EXPORTABLE.into_iter().fold(Api::new(), |api, kind| {
        let tag = kind.table();
        let mut params =
            vec![query_param("format", Type::String, "`csv` (the default: UTF-8, formula-safe), `xlsx` or `parquet`")];
        params.extend(
            list_params().into_iter().filter(|p| EXPORT_PARAMS.contains(&p.name.as_str()) && p.name != "format"),
        );
        let spec = Spec::get(
            &format!("/api/{tag}/export"),
            tag,
            "Export every record the list query finds (filter, search, sort), as a file streamed while it is read",
        )
        .query(params)
        .files(&media, "The file")
        .error(422, "An XLSX file of more rows than a sheet holds");
        api.op(spec, get(move |crm, caller, query| export(crm, caller, query, kind)))
    })
}

async fn export(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
    kind: EntityKind,
) -> ApiResult<Response> {
    for (k, _) in &pairs {
        if !EXPORT_PARAMS.contains(&k.as_str()) {
            return Err(ApiError::bad_field(
                k.clone(),
                "unknown_field",
                format!("unknown query parameter '{k}'; exports take {}", EXPORT_PARAMS.join(", ")),
            ));
        }
    }
    let format = match pairs.iter().rev().find(|(k, _)| k == "format") {
        Some((_, f)) => ExportFormat::parse(f)?,
        None => ExportFormat::Csv,
    };
    let list: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "format").collect();
    let query = list_query(kind, &list)?;
    let export = crm.export_records(caller.actor(), kind, query, format).await?;
    let (out, body) = crate::stream::body_writer();
    let failure = out.failure();
    tokio::spawn(async move {
        if let Err(e) = export.write_to(out).await {
            failure.fail("an export", e).await;
        }
    });
    let name = format!("{}-{}.{}", kind.table(), crm.now().format("%Y-%m-%d"), format.name());
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// One item's outcome in a batch's answer.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemAnswer {
    /// The item's position in the request.
    index: usize,
    /// What it asked.
    op: BatchOp,
    /// What became of it.
    result: ItemResult,
    /// The status the single call would have answered (`201` created, `200` updated or
    /// unchanged, `204` deleted, the error's status when it failed).
    status: u16,
    /// The record as it is now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    record: Option<serde_json::Value>,
    /// Why it failed (problem+json).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    problem: Option<serde_json::Value>,
}

/// A batch's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    /// Each item's outcome, in the request's order.
    data: Vec<BatchItemAnswer>,
}

fn batch_api<R: Batchable + 'static>() -> Api {
    let things = R::KIND.table();
    let summary = match R::KIND {
        EntityKind::Contact => "Create, update, upsert (by email) or delete up to 100 contacts at once",
        EntityKind::Company => "Create, update, upsert (by domain) or delete up to 100 companies at once",
        EntityKind::Deal => "Create, update or delete up to 100 deals at once",
        _ => "Create, update or delete up to 100 tasks at once",
    };
    Api::new().op(
        Spec::post(&format!("/api/{things}/batch"), things, summary)
            .body::<BatchRequest>()
            .ok::<BatchAnswer>("Each item's outcome")
            .error(422, "An atomic batch with a failed item, naming it (`items.3.record.email`): nothing was written"),
        post(batch::<R>),
    )
}

async fn batch<R: Batchable + 'static>(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(request): ApiJson<BatchRequest>,
) -> ApiResult<Json<BatchAnswer>> {
    let outcomes = crm.batch::<R>(caller.actor(), request).await?;
    let mut data = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let (status, problem) = match o.error {
            Some(e) => {
                let e = ApiError::from(e);
                (e.status().as_u16(), Some(e.problem()))
            }
            None => (o.result.status(), None),
        };
        let record = match &o.record {
            Some(r) => Some(serde_json::to_value(r).map_err(|e| crm_core::Error::internal("a batch's record", e))?),
            None => None,
        };
        data.push(BatchItemAnswer { index: o.index, op: o.op, result: o.result, status, record, problem });
    }
    Ok(Json(BatchAnswer { data }))
}

/// An import job with its progress.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportView {
    /// The job.
    #[serde(flatten)]
    job: ImportJob,
    /// How far it has come.
    progress: ImportProgress,
}

impl ImportView {
    fn of(crm: &Crm, job: ImportJob) -> Self {
        let progress = job.progress(crm.now());
        Self { job, progress }
    }
}

/// An upload's answer.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadView {
    /// The job, with its suggested mapping.
    job: ImportView,
    /// The first rows as read.
    preview: Vec<Vec<String>>,
    /// The fields a column can fill (besides members of the kind's objects, such as
    /// `customFields.<name>`).
    fields: Vec<String>,
}

/// The query of an upload.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UploadQuery {
    kind: String,
    #[serde(default)]
    file_name: Option<String>,
}

/// `/api/imports`: upload, start, follow, cancel, results.
pub fn imports_api() -> Api {
    const T: &str = "imports";
    Api::new()
        .op(
            Spec::post(
                "/api/imports",
                T,
                "Upload a CSV or XLSX file to import into contacts, companies, deals or tasks: the file as the body, or a form with the file in part `file`",
            )
            .query(vec![
                query_param("kind", Type::String, "contacts, companies, deals or tasks"),
                query_param("fileName", Type::String, "The file's name, for people (a form's part names it too)"),
            ])
            .bytes_body("text/csv")
            .multipart_file("file")
            .created::<UploadView>("The job, with the headers, a suggested mapping and the first rows"),
            post(upload).layer(axum::extract::DefaultBodyLimit::max(crm_core::bulk::import::MAX_FILE_BYTES)),
        )
        .op(Spec::get("/api/imports", T, "The caller's imports, newest first").list::<ImportView>("The imports"), get(list))
        .op(Spec::get("/api/imports/{id}", T, "An import and its progress").ok::<ImportView>("The import"), get(one))
        .op(
            Spec::post(
                "/api/imports/{id}/start",
                T,
                "Start an import (or a dry run), or resume a stopped one after its last committed batch",
            )
            .body::<ImportStart>()
            .ok_status::<ImportView>(202, "The import, queued"),
            post(start),
        )
        .op(
            Spec::post("/api/imports/{id}/cancel", T, "Cancel an import (the committed batches stay)")
                .ok::<ImportView>("The import"),
            post(cancel),
        )
        .op(
            Spec::get(
                "/api/imports/{id}/results",
                T,
                "Each row's outcome as CSV: row, result (created, updated, unchanged, failed), id, columns, message",
            )
            .bytes("text/csv", "The results"),
            get(results),
        )
}

fn too_large() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("an import file has at most {} MB", crm_core::bulk::import::MAX_FILE_BYTES / (1024 * 1024)),
    )
}

async fn upload(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UploadQuery>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let kind = IMPORTABLE.into_iter().find(|k| k.table() == q.kind).ok_or_else(|| {
        ApiError::bad_field(
            "kind",
            "invalid_value",
            format!("'{}' cannot be imported; kinds are contacts, companies, deals, tasks", q.kind),
        )
    })?;
    let file = crate::extract::uploaded_file(req, too_large).await?;
    let name = file.file_name.or(q.file_name).unwrap_or_else(|| format!("{}.csv", kind.table()));
    let up = crm.create_import(caller.actor(), kind, &name, file.bytes).await?;
    let id = up.job.id;
    let view = UploadView { job: ImportView::of(&crm, up.job), preview: up.preview, fields: up.fields };
    Ok(crate::routes::created(format!("/api/imports/{id}"), view))
}

async fn list(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<crate::routes::List<ImportView>>> {
    let jobs = crm.import_jobs(caller.actor(), 100).await?;
    Ok(Json(crate::routes::List { data: jobs.into_iter().map(|j| ImportView::of(&crm, j)).collect() }))
}

async fn one(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<ImportView>> {
    let job = crm.import_job(caller.actor(), id).await?;
    Ok(Json(ImportView::of(&crm, job)))
}

async fn start(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ImportStart>,
) -> ApiResult<(axum::http::StatusCode, Json<ImportView>)> {
    let job = crm.start_import(caller.actor(), id, body).await?;
    // The workers would take it up within a few seconds; this one starts at once.
    let runner = crm.clone();
    tokio::spawn(async move {
        if let Err(e) = runner.run_import(id, None).await {
            tracing::warn!(job = %id, error = %e, "an import stopped");
        }
    });
    Ok((axum::http::StatusCode::ACCEPTED, Json(ImportView::of(&crm, job))))
}

async fn cancel(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<ImportView>> {
    let job = crm.cancel_import(caller.actor(), id).await?;
    Ok(Json(ImportView::of(&crm, job)))
}

async fn results(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Response> {
    let job = crm.import_job(caller.actor(), id).await?;
    let name = format!("{}-results.csv", job.file_name.trim_end_matches(".csv").trim_end_matches(".xlsx"));
    let pieces = job.batches;
    let stream = futures_util::stream::iter(0..=pieces).then(move |n| {
        let (crm, job) = (crm.clone(), job.clone());
        async move {
            if n == 0 {
                return Ok::<_, std::io::Error>(bytes::Bytes::from_static(RESULTS_HEADER.as_bytes()));
            }
            crm.import_results_piece(&job, n - 1).await.map_err(|e| std::io::Error::other(e.to_string()))
        }
    });
    let mut r = axum::body::Body::from_stream(stream).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    let file = name.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect::<String>();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
