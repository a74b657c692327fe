//! Reports on the caller's snapshot of the store (a plain user's reports cover what they
//! may read): the standard reports of REPORTS.md, custom reports (a `ReportSpec`), and the
//! contact and company analytics; saved reports are run here too (their CRUD is with the
//! records). Reports answer a JSON document, or a file with
//! `?format=csv|parquet|xlsx|pdf`, or their chart with `?format=svg|png`, or an `Accept`
//! naming one of those media types.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Json;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use crm_core::analytics::chart::ImageFormat;
use crm_core::analytics::polars::prelude::{DataFrame, DataType};
use crm_core::analytics::{self, About, CompanyAnalytics, ContactAnalytics, Format, Params, ReportSpec};
use crm_core::model::report::StandardReport as Standard;
use crm_core::{ChartSpec, Crm, SavedReport, SavedReportId, Sharing};
use serde::Serialize;
use utoipa::openapi::schema::Type;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::limit::ReportSlots;
use crate::openapi::{query_param, Api, Spec};
use crate::routes::records::if_match;

/// The file media types a report can be had in (besides its JSON document).
const FILES: [&str; 6] = [
    "text/csv; charset=utf-8",
    "application/vnd.apache.parquet",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/pdf",
    "image/svg+xml",
    "image/png",
];

/// What a report is answered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// The JSON document.
    Document,
    /// The rows as a file.
    File(Format),
    /// The chart as an image.
    Chart(ImageFormat),
}

/// A chart image's size in pixels.
const CHART_SIZE: (u32, u32) = (1200, 600);

/// `/api/reports/…`, `/api/contacts/analytics`, `/api/companies/analytics`.
pub fn api() -> Api {
    let format = || {
        query_param(
            "format",
            Type::String,
            "`json` (the default: this document); a file: `csv` (REPORTS.md's canonical CSV), `parquet`, `xlsx`, `pdf` (title, parameters, chart, table); or the chart alone: `svg`, `png`",
        )
    };
    Api::new()
        .op(
            Spec::get("/api/reports/standard", "reports", "The standard reports").list::<StandardReport>("The reports"),
            get(list_standard),
        )
        .op(
            Spec::get("/api/reports/catalog", "reports", "The tables and fields custom reports may use")
                .list::<analytics::custom::CatalogSource>("The source tables, their fields and joins"),
            get(catalog),
        )
        .op(
            Spec::get("/api/reports/standard/{name}", "reports", "Run a standard report")
                .path_choices("name", "The report's name", analytics::REPORTS)
                .query(vec![
                    query_param(
                        "asOf",
                        Type::String,
                        "The reference time (RFC 3339, or a date for its midnight UTC); default: the latest creation of a live deal",
                    ),
                    query_param("forecastEnd", Type::String, "The end (exclusive) of the forecast, YYYY-MM-DD; default asOf + 12 months"),
                    query_param("engagementStart", Type::String, "The start of the engagement window; default asOf − 90 days"),
                    query_param(
                        "ownerId",
                        Type::String,
                        "Only records these users own (ids, comma-separated or repeated): a dashboard's owner or team filter; companies stay whole",
                    ),
                    query_param("from", Type::String, "A dashboard's date range, its first day (YYYY-MM-DD, UTC): each report keeps what happened in the range by its own date (docs/API.md)"),
                    query_param("to", Type::String, "The date range's last day, included (YYYY-MM-DD, UTC; not before `from`)"),
                    format(),
                ])
                .ok_or_files::<ReportResult>("The report", &FILES)
                .error(404, "No such standard report (`not_found`)")
                .error(422, "A parameter is invalid (`validation_failed`)"),
            get(run_standard),
        )
        .op(
            Spec::post("/api/reports/run", "reports", "Run a custom report")
                .body::<ReportSpec>()
                .example(serde_json::json!({
                    "title": "Won revenue by industry",
                    "source": "deals",
                    "join": ["companies"],
                    "filter": "pipeline_stage[eq]:closed_won",
                    "groupBy": ["companies.industry", {"field": "closed_at", "bucket": "quarter", "as": "quarter"}],
                    "aggregates": [{"fn": "count", "as": "deals"}, {"fn": "sum", "field": "amount_cents", "as": "revenue"}],
                    "sort": "revenue[desc]",
                    "limit": 20
                }))
                .query(vec![format()])
                .ok_or_files::<ReportResult>("The report", &FILES),
            post(run_custom),
        )
        .op(
            Spec::get("/api/reports/saved/{id}/run", "reports", "Run a saved report on what the caller may read")
                .query(vec![
                    query_param("asOf", Type::String, "Overrides the saved asOf (standard reports)"),
                    query_param("forecastEnd", Type::String, "Overrides the saved forecastEnd (standard reports)"),
                    query_param("engagementStart", Type::String, "Overrides the saved engagementStart (standard reports)"),
                    query_param(
                        "ownerId",
                        Type::String,
                        "Only records these users own (ids, comma-separated or repeated), custom and standard reports alike: a dashboard's owner or team filter; companies stay whole",
                    ),
                    query_param("from", Type::String, "A dashboard's date range, its first day (YYYY-MM-DD, UTC): a standard report keeps what happened in it by its own date, a custom report the rows of its source table that came about in it"),
                    query_param("to", Type::String, "The date range's last day, included (YYYY-MM-DD, UTC; not before `from`)"),
                    format(),
                ])
                .ok_or_files::<ReportResult>("The report", &FILES)
                .error(422, "A parameter is invalid (`validation_failed`)"),
            get(run_saved),
        )
        .op(
            Spec::put("/api/reports/saved/{id}/sharing", "reports", "Share a saved report with users, teams or roles")
                .body::<Sharing>()
                .example(serde_json::json!({"users": [], "teams": ["0190a4c1-2222-7000-8000-000000000002"], "roles": ["manager"]}))
                .if_match()
                .ok::<SavedReport>("The saved report"),
            put(share),
        )
        .op(
            Spec::get("/api/contacts/analytics", "contacts", "Contact analytics: lifecycle, sources, growth, engagement")
                .ok::<ContactAnalytics>("The figures, as of now"),
            get(contact_analytics),
        )
        .op(
            Spec::get("/api/companies/analytics", "companies", "Company analytics: revenue, pipeline, win rate, segments")
                .ok::<CompanyAnalytics>("The figures, as of now"),
            get(company_analytics),
        )
}

