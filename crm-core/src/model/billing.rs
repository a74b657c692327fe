//! Billing: the [`Product`] catalogue, [`Quote`]s, [`Invoice`]s and credit notes with
//! their gapless numbers ([`BillingSequence`]), the [`Payment`]s and refunds made
//! against them, and the seller's details ([`BillingSettings`]).
//!
//! Money is always an integer of minor units (cents) with its ISO 4217 currency. The one
//! rounding rule: each line's discount and tax are rounded half away from zero, on the
//! line; every total is the exact sum of its lines, so totals add up to the cent.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::string_enum;
use crate::schema::{Column, ColumnType as T, EntityKind, Index, Persist, NAME_CHARS};
use crate::values::{Currency, Percent};

string_enum! {
    /// What an invoice row is.
    DocumentType {
        /// An invoice: the customer owes its total.
        Invoice = "invoice",
        /// A credit note: reverses (part of) an invoice.
        CreditNote = "credit_note",
    }
}

string_enum! {
    /// Where an invoice (or credit note) is. `overdue` is not a status: it is computed
    /// from the due date of an unpaid, issued invoice.
    InvoiceStatus {
        /// Being written: no number yet, every field may change, may be deleted.
        Draft = "draft",
        /// Numbered and final: only payments and credit notes change it from here.
        Issued = "issued",
        /// Issued and sent to the customer.
        Sent = "sent",
        /// Part of the total has been paid.
        PartiallyPaid = "partially_paid",
        /// Paid (or settled by payments and credit notes together).
        Paid = "paid",
        /// Reversed in whole by credit notes.
        Credited = "credited",
        /// Cancelled before any payment; its number stays used.
        Void = "void",
    }
}

string_enum! {
    /// Where a quote is. `expired` is computed from `validUntil`.
    QuoteStatus {
        /// Being written.
        Draft = "draft",
        /// Numbered and sent to the customer.
        Sent = "sent",
        /// The customer said yes; an invoice can be made from it.
        Accepted = "accepted",
        /// The customer said no.
        Declined = "declined",
        /// Its invoice was made.
        Converted = "converted",
    }
}

string_enum! {
    /// When an invoice falls due, counted from its issue date.
    PaymentTerms {
        /// On the issue date.
        DueOnReceipt = "due_on_receipt",
        /// 7 days after.
        Net7 = "net_7",
        /// 10 days after.
        Net10 = "net_10",
        /// 15 days after.
        Net15 = "net_15",
        /// 30 days after.
        Net30 = "net_30",
        /// 45 days after.
        Net45 = "net_45",
        /// 60 days after.
        Net60 = "net_60",
        /// 90 days after.
        Net90 = "net_90",
        /// The last day of the issue date's month.
        EndOfMonth = "end_of_month",
        /// The last day of the month after.
        EndOfNextMonth = "end_of_next_month",
    }
}

impl PaymentTerms {
    /// The due date of an invoice issued on `issued`.
    pub fn due_date(&self, issued: NaiveDate) -> NaiveDate {
        use chrono::{Datelike, Days, Months};
        let days = |n: u64| issued.checked_add_days(Days::new(n)).unwrap_or(issued);
        let month_end = |months: u32| {
            let first = issued.with_day(1).unwrap_or(issued);
            first.checked_add_months(Months::new(months + 1)).and_then(|d| d.pred_opt()).unwrap_or(issued)
        };
        match self {
            PaymentTerms::DueOnReceipt => issued,
            PaymentTerms::Net7 => days(7),
            PaymentTerms::Net10 => days(10),
            PaymentTerms::Net15 => days(15),
            PaymentTerms::Net30 => days(30),
            PaymentTerms::Net45 => days(45),
            PaymentTerms::Net60 => days(60),
            PaymentTerms::Net90 => days(90),
            PaymentTerms::EndOfMonth => month_end(0),
            PaymentTerms::EndOfNextMonth => month_end(1),
        }
    }
}

string_enum! {
    /// How money moved.
    PaymentMethod {
        /// A card, through the gateway.
        Card = "card",
        /// A SEPA direct debit.
        SepaDebit = "sepa_debit",
        /// A US ACH debit.
        AchDebit = "ach_debit",
        /// A wallet (Apple Pay, Google Pay, Link).
        Wallet = "wallet",
        /// A bank transfer the seller received.
        BankTransfer = "bank_transfer",
        /// Cash.
        Cash = "cash",
        /// A cheque.
        Check = "check",
        /// Anything else.
        Other = "other",
    }
}

