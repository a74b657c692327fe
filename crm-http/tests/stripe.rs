//! Online payment of an invoice against localstripe (PyPI; a stateful fake Stripe
//! server, started here on 127.0.0.1): pay link → payment intent → the card confirmed
//! as Stripe.js would → Stripe's signed webhook → the intent fetched again → the
//! invoice paid, audited, published. And the webhook's refusals: no, bad, stale or
//! replayed signatures, unknown events, a forged payment the gateway does not confirm.
//! And the README's billing session, run by bash against the real `crm-server` binary
//! and localstripe.
//!
//! With `CI=true` a localstripe that cannot be started is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{app_custom, App, PASSWORD};
use crm_core::billing::crypt::FieldKeys;
use crm_core::billing::gateway::{sign_stripe, PaymentGateway, StripeConfig, StripeGateway};
use crm_core::model::billing::ChargeState;
use crm_core::store::StoreExt;
use crm_http::Payments;
use crm_storage_sql::SqlStore;
use serde_json::{json, Value};

const SECRET_KEY: &str = "sk_test_crmrs";
const WHSEC: &str = "whsec_crmrs_new";
/// The key the test server seals billing fields under.
const BILLING_KEY: [u8; 32] = [5; 32];

struct LocalStripe {
    child: Child,
    base: String,
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// localstripe on a free port, or `None` (a failure under `CI=true`).
async fn localstripe() -> Option<LocalStripe> {
    let python = std::env::var("CRM_TEST_STRIPE_PYTHON").unwrap_or_else(|_| {
        format!("{}/.cache/crm-rs/stripe-venv/bin/python", std::env::var("HOME").unwrap_or_default())
    });
    let port = free_port();
    let child = Command::new(&python)
        .args(["-m", "localstripe", "--port", &port.to_string(), "--from-scratch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let child = match child {
        Ok(c) => c,
        Err(e) if ci => panic!("localstripe could not be started with {python}: {e}"),
        Err(e) => {
            eprintln!("skipping: localstripe could not be started with {python}: {e} (scripts/test installs it)");
            return None;
        }
    };
    let ls = LocalStripe { child, base: format!("http://127.0.0.1:{port}") };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        let up = http.get(format!("{}/v1/balance", ls.base)).bearer_auth(SECRET_KEY).send().await;
        if up.is_ok_and(|r| r.status().is_success()) {
            return Some(ls);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!ci, "localstripe did not answer on {}", ls.base);
    None
}

async fn stripe_form(ls: &LocalStripe, path: &str, form: &[(&str, &str)]) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/{path}", ls.base))
        .bearer_auth(SECRET_KEY)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn stripe_get(ls: &LocalStripe, path: &str) -> Value {
    let r = reqwest::Client::new().get(format!("{}/v1/{path}", ls.base)).bearer_auth(SECRET_KEY).send().await.unwrap();
    r.json().await.unwrap()
}

/// Has localstripe send its webhooks to the server at `public`, signed with the current
/// secret; answers the webhook's URL.
async fn hook_localstripe(ls: &LocalStripe, public: &str) -> String {
    let hook = format!("{public}/api/payments/stripe/webhook");
    let r = reqwest::Client::new()
        .post(format!("{}/_config/webhooks/crm", ls.base))
        .form(&[("url", hook.as_str()), ("secret", WHSEC)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    hook
}

/// An event posted to the webhook as Stripe would, signed with the current secret.
async fn post_event(hook: &str, event: &Value) -> reqwest::Response {
    let body = event.to_string();
    let sig = sign_stripe(body.as_bytes(), WHSEC, chrono::Utc::now().timestamp());
    reqwest::Client::new().post(hook).header("stripe-signature", sig).body(body).send().await.unwrap()
}

/// The app with Stripe at localstripe, served on a real port for localstripe's webhooks.
async fn app_with_stripe(ls: &LocalStripe) -> (App, String, Arc<StripeGateway>) {
    let gateway = Arc::new(
        StripeGateway::new(StripeConfig {
            api_base: ls.base.clone(),
            secret_key: SECRET_KEY.into(),
            publishable_key: Some("pk_test_crmrs".into()),
            js_url: format!("{}/js.stripe.com/v3/", ls.base),
        })
        .unwrap(),
    );
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let payments = Payments {
        gateway: gateway.clone(),
        webhook_secrets: vec!["whsec_crmrs_old".into(), WHSEC.into()],
        tolerance: 300,
    };
    let keys = FieldKeys::new(&BILLING_KEY);
    // The tests call the pay and card pages' routes far more often than a customer.
    let often = crm_http::limit::Quota { limit: 1_000, window: Duration::from_secs(60) };
    let limits = crm_http::limit::RateLimits { gateway: often, ..Default::default() };
    let app = app_custom(
        |b| b.billing_keys(keys),
        |s| s.with_payments(payments).with_public_url(&public).with_limits(limits),
    )
    .await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
    });
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    (app, public, gateway)
}

/// An issued invoice of 1,392.00 EUR; answers its id.
async fn issued_invoice(app: &App, token: &str) -> String {
    let company = app.call(Method::POST, "/api/companies", Some(token), Some(json!({"name": "Acme SA"}))).await;
    assert_eq!(company.status, StatusCode::CREATED, "{}", company.body);
    let inv = app
        .call(
            Method::POST,
            "/api/invoices",
            Some(token),
            Some(json!({"companyId": company.body["id"], "currency": "EUR",
                "lines": [{"name": "Pro seat", "quantity": 40, "unitPrice": 2900, "taxPercent": 20}]})),
        )
        .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.body);
    let id = inv.body["id"].as_str().unwrap().to_string();
    let issued = app.call(Method::POST, &format!("/api/invoices/{id}/issue"), Some(token), None).await;
    assert_eq!(issued.body["status"], "issued", "{}", issued.body);
    assert_eq!(issued.body["total"], 139_200);
    id
}

/// An issued one-line EUR invoice of `amount` for a company; answers its id.
async fn issued_for(app: &App, token: &str, company: &str, name: &str, amount: i64) -> String {
    let lines = json!([{"name": name, "unitPrice": amount}]);
    let body = json!({"companyId": company, "currency": "EUR", "lines": lines});
    let inv = app.call(Method::POST, "/api/invoices", Some(token), Some(body)).await;
    let id = inv.body["id"].as_str().unwrap().to_string();
    app.call(Method::POST, &format!("/api/invoices/{id}/issue"), Some(token), None).await;
    id
}

async fn invoice(app: &App, token: &str, id: &str) -> Value {
    app.call(Method::GET, &format!("/api/invoices/{id}"), Some(token), None).await.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_is_paid_through_stripe_and_its_webhook() {
    let Some(ls) = localstripe().await else { return };
    let (app, public, gateway) = app_with_stripe(&ls).await;
    let token = app.token("admin", PASSWORD).await;
    let id = issued_invoice(&app, &token).await;

    // localstripe sends its webhooks to us, signed with the current secret.
    let hook = hook_localstripe(&ls, &public).await;

    // The manager's pay link; the customer's page shows the balance and Stripe's form.
    let link = app.call(Method::POST, &format!("/api/invoices/{id}/pay-link"), Some(&token), None).await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.body);
    let url = link.body["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{public}/pay/")), "{url}");
    let path = url.trim_start_matches(&public).to_string();
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains(&ls.base) && !csp.contains("unsafe-eval"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("1392.00 EUR") && html.contains("js.stripe.com/v3/") && html.contains("/pay/pay.js"),
        "{html}"
    );
    let forged = reqwest::get(format!("{url}x")).await.unwrap();
    assert_eq!(forged.status(), 404);

    // The page's script asks for an intent; the customer's card confirms it, as
    // Stripe.js would (a payment method, attached to the intent, confirmed).
    let intent = reqwest::Client::new().post(format!("{url}/intent")).send().await.unwrap();
    assert_eq!(intent.status(), 200);
    let intent: Value = intent.json().await.unwrap();
    assert_eq!((intent["amount"].as_i64(), intent["currency"].as_str()), (Some(139_200), Some("EUR")));
    assert!(intent["clientSecret"].as_str().is_some_and(|s| s.contains("_secret_")));
    let pi = intent["intentId"].as_str().unwrap().to_string();
    let pm = stripe_form(
        &ls,
        "payment_methods",
        &[
            ("type", "card"),
            ("card[number]", "4242424242424242"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2030"),
            ("card[cvc]", "123"),
        ],
    )
    .await;
    stripe_form(&ls, &format!("payment_intents/{pi}"), &[("payment_method", pm["id"].as_str().unwrap())]).await;
    let confirmed = stripe_form(&ls, &format!("payment_intents/{pi}/confirm"), &[]).await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");

    // Not the redirect, the webhook: localstripe posts `payment_intent.succeeded` a
    // second later; the server fetches the intent again and records the payment.
    let mut paid = Value::Null;
    for _ in 0..100 {
        paid = invoice(&app, &token, &id).await;
        if paid["status"] == "paid" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((paid["status"].as_str(), paid["balance"].as_i64()), (Some("paid"), Some(0)), "{paid}");
    let payments = app.call(Method::GET, &format!("/api/invoices/{id}/payments"), Some(&token), None).await;
    let list = payments.body["data"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{}", payments.body);
    assert_eq!(
        (list[0]["gateway"].as_str(), list[0]["reference"].as_str(), list[0]["amount"].as_i64()),
        (Some("stripe"), Some(pi.as_str()), Some(139_200))
    );
    assert!(list[0]["recordedBy"].is_null());
    // Audited (by the system) and published for webhooks and notifications.
    let audit = app
        .call(
            Method::GET,
            &format!("/api/audit?filter=entityId[eq]:{}", list[0]["id"].as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert!(audit.body["data"].as_array().unwrap().iter().any(|e| e["action"] == "payment.recorded"), "{}", audit.body);
    let all = crm_core::query::StoreQuery { filter: None, sort: vec![], limit: 1000, include_deleted: true };
    let outbox = app.crm.store().list_as::<crm_core::outbox::OutboxEvent>(&all).await.unwrap();
    let topics: Vec<String> = outbox.into_iter().map(|e| e.topic).collect();
    assert!(topics.iter().any(|t| t == "invoice.paid") && topics.iter().any(|t| t == "payment.recorded"), "{topics:?}");
    // The invoice's owner is told, in the app.
    crm_core::delivery::DeliveryEngine::new(app.crm.clone()).run_once().await.unwrap();
    let notes = app.call(Method::GET, "/api/notifications", Some(&token), None).await;
    let paid_note = notes.body["data"].as_array().unwrap().iter().find(|n| n["topic"] == "invoice.paid").cloned();
    let paid_note = paid_note.unwrap_or_else(|| panic!("no invoice.paid notification in {}", notes.body));
    assert_eq!(paid_note["title"], format!("Invoice paid: {}", paid["number"].as_str().unwrap()));
    assert!(paid_note["body"].as_str().unwrap().contains("€1,392.00"), "{paid_note}");
    // Its PDF now says so.
    let client = reqwest::Client::new();
    let pdf = client.get(format!("{public}/api/invoices/{id}/pdf")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(pdf.status(), 200, "{:?}", pdf.headers());
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let name = format!("inline; filename=\"{}.pdf\"", paid["number"].as_str().unwrap());
    assert_eq!(pdf.headers()["content-disposition"].to_str().unwrap(), name);
    let bytes = pdf.bytes().await.unwrap();
    let text = pdf_extract::extract_text_from_mem(&bytes).unwrap();
    assert!(text.contains("PAID") && text.contains("€1,392.00") && text.contains("€0.00"), "{text}");
    let page = client.get(format!("{public}/api/invoices/{id}/html?lang=ar")).bearer_auth(&token).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("style-src 'sha256-") && !csp.contains("unsafe"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("dir=\"rtl\"") && html.contains("مدفوعة"), "{html}");
    let bad = client.get(format!("{public}/api/invoices/{id}/pdf?lang=de")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "lang", "{problem}");

    // The page now says there is nothing to pay; no new intent is made. The customer
    // downloads the invoice from it, without signing in.
    let html = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(html.contains("Nothing is left to pay") && !html.contains("pay.js"));
    assert!(html.contains(&format!("{path}/invoice.pdf")), "{html}");
    let theirs = reqwest::get(format!("{url}/invoice.pdf")).await.unwrap();
    assert_eq!(theirs.headers()["content-type"], "application/pdf");
    let theirs = pdf_extract::extract_text_from_mem(&theirs.bytes().await.unwrap()).unwrap();
    assert!(theirs.contains(paid["number"].as_str().unwrap()) && theirs.contains("PAID"), "{theirs}");
    let forged = reqwest::get(format!("{public}/pay/{}x/invoice.pdf", &path[5..])).await.unwrap();
    assert_eq!(forged.status(), 404);
    let again = reqwest::Client::new().post(format!("{public}{path}/intent")).send().await.unwrap();
    assert_eq!(again.status(), 409);

    // A refund of part of it goes back through Stripe first: the refund row carries
    // Stripe's refund id, the invoice is owed again.
    let refund = app
        .call(
            Method::POST,
            &format!("/api/payments/{}/refund", list[0]["id"].as_str().unwrap()),
            Some(&token),
            Some(json!({"amount": 39_200, "note": "two seats fewer"})),
        )
        .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.body);
    let re = refund.body["reference"].as_str().unwrap_or_default().to_string();
    assert!(re.starts_with("re_") && refund.body["gateway"] == "stripe", "{}", refund.body);
    let at_stripe = stripe_get(&ls, &format!("refunds/{re}")).await;
    assert_eq!(
        (at_stripe["amount"].as_i64(), at_stripe["payment_intent"].as_str()),
        (Some(39_200), Some(pi.as_str())),
        "{at_stripe}"
    );
    let owed = invoice(&app, &token, &id).await;
    assert_eq!((owed["status"].as_str(), owed["balance"].as_i64()), (Some("partially_paid"), Some(39_200)), "{owed}");

    // A refund made in Stripe's dashboard: Stripe's `charge.refunded` names the
    // charge; the server lists its refunds at Stripe and records the one it did not
    // know (the API's own refund is not recorded twice), once however often the
    // event comes.
    let dashboard = stripe_form(&ls, "refunds", &[("payment_intent", pi.as_str()), ("amount", "10000")]).await;
    let at_pi: Value = stripe_get(&ls, &format!("payment_intents/{pi}")).await;
    let ch = at_pi["latest_charge"].as_str().or(at_pi["latest_charge"]["id"].as_str()).unwrap().to_string();
    for event_id in ["evt_refund_1", "evt_refund_1", "evt_refund_2"] {
        let ev = json!({"id": event_id, "type": "charge.refunded", "data": {"object": {"id": ch}}});
        assert_eq!(post_event(&hook, &ev).await.status(), 200);
        app.crm.billing().process_gateway_events(gateway.as_ref()).await.unwrap();
    }
    let owed = invoice(&app, &token, &id).await;
    assert_eq!((owed["status"].as_str(), owed["balance"].as_i64()), (Some("partially_paid"), Some(49_200)), "{owed}");
    let rows = app.call(Method::GET, &format!("/api/invoices/{id}/payments"), Some(&token), None).await;
    let refunds: Vec<Value> =
        rows.body["data"].as_array().unwrap().iter().filter(|p| p["kind"] == "refund").cloned().collect();
    assert_eq!(refunds.len(), 2, "{}", rows.body);
    let from_dashboard = refunds.iter().find(|r| r["reference"] == dashboard["id"]).expect("the dashboard's refund");
    assert_eq!((from_dashboard["amount"].as_i64(), from_dashboard["recordedBy"].is_null()), (Some(10_000), true));
    // More than is left is refused before Stripe is asked.
    let too_much = app
        .call(
            Method::POST,
            &format!("/api/payments/{}/refund", list[0]["id"].as_str().unwrap()),
            Some(&token),
            Some(json!({"amount": 100_001})),
        )
        .await;
    assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", too_much.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_refuses_bad_stale_replayed_and_unconfirmed_events() {
    let Some(ls) = localstripe().await else { return };
    let (app, public, gateway) = app_with_stripe(&ls).await;
    let token = app.token("admin", PASSWORD).await;
    let id = issued_invoice(&app, &token).await;
    let hook = format!("{public}/api/payments/stripe/webhook");
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let post = |body: String, sig: Option<String>| {
        let mut r = http.post(&hook).header("content-type", "application/json").body(body);
        if let Some(s) = sig {
            r = r.header("stripe-signature", s);
        }
        r.send()
    };

    // An intent that exists at the gateway but was never paid: the event claims it
    // succeeded, the gateway says otherwise, nothing is recorded.
    let intent = gateway
        .create_intent(&crm_core::billing::gateway::IntentRequest {
            amount: 139_200,
            currency: "EUR".into(),
            invoice_id: uuid::Uuid::parse_str(&id).unwrap(),
            invoice_number: None,
            customer: None,
            payment_method: None,
            method_types: vec![],
            idempotency_key: "t1".into(),
        })
        .await
        .unwrap();
    let forged = json!({"id": "evt_forged_1", "type": "payment_intent.succeeded", "data": {"object": {"id": intent.id, "status": "succeeded", "amount_received": 139_200}}}).to_string();

    // No signature, a wrong secret, a tampered body, a stale timestamp: 400 naming the header.
    let r = post(forged.clone(), None).await.unwrap();
    assert_eq!(r.status(), 400);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "Stripe-Signature", "{problem}");
    assert_eq!(
        post(forged.clone(), Some(sign_stripe(forged.as_bytes(), "whsec_wrong", now))).await.unwrap().status(),
        400
    );
    let tampered = sign_stripe(b"{}", WHSEC, now);
    assert_eq!(post(forged.clone(), Some(tampered)).await.unwrap().status(), 400);
    let stale = sign_stripe(forged.as_bytes(), WHSEC, now - 600);
    assert_eq!(post(forged.clone(), Some(stale)).await.unwrap().status(), 400);

    // Signed (with the secret being rotated out): taken in once; a replay is a
    // duplicate; acting on it finds the intent unpaid and records nothing.
    let sig = sign_stripe(forged.as_bytes(), "whsec_crmrs_old", now);
    let first: Value = post(forged.clone(), Some(sig.clone())).await.unwrap().json().await.unwrap();
    assert_eq!(first, json!({"received": true, "duplicate": false}));
    let replay: Value = post(forged.clone(), Some(sig)).await.unwrap().json().await.unwrap();
    assert_eq!(replay, json!({"received": true, "duplicate": true}));
    app.crm.billing().process_gateway_events(gateway.as_ref()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let inv = invoice(&app, &token, &id).await;
    assert_eq!((inv["status"].as_str(), inv["amountPaid"].as_i64()), (Some("issued"), Some(0)), "{inv}");
    let all = crm_core::query::StoreQuery { filter: None, sort: vec![], limit: 10, include_deleted: true };
    let events = app.crm.store().list_as::<crm_core::model::billing::GatewayEvent>(&all).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].state, crm_core::model::billing::GatewayEventState::Failed, "{events:?}");
    assert!(events[0].error.as_deref().is_some_and(|e| e.contains("requires_payment_method")), "{events:?}");

    // An event type billing does not act on: taken in and ignored.
    let other =
        json!({"id": "evt_other_1", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}).to_string();
    let r = post(other.clone(), Some(sign_stripe(other.as_bytes(), WHSEC, now))).await.unwrap();
    assert_eq!(r.status(), 200);
    // Not JSON at all, correctly signed: 422 on the body.
    let junk = "not json".to_string();
    let r = post(junk.clone(), Some(sign_stripe(junk.as_bytes(), WHSEC, now))).await.unwrap();
    assert_eq!(r.status(), 422);
}

/// Writes an invoice's charge state as a server would have left it `age` minutes ago.
async fn set_charge(app: &App, id: &str, state: ChargeState, attempts: i64, age: i64) {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let mut raw = app.crm.store().get_as::<crm_core::model::billing::Invoice>(id).await.unwrap().unwrap();
    let before = raw.version;
    raw.charge_state = Some(state);
    raw.charge_attempts = attempts;
    raw.updated_at = chrono::Utc::now() - chrono::Duration::minutes(age);
    raw.version += 1;
    let row = crm_core::schema::to_row(&raw).unwrap();
    let w =
        crm_core::store::Write::Update { kind: crm_core::schema::EntityKind::Invoice, row, expected_version: before };
    app.crm.store().apply(crm_core::store::Changeset { writes: vec![w], audit: vec![] }).await.unwrap();
}

/// A card saved through the card link, as Stripe.js would (a SetupIntent confirmed
/// with a card), read back from Stripe by the server.
async fn save_card(app: &App, ls: &LocalStripe, token: &str, company: &str, number: &str) -> (String, String) {
    let link = app.call(Method::POST, &format!("/api/companies/{company}/card-link"), Some(token), None).await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.body);
    let url = link.body["url"].as_str().unwrap().to_string();
    let setup: Value = reqwest::Client::new().post(format!("{url}/setup")).send().await.unwrap().json().await.unwrap();
    let seti = setup["setupIntentId"].as_str().unwrap_or_else(|| panic!("{setup}")).to_string();
    assert!(setup["clientSecret"].as_str().is_some_and(|s| s.starts_with(&seti)), "{setup}");
    let pm = stripe_form(
        ls,
        "payment_methods",
        &[
            ("type", "card"),
            ("card[number]", number),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2030"),
            ("card[cvc]", "123"),
        ],
    )
    .await;
    let confirmed =
        stripe_form(ls, &format!("setup_intents/{seti}/confirm"), &[("payment_method", pm["id"].as_str().unwrap())])
            .await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
    (url, seti)
}

async fn company(app: &App, token: &str, name: &str) -> String {
    let c = app
        .call(
            Method::POST,
            "/api/companies",
            Some(token),
            Some(json!({"name": name, "contactDetails": {"email": "ap@example.com"}})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    c.body["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_card_pays_subscription_invoices_off_session() {
    let Some(ls) = localstripe().await else { return };
    let (app, public, gateway) = app_with_stripe(&ls).await;
    let token = app.token("admin", PASSWORD).await;
    let hook = hook_localstripe(&ls, &public).await;
    let acme = company(&app, &token, "Acme SA").await;
    let none = app.call(Method::GET, &format!("/api/companies/{acme}/payment-method"), Some(&token), None).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);

    // The manager's card link: a week, under the public address; its page names the
    // company, loads Stripe.js and its own script, under a CSP.
    let link = app.call(Method::POST, &format!("/api/companies/{acme}/card-link"), Some(&token), None).await;
    let url = link.body["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{public}/card/")), "{url}");
    let expires = chrono::DateTime::parse_from_rfc3339(link.body["expiresAt"].as_str().unwrap()).unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((167..=168).contains(&days), "{days} hours");
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains(&ls.base));
    let html = page.text().await.unwrap();
    assert!(html.contains("Acme SA") && html.contains("/card/card.js") && html.contains("js.stripe.com/v3/"), "{html}");
    // A forged or altered link opens nothing and starts nothing.
    assert_eq!(reqwest::get(format!("{url}x")).await.unwrap().status(), 404);
    let other = url.replacen(&acme.replace('-', "")[..4], "ffff", 1);
    assert_eq!(reqwest::get(&other).await.unwrap().status(), 404);
    let forged = reqwest::Client::new().post(format!("{url}x/setup")).send().await.unwrap();
    assert_eq!(forged.status(), 404);

    // The page's word is not enough: a setup the customer never confirmed is refused,
    // as is one of another company; Stripe, asked again, decides.
    let setup: Value = reqwest::Client::new().post(format!("{url}/setup")).send().await.unwrap().json().await.unwrap();
    let seti = setup["setupIntentId"].as_str().unwrap().to_string();
    let early =
        reqwest::Client::new().post(format!("{url}/saved")).json(&json!({"setupIntentId": seti})).send().await.unwrap();
    assert_eq!(early.status(), 422);
    let problem: Value = early.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "setupIntentId", "{problem}");
    let bad = reqwest::Client::new()
        .post(format!("{url}/saved"))
        .json(&json!({"setupIntentId": "pi_123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);

    let (url, seti) = save_card(&app, &ls, &token, &acme, "4242424242424242").await;
    let saved: Value = reqwest::Client::new()
        .post(format!("{url}/saved"))
        .json(&json!({"setupIntentId": seti}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((saved["kind"].as_str(), saved["label"].as_str()), (Some("card"), Some("visa •••• 4242")), "{saved}");
    let on_file = app.call(Method::GET, &format!("/api/companies/{acme}/payment-method"), Some(&token), None).await;
    assert_eq!(on_file.body["label"], "visa •••• 4242", "{}", on_file.body);
    assert!(reqwest::get(&url).await.unwrap().text().await.unwrap().contains("On file now: <strong>visa •••• 4242"));
    // Stripe's ids are sealed at rest.
    let all = crm_core::query::StoreQuery { filter: None, sort: vec![], limit: 10, include_deleted: true };
    let raw = app.crm.store().list_as::<crm_core::model::billing::PaymentProfile>(&all).await.unwrap();
    assert_eq!(raw.len(), 1);
    assert!(raw[0].customer_ref.starts_with("enc:v1:") && !raw[0].customer_ref.contains("cus_"), "{raw:?}");
    assert!(raw[0].method_ref.as_deref().is_some_and(|m| m.starts_with("enc:v1:") && !m.contains("pm_")));

    // A monthly subscription that charges the card: its first invoice is issued and
    // due to be charged; the payments pass charges it off session, once, and the
    // invoice is paid with Stripe's intent as the payment's reference.
    let sub = app
        .call(
            Method::POST,
            "/api/subscriptions",
            Some(&token),
            Some(json!({"name": "Pro plan", "companyId": acme, "currency": "EUR", "autoCharge": true,
                "lines": [{"name": "Pro seat", "quantity": 10, "unitPrice": 2900, "taxPercent": 20}]})),
        )
        .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{}", sub.body);
    assert_eq!(sub.body["autoCharge"], true);
    let run = app.call(Method::POST, "/api/subscriptions/run", Some(&token), None).await;
    assert_eq!(run.body["invoices"], 1, "{}", run.body);
    let list = app.call(Method::GET, &format!("/api/invoices?companyId={acme}"), Some(&token), None).await;
    let inv = list.body["data"][0].clone();
    let id = inv["id"].as_str().unwrap().to_string();
    assert_eq!((inv["status"].as_str(), inv["chargeState"].as_str()), (Some("issued"), Some("due")), "{inv}");
    // Two servers' passes at once: one claims it, the other finds it taken.
    let b = app.crm.billing();
    let (one, two) = tokio::join!(b.charge_due_invoices(gateway.as_ref()), b.charge_due_invoices(gateway.as_ref()));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.charged + two.charged, 1, "{one:?} {two:?}");
    let paid = invoice(&app, &token, &id).await;
    assert_eq!(
        (
            paid["status"].as_str(),
            paid["chargeState"].as_str(),
            paid["balance"].as_i64(),
            paid["chargeAttempts"].as_i64()
        ),
        (Some("paid"), Some("charged"), Some(0), Some(1)),
        "{paid}"
    );
    let payments = app.call(Method::GET, &format!("/api/invoices/{id}/payments"), Some(&token), None).await;
    let p = payments.body["data"].as_array().unwrap().clone();
    assert_eq!(p.len(), 1, "{}", payments.body);
    let pi = p[0]["reference"].as_str().unwrap().to_string();
    assert!(pi.starts_with("pi_") && p[0]["method"] == "card" && p[0]["amount"] == 34_800, "{}", payments.body);
    let at_stripe: Value = stripe_get(&ls, &format!("payment_intents/{pi}")).await;
    assert_eq!((at_stripe["status"].as_str(), at_stripe["amount"].as_i64()), (Some("succeeded"), Some(34_800)));
    assert!(at_stripe["customer"].as_str().is_some_and(|c| c.starts_with("cus_")), "{at_stripe}");
    // Stripe's own `payment_intent.succeeded` for it arrives later: no second payment.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.crm.billing().process_gateway_events(gateway.as_ref()).await.unwrap();
    let again = app.call(Method::GET, &format!("/api/invoices/{id}/payments"), Some(&token), None).await;
    assert_eq!(again.body["data"].as_array().unwrap().len(), 1, "{}", again.body);
    // Nothing more to charge.
    let idle = app.call(Method::POST, "/api/invoices/charge-due", Some(&token), None).await;
    assert_eq!(idle.body, json!({"charged": 0, "failed": 0}));

    // A card the bank declines off session: the manager's charge answers the invoice,
    // still owed, the charge failed with Stripe's reason; audited.
    let globex = company(&app, &token, "Globex").await;
    let (gurl, gseti) = save_card(&app, &ls, &token, &globex, "4000000000000341").await;
    // Saved through Stripe's webhook this time (the page closed before it said so).
    let ev = json!({"id": "evt_setup_1", "type": "setup_intent.succeeded", "data": {"object": {"id": gseti}}});
    assert_eq!(post_event(&hook, &ev).await.status(), 200);
    let mut label = Value::Null;
    for _ in 0..50 {
        label =
            app.call(Method::GET, &format!("/api/companies/{globex}/payment-method"), Some(&token), None).await.body;
        if label["label"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(label["label"], "visa •••• 0341", "{label}");
    assert!(gurl.contains("/card/"));
    let gid = issued_for(&app, &token, &globex, "Audit", 50_000).await;
    let declined = app.call(Method::POST, &format!("/api/invoices/{gid}/charge"), Some(&token), None).await;
    assert_eq!(declined.status, StatusCode::OK, "{}", declined.body);
    assert_eq!(
        (declined.body["status"].as_str(), declined.body["chargeState"].as_str(), declined.body["balance"].as_i64()),
        (Some("issued"), Some("failed"), Some(50_000)),
        "{}",
        declined.body
    );
    assert!(declined.body["chargeError"].as_str().is_some_and(|e| e.contains("declined")), "{}", declined.body);
    let audit = app.call(Method::GET, &format!("/api/audit?filter=entityId[eq]:{gid}"), Some(&token), None).await;
    let actions: Vec<&str> =
        audit.body["data"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"invoice.charge_requested") && actions.contains(&"invoice.charge_failed"), "{actions:?}");

    // The customer saves another card. A server claimed the invoice's charge and
    // stopped: a fresh claim is left alone, one older than ten minutes is taken up by
    // the next pass with the same attempt (the same idempotency key at Stripe).
    let (gurl, gseti) = save_card(&app, &ls, &token, &globex, "4242424242424242").await;
    let saved =
        reqwest::Client::new().post(format!("{gurl}/saved")).json(&json!({"setupIntentId": gseti})).send().await;
    assert_eq!(saved.unwrap().status(), 200);
    // The stopped server's attempt: the second (the first was declined).
    set_charge(&app, &gid, ChargeState::Charging, 2, 1).await;
    let idle = app.crm.billing().charge_due_invoices(gateway.as_ref()).await.unwrap();
    assert_eq!((idle.charged, idle.failed), (0, 0));
    let busy = app.call(Method::POST, &format!("/api/invoices/{gid}/charge"), Some(&token), None).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.body["errors"][0]["field"], "chargeState", "{}", busy.body);
    set_charge(&app, &gid, ChargeState::Charging, 2, 11).await;
    let taken = app.crm.billing().charge_due_invoices(gateway.as_ref()).await.unwrap();
    assert_eq!((taken.charged, taken.failed), (1, 0));
    let paid_g = invoice(&app, &token, &gid).await;
    assert_eq!(
        (paid_g["status"].as_str(), paid_g["chargeState"].as_str(), paid_g["chargeAttempts"].as_i64()),
        (Some("paid"), Some("charged"), Some(2)),
        "{paid_g}"
    );

    // A bank account (SEPA Direct Debit), saved through the same page and debited: the
    // payment is a SEPA debit. (At Stripe the debit stays `processing` for days and its
    // `payment_intent.succeeded` pays the invoice; localstripe settles it at once.)
    let umbrella = company(&app, &token, "Umbrella GmbH").await;
    let link = app.call(Method::POST, &format!("/api/companies/{umbrella}/card-link"), Some(&token), None).await;
    let uurl = link.body["url"].as_str().unwrap().to_string();
    assert!(reqwest::get(&uurl).await.unwrap().text().await.unwrap().contains("SEPA Direct Debit"));
    let setup: Value = reqwest::Client::new().post(format!("{uurl}/setup")).send().await.unwrap().json().await.unwrap();
    let useti = setup["setupIntentId"].as_str().unwrap().to_string();
    let pm = stripe_form(
        &ls,
        "payment_methods",
        &[
            ("type", "sepa_debit"),
            ("sepa_debit[iban]", "DE89370400440532013000"),
            ("billing_details[name]", "Umbrella GmbH"),
        ],
    )
    .await;
    let ok =
        stripe_form(&ls, &format!("setup_intents/{useti}/confirm"), &[("payment_method", pm["id"].as_str().unwrap())])
            .await;
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let saved: Value = reqwest::Client::new()
        .post(format!("{uurl}/saved"))
        .json(&json!({"setupIntentId": useti}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((saved["kind"].as_str(), saved["label"].as_str()), (Some("sepa_debit"), Some("SEPA debit •••• 3000")));
    let uid = issued_for(&app, &token, &umbrella, "Support", 12_000).await;
    let debited = app.call(Method::POST, &format!("/api/invoices/{uid}/charge"), Some(&token), None).await;
    assert_eq!(debited.body["chargeState"], "charged", "{}", debited.body);
    let mut settled = Value::Null;
    for _ in 0..100 {
        settled = invoice(&app, &token, &uid).await;
        if settled["status"] == "paid" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(settled["status"], "paid", "{settled}");
    let rows = app.call(Method::GET, &format!("/api/invoices/{uid}/payments"), Some(&token), None).await;
    assert_eq!(rows.body["data"][0]["method"], "sepa_debit", "{}", rows.body);

    // A company with nothing saved: 409 naming the method.
    let initech = company(&app, &token, "Initech").await;
    let iid = issued_for(&app, &token, &initech, "Audit", 1_000).await;
    let nothing = app.call(Method::POST, &format!("/api/invoices/{iid}/charge"), Some(&token), None).await;
    assert_eq!(nothing.status, StatusCode::CONFLICT, "{}", nothing.body);
    assert_eq!(nothing.body["errors"][0]["field"], "paymentMethod", "{}", nothing.body);
    // Due to be charged, but paid by bank transfer first: the pass charges nothing and
    // clears the state.
    let transfer = app
        .call(Method::POST, &format!("/api/invoices/{iid}/payments"), Some(&token), Some(json!({"amount": 1_000})))
        .await;
    assert_eq!(transfer.status, StatusCode::CREATED, "{}", transfer.body);
    set_charge(&app, &iid, ChargeState::Due, 0, 0).await;
    let none_left = app.crm.billing().charge_due_invoices(gateway.as_ref()).await.unwrap();
    assert_eq!((none_left.charged, none_left.failed), (0, 0));
    let cleared = invoice(&app, &token, &iid).await;
    assert_eq!((cleared["status"].as_str(), cleared["chargeState"].as_str()), (Some("paid"), None), "{cleared}");
    let paid_one = app.call(Method::POST, &format!("/api/invoices/{id}/charge"), Some(&token), None).await;
    assert_eq!(paid_one.status, StatusCode::CONFLICT);
    assert_eq!(paid_one.body["errors"][0]["field"], "status", "{}", paid_one.body);

    // Forgotten: detached at Stripe, gone here.
    let gone = app.call(Method::DELETE, &format!("/api/companies/{acme}/payment-method"), Some(&token), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    let none = app.call(Method::GET, &format!("/api/companies/{acme}/payment-method"), Some(&token), None).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let customer = app.crm.billing().opened_profile(raw[0].clone()).unwrap().customer_ref;
    assert!(gateway.saved_methods(&customer).await.unwrap().is_empty());

    // Key rotation reaches the saved methods: with a new key current and the old one kept
    // as previous, `rotate_keys` seals the customers' and methods' ids again (every
    // profile, the forgotten one too); the new key alone then opens them and charges with them at
    // Stripe, and the old key alone no longer opens them.
    let due = issued_for(&app, &token, &umbrella, "Support, March", 4_500).await;
    let engine = |keys: FieldKeys| {
        let db = app.database_url();
        async move { crm_core::Crm::builder(Arc::new(SqlStore::connect(&db).await.unwrap())).billing_keys(keys).build() }
    };
    let profiles = |crm: crm_core::Crm| async move {
        let all = crm_core::query::StoreQuery { filter: None, sort: vec![], limit: 100, include_deleted: true };
        crm.store().list_as::<crm_core::model::billing::PaymentProfile>(&all).await.unwrap()
    };
    let before = profiles(app.crm.clone()).await;
    assert_eq!(before.len(), 3, "Umbrella's, Globex's and Acme's (forgotten, kept deleted)");
    let rotating = engine(FieldKeys::new(&[6; 32]).with_previous(&BILLING_KEY)).await;
    let n = rotating.billing().rotate_keys().await.unwrap();
    assert!(n >= 3, "{n} rows sealed again");
    assert_eq!(rotating.billing().rotate_keys().await.unwrap(), 0, "nothing left under the old key");
    let new_only = engine(FieldKeys::new(&[6; 32])).await;
    let after = profiles(new_only.clone()).await;
    assert_eq!(after.len(), 3);
    for new in &after {
        let old = before.iter().find(|p| p.id == new.id).unwrap();
        assert_ne!(old.customer_ref, new.customer_ref, "sealed again");
        let (was, is) = (
            app.crm.billing().opened_profile(old.clone()).unwrap(),
            new_only.billing().opened_profile(new.clone()).unwrap(),
        );
        assert_eq!((&was.customer_ref, &was.method_ref), (&is.customer_ref, &is.method_ref));
        assert!(app.crm.billing().opened_profile(new.clone()).is_err(), "the old key alone no longer opens it");
    }
    set_charge(&app, &due, ChargeState::Due, 0, 0).await;
    let charged = new_only.billing().charge_due_invoices(gateway.as_ref()).await.unwrap();
    assert_eq!((charged.charged, charged.failed), (1, 0), "{charged:?}");
    let settled =
        new_only.store().get_as::<crm_core::model::billing::Invoice>(due.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(settled.charge_state, Some(ChargeState::Charged));
}

/// The README's billing session (between its `billing walkthrough` markers), run as
/// written against the real binary on a fresh SQLite file, with localstripe as Stripe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_billing_session_runs_against_the_real_server() {
    let Some(ls) = localstripe().await else { return };
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("<!-- billing walkthrough -->").expect("the README's billing walkthrough marker");
    let end = readme.find("<!-- /billing walkthrough -->").expect("its end marker");
    let session = readme[start..end].split("```sh\n").nth(1).and_then(|b| b.split("```").next()).unwrap().to_string();
    let bin = env!("CARGO_BIN_EXE_crm-server");
    let dir = std::env::temp_dir().join(format!("crm-billing-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let admin = Command::new(bin)
        .current_dir(&dir)
        .args(["create-admin", "--username", "admin", "--email", "admin@example.com", "--password", PASSWORD])
        .output()
        .unwrap();
    assert!(admin.status.success(), "{}", String::from_utf8_lossy(&admin.stderr));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The keys the README starts the server with.
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut server = Command::new(bin)
        .current_dir(&dir)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("CRM_PUBLIC_URL", &base)
        .env("CRM_STRIPE_SECRET_KEY", "sk_test_demo")
        .env("CRM_STRIPE_PUBLISHABLE_KEY", "pk_test_demo")
        .env("CRM_STRIPE_WEBHOOK_SECRETS", "whsec_demo")
        .env("CRM_STRIPE_API_BASE", &ls.base)
        .env("CRM_STRIPE_JS_URL", format!("{}/js.stripe.com/v3/", ls.base))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let up = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(up.elapsed() < Duration::from_secs(30), "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (d, b, s) = (dir.clone(), base.clone(), ls.base.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .current_dir(&d)
            .env("CRM", &b)
            .env("STRIPE", &s)
            .args(["-euo", "pipefail", "-c", &session])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let server_log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "the README billing session failed\nstdout:\n{stdout}\nstderr:\n{}\nserver:\n{server_log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    // The issued invoice, `sent`, `succeeded`, the paid invoice.
    assert_eq!(lines.len(), 4, "{stdout}");
    let issued: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!((issued["status"].as_str(), issued["total"].as_i64()), (Some("issued"), Some(139_200)), "{stdout}");
    assert_eq!(&lines[1..3], ["sent", "succeeded"], "{stdout}");
    let paid: Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!((paid["status"].as_str(), paid["balance"].as_i64()), (Some("paid"), Some(0)), "{stdout}");
    let pdf = std::fs::read(dir.join("facture.pdf")).unwrap();
    assert!(pdf_extract::extract_text_from_mem(&pdf).unwrap().contains("Facture"));
    let mails: Vec<_> = std::fs::read_dir(dir.join("mail-outbox")).unwrap().flatten().collect();
    assert!(!mails.is_empty(), "the invoice was emailed into the mail directory");
    let _ = std::fs::remove_dir_all(&dir);
}