/// A standard report, as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StandardReport {
    /// Its name (`r1_pipeline_by_stage`).
    name: &'static str,
    /// What it answers.
    title: &'static str,
    /// The parameters it takes.
    parameters: Vec<&'static str>,
}

/// A report's answer. (Documentation: the body is written by [`document`], which keeps
/// each row's keys in column order.)
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ReportResult {
    /// The report's name (`custom` for a custom report).
    report: String,
    /// Its title.
    title: Option<String>,
    /// The parameters it ran with, defaults filled in.
    parameters: BTreeMap<String, String>,
    /// The columns, in order.
    columns: Vec<ReportColumn>,
    /// How many rows.
    row_count: u64,
    /// The rows, each an object keyed by column.
    #[schema(value_type = Vec<Object>)]
    data: Vec<serde_json::Value>,
}

/// A column of a report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportColumn {
    /// Its name.
    name: String,
    /// `string`, `integer`, `number`, `boolean`, `date` or `datetime`.
    #[serde(rename = "type")]
    kind: &'static str,
}

async fn list_standard(_caller: Caller) -> Json<serde_json::Value> {
    let data: Vec<StandardReport> = Standard::ALL
        .iter()
        .map(|r| StandardReport { name: r.as_str(), title: r.title(), parameters: r.parameters().to_vec() })
        .collect();
    Json(serde_json::json!({ "data": data }))
}

/// What a report builder offers: every source table with its fields and joins.
async fn catalog(_caller: Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "data": analytics::custom::catalog() }))
}

fn kind_of(dt: &DataType) -> &'static str {
    match dt {
        DataType::String => "string",
        DataType::Boolean => "boolean",
        DataType::Date => "date",
        DataType::Datetime(_, _) => "datetime",
        d if d.is_integer() => "integer",
        d if d.is_float() => "number",
        _ => "string",
    }
}