string_enum! {
    /// Money in or money back.
    PaymentKind {
        /// The customer paid.
        Payment = "payment",
        /// Money went back to the customer.
        Refund = "refund",
    }
}

/// An item of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// Id.
    pub id: Uuid,
    /// The stock-keeping unit, unique (`PRO-SEAT`).
    pub sku: String,
    /// Its name on quotes and invoices.
    pub name: String,
    /// A longer description.
    pub description: Option<String>,
    /// The price of one unit, in minor units of `currency`.
    pub unit_price: i64,
    /// ISO 4217.
    pub currency: Currency,
    /// The tax rate lines of it get unless they say otherwise.
    pub tax_percent: Percent,
    /// What one unit is (`seat`, `hour`, `month`).
    pub unit: Option<String>,
    /// Offered on new quotes and invoices.
    pub active: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

impl Persist for Product {
    const KIND: EntityKind = EntityKind::Product;
    fn search_text(&self) -> String {
        format!("{} {}", self.sku, self.name)
    }
}

/// Storage columns of products.
pub static PRODUCT_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("sku", "sku", T::Text).sort(),
    Column::new("name", "name", T::Text).sort().chars(NAME_CHARS),
    Column::new("description", "description", T::Text).null(),
    Column::new("unit_price", "unitPrice", T::Int).sort(),
    Column::new("currency", "currency", T::Text).filter(),
    Column::new("tax_percent", "taxPercent", T::Json),
    Column::new("unit", "unit", T::Text).null(),
    Column::new("active", "active", T::Bool).filter(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
    Column::new("search_text", "", T::Text),
];

/// The indexes of `products` besides the primary key: the unique SKU, by name.
pub static PRODUCT_INDEXES: &[Index] =
    &[Index::on("products_sku_key", &["sku"]).unique(), Index::on("products_name_idx", &["name", "id"])];

/// One line of a quote, an invoice or a credit note. The amounts after `tax_percent`
/// are computed by the server: `gross = quantity × unitPrice`, `discount = gross ×
/// discountPercent`, `net = gross − discount`, `tax = net × taxPercent`, `total = net +
/// tax`, each percentage rounded half away from zero on the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BillLine {
    /// The catalogue product, when it comes from one.
    pub product_id: Option<Uuid>,
    /// The product's SKU at the time.
    pub sku: Option<String>,
    /// What is sold.
    pub name: String,
    /// More about it.
    pub description: Option<String>,
    /// How many (at least 1).
    pub quantity: i64,
    /// What one unit is.
    pub unit: Option<String>,
    /// Price of one, in minor units.
    pub unit_price: i64,
    /// Discount on the line.
    pub discount_percent: Percent,
    /// Tax on the discounted line.
    pub tax_percent: Percent,
    /// quantity × unit price.
    pub gross: i64,
    /// The discount, rounded.
    pub discount: i64,
    /// gross − discount.
    pub net: i64,
    /// The tax, rounded.
    pub tax: i64,
    /// net + tax.
    pub total: i64,
}

/// The tax of one rate over a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TaxTotal {
    /// The rate.
    pub rate: Percent,
    /// The net amount taxed at it.
    pub net: i64,
    /// Its tax (the sum of the lines' rounded taxes).
    pub tax: i64,
}

/// A buyer or a seller as printed on a document, copied when it is issued so that a
/// later change of the company does not change an issued invoice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default)]
pub struct Party {
    /// Its name.
    pub name: String,
    /// The contact person.
    pub contact_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Postal address, one line each.
    pub address_lines: Vec<String>,
    /// ISO 3166 country code.
    pub country: Option<String>,
    /// VAT number or other tax id.
    pub tax_id: Option<String>,
    /// Company registration number.
    pub registration: Option<String>,
    /// Website.
    pub website: Option<String>,
}

