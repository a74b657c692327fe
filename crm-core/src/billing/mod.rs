//! Billing: the product catalogue, quotes, invoices and credit notes with gapless
//! numbers, and the payments and refunds that settle them (`crm.billing()`).
//!
//! - A document is a **draft** until it is issued: every field may change, it has no
//!   number, it may be deleted. Issuing freezes it — the customer and seller are
//!   copied in, the number is allocated — and from then on only payments and credit
//!   notes change it (`balance`, `status`); a mistake is corrected by a credit note, or
//!   by voiding it while nothing was paid.
//! - **Numbers** (`INV-2026-000123`) come from one [`BillingSequence`] row per series
//!   and year, raised in the same changeset as the document it numbers: a number is
//!   used only when its document is stored, so there are no gaps, and the row's
//!   version makes a second issuer of the same number fail and retry with the next.
//! - **Money** is integer minor units; see [`money`] for the rounding rule.
//! - **Who**: managers and admins make, issue, void and record payments (the `Billing`
//!   resource); users read the documents of the deals and companies they own (a
//!   document is owned by its deal's, else its company's, else its contact's owner).

pub mod accounting;
pub mod charge;
pub mod crypt;
pub mod currency;
pub mod document;
#[cfg(feature = "analytics")]
pub mod frames;
pub mod gateway;
pub mod locale;
pub mod money;
pub mod recurring;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::error::{Error, Errors, Result};
use crate::ids::{TeamId, UserId};
use crate::model::billing::{
    BillLine, BillingSequence, BillingSettings, DocumentType, Invoice, InvoiceStatus, Party, Payment, PaymentKind,
    PaymentMethod, PaymentTerms, Product, Quote, QuoteStatus,
};
use crate::model::company::Company;
use crate::model::contact::Contact;
use crate::model::deal::{Deal, DealStage};
use crate::model::JsonObject;
use crate::policy::{Action, Actor, Ownership, Resource, Scope};
use crate::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
use crate::schema::{to_row, EntityKind, Value, NAME_CHARS};
use crate::service::Crm;
use crate::store::{Changeset, StoreExt, Write};
use crate::values::{Currency, Percent};

/// How often an issue, a payment or a credit note is tried again when another writer
/// took the number or changed the invoice first.
const ATTEMPTS: u32 = 200;

/// A product's fields (all for a new one; those to change for an update).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductInput {
    /// The unique SKU: letters, digits, `.`, `_`, `-`.
    pub sku: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// A longer description.
    pub description: Option<String>,
    /// The price of one unit in minor units.
    pub unit_price: Option<i64>,
    /// ISO 4217 (default: the billing settings' currency).
    pub currency: Option<String>,
    /// The default tax rate of its lines.
    pub tax_percent: Option<Percent>,
    /// What one unit is.
    pub unit: Option<String>,
    /// Offered on new documents (default true).
    pub active: Option<bool>,
    /// For updates: the version the change was made from.
    pub version: Option<i64>,
}

/// A line as the client writes it: a product (its name, price and tax rate are the
/// defaults) or a free line (name and unit price required).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineInput {
    /// A catalogue product in the document's currency.
    pub product_id: Option<Uuid>,
    /// What is sold (default: the product's name).
    pub name: Option<String>,
    /// More about it.
    pub description: Option<String>,
    /// How many (default 1).
    pub quantity: Option<i64>,
    /// What one unit is.
    pub unit: Option<String>,
    /// Price of one in minor units (default: the product's).
    pub unit_price: Option<i64>,
    /// Discount on the line (default 0).
    pub discount_percent: Option<Percent>,
    /// Tax on the discounted line (default: the product's, else 0).
    pub tax_percent: Option<Percent>,
    /// A stored line's product and SKU, kept as they were when the line is copied to
    /// another document (never read from JSON).
    #[serde(skip)]
    pub kept: Option<(Uuid, Option<String>)>,
}

/// An invoice's or a quote's fields (all for a new one; those to change on a draft).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentInput {
    /// The customer company.
    pub company_id: Option<Uuid>,
    /// The customer contact (default: the deal's primary contact).
    pub contact_id: Option<Uuid>,
    /// The deal billed (its company and contact are the defaults).
    pub deal_id: Option<Uuid>,
    /// ISO 4217 (default: the deal's, else the billing settings').
    pub currency: Option<String>,
    /// The lines.
    pub lines: Option<Vec<LineInput>>,
    /// Invoices: when it falls due (default `net_30` or the settings').
    pub payment_terms: Option<String>,
    /// Invoices: a due date that overrides the terms' (on or after the issue date).
    pub due_date: Option<NaiveDate>,
    /// Invoices: how to pay (default: the settings').
    pub payment_instructions: Option<String>,
    /// Invoices: the number series (`INV` by default; 1 to 10 capitals or digits).
    pub series: Option<String>,
    /// Quotes: the last day it may be accepted (default: sent + the settings' days).
    pub valid_until: Option<NaiveDate>,
    /// A note printed on it.
    pub notes: Option<String>,
    /// For updates: the version the change was made from.
    pub version: Option<i64>,
}

/// What issuing may say.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueInput {
    /// The issue date (default today, UTC); its year picks the number's year.
    pub issue_date: Option<NaiveDate>,
    /// The version the caller saw.
    pub version: Option<i64>,
}

/// Why an invoice is voided.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VoidInput {
    /// The reason, kept on the invoice and in the audit log.
    pub reason: Option<String>,
}

/// A credit note against an invoice.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditNoteInput {
    /// The lines credited; absent: the whole invoice (when nothing was credited yet).
    pub lines: Option<Vec<LineInput>>,
    /// Why.
    pub reason: Option<String>,
    /// Its issue date (default today).
    pub issue_date: Option<NaiveDate>,
}

/// A payment a manager records (a bank transfer received, cash, a cheque).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentInput {
    /// Minor units of the invoice's currency; at most the balance due.
    pub amount: Option<i64>,
    /// How (default `bank_transfer`).
    pub method: Option<String>,
    /// The bank reference; one payment per reference.
    pub reference: Option<String>,
    /// When the money arrived (default now).
    pub received_at: Option<DateTime<Utc>>,
    /// A note.
    pub note: Option<String>,
}

/// A refund of (part of) a payment.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundInput {
    /// Minor units (default: all that is left of the payment).
    pub amount: Option<i64>,
    /// A note.
    pub note: Option<String>,
}

/// The seller's details and defaults, as an admin or manager sets them.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsInput {
    /// The seller printed on documents.
    pub seller: Option<Party>,
    /// Default payment terms.
    pub payment_terms: Option<String>,
    /// Default payment instructions.
    pub payment_instructions: Option<String>,
    /// Default currency.
    pub currency: Option<String>,
    /// Days a quote stays valid (1 to 365).
    pub quote_validity_days: Option<i64>,
    /// A footer on every document.
    pub footer: Option<String>,
    /// `#rrggbb`.
    pub accent_color: Option<String>,
    /// A `data:image/png;base64,…`, `data:image/jpeg;…` or `data:image/svg+xml;…` URL.
    pub logo: Option<String>,
    /// `en`, `fr` or `ar`.
    pub language: Option<String>,
    /// The version the change was made from.
    pub version: Option<i64>,
}

/// Which invoices a list shows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only invoices or only credit notes.
    pub doc_type: Option<String>,
    /// Only this company's.
    pub company_id: Option<Uuid>,
    /// Only this deal's.
    pub deal_id: Option<Uuid>,
    /// Only overdue ones (issued, unpaid, past their due date).
    pub overdue: Option<bool>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// An invoice as the API shows it: the stored document and what is computed from the
/// date.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InvoiceView {
    /// The invoice.
    #[serde(flatten)]
    pub invoice: Invoice,
    /// Issued, not settled, past its due date.
    pub overdue: bool,
    /// Days since the due date when overdue, else 0.
    pub days_overdue: i64,
}

/// A quote as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct QuoteView {
    /// The quote.
    #[serde(flatten)]
    pub quote: Quote,
    /// Sent, not decided, past its validity.
    pub expired: bool,
}

/// Products, quotes, invoices, credit notes and payments.
#[derive(Debug, Clone, Copy)]
pub struct BillingService<'a> {
    pub(crate) crm: &'a Crm,
}

impl Crm {
    /// Billing: products, quotes, invoices, credit notes, payments.
    pub fn billing(&self) -> BillingService<'_> {
        BillingService { crm: self }
    }
}

/// The id of a series' row for a year: the same however often it is computed.
pub fn sequence_id(series: &str, year: i32) -> Uuid {
    crate::ids::derived_id(&[b"billing.sequence:", series.as_bytes(), b":", year.to_string().as_bytes()])
}

/// A document number: `INV-2026-000123`.
pub fn format_number(series: &str, year: i32, n: i64) -> String {
    format!("{series}-{year}-{n:06}")
}

/// Recomputes an issued invoice's balance, status and paid date from its amounts.
pub fn settle(inv: &mut Invoice, now: DateTime<Utc>) {
    inv.balance = inv.total - inv.amount_paid - inv.amount_credited;
    if matches!(inv.status, InvoiceStatus::Draft | InvoiceStatus::Void) {
        return;
    }
    if inv.doc_type == DocumentType::CreditNote {
        return;
    }
    inv.status = if inv.amount_credited >= inv.total && inv.amount_paid == 0 && inv.total > 0 {
        InvoiceStatus::Credited
    } else if inv.balance <= 0 {
        InvoiceStatus::Paid
    } else if inv.amount_paid > 0 {
        InvoiceStatus::PartiallyPaid
    } else if inv.sent_at.is_some() {
        InvoiceStatus::Sent
    } else {
        InvoiceStatus::Issued
    };
    if inv.status == InvoiceStatus::Paid {
        inv.paid_at = inv.paid_at.or(Some(now));
    } else {
        inv.paid_at = None;
    }
}

/// Is an invoice with this status still owed money?
fn open(status: InvoiceStatus) -> bool {
    matches!(status, InvoiceStatus::Issued | InvoiceStatus::Sent | InvoiceStatus::PartiallyPaid)
}

impl InvoiceView {
    /// The view of an invoice on `today`.
    pub fn of(invoice: Invoice, today: NaiveDate) -> Self {
        let days = match invoice.due_date {
            Some(due) if open(invoice.status) && invoice.doc_type == DocumentType::Invoice && due < today => {
                (today - due).num_days()
            }
            _ => 0,
        };
        InvoiceView { invoice, overdue: days > 0, days_overdue: days }
    }
}

impl QuoteView {
    /// The view of a quote on `today`.
    pub fn of(quote: Quote, today: NaiveDate) -> Self {
        let expired = quote.status == QuoteStatus::Sent && quote.valid_until.is_some_and(|d| d < today);
        QuoteView { quote, expired }
    }
}

use crate::service::input::text;

/// A required text: trimmed, present, at most `max` characters; errors name `field`.
fn required(errs: &mut Errors, field: &str, v: Option<String>, max: usize) -> Option<String> {
    let s = crate::service::input::required(errs, field, v.as_deref().unwrap_or(""), max);
    (!s.is_empty()).then_some(s)
}

fn parse_enum<E: std::str::FromStr>(errs: &mut Errors, field: &str, v: Option<String>, choices: &[&str]) -> Option<E> {
    let raw = v?;
    match raw.trim().parse::<E>() {
        Ok(e) => Some(e),
        Err(_) => {
            errs.add(field, "invalid_value", format!("'{raw}' is not one of {}", choices.join(", ")));
            None
        }
    }
}

fn currency(errs: &mut Errors, field: &str, v: Option<String>) -> Option<Currency> {
    let raw = v?;
    match Currency::parse(&raw) {
        Ok(c) => Some(c),
        Err(_) => {
            errs.add(field, "invalid_value", format!("'{raw}' is not an ISO 4217 currency code"));
            None
        }
    }
}

fn conflict(message: impl Into<String>, field: &str) -> Error {
    Error::Conflict { message: message.into(), field: Some(field.into()) }
}

fn is_retryable(e: &Error) -> bool {
    matches!(e, Error::VersionConflict { .. } | Error::Conflict { .. })
}

/// A short random pause before trying again, longer as attempts pile up.
async fn backoff(crm: &Crm, attempt: u32) {
    let jitter = (crm.new_id(crm.now()).as_u128() % 1000) as u64;
    let ms = (u64::from(attempt.min(20)) * jitter) / 1000 + 1;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

fn check_series(errs: &mut Errors, v: Option<String>) -> Option<String> {
    let s = v?.trim().to_string();
    if s.is_empty() || s.len() > 10 || !s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        errs.add("series", "invalid_value", "a series is 1 to 10 capital letters or digits (INV, CN, EU1)");
        return None;
    }
    Some(s)
}