/// The answer: a JSON document, the report as a file (audited: see [`wanted_by`]), or
/// its chart (`chart`, else one drawn from its first label and numeric columns).
async fn answer(
    to: (&Crm, &crm_core::Actor, Option<Uuid>),
    df: &DataFrame,
    wanted: Wanted,
    name: &str,
    title: Option<&str>,
    params: Vec<(String, String)>,
    chart: Option<ChartSpec>,
) -> ApiResult<Response> {
    let shown = title.unwrap_or(name).to_string();
    let (bytes, media, ext) = match wanted {
        Wanted::Document => {
            let body = document(df, name, title, &params)?;
            let mut r = body.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return Ok(r);
        }
        Wanted::File(format) => {
            let about = About { title: Some(shown.clone()), parameters: params, chart };
            // The formats made whole are made before the audit, so one that cannot be
            // (too many rows for a sheet) is refused and not recorded as exported.
            let whole = if format.streams() { None } else { Some(analytics::export(df, format, &about)?) };
            let (crm, actor, saved) = to;
            crm.exported(actor, name, saved, format.name(), df.height()).await?;
            let body = match whole {
                Some(bytes) => Body::from(bytes),
                None => streamed(df.clone(), format, about),
            };
            (body, format.media_type(), format.name())
        }
        Wanted::Chart(image) => {
            let Some(spec) = chart.or_else(|| analytics::chart::guess(df)) else {
                return Err(crm_core::Error::invalid(
                    "format",
                    "invalid_value",
                    "this report has no numeric column to chart",
                )
                .into());
            };
            let ext = if image == ImageFormat::Svg { "svg" } else { "png" };
            (Body::from(analytics::chart::render(df, &spec, &shown, image, CHART_SIZE)?), image.media_type(), ext)
        }
    };
    let disposition = format!("attachment; filename=\"{}.{ext}\"", file_stem(&shown));
    let mut r = bytes.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// A file sent while it is written ([`crate::stream`]): a blocking thread writes the
/// export into the body's queue. A client that goes away stops the writing; an error
/// after the first piece can only cut the answer short (and is logged).
fn streamed(df: DataFrame, format: Format, about: About) -> Body {
    let (mut out, body) = crate::stream::body_writer();
    let failure = out.failure();
    tokio::task::spawn_blocking(move || {
        let done = analytics::export::write_export(&df, format, &about, &mut out).and_then(|()| {
            std::io::Write::flush(&mut out).map_err(|e| crm_core::Error::internal("writing the export", e))
        });
        drop(out);
        if let Err(e) = done {
            tokio::runtime::Handle::current().block_on(failure.fail("a streamed export", e));
        }
    });
    body
}

/// The most rows a JSON answer carries (`truncated: true` says there were more; the file
/// formats carry them all).
pub const MAX_JSON_ROWS: usize = 10_000;

/// The JSON document of a report (rows in column order; timestamps UTC).
fn document(df: &DataFrame, name: &str, title: Option<&str>, params: &[(String, String)]) -> ApiResult<Vec<u8>> {
    let columns: Vec<serde_json::Value> = df
        .columns()
        .iter()
        .map(|c| serde_json::json!({"name": c.name().as_str(), "type": kind_of(c.dtype())}))
        .collect();
    let parameters: BTreeMap<&str, &str> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // A JSON answer holds at most MAX_JSON_ROWS rows; the whole report is a file away.
    let shown = df.head(Some(MAX_JSON_ROWS));
    let truncated = df.height() > MAX_JSON_ROWS;
    let head = serde_json::json!({
        "report": name,
        "title": title,
        "parameters": parameters,
        "columns": columns,
        "rowCount": df.height(),
        "truncated": truncated,
    });
    let df = &shown;
    let mut out = serde_json::to_vec(&head).map_err(|e| ApiError::from(crm_core::Error::internal("report JSON", e)))?;
    // Replace the closing brace with the rows.
    out.pop();
    out.extend_from_slice(b",\"data\":");
    let rows = analytics::export::json_rows(df, true)?;
    out.extend_from_slice(rows.trim_ascii_end());
    out.push(b'}');
    Ok(out)
}

/// A file name from a title: letters, digits, `-` and `_`.
fn file_stem(title: &str) -> String {
    let s: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '_' })
        .collect();
    let s = s.trim_matches('_').to_string();
    if s.is_empty() {
        "report".to_string()
    } else {
        s.chars().take(80).collect()
    }
}