/// An invoice or a credit note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    /// Id.
    pub id: Uuid,
    /// Invoice or credit note.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "invoice"))]
    pub doc_type: DocumentType,
    /// The number series (`INV`, `CN`, or one of the workspace's).
    pub series: String,
    /// `INV-2026-000123`: given when it is issued, never reused, no gaps.
    pub number: Option<String>,
    /// Where it is.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "draft"))]
    pub status: InvoiceStatus,
    /// The customer company.
    pub company_id: Option<Uuid>,
    /// The customer contact.
    pub contact_id: Option<Uuid>,
    /// The deal it bills.
    pub deal_id: Option<Uuid>,
    /// The quote it was made from.
    pub quote_id: Option<Uuid>,
    /// For a credit note: the invoice it reverses.
    pub credited_invoice_id: Option<Uuid>,
    /// The subscription whose period it bills.
    pub subscription_id: Option<Uuid>,
    /// ISO 4217; every amount is in it.
    pub currency: Currency,
    /// The lines.
    pub lines: Vec<BillLine>,
    /// Tax by rate.
    pub taxes: Vec<TaxTotal>,
    /// Σ gross.
    pub subtotal: i64,
    /// Σ discount.
    pub discount_total: i64,
    /// Σ tax.
    pub tax_total: i64,
    /// Σ line totals: what the customer owes.
    pub total: i64,
    /// Paid, net of refunds.
    pub amount_paid: i64,
    /// Reversed by credit notes.
    pub amount_credited: i64,
    /// total − paid − credited (negative: owed to the customer).
    pub balance: i64,
    /// The date it was issued.
    pub issue_date: Option<NaiveDate>,
    /// When it falls due.
    pub due_date: Option<NaiveDate>,
    /// How the due date was set.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "net_30"))]
    pub payment_terms: PaymentTerms,
    /// How to pay (bank details, reference to quote).
    pub payment_instructions: Option<String>,
    /// A note printed on it.
    pub notes: Option<String>,
    /// For a subscription's invoice: the period billed.
    pub period_start: Option<NaiveDate>,
    /// Last day of the period billed.
    pub period_end: Option<NaiveDate>,
    /// The buyer as printed (fixed when issued).
    pub customer: Party,
    /// The seller as printed (fixed when issued).
    pub seller: Party,
    /// When it was issued.
    pub issued_at: Option<DateTime<Utc>>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was paid in full.
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was voided.
    pub voided_at: Option<DateTime<Utc>>,
    /// Why it was voided, or why the credit note was made.
    pub reason: Option<String>,
    /// Charging the customer's saved payment method: `due` (the payments loop charges
    /// it), `charging`, `charged` (the gateway took it) or `failed` (`chargeError`
    /// says why); none when it is paid otherwise.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "charged"))]
    pub charge_state: Option<ChargeState>,
    /// Charges of the saved method tried so far (each its own idempotency key).
    #[serde(default)]
    pub charge_attempts: i64,
    /// Why the last charge failed (`Your card was declined.`).
    #[serde(default)]
    pub charge_error: Option<String>,
    /// The salesperson (the deal's or company's owner): whose records it goes with.
    pub owner_id: Uuid,
    /// Their team.
    pub team_id: Option<Uuid>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: Option<Uuid>,
    /// Version.
    pub version: i64,
}

impl Persist for Invoice {
    const KIND: EntityKind = EntityKind::Invoice;
}

/// Storage columns of invoices.
pub static INVOICE_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("doc_type", "docType", T::Text).filter().choices(DocumentType::CHOICES),
    Column::new("series", "series", T::Text).filter(),
    Column::new("number", "number", T::Text).null().sort(),
    Column::new("status", "status", T::Text).filter().choices(InvoiceStatus::CHOICES),
    Column::new("company_id", "companyId", T::Uuid).null().filter(),
    Column::new("contact_id", "contactId", T::Uuid).null().filter(),
    Column::new("deal_id", "dealId", T::Uuid).null().filter(),
    Column::new("quote_id", "quoteId", T::Uuid).null().filter(),
    Column::new("credited_invoice_id", "creditedInvoiceId", T::Uuid).null().filter(),
    Column::new("subscription_id", "subscriptionId", T::Uuid).null().filter(),
    Column::new("currency", "currency", T::Text).filter(),
    Column::new("lines", "lines", T::Json),
    Column::new("taxes", "taxes", T::Json),
    Column::new("subtotal", "subtotal", T::Int),
    Column::new("discount_total", "discountTotal", T::Int),
    Column::new("tax_total", "taxTotal", T::Int),
    Column::new("total", "total", T::Int).sort(),
    Column::new("amount_paid", "amountPaid", T::Int).filter(),
    Column::new("amount_credited", "amountCredited", T::Int).filter(),
    Column::new("balance", "balance", T::Int).sort(),
    Column::new("issue_date", "issueDate", T::Date).null().sort(),
    Column::new("due_date", "dueDate", T::Date).null().sort(),
    Column::new("payment_terms", "paymentTerms", T::Text).choices(PaymentTerms::CHOICES),
    Column::new("payment_instructions", "paymentInstructions", T::Text).null(),
    Column::new("notes", "notes", T::Text).null(),
    Column::new("period_start", "periodStart", T::Date).null().filter(),
    Column::new("period_end", "periodEnd", T::Date).null(),
    Column::new("customer", "customer", T::Json),
    Column::new("seller", "seller", T::Json),
    Column::new("issued_at", "issuedAt", T::Timestamp).null().sort(),
    Column::new("sent_at", "sentAt", T::Timestamp).null().sort(),
    Column::new("paid_at", "paidAt", T::Timestamp).null().sort(),
    Column::new("voided_at", "voidedAt", T::Timestamp).null(),
    Column::new("reason", "reason", T::Text).null(),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("created_by", "createdBy", T::Uuid).null().filter(),
    Column::new("version", "version", T::Int).filter(),
    // Migration 14.
    Column::new("charge_state", "chargeState", T::Text).null().filter().choices(ChargeState::CHOICES),
    Column::new("charge_attempts", "chargeAttempts", T::Int),
    Column::new("charge_error", "chargeError", T::Text).null(),
];