/// The lines of an address object, in postal order, then whatever else it holds.
fn address_lines(address: &JsonObject) -> Vec<String> {
    const ORDER: [&str; 10] =
        ["street", "line1", "line2", "street2", "postalCode", "zip", "city", "region", "state", "country"];
    let get = |k: &str| address.get(k).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty());
    let mut out: Vec<String> = Vec::new();
    for k in ["street", "line1", "line2", "street2"] {
        out.extend(get(k).map(str::to_string));
    }
    let city: Vec<&str> = ["postalCode", "zip", "city"].iter().filter_map(|k| get(k)).collect();
    if !city.is_empty() {
        out.push(city.join(" "));
    }
    let region: Vec<&str> = ["region", "state", "country"].iter().filter_map(|k| get(k)).collect();
    if !region.is_empty() {
        out.push(region.join(", "));
    }
    for (k, v) in address {
        if !ORDER.contains(&k.as_str()) {
            if let Some(s) = v.as_str().map(str::trim).filter(|s| !s.is_empty()) {
                out.push(s.to_string());
            }
        }
    }
    out
}

/// A custom field holding a tax id, under the names people use.
fn tax_id_of(custom: &JsonObject) -> Option<String> {
    ["taxId", "tax_id", "vat", "vatNumber", "vat_number"]
        .iter()
        .find_map(|k| custom.get(*k).and_then(|v| v.as_str()).map(str::to_string))
}

/// The buyer as printed: the company (with the contact as the person), else the contact.
pub fn customer_party(company: Option<&Company>, contact: Option<&Contact>) -> Party {
    match (company, contact) {
        (Some(co), person) => Party {
            name: co.name.clone(),
            contact_name: person.map(|p| p.name.clone()),
            email: person
                .and_then(|p| p.email.as_ref().map(|e| e.to_string()))
                .or_else(|| co.contact_details.email.as_ref().map(|e| e.to_string())),
            phone: co.contact_details.phone_number.as_ref().map(|p| p.as_str().to_string()),
            address_lines: co.contact_details.address.as_ref().map(address_lines).unwrap_or_default(),
            country: co.country.clone(),
            tax_id: tax_id_of(&co.custom_fields),
            registration: None,
            website: co.contact_details.website.clone(),
        },
        (None, Some(p)) => Party {
            name: p.name.clone(),
            contact_name: None,
            email: p.email.as_ref().map(|e| e.to_string()),
            phone: p.phone_number.as_ref().map(|x| x.as_str().to_string()),
            address_lines: address_lines(&p.address),
            country: p.address.get("country").and_then(|v| v.as_str()).map(str::to_string),
            tax_id: tax_id_of(&p.custom_fields),
            registration: None,
            website: None,
        },
        (None, None) => Party::default(),
    }
}

/// Who a document is for, and whose it is.
struct Customer {
    company: Option<Company>,
    contact: Option<Contact>,
    deal: Option<Deal>,
    owner: Uuid,
    team: Option<Uuid>,
}