/// The format asked for: `?format=` first, else `Accept`.
/// [`wanted`], refused before anything runs when it is a file the caller may not export.
fn wanted_by(crm: &Crm, actor: &crm_core::Actor, format: Option<&str>, headers: &HeaderMap) -> ApiResult<Wanted> {
    let w = wanted(format, headers)?;
    if matches!(w, Wanted::File(_)) {
        crm.may_export(actor)?;
    }
    Ok(w)
}

fn wanted(format: Option<&str>, headers: &HeaderMap) -> ApiResult<Wanted> {
    if let Some(f) = format {
        return match f.to_ascii_lowercase().as_str() {
            "json" => Ok(Wanted::Document),
            "svg" => Ok(Wanted::Chart(ImageFormat::Svg)),
            "png" => Ok(Wanted::Chart(ImageFormat::Png)),
            other => Format::parse(other).map(Wanted::File).map_err(|_| {
                ApiError::bad_field(
                    "format",
                    "invalid_value",
                    format!("'{f}' is not a report format: json, csv, parquet, xlsx, pdf, svg, png"),
                )
            }),
        };
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    for media in accept.split(',').map(|m| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase()) {
        match media.as_str() {
            "application/json" | "*/*" | "application/*" => return Ok(Wanted::Document),
            "text/csv" => return Ok(Wanted::File(Format::Csv)),
            "application/vnd.apache.parquet" | "application/x-parquet" => return Ok(Wanted::File(Format::Parquet)),
            "application/pdf" => return Ok(Wanted::File(Format::Pdf)),
            "image/svg+xml" => return Ok(Wanted::Chart(ImageFormat::Svg)),
            "image/png" => return Ok(Wanted::Chart(ImageFormat::Png)),
            m if m == Format::Xlsx.media_type() => return Ok(Wanted::File(Format::Xlsx)),
            _ => {}
        }
    }
    Ok(Wanted::Document)
}

fn only(pairs: &[(String, String)], allowed: &[&str]) -> ApiResult<()> {
    match pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) if allowed.is_empty() => Err(ApiError::bad_field(
            k.clone(),
            "unknown_field",
            format!("unknown query parameter '{k}'; this takes none"),
        )),
        Some((k, _)) => Err(ApiError::bad_field(
            k.clone(),
            "unknown_field",
            format!("unknown query parameter '{k}'; this takes {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A time parameter: RFC 3339, or a date meaning its midnight UTC.
fn time_param(name: &str, value: Option<&str>) -> ApiResult<Option<NaiveDateTime>> {
    let Some(v) = value else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.naive_utc()));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0));
    }
    Err(crm_core::Error::invalid(name, "invalid_format", format!("'{v}' is not an RFC 3339 time or a YYYY-MM-DD date"))
        .into())
}

/// The report parameters of a query string.
fn params_of(pairs: &[(String, String)]) -> ApiResult<Params> {
    let forecast_end = match last(pairs, "forecastEnd") {
        None => None,
        Some(v) => Some(NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
            ApiError::from(crm_core::Error::invalid(
                "forecastEnd",
                "invalid_format",
                format!("'{v}' is not a YYYY-MM-DD date"),
            ))
        })?),
    };
    Ok(Params {
        as_of: time_param("asOf", last(pairs, "asOf"))?,
        forecast_end,
        engagement_start: time_param("engagementStart", last(pairs, "engagementStart"))?,
    })
}

/// `ownerId` (repeated, or comma-separated): the users whose records the report covers.
fn owners_of(pairs: &[(String, String)]) -> ApiResult<Option<Vec<crm_core::UserId>>> {
    let mut owners = Vec::new();
    let mut seen = false;
    for (_, v) in pairs.iter().filter(|(k, _)| k == "ownerId") {
        seen = true;
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let id = part.parse::<Uuid>().map_err(|_| {
                ApiError::from(crm_core::Error::invalid(
                    "ownerId",
                    "invalid_format",
                    format!("'{part}' is not a user id"),
                ))
            })?;
            owners.push(crm_core::UserId::from(id));
        }
    }
    Ok(seen.then_some(owners))
}