/// The indexes of `invoices` besides the primary key: the unique number, one invoice
/// per subscription period, and the list paths.
pub static INVOICE_INDEXES: &[Index] = &[
    Index::on("invoices_number_key", &["number"]).unique(),
    Index::on("invoices_period_key", &["subscription_id", "period_start"]).unique(),
    Index::on("invoices_status_idx", &["status", "due_date"]),
    Index::on("invoices_company_idx", &["company_id", "created_at"]),
    Index::on("invoices_deal_idx", &["deal_id"]),
    Index::on("invoices_charge_idx", &["charge_state", "updated_at"]),
    Index::on("invoices_owner_idx", &["owner_id", "created_at", "id"]),
];

/// A quote: an offer the customer accepts or declines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    /// Id.
    pub id: Uuid,
    /// `QUO-2026-000042`: given when it is sent.
    pub number: Option<String>,
    /// Where it is.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "draft"))]
    pub status: QuoteStatus,
    /// The customer company.
    pub company_id: Option<Uuid>,
    /// The customer contact.
    pub contact_id: Option<Uuid>,
    /// The deal it prices.
    pub deal_id: Option<Uuid>,
    /// The invoice made from it.
    pub invoice_id: Option<Uuid>,
    /// ISO 4217.
    pub currency: Currency,
    /// The lines.
    pub lines: Vec<BillLine>,
    /// Tax by rate.
    pub taxes: Vec<TaxTotal>,
    /// Σ gross.
    pub subtotal: i64,
    /// Σ discount.
    pub discount_total: i64,
    /// Σ tax.
    pub tax_total: i64,
    /// Σ line totals.
    pub total: i64,
    /// The date it was sent.
    pub issue_date: Option<NaiveDate>,
    /// The last day it may be accepted.
    pub valid_until: Option<NaiveDate>,
    /// A note printed on it.
    pub notes: Option<String>,
    /// The buyer as printed.
    pub customer: Party,
    /// The seller as printed.
    pub seller: Party,
    /// When it was accepted or declined.
    pub decided_at: Option<DateTime<Utc>>,
    /// The salesperson.
    pub owner_id: Uuid,
    /// Their team.
    pub team_id: Option<Uuid>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: Option<Uuid>,
    /// Version.
    pub version: i64,
}

impl Persist for Quote {
    const KIND: EntityKind = EntityKind::Quote;
}

