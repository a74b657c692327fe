//! The OpenAPI document at `/api/openapi.json` against the contract (`docs/API.md`,
//! written out below) and against the router itself: a route the router answers but the
//! document lacks, or the other way round, fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::Value;

/// Every operation of the contract, as `METHOD path`.
const CONTRACT: &[&str] = &[
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /api/openapi.json",
    // Auth.
    "POST /api/auth/register",
    "POST /api/auth/verify-email",
    "POST /api/auth/resend-verification",
    "POST /api/auth/accept-invitation",
    "POST /api/auth/login",
    "POST /api/auth/refresh",
    "POST /api/auth/logout",
    "POST /api/auth/logout-all",
    "GET /api/auth/me",
    "GET /api/auth/sessions",
    "DELETE /api/auth/sessions/{id}",
    "POST /api/auth/password/forgot",
    "POST /api/auth/password/reset",
    "POST /api/auth/password/change",
    "GET /api/auth/providers",
    "POST /api/auth/oauth/{provider}",
    "POST /api/auth/oauth/{provider}/link",
    "DELETE /api/auth/oauth/{provider}/link",
    "GET /api/auth/identities",
    // Reports.
    "GET /api/reports/catalog",
    "GET /api/reports/standard",
    "GET /api/reports/standard/{name}",
    "POST /api/reports/run",
    "PUT /api/reports/saved/{id}/sharing",
    "GET /api/reports/saved/{id}/run",
    "GET /api/contacts/analytics",
    "GET /api/companies/analytics",
    // Users.
    "GET /api/users",
    "POST /api/users",
    "GET /api/users/{id}",
    "PUT /api/users/{id}",
    "PATCH /api/users/{id}",
    "DELETE /api/users/{id}",
    "POST /api/users/{id}/restore",
    "POST /api/users/{id}/suspend",
    "POST /api/users/{id}/unsuspend",
    "POST /api/users/{id}/erase",
    "GET /api/users/{id}/settings",
    "PUT /api/users/{id}/settings",
    "PATCH /api/users/{id}/settings",
    "GET /api/users/{id}/logs",
    "GET /api/audit",
    "GET /api/audit/verify",
    "PUT /api/users/{id}/avatar",
    "GET /api/users/{id}/avatar",
    // Webhooks, deliveries, notifications.
    "GET /api/webhooks",
    "POST /api/webhooks",
    "GET /api/webhooks/event-types",
    "GET /api/webhooks/{id}",
    "PATCH /api/webhooks/{id}",
    "DELETE /api/webhooks/{id}",
    "GET /api/webhooks/{id}/secret",
    "POST /api/webhooks/{id}/rotate-secret",
    "GET /api/webhooks/{id}/deliveries",
    "GET /api/admin/deliveries",
    "GET /api/admin/deliveries/{id}",
    "POST /api/admin/deliveries/{id}/replay",
    "GET /api/notifications",
    "GET /api/notifications/unread-count",
    "POST /api/notifications/{id}/read",
    "POST /api/notifications/read-all",
    "GET /api/notifications/channels",
    "PUT /api/notifications/channels/{provider}",
    "DELETE /api/notifications/channels/{provider}",
    "GET /api/teams/{id}/channels",
    "PUT /api/teams/{id}/channels/{provider}",
    "DELETE /api/teams/{id}/channels/{provider}",
    // Extras.
    "GET /api/deals/{id}/history",
    "GET /api/pipelines",
    "POST /api/tasks/{id}/assign",
    "POST /api/tasks/{id}/complete",
    // Campaigns.
    "DELETE /api/campaign-templates/{id}",
    "DELETE /api/campaigns/{id}",
    "DELETE /api/segments/{id}",
    "DELETE /api/suppressions/{id}",
    "GET /api/campaign-templates",
    "GET /api/campaign-templates/{id}",
    "GET /api/campaigns",
    "GET /api/campaigns/{id}",
    "GET /api/campaigns/{id}/recipients",
    "GET /api/campaigns/{id}/stats",
    "GET /api/contacts/{id}/campaigns",
    "GET /api/contacts/{id}/consent",
    "GET /api/segments",
    "GET /api/segments/{id}",
    "GET /api/segments/{id}/preview",
    "GET /api/suppressions",
    "GET /campaign-preview/{token}",
    "GET /t/c/{token}",
    "GET /t/o/{token}",
    "GET /u/{token}",
    "PATCH /api/campaign-templates/{id}",
    "PATCH /api/campaigns/{id}",
    "PATCH /api/segments/{id}",
    "POST /api/campaign-templates",
    "POST /api/campaign-templates/{id}/preview",
    "POST /api/campaign-templates/{id}/test-send",
    "POST /api/campaigns",
    "POST /api/campaigns/bounces",
    "POST /api/campaigns/{id}/cancel",
    "POST /api/campaigns/{id}/pause",
    "POST /api/campaigns/{id}/resume",
    "POST /api/campaigns/{id}/schedule",
    "POST /api/segments",
    "POST /api/suppressions",
    "POST /u/{token}",
    "PUT /api/contacts/{id}/consent",
    "POST /api/contacts/{id}/consent/confirmation",
    "GET /c/{token}",
    "POST /c/{token}",
    // Billing.
    "DELETE /api/invoices/{id}",
    "DELETE /api/products/{id}",
    "DELETE /api/quotes/{id}",
    "GET /api/billing/settings",
    "GET /api/invoices",
    "GET /api/invoices/{id}",
    "GET /api/invoices/{id}/payments",
    "GET /api/payments",
    "GET /api/payments/{id}",
    "GET /api/products",
    "GET /api/products/{id}",
    "GET /api/quotes",
    "GET /api/quotes/{id}",
    "PATCH /api/invoices/{id}",
    "PATCH /api/products/{id}",
    "PATCH /api/quotes/{id}",
    "POST /api/deals/{id}/invoice",
    "POST /api/deals/{id}/quote",
    "POST /api/invoices",
    "POST /api/invoices/{id}/credit-notes",
    "POST /api/invoices/{id}/issue",
    "POST /api/invoices/{id}/payments",
    "POST /api/invoices/{id}/sent",
    "POST /api/invoices/{id}/void",
    "POST /api/payments/{id}/refund",
    "POST /api/products",
    "POST /api/quotes",
    "POST /api/quotes/{id}/accept",
    "POST /api/quotes/{id}/decline",
    "POST /api/quotes/{id}/invoice",
    "POST /api/quotes/{id}/send",
    "PUT /api/billing/settings",
    "POST /api/invoices/{id}/pay-link",
    "POST /api/payments/stripe/webhook",
    "GET /pay/{token}",
    "POST /pay/{token}/intent",
    "GET /pay/{token}/invoice.pdf",
    "GET /pay/pay.js",
    "POST /api/companies/{id}/card-link",
    "GET /api/companies/{id}/payment-method",
    "DELETE /api/companies/{id}/payment-method",
    "POST /api/invoices/{id}/charge",
    "POST /api/invoices/charge-due",
    "GET /card/{token}",
    "POST /card/{token}/setup",
    "POST /card/{token}/saved",
    "GET /card/card.js",
    "GET /api/subscriptions",
    "POST /api/subscriptions",
    "GET /api/subscriptions/{id}",
    "PATCH /api/subscriptions/{id}",
    "POST /api/subscriptions/run",
    "GET /api/invoices/{id}/ubl",
    "GET /api/invoices/{id}/pdf",
    "GET /api/invoices/{id}/html",
    "POST /api/invoices/{id}/email",
    "GET /api/quotes/{id}/pdf",
    "GET /api/quotes/{id}/html",
    "POST /api/quotes/{id}/email",
    "GET /api/billing/journal",
    "GET /api/exchange-rates",
    "PUT /api/exchange-rates",
    "POST /api/exchange-rates/import",
    "GET /api/invoices/totals",
    // Bulk work.
    "GET /api/contacts/export",
    "GET /api/companies/export",
    "GET /api/deals/export",
    "GET /api/tasks/export",
    "GET /api/interactions/export",
    "POST /api/contacts/batch",
    "POST /api/companies/batch",
    "POST /api/deals/batch",
    "POST /api/tasks/batch",
    "POST /api/imports",
    "GET /api/imports",
    "GET /api/imports/{id}",
    "POST /api/imports/{id}/start",
    "POST /api/imports/{id}/cancel",
    "GET /api/imports/{id}/results",
    // Duplicates and merge.
    "GET /api/contacts/{id}/duplicates",
    "POST /api/contacts/{id}/merge",
    "GET /api/contacts/{id}/merges",
    "GET /api/contacts/merges/{id}",
    "POST /api/contacts/merges/{id}/undo",
    // Attachments.
    "POST /api/contacts/{id}/attachments",
    "GET /api/contacts/{id}/attachments",
    "POST /api/companies/{id}/attachments",
    "GET /api/companies/{id}/attachments",
    "POST /api/deals/{id}/attachments",
    "GET /api/deals/{id}/attachments",
    "POST /api/tasks/{id}/attachments",
    "GET /api/tasks/{id}/attachments",
    "GET /api/attachments/{id}",
    "GET /api/attachments/{id}/content",
    "DELETE /api/attachments/{id}",
];

