//! Attachments over HTTP: uploaded as a form or as the body, their type found from the
//! bytes, listed on the record, downloaded as attachments within the record's scope,
//! removed; kept in a local directory and in S3 (moto's server, which `scripts/test`
//! starts on `CRM_TEST_S3_ENDPOINT`; one that cannot be reached fails the test).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::http::{header, Method, StatusCode};
use common::*;
use crm_core::blob::{BlobStore, ObjectBlobStore};
use serde_json::json;

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

/// A `multipart/form-data` body with one file part, and its content type.
fn form(name: &str, bytes: &[u8], claimed: &str) -> (String, Vec<u8>) {
    let boundary = "----crm-rs-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {claimed}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Walks the attachment routes on an app whose files go to `blobs`; answers the ids of
/// the files it left in place.
async fn round_trip(blobs: Arc<ObjectBlobStore>) -> Vec<String> {
    let app = app_custom(|b| b.blobs(blobs.clone()), |s| s).await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let team = app.call(Method::POST, "/api/teams", Some(&admin), Some(json!({"name": "Far"}))).await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let body = json!({"username": "far", "email": "far@example.com", "password": PASSWORD, "teamId": team.body["id"]});
    assert_eq!(app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await.status, StatusCode::CREATED);
    let far = app.token("far", PASSWORD).await;
    let deal = app.call(Method::POST, "/api/deals", Some(&admin), Some(json!({"name": "Big deal"}))).await;
    let deal_id = deal.body["id"].as_str().unwrap().to_string();

    // A form whose part claims text: the bytes say PDF, and PDF it is.
    let (ctype, body) = form("C:\\Users\\zoe\\Contrat signé.pdf", PDF, "text/html");
    let path = format!("/api/deals/{deal_id}/attachments");
    let (status, headers, bytes) = app.raw(Method::POST, &path, Some(&admin), &ctype, body).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&bytes));
    let a: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let id = a["id"].as_str().unwrap().to_string();
    assert_eq!(headers[header::LOCATION], format!("/api/attachments/{id}"));
    assert_eq!(a["contentType"], "application/pdf");
    assert_eq!(a["fileName"], "Contrat signé.pdf");
    assert_eq!(a["parentType"], "deal");
    assert_eq!(a["size"], PDF.len());
    assert_eq!(blobs.get(&format!("attachments/{id}")).await.unwrap().as_deref(), Some(PDF));

    // The body itself, named in the query.
    let (status, _, bytes) = app
        .raw(Method::POST, &format!("{path}?fileName=notes.csv"), Some(&admin), "text/csv", b"a;b\n1;2\n".to_vec())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&bytes));
    let csv: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(csv["contentType"], "text/csv");

    let list = app.call(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(list.status, StatusCode::OK);
    let names: Vec<&str> =
        list.body["data"].as_array().unwrap().iter().map(|a| a["fileName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Contrat signé.pdf", "notes.csv"]);

    // Downloads are downloads, in the type found, never sniffed by the browser.
    let (status, headers, bytes) =
        app.raw(Method::GET, &format!("/api/attachments/{id}/content"), Some(&admin), "", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, PDF);
    assert_eq!(headers[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"Contrat sign_.pdf\"; filename*=UTF-8''Contrat%20sign%C3%A9.pdf"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-store");

    // Another team's user finds nothing: not the list, not the file, not its bytes.
    for p in [path.clone(), format!("/api/attachments/{id}"), format!("/api/attachments/{id}/content")] {
        let a = app.call(Method::GET, &p, Some(&far), None).await;
        assert_problem(&a, StatusCode::NOT_FOUND, "not_found");
    }
    let (ctype, body) = form("x.pdf", PDF, "application/pdf");
    let (status, _, _) = app.raw(Method::POST, &path, Some(&far), &ctype, body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let a = app.call(Method::DELETE, &format!("/api/attachments/{id}"), Some(&far), None).await;
    assert_problem(&a, StatusCode::NOT_FOUND, "not_found");

    // Bad files name the field.
    let (status, _, bytes) = app
        .raw(Method::POST, &path, Some(&admin), "application/pdf", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(problem["errors"][0]["field"], "file");
    assert_eq!(problem["errors"][0]["code"], "unsupported_type");
    let (status, _, _) = app.raw(Method::POST, &path, Some(&admin), "application/pdf", vec![]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let too_big = vec![b'a'; crm_core::bulk::attachments::MAX_ATTACHMENT_BYTES + 128 * 1024];
    let (status, _, _) = app.raw(Method::POST, &path, Some(&admin), "text/plain", too_big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = app
        .raw(
            Method::POST,
            "/api/deals/0190a0a0-0000-7000-8000-000000000000/attachments",
            Some(&admin),
            "text/plain",
            b"x".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Removed with its bytes.
    let csv_id = csv["id"].as_str().unwrap();
    let gone = app.call(Method::DELETE, &format!("/api/attachments/{csv_id}"), Some(&admin), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(blobs.get(&format!("attachments/{csv_id}")).await.unwrap(), None);
    let a = app.call(Method::GET, &format!("/api/attachments/{csv_id}"), Some(&admin), None).await;
    assert_problem(&a, StatusCode::NOT_FOUND, "not_found");
    vec![id]
}

#[tokio::test]
async fn attachments_round_trip_on_a_local_directory() {
    let dir = std::env::temp_dir().join(format!("crm-attachments-{}", uuid::Uuid::now_v7().simple()));
    let blobs = Arc::new(ObjectBlobStore::local(&dir).unwrap());
    let kept = round_trip(blobs).await;
    for id in kept {
        assert_eq!(std::fs::read(dir.join("attachments").join(&id)).unwrap(), PDF, "on disk");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn attachments_round_trip_on_s3() {
    let endpoint = std::env::var("CRM_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5055".into());
    let bucket = format!("crm-test-{}", uuid::Uuid::now_v7().simple());
    // moto takes an unsigned request to make a bucket.
    let made = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await;
    let made = made.unwrap_or_else(|e| panic!("no S3-compatible server at {endpoint} (scripts/test starts moto): {e}"));
    assert!(made.status().is_success(), "making bucket {bucket}: {}", made.status());
    let settings = [
        ("endpoint", endpoint.as_str()),
        ("allow_http", "true"),
        ("region", "us-east-1"),
        ("access_key_id", "testing"),
        ("secret_access_key", "testing"),
    ];
    let blobs = Arc::new(ObjectBlobStore::s3_with(&format!("s3://{bucket}/crm"), settings).unwrap());
    let kept = round_trip(blobs).await;
    // The object is in the bucket, under the prefix, as the server itself lists it.
    let listing = reqwest::Client::new().get(format!("{endpoint}/{bucket}?list-type=2")).send().await.unwrap();
    let xml = listing.text().await.unwrap();
    for id in kept {
        assert!(xml.contains(&format!("<Key>crm/attachments/{id}</Key>")), "{xml}");
    }
}