/// Storage columns of quotes.
pub static QUOTE_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("number", "number", T::Text).null().sort(),
    Column::new("status", "status", T::Text).filter().choices(QuoteStatus::CHOICES),
    Column::new("company_id", "companyId", T::Uuid).null().filter(),
    Column::new("contact_id", "contactId", T::Uuid).null().filter(),
    Column::new("deal_id", "dealId", T::Uuid).null().filter(),
    Column::new("invoice_id", "invoiceId", T::Uuid).null().filter(),
    Column::new("currency", "currency", T::Text).filter(),
    Column::new("lines", "lines", T::Json),
    Column::new("taxes", "taxes", T::Json),
    Column::new("subtotal", "subtotal", T::Int),
    Column::new("discount_total", "discountTotal", T::Int),
    Column::new("tax_total", "taxTotal", T::Int),
    Column::new("total", "total", T::Int).sort(),
    Column::new("issue_date", "issueDate", T::Date).null().sort(),
    Column::new("valid_until", "validUntil", T::Date).null().sort(),
    Column::new("notes", "notes", T::Text).null(),
    Column::new("customer", "customer", T::Json),
    Column::new("seller", "seller", T::Json),
    Column::new("decided_at", "decidedAt", T::Timestamp).null(),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("created_by", "createdBy", T::Uuid).null().filter(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `quotes` besides the primary key.
pub static QUOTE_INDEXES: &[Index] = &[
    Index::on("quotes_number_key", &["number"]).unique(),
    Index::on("quotes_deal_idx", &["deal_id"]),
    Index::on("quotes_owner_idx", &["owner_id", "created_at", "id"]),
];

/// The last number given in one series and year. Its id is derived from both, so the
/// first issuer of a year inserts it and every later one raises it by one in the same
/// transaction as the document it numbers: a number is used only if its document is
/// stored, and two issuers never get the same one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingSequence {
    /// Derived from series and year.
    pub id: Uuid,
    /// `INV`, `CN`, `QUO`.
    pub series: String,
    /// The year of the issue dates it numbers.
    pub year: i64,
    /// The last number given.
    pub last: i64,
    /// Version.
    pub version: i64,
}

impl Persist for BillingSequence {
    const KIND: EntityKind = EntityKind::BillingSequence;
}

/// Storage columns of billing sequences.
pub static SEQUENCE_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("series", "series", T::Text).filter(),
    Column::new("year", "year", T::Int).filter(),
    Column::new("last", "last", T::Int),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `billing_sequences`: one row per series and year.
pub static SEQUENCE_INDEXES: &[Index] = &[Index::on("billing_sequences_key", &["series", "year"]).unique()];

/// Money received for an invoice, or given back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// Id.
    pub id: Uuid,
    /// The invoice.
    pub invoice_id: Uuid,
    /// Payment or refund.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "payment"))]
    pub kind: PaymentKind,
    /// The amount, positive, in minor units of `currency`.
    pub amount: i64,
    /// The invoice's currency.
    pub currency: Currency,
    /// How.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "bank_transfer"))]
    pub method: PaymentMethod,
    /// `manual` (recorded by a person) or the gateway's name (`stripe`).
    pub gateway: String,
    /// The bank reference or the gateway's id (`pi_…`); one payment per gateway id.
    pub reference: Option<String>,
    /// For a refund: the payment it gives back.
    pub refund_of: Option<Uuid>,
    /// For a payment: how much of it was refunded.
    pub refunded: i64,
    /// When the money arrived.
    pub received_at: DateTime<Utc>,
    /// A note.
    pub note: Option<String>,
    /// The invoice's owner.
    pub owner_id: Uuid,
    /// Their team.
    pub team_id: Option<Uuid>,
    /// Who recorded it (none: the gateway).
    pub recorded_by: Option<Uuid>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

impl Persist for Payment {
    const KIND: EntityKind = EntityKind::Payment;
}