/// The record kinds, each with the same eight operations.
const RECORDS: &[&str] = &["contacts", "companies", "deals", "tasks", "interactions", "teams", "reports/saved"];

fn contract() -> BTreeSet<String> {
    let mut all: BTreeSet<String> = CONTRACT.iter().map(|s| s.to_string()).collect();
    for r in RECORDS {
        for op in [
            "GET /api/{r}",
            "POST /api/{r}",
            "POST /api/{r}/search",
            "GET /api/{r}/{id}",
            "PUT /api/{r}/{id}",
            "PATCH /api/{r}/{id}",
            "DELETE /api/{r}/{id}",
            "POST /api/{r}/{id}/restore",
        ] {
            all.insert(op.replace("{r}", r));
        }
    }
    all
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn documented(doc: &Value) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                ops.insert(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    ops
}

/// Rate limits that a walk over every route does not reach.
fn generous() -> crm_http::limit::RateLimits {
    let q = crm_http::limit::Quota { limit: 100_000, window: std::time::Duration::from_secs(60) };
    crm_http::limit::RateLimits { per_ip: q, per_account: q, gateway: q }
}

/// A concrete path for a template.
fn concrete(path: &str) -> String {
    path.replace("{id}", "0190a4c1-1111-7000-8000-000000000001").replace("{provider}", "google")
}

/// Whether the router has a route for this method and path (as opposed to the fallback's
/// "no such route" or a 405 for another method).
async fn routed(app: &common::App, method: &str, path: &str) -> bool {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let a = app.call(method.clone(), &concrete(path), None, None).await;
    let fallback = a.status == StatusCode::NOT_FOUND && a.body["detail"] == "no such route";
    !(fallback || a.status == StatusCode::METHOD_NOT_ALLOWED)
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_served() {
    let app = common::app().await;
    let a = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["openapi"], "3.1.0");
    assert_eq!(a.body, serde_json::to_value(crm_http::openapi()).unwrap(), "served = built");
    // Every reference resolves.
    let text = a.body.to_string();
    let schemas = a.body["components"]["schemas"].as_object().unwrap();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
    // Operation ids are unique, and every operation answers a documented error shape.
    let mut ids = BTreeSet::new();
    for item in a.body["paths"].as_object().unwrap().values() {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                let id = op["operationId"].as_str().unwrap().to_string();
                assert!(ids.insert(id.clone()), "operationId {id} twice");
                assert!(op["responses"]["default"].is_object(), "{id} documents no errors");
            }
        }
    }
}

