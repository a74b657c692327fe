//! Billing: `/api/products`, `/api/billing/settings`, `/api/quotes`, `/api/invoices`
//! (with credit notes and their lifecycle), `/api/payments`, and the shortcuts from a
//! deal (`/api/deals/{id}/quote`, `/api/deals/{id}/invoice`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::Json;
use crm_core::billing::{
    CreditNoteInput, DocumentInput, InvoiceQuery, InvoiceView, IssueInput, PaymentInput, ProductInput, QuoteView,
    RefundInput, SettingsInput, VoidInput,
};
use crm_core::model::billing::{BillingSettings, Payment, Product};
use crm_core::Crm;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Type;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{optional_json, ApiJson, ApiPath, ApiQuery, Caller};
use crate::openapi::{query_param, Api, Spec};

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
            Spec::post("/api/payments/{id}/refund", B, "Give back (part of) a payment: the invoice is owed again")
                .optional_body::<RefundInput>()
                .created::<Payment>("The refund"),
            post(refund_payment),
        )
}

/// `{"data": [...]}`.
#[derive(Debug, Serialize)]
struct List<T> {
    data: Vec<T>,
}

fn created<T: Serialize>(path: String, v: T) -> Response {
    (StatusCode::CREATED, [(header::LOCATION, path)], Json(v)).into_response()
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
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: RefundInput = optional_json(&body)?;
    let p = crm.billing().refund_payment(caller.actor(), id, input).await?;
    Ok(created(format!("/api/payments/{}", p.id), p))
}
