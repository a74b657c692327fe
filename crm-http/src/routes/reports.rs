//! Reports on the caller's snapshot of the store (a plain user's reports cover what they
//! may read): the standard reports of REPORTS.md, custom reports (a `ReportSpec`), and the
//! contact and company analytics. Reports answer a JSON document, or a file with
//! `?format=csv|parquet|xlsx` or an `Accept` naming one of those media types.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use crm_core::analytics::polars::prelude::{DataFrame, DataType};
use crm_core::analytics::{self, About, CompanyAnalytics, ContactAnalytics, Format, Params, ReportSpec};
use crm_core::Crm;
use serde::Serialize;
use utoipa::openapi::schema::Type;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::openapi::{query_param, Api, Spec};

/// The file media types a report can be had in (besides its JSON document).
const FILES: [&str; 3] = [
    "text/csv; charset=utf-8",
    "application/vnd.apache.parquet",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
];

/// `/api/reports/…`, `/api/contacts/analytics`, `/api/companies/analytics`.
pub fn api() -> Api {
    let format = || {
        query_param(
            "format",
            Type::String,
            "`json` (the default: this document), or a file: `csv` (REPORTS.md's canonical CSV), `parquet`, `xlsx`",
        )
    };
    Api::new()
        .op(
            Spec::get("/api/reports/standard", "reports", "The standard reports").list::<StandardReport>("The reports"),
            get(list_standard),
        )
        .op(
            Spec::get("/api/reports/standard/{name}", "reports", "Run a standard report")
                .path_choices("name", "The report's name", &analytics::REPORTS)
                .query(vec![
                    query_param(
                        "asOf",
                        Type::String,
                        "The reference time (RFC 3339, or a date for its midnight UTC); default: the latest creation of a live deal",
                    ),
                    query_param("forecastEnd", Type::String, "The end (exclusive) of the forecast, YYYY-MM-DD; default asOf + 12 months"),
                    query_param("engagementStart", Type::String, "The start of the engagement window; default asOf − 90 days"),
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

const TITLES: [&str; 8] = [
    "Open pipeline by stage",
    "Forecast by month of expected close",
    "Win rate by owner",
    "Stage funnel",
    "Lead conversion by month and source",
    "Top companies by won revenue",
    "Most engaged contacts",
    "New customers by month",
];

async fn list_standard(_caller: Caller) -> Json<serde_json::Value> {
    let data: Vec<StandardReport> = analytics::REPORTS
        .iter()
        .zip(TITLES)
        .map(|(name, title)| StandardReport {
            name,
            title,
            parameters: match *name {
                "r2_forecast_by_month" => vec!["asOf", "forecastEnd"],
                "r7_contact_engagement" => vec!["asOf", "engagementStart"],
                _ => vec![],
            },
        })
        .collect();
    Json(serde_json::json!({ "data": data }))
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

/// The answer: a JSON document, or the report as a file.
fn answer(
    df: &DataFrame,
    format: Option<Format>,
    name: &str,
    title: Option<&str>,
    params: Vec<(String, String)>,
) -> ApiResult<Response> {
    if let Some(format) = format {
        let about = About { title: Some(title.unwrap_or(name).to_string()), parameters: params };
        let bytes = analytics::export(df, format, &about)?;
        let disposition = format!("attachment; filename=\"{}.{}\"", file_stem(title.unwrap_or(name)), format.name());
        let mut r = bytes.into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        return Ok(r);
    }
    let body = document(df, name, title, &params)?;
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// The JSON document of a report (rows in column order; timestamps UTC).
fn document(df: &DataFrame, name: &str, title: Option<&str>, params: &[(String, String)]) -> ApiResult<Vec<u8>> {
    let columns: Vec<serde_json::Value> = df
        .columns()
        .iter()
        .map(|c| serde_json::json!({"name": c.name().as_str(), "type": kind_of(c.dtype())}))
        .collect();
    let parameters: BTreeMap<&str, &str> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let head = serde_json::json!({
        "report": name,
        "title": title,
        "parameters": parameters,
        "columns": columns,
        "rowCount": df.height(),
    });
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

/// The format asked for: `?format=` first, else `Accept`; `None` is the JSON document.
fn wanted(format: Option<&str>, headers: &HeaderMap) -> ApiResult<Option<Format>> {
    if let Some(f) = format {
        return match f.to_ascii_lowercase().as_str() {
            "json" => Ok(None),
            "pdf" => Err(ApiError::bad_request("pdf reports are not available yet; formats: json, csv, parquet, xlsx")),
            other => Format::parse(other)
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("'{f}' is not a report format: json, csv, parquet, xlsx"))),
        };
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    for media in accept.split(',').map(|m| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase()) {
        match media.as_str() {
            "application/json" | "*/*" | "application/*" => return Ok(None),
            "text/csv" => return Ok(Some(Format::Csv)),
            "application/vnd.apache.parquet" | "application/x-parquet" => return Ok(Some(Format::Parquet)),
            m if m == Format::Xlsx.media_type() => return Ok(Some(Format::Xlsx)),
            _ => {}
        }
    }
    Ok(None)
}

fn only(pairs: &[(String, String)], allowed: &[&str]) -> ApiResult<()> {
    match pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) if allowed.is_empty() => {
            Err(ApiError::bad_request(format!("unknown query parameter '{k}'; this takes none")))
        }
        Some((k, _)) => {
            Err(ApiError::bad_request(format!("unknown query parameter '{k}'; this takes {}", allowed.join(", "))))
        }
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

async fn run_standard(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(index) = analytics::REPORTS.iter().position(|r| *r == name) else {
        return Err(ApiError::from(crm_core::Error::NotFound { entity: "report" }));
    };
    only(&pairs, &["asOf", "forecastEnd", "engagementStart", "format"])?;
    let format = wanted(last(&pairs, "format"), &headers)?;
    let forecast_end = match last(&pairs, "forecastEnd") {
        None => None,
        Some(v) => Some(NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
            ApiError::from(crm_core::Error::invalid(
                "forecastEnd",
                "invalid_format",
                format!("'{v}' is not a YYYY-MM-DD date"),
            ))
        })?),
    };
    let params = Params {
        as_of: time_param("asOf", last(&pairs, "asOf"))?,
        forecast_end,
        engagement_start: time_param("engagementStart", last(&pairs, "engagementStart"))?,
    };
    let (df, r) = crm.standard_report_with_params(caller.actor(), &name, &params).await?;
    let ts = |t: NaiveDateTime| t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let used = match name.as_str() {
        "r2_forecast_by_month" => {
            vec![("asOf".to_string(), ts(r.as_of)), ("forecastEnd".to_string(), r.forecast_end.to_string())]
        }
        "r7_contact_engagement" => {
            vec![("asOf".to_string(), ts(r.as_of)), ("engagementStart".to_string(), ts(r.engagement_start))]
        }
        _ => vec![],
    };
    answer(&df, format, &name, Some(TITLES[index]), used)
}

async fn run_custom(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<ReportSpec>,
) -> ApiResult<Response> {
    only(&pairs, &["format"])?;
    let format = wanted(last(&pairs, "format"), &headers)?;
    let df = crm.custom_report(caller.actor(), &spec).await?;
    answer(&df, format, "custom", spec.title.as_deref(), vec![])
}

async fn contact_analytics(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<ContactAnalytics>> {
    only(&pairs, &[])?;
    Ok(Json(crm.contact_analytics(caller.actor()).await?))
}

async fn company_analytics(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<CompanyAnalytics>> {
    only(&pairs, &[])?;
    Ok(Json(crm.company_analytics(caller.actor()).await?))
}
