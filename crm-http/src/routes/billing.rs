//! Billing: `/api/products`, `/api/billing/settings`, `/api/quotes`, `/api/invoices`
//! (with credit notes and their lifecycle), `/api/payments`, and the shortcuts from a
//! deal (`/api/deals/{id}/quote`, `/api/deals/{id}/invoice`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::Json;
use crm_core::billing::accounting::esc;
use crm_core::billing::charge::{CardSetup, ChargeReport, SavedPaymentMethod};
use crm_core::billing::currency::{InvoiceTotals, RateImport, RateInput};
use crm_core::billing::document::{self, DocOptions, DocumentData, SendDocumentInput};
use crm_core::billing::recurring::{RecurringReport, SubscriptionInput};
use crm_core::billing::PayIntent;
use crm_core::billing::{
    CreditNoteInput, DocumentInput, InvoiceQuery, InvoiceView, IssueInput, PaymentInput, ProductInput, QuoteView,
    RefundInput, SettingsInput, VoidInput,
};
use crm_core::model::billing::{BillingSettings, Payment, Product};
use crm_core::model::billing::{ExchangeRate, Subscription};
use crm_core::Crm;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Type;
use uuid::Uuid;

use super::{created, List};
use crate::error::ApiResult;
use crate::extract::{optional_json, ApiJson, ApiPath, ApiQuery, Caller};
use crate::openapi::{query_param, Api, Spec};
use crate::AppState;