impl BillingService<'_> {
    fn require(&self, actor: &Actor, action: Action) -> Result<Scope> {
        self.crm.policy().require(actor, Resource::Billing, action)
    }

    fn authorize(
        &self,
        actor: &Actor,
        action: Action,
        owner: Uuid,
        team: Option<Uuid>,
        entity: &'static str,
    ) -> Result<()> {
        let o = Ownership { owner: Some(UserId(owner)), team: team.map(TeamId), assignee: None };
        self.crm.policy().authorize_record(actor, Resource::Billing, action, &o, entity)
    }

    fn today(&self) -> NaiveDate {
        self.crm.now().date_naive()
    }

    async fn commit(
        &self,
        actor: Option<&Actor>,
        mut cs: Changeset,
        action: &str,
        kind: EntityKind,
        id: Uuid,
        changes: serde_json::Value,
    ) -> Result<()> {
        cs.audit.push(match actor {
            Some(a) => self.crm.audit_event(a, action.into(), kind, Some(id), changes.clone()),
            None => crate::campaign::system_audit(self.crm, action, kind, Some(id), changes.clone()),
        });
        cs.writes.push(self.crm.event(action.into(), kind, id, changes)?);
        self.crm.store().apply(cs).await
    }

    // ----- settings ----------------------------------------------------------------

    /// The seller's details and defaults (the defaults until someone sets them).
    pub async fn settings(&self, actor: &Actor) -> Result<BillingSettings> {
        self.require(actor, Action::Read)?;
        self.current_settings().await
    }

    pub(crate) async fn current_settings(&self) -> Result<BillingSettings> {
        if let Some(stored) = self.crm.store().get_as::<BillingSettings>(BillingSettings::ID).await? {
            return self.opened_settings(stored);
        }
        Ok(BillingSettings {
            id: BillingSettings::ID,
            seller: Party::default(),
            payment_terms: PaymentTerms::Net30,
            payment_instructions: None,
            currency: Currency::default(),
            quote_validity_days: 30,
            footer: None,
            accent_color: "#1f6feb".into(),
            logo: None,
            language: "en".into(),
            updated_at: self.crm.now(),
            version: 0,
        })
    }

    /// Changes the seller's details and defaults (managers and admins).
    pub async fn update_settings(&self, actor: &Actor, input: SettingsInput) -> Result<BillingSettings> {
        self.require(actor, Action::Update)?;
        let before = self.current_settings().await?;
        crate::service::write_path::check_version(input.version, before.version)?;
        let mut errs = Errors::new();
        let mut s = before.clone();
        if let Some(p) = input.seller {
            s.seller = self.check_party(&mut errs, "seller", p);
        }
        if let Some(t) = parse_enum(&mut errs, "paymentTerms", input.payment_terms, PaymentTerms::CHOICES) {
            s.payment_terms = t;
        }
        if input.payment_instructions.is_some() {
            s.payment_instructions = text(&mut errs, "paymentInstructions", input.payment_instructions, 2000, true);
        }
        if let Some(c) = currency(&mut errs, "currency", input.currency) {
            s.currency = c;
        }
        if let Some(d) = input.quote_validity_days {
            if !(1..=365).contains(&d) {
                errs.add("quoteValidityDays", "out_of_range", "between 1 and 365 days");
            } else {
                s.quote_validity_days = d;
            }
        }
        if input.footer.is_some() {
            s.footer = text(&mut errs, "footer", input.footer, 2000, true);
        }
        if let Some(c) = input.accent_color {
            let c = c.trim().to_string();
            if c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|x| x.is_ascii_hexdigit()) {
                s.accent_color = c.to_ascii_lowercase();
            } else {
                errs.add("accentColor", "invalid_value", "a colour is #rrggbb");
            }
        }
        if let Some(logo) = input.logo {
            let logo = logo.trim().to_string();
            if logo.is_empty() {
                s.logo = None;
            } else if logo.len() > 700_000 {
                errs.add("logo", "too_long", "a logo is at most 500 KiB");
            } else if ["data:image/png;base64,", "data:image/jpeg;base64,", "data:image/svg+xml;"]
                .iter()
                .any(|p| logo.starts_with(p))
            {
                s.logo = Some(logo);
            } else {
                errs.add("logo", "invalid_value", "a logo is a data: URL of a PNG, JPEG or SVG image");
            }
        }
        if let Some(l) = crate::model::settings::language(&mut errs, "language", input.language) {
            s.language = l;
        }
        errs.finish()?;
        s.updated_at = self.crm.now();
        s.version = before.version + 1;
        let k = EntityKind::BillingSettings;
        let w = if before.version == 0 {
            Write::Insert { kind: k, row: self.settings_row(&s)? }
        } else {
            Write::Update { kind: k, row: self.settings_row(&s)?, expected_version: before.version }
        };
        let audit = self.crm.audit_event(
            actor,
            "billing_settings.updated".into(),
            k,
            Some(s.id),
            json!({"seller": s.seller.name}),
        );
        self.crm.store().apply(Changeset { writes: vec![w], audit: vec![audit] }).await?;
        Ok(s)
    }

    fn check_party(&self, errs: &mut Errors, at: &str, p: Party) -> Party {
        let f = |name: &str| format!("{at}.{name}");
        Party {
            name: text(errs, &f("name"), Some(p.name), 200, false).unwrap_or_default(),
            contact_name: text(errs, &f("contactName"), p.contact_name, 200, false),
            email: text(errs, &f("email"), p.email, 320, false),
            phone: text(errs, &f("phone"), p.phone, 50, false),
            address_lines: p
                .address_lines
                .into_iter()
                .enumerate()
                .filter_map(|(i, l)| text(errs, &f(&format!("addressLines.{i}")), Some(l), 200, false))
                .take(8)
                .collect(),
            country: text(errs, &f("country"), p.country, 60, false),
            tax_id: text(errs, &f("taxId"), p.tax_id, 60, false),
            registration: text(errs, &f("registration"), p.registration, 100, false),
            website: text(errs, &f("website"), p.website, 300, false),
        }
    }

    // ----- products ----------------------------------------------------------------

    /// A new catalogue product (managers and admins).
    pub async fn create_product(&self, actor: &Actor, input: ProductInput) -> Result<Product> {
        self.require(actor, Action::Create)?;
        let settings = self.current_settings().await?;
        let mut errs = Errors::new();
        let sku = self.check_sku(&mut errs, input.sku, true);
        let name = required(&mut errs, "name", input.name, NAME_CHARS);
        let description = text(&mut errs, "description", input.description, 5000, true);
        let unit_price = match input.unit_price {
            None => {
                errs.add("unitPrice", "required", "unitPrice is required (minor units)");
                0
            }
            Some(p) => self.check_price(&mut errs, "unitPrice", p),
        };
        let cur = currency(&mut errs, "currency", input.currency).unwrap_or(settings.currency);
        let unit = text(&mut errs, "unit", input.unit, 30, false);
        errs.finish()?;
        let now = self.crm.now();
        let p = Product {
            id: self.crm.new_id(now),
            sku: sku.unwrap_or_default(),
            name: name.unwrap_or_default(),
            description,
            unit_price,
            currency: cur,
            tax_percent: input.tax_percent.unwrap_or_default(),
            unit,
            active: input.active.unwrap_or(true),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let cs =
            Changeset { writes: vec![Write::Insert { kind: EntityKind::Product, row: to_row(&p)? }], audit: vec![] };
        self.commit(
            Some(actor),
            cs,
            "product.created",
            EntityKind::Product,
            p.id,
            json!({"sku": p.sku, "name": p.name, "unitPrice": p.unit_price, "currency": p.currency}),
        )
        .await?;
        Ok(p)
    }

    fn check_sku(&self, errs: &mut Errors, v: Option<String>, creating: bool) -> Option<String> {
        let s = match v.map(|s| s.trim().to_string()) {
            None if creating => {
                errs.add("sku", "required", "sku is required");
                return None;
            }
            None => return None,
            Some(s) => s,
        };
        if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            errs.add("sku", "invalid_value", "a SKU is 1 to 64 letters, digits, '.', '_' or '-'");
            return None;
        }
        Some(s)
    }

    fn check_price(&self, errs: &mut Errors, field: &str, p: i64) -> i64 {
        if !(0..=money::MAX_UNIT_PRICE).contains(&p) {
            errs.add(
                field,
                "out_of_range",
                format!("a price lies between 0 and {} minor units", money::MAX_UNIT_PRICE),
            );
        }
        p
    }

    /// The catalogue, by name; inactive products too when asked.
    pub async fn products(&self, actor: &Actor, include_inactive: bool) -> Result<Vec<Product>> {
        self.require(actor, Action::Read)?;
        let k = EntityKind::Product;
        let filter = if include_inactive {
            None
        } else {
            Some(Filter::Cmp(Cmp { column: k.require_column("active")?, pred: Predicate::Eq(Value::Bool(true)) }))
        };
        let q = StoreQuery {
            filter,
            sort: vec![
                SortKey { column: k.require_column("name")?, direction: Direction::Asc },
                SortKey { column: k.require_column("id")?, direction: Direction::Asc },
            ],
            limit: 10_000,
            include_deleted: false,
        };
        self.crm.store().list_as(&q).await
    }

    /// One product.
    pub async fn product(&self, actor: &Actor, id: Uuid) -> Result<Product> {
        self.require(actor, Action::Read)?;
        self.crm.store().get_as::<Product>(id).await?.ok_or(Error::NotFound { entity: "product" })
    }

    /// Changes a product; documents already made keep their lines.
    pub async fn update_product(&self, actor: &Actor, id: Uuid, input: ProductInput) -> Result<Product> {
        self.require(actor, Action::Update)?;
        let before = self.product(actor, id).await?;
        crate::service::write_path::check_version(input.version, before.version)?;
        let mut errs = Errors::new();
        let mut p = before.clone();
        if let Some(s) = self.check_sku(&mut errs, input.sku, false) {
            p.sku = s;
        }
        if input.name.is_some() {
            if let Some(n) = required(&mut errs, "name", input.name, NAME_CHARS) {
                p.name = n;
            }
        }
        if input.description.is_some() {
            p.description = text(&mut errs, "description", input.description, 5000, true);
        }
        if let Some(price) = input.unit_price {
            p.unit_price = self.check_price(&mut errs, "unitPrice", price);
        }
        if let Some(c) = currency(&mut errs, "currency", input.currency) {
            p.currency = c;
        }
        if let Some(t) = input.tax_percent {
            p.tax_percent = t;
        }
        if input.unit.is_some() {
            p.unit = text(&mut errs, "unit", input.unit, 30, false);
        }
        if let Some(a) = input.active {
            p.active = a;
        }
        errs.finish()?;
        p.updated_at = self.crm.now();
        p.version += 1;
        let w = Write::Update { kind: EntityKind::Product, row: to_row(&p)?, expected_version: before.version };
        let cs = Changeset { writes: vec![w], audit: vec![] };
        self.commit(
            Some(actor),
            cs,
            "product.updated",
            EntityKind::Product,
            id,
            json!({"sku": p.sku, "unitPrice": p.unit_price, "active": p.active}),
        )
        .await?;
        Ok(p)
    }

    /// Removes a product from the catalogue (documents keep their copy of its lines).
    pub async fn delete_product(&self, actor: &Actor, id: Uuid) -> Result<()> {
        self.require(actor, Action::Delete)?;
        let p = self.product(actor, id).await?;
        let cs =
            Changeset { writes: vec![Write::Purge { kind: EntityKind::Product, column: "id", id }], audit: vec![] };
        self.commit(Some(actor), cs, "product.deleted", EntityKind::Product, id, json!({"sku": p.sku})).await
    }

    // ----- lines and customers -----------------------------------------------------

    /// The lines a client wrote, products looked up, priced; errors name `lines.i.x`.
    async fn lines(&self, errs: &mut Errors, inputs: Vec<LineInput>, cur: Currency) -> Result<Vec<BillLine>> {
        if inputs.len() > 500 {
            errs.add("lines", "too_long", "at most 500 lines");
            return Ok(vec![]);
        }
        let mut out = Vec::with_capacity(inputs.len());
        for (i, l) in inputs.into_iter().enumerate() {
            let at = |f: &str| format!("lines.{i}.{f}");
            let product = match l.product_id {
                Some(pid) => match self.crm.store().get_as::<Product>(pid).await? {
                    Some(p) if p.currency != cur => {
                        errs.add(
                            at("productId"),
                            "invalid_value",
                            format!("the product is priced in {}, the document in {cur}", p.currency),
                        );
                        continue;
                    }
                    Some(p) => Some(p),
                    None => {
                        errs.add(at("productId"), "not_found", "no such product");
                        continue;
                    }
                },
                None => None,
            };
            let name = match (l.name, &product) {
                (Some(n), _) => required(errs, &at("name"), Some(n), 500),
                (None, Some(p)) => Some(p.name.clone()),
                (None, None) => required(errs, &at("name"), None, 500),
            };
            let unit_price = match (l.unit_price, &product) {
                (Some(u), _) => Some(u),
                (None, Some(p)) => Some(p.unit_price),
                (None, None) => {
                    errs.add(at("unitPrice"), "required", "unitPrice is required without a productId");
                    None
                }
            };
            let description = match l.description {
                Some(d) => text(errs, &at("description"), Some(d), 5000, true),
                None => product.as_ref().and_then(|p| p.description.clone()),
            };
            let unit = match l.unit {
                Some(u) => text(errs, &at("unit"), Some(u), 30, false),
                None => product.as_ref().and_then(|p| p.unit.clone()),
            };
            let (Some(name), Some(unit_price)) = (name, unit_price) else { continue };
            let (product_id, sku) = match (&product, l.kept) {
                (Some(p), _) => (Some(p.id), Some(p.sku.clone())),
                (None, Some((id, sku))) => (Some(id), sku),
                (None, None) => (None, None),
            };
            let mut line = BillLine {
                product_id,
                sku,
                name,
                description,
                quantity: l.quantity.unwrap_or(1),
                unit,
                unit_price,
                discount_percent: l.discount_percent.unwrap_or_default(),
                tax_percent: l.tax_percent.or(product.as_ref().map(|p| p.tax_percent)).unwrap_or_default(),
                gross: 0,
                discount: 0,
                net: 0,
                tax: 0,
                total: 0,
            };
            money::price_line_at(i, &mut line, errs);
            out.push(line);
        }
        Ok(out)
    }

    /// The deal's line items as document lines (one line of its amount when it has none).
    fn deal_lines(deal: &Deal) -> Vec<LineInput> {
        if deal.products.is_empty() {
            return deal
                .amount
                .map(|a| LineInput { name: Some(deal.name.clone()), unit_price: Some(a), ..Default::default() })
                .into_iter()
                .collect();
        }
        deal.products
            .iter()
            .map(|li| LineInput {
                product_id: li.product_id,
                name: Some(li.name.clone()),
                quantity: Some(li.quantity),
                unit_price: Some(li.unit_price),
                discount_percent: Some(li.discount_percent),
                tax_percent: Some(li.tax_percent),
                ..Default::default()
            })
            .collect()
    }

    /// Resolves the customer: a deal brings its company and primary contact; a contact
    /// its company. Errors name the field.
    async fn customer(
        &self,
        errs: &mut Errors,
        actor: &Actor,
        company: Option<Uuid>,
        contact: Option<Uuid>,
        deal: Option<Uuid>,
    ) -> Result<Customer> {
        let store = self.crm.store();
        let deal = match deal {
            Some(id) => match store.get_as::<Deal>(id).await?.filter(|d| !d.meta.is_deleted()) {
                Some(d) => Some(d),
                None => {
                    errs.add("dealId", "not_found", "no such deal");
                    None
                }
            },
            None => None,
        };
        let contact_id = contact.or_else(|| deal.as_ref().and_then(|d| d.contact_ids.first().map(|c| c.as_uuid())));
        let contact = match contact_id {
            Some(id) => match store.get_as::<Contact>(id).await?.filter(|c| !c.meta.is_deleted()) {
                Some(c) => Some(c),
                None => {
                    errs.add("contactId", "not_found", "no such contact");
                    None
                }
            },
            None => None,
        };
        let company_id = company
            .or_else(|| deal.as_ref().and_then(|d| d.company_id.map(|c| c.as_uuid())))
            .or_else(|| contact.as_ref().and_then(|c| c.company_id.map(|x| x.as_uuid())));
        let company = match company_id {
            Some(id) => match store.get_as::<Company>(id).await?.filter(|c| !c.meta.is_deleted()) {
                Some(c) => Some(c),
                None => {
                    errs.add("companyId", "not_found", "no such company");
                    None
                }
            },
            None => None,
        };
        if company.is_none()
            && contact.is_none()
            && company_id.is_none()
            && contact_id.is_none()
            && deal.is_none()
            && errs.is_empty()
        {
            errs.add(
                "companyId",
                "required",
                "a document is for a company or a contact (companyId, contactId or dealId)",
            );
        }
        let (owner, team) = if let Some(d) = &deal {
            (d.owner_id.as_uuid(), d.team_id.map(|t| t.as_uuid()))
        } else if let Some(c) = &company {
            (c.owner_id.as_uuid(), c.team_id.map(|t| t.as_uuid()))
        } else if let Some(c) = &contact {
            (c.owner_id.as_uuid(), c.team_id.map(|t| t.as_uuid()))
        } else {
            (actor.user_id.as_uuid(), actor.team_id.map(|t| t.as_uuid()))
        };
        Ok(Customer { company, contact, deal, owner, team })
    }

    /// The customer printed on a document now (its company and contact as they are).
    async fn current_customer(&self, company: Option<Uuid>, contact: Option<Uuid>) -> Result<Party> {
        let co = match company {
            Some(id) => self.crm.store().get_as::<Company>(id).await?,
            None => None,
        };
        let ct = match contact {
            Some(id) => self.crm.store().get_as::<Contact>(id).await?,
            None => None,
        };
        Ok(customer_party(co.as_ref(), ct.as_ref()))
    }

    /// The next number of a series and year, and the write that takes it.
    async fn next_number(&self, series: &str, year: i32) -> Result<(String, Write)> {
        let id = sequence_id(series, year);
        let k = EntityKind::BillingSequence;
        Ok(match self.crm.store().get_as::<BillingSequence>(id).await? {
            Some(s) => {
                let after = BillingSequence { last: s.last + 1, version: s.version + 1, ..s.clone() };
                (
                    format_number(series, year, after.last),
                    Write::Update { kind: k, row: to_row(&after)?, expected_version: s.version },
                )
            }
            None => {
                let s = BillingSequence { id, series: series.into(), year: i64::from(year), last: 1, version: 1 };
                (format_number(series, year, 1), Write::Insert { kind: k, row: to_row(&s)? })
            }
        })
    }

    // ----- invoices ----------------------------------------------------------------

    pub(crate) async fn load_invoice(&self, id: Uuid) -> Result<Invoice> {
        let inv = self.crm.store().get_as::<Invoice>(id).await?.ok_or(Error::NotFound { entity: "invoice" })?;
        self.opened_invoice(inv)
    }

    /// One invoice or credit note the actor may read.
    pub async fn invoice(&self, actor: &Actor, id: Uuid) -> Result<InvoiceView> {
        self.require(actor, Action::Read)?;
        let inv = self.load_invoice(id).await?;
        self.authorize(actor, Action::Read, inv.owner_id, inv.team_id, "invoice")?;
        Ok(InvoiceView::of(inv, self.today()))
    }

    /// Invoices and credit notes the actor may read, newest first.
    pub async fn invoices(&self, actor: &Actor, q: InvoiceQuery) -> Result<Vec<InvoiceView>> {
        let scope = self.require(actor, Action::Read)?;
        let k = EntityKind::Invoice;
        let mut errs = Errors::new();
        let status: Option<InvoiceStatus> = parse_enum(&mut errs, "status", q.status, InvoiceStatus::CHOICES);
        let doc_type: Option<DocumentType> = parse_enum(&mut errs, "docType", q.doc_type, DocumentType::CHOICES);
        let limit = q.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            errs.add("limit", "out_of_range", "limit lies between 1 and 1000");
        }
        errs.finish()?;
        let eq = |name: &str, v: Value| -> Result<Filter> {
            Ok(Filter::Cmp(Cmp { column: k.require_column(name)?, pred: Predicate::Eq(v) }))
        };
        let mut all: Vec<Filter> = Vec::new();
        all.extend(crate::service::write_path::scope_filter(k, scope, actor));
        if let Some(s) = status {
            all.push(eq("status", Value::Text(s.as_str().into()))?);
        }
        if let Some(d) = doc_type {
            all.push(eq("doc_type", Value::Text(d.as_str().into()))?);
        }
        if let Some(c) = q.company_id {
            all.push(eq("company_id", Value::Uuid(c))?);
        }
        if let Some(d) = q.deal_id {
            all.push(eq("deal_id", Value::Uuid(d))?);
        }
        let today = self.today();
        if q.overdue == Some(true) {
            let open: Vec<Value> = [InvoiceStatus::Issued, InvoiceStatus::Sent, InvoiceStatus::PartiallyPaid]
                .iter()
                .map(|s| Value::Text(s.as_str().into()))
                .collect();
            all.push(Filter::Cmp(Cmp { column: k.require_column("status")?, pred: Predicate::In(open) }));
            all.push(Filter::Cmp(Cmp {
                column: k.require_column("due_date")?,
                pred: Predicate::Lt(Value::Date(today)),
            }));
            all.push(eq("doc_type", Value::Text(DocumentType::Invoice.as_str().into()))?);
        }
        let query = StoreQuery {
            filter: if all.is_empty() { None } else { Some(Filter::And(all)) },
            sort: vec![SortKey { column: k.require_column("id")?, direction: Direction::Desc }],
            limit,
            include_deleted: false,
        };
        let list: Vec<Invoice> = self
            .crm
            .store()
            .list_as(&query)
            .await?
            .into_iter()
            .map(|i| self.opened_invoice(i))
            .collect::<Result<_>>()?;
        Ok(list.into_iter().map(|i| InvoiceView::of(i, today)).collect())
    }

    /// A draft invoice (managers and admins).
    pub async fn create_invoice(&self, actor: &Actor, input: DocumentInput) -> Result<InvoiceView> {
        self.require(actor, Action::Create)?;
        let inv = self.draft_invoice(actor, input, None).await?;
        let cs = Changeset {
            writes: vec![Write::Insert { kind: EntityKind::Invoice, row: self.invoice_row(&inv)? }],
            audit: vec![],
        };
        self.commit(
            Some(actor),
            cs,
            "invoice.created",
            EntityKind::Invoice,
            inv.id,
            json!({"total": inv.total, "currency": inv.currency, "dealId": inv.deal_id, "companyId": inv.company_id}),
        )
        .await?;
        Ok(InvoiceView::of(inv, self.today()))
    }

    async fn draft_invoice(&self, actor: &Actor, input: DocumentInput, quote: Option<&Quote>) -> Result<Invoice> {
        let settings = self.current_settings().await?;
        let mut errs = Errors::new();
        let cust = self.customer(&mut errs, actor, input.company_id, input.contact_id, input.deal_id).await?;
        let cur = currency(&mut errs, "currency", input.currency)
            .or(cust.deal.as_ref().map(|d| d.currency))
            .unwrap_or(settings.currency);
        let lines = self.lines(&mut errs, input.lines.unwrap_or_default(), cur).await?;
        let terms = parse_enum(&mut errs, "paymentTerms", input.payment_terms, PaymentTerms::CHOICES)
            .unwrap_or(settings.payment_terms);
        let instructions = text(&mut errs, "paymentInstructions", input.payment_instructions, 2000, true)
            .or(settings.payment_instructions.clone());
        let notes = text(&mut errs, "notes", input.notes, 5000, true);
        let series = check_series(&mut errs, input.series).unwrap_or_else(|| "INV".into());
        if input.valid_until.is_some() {
            errs.add("validUntil", "invalid_value", "validUntil is a quote's field; an invoice has dueDate");
        }
        errs.finish()?;
        let t =
            money::totals(&lines).ok_or_else(|| Error::invalid("lines", "out_of_range", "the total is too large"))?;
        let now = self.crm.now();
        Ok(Invoice {
            id: self.crm.new_id(now),
            doc_type: DocumentType::Invoice,
            series,
            number: None,
            status: InvoiceStatus::Draft,
            company_id: cust.company.as_ref().map(|c| c.id.as_uuid()),
            contact_id: cust.contact.as_ref().map(|c| c.id.as_uuid()),
            deal_id: cust.deal.as_ref().map(|d| d.id.as_uuid()),
            quote_id: quote.map(|q| q.id),
            credited_invoice_id: None,
            subscription_id: None,
            currency: cur,
            lines,
            taxes: t.taxes,
            subtotal: t.subtotal,
            discount_total: t.discount_total,
            tax_total: t.tax_total,
            total: t.total,
            amount_paid: 0,
            amount_credited: 0,
            balance: t.total,
            issue_date: None,
            due_date: input.due_date,
            payment_terms: terms,
            payment_instructions: instructions,
            notes,
            period_start: None,
            period_end: None,
            customer: customer_party(cust.company.as_ref(), cust.contact.as_ref()),
            seller: settings.seller.clone(),
            issued_at: None,
            sent_at: None,
            paid_at: None,
            voided_at: None,
            reason: None,
            charge_state: None,
            charge_attempts: 0,
            charge_error: None,
            owner_id: cust.owner,
            team_id: cust.team,
            created_at: now,
            updated_at: now,
            created_by: Some(actor.user_id.as_uuid()),
            version: 1,
        })
    }

    /// A draft invoice of a won deal's line items.
    pub async fn invoice_from_deal(&self, actor: &Actor, deal_id: Uuid) -> Result<InvoiceView> {
        self.require(actor, Action::Create)?;
        let deal = self
            .crm
            .store()
            .get_as::<Deal>(deal_id)
            .await?
            .filter(|d| !d.meta.is_deleted())
            .ok_or(Error::NotFound { entity: "deal" })?;
        if deal.stage != DealStage::ClosedWon {
            return Err(Error::invalid(
                "dealId",
                "invalid_state",
                format!("the deal is {}; only a won deal is invoiced (make a quote instead)", deal.stage),
            ));
        }
        let lines = Self::deal_lines(&deal);
        if lines.is_empty() {
            return Err(Error::invalid("dealId", "required", "the deal has neither line items nor an amount"));
        }
        let input = DocumentInput { deal_id: Some(deal_id), lines: Some(lines), ..Default::default() };
        self.create_invoice(actor, input).await
    }

    /// Changes a draft; an issued invoice is immutable except its payments.
    pub async fn update_invoice(&self, actor: &Actor, id: Uuid, input: DocumentInput) -> Result<InvoiceView> {
        self.require(actor, Action::Update)?;
        let before = self.load_invoice(id).await?;
        self.authorize(actor, Action::Update, before.owner_id, before.team_id, "invoice")?;
        crate::service::write_path::check_version(input.version, before.version)?;
        if before.status != InvoiceStatus::Draft {
            return Err(conflict(
                format!(
                    "the invoice is {}: an issued invoice changes only by payments and credit notes",
                    before.status
                ),
                "status",
            ));
        }
        let merged = DocumentInput {
            company_id: input.company_id.or(before.company_id),
            contact_id: if input.company_id.is_some() || input.deal_id.is_some() {
                input.contact_id
            } else {
                input.contact_id.or(before.contact_id)
            },
            deal_id: input.deal_id.or(before.deal_id),
            currency: Some(input.currency.unwrap_or_else(|| before.currency.code().to_string())),
            lines: match input.lines {
                Some(l) => Some(l),
                None => Some(before.lines.iter().map(line_input).collect()),
            },
            payment_terms: Some(input.payment_terms.unwrap_or_else(|| before.payment_terms.as_str().to_string())),
            due_date: input.due_date.or(before.due_date),
            payment_instructions: input.payment_instructions.or(before.payment_instructions.clone()),
            series: Some(input.series.unwrap_or_else(|| before.series.clone())),
            valid_until: input.valid_until,
            notes: input.notes.or(before.notes.clone()),
            version: None,
        };
        let mut after = self.draft_invoice(actor, merged, None).await?;
        after.id = before.id;
        after.quote_id = before.quote_id;
        after.created_at = before.created_at;
        after.created_by = before.created_by;
        after.version = before.version + 1;
        let cs = Changeset {
            writes: vec![Write::Update {
                kind: EntityKind::Invoice,
                row: self.invoice_row(&after)?,
                expected_version: before.version,
            }],
            audit: vec![],
        };
        self.commit(Some(actor), cs, "invoice.updated", EntityKind::Invoice, id, json!({"total": after.total})).await?;
        Ok(InvoiceView::of(after, self.today()))
    }

    /// Deletes a draft (an issued invoice is voided or credited instead).
    pub async fn delete_invoice(&self, actor: &Actor, id: Uuid) -> Result<()> {
        self.require(actor, Action::Delete)?;
        let inv = self.load_invoice(id).await?;
        self.authorize(actor, Action::Delete, inv.owner_id, inv.team_id, "invoice")?;
        if inv.status != InvoiceStatus::Draft {
            return Err(conflict("only a draft is deleted; void the invoice or credit it", "status"));
        }
        let mut writes = vec![Write::Purge { kind: EntityKind::Invoice, column: "id", id }];
        if let Some(qid) = inv.quote_id {
            if let Some(q) = self.crm.store().get_as::<Quote>(qid).await?.map(|q| self.opened_quote(q)).transpose()? {
                if q.invoice_id == Some(id) {
                    let after = Quote {
                        status: QuoteStatus::Accepted,
                        invoice_id: None,
                        version: q.version + 1,
                        updated_at: self.crm.now(),
                        ..q.clone()
                    };
                    writes.push(Write::Update {
                        kind: EntityKind::Quote,
                        row: self.quote_row(&after)?,
                        expected_version: q.version,
                    });
                }
            }
        }
        self.commit(
            Some(actor),
            Changeset { writes, audit: vec![] },
            "invoice.deleted",
            EntityKind::Invoice,
            id,
            json!({}),
        )
        .await
    }

    /// Issues a draft: its number is allocated, its customer and seller frozen, its due
    /// date set from the terms. Safe to call from many places at once: each issued
    /// document gets the next number, none twice, none skipped.
    pub async fn issue_invoice(&self, actor: &Actor, id: Uuid, input: IssueInput) -> Result<InvoiceView> {
        self.require(actor, Action::Update)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = self.load_invoice(id).await?;
            self.authorize(actor, Action::Update, before.owner_id, before.team_id, "invoice")?;
            crate::service::write_path::check_version(input.version, before.version)?;
            if before.status != InvoiceStatus::Draft {
                return Err(conflict(format!("the invoice is {} already", before.status), "status"));
            }
            if before.lines.is_empty() {
                return Err(Error::invalid("lines", "required", "an invoice is issued with at least one line"));
            }
            let issue = input.issue_date.unwrap_or_else(|| self.today());
            if let Some(due) = before.due_date.filter(|d| *d < issue) {
                return Err(Error::invalid(
                    "dueDate",
                    "out_of_range",
                    format!("the due date {due} is before the issue date {issue}"),
                ));
            }
            let settings = self.current_settings().await?;
            let (number, seq) = self.next_number(&before.series, chrono::Datelike::year(&issue)).await?;
            let now = self.crm.now();
            let mut after = before.clone();
            after.number = Some(number.clone());
            after.status = InvoiceStatus::Issued;
            after.issue_date = Some(issue);
            after.due_date = Some(before.due_date.unwrap_or_else(|| before.payment_terms.due_date(issue)));
            after.customer = self.current_customer(before.company_id, before.contact_id).await?;
            after.seller = settings.seller.clone();
            after.issued_at = Some(now);
            after.updated_at = now;
            after.version = before.version + 1;
            settle(&mut after, now);
            let cs = Changeset {
                writes: vec![
                    seq,
                    Write::Update {
                        kind: EntityKind::Invoice,
                        row: self.invoice_row(&after)?,
                        expected_version: before.version,
                    },
                ],
                audit: vec![],
            };
            let changes =
                json!({"number": number, "total": after.total, "currency": after.currency, "dueDate": after.due_date});
            match self.commit(Some(actor), cs, "invoice.issued", EntityKind::Invoice, id, changes).await {
                Ok(()) => return Ok(InvoiceView::of(after, self.today())),
                Err(e) if is_retryable(&e) && attempt < ATTEMPTS => backoff(self.crm, attempt).await,
                Err(e) => return Err(e),
            }
        }
    }

    /// Marks an issued invoice as sent to the customer.
    pub async fn mark_sent(&self, actor: &Actor, id: Uuid) -> Result<InvoiceView> {
        self.change_invoice(Some(actor), id, "invoice.sent", |inv, now| {
            if inv.status == InvoiceStatus::Draft || inv.status == InvoiceStatus::Void {
                return Err(conflict(format!("the invoice is {}; issue it first", inv.status), "status"));
            }
            inv.sent_at = inv.sent_at.or(Some(now));
            Ok(json!({"number": inv.number}))
        })
        .await
    }

    /// Voids an issued invoice nothing was paid or credited on; its number stays used.
    pub async fn void_invoice(&self, actor: &Actor, id: Uuid, input: VoidInput) -> Result<InvoiceView> {
        let mut errs = Errors::new();
        let reason = text(&mut errs, "reason", input.reason, 1000, true);
        errs.finish()?;
        self.change_invoice(Some(actor), id, "invoice.voided", move |inv, now| {
            if !open(inv.status) || inv.doc_type != DocumentType::Invoice {
                return Err(conflict(
                    format!("the invoice is {}; only an issued, unpaid invoice is voided", inv.status),
                    "status",
                ));
            }
            if inv.amount_paid != 0 || inv.amount_credited != 0 {
                return Err(conflict(
                    "payments or credit notes were made on it: refund or credit it instead",
                    "status",
                ));
            }
            inv.status = InvoiceStatus::Void;
            inv.voided_at = Some(now);
            inv.reason = reason.clone();
            Ok(json!({"number": inv.number, "reason": reason}))
        })
        .await
    }

    /// One change of an invoice, tried again when another writer changed it first.
    async fn change_invoice(
        &self,
        actor: Option<&Actor>,
        id: Uuid,
        action: &str,
        change: impl Fn(&mut Invoice, DateTime<Utc>) -> Result<serde_json::Value>,
    ) -> Result<InvoiceView> {
        self.change_invoice_and(actor, id, action, change, |_| Ok(vec![])).await
    }

    /// One change of an invoice with the writes that go with it (`extra`, given the
    /// changed invoice), tried again when another writer changed it first.
    pub(crate) async fn change_invoice_and(
        &self,
        actor: Option<&Actor>,
        id: Uuid,
        action: &str,
        change: impl Fn(&mut Invoice, DateTime<Utc>) -> Result<serde_json::Value>,
        extra: impl Fn(&Invoice) -> Result<Vec<Write>>,
    ) -> Result<InvoiceView> {
        if let Some(a) = actor {
            self.require(a, Action::Update)?;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = self.load_invoice(id).await?;
            if let Some(a) = actor {
                self.authorize(a, Action::Update, before.owner_id, before.team_id, "invoice")?;
            }
            let now = self.crm.now();
            let mut after = before.clone();
            let changes = change(&mut after, now)?;
            after.updated_at = now;
            after.version = before.version + 1;
            settle(&mut after, now);
            let mut writes = vec![Write::Update {
                kind: EntityKind::Invoice,
                row: self.invoice_row(&after)?,
                expected_version: before.version,
            }];
            writes.extend(extra(&after)?);
            let cs = Changeset { writes, audit: vec![] };
            match self.commit(actor, cs, action, EntityKind::Invoice, id, changes).await {
                Ok(()) => return Ok(InvoiceView::of(after, self.today())),
                Err(Error::VersionConflict { .. }) if attempt < ATTEMPTS => backoff(self.crm, attempt).await,
                Err(e) => return Err(e),
            }
        }
    }

    /// A credit note reversing (part of) an issued invoice: numbered in the `CN` series,
    /// issued at once; the invoice's balance falls by its total.
    pub async fn credit_invoice(&self, actor: &Actor, id: Uuid, input: CreditNoteInput) -> Result<InvoiceView> {
        self.require(actor, Action::Update)?;
        let mut errs = Errors::new();
        let reason = text(&mut errs, "reason", input.reason, 1000, true);
        errs.finish()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let inv = self.load_invoice(id).await?;
            self.authorize(actor, Action::Update, inv.owner_id, inv.team_id, "invoice")?;
            if inv.doc_type != DocumentType::Invoice
                || !matches!(
                    inv.status,
                    InvoiceStatus::Issued | InvoiceStatus::Sent | InvoiceStatus::PartiallyPaid | InvoiceStatus::Paid
                )
            {
                return Err(conflict(
                    format!("the invoice is {}; only an issued invoice is credited", inv.status),
                    "status",
                ));
            }
            let mut errs = Errors::new();
            let lines = match input.lines.clone() {
                Some(l) => self.lines(&mut errs, l, inv.currency).await?,
                None if inv.amount_credited == 0 => inv.lines.clone(),
                None => {
                    errs.add(
                        "lines",
                        "required",
                        "part of the invoice was credited already: say which lines to credit",
                    );
                    vec![]
                }
            };
            if lines.is_empty() && errs.is_empty() {
                errs.add("lines", "required", "a credit note has at least one line");
            }
            errs.finish()?;
            let t = money::totals(&lines)
                .ok_or_else(|| Error::invalid("lines", "out_of_range", "the total is too large"))?;
            let creditable = inv.total - inv.amount_credited;
            if t.total > creditable {
                return Err(Error::invalid(
                    "lines",
                    "out_of_range",
                    format!("the credit ({}) exceeds what is left to credit on the invoice ({creditable})", t.total),
                ));
            }
            let issue = input.issue_date.unwrap_or_else(|| self.today());
            let (number, seq) = self.next_number("CN", chrono::Datelike::year(&issue)).await?;
            let now = self.crm.now();
            let cn = Invoice {
                id: self.crm.new_id(now),
                doc_type: DocumentType::CreditNote,
                series: "CN".into(),
                number: Some(number.clone()),
                status: InvoiceStatus::Issued,
                credited_invoice_id: Some(inv.id),
                lines,
                taxes: t.taxes,
                subtotal: t.subtotal,
                discount_total: t.discount_total,
                tax_total: t.tax_total,
                total: t.total,
                amount_paid: 0,
                amount_credited: 0,
                balance: 0,
                issue_date: Some(issue),
                due_date: None,
                quote_id: None,
                subscription_id: None,
                period_start: None,
                period_end: None,
                issued_at: Some(now),
                sent_at: None,
                paid_at: None,
                voided_at: None,
                reason: reason.clone(),
                charge_state: None,
                charge_attempts: 0,
                charge_error: None,
                created_at: now,
                updated_at: now,
                created_by: Some(actor.user_id.as_uuid()),
                version: 1,
                ..inv.clone()
            };
            let mut after = inv.clone();
            after.amount_credited += cn.total;
            after.updated_at = now;
            after.version = inv.version + 1;
            settle(&mut after, now);
            let mut cs = Changeset {
                writes: vec![
                    seq,
                    Write::Insert { kind: EntityKind::Invoice, row: self.invoice_row(&cn)? },
                    Write::Update {
                        kind: EntityKind::Invoice,
                        row: self.invoice_row(&after)?,
                        expected_version: inv.version,
                    },
                ],
                audit: vec![],
            };
            cs.audit.push(self.crm.audit_event(
                actor,
                "invoice.credited".into(),
                EntityKind::Invoice,
                Some(inv.id),
                json!({"creditNote": number, "amount": cn.total, "balance": after.balance, "status": after.status}),
            ));
            let changes = json!({"number": number, "invoiceId": inv.id, "invoiceNumber": inv.number, "total": cn.total, "currency": cn.currency, "reason": reason});
            match self.commit(Some(actor), cs, "credit_note.issued", EntityKind::Invoice, cn.id, changes).await {
                Ok(()) => return Ok(InvoiceView::of(cn, self.today())),
                Err(e) if is_retryable(&e) && attempt < ATTEMPTS => backoff(self.crm, attempt).await,
                Err(e) => return Err(e),
            }
        }
    }

    // ----- payments ----------------------------------------------------------------

    /// Records money received for an issued invoice (a manager, for a bank transfer,
    /// cash or a cheque): at most the balance due.
    pub async fn record_payment(&self, actor: &Actor, invoice_id: Uuid, input: PaymentInput) -> Result<Payment> {
        self.require(actor, Action::Update)?;
        let mut errs = Errors::new();
        let amount = match input.amount {
            Some(a) if a > 0 => a,
            Some(_) => {
                errs.add("amount", "out_of_range", "a payment is a positive amount of minor units");
                0
            }
            None => {
                errs.add("amount", "required", "amount is required (minor units)");
                0
            }
        };
        let method = parse_enum(&mut errs, "method", input.method, PaymentMethod::CHOICES)
            .unwrap_or(PaymentMethod::BankTransfer);
        let reference = text(&mut errs, "reference", input.reference, 200, false);
        let note = text(&mut errs, "note", input.note, 2000, true);
        if input.received_at.is_some_and(|t| t > self.crm.now() + chrono::Duration::days(1)) {
            errs.add("receivedAt", "out_of_range", "a payment was received in the past");
        }
        errs.finish()?;
        let inv = self.load_invoice(invoice_id).await?;
        self.authorize(actor, Action::Update, inv.owner_id, inv.team_id, "invoice")?;
        let received = input.received_at.unwrap_or_else(|| self.crm.now());
        self.apply_payment(Some(actor), invoice_id, amount, method, "manual", reference, received, note).await
    }

    /// Adds a payment to an invoice and settles it, in one write, tried again when the
    /// invoice changed meanwhile. Used by managers' records and by the gateways.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_payment(
        &self,
        actor: Option<&Actor>,
        invoice_id: Uuid,
        amount: i64,
        method: PaymentMethod,
        gateway: &str,
        reference: Option<String>,
        received_at: DateTime<Utc>,
        note: Option<String>,
    ) -> Result<Payment> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let inv = self.load_invoice(invoice_id).await?;
            if inv.doc_type != DocumentType::Invoice || !open(inv.status) {
                return Err(conflict(
                    format!("the invoice is {}; payments are recorded on issued, unpaid invoices", inv.status),
                    "status",
                ));
            }
            if amount > inv.balance {
                return Err(Error::invalid(
                    "amount",
                    "out_of_range",
                    format!("{amount} exceeds the balance due ({})", inv.balance),
                ));
            }
            let now = self.crm.now();
            let p = Payment {
                id: self.crm.new_id(now),
                invoice_id,
                kind: PaymentKind::Payment,
                amount,
                currency: inv.currency,
                method,
                gateway: gateway.into(),
                reference: reference.clone(),
                refund_of: None,
                refunded: 0,
                received_at,
                note: note.clone(),
                owner_id: inv.owner_id,
                team_id: inv.team_id,
                recorded_by: actor.map(|a| a.user_id.as_uuid()),
                created_at: now,
                version: 1,
            };
            let mut after = inv.clone();
            after.amount_paid += amount;
            after.updated_at = now;
            after.version = inv.version + 1;
            settle(&mut after, now);
            let mut cs = Changeset {
                writes: vec![
                    Write::Insert { kind: EntityKind::Payment, row: to_row(&p)? },
                    Write::Update {
                        kind: EntityKind::Invoice,
                        row: self.invoice_row(&after)?,
                        expected_version: inv.version,
                    },
                ],
                audit: vec![],
            };
            if after.status == InvoiceStatus::Paid {
                cs.writes.push(self.crm.event("invoice.paid".into(), EntityKind::Invoice, invoice_id, json!({"number": after.number, "total": after.total, "currency": after.currency, "ownerId": after.owner_id, "actorId": actor.map(|a| a.user_id.as_uuid())}))?);
            }
            let changes = json!({"invoiceId": invoice_id, "invoiceNumber": inv.number, "amount": amount, "currency": p.currency, "method": method, "gateway": gateway, "reference": reference, "balance": after.balance, "status": after.status});
            match self.commit(actor, cs, "payment.recorded", EntityKind::Payment, p.id, changes).await {
                Ok(()) => return Ok(p),
                Err(Error::VersionConflict { .. }) if attempt < ATTEMPTS => backoff(self.crm, attempt).await,
                Err(Error::Conflict { field, .. }) if reference.is_some() && field.as_deref() != Some("status") => {
                    return Err(conflict("a payment with this reference was recorded already", "reference"))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Gives (part of) a payment back: a refund row, and the invoice owed again.
    pub async fn refund_payment(&self, actor: &Actor, payment_id: Uuid, input: RefundInput) -> Result<Payment> {
        self.refund_payment_through(actor, payment_id, input, None).await
    }

    /// Gives back (part of) a payment; one taken through a gateway is refunded there
    /// first (`gateway` must be the one it was taken through), and the refund row
    /// carries the gateway's refund id. The gateway call is keyed by the payment and
    /// what was refunded of it before, so a retried request refunds once.
    pub async fn refund_payment_through(
        &self,
        actor: &Actor,
        payment_id: Uuid,
        input: RefundInput,
        gateway: Option<&dyn gateway::PaymentGateway>,
    ) -> Result<Payment> {
        self.require(actor, Action::Update)?;
        let mut errs = Errors::new();
        let note = text(&mut errs, "note", input.note, 2000, true);
        if input.amount.is_some_and(|a| a <= 0) {
            errs.add("amount", "out_of_range", "a refund is a positive amount of minor units");
        }
        errs.finish()?;
        let mut attempt = 0;
        // The gateway's refund, made once before the first write is tried.
        let mut taken: Option<(i64, String)> = None;
        loop {
            attempt += 1;
            let p =
                self.crm.store().get_as::<Payment>(payment_id).await?.ok_or(Error::NotFound { entity: "payment" })?;
            self.authorize(actor, Action::Update, p.owner_id, p.team_id, "payment")?;
            if p.kind != PaymentKind::Payment {
                return Err(conflict("a refund is not refunded", "kind"));
            }
            let left = p.amount - p.refunded;
            let amount = match &taken {
                Some((a, _)) => *a,
                None => input.amount.unwrap_or(left),
            };
            if taken.is_none() && (amount > left || amount <= 0) {
                return Err(Error::invalid(
                    "amount",
                    "out_of_range",
                    format!("at most {left} of this payment is left to refund"),
                ));
            }
            if p.gateway != "manual" && taken.is_none() {
                let g = gateway.filter(|g| g.name() == p.gateway).ok_or_else(|| {
                    conflict(
                        format!("the payment was taken through {}, which this server is not configured for", p.gateway),
                        "gateway",
                    )
                })?;
                let intent =
                    p.reference.clone().ok_or_else(|| conflict("the payment has no gateway reference", "reference"))?;
                let key = format!("refund-{}-{}-{amount}", p.id.simple(), p.refunded);
                taken = Some((amount, g.refund(&intent, amount, &key).await?));
            }
            let reference = taken.as_ref().map(|(_, id)| id.clone());
            let (refund, cs, changes) =
                self.refund_changeset(&p, amount, reference.clone(), note.clone(), Some(actor)).await?;
            match self.commit(Some(actor), cs, "payment.refunded", EntityKind::Payment, refund.id, changes).await {
                Ok(()) => return Ok(refund),
                Err(Error::VersionConflict { .. }) if attempt < ATTEMPTS => backoff(self.crm, attempt).await,
                // The gateway's webhook recorded this very refund first.
                Err(e @ Error::Conflict { .. }) => {
                    return match reference {
                        Some(r) => self.payment_by_reference(&p.gateway, PaymentKind::Refund, &r).await?.ok_or(e),
                        None => Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The refund row of `amount` of payment `p`, the payment's and its invoice's
    /// changes, in one changeset, and what the audit says.
    async fn refund_changeset(
        &self,
        p: &Payment,
        amount: i64,
        reference: Option<String>,
        note: Option<String>,
        actor: Option<&Actor>,
    ) -> Result<(Payment, Changeset, serde_json::Value)> {
        let inv = self.load_invoice(p.invoice_id).await?;
        let now = self.crm.now();
        let refund = Payment {
            id: self.crm.new_id(now),
            kind: PaymentKind::Refund,
            amount,
            reference,
            refund_of: Some(p.id),
            refunded: 0,
            received_at: now,
            note,
            recorded_by: actor.map(|a| a.user_id.as_uuid()),
            created_at: now,
            version: 1,
            ..p.clone()
        };
        let paid_after = Payment { refunded: p.refunded + amount, version: p.version + 1, ..p.clone() };
        let mut after = inv.clone();
        after.amount_paid -= amount;
        after.updated_at = now;
        after.version = inv.version + 1;
        settle(&mut after, now);
        let cs = Changeset {
            writes: vec![
                Write::Insert { kind: EntityKind::Payment, row: to_row(&refund)? },
                Write::Update { kind: EntityKind::Payment, row: to_row(&paid_after)?, expected_version: p.version },
                Write::Update {
                    kind: EntityKind::Invoice,
                    row: self.invoice_row(&after)?,
                    expected_version: inv.version,
                },
            ],
            audit: vec![],
        };
        let changes = json!({"paymentId": p.id, "invoiceId": inv.id, "amount": amount, "currency": p.currency, "reference": refund.reference, "balance": after.balance, "status": after.status});
        Ok((refund, cs, changes))
    }

    /// The payment or refund a gateway knows by `reference` (its intent or refund id).
    async fn payment_by_reference(&self, gateway: &str, kind: PaymentKind, reference: &str) -> Result<Option<Payment>> {
        let k = EntityKind::Payment;
        let eq = |c: &str, v: &str| {
            Ok::<_, Error>(Filter::Cmp(Cmp {
                column: k.require_column(c)?,
                pred: Predicate::Eq(Value::Text(v.into())),
            }))
        };
        let q = StoreQuery {
            filter: Some(Filter::And(vec![
                eq("gateway", gateway)?,
                eq("kind", kind.as_str())?,
                eq("reference", reference)?,
            ])),
            sort: vec![],
            limit: 1,
            include_deleted: false,
        };
        Ok(self.crm.store().list_as::<Payment>(&q).await?.into_iter().next())
    }

    /// Records the refunds a gateway made of a charge that are not recorded yet: one
    /// made in the gateway's dashboard, or one whose answer this server never saw.
    /// Answers how many were recorded.
    pub(crate) async fn record_gateway_refunds(&self, gw: &dyn gateway::PaymentGateway, charge: &str) -> Result<usize> {
        let made = gw.charge_refunds(charge).await?;
        let Some(intent) = made.intent else { return Ok(0) };
        let mut recorded = 0;
        for r in made.refunds.into_iter().filter(|r| matches!(r.status.as_str(), "succeeded" | "pending")) {
            let mut attempt = 0;
            loop {
                attempt += 1;
                if self.payment_by_reference(gw.name(), PaymentKind::Refund, &r.id).await?.is_some() {
                    break;
                }
                // Not a payment of ours (another system's charge on the same account).
                let Some(p) = self.payment_by_reference(gw.name(), PaymentKind::Payment, &intent).await? else {
                    return Ok(recorded);
                };
                let amount = r.amount.min(p.amount - p.refunded);
                if amount <= 0 {
                    break;
                }
                let note = Some(format!("Refunded at {}", gw.name()));
                let (refund, cs, changes) = self.refund_changeset(&p, amount, Some(r.id.clone()), note, None).await?;
                match self.commit(None, cs, "payment.refunded", EntityKind::Payment, refund.id, changes).await {
                    Ok(()) => {
                        recorded += 1;
                        break;
                    }
                    Err(Error::VersionConflict { .. }) if attempt < ATTEMPTS => backoff(self.crm, attempt).await,
                    // Recorded meanwhile (the API's own refund, or another processor).
                    Err(Error::Conflict { .. }) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(recorded)
    }

    /// Payments and refunds the actor may read, newest first; of one invoice when given.
    pub async fn payments(&self, actor: &Actor, invoice_id: Option<Uuid>) -> Result<Vec<Payment>> {
        let scope = self.require(actor, Action::Read)?;
        if let Some(i) = invoice_id {
            self.invoice(actor, i).await?;
        }
        let k = EntityKind::Payment;
        let mut all: Vec<Filter> = Vec::new();
        all.extend(crate::service::write_path::scope_filter(k, scope, actor));
        if let Some(i) = invoice_id {
            all.push(Filter::Cmp(Cmp { column: k.require_column("invoice_id")?, pred: Predicate::Eq(Value::Uuid(i)) }));
        }
        let q = StoreQuery {
            filter: if all.is_empty() { None } else { Some(Filter::And(all)) },
            sort: vec![SortKey { column: k.require_column("id")?, direction: Direction::Desc }],
            limit: 1000,
            include_deleted: false,
        };
        self.crm.store().list_as(&q).await
    }

    /// Every row of `kind` the actor may read (no limit), newest first, read a thousand
    /// at a time by id.
    async fn read_all<T: crate::schema::Persist>(
        &self,
        actor: &Actor,
        kind: EntityKind,
        id_of: impl Fn(&T) -> Uuid,
    ) -> Result<Vec<T>> {
        const PAGE: u32 = 1000;
        let scope = self.require(actor, Action::Read)?;
        let mut out: Vec<T> = Vec::new();
        let mut before: Option<Uuid> = None;
        loop {
            let mut all: Vec<Filter> = Vec::new();
            all.extend(crate::service::write_path::scope_filter(kind, scope, actor));
            if let Some(b) = before {
                all.push(Filter::Cmp(Cmp { column: kind.require_column("id")?, pred: Predicate::Lt(Value::Uuid(b)) }));
            }
            let q = StoreQuery {
                filter: if all.is_empty() { None } else { Some(Filter::And(all)) },
                sort: vec![SortKey { column: kind.require_column("id")?, direction: Direction::Desc }],
                limit: PAGE,
                include_deleted: false,
            };
            let page: Vec<T> = self.crm.store().list_as(&q).await?;
            let full = page.len() == PAGE as usize;
            before = page.last().map(&id_of);
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    /// Every invoice and credit note the actor may read (no limit), newest first.
    pub async fn all_invoices(&self, actor: &Actor) -> Result<Vec<Invoice>> {
        let list: Vec<Invoice> = self.read_all(actor, EntityKind::Invoice, |i: &Invoice| i.id).await?;
        list.into_iter().map(|i| self.opened_invoice(i)).collect()
    }

    /// Every payment and refund the actor may read (no limit), newest first.
    pub async fn all_payments(&self, actor: &Actor) -> Result<Vec<Payment>> {
        self.read_all(actor, EntityKind::Payment, |p: &Payment| p.id).await
    }

    /// One payment or refund.
    pub async fn payment(&self, actor: &Actor, id: Uuid) -> Result<Payment> {
        self.require(actor, Action::Read)?;
        let p = self.crm.store().get_as::<Payment>(id).await?.ok_or(Error::NotFound { entity: "payment" })?;
        self.authorize(actor, Action::Read, p.owner_id, p.team_id, "payment")?;
        Ok(p)
    }

    // ----- quotes ------------------------------------------------------------------

    pub(crate) async fn load_quote(&self, id: Uuid) -> Result<Quote> {
        let q = self.crm.store().get_as::<Quote>(id).await?.ok_or(Error::NotFound { entity: "quote" })?;
        self.opened_quote(q)
    }

    /// One quote the actor may read.
    pub async fn quote(&self, actor: &Actor, id: Uuid) -> Result<QuoteView> {
        self.require(actor, Action::Read)?;
        let q = self.load_quote(id).await?;
        self.authorize(actor, Action::Read, q.owner_id, q.team_id, "quote")?;
        Ok(QuoteView::of(q, self.today()))
    }

    /// Quotes the actor may read, newest first; of one deal when given.
    pub async fn quotes(&self, actor: &Actor, deal_id: Option<Uuid>) -> Result<Vec<QuoteView>> {
        let scope = self.require(actor, Action::Read)?;
        let k = EntityKind::Quote;
        let mut all: Vec<Filter> = Vec::new();
        all.extend(crate::service::write_path::scope_filter(k, scope, actor));
        if let Some(d) = deal_id {
            all.push(Filter::Cmp(Cmp { column: k.require_column("deal_id")?, pred: Predicate::Eq(Value::Uuid(d)) }));
        }
        let q = StoreQuery {
            filter: if all.is_empty() { None } else { Some(Filter::And(all)) },
            sort: vec![SortKey { column: k.require_column("id")?, direction: Direction::Desc }],
            limit: 1000,
            include_deleted: false,
        };
        let today = self.today();
        let list = self.crm.store().list_as::<Quote>(&q).await?;
        list.into_iter().map(|x| Ok(QuoteView::of(self.opened_quote(x)?, today))).collect()
    }

    async fn draft_quote(&self, actor: &Actor, input: DocumentInput) -> Result<Quote> {
        let settings = self.current_settings().await?;
        let mut errs = Errors::new();
        let cust = self.customer(&mut errs, actor, input.company_id, input.contact_id, input.deal_id).await?;
        let cur = currency(&mut errs, "currency", input.currency)
            .or(cust.deal.as_ref().map(|d| d.currency))
            .unwrap_or(settings.currency);
        let lines = self.lines(&mut errs, input.lines.unwrap_or_default(), cur).await?;
        let notes = text(&mut errs, "notes", input.notes, 5000, true);
        for (set, field) in [
            (input.payment_terms.is_some(), "paymentTerms"),
            (input.due_date.is_some(), "dueDate"),
            (input.series.is_some(), "series"),
            (input.payment_instructions.is_some(), "paymentInstructions"),
        ] {
            if set {
                errs.add(field, "invalid_value", format!("{field} is an invoice's field, not a quote's"));
            }
        }
        errs.finish()?;
        let t =
            money::totals(&lines).ok_or_else(|| Error::invalid("lines", "out_of_range", "the total is too large"))?;
        let now = self.crm.now();
        Ok(Quote {
            id: self.crm.new_id(now),
            number: None,
            status: QuoteStatus::Draft,
            company_id: cust.company.as_ref().map(|c| c.id.as_uuid()),
            contact_id: cust.contact.as_ref().map(|c| c.id.as_uuid()),
            deal_id: cust.deal.as_ref().map(|d| d.id.as_uuid()),
            invoice_id: None,
            currency: cur,
            lines,
            taxes: t.taxes,
            subtotal: t.subtotal,
            discount_total: t.discount_total,
            tax_total: t.tax_total,
            total: t.total,
            issue_date: None,
            valid_until: input.valid_until,
            notes,
            customer: customer_party(cust.company.as_ref(), cust.contact.as_ref()),
            seller: settings.seller,
            decided_at: None,
            owner_id: cust.owner,
            team_id: cust.team,
            created_at: now,
            updated_at: now,
            created_by: Some(actor.user_id.as_uuid()),
            version: 1,
        })
    }

    /// A draft quote (managers and admins).
    pub async fn create_quote(&self, actor: &Actor, input: DocumentInput) -> Result<QuoteView> {
        self.require(actor, Action::Create)?;
        let q = self.draft_quote(actor, input).await?;
        let cs = Changeset {
            writes: vec![Write::Insert { kind: EntityKind::Quote, row: self.quote_row(&q)? }],
            audit: vec![],
        };
        self.commit(
            Some(actor),
            cs,
            "quote.created",
            EntityKind::Quote,
            q.id,
            json!({"total": q.total, "currency": q.currency, "dealId": q.deal_id}),
        )
        .await?;
        Ok(QuoteView::of(q, self.today()))
    }

    /// A draft quote of a deal's line items (any stage).
    pub async fn quote_from_deal(&self, actor: &Actor, deal_id: Uuid) -> Result<QuoteView> {
        self.require(actor, Action::Create)?;
        let deal = self
            .crm
            .store()
            .get_as::<Deal>(deal_id)
            .await?
            .filter(|d| !d.meta.is_deleted())
            .ok_or(Error::NotFound { entity: "deal" })?;
        let lines = Self::deal_lines(&deal);
        if lines.is_empty() {
            return Err(Error::invalid("dealId", "required", "the deal has neither line items nor an amount"));
        }
        self.create_quote(actor, DocumentInput { deal_id: Some(deal_id), lines: Some(lines), ..Default::default() })
            .await
    }

    /// Changes a draft quote.
    pub async fn update_quote(&self, actor: &Actor, id: Uuid, input: DocumentInput) -> Result<QuoteView> {
        self.require(actor, Action::Update)?;
        let before = self.load_quote(id).await?;
        self.authorize(actor, Action::Update, before.owner_id, before.team_id, "quote")?;
        crate::service::write_path::check_version(input.version, before.version)?;
        if before.status != QuoteStatus::Draft {
            return Err(conflict(format!("the quote is {}: only a draft changes", before.status), "status"));
        }
        let merged = DocumentInput {
            company_id: input.company_id.or(before.company_id),
            contact_id: if input.company_id.is_some() || input.deal_id.is_some() {
                input.contact_id
            } else {
                input.contact_id.or(before.contact_id)
            },
            deal_id: input.deal_id.or(before.deal_id),
            currency: Some(input.currency.unwrap_or_else(|| before.currency.code().to_string())),
            lines: Some(input.lines.unwrap_or_else(|| before.lines.iter().map(line_input).collect())),
            valid_until: input.valid_until.or(before.valid_until),
            notes: input.notes.or(before.notes.clone()),
            payment_terms: input.payment_terms,
            due_date: input.due_date,
            payment_instructions: input.payment_instructions,
            series: input.series,
            version: None,
        };
        let mut after = self.draft_quote(actor, merged).await?;
        after.id = before.id;
        after.created_at = before.created_at;
        after.created_by = before.created_by;
        after.version = before.version + 1;
        let cs = Changeset {
            writes: vec![Write::Update {
                kind: EntityKind::Quote,
                row: self.quote_row(&after)?,
                expected_version: before.version,
            }],
            audit: vec![],
        };
        self.commit(Some(actor), cs, "quote.updated", EntityKind::Quote, id, json!({"total": after.total})).await?;
        Ok(QuoteView::of(after, self.today()))
    }

    /// Deletes a draft quote.
    pub async fn delete_quote(&self, actor: &Actor, id: Uuid) -> Result<()> {
        self.require(actor, Action::Delete)?;
        let q = self.load_quote(id).await?;
        self.authorize(actor, Action::Delete, q.owner_id, q.team_id, "quote")?;
        if q.status != QuoteStatus::Draft {
            return Err(conflict("only a draft quote is deleted; decline it instead", "status"));
        }
        let cs = Changeset { writes: vec![Write::Purge { kind: EntityKind::Quote, column: "id", id }], audit: vec![] };
        self.commit(Some(actor), cs, "quote.deleted", EntityKind::Quote, id, json!({})).await
    }

    /// Sends a draft quote: numbered in the `QUO` series, customer and seller frozen,
    /// valid for the settings' days unless it says.
    pub async fn send_quote(&self, actor: &Actor, id: Uuid, input: IssueInput) -> Result<QuoteView> {
        self.require(actor, Action::Update)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = self.load_quote(id).await?;
            self.authorize(actor, Action::Update, before.owner_id, before.team_id, "quote")?;
            crate::service::write_path::check_version(input.version, before.version)?;
            if before.status != QuoteStatus::Draft {
                return Err(conflict(format!("the quote is {} already", before.status), "status"));
            }
            if before.lines.is_empty() {
                return Err(Error::invalid("lines", "required", "a quote is sent with at least one line"));
            }
            let settings = self.current_settings().await?;
            let issue = input.issue_date.unwrap_or_else(|| self.today());
            let (number, seq) = self.next_number("QUO", chrono::Datelike::year(&issue)).await?;
            let now = self.crm.now();
            let mut after = before.clone();
            after.number = Some(number.clone());
            after.status = QuoteStatus::Sent;
            after.issue_date = Some(issue);
            let validity = u64::try_from(settings.quote_validity_days).unwrap_or(30);
            after.valid_until = Some(before.valid_until.unwrap_or_else(|| issue + chrono::Days::new(validity)));
            after.customer = self.current_customer(before.company_id, before.contact_id).await?;
            after.seller = settings.seller;
            after.updated_at = now;
            after.version = before.version + 1;
            let cs = Changeset {
                writes: vec![
                    seq,
                    Write::Update {
                        kind: EntityKind::Quote,
                        row: self.quote_row(&after)?,
                        expected_version: before.version,
                    },
                ],
                audit: vec![],
            };
            match self
                .commit(
                    Some(actor),
                    cs,
                    "quote.sent",
                    EntityKind::Quote,
                    id,
                    json!({"number": number, "total": after.total, "validUntil": after.valid_until}),
                )
                .await
            {
                Ok(()) => return Ok(QuoteView::of(after, self.today())),
                Err(e) if is_retryable(&e) && attempt < ATTEMPTS => backoff(self.crm, attempt).await,
                Err(e) => return Err(e),
            }
        }
    }

    /// Records the customer's answer to a sent quote.
    pub async fn decide_quote(&self, actor: &Actor, id: Uuid, accept: bool) -> Result<QuoteView> {
        self.require(actor, Action::Update)?;
        let before = self.load_quote(id).await?;
        self.authorize(actor, Action::Update, before.owner_id, before.team_id, "quote")?;
        let view = QuoteView::of(before.clone(), self.today());
        if before.status != QuoteStatus::Sent {
            return Err(conflict(
                format!("the quote is {}; only a sent quote is accepted or declined", before.status),
                "status",
            ));
        }
        if accept && view.expired {
            return Err(conflict("the quote expired; send a new one", "validUntil"));
        }
        let now = self.crm.now();
        let after = Quote {
            status: if accept { QuoteStatus::Accepted } else { QuoteStatus::Declined },
            decided_at: Some(now),
            updated_at: now,
            version: before.version + 1,
            ..before.clone()
        };
        let action = if accept { "quote.accepted" } else { "quote.declined" };
        let cs = Changeset {
            writes: vec![Write::Update {
                kind: EntityKind::Quote,
                row: self.quote_row(&after)?,
                expected_version: before.version,
            }],
            audit: vec![],
        };
        self.commit(Some(actor), cs, action, EntityKind::Quote, id, json!({"number": after.number})).await?;
        Ok(QuoteView::of(after, self.today()))
    }

    /// A draft invoice of an accepted quote's lines; the quote becomes `converted`.
    pub async fn invoice_from_quote(&self, actor: &Actor, id: Uuid) -> Result<InvoiceView> {
        self.require(actor, Action::Create)?;
        let q = self.load_quote(id).await?;
        self.authorize(actor, Action::Update, q.owner_id, q.team_id, "quote")?;
        if q.status != QuoteStatus::Accepted {
            return Err(conflict(
                format!("the quote is {}; an invoice is made from an accepted quote", q.status),
                "status",
            ));
        }
        let input = DocumentInput {
            company_id: q.company_id,
            contact_id: q.contact_id,
            deal_id: q.deal_id,
            currency: Some(q.currency.code().into()),
            lines: Some(q.lines.iter().map(line_input).collect()),
            notes: q.notes.clone(),
            ..Default::default()
        };
        let inv = self.draft_invoice(actor, input, Some(&q)).await?;
        let now = self.crm.now();
        let qa = Quote {
            status: QuoteStatus::Converted,
            invoice_id: Some(inv.id),
            updated_at: now,
            version: q.version + 1,
            ..q.clone()
        };
        let mut cs = Changeset {
            writes: vec![
                Write::Insert { kind: EntityKind::Invoice, row: self.invoice_row(&inv)? },
                Write::Update { kind: EntityKind::Quote, row: self.quote_row(&qa)?, expected_version: q.version },
            ],
            audit: vec![],
        };
        cs.audit.push(self.crm.audit_event(
            actor,
            "quote.converted".into(),
            EntityKind::Quote,
            Some(q.id),
            json!({"invoiceId": inv.id}),
        ));
        self.commit(
            Some(actor),
            cs,
            "invoice.created",
            EntityKind::Invoice,
            inv.id,
            json!({"total": inv.total, "currency": inv.currency, "quoteId": q.id}),
        )
        .await?;
        Ok(InvoiceView::of(inv, self.today()))
    }
}

/// A stored line as the client would have written it (its amounts are recomputed).
fn line_input(l: &BillLine) -> LineInput {
    LineInput {
        product_id: None,
        kept: l.product_id.map(|id| (id, l.sku.clone())),
        name: Some(l.name.clone()),
        description: l.description.clone(),
        quantity: Some(l.quantity),
        unit: l.unit.clone(),
        unit_price: Some(l.unit_price),
        discount_percent: Some(l.discount_percent),
        tax_percent: Some(l.tax_percent),
    }
}

/// The purpose a pay link's signature is bound to.
const PAY_PURPOSE: &str = "billing.pay";

/// What a pay page needs to take a payment in the customer's browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PayIntent {
    /// The gateway (`stripe`).
    pub gateway: String,
    /// The gateway's intent id.
    pub intent_id: String,
    /// What Stripe.js confirms the payment with.
    pub client_secret: Option<String>,
    /// The gateway's public key.
    pub public_key: Option<String>,
    /// Minor units asked.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
}

impl BillingService<'_> {
    /// The signed token of an invoice's pay link.
    fn pay_token(&self, invoice: Uuid) -> Result<String> {
        let sig = self.crm.auth_settings()?.sealer.sign(PAY_PURPOSE, invoice.as_bytes());
        Ok(format!("{}.{sig}", invoice.simple()))
    }

    /// The invoice a pay token names, if its signature holds.
    pub fn verify_pay_token(&self, token: &str) -> Option<Uuid> {
        let (id, sig) = token.split_once('.')?;
        let id = Uuid::try_parse(id).ok()?;
        self.crm.auth_settings().ok()?.sealer.verify(PAY_PURPOSE, id.as_bytes(), sig).then_some(id)
    }

    /// The path of an issued invoice's hosted pay page (`/pay/<token>`), for the
    /// customer: no sign-in, the token names the invoice and nothing else.
    pub async fn pay_path(&self, actor: &Actor, invoice_id: Uuid) -> Result<String> {
        let v = self.invoice(actor, invoice_id).await?;
        if v.invoice.doc_type != DocumentType::Invoice || !open(v.invoice.status) {
            return Err(conflict(
                format!("the invoice is {}; only an issued, unpaid invoice is paid online", v.invoice.status),
                "status",
            ));
        }
        Ok(format!("/pay/{}", self.pay_token(invoice_id)?))
    }

    /// The invoice behind a pay token, as the customer sees it (`None`: a forged or
    /// unknown token).
    pub async fn invoice_for_payer(&self, token: &str) -> Result<Option<Invoice>> {
        let Some(id) = self.verify_pay_token(token) else { return Ok(None) };
        self.crm.store().get_as::<Invoice>(id).await?.map(|i| self.opened_invoice(i)).transpose()
    }

    /// A payment intent for what is left to pay on the invoice behind a pay token.
    pub async fn pay_intent(&self, gateway: &dyn gateway::PaymentGateway, token: &str) -> Result<PayIntent> {
        let inv = self.invoice_for_payer(token).await?.ok_or(Error::NotFound { entity: "invoice" })?;
        if inv.doc_type != DocumentType::Invoice || !open(inv.status) || inv.balance <= 0 {
            return Err(conflict(format!("the invoice is {}; nothing is left to pay", inv.status), "status"));
        }
        let req = gateway::IntentRequest {
            amount: inv.balance,
            currency: inv.currency.code().to_string(),
            invoice_id: inv.id,
            invoice_number: inv.number.clone(),
            customer: None,
            payment_method: None,
            method_types: vec![],
            // The same balance of the same invoice version asks for the same intent.
            idempotency_key: format!("invoice-{}-v{}-{}", inv.id, inv.version, inv.balance),
        };
        let intent = gateway.create_intent(&req).await?;
        Ok(PayIntent {
            gateway: gateway.name().into(),
            intent_id: intent.id,
            client_secret: intent.client_secret,
            public_key: gateway.public_key(),
            amount: inv.balance,
            currency: inv.currency.code().into(),
        })
    }

    /// Takes in a gateway's webhook event whose signature the caller verified: stored
    /// once by its event id (`false`: seen already, nothing to do), acted on later by
    /// [`BillingService::process_gateway_events`]. A body that is not an event is 422.
    pub async fn receive_gateway_event(&self, gateway: &str, body: &[u8]) -> Result<bool> {
        let j: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| Error::invalid("body", "invalid_value", format!("not a JSON event: {e}")))?;
        let s = |p: &str| j.pointer(p).and_then(|v| v.as_str()).map(str::to_string);
        let (Some(event_id), Some(event_type)) = (s("/id"), s("/type")) else {
            return Err(Error::invalid("body", "invalid_value", "an event has an id and a type"));
        };
        let id = crate::ids::derived_id(&[b"billing.gateway_event:", gateway.as_bytes(), b":", event_id.as_bytes()]);
        let now = self.crm.now();
        let ev = crate::model::billing::GatewayEvent {
            id,
            gateway: gateway.into(),
            event_id: event_id.chars().take(255).collect(),
            event_type: event_type.chars().take(100).collect(),
            object_id: s("/data/object/id").map(|o| o.chars().take(255).collect()),
            state: crate::model::billing::GatewayEventState::Queued,
            attempts: 0,
            error: None,
            received_at: now,
            processed_at: None,
            version: 1,
        };
        let cs = Changeset {
            writes: vec![Write::Insert { kind: EntityKind::GatewayEvent, row: to_row(&ev)? }],
            audit: vec![],
        };
        match self.crm.store().apply(cs).await {
            Ok(()) => Ok(true),
            Err(Error::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Acts on the queued events of a gateway: a `payment_intent.succeeded` has its
    /// intent fetched again from the gateway and, when the gateway says it succeeded,
    /// becomes a payment of the invoice in its metadata (once: the intent id is the
    /// payment's unique reference). Answers how many were acted on.
    pub async fn process_gateway_events(&self, gw: &dyn gateway::PaymentGateway) -> Result<usize> {
        use crate::model::billing::{GatewayEvent, GatewayEventState};
        let k = EntityKind::GatewayEvent;
        let q = StoreQuery {
            filter: Some(Filter::And(vec![
                Filter::Cmp(Cmp {
                    column: k.require_column("gateway")?,
                    pred: Predicate::Eq(Value::Text(gw.name().into())),
                }),
                Filter::Cmp(Cmp {
                    column: k.require_column("state")?,
                    pred: Predicate::Eq(Value::Text(GatewayEventState::Queued.as_str().into())),
                }),
            ])),
            sort: vec![SortKey { column: k.require_column("received_at")?, direction: Direction::Asc }],
            limit: 100,
            include_deleted: false,
        };
        let events: Vec<GatewayEvent> = self.crm.store().list_as(&q).await?;
        let mut done = 0;
        for ev in events {
            let (state, error) = match self.act_on(gw, &ev).await {
                Ok(s) => (s, None),
                Err(e @ (Error::Upstream { .. } | Error::Timeout(_))) if ev.attempts < 9 => {
                    (GatewayEventState::Queued, Some(e.to_string()))
                }
                Err(e) => (GatewayEventState::Failed, Some(e.to_string())),
            };
            let now = self.crm.now();
            let after = GatewayEvent {
                state,
                attempts: ev.attempts + 1,
                error: error.clone(),
                processed_at: (state != GatewayEventState::Queued).then_some(now),
                version: ev.version + 1,
                ..ev.clone()
            };
            let mut cs = Changeset {
                writes: vec![Write::Update { kind: k, row: to_row(&after)?, expected_version: ev.version }],
                audit: vec![],
            };
            if state == GatewayEventState::Failed {
                cs.audit.push(crate::campaign::system_audit(
                    self.crm,
                    "payment.gateway_event_failed",
                    k,
                    Some(ev.id),
                    json!({"gateway": ev.gateway, "eventId": ev.event_id, "type": ev.event_type, "error": error}),
                ));
            }
            match self.crm.store().apply(cs).await {
                Ok(()) | Err(Error::VersionConflict { .. }) => {}
                Err(e) => return Err(e),
            }
            if state != GatewayEventState::Queued {
                done += 1;
            }
        }
        Ok(done)
    }

    async fn act_on(
        &self,
        gw: &dyn gateway::PaymentGateway,
        ev: &crate::model::billing::GatewayEvent,
    ) -> Result<crate::model::billing::GatewayEventState> {
        use crate::model::billing::GatewayEventState as S;
        match ev.event_type.as_str() {
            "payment_intent.succeeded" => {
                let Some(pi) = ev.object_id.as_deref() else { return Ok(S::Ignored) };
                // The body said so; the gateway, asked with our secret key, decides.
                let intent = gw.retrieve_intent(pi).await?;
                if intent.status != "succeeded" {
                    return Err(Error::invalid(
                        "status",
                        "invalid_state",
                        format!("the gateway says the intent is {}", intent.status),
                    ));
                }
                let Some(invoice_id) = intent.invoice_id else { return Ok(S::Ignored) };
                let inv = self.load_invoice(invoice_id).await?;
                if !intent.currency.eq_ignore_ascii_case(inv.currency.code()) {
                    return Err(Error::invalid(
                        "currency",
                        "invalid_value",
                        format!("paid in {}, invoiced in {}", intent.currency, inv.currency),
                    ));
                }
                // Card, SEPA or ACH debit: as the gateway says of the method (a card when
                // it cannot say: the payment is recorded either way).
                let kind = match intent.payment_method.as_deref() {
                    Some(pm) => gw.retrieve_method(pm).await.ok().map(|m| m.kind),
                    None => None,
                };
                let method = charge::method_of(kind.as_deref());
                match self
                    .apply_payment(
                        None,
                        invoice_id,
                        intent.amount_received,
                        method,
                        gw.name(),
                        Some(intent.id.clone()),
                        self.crm.now(),
                        None,
                    )
                    .await
                {
                    Ok(_) => Ok(S::Done),
                    // Recorded already (an earlier event of the same intent).
                    Err(Error::Conflict { field: Some(f), .. }) if f == "reference" => Ok(S::Done),
                    Err(e) => Err(e),
                }
            }
            "charge.refunded" => {
                let Some(ch) = ev.object_id.as_deref().filter(|o| o.starts_with("ch_")) else {
                    return Ok(S::Ignored);
                };
                // Asked again: the gateway lists the charge's refunds.
                self.record_gateway_refunds(gw, ch).await?;
                Ok(S::Done)
            }
            "setup_intent.succeeded" => {
                let Some(seti) = ev.object_id.as_deref() else { return Ok(S::Ignored) };
                // Fetched again: the gateway says which company and method.
                match self.save_setup(gw, seti, None).await? {
                    Some(_) => Ok(S::Done),
                    None => Ok(S::Ignored),
                }
            }
            "payment_intent.payment_failed" => {
                let audit = crate::campaign::system_audit(
                    self.crm,
                    "payment.failed",
                    EntityKind::GatewayEvent,
                    Some(ev.id),
                    json!({"gateway": ev.gateway, "intent": ev.object_id}),
                );
                self.crm.store().apply(Changeset { writes: vec![], audit: vec![audit] }).await?;
                Ok(S::Done)
            }
            _ => Ok(S::Ignored),
        }
    }
}

/// The sensitive fields, sealed on the way to the store and opened on the way back
/// (see [`crypt`]): payment instructions (bank details) and the parties' tax ids.
impl BillingService<'_> {
    fn seal_party(&self, table: &str, which: &str, id: Uuid, p: &mut Party) -> Result<()> {
        let keys = self.crm.billing_keys();
        p.tax_id = keys.seal_opt(&crypt::aad(table, &format!("{which}.taxId"), id), &p.tax_id)?;
        Ok(())
    }

    fn open_party(&self, table: &str, which: &str, id: Uuid, p: &mut Party) -> Result<()> {
        let keys = self.crm.billing_keys();
        p.tax_id = keys.open_opt(&crypt::aad(table, &format!("{which}.taxId"), id), &p.tax_id)?;
        Ok(())
    }

    /// An invoice's row, its sensitive fields sealed.
    pub(crate) fn invoice_row(&self, inv: &Invoice) -> Result<crate::schema::Row> {
        let mut s = inv.clone();
        let keys = self.crm.billing_keys();
        s.payment_instructions =
            keys.seal_opt(&crypt::aad("invoices", "payment_instructions", s.id), &s.payment_instructions)?;
        self.seal_party("invoices", "customer", s.id, &mut s.customer)?;
        self.seal_party("invoices", "seller", s.id, &mut s.seller)?;
        to_row(&s)
    }

    /// An invoice as stored, its sensitive fields opened.
    pub(crate) fn opened_invoice(&self, mut inv: Invoice) -> Result<Invoice> {
        let keys = self.crm.billing_keys();
        inv.payment_instructions =
            keys.open_opt(&crypt::aad("invoices", "payment_instructions", inv.id), &inv.payment_instructions)?;
        let id = inv.id;
        self.open_party("invoices", "customer", id, &mut inv.customer)?;
        self.open_party("invoices", "seller", id, &mut inv.seller)?;
        Ok(inv)
    }

    /// A quote's row, its sensitive fields sealed.
    pub(crate) fn quote_row(&self, q: &Quote) -> Result<crate::schema::Row> {
        let mut s = q.clone();
        self.seal_party("quotes", "customer", s.id, &mut s.customer)?;
        self.seal_party("quotes", "seller", s.id, &mut s.seller)?;
        to_row(&s)
    }

    /// A quote as stored, its sensitive fields opened.
    pub(crate) fn opened_quote(&self, mut q: Quote) -> Result<Quote> {
        let id = q.id;
        self.open_party("quotes", "customer", id, &mut q.customer)?;
        self.open_party("quotes", "seller", id, &mut q.seller)?;
        Ok(q)
    }

    /// The settings' row, their sensitive fields sealed.
    fn settings_row(&self, st: &BillingSettings) -> Result<crate::schema::Row> {
        let mut s = st.clone();
        let keys = self.crm.billing_keys();
        s.payment_instructions =
            keys.seal_opt(&crypt::aad("billing_settings", "payment_instructions", s.id), &s.payment_instructions)?;
        self.seal_party("billing_settings", "seller", s.id, &mut s.seller)?;
        to_row(&s)
    }

    fn opened_settings(&self, mut st: BillingSettings) -> Result<BillingSettings> {
        let keys = self.crm.billing_keys();
        st.payment_instructions =
            keys.open_opt(&crypt::aad("billing_settings", "payment_instructions", st.id), &st.payment_instructions)?;
        let id = st.id;
        self.open_party("billing_settings", "seller", id, &mut st.seller)?;
        Ok(st)
    }

    /// Seals every stored billing field again under the current key (after a new key
    /// was made current and the old one kept as previous): answers how many rows
    /// changed. Safe to run twice, and beside the servers (versioned writes).
    pub async fn rotate_keys(&self) -> Result<usize> {
        let keys = self.crm.billing_keys();
        let stale = |v: &Option<String>| v.as_deref().is_some_and(|x| !keys.is_current(x));
        let mut changed = 0;
        for kind in [EntityKind::Invoice, EntityKind::Quote, EntityKind::BillingSettings, EntityKind::PaymentProfile] {
            let mut after: Option<Uuid> = None;
            loop {
                let k = kind;
                let filter = after.map(|a| {
                    Ok::<_, Error>(Filter::Cmp(Cmp {
                        column: k.require_column("id")?,
                        pred: Predicate::Gt(Value::Uuid(a)),
                    }))
                });
                let q = StoreQuery {
                    filter: filter.transpose()?,
                    sort: vec![SortKey { column: k.require_column("id")?, direction: Direction::Asc }],
                    limit: 500,
                    include_deleted: true,
                };
                let mut writes = Vec::new();
                let last = match kind {
                    EntityKind::Invoice => {
                        let rows: Vec<Invoice> = self.crm.store().list_as(&q).await?;
                        for raw in &rows {
                            if stale(&raw.payment_instructions)
                                || stale(&raw.customer.tax_id)
                                || stale(&raw.seller.tax_id)
                            {
                                let mut open = self.opened_invoice(raw.clone())?;
                                open.version = raw.version + 1;
                                writes.push(Write::Update {
                                    kind,
                                    row: self.invoice_row(&open)?,
                                    expected_version: raw.version,
                                });
                            }
                        }
                        rows.last().map(|r| r.id)
                    }
                    EntityKind::Quote => {
                        let rows: Vec<Quote> = self.crm.store().list_as(&q).await?;
                        for raw in &rows {
                            if stale(&raw.customer.tax_id) || stale(&raw.seller.tax_id) {
                                let mut open = self.opened_quote(raw.clone())?;
                                open.version = raw.version + 1;
                                writes.push(Write::Update {
                                    kind,
                                    row: self.quote_row(&open)?,
                                    expected_version: raw.version,
                                });
                            }
                        }
                        rows.last().map(|r| r.id)
                    }
                    EntityKind::PaymentProfile => {
                        let rows: Vec<crate::model::billing::PaymentProfile> = self.crm.store().list_as(&q).await?;
                        for raw in &rows {
                            if !keys.is_current(&raw.customer_ref) || stale(&raw.method_ref) {
                                let mut open = self.opened_profile(raw.clone())?;
                                open.version = raw.version + 1;
                                writes.push(Write::Update {
                                    kind,
                                    row: self.profile_row(&open)?,
                                    expected_version: raw.version,
                                });
                            }
                        }
                        rows.last().map(|r| r.id)
                    }
                    _ => {
                        let rows: Vec<BillingSettings> = self.crm.store().list_as(&q).await?;
                        for raw in &rows {
                            if stale(&raw.payment_instructions) || stale(&raw.seller.tax_id) {
                                let mut open = self.opened_settings(raw.clone())?;
                                open.version = raw.version + 1;
                                writes.push(Write::Update {
                                    kind,
                                    row: self.settings_row(&open)?,
                                    expected_version: raw.version,
                                });
                            }
                        }
                        rows.last().map(|r| r.id)
                    }
                };
                if !writes.is_empty() {
                    changed += writes.len();
                    let audit = crate::campaign::system_audit(
                        self.crm,
                        "billing.keys_rotated",
                        kind,
                        None,
                        json!({"rows": writes.len(), "key": keys.current_id()}),
                    );
                    self.crm.store().apply(Changeset { writes, audit: vec![audit] }).await?;
                }
                match last {
                    Some(id) => after = Some(id),
                    None => break,
                }
            }
        }
        Ok(changed)
    }
}

/// Accounting exports (see [`accounting`]).
impl BillingService<'_> {
    /// The UBL 2.1 document of an issued invoice or credit note, and its file name.
    pub async fn ubl(&self, actor: &Actor, id: Uuid) -> Result<(String, String)> {
        let inv = self.invoice(actor, id).await?.invoice;
        let Some(number) = inv.number.clone() else {
            return Err(conflict("a draft has no UBL document: issue it first", "status"));
        };
        let credited = match inv.credited_invoice_id {
            Some(c) => self.load_invoice(c).await?.number,
            None => None,
        };
        Ok((format!("{number}.xml"), accounting::ubl(&inv, credited.as_deref())))
    }

    /// The journal (CSV) of the documents issued and the payments received from `from`
    /// to `to` (inclusive; managers and admins).
    pub async fn journal(&self, actor: &Actor, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<String> {
        self.require(actor, Action::Export)?;
        let (from, to) = (from.unwrap_or(NaiveDate::MIN), to.unwrap_or(NaiveDate::MAX));
        if from > to {
            return Err(Error::invalid("from", "out_of_range", "from is after to"));
        }
        let mut invoices = Vec::new();
        let mut after: Option<Uuid> = None;
        let k = EntityKind::Invoice;
        loop {
            let filter = after
                .map(|a| {
                    Ok::<_, Error>(Filter::Cmp(Cmp {
                        column: k.require_column("id")?,
                        pred: Predicate::Gt(Value::Uuid(a)),
                    }))
                })
                .transpose()?;
            let q = StoreQuery {
                filter,
                sort: vec![SortKey { column: k.require_column("id")?, direction: Direction::Asc }],
                limit: 1000,
                include_deleted: false,
            };
            let page: Vec<Invoice> = self.crm.store().list_as(&q).await?;
            let Some(last) = page.last().map(|i| i.id) else { break };
            for i in page {
                if i.issue_date.is_some_and(|d| d >= from && d <= to) {
                    invoices.push(self.opened_invoice(i)?);
                }
            }
            after = Some(last);
        }
        let numbers: std::collections::HashMap<Uuid, String> =
            invoices.iter().filter_map(|i| i.number.clone().map(|n| (i.id, n))).collect();
        let mut payments = Vec::new();
        for p in self.payments(actor, None).await? {
            let d = p.received_at.date_naive();
            if d < from || d > to {
                continue;
            }
            let number = match numbers.get(&p.invoice_id) {
                Some(n) => n.clone(),
                None => self.load_invoice(p.invoice_id).await?.number.unwrap_or_default(),
            };
            payments.push((p, number));
        }
        Ok(accounting::journal_csv(&invoices, &payments))
    }
}