#[tokio::test]
async fn the_document_covers_the_contract_exactly() {
    let doc = serde_json::to_value(crm_http::openapi()).unwrap();
    let documented = documented(&doc);
    let contract = contract();
    let missing: Vec<_> = contract.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&contract).collect();
    assert!(missing.is_empty(), "routes of the contract missing from the document: {missing:?}");
    assert!(extra.is_empty(), "documented routes outside the contract (add them to API.md and here): {extra:?}");
}

#[tokio::test]
async fn every_route_the_router_answers_is_documented_and_the_other_way_round() {
    let app = common::app_with(generous()).await;
    let doc = serde_json::to_value(crm_http::openapi()).unwrap();
    let documented = documented(&doc);
    let mut paths: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    paths.extend(contract().iter().map(|op| op.split_once(' ').unwrap().1.to_string()));
    for path in &paths {
        for m in METHODS {
            let op = format!("{} {path}", m.to_uppercase());
            let served = routed(&app, &m.to_uppercase(), path).await;
            let listed = documented.contains(&op);
            assert_eq!(served, listed, "{op}: served {served}, documented {listed}");
        }
    }
}

#[tokio::test]
async fn secured_operations_say_so_and_public_ones_answer_without_a_token() {
    let doc = serde_json::to_value(crm_http::openapi()).unwrap();
    let app = common::app_with(generous()).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let security = op["security"].as_array().cloned().unwrap_or_default();
            if security.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())) {
                continue; // a token is optional: logout takes a refresh token or the bearer's session
            }
            let secured = !security.is_empty();
            let a =
                app.call(Method::from_bytes(m.to_uppercase().as_bytes()).unwrap(), &concrete(path), None, None).await;
            if secured {
                assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{m} {path} is documented as needing a token");
            } else {
                assert_ne!(a.status, StatusCode::UNAUTHORIZED, "{m} {path} is documented as public");
            }
        }
    }
}

/// The web app's types are generated from `web/openapi.json`: it must be this very
/// document (`cargo run -p crm-http --bin crm-server -- openapi > web/openapi.json`, then
/// `npm run build` in `web/`).
#[test]
fn the_web_apps_copy_of_the_document_is_current() {
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../web/openapi.json")).expect("web/openapi.json is JSON");
    let now = serde_json::to_value(crm_http::openapi()).unwrap();
    assert!(
        committed == now,
        "web/openapi.json is stale: run `cargo run -p crm-http --bin crm-server -- openapi > web/openapi.json` and `npm run build` in web/"
    );
}