/// The routes and their document.
pub fn api() -> Api {
    const B: &str = "billing";
    const P: &str = "/api/products/{id}";
    const Q: &str = "/api/quotes/{id}";
    const I: &str = "/api/invoices/{id}";
    let lines = serde_json::json!([
        {"name": "Pro plan seat", "quantity": 40, "unitPrice": 2900, "taxPercent": 20},
        {"name": "Onboarding", "unitPrice": 150000, "discountPercent": 10, "taxPercent": 20}
    ]);
    Api::new()
        .op(
            Spec::get("/api/products", B, "The product catalogue, by name")
                .query(vec![query_param("includeInactive", Type::Boolean, "Inactive products too")])
                .list::<Product>("The products"),
            get(products),
        )
        .op(
            Spec::post("/api/products", B, "A new product (managers and admins); prices in minor units")
                .body::<ProductInput>()
                .example(serde_json::json!({"sku": "PRO-SEAT", "name": "Pro plan seat", "unitPrice": 2900, "currency": "EUR", "taxPercent": 20, "unit": "seat"}))
                .created::<Product>("The product"),
            post(create_product),
        )
        .op(Spec::get(P, B, "One product").ok::<Product>("The product"), get(product))
        .op(Spec::patch(P, B, "Change a product (documents keep their lines)").body::<ProductInput>().ok::<Product>("The product"), patch(update_product))
        .op(Spec::delete(P, B, "Remove a product from the catalogue").empty(204, "Removed"), axum::routing::delete(delete_product))
        .op(Spec::get("/api/billing/settings", B, "The seller's details and billing defaults").ok::<BillingSettings>("The settings"), get(settings))
        .op(
            Spec::put("/api/billing/settings", B, "Change the seller's details and billing defaults (managers and admins)")
                .body::<SettingsInput>()
                .example(serde_json::json!({"seller": {"name": "Northwind SAS", "addressLines": ["12 rue de la Paix", "75002 Paris"], "country": "FR", "taxId": "FR40303265045", "email": "billing@northwind.example"}, "paymentTerms": "net_30", "paymentInstructions": "IBAN FR76 3000 6000 0112 3456 7890 189, BIC AGRIFRPP", "currency": "EUR"}))
                .ok::<BillingSettings>("The settings"),
            put(update_settings),
        )
        .op(
            Spec::get("/api/quotes", B, "Quotes the caller may read, newest first")
                .query(vec![query_param("dealId", Type::String, "Only this deal's")])
                .list::<QuoteView>("The quotes"),
            get(quotes),
        )
        .op(
            Spec::post("/api/quotes", B, "A draft quote for a company, contact or deal")
                .body::<DocumentInput>()
                .example(serde_json::json!({"dealId": "0190f3c4-5b6a-7c8d-9e0f-112233445566", "lines": lines}))
                .created::<QuoteView>("The quote"),
            post(create_quote),
        )
        .op(Spec::get(Q, B, "One quote").ok::<QuoteView>("The quote"), get(quote))
        .op(Spec::patch(Q, B, "Change a draft quote").body::<DocumentInput>().ok::<QuoteView>("The quote"), patch(update_quote))
        .op(Spec::delete(Q, B, "Delete a draft quote").empty(204, "Deleted"), axum::routing::delete(delete_quote))
        .op(
            Spec::post("/api/quotes/{id}/send", B, "Send a draft quote: it gets its QUO number and validity")
                .optional_body::<IssueInput>()
                .ok::<QuoteView>("The quote"),
            post(send_quote),
        )
        .op(Spec::post("/api/quotes/{id}/accept", B, "The customer accepted the quote").ok::<QuoteView>("The quote"), post(accept_quote))
        .op(Spec::post("/api/quotes/{id}/decline", B, "The customer declined the quote").ok::<QuoteView>("The quote"), post(decline_quote))
        .op(
            Spec::post("/api/quotes/{id}/invoice", B, "A draft invoice of an accepted quote (the quote becomes converted)")
                .created::<InvoiceView>("The invoice"),
            post(invoice_from_quote),
        )
        .op(Spec::post("/api/deals/{id}/quote", B, "A draft quote of a deal's line items").created::<QuoteView>("The quote"), post(quote_from_deal))
        .op(Spec::post("/api/deals/{id}/invoice", B, "A draft invoice of a won deal's line items").created::<InvoiceView>("The invoice"), post(invoice_from_deal))
        .op(
            Spec::get("/api/invoices", B, "Invoices and credit notes the caller may read, newest first")
                .query(vec![
                    query_param("status", Type::String, "Only this status: draft, issued, sent, partially_paid, paid, credited, void"),
                    query_param("docType", Type::String, "invoice or credit_note"),
                    query_param("companyId", Type::String, "Only this company's"),
                    query_param("dealId", Type::String, "Only this deal's"),
                    query_param("overdue", Type::Boolean, "Only issued, unpaid invoices past their due date"),
                    query_param("limit", Type::Integer, "At most this many (default 100, at most 1000)"),
                ])
                .list::<InvoiceView>("The invoices"),
            get(invoices),
        )
        .op(
            Spec::post("/api/invoices", B, "A draft invoice for a company, contact or deal (managers and admins)")
                .body::<DocumentInput>()
                .example(serde_json::json!({"companyId": "0190f3c4-5b6a-7c8d-9e0f-112233445566", "currency": "EUR", "paymentTerms": "net_30", "lines": lines}))
                .created::<InvoiceView>("The invoice"),
            post(create_invoice),
        )
        .op(Spec::get(I, B, "One invoice or credit note").ok::<InvoiceView>("The invoice"), get(invoice))
        .op(Spec::patch(I, B, "Change a draft invoice (an issued one is immutable except its payments)").body::<DocumentInput>().ok::<InvoiceView>("The invoice"), patch(update_invoice))
        .op(Spec::delete(I, B, "Delete a draft invoice").empty(204, "Deleted"), axum::routing::delete(delete_invoice))
        .op(
            Spec::post("/api/invoices/{id}/issue", B, "Issue a draft: its gapless number (INV-2026-000123) is allocated, customer and seller are frozen, the due date set from the terms")
                .optional_body::<IssueInput>()
                .ok::<InvoiceView>("The invoice"),
            post(issue_invoice),
        )
        .op(Spec::post("/api/invoices/{id}/sent", B, "Mark an issued invoice as sent to the customer").ok::<InvoiceView>("The invoice"), post(mark_sent))
        .op(
            Spec::post("/api/invoices/{id}/void", B, "Void an issued invoice nothing was paid or credited on")
                .optional_body::<VoidInput>()
                .ok::<InvoiceView>("The invoice"),
            post(void_invoice),
        )
        .op(
            Spec::post("/api/invoices/{id}/credit-notes", B, "A credit note reversing the invoice in whole (no lines) or in part (the lines credited); issued at once in the CN series")
                .optional_body::<CreditNoteInput>()
                .created::<InvoiceView>("The credit note"),
            post(credit_invoice),
        )
        .op(Spec::get("/api/invoices/{id}/payments", B, "An invoice's payments and refunds, newest first").list::<Payment>("The payments"), get(invoice_payments))
        .op(
            Spec::post("/api/invoices/{id}/payments", B, "Record money received (a bank transfer, cash, a cheque): at most the balance due (managers and admins)")
                .body::<PaymentInput>()
                .example(serde_json::json!({"amount": 50000, "method": "bank_transfer", "reference": "VIR-2026-1187"}))
                .created::<Payment>("The payment"),
            post(record_payment),
        )
        .op(Spec::get("/api/payments", B, "Payments and refunds the caller may read, newest first").list::<Payment>("The payments"), get(payments))
        .op(Spec::get("/api/payments/{id}", B, "One payment or refund").ok::<Payment>("The payment"), get(payment))
        .op(
            Spec::get("/api/invoices/{id}/pdf", B, "The invoice or credit note as a PDF laid out from the organisation's template (logo, colours, seller details, footer), in its language or `lang`")
                .query(vec![query_param("lang", Type::String, "en, fr or ar (default: the billing settings' language)")])
                .bytes("application/pdf", "The PDF"),
            get(invoice_pdf),
        )
        .op(
            Spec::get("/api/invoices/{id}/html", B, "The invoice or credit note as a standalone HTML page (the PDF's layout, for a browser or printing)")
                .query(vec![query_param("lang", Type::String, "en, fr or ar (default: the billing settings' language)")])
                .bytes("text/html", "The page"),
            get(invoice_html),
        )
        .op(
            Spec::post("/api/invoices/{id}/email", B, "Email an issued invoice or credit note with its PDF attached (to the customer's address unless `to` says), through the outbox; it is marked sent. The email and PDF link the pay page when online payment is configured")
                .optional_body::<SendDocumentInput>()
                .example(serde_json::json!({"to": "ap@acme.example", "cc": ["cfo@acme.example"], "message": "Thank you for your business.", "lang": "fr"}))
                .ok::<InvoiceView>("The invoice"),
            post(email_invoice),
        )
        .op(
            Spec::get("/api/quotes/{id}/pdf", B, "The quote as a PDF laid out from the organisation's template")
                .query(vec![query_param("lang", Type::String, "en, fr or ar (default: the billing settings' language)")])
                .bytes("application/pdf", "The PDF"),
            get(quote_pdf),
        )
        .op(
            Spec::get("/api/quotes/{id}/html", B, "The quote as a standalone HTML page")
                .query(vec![query_param("lang", Type::String, "en, fr or ar (default: the billing settings' language)")])
                .bytes("text/html", "The page"),
            get(quote_html),
        )
        .op(
            Spec::post("/api/quotes/{id}/email", B, "Email a sent (numbered) quote with its PDF attached, through the outbox")
                .optional_body::<SendDocumentInput>()
                .ok::<QuoteView>("The quote"),
            post(email_quote),
        )
        .op(
            Spec::get("/api/invoices/{id}/ubl", B, "An issued invoice or credit note as a UBL 2.1 document with the EN 16931 core fields, for accounting and e-invoicing")
                .bytes("application/xml", "The UBL document"),
            get(ubl),
        )
        .op(
            Spec::get("/api/billing/journal", B, "The double-entry journal (CSV) of the documents issued and the payments received between two dates: receivables, sales and VAT by rate, bank (managers and admins)")
                .query(vec![
                    query_param("from", Type::String, "First day (YYYY-MM-DD)"),
                    query_param("to", Type::String, "Last day (YYYY-MM-DD)"),
                ])
                .bytes("text/csv", "The journal"),
            get(journal),
        )
        .op(
            Spec::get("/api/exchange-rates", B, "The exchange rates stored, newest day first")
                .query(vec![query_param("base", Type::String, "Only this base currency"), query_param("quote", Type::String, "Only this quote currency")])
                .list::<ExchangeRate>("The rates"),
            get(rates),
        )
        .op(
            Spec::put("/api/exchange-rates", B, "Store a rate: 1 base = rate quote from date (the same pair and day replaces it)")
                .body::<RateInput>()
                .example(serde_json::json!({"base": "USD", "quote": "EUR", "date": "2026-01-02", "rate": "0.9235"}))
                .ok::<ExchangeRate>("The rate"),
            put(set_rate),
        )
        .op(
            Spec::post("/api/exchange-rates/import", B, "Import rates from CSV (`date,base,quote,rate`, a header line first); all or nothing, errors name the line and column")
                .bytes_body("text/csv")
                .ok::<RateImport>("What was stored"),
            post(import_rates),
        )
        .op(
            Spec::get("/api/invoices/totals", B, "Invoice totals (credit notes subtracted) in a reporting currency, each invoice at the rate of its issue date; a missing rate is 422 naming the pair and day")
                .query(vec![
                    query_param("currency", Type::String, "The reporting currency (default: the billing settings')"),
                    query_param("from", Type::String, "First issue date"),
                    query_param("to", Type::String, "Last issue date"),
                ])
                .ok::<InvoiceTotals>("The totals"),
            get(totals),
        )
        .op(
            Spec::get("/api/subscriptions", B, "Subscriptions the caller may read, newest first")
                .query(vec![query_param("companyId", Type::String, "Only this company's")])
                .list::<Subscription>("The subscriptions"),
            get(subscriptions),
        )
        .op(
            Spec::post("/api/subscriptions", B, "A company's recurring billing: its lines are invoiced once per period from the start date (month ends clamped), in its time zone")
                .body::<SubscriptionInput>()
                .example(serde_json::json!({"name": "Pro plan, 40 seats", "companyId": "0190f3c4-5b6a-7c8d-9e0f-112233445566", "frequency": "monthly", "startDate": "2027-01-31", "remainingCycles": 12, "timeZone": "Europe/Paris", "lines": [{"name": "Pro seat", "quantity": 40, "unitPrice": 2900, "taxPercent": 20}]}))
                .created::<Subscription>("The subscription"),
            post(create_subscription),
        )
        .op(Spec::get("/api/subscriptions/{id}", B, "One subscription").ok::<Subscription>("The subscription"), get(subscription))
        .op(
            Spec::patch("/api/subscriptions/{id}", B, "Pause (`status: paused`), resume (`active`), cancel, or change the lines, end or remaining periods")
                .body::<SubscriptionInput>()
                .ok::<Subscription>("The subscription"),
            patch(update_subscription),
        )
        .op(
            Spec::post("/api/subscriptions/run", B, "Invoice every period that has begun now, once (the scheduler does it every minute)")
                .ok::<RecurringReport>("What it did"),
            post(run_subscriptions),
        )
        .op(
            Spec::post("/api/invoices/{id}/pay-link", B, "The hosted pay page of an issued, unpaid invoice, for the customer (no sign-in; the link names this invoice only)")
                .ok::<PayLink>("The link"),
            post(pay_link),
        )
        .op(
            Spec::post("/api/payments/stripe/webhook", B, "Stripe's webhook: the `Stripe-Signature` header is verified (any configured secret, five minutes' tolerance), each event id is taken once and acted on after the answer; a payment is recorded only when Stripe, asked again, says the intent succeeded")
                .public()
                .bytes_body("application/json")
                .ok::<WebhookAck>("Taken in (or seen already)"),
            post(stripe_webhook),
        )
        .op(
            Spec::get("/pay/{token}", B, "The pay page of an invoice: its lines and balance, and a card form (Stripe.js) when a gateway is configured")
                .public()
                .bytes("text/html", "The page")
                .bytes_status(404, "text/html", "A forged or unknown link"),
            get(pay_page),
        )
        .op(
            Spec::get("/pay/{token}/invoice.pdf", B, "The invoice behind a pay link as a PDF, for the customer who holds the link")
                .public()
                .bytes("application/pdf", "The PDF"),
            get(payer_pdf),
        )
        .op(
            Spec::post("/pay/{token}/intent", B, "A payment intent for the balance of the invoice behind a pay link (what the pay page's script confirms with the gateway)")
                .public()
                .ok::<PayIntent>("The intent"),
            post(pay_intent),
        )
        .op(
            Spec::get("/pay/pay.js", B, "The pay page's script").public().bytes("text/javascript", "The script"),
            get(pay_script),
        )
        .op(
            Spec::post("/api/companies/{id}/card-link", B, "A link (valid a week) for the company's customer to save a card for later charges through the gateway's own form; the company gets its customer at the gateway (managers and admins)")
                .ok::<CardLinkView>("The link"),
            post(card_link),
        )
        .op(
            Spec::get("/api/companies/{id}/payment-method", B, "The payment method the company saved (its label; the gateway's ids stay sealed); 404 when none")
                .ok::<SavedPaymentMethod>("The method"),
            get(payment_method),
        )
        .op(
            Spec::delete("/api/companies/{id}/payment-method", B, "Forget the company's saved method, at the gateway too (managers and admins)")
                .empty(204, "Forgotten"),
            axum::routing::delete(remove_payment_method),
        )
        .op(
            Spec::post("/api/invoices/{id}/charge", B, "Charge what is left on an issued invoice to its company's saved method now (managers and admins): `chargeState` says `charged` or `failed` with `chargeError`")
                .ok::<InvoiceView>("The invoice"),
            post(charge_invoice),
        )
        .op(
            Spec::post("/api/invoices/charge-due", B, "Charge every invoice due to be charged (subscriptions with `autoCharge`), once (the payments loop does it every five seconds)")
                .ok::<ChargeReport>("What it did"),
            post(charge_due),
        )
        .op(
            Spec::get("/card/{token}", B, "The page where a company's customer saves a card (Stripe.js) for later charges")
                .public()
                .bytes("text/html", "The page")
                .bytes_status(404, "text/html", "A forged, unknown or expired link"),
            get(card_page),
        )
        .op(
            Spec::post("/card/{token}/setup", B, "Starts saving a card for the company behind a card link (what the card page's script confirms with the gateway)")
                .public()
                .ok::<CardSetup>("The setup"),
            post(card_setup),
        )
        .op(
            Spec::post("/card/{token}/saved", B, "The card page's word that the customer confirmed a setup: the server asks the gateway, which must say it succeeded for this company")
                .public()
                .body::<CardSavedInput>()
                .ok::<SavedPaymentMethod>("The method saved"),
            post(card_saved),
        )
        .op(
            Spec::get("/card/card.js", B, "The card page's script").public().bytes("text/javascript", "The script"),
            get(card_script),
        )
        .op(
            Spec::post("/api/payments/{id}/refund", B, "Give back (part of) a payment: the invoice is owed again")
                .optional_body::<RefundInput>()
                .created::<Payment>("The refund"),
            post(refund_payment),
        )
}