/// Storage columns of payments.
pub static PAYMENT_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("invoice_id", "invoiceId", T::Uuid).filter(),
    Column::new("kind", "kind", T::Text).filter().choices(PaymentKind::CHOICES),
    Column::new("amount", "amount", T::Int).sort(),
    Column::new("currency", "currency", T::Text).filter(),
    Column::new("method", "method", T::Text).filter().choices(PaymentMethod::CHOICES),
    Column::new("gateway", "gateway", T::Text).filter(),
    Column::new("reference", "reference", T::Text).null().filter(),
    Column::new("refund_of", "refundOf", T::Uuid).null().filter(),
    Column::new("refunded", "refunded", T::Int),
    Column::new("received_at", "receivedAt", T::Timestamp).sort(),
    Column::new("note", "note", T::Text).null(),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("recorded_by", "recordedBy", T::Uuid).null().filter(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `payments`: by invoice, and one row per gateway id.
pub static PAYMENT_INDEXES: &[Index] = &[
    Index::on("payments_invoice_idx", &["invoice_id", "received_at"]),
    Index::on("payments_reference_key", &["gateway", "kind", "reference"]).unique(),
];

/// The seller's details printed on every quote and invoice, and the workspace's billing
/// defaults. One row, id [`BillingSettings::ID`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BillingSettings {
    /// Always [`BillingSettings::ID`].
    pub id: Uuid,
    /// The seller.
    pub seller: Party,
    /// The default payment terms of new invoices.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "net_30"))]
    pub payment_terms: PaymentTerms,
    /// The default payment instructions (bank account, reference).
    pub payment_instructions: Option<String>,
    /// The currency of new documents without a deal.
    pub currency: Currency,
    /// Days a quote stays valid.
    pub quote_validity_days: i64,
    /// A footer printed on every document (terms, legal mentions).
    pub footer: Option<String>,
    /// The accent colour of the PDF and HTML (`#1f6feb`).
    pub accent_color: String,
    /// The logo, as a `data:image/png;base64,…` or `data:image/svg+xml;…` URL.
    pub logo: Option<String>,
    /// The language of documents: `en`, `fr` or `ar`.
    pub language: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

impl BillingSettings {
    /// The id of the one row.
    pub const ID: Uuid = Uuid::from_u128(0xb111_0000_0000_7000_8000_0000_0000_0001);
}

impl Persist for BillingSettings {
    const KIND: EntityKind = EntityKind::BillingSettings;
}

/// Storage columns of the billing settings.
pub static SETTINGS_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("seller", "seller", T::Json),
    Column::new("payment_terms", "paymentTerms", T::Text).choices(PaymentTerms::CHOICES),
    Column::new("payment_instructions", "paymentInstructions", T::Text).null(),
    Column::new("currency", "currency", T::Text),
    Column::new("quote_validity_days", "quoteValidityDays", T::Int),
    Column::new("footer", "footer", T::Text).null(),
    Column::new("accent_color", "accentColor", T::Text),
    Column::new("logo", "logo", T::Text).null(),
    Column::new("language", "language", T::Text),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// No index besides the primary key.
pub static SETTINGS_INDEXES: &[Index] = &[];

string_enum! {
    /// Where a gateway's webhook event is.
    GatewayEventState {
        /// Taken in, not yet acted on.
        Queued = "queued",
        /// Acted on (a payment recorded, or nothing to record).
        Done = "done",
        /// Of a type billing does not act on.
        Ignored = "ignored",
        /// Could not be acted on; `error` says why (a person looks at it).
        Failed = "failed",
    }
}

/// A webhook event from a payment gateway, kept so that each is acted on once (Stripe
/// delivers at least once, and retries) and so that a crash between taking it in and
/// acting on it loses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GatewayEvent {
    /// Derived from the gateway and its event id.
    pub id: Uuid,
    /// `stripe`.
    pub gateway: String,
    /// The gateway's event id (`evt_…`).
    pub event_id: String,
    /// `payment_intent.succeeded`, …
    pub event_type: String,
    /// The object it is about (`pi_…`), fetched again from the gateway to act.
    pub object_id: Option<String>,
    /// Where it is.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "queued"))]
    pub state: GatewayEventState,
    /// Attempts to act on it.
    pub attempts: i64,
    /// The last failure.
    pub error: Option<String>,
    /// When it came.
    pub received_at: DateTime<Utc>,
    /// When it was acted on.
    pub processed_at: Option<DateTime<Utc>>,
    /// Version.
    pub version: i64,
}

impl Persist for GatewayEvent {
    const KIND: EntityKind = EntityKind::GatewayEvent;
}

