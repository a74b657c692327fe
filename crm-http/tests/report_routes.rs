//! The report routes in process: standard reports as JSON and files, custom reports,
//! contact and company analytics, each within the caller's scope, and their errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{header, Method, StatusCode};
use common::*;
use serde_json::{json, Value};

struct World {
    app: App,
    admin: String,
    rep: String,
}

/// An admin's company and deals, and a rep's own company, contact and deals.
async fn world() -> World {
    let app = app().await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let body = json!({"username": "rep", "email": "rep@example.com", "password": PASSWORD});
    let u = app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await;
    assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
    let rep = app.token("rep", PASSWORD).await;
    let make = |token: String, path: &'static str, body: Value| {
        let app = &app;
        async move {
            let a = app.call(Method::POST, path, Some(&token), Some(body)).await;
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
            a.body["id"].as_str().unwrap().to_string()
        }
    };
    let acme = make(admin.clone(), "/api/companies", json!({"name": "Acme", "industry": "Tech", "size": 40})).await;
    let mine = make(rep.clone(), "/api/companies", json!({"name": "Beta", "industry": "Retail"})).await;
    let ann = make(
        rep.clone(),
        "/api/contacts",
        json!({"name": "Ann Lee", "lifecycleStage": "customer", "leadSource": "web"}),
    )
    .await;
    make(rep.clone(), "/api/interactions", json!({"contactId": ann, "kind": "call", "subject": "Hello"})).await;
    for (token, company, stage, amount) in [
        (&admin, &acme, "proposal", 500_000),
        (&admin, &acme, "closed_won", 120_000),
        (&rep, &mine, "prospecting", 10_000),
        (&rep, &mine, "closed_won", 30_000),
        (&rep, &mine, "closed_lost", 7_000),
    ] {
        make(
            token.clone(),
            "/api/deals",
            json!({"name": format!("{stage} deal"), "companyId": company, "stage": stage, "amount": amount, "currency": "EUR"}),
        )
        .await;
    }
    World { app, admin, rep }
}

fn rows(a: &Answer) -> &Vec<Value> {
    a.body["data"].as_array().unwrap()
}