/// `?includeInactive=true`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductQuery {
    #[serde(default)]
    include_inactive: bool,
}

/// `?dealId=…`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DealQuery {
    deal_id: Option<Uuid>,
}

async fn products(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ProductQuery>,
) -> ApiResult<Json<List<Product>>> {
    Ok(Json(List { data: crm.billing().products(caller.actor(), q.include_inactive).await? }))
}

async fn create_product(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<ProductInput>,
) -> ApiResult<Response> {
    let p = crm.billing().create_product(caller.actor(), input).await?;
    Ok(created(format!("/api/products/{}", p.id), p))
}

async fn product(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Product>> {
    Ok(Json(crm.billing().product(caller.actor(), id).await?))
}

async fn update_product(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<ProductInput>,
) -> ApiResult<Json<Product>> {
    Ok(Json(crm.billing().update_product(caller.actor(), id, input).await?))
}

async fn delete_product(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    crm.billing().delete_product(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn settings(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<BillingSettings>> {
    Ok(Json(crm.billing().settings(caller.actor()).await?))
}

async fn update_settings(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<SettingsInput>,
) -> ApiResult<Json<BillingSettings>> {
    Ok(Json(crm.billing().update_settings(caller.actor(), input).await?))
}

async fn quotes(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DealQuery>,
) -> ApiResult<Json<List<QuoteView>>> {
    Ok(Json(List { data: crm.billing().quotes(caller.actor(), q.deal_id).await? }))
}

async fn create_quote(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<DocumentInput>,
) -> ApiResult<Response> {
    let q = crm.billing().create_quote(caller.actor(), input).await?;
    Ok(created(format!("/api/quotes/{}", q.quote.id), q))
}

async fn quote(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<QuoteView>> {
    Ok(Json(crm.billing().quote(caller.actor(), id).await?))
}

async fn update_quote(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<DocumentInput>,
) -> ApiResult<Json<QuoteView>> {
    Ok(Json(crm.billing().update_quote(caller.actor(), id, input).await?))
}

async fn delete_quote(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    crm.billing().delete_quote(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn send_quote(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Json<QuoteView>> {
    let input: IssueInput = optional_json(&body)?;
    Ok(Json(crm.billing().send_quote(caller.actor(), id, input).await?))
}

async fn accept_quote(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<QuoteView>> {
    Ok(Json(crm.billing().decide_quote(caller.actor(), id, true).await?))
}

async fn decline_quote(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<QuoteView>> {
    Ok(Json(crm.billing().decide_quote(caller.actor(), id, false).await?))
}

async fn invoice_from_quote(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Response> {
    let inv = crm.billing().invoice_from_quote(caller.actor(), id).await?;
    Ok(created(format!("/api/invoices/{}", inv.invoice.id), inv))
}

async fn quote_from_deal(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Response> {
    let q = crm.billing().quote_from_deal(caller.actor(), id).await?;
    Ok(created(format!("/api/quotes/{}", q.quote.id), q))
}

async fn invoice_from_deal(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Response> {
    let inv = crm.billing().invoice_from_deal(caller.actor(), id).await?;
    Ok(created(format!("/api/invoices/{}", inv.invoice.id), inv))
}

async fn invoices(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(q): ApiQuery<InvoiceQuery>,
) -> ApiResult<Json<List<InvoiceView>>> {
    Ok(Json(List { data: crm.billing().invoices(caller.actor(), q).await? }))
}

async fn create_invoice(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<DocumentInput>,
) -> ApiResult<Response> {
    let inv = crm.billing().create_invoice(caller.actor(), input).await?;
    Ok(created(format!("/api/invoices/{}", inv.invoice.id), inv))
}

async fn invoice(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<InvoiceView>> {
    Ok(Json(crm.billing().invoice(caller.actor(), id).await?))
}

async fn update_invoice(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<DocumentInput>,
) -> ApiResult<Json<InvoiceView>> {
    Ok(Json(crm.billing().update_invoice(caller.actor(), id, input).await?))
}

async fn delete_invoice(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    crm.billing().delete_invoice(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn issue_invoice(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Json<InvoiceView>> {
    let input: IssueInput = optional_json(&body)?;
    Ok(Json(crm.billing().issue_invoice(caller.actor(), id, input).await?))
}

async fn mark_sent(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<InvoiceView>> {
    Ok(Json(crm.billing().mark_sent(caller.actor(), id).await?))
}

async fn void_invoice(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Json<InvoiceView>> {
    let input: VoidInput = optional_json(&body)?;
    Ok(Json(crm.billing().void_invoice(caller.actor(), id, input).await?))
}

async fn credit_invoice(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreditNoteInput = optional_json(&body)?;
    let cn = crm.billing().credit_invoice(caller.actor(), id, input).await?;
    Ok(created(format!("/api/invoices/{}", cn.invoice.id), cn))
}

async fn invoice_payments(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<List<Payment>>> {
    Ok(Json(List { data: crm.billing().payments(caller.actor(), Some(id)).await? }))
}

async fn record_payment(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<PaymentInput>,
) -> ApiResult<Response> {
    let p = crm.billing().record_payment(caller.actor(), id, input).await?;
    Ok(created(format!("/api/payments/{}", p.id), p))
}

async fn payments(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<List<Payment>>> {
    Ok(Json(List { data: crm.billing().payments(caller.actor(), None).await? }))
}

async fn payment(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Payment>> {
    Ok(Json(crm.billing().payment(caller.actor(), id).await?))
}

async fn refund_payment(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: RefundInput = optional_json(&body)?;
    let gateway = state.payments.as_ref().map(|p| p.gateway.as_ref());
    let p = state.crm.billing().refund_payment_through(caller.actor(), id, input, gateway).await?;
    Ok(created(format!("/api/payments/{}", p.id), p))
}

/// A pay link.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayLink {
    /// The page the customer opens.
    pub url: String,
}

/// What the webhook answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAck {
    /// Always true: the event is stored.
    pub received: bool,
    /// The event id was taken in before (Stripe retried): nothing more is done.
    pub duplicate: bool,
}

async fn pay_link(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<PayLink>> {
    let path = state.crm.billing().pay_path(caller.actor(), id).await?;
    Ok(Json(PayLink { url: format!("{}{path}", state.public_url) }))
}

fn problem(status: StatusCode, code: &'static str, field: &str, message: &str) -> Response {
    crate::error::ApiError::new(status, code, message.to_string()).with_field(field, code, message).into_response()
}

async fn stripe_webhook(State(state): State<AppState>, headers: axum::http::HeaderMap, body: Bytes) -> Response {
    let Some(payments) = state.payments.clone().filter(|p| p.gateway.name() == "stripe") else {
        return problem(StatusCode::NOT_FOUND, "not_found", "gateway", "Stripe is not configured on this server");
    };
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let now = state.crm.now().timestamp();
    if let Err(e) = crm_core::billing::gateway::verify_stripe_signature(
        header,
        &body,
        &payments.webhook_secrets,
        now,
        payments.tolerance,
    ) {
        tracing::warn!(reason = %e, "a Stripe webhook was refused");
        return problem(StatusCode::BAD_REQUEST, "invalid_signature", "Stripe-Signature", &e.to_string());
    }
    let fresh = match state.crm.billing().receive_gateway_event("stripe", &body).await {
        Ok(f) => f,
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    if fresh {
        // Answer now; act after (Stripe wants a 2xx within seconds). A crash before
        // acting leaves the event queued: the payments loop takes it up.
        let crm = state.crm.clone();
        tokio::spawn(async move {
            if let Err(e) = crm.billing().process_gateway_events(payments.gateway.as_ref()).await {
                tracing::warn!(error = %e, "acting on Stripe events failed; they stay queued");
            }
        });
    }
    Json(WebhookAck { received: true, duplicate: !fresh }).into_response()
}

fn money(amount: i64, currency: &crm_core::values::Currency) -> String {
    format!("{} {}", crm_core::billing::accounting::decimal(amount, currency), currency.code())
}

fn pay_html(status: StatusCode, title: &str, body: &str, script: Option<&str>) -> Response {
    page_html(status, title, body, script, "/pay/pay.js")
}

/// A page for the customer (pay, save a card): its own styles, the gateway's script and
/// `own` (the page's script) when `script` is given.
fn page_html(status: StatusCode, title: &str, body: &str, script: Option<&str>, own: &str) -> Response {
    let scripts = match script {
        Some(js) => format!("<script defer src=\"{}\"></script><script defer src=\"{own}\"></script>", esc(js)),
        None => String::new(),
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}}\
table{{width:100%;border-collapse:collapse}}td,th{{padding:.3rem;border-bottom:1px solid #ddd;text-align:left}}td.n,th.n{{text-align:right}}\
button{{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #888;background:#fff;cursor:pointer}}#card{{padding:.7rem;border:1px solid #ccc;border-radius:6px;margin:1rem 0}}label{{display:block;margin:.5rem 0}}input{{font-size:1rem;padding:.3rem}}</style>{scripts}</head>\
<body><h1>{title}</h1>{body}</body></html>"
    );
    // Its own styles, Stripe.js and its own script; Stripe's frames; calls to itself and Stripe.
    let origin =
        script.and_then(|s| url::Url::parse(s).ok()).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'self' {origin}; frame-src {origin} https://js.stripe.com https://hooks.stripe.com; connect-src 'self' {origin} https://api.stripe.com; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    (
        status,
        [(header::CACHE_CONTROL, "no-store".to_string()), (header::CONTENT_SECURITY_POLICY, csp)],
        axum::response::Html(html),
    )
        .into_response()
}

async fn pay_page(State(state): State<AppState>, ApiPath(token): ApiPath<String>) -> ApiResult<Response> {
    let Some(inv) = state.crm.billing().invoice_for_payer(&token).await? else {
        return Ok(pay_html(
            StatusCode::NOT_FOUND,
            "Link not recognised",
            "<p>This payment link is not valid. Copy the whole link from the email, or reply to the sender.</p>",
            None,
        ));
    };
    let number = inv.number.clone().unwrap_or_default();
    let mut rows = String::new();
    for l in &inv.lines {
        rows.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&l.name),
            l.quantity,
            money(l.total, &inv.currency)
        ));
    }
    let summary = format!(
        "<p>{} → {}</p><table><tr><th>Item</th><th class=\"n\">Qty</th><th class=\"n\">Amount</th></tr>{rows}\
<tr><th colspan=\"2\">Total</th><th class=\"n\">{}</th></tr><tr><th colspan=\"2\">Paid</th><td class=\"n\">{}</td></tr>\
<tr><th colspan=\"2\">Due{}</th><th class=\"n\" id=\"due\">{}</th></tr></table>",
        esc(&inv.seller.name),
        esc(&inv.customer.name),
        money(inv.total, &inv.currency),
        money(inv.amount_paid + inv.amount_credited, &inv.currency),
        inv.due_date.map(|d| format!(" by {d}")).unwrap_or_default(),
        money(inv.balance.max(0), &inv.currency),
    );
    let summary =
        format!("{summary}<p><a href=\"/pay/{}/invoice.pdf\" download>Download the invoice (PDF)</a></p>", esc(&token));
    let title = format!("Invoice {}", esc(&number));
    let payable = matches!(
        inv.status,
        crm_core::model::billing::InvoiceStatus::Issued
            | crm_core::model::billing::InvoiceStatus::Sent
            | crm_core::model::billing::InvoiceStatus::PartiallyPaid
    ) && inv.balance > 0;
    let (body, script) = match (&state.payments, payable) {
        (_, false) => (format!("{summary}<p><strong>Nothing is left to pay. Thank you.</strong></p>"), None),
        (Some(p), true) => (
            format!("{summary}<form id=\"pay\" data-intent=\"/pay/{}/intent\"><div id=\"card\"></div><button type=\"submit\">Pay {}</button></form><p id=\"status\" role=\"status\"></p>", esc(&token), money(inv.balance, &inv.currency)),
            p.gateway.script_url(),
        ),
        (None, true) => (
            format!("{summary}<p>{}</p>", esc(inv.payment_instructions.as_deref().unwrap_or("Pay by bank transfer; the seller's details are on the invoice."))),
            None,
        ),
    };
    Ok(pay_html(StatusCode::OK, &title, &body, script.as_deref()))
}

async fn payer_pdf(State(crm): State<Crm>, ApiPath(token): ApiPath<String>) -> ApiResult<Response> {
    match crm.billing().payer_document(&token).await? {
        Some(d) => pdf_response(d).await,
        None => Err(crm_core::Error::NotFound { entity: "invoice" }.into()),
    }
}

async fn pay_intent(State(state): State<AppState>, ApiPath(token): ApiPath<String>) -> ApiResult<Json<PayIntent>> {
    let Some(p) = state.payments.clone() else {
        return Err(crm_core::Error::NotFound { entity: "payment gateway" }.into());
    };
    Ok(Json(state.crm.billing().pay_intent(p.gateway.as_ref(), &token).await?))
}

/// The pay page's script: asks for an intent, mounts Stripe's card field, confirms.
const PAY_JS: &str = r#"(function () {
  var form = document.getElementById('pay');
  var status = document.getElementById('status');
  if (!form || typeof Stripe === 'undefined') return;
  fetch(form.dataset.intent, { method: 'POST' }).then(function (r) { return r.json(); }).then(function (intent) {
    if (!intent.clientSecret) { status.textContent = intent.detail || 'Payment is not available.'; return; }
    var stripe = Stripe(intent.publicKey);
    var card = stripe.elements().create('card');
    card.mount('#card');
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      status.textContent = 'Paying…';
      stripe.confirmCardPayment(intent.clientSecret, { payment_method: { card: card } }).then(function (res) {
        status.textContent = res.error ? res.error.message : 'Payment received. Thank you — the invoice is updated in a moment.';
      });
    });
  });
})();
"#;

async fn pay_script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAY_JS)
        .into_response()
}

/// A card link.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardLinkView {
    /// The page the customer opens.
    pub url: String,
    /// When it stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// What the card page sends once the gateway confirmed the setup.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardSavedInput {
    /// The setup's id (`seti_…`).
    pub setup_intent_id: String,
}

/// The configured gateway, or 409 naming `gateway`.
fn gateway(
    state: &AppState,
) -> Result<std::sync::Arc<dyn crm_core::billing::gateway::PaymentGateway>, crm_core::Error> {
    state.payments.as_ref().map(|p| p.gateway.clone()).ok_or_else(|| crm_core::Error::Conflict {
        message: "online payment is not configured on this server".into(),
        field: Some("gateway".into()),
    })
}

async fn card_link(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CardLinkView>> {
    let gw = gateway(&state)?;
    let link = state.crm.billing().card_link(caller.actor(), gw.as_ref(), id).await?;
    Ok(Json(CardLinkView { url: format!("{}{}", state.public_url, link.path), expires_at: link.expires_at }))
}

async fn payment_method(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SavedPaymentMethod>> {
    let name = state.payments.as_ref().map(|p| p.gateway.name()).unwrap_or("stripe");
    match state.crm.billing().payment_method(caller.actor(), id, name).await? {
        Some(m) => Ok(Json(m)),
        None => Err(crm_core::Error::NotFound { entity: "payment method" }.into()),
    }
}

async fn remove_payment_method(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let gw = gateway(&state)?;
    state.crm.billing().remove_payment_method(caller.actor(), gw.as_ref(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn charge_invoice(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<InvoiceView>> {
    let gw = gateway(&state)?;
    Ok(Json(state.crm.billing().charge_invoice(caller.actor(), gw.as_ref(), id).await?))
}

async fn charge_due(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<ChargeReport>> {
    let gw = gateway(&state)?;
    Ok(Json(state.crm.billing().charge_due_invoices_as(caller.actor(), gw.as_ref()).await?))
}

async fn card_page(State(state): State<AppState>, ApiPath(token): ApiPath<String>) -> ApiResult<Response> {
    let name = state.payments.as_ref().map(|p| p.gateway.name()).unwrap_or("stripe");
    let Some((company, saved)) = state.crm.billing().card_holder(&token, name).await? else {
        return Ok(page_html(
            StatusCode::NOT_FOUND,
            "Link not recognised",
            "<p>This link is not valid or has expired. Ask the sender for a new one.</p>",
            None,
            "/card/card.js",
        ));
    };
    let named = state.crm.billing().seller_name().await?.map(|n| esc(&n));
    let (seller, the_seller) = match named {
        Some(n) => (n.clone(), n),
        None => ("The seller".to_string(), "the seller".to_string()),
    };
    let now = match &saved {
        Some(m) => format!("<p>On file now: <strong>{}</strong>. Saving another replaces it.</p>", esc(&m.label)),
        None => String::new(),
    };
    let intro = format!(
        "<p>{} will charge the invoices of <strong>{}</strong> to the card or bank account you save here, when they \
are issued. The details go to the payment provider, not to this site.</p>{now}",
        seller,
        esc(&company.name),
    );
    let Some(p) = &state.payments else {
        return Ok(page_html(
            StatusCode::OK,
            "Save a payment method",
            &format!("{intro}<p>Online payment is not available.</p>"),
            None,
            "/card/card.js",
        ));
    };
    // SEPA Direct Debit: the IBAN goes from the browser to Stripe (Stripe.js), with the
    // mandate the customer accepts by saving it.
    let sepa = format!(
        "<h2>Or a bank account (SEPA Direct Debit)</h2><form id=\"sepa-form\">\
<label>Account holder <input name=\"name\" autocomplete=\"name\" required></label>\
<label>Email <input name=\"email\" type=\"email\" autocomplete=\"email\" required></label>\
<label>IBAN <input name=\"iban\" autocomplete=\"off\" spellcheck=\"false\" required></label>\
<p><small>By saving your IBAN you authorise {seller} and Stripe, its payment provider, to send instructions to your \
bank to debit your account for the invoices of {company}, and your bank to debit it accordingly. You are entitled to \
a refund from your bank under the terms of your agreement with it; a refund must be claimed within eight weeks of \
the date your account was debited.</small></p><button type=\"submit\">Save the account</button></form>",
        seller = the_seller,
        company = esc(&company.name),
    );
    let body = format!(
        "{intro}<form id=\"card-form\" data-setup=\"/card/{t}/setup\" data-saved=\"/card/{t}/saved\"><div id=\"card\"></div><button type=\"submit\">Save the card</button></form>{sepa}<p id=\"status\" role=\"status\"></p>",
        t = esc(&token)
    );
    Ok(page_html(StatusCode::OK, "Save a payment method", &body, p.gateway.script_url().as_deref(), "/card/card.js"))
}

async fn card_setup(State(state): State<AppState>, ApiPath(token): ApiPath<String>) -> ApiResult<Json<CardSetup>> {
    let gw = state
        .payments
        .as_ref()
        .map(|p| p.gateway.clone())
        .ok_or(crm_core::Error::NotFound { entity: "payment gateway" })?;
    Ok(Json(state.crm.billing().card_setup(gw.as_ref(), &token).await?))
}

async fn card_saved(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ApiJson(input): ApiJson<CardSavedInput>,
) -> ApiResult<Json<SavedPaymentMethod>> {
    let gw = state
        .payments
        .as_ref()
        .map(|p| p.gateway.clone())
        .ok_or(crm_core::Error::NotFound { entity: "payment gateway" })?;
    Ok(Json(state.crm.billing().card_saved(gw.as_ref(), &token, &input.setup_intent_id).await?))
}

/// The card page's script: asks for a setup, mounts Stripe's card field, confirms it
/// with Stripe, then tells the server (which asks Stripe again).
const CARD_JS: &str = r#"(function () {
  var form = document.getElementById('card-form');
  var sepa = document.getElementById('sepa-form');
  var status = document.getElementById('status');
  if (!form || typeof Stripe === 'undefined') return;
  fetch(form.dataset.setup, { method: 'POST' }).then(function (r) { return r.json(); }).then(function (setup) {
    if (!setup.clientSecret) { status.textContent = setup.detail || 'Saving a payment method is not available.'; return; }
    var stripe = Stripe(setup.publicKey);
    var card = stripe.elements().create('card');
    card.mount('#card');
    function saved(res) {
      if (res.error) { status.textContent = res.error.message; return; }
      return fetch(form.dataset.saved, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ setupIntentId: res.setupIntent.id })
      }).then(function (r) { return r.json(); }).then(function (m) {
        status.textContent = m.label ? 'Saved: ' + m.label + '. Thank you.' : (m.detail || 'It could not be saved.');
      });
    }
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      status.textContent = 'Saving…';
      stripe.confirmCardSetup(setup.clientSecret, { payment_method: { card: card } }).then(saved);
    });
    sepa.addEventListener('submit', function (e) {
      e.preventDefault();
      status.textContent = 'Saving…';
      stripe.confirmSepaDebitSetup(setup.clientSecret, { payment_method: {
        sepa_debit: { iban: sepa.elements.iban.value.replace(/\s+/g, '') },
        billing_details: { name: sepa.elements.name.value, email: sepa.elements.email.value }
      } }).then(saved);
    });
  });
})();
"#;

async fn card_script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], CARD_JS)
        .into_response()
}

/// `?companyId=…`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompanyQuery {
    company_id: Option<Uuid>,
}

async fn subscriptions(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CompanyQuery>,
) -> ApiResult<Json<List<Subscription>>> {
    Ok(Json(List { data: crm.billing().subscriptions(caller.actor(), q.company_id).await? }))
}

async fn create_subscription(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<SubscriptionInput>,
) -> ApiResult<Response> {
    let s = crm.billing().create_subscription(caller.actor(), input).await?;
    Ok(created(format!("/api/subscriptions/{}", s.id), s))
}

async fn subscription(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(crm.billing().subscription(caller.actor(), id).await?))
}

async fn update_subscription(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<SubscriptionInput>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(crm.billing().update_subscription(caller.actor(), id, input).await?))
}

async fn run_subscriptions(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<RecurringReport>> {
    Ok(Json(crm.billing().run_subscriptions_as(caller.actor()).await?))
}

/// `?lang=…`.
#[derive(Debug, Default, Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

impl LangQuery {
    /// The document options of the query (the engine checks the language).
    fn options(self) -> DocOptions {
        DocOptions { lang: self.lang, ..DocOptions::default() }
    }
}

/// A laid-out document, shown in the browser and saved under its number.
async fn pdf_response(d: DocumentData) -> ApiResult<Response> {
    let file = document::file(d).await?;
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"{}\"", file.name)),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        file.bytes,
    )
        .into_response())
}

fn html_response(d: &DocumentData) -> ApiResult<Response> {
    let page = document::html(d)?;
    Ok((
        [(header::CACHE_CONTROL, "private, no-store".to_string()), (header::CONTENT_SECURITY_POLICY, page.csp)],
        Html(page.html),
    )
        .into_response())
}

async fn invoice_pdf(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<LangQuery>,
) -> ApiResult<Response> {
    pdf_response(crm.billing().invoice_document(caller.actor(), id, q.options()).await?).await
}

async fn invoice_html(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<LangQuery>,
) -> ApiResult<Response> {
    html_response(&crm.billing().invoice_document(caller.actor(), id, q.options()).await?)
}

async fn quote_pdf(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<LangQuery>,
) -> ApiResult<Response> {
    pdf_response(crm.billing().quote_document(caller.actor(), id, q.options()).await?).await
}

async fn quote_html(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<LangQuery>,
) -> ApiResult<Response> {
    html_response(&crm.billing().quote_document(caller.actor(), id, q.options()).await?)
}

async fn email_invoice(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Json<InvoiceView>> {
    let input: SendDocumentInput = optional_json(&body)?;
    let pay_link = state.payments.is_some();
    Ok(Json(state.crm.billing().email_invoice(caller.actor(), id, input, pay_link).await?))
}

async fn email_quote(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Json<QuoteView>> {
    let input: SendDocumentInput = optional_json(&body)?;
    Ok(Json(crm.billing().email_quote(caller.actor(), id, input).await?))
}

async fn ubl(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Response> {
    let (name, xml) = crm.billing().ubl(caller.actor(), id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/xml; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        xml,
    )
        .into_response())
}

/// `?from=…&to=…`.
#[derive(Debug, Default, Deserialize)]
struct JournalQuery {
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
}

async fn journal(State(crm): State<Crm>, caller: Caller, ApiQuery(q): ApiQuery<JournalQuery>) -> ApiResult<Response> {
    let csv = crm.billing().journal(caller.actor(), q.from, q.to).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"journal.csv\"".to_string()),
        ],
        csv,
    )
        .into_response())
}

/// `?base=…&quote=…`.
#[derive(Debug, Default, Deserialize)]
struct PairQuery {
    base: Option<String>,
    quote: Option<String>,
}

async fn rates(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PairQuery>,
) -> ApiResult<Json<List<ExchangeRate>>> {
    Ok(Json(List { data: crm.billing().rates(caller.actor(), q.base, q.quote).await? }))
}

async fn set_rate(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<RateInput>,
) -> ApiResult<Json<ExchangeRate>> {
    Ok(Json(crm.billing().set_rate(caller.actor(), input).await?))
}

async fn import_rates(State(crm): State<Crm>, caller: Caller, body: Bytes) -> ApiResult<Json<RateImport>> {
    let text =
        std::str::from_utf8(&body).map_err(|_| crm_core::Error::invalid("body", "invalid_format", "CSV in UTF-8"))?;
    Ok(Json(crm.billing().import_rates(caller.actor(), text).await?))
}

/// `?currency=…&from=…&to=…`.
#[derive(Debug, Default, Deserialize)]
struct TotalsQuery {
    currency: Option<String>,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
}

async fn totals(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TotalsQuery>,
) -> ApiResult<Json<InvoiceTotals>> {
    Ok(Json(crm.billing().totals(caller.actor(), q.currency, q.from, q.to).await?))
}