/// Storage columns of gateway events.
pub static EVENT_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("gateway", "gateway", T::Text).filter(),
    Column::new("event_id", "eventId", T::Text).filter(),
    Column::new("event_type", "eventType", T::Text).filter(),
    Column::new("object_id", "objectId", T::Text).null().filter(),
    Column::new("state", "state", T::Text).filter().choices(GatewayEventState::CHOICES),
    Column::new("attempts", "attempts", T::Int),
    Column::new("error", "error", T::Text).null(),
    Column::new("received_at", "receivedAt", T::Timestamp).sort(),
    Column::new("processed_at", "processedAt", T::Timestamp).null(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `gateway_events`: one row per gateway event, the queue.
pub static EVENT_INDEXES: &[Index] = &[
    Index::on("gateway_events_event_key", &["gateway", "event_id"]).unique(),
    Index::on("gateway_events_queue_idx", &["state", "received_at"]),
];

string_enum! {
    /// Where charging an invoice to a saved payment method is.
    ChargeState {
        /// To be charged by the payments loop.
        Due = "due",
        /// Claimed by one server and sent to the gateway (retried with the same
        /// idempotency key if that server stopped halfway).
        Charging = "charging",
        /// The gateway took the charge (the payment is recorded once it succeeds).
        Charged = "charged",
        /// Declined, or no method saved; `chargeError` says why.
        Failed = "failed",
    }
}

/// A company's customer record at a payment gateway and the payment method it saved
/// for later charges (the card behind a subscription). The gateway's ids are sealed
/// at rest; people see the method's label (`visa •••• 4242`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentProfile {
    /// Derived from the company and the gateway: one per pair.
    pub id: Uuid,
    /// The customer company.
    pub company_id: Uuid,
    /// `stripe`.
    pub gateway: String,
    /// The gateway's customer (`cus_…`), sealed.
    pub customer_ref: String,
    /// The saved method (`pm_…`), sealed; none until the customer saves one.
    pub method_ref: Option<String>,
    /// `card`, `sepa_debit`, …
    pub method_kind: Option<String>,
    /// What a person recognises it by.
    pub method_label: Option<String>,
    /// When it was saved.
    pub method_saved_at: Option<DateTime<Utc>>,
    /// When the profile was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

impl Persist for PaymentProfile {
    const KIND: EntityKind = EntityKind::PaymentProfile;
}

/// Storage columns of payment profiles.
pub static PROFILE_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("company_id", "companyId", T::Uuid).filter(),
    Column::new("gateway", "gateway", T::Text).filter(),
    Column::new("customer_ref", "customerRef", T::Text),
    Column::new("method_ref", "methodRef", T::Text).null(),
    Column::new("method_kind", "methodKind", T::Text).null(),
    Column::new("method_label", "methodLabel", T::Text).null(),
    Column::new("method_saved_at", "methodSavedAt", T::Timestamp).null(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `payment_profiles`: one per company and gateway.
pub static PROFILE_INDEXES: &[Index] =
    &[Index::on("payment_profiles_company_key", &["company_id", "gateway"]).unique()];

string_enum! {
    /// How often a subscription bills.
    BillingFrequency {
        /// Every `interval` weeks (1 by default).
        Weekly = "weekly",
        /// Every `interval` months (1 by default).
        Monthly = "monthly",
        /// Every three months.
        Quarterly = "quarterly",
        /// Every six months.
        Semiannual = "semiannual",
        /// Every `interval` years (1 by default).
        Yearly = "yearly",
    }
}

string_enum! {
    /// Where a subscription is.
    SubscriptionStatus {
        /// Bills each period.
        Active = "active",
        /// Bills nothing until resumed (periods missed meanwhile are skipped).
        Paused = "paused",
        /// Ended by a person.
        Cancelled = "cancelled",
        /// Billed its last cycle, or passed its end date.
        Finished = "finished",
    }
}

/// A company's recurring billing: its lines are invoiced once per period, from the
/// start date, on the same day of the month (clamped to the month's end: Jan 31 →
/// Feb 28 → Mar 31), in the customer's time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Id.
    pub id: Uuid,
    /// What it is (`Pro plan, 40 seats`).
    pub name: String,
    /// The customer company.
    pub company_id: Uuid,
    /// The contact invoices are addressed to.
    pub contact_id: Option<Uuid>,
    /// ISO 4217.
    pub currency: Currency,
    /// The lines of each period's invoice.
    pub lines: Vec<BillLine>,
    /// Σ line totals per period.
    pub total: i64,
    /// How often.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "monthly"))]
    pub frequency: BillingFrequency,
    /// Weeks, months or years between periods (weekly, monthly, yearly).
    pub interval: i64,
    /// The first period's first day; later periods start on the same day of the month.
    pub start_date: NaiveDate,
    /// No period starts after it.
    pub end_date: Option<NaiveDate>,
    /// Periods left to bill (none: until ended).
    pub remaining_cycles: Option<i64>,
    /// Periods billed so far.
    pub cycles_billed: i64,
    /// The next period's first day: it is billed once that day begins in `timeZone`.
    pub next_run: Option<NaiveDate>,
    /// IANA time zone of the customer (`Europe/Paris`).
    pub time_zone: String,
    /// The invoices' payment terms.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "net_30"))]
    pub payment_terms: PaymentTerms,
    /// Issue each period's invoice at once (numbered); otherwise it stays a draft.
    pub auto_issue: bool,
    /// Charge each issued invoice to the company's saved payment method.
    #[serde(default)]
    pub auto_charge: bool,
    /// Where it is.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "active"))]
    pub status: SubscriptionStatus,
    /// The last invoice made.
    pub last_invoice_id: Option<Uuid>,
    /// The company's owner.
    pub owner_id: Uuid,
    /// Their team.
    pub team_id: Option<Uuid>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: Option<Uuid>,
    /// Version.
    pub version: i64,
}

impl Persist for Subscription {
    const KIND: EntityKind = EntityKind::Subscription;
}

/// Storage columns of subscriptions.
pub static SUBSCRIPTION_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).sort(),
    Column::new("company_id", "companyId", T::Uuid).filter(),
    Column::new("contact_id", "contactId", T::Uuid).null().filter(),
    Column::new("currency", "currency", T::Text).filter(),
    Column::new("lines", "lines", T::Json),
    Column::new("total", "total", T::Int).sort(),
    Column::new("frequency", "frequency", T::Text).filter().choices(BillingFrequency::CHOICES),
    Column::new("interval_count", "interval", T::Int),
    Column::new("start_date", "startDate", T::Date).sort(),
    Column::new("end_date", "endDate", T::Date).null().sort(),
    Column::new("remaining_cycles", "remainingCycles", T::Int).null(),
    Column::new("cycles_billed", "cyclesBilled", T::Int),
    Column::new("next_run", "nextRun", T::Date).null().sort(),
    Column::new("time_zone", "timeZone", T::Text),
    Column::new("payment_terms", "paymentTerms", T::Text).choices(PaymentTerms::CHOICES),
    Column::new("auto_issue", "autoIssue", T::Bool),
    Column::new("status", "status", T::Text).filter().choices(SubscriptionStatus::CHOICES),
    Column::new("last_invoice_id", "lastInvoiceId", T::Uuid).null(),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("created_by", "createdBy", T::Uuid).null().filter(),
    Column::new("version", "version", T::Int).filter(),
    // Migration 14.
    Column::new("auto_charge", "autoCharge", T::Bool),
];