#[tokio::test]
async fn standard_reports_as_json_and_files_in_scope() {
    let w = world().await;
    let app = &w.app;
    let list = app.call(Method::GET, "/api/reports/standard", Some(&w.rep), None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(rows(&list).len(), 8);
    assert_eq!(list.body["data"][1]["parameters"], json!(["asOf", "forecastEnd"]));

    // R1 for the admin: both open deals; for the rep: only hers.
    let r1 = app.call(Method::GET, "/api/reports/standard/r1_pipeline_by_stage", Some(&w.admin), None).await;
    assert_eq!(r1.status, StatusCode::OK, "{}", r1.body);
    assert_eq!(r1.body["report"], "r1_pipeline_by_stage");
    assert_eq!(r1.body["columns"][0], json!({"name": "stage", "type": "string"}));
    assert_eq!(r1.body["columns"][1], json!({"name": "deal_count", "type": "integer"}));
    assert_eq!(r1.body["rowCount"], 2);
    assert_eq!(
        r1.body["data"][0],
        json!({"stage": "prospecting", "deal_count": 1, "total_amount": 10_000, "avg_amount": 10_000, "weighted_amount": 1_000})
    );
    let mine = app.call(Method::GET, "/api/reports/standard/r1_pipeline_by_stage", Some(&w.rep), None).await;
    assert_eq!(rows(&mine).len(), 1);
    assert_eq!(mine.body["data"][0]["stage"], "prospecting");
    // The admin's dashboard filtered to the rep: the rep's own figures, the same "as of".
    let rep_id =
        app.call(Method::GET, "/api/auth/me", Some(&w.rep), None).await.body["id"].as_str().unwrap().to_string();
    let path = format!("/api/reports/standard/r1_pipeline_by_stage?ownerId={rep_id}");
    let theirs = app.call(Method::GET, &path, Some(&w.admin), None).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert_eq!(theirs.body["data"], mine.body["data"]);
    assert_eq!(theirs.body["parameters"], r1.body["parameters"]);
    let path = format!("/api/reports/standard/r3_win_rate_by_owner?ownerId={rep_id},{rep_id}");
    let r3_theirs = app.call(Method::GET, &path, Some(&w.admin), None).await;
    assert_eq!(rows(&r3_theirs).len(), 1, "{}", r3_theirs.body);
    let nobody =
        app.call(Method::GET, "/api/reports/standard/r1_pipeline_by_stage?ownerId=", Some(&w.admin), None).await;
    assert_eq!(nobody.body["rowCount"], 0, "an empty list owns nothing: {}", nobody.body);
    let bad =
        app.call(Method::GET, "/api/reports/standard/r1_pipeline_by_stage?ownerId=bob", Some(&w.admin), None).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "ownerId");
    // A dashboard's date range: each report keeps what happened in it by its own date
    // (R3: the deals closed in it; R8: its months). Everything here happened today.
    let today = chrono::Utc::now().date_naive();
    let around = format!("from={}&to={}", today.pred_opt().unwrap(), today.succ_opt().unwrap());
    for name in ["r3_win_rate_by_owner", "r1_pipeline_by_stage", "r8_customer_acquisition", "r5_lead_conversion"] {
        let whole = app.call(Method::GET, &format!("/api/reports/standard/{name}"), Some(&w.admin), None).await;
        assert!(whole.body["rowCount"].as_i64().unwrap() > 0, "{name}: {}", whole.body);
        let now = app.call(Method::GET, &format!("/api/reports/standard/{name}?{around}"), Some(&w.admin), None).await;
        assert_eq!(now.status, StatusCode::OK, "{}", now.body);
        assert_eq!(now.body["data"], whole.body["data"], "{name}: today's range holds everything");
        let then = format!("/api/reports/standard/{name}?from=2000-01-01&to=2000-12-31");
        let then = app.call(Method::GET, &then, Some(&w.admin), None).await;
        assert_eq!(then.body["rowCount"], 0, "{name}: nothing happened in 2000: {}", then.body);
    }
    // R2 and R7 take the range as their window: its start is R2's asOf, its end R7's.
    let r7 = app
        .call(
            Method::GET,
            "/api/reports/standard/r7_contact_engagement?from=2000-01-01&to=2000-12-31",
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(r7.body["rowCount"], 0, "{}", r7.body);
    assert!(r7.body["parameters"].to_string().contains("2001-01-01"), "R7 runs up to the range's end: {}", r7.body);
    for (query, field) in [("from=2026-02-01&to=2026-01-31", "to"), ("from=2026-13-01", "from"), ("to=soon", "to")] {
        let bad = app
            .call(Method::GET, &format!("/api/reports/standard/r1_pipeline_by_stage?{query}"), Some(&w.admin), None)
            .await;
        assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(bad.body["errors"][0]["field"], field, "{query}: {}", bad.body);
    }
    let r3 = app.call(Method::GET, "/api/reports/standard/r3_win_rate_by_owner", Some(&w.rep), None).await;
    assert_eq!(rows(&r3).len(), 1);
    assert_eq!((r3.body["data"][0]["won"].clone(), r3.body["data"][0]["lost"].clone()), (json!(1), json!(1)));

    // Parameters: the ones used come back, defaults filled in.
    let r2 = app
        .call(
            Method::GET,
            "/api/reports/standard/r2_forecast_by_month?asOf=2020-01-01&forecastEnd=2040-01-01",
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.body);
    assert_eq!(r2.body["parameters"], json!({"asOf": "2020-01-01T00:00:00Z", "forecastEnd": "2040-01-01"}));
    let r7 = app.call(Method::GET, "/api/reports/standard/r7_contact_engagement", Some(&w.rep), None).await;
    assert_eq!(r7.status, StatusCode::OK, "{}", r7.body);
    assert!(r7.body["parameters"]["engagementStart"].as_str().unwrap().ends_with('Z'));

    // Files, by ?format= and by Accept.
    let (status, headers, body) = app
        .raw(
            Method::GET,
            "/api/reports/standard/r1_pipeline_by_stage?format=csv",
            Some(&w.admin),
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(headers[header::CONTENT_DISPOSITION], "attachment; filename=\"open_pipeline_by_stage.csv\"");
    let csv = String::from_utf8(body).unwrap();
    assert_eq!(csv.lines().next(), Some("stage,deal_count,total_amount,avg_amount,weighted_amount"));
    assert_eq!(csv.lines().count(), 3);
    let by_accept = app
        .with_headers(
            Method::GET,
            "/api/reports/standard/r1_pipeline_by_stage",
            &w.admin,
            &[("accept", "text/csv")],
            Value::Null,
        )
        .await;
    assert_eq!(by_accept.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let (_, headers, body) = app
        .raw(
            Method::GET,
            "/api/reports/standard/r6_top_companies_by_revenue?format=xlsx",
            Some(&w.admin),
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    assert_eq!(&body[..2], b"PK");
    let (_, _, body) = app
        .raw(
            Method::GET,
            "/api/reports/standard/r6_top_companies_by_revenue?format=parquet",
            Some(&w.admin),
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(&body[..4], b"PAR1");

    // Errors.
    let none = app.call(Method::GET, "/api/reports/standard/r9_nothing", Some(&w.rep), None).await;
    assert_problem(&none, StatusCode::NOT_FOUND, "not_found");
    let bad = app.call(Method::GET, "/api/reports/standard/r1_pipeline_by_stage?format=docx", Some(&w.rep), None).await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "validation_failed");
    let bad = app.call(Method::GET, "/api/reports/standard/r1_pipeline_by_stage?colour=red", Some(&w.rep), None).await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "validation_failed");
    let bad =
        app.call(Method::GET, "/api/reports/standard/r2_forecast_by_month?asOf=yesterday", Some(&w.rep), None).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "asOf");
    let anon = app.call(Method::GET, "/api/reports/standard/r1_pipeline_by_stage", None, None).await;
    assert_problem(&anon, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn custom_reports_run_in_scope() {
    let w = world().await;
    let app = &w.app;
    let spec = json!({
        "title": "Won by industry",
        "source": "deals", "join": ["companies"],
        "filter": "pipeline_stage[eq]:closed_won",
        "groupBy": ["companies.industry"],
        "aggregates": [{"fn": "count", "as": "deals"}, {"fn": "sum", "field": "amount_cents", "as": "revenue"}],
        "sort": "revenue[desc]"
    });
    let all = app.call(Method::POST, "/api/reports/run", Some(&w.admin), Some(spec.clone())).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!((all.body["report"].clone(), all.body["title"].clone()), (json!("custom"), json!("Won by industry")));
    assert_eq!(
        all.body["data"],
        json!([{"industry": "Tech", "deals": 1, "revenue": 120_000}, {"industry": "Retail", "deals": 1, "revenue": 30_000}])
    );
    let mine = app.call(Method::POST, "/api/reports/run", Some(&w.rep), Some(spec.clone())).await;
    assert_eq!(mine.body["data"], json!([{"industry": "Retail", "deals": 1, "revenue": 30_000}]));
    let (status, headers, body) = app
        .raw(
            Method::POST,
            "/api/reports/run?format=csv",
            Some(&w.admin),
            "application/json",
            spec.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_DISPOSITION], "attachment; filename=\"won_by_industry.csv\"");
    assert_eq!(String::from_utf8(body).unwrap(), "industry,deals,revenue\nTech,1,120000\nRetail,1,30000\n");

    let bad = app
        .call(
            Method::POST,
            "/api/reports/run",
            Some(&w.rep),
            Some(json!({"source": "deals", "groupBy": [{"field": "name", "bucket": "month"}], "aggregates": [{"fn": "avg", "field": "stage"}]})),
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["groupBy.0.bucket", "aggregates.0.field"]);
    let bad =
        app.call(Method::POST, "/api/reports/run", Some(&w.rep), Some(json!({"source": "deals", "colour": 1}))).await;
    assert_eq!(bad.status.as_u16() / 100, 4, "{}", bad.body);

    // The catalog a report builder offers: each source, its fields and joins.
    let catalog = app.call(Method::GET, "/api/reports/catalog", Some(&w.rep), None).await;
    assert_eq!(catalog.status, StatusCode::OK, "{}", catalog.body);
    let sources = catalog.body["data"].as_array().unwrap();
    let names: Vec<&str> = sources.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["companies", "contacts", "deals", "deal_stage_history", "interactions", "tasks"]);
    let deals = sources.iter().find(|s| s["name"] == "deals").unwrap();
    assert_eq!(deals["joins"], json!(["companies", "contacts"]));
    let amount = deals["fields"].as_array().unwrap().iter().find(|f| f["name"] == "amount_cents").unwrap();
    assert_eq!(amount, &json!({"name": "amount_cents", "type": "integer", "nullable": true}));
    let anonymous = app.call(Method::GET, "/api/reports/catalog", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn contact_and_company_analytics_in_scope() {
    let w = world().await;
    let app = &w.app;
    let c = app.call(Method::GET, "/api/contacts/analytics", Some(&w.rep), None).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    assert_eq!((c.body["total"].clone(), c.body["customers"].clone()), (json!(1), json!(1)));
    assert_eq!(c.body["byLeadSource"][0]["leadSource"], "web");
    assert_eq!(c.body["newPerMonth"].as_array().unwrap().len(), 12);
    assert_eq!(c.body["engagement"]["last30Days"], 1);
    assert_eq!(c.body["engagement"]["mostEngaged"][0]["name"], "Ann Lee");

    let all = app.call(Method::GET, "/api/companies/analytics", Some(&w.admin), None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!((all.body["total"].clone(), all.body["revenueWon"].clone()), (json!(2), json!(150_000)));
    assert_eq!((all.body["wonDeals"].clone(), all.body["lostDeals"].clone()), (json!(2), json!(1)));
    assert_eq!(all.body["topCompanies"][0]["name"], "Acme");
    assert_eq!(
        all.body["bySize"][0],
        json!({"name": "11-50", "companies": 1, "deals": 2, "wonDeals": 1, "lostDeals": 0, "winRate": 1.0, "revenueWon": 120_000, "openPipeline": 500_000})
    );
    let mine = app.call(Method::GET, "/api/companies/analytics", Some(&w.rep), None).await;
    assert_eq!((mine.body["total"].clone(), mine.body["revenueWon"].clone()), (json!(1), json!(30_000)));
    let bad = app.call(Method::GET, "/api/companies/analytics?top=5", Some(&w.rep), None).await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "validation_failed");
}

/// Saved reports over HTTP: CRUD, sharing, running (JSON, PDF, SVG, PNG) on the caller's
/// own data, and the errors.
#[tokio::test]
async fn saved_reports_are_shared_and_run_in_scope() {
    let w = world().await;
    let app = &w.app;
    let body = json!({
        "name": "Pipeline", "standard": "r1_pipeline_by_stage",
        "chart": {"type": "bar", "x": "stage", "y": ["total_amount"]}
    });
    let created = app.call(Method::POST, "/api/reports/saved", Some(&w.admin), Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.headers[header::LOCATION], format!("/api/reports/saved/{id}"));
    assert_eq!(created.body["sharedWith"], json!({"users": [], "teams": [], "roles": []}));
    let one = format!("/api/reports/saved/{id}");

    // Not shared: the rep does not see it.
    assert_problem(&app.call(Method::GET, &one, Some(&w.rep), None).await, StatusCode::NOT_FOUND, "not_found");
    let run = format!("{one}/run");
    assert_problem(&app.call(Method::GET, &run, Some(&w.rep), None).await, StatusCode::NOT_FOUND, "not_found");
    let list = app.call(Method::GET, "/api/reports/saved", Some(&w.rep), None).await;
    assert_eq!(rows(&list).len(), 0);

    // Shared with plain users: the rep sees it, runs it on her own deals, may not change it.
    let sharing = format!("{one}/sharing");
    let shared =
        app.with_headers(Method::PUT, &sharing, &w.admin, &[("if-match", "\"1\"")], json!({"roles": ["user"]})).await;
    assert_eq!(shared.status, StatusCode::OK, "{}", shared.body);
    assert_eq!(shared.body["sharedWith"]["roles"], json!(["user"]));
    assert_eq!(shared.body["version"], 2);
    let stale = app.with_headers(Method::PUT, &sharing, &w.admin, &[("if-match", "\"1\"")], json!({})).await;
    assert_problem(&stale, StatusCode::CONFLICT, "version_conflict");
    let list = app.call(Method::GET, "/api/reports/saved", Some(&w.rep), None).await;
    assert_eq!(rows(&list).len(), 1);
    let mine = app.call(Method::GET, &run, Some(&w.rep), None).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(
        (mine.body["report"].clone(), mine.body["title"].clone()),
        (json!("r1_pipeline_by_stage"), json!("Pipeline"))
    );
    assert_eq!(
        mine.body["data"],
        json!([{"stage": "prospecting", "deal_count": 1, "total_amount": 10_000, "avg_amount": 10_000, "weighted_amount": 1_000}])
    );
    let all = app.call(Method::GET, &run, Some(&w.admin), None).await;
    assert_eq!(rows(&all).len(), 2);
    // A dashboard's owner filter on the card: the rep's figures, for a saved standard
    // report and a saved custom one alike.
    let rep_id =
        app.call(Method::GET, "/api/auth/me", Some(&w.rep), None).await.body["id"].as_str().unwrap().to_string();
    let theirs = app.call(Method::GET, &format!("{run}?ownerId={rep_id}"), Some(&w.admin), None).await;
    assert_eq!(theirs.body["data"], mine.body["data"], "{}", theirs.body);
    let spec = json!({"name": "Deals by stage", "spec": {"source": "deals", "groupBy": ["pipeline_stage"],
        "aggregates": [{"fn": "count", "as": "deals"}]}});
    let custom = app.call(Method::POST, "/api/reports/saved", Some(&w.admin), Some(spec)).await;
    assert_eq!(custom.status, StatusCode::CREATED, "{}", custom.body);
    let custom_run = format!("/api/reports/saved/{}/run", custom.body["id"].as_str().unwrap());
    let deals = |a: &Answer| rows(a).iter().map(|r| r["deals"].as_i64().unwrap()).sum::<i64>();
    let everyone = app.call(Method::GET, &custom_run, Some(&w.admin), None).await;
    assert_eq!(deals(&everyone), 5, "{}", everyone.body);
    let reps = app.call(Method::GET, &format!("{custom_run}?ownerId={rep_id}"), Some(&w.admin), None).await;
    assert_eq!(deals(&reps), 3, "{}", reps.body);
    // The date range on a custom card: the deals created in it.
    let today = chrono::Utc::now().date_naive();
    let now = format!("{custom_run}?ownerId={rep_id}&from={today}&to={today}");
    assert_eq!(deals(&app.call(Method::GET, &now, Some(&w.admin), None).await), 3);
    let then =
        app.call(Method::GET, &format!("{custom_run}?from=2000-01-01&to=2000-01-31"), Some(&w.admin), None).await;
    assert_eq!(deals(&then), 0, "{}", then.body);
    let bad = app.call(Method::GET, &format!("{custom_run}?ownerId=bob"), Some(&w.admin), None).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "ownerId");
    let change = app.call(Method::PATCH, &one, Some(&w.rep), Some(json!({"name": "Mine"}))).await;
    assert_problem(&change, StatusCode::FORBIDDEN, "forbidden");
    assert_problem(&app.call(Method::DELETE, &one, Some(&w.rep), None).await, StatusCode::FORBIDDEN, "forbidden");
    let reshare = app.call(Method::PUT, &sharing, Some(&w.rep), Some(json!({}))).await;
    assert_problem(&reshare, StatusCode::FORBIDDEN, "forbidden");

    // Files and charts of a saved run.
    for (format, media, magic) in [
        ("pdf", "application/pdf", &b"%PDF-"[..]),
        ("png", "image/png", &b"\x89PNG"[..]),
        ("svg", "image/svg+xml", &b"<svg"[..]),
    ] {
        let path = format!("{run}?format={format}");
        let (status, headers, body) = app.raw(Method::GET, &path, Some(&w.rep), "application/json", vec![]).await;
        assert_eq!(status, StatusCode::OK, "{format}: {}", String::from_utf8_lossy(&body));
        assert_eq!(headers[header::CONTENT_TYPE], media);
        assert_eq!(headers[header::CONTENT_DISPOSITION], format!("attachment; filename=\"pipeline.{format}\""));
        assert!(body.starts_with(magic), "{format}");
    }
    let by_accept = app
        .raw(
            Method::GET,
            "/api/reports/standard/r4_stage_funnel?format=pdf",
            Some(&w.admin),
            "application/json",
            vec![],
        )
        .await;
    assert!(by_accept.2.starts_with(b"%PDF-"));
    let words = json!({"source": "companies", "fields": ["name"]});
    let no_chart = app.call(Method::POST, "/api/reports/run?format=png", Some(&w.admin), Some(words)).await;
    assert_problem(&no_chart, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // Bad input: every field named, nothing stored.
    let bad = json!({"name": "", "standard": "r9", "chart": {"type": "line", "x": "", "y": []}});
    let bad = app.call(Method::POST, "/api/reports/saved", Some(&w.admin), Some(bad)).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let mut fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["chart.x", "chart.y", "name", "standard"]);
    let unknown =
        app.call(Method::POST, "/api/reports/saved", Some(&w.admin), Some(json!({"name": "x", "owner": 1}))).await;
    assert_problem(&unknown, StatusCode::BAD_REQUEST, "validation_failed");
    let list = app.call(Method::GET, "/api/reports/saved?count=true", Some(&w.admin), None).await;
    assert_eq!(list.body["totalCount"], 2, "the pipeline and the deals by stage");

    // Delete and restore.
    let gone = app.call(Method::DELETE, &one, Some(&w.admin), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_problem(&app.call(Method::GET, &run, Some(&w.rep), None).await, StatusCode::NOT_FOUND, "not_found");
    let back = app.call(Method::POST, &format!("{one}/restore"), Some(&w.admin), None).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
}

/// A report of 12,000 rows: as JSON, the first 10,000 and `truncated: true`; as a file,
/// every row, sent while it is written (the body has no length known in advance) and
/// the same bytes the library's export makes.
#[tokio::test]
async fn large_reports_are_capped_as_json_and_streamed_as_files() {
    use axum::body::HttpBody as _;
    use http_body_util::BodyExt as _;
    let w = world().await;
    let app = &w.app;
    let admin = app.crm.users().by_login("admin").await.unwrap().unwrap().actor();
    for batch in 0..12 {
        let inputs = (0..1000)
            .map(|i| crm_core::service::NewContact { name: format!("Person{batch}-{i}"), ..Default::default() })
            .collect();
        app.crm.contacts().create_many(&admin, inputs).await.unwrap();
    }
    let spec = json!({"source": "contacts", "fields": ["id", "first_name", "last_name"], "sort": "last_name"});
    let doc = app.call(Method::POST, "/api/reports/run", Some(&w.admin), Some(spec.clone())).await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.body);
    assert_eq!((doc.body["rowCount"].clone(), doc.body["truncated"].clone()), (json!(12_001), json!(true)));
    assert_eq!(rows(&doc).len(), crm_http::routes::reports::MAX_JSON_ROWS);

    let expected = {
        let parsed: crm_core::analytics::ReportSpec = serde_json::from_value(spec.clone()).unwrap();
        let df = app.crm.custom_report(&admin, &parsed).await.unwrap();
        crm_core::analytics::export(&df, crm_core::analytics::Format::Csv, &Default::default()).unwrap()
    };
    for (format, streams) in [("csv", true), ("parquet", true), ("xlsx", false)] {
        let res = app
            .response(
                Method::POST,
                &format!("/api/reports/run?format={format}"),
                &w.admin,
                spec.to_string().into_bytes(),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{format}");
        assert_eq!(res.body().size_hint().exact().is_none(), streams, "{format}: streamed?");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        match format {
            "csv" => {
                assert_eq!(body.iter().filter(|b| **b == b'\n').count(), 12_002, "a header and every row");
                assert_eq!(body.as_ref(), expected.as_slice());
            }
            "parquet" => assert!(body.starts_with(b"PAR1") && body.ends_with(b"PAR1"), "a whole Parquet file"),
            _ => assert!(body.starts_with(b"PK"), "a workbook"),
        }
    }
}