/// A date parameter, `YYYY-MM-DD`.
fn date_param(name: &str, value: Option<&str>) -> ApiResult<Option<NaiveDate>> {
    value
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                ApiError::from(crm_core::Error::invalid(
                    name,
                    "invalid_format",
                    format!("'{v}' is not a YYYY-MM-DD date"),
                ))
            })
        })
        .transpose()
}

/// A dashboard's filters: `ownerId`, and the date range `from`–`to`.
fn cut_of(pairs: &[(String, String)]) -> ApiResult<analytics::Cut> {
    let owners = owners_of(pairs)?;
    let (from, to) = (date_param("from", last(pairs, "from"))?, date_param("to", last(pairs, "to"))?);
    let period = match (from, to) {
        (None, None) => None,
        _ => Some(analytics::Period::days(from, to)?),
    };
    Ok(analytics::Cut { owners, period })
}

async fn run_standard(
    State(crm): State<Crm>,
    State(slots): State<Arc<ReportSlots>>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let _running = slots.take(caller.actor().user_id).await?;
    let Ok(report) = name.parse::<Standard>() else {
        return Err(ApiError::from(crm_core::Error::NotFound { entity: "report" }));
    };
    only(&pairs, &["asOf", "forecastEnd", "engagementStart", "ownerId", "from", "to", "format"])?;
    let format = wanted_by(&crm, caller.actor(), last(&pairs, "format"), &headers)?;
    let params = params_of(&pairs)?;
    let cut = cut_of(&pairs)?;
    let (df, r) = crm.standard_report_of(caller.actor(), &name, &params, &cut).await?;
    let used = r.shown(&name);
    let to = (&crm, caller.actor(), None);
    answer(to, &df, format, &name, Some(report.title()), used, Some(report.chart())).await
}

async fn run_custom(
    State(crm): State<Crm>,
    State(slots): State<Arc<ReportSlots>>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<ReportSpec>,
) -> ApiResult<Response> {
    let _running = slots.take(caller.actor().user_id).await?;
    only(&pairs, &["format"])?;
    let format = wanted_by(&crm, caller.actor(), last(&pairs, "format"), &headers)?;
    let df = crm.custom_report(caller.actor(), &spec).await?;
    answer((&crm, caller.actor(), None), &df, format, "custom", spec.title.as_deref(), vec![], None).await
}

async fn run_saved(
    State(crm): State<Crm>,
    State(slots): State<Arc<ReportSlots>>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let _running = slots.take(caller.actor().user_id).await?;
    only(&pairs, &["asOf", "forecastEnd", "engagementStart", "ownerId", "from", "to", "format"])?;
    let format = wanted_by(&crm, caller.actor(), last(&pairs, "format"), &headers)?;
    let params = params_of(&pairs)?;
    let cut = cut_of(&pairs)?;
    let run = crm.saved_reports().run_for(caller.actor(), SavedReportId::from(id), &params, &cut).await?;
    let to = (&crm, caller.actor(), Some(id));
    answer(to, &run.frame, format, &run.name, Some(&run.title), run.parameters, run.chart).await
}

async fn share(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(sharing): ApiJson<Sharing>,
) -> ApiResult<Json<SavedReport>> {
    let version = if_match(&headers)?;
    Ok(Json(crm.saved_reports().share(caller.actor(), SavedReportId::from(id), sharing, version).await?))
}

async fn contact_analytics(
    State(crm): State<Crm>,
    State(slots): State<Arc<ReportSlots>>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<ContactAnalytics>> {
    let _running = slots.take(caller.actor().user_id).await?;
    only(&pairs, &[])?;
    Ok(Json(crm.contact_analytics(caller.actor()).await?))
}

async fn company_analytics(
    State(crm): State<Crm>,
    State(slots): State<Arc<ReportSlots>>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<CompanyAnalytics>> {
    let _running = slots.take(caller.actor().user_id).await?;
    only(&pairs, &[])?;
    Ok(Json(crm.company_analytics(caller.actor()).await?))
}