/// The indexes of `subscriptions`: the scheduler's, by company.
pub static SUBSCRIPTION_INDEXES: &[Index] = &[
    Index::on("subscriptions_due_idx", &["status", "next_run"]),
    Index::on("subscriptions_company_idx", &["company_id"]),
];

/// An exchange rate: 1 `base` = `rate` `quote`, from `date` until a later rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExchangeRate {
    /// Derived from the pair and the day.
    pub id: Uuid,
    /// ISO 4217.
    pub base: Currency,
    /// ISO 4217.
    pub quote: Currency,
    /// The day it applies from.
    pub date: NaiveDate,
    /// The rate as a decimal (`0.9235`).
    pub rate: String,
    /// The rate × 10⁹, what conversions use.
    pub rate_e9: i64,
    /// When it was stored.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

impl Persist for ExchangeRate {
    const KIND: EntityKind = EntityKind::ExchangeRate;
}

/// Storage columns of exchange rates.
pub static RATE_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("base", "base", T::Text).filter(),
    Column::new("quote", "quote", T::Text).filter(),
    Column::new("date", "date", T::Date).sort(),
    Column::new("rate", "rate", T::Text),
    Column::new("rate_e9", "rateE9", T::Int),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `exchange_rates`: one per pair and day, looked up by pair and day.
pub static RATE_INDEXES: &[Index] = &[Index::on("exchange_rates_pair_key", &["base", "quote", "date"]).unique()];

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, day)
    }

    #[test]
    fn due_dates_follow_the_terms() {
        let Some(jan31) = d(2026, 1, 31) else { return };
        assert_eq!(Some(PaymentTerms::Net30.due_date(jan31)), d(2026, 3, 2));
        assert_eq!(Some(PaymentTerms::DueOnReceipt.due_date(jan31)), d(2026, 1, 31));
        assert_eq!(Some(PaymentTerms::EndOfMonth.due_date(jan31)), d(2026, 1, 31));
        assert_eq!(Some(PaymentTerms::EndOfNextMonth.due_date(jan31)), d(2026, 2, 28));
        let Some(feb10_24) = d(2024, 2, 10) else { return };
        assert_eq!(Some(PaymentTerms::EndOfMonth.due_date(feb10_24)), d(2024, 2, 29));
        let Some(dec15) = d(2026, 12, 15) else { return };
        assert_eq!(Some(PaymentTerms::EndOfNextMonth.due_date(dec15)), d(2027, 1, 31));
    }
}
