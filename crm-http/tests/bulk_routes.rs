//! The bulk routes in process: list exports as files, streamed, within the caller's
//! scope, and their errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{header, Method, StatusCode};
use common::*;
use serde_json::json;

#[tokio::test]
async fn list_exports_stream_files_in_scope() {
    let app = app().await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let body = json!({"username": "rep", "email": "rep@example.com", "password": PASSWORD});
    assert_eq!(app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await.status, StatusCode::CREATED);
    let rep = app.token("rep", PASSWORD).await;
    for (token, name, stage) in [(&admin, "Ann", "customer"), (&admin, "Bob", "lead"), (&rep, "Cy", "lead")] {
        let a = app
            .call(Method::POST, "/api/contacts", Some(token), Some(json!({"name": name, "lifecycleStage": stage})))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    }

    // CSV by default, named for the list and the day, filtered and sorted as asked.
    let (status, headers, bytes) = app
        .raw(Method::GET, "/api/contacts/export?filter=lifecycleStage[eq]:lead&sort=name", Some(&admin), "", vec![])
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let disposition = headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\"contacts-") && disposition.ends_with(".csv\""));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("id,name,email,phoneNumber,"), "{}", lines[0]);
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].contains(",Bob,") && lines[2].contains(",Cy,"), "{text}");

    // The rep gets her own records only; Parquet and XLSX come with their media types.
    let (_, _, bytes) = app.raw(Method::GET, "/api/contacts/export", Some(&rep), "", vec![]).await;
    assert_eq!(String::from_utf8(bytes).unwrap().lines().count(), 2);
    for (format, media, magic) in [
        ("parquet", "application/vnd.apache.parquet", &b"PAR1"[..]),
        ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", &b"PK"[..]),
    ] {
        let path = format!("/api/contacts/export?format={format}");
        let (status, headers, bytes) = app.raw(Method::GET, &path, Some(&admin), "", vec![]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], media);
        assert!(bytes.starts_with(magic), "{format}");
    }
    let (status, _, _) = app.raw(Method::GET, "/api/deals/export", Some(&admin), "", vec![]).await;
    assert_eq!(status, StatusCode::OK);

    // Bad inputs name their field; no token, no file.
    let bad = app.call(Method::GET, "/api/contacts/export?format=pdf", Some(&admin), None).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "format");
    let bad = app.call(Method::GET, "/api/contacts/export?limit=5", Some(&admin), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["errors"][0]["field"], "limit");
    let bad = app.call(Method::GET, "/api/contacts/export?filter=nope[eq]:1", Some(&admin), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["errors"][0]["field"], "filter");
    let bad = app.call(Method::GET, "/api/contacts/export?includeDeleted=true", Some(&rep), None).await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    let bad = app.call(Method::GET, "/api/contacts/export", None, None).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn batches_answer_each_item() {
    let app = app().await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;

    // All or nothing: one bad item is a 422 naming it, and nothing is written.
    let body = json!({"items": [
        {"op": "create", "record": {"name": "Ann", "email": "ann@example.com"}},
        {"op": "create", "record": {"name": "Bob", "email": "nope"}},
    ]});
    let bad = app.call(Method::POST, "/api/contacts/batch", Some(&admin), Some(body)).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "items.1.record.email");
    let list = app.call(Method::GET, "/api/contacts", Some(&admin), None).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 0);

    // Each on its own: every item's outcome, the failed one with its problem.
    let body = json!({"mode": "perItem", "items": [
        {"op": "create", "record": {"name": "Ann", "email": "ann@example.com"}},
        {"op": "upsert", "record": {"name": "Ann Lee", "email": "ann@example.com"}},
        {"op": "create", "record": {"name": "Bob", "email": "nope"}},
        {"op": "delete", "id": "0190a4c1-1111-7000-8000-000000000001"},
    ]});
    let a = app.call(Method::POST, "/api/contacts/batch", Some(&admin), Some(body)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let data = a.body["data"].as_array().unwrap();
    let got: Vec<(&str, u64)> =
        data.iter().map(|d| (d["result"].as_str().unwrap(), d["status"].as_u64().unwrap())).collect();
    assert_eq!(got, vec![("created", 201), ("updated", 200), ("failed", 422), ("failed", 404)]);
    assert_eq!(data[1]["record"]["name"], "Ann Lee");
    assert_eq!(data[1]["record"]["id"], data[0]["record"]["id"]);
    assert_eq!(data[2]["problem"]["errors"][0]["field"], "record.email");
    assert_eq!(data[3]["problem"]["code"], "not_found");
    assert!(data[2].get("record").is_none());

    // A body that is not a batch is refused naming the field.
    let bad = app.call(Method::POST, "/api/deals/batch", Some(&admin), Some(json!({"items": [{"op": "merge"}]}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["errors"][0]["field"], "items.0.op");
}

#[tokio::test]
async fn imports_upload_start_progress_and_results() {
    let app = app().await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let csv = "Full name,Email address,Phone\nAnn Lee,ann@example.com,+44 20 7946 0958\nBob,not-an-email,\n";

    // The file as the body: the job, its suggested mapping and the first rows.
    let (status, headers, body) = app
        .raw(Method::POST, "/api/imports?kind=contacts&fileName=people.csv", Some(&admin), "text/csv", csv.into())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let up: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = up["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(headers[header::LOCATION], format!("/api/imports/{id}"));
    assert_eq!(up["job"]["status"], "uploaded");
    assert_eq!(up["job"]["totalRows"], 2);
    assert_eq!(up["job"]["mapping"], json!(["name", "email", "phoneNumber"]));
    assert_eq!(up["job"]["matchBy"], "email");
    assert_eq!(up["preview"][0][0], "Ann Lee");
    assert!(up["fields"].as_array().unwrap().iter().any(|f| f == "lifecycleStage"), "{}", up["fields"]);

    // Started, it runs at once; its progress and each row's outcome follow.
    let a = app.call(Method::POST, &format!("/api/imports/{id}/start"), Some(&admin), Some(json!({}))).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let mut job = a.body;
    for _ in 0..100 {
        if job["status"] == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        job = app.call(Method::GET, &format!("/api/imports/{id}"), Some(&admin), None).await.body;
    }
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!((job["created"].as_i64(), job["failed"].as_i64()), (Some(1), Some(1)));
    assert_eq!(job["progress"]["percent"], 100.0);
    let (status, headers, body) =
        app.raw(Method::GET, &format!("/api/imports/{id}/results"), Some(&admin), "", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "row,result,id,columns,message");
    assert!(lines[1].starts_with("2,created,"), "{text}");
    assert!(lines[2].starts_with("3,failed,,Email address,"), "{text}");
    let list = app.call(Method::GET, "/api/imports", Some(&admin), None).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);

    // A browser form's file; bad inputs name their field.
    let boundary = "XyZ";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"co.csv\"\r\nContent-Type: text/csv\r\n\r\nname,domain\nAcme,acme.com\n\r\n--{boundary}--\r\n"
    );
    let (status, _, body) = app
        .raw(
            Method::POST,
            "/api/imports?kind=companies",
            Some(&admin),
            &format!("multipart/form-data; boundary={boundary}"),
            form.into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let up: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((up["job"]["fileName"].as_str(), up["job"]["matchBy"].as_str()), (Some("co.csv"), Some("domain")));
    let bad = app.call(Method::POST, "/api/imports?kind=teams", Some(&admin), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["errors"][0]["field"], "kind");
    let co = up["job"]["id"].as_str().unwrap();
    let bad = app
        .call(
            Method::POST,
            &format!("/api/imports/{co}/start"),
            Some(&admin),
            Some(json!({"mapping": ["name", "color"]})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["errors"][0]["field"], "mapping.1");
    let gone = app.call(Method::GET, "/api/imports/0190a4c1-1111-7000-8000-000000000001", Some(&admin), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}
