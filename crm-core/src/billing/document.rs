//! Invoice, credit note and quote documents: one [`DocumentData`] per document, built
//! from the stored document and the organisation's template settings (logo, accent
//! colour, seller details, footer, language), laid out twice — as a PDF by typst used as
//! a library ([`pdf`], feature `pdf`; Noto Sans and Noto Sans Arabic are in the binary,
//! subset into each file, their text extractable) and as a standalone HTML page
//! ([`html`]). Dates, numbers and money are written the way the document's language
//! writes them ([`Locale`]); Arabic documents run right to left.
//!
//! The data reaches the layouts as data, never as markup: typst reads it as JSON and
//! shows every value as text, minijinja escapes it, so a customer named `#set` or
//! `<script>` prints as such.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::locale::{Label, Locale};
use super::{conflict, BillingService, InvoiceView, QuoteView};
use crate::error::{Error, Errors, Result};
use crate::mail::{DocumentMailVars, RenderedMail, MAIL_TOPIC};
use crate::model::billing::{BillLine, BillingSettings, DocumentType, Invoice, InvoiceStatus, Party, Quote, TaxTotal};
use crate::policy::Actor;
use crate::schema::EntityKind;
use crate::service::input;
use crate::store::StoreExt;
use crate::values::Currency;

/// What a document is rendered for: its language and the links it may print.
#[derive(Debug, Clone, Default)]
pub struct DocOptions {
    /// The language (`en`, `fr`, `ar`); the billing settings' when `None`.
    pub lang: Option<String>,
    /// The number of the invoice a credit note reverses.
    pub credited_number: Option<String>,
    /// The whole URL of the invoice's hosted pay page, printed when given.
    pub pay_url: Option<String>,
}

impl DocOptions {
    /// The language, when given, is one the documents are written in.
    fn check(&self) -> Result<()> {
        let mut errs = Errors::new();
        crate::model::settings::language(&mut errs, "lang", self.lang.clone());
        errs.finish()
    }
}

/// One label and its value (`Due date`, `January 4, 2027`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// In the document's language.
    pub label: String,
    /// Written the language's way.
    pub value: String,
}

/// A party as printed: its name, then one line each for the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartyBlock {
    /// The company or person.
    pub name: String,
    /// Attention, address, country, email, phone, tax and registration ids, website.
    pub lines: Vec<String>,
}

/// One line of the itemised table, every amount already written out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineBlock {
    /// What is sold.
    pub name: String,
    /// The SKU and description, when there are.
    pub detail: Option<String>,
    /// Quantity and unit.
    pub quantity: String,
    /// Price of one.
    pub unit_price: String,
    /// The line's discount rate, empty when none.
    pub discount: String,
    /// The line's tax rate.
    pub tax: String,
    /// The line's amount before tax, after its discount.
    pub amount: String,
}

/// One row of the totals (`Tax at 20% on €1,000.00`, `€200.00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TotalRow {
    /// In the document's language.
    pub label: String,
    /// The amount.
    pub value: String,
    /// Printed bold (the total, the balance due).
    pub strong: bool,
}

/// A document, ready for either layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentData {
    /// Language code.
    pub lang: &'static str,
    /// Right to left (Arabic).
    pub rtl: bool,
    /// The accent colour, `#rrggbb`.
    pub accent: String,
    /// The logo as a `data:` URL (PNG, JPEG or SVG).
    #[serde(skip)]
    pub logo: Option<String>,
    /// `Invoice`, `Credit note`, `Quote`, in the language.
    pub title: String,
    /// The document's number (`None` for a draft).
    pub number: Option<String>,
    /// `PAID`, `VOID` or `DRAFT`, printed across the first page.
    pub stamp: Option<String>,
    /// Dates, terms, the invoice a credit note reverses.
    pub meta: Vec<Field>,
    /// Seller heading.
    pub from_label: String,
    /// The seller.
    pub seller: PartyBlock,
    /// Customer heading.
    pub to_label: String,
    /// The customer.
    pub customer: PartyBlock,
    /// Column headings of the itemised table (the discount column only when a line
    /// has a discount).
    pub headers: Vec<String>,
    /// Any line has a discount.
    pub has_discount: bool,
    /// The itemised table.
    pub lines: Vec<LineBlock>,
    /// Subtotal, discounts, tax by rate, total, paid, balance.
    pub totals: Vec<TotalRow>,
    /// Payment instructions heading and text.
    pub instructions: Option<Field>,
    /// Pay-online heading and URL.
    pub pay: Option<Field>,
    /// Notes heading and text.
    pub notes: Option<Field>,
    /// The footer on every page.
    pub footer: Option<String>,
    /// `Page` and `of`, for the page numbers.
    pub page_label: String,
    /// See `page_label`.
    pub of_label: String,
    /// The ten digits of the language (Arabic-Indic for Arabic).
    pub digits: Vec<String>,
    /// The file name the document downloads as (`INV-2026-000001.pdf` without the
    /// extension).
    pub file_name: String,
}

fn party(p: &Party, loc: Locale) -> PartyBlock {
    let mut lines = Vec::new();
    lines.extend(p.contact_name.clone());
    lines.extend(p.address_lines.iter().cloned());
    lines.extend(p.country.clone());
    lines.extend(p.email.clone());
    lines.extend(p.phone.clone());
    if let Some(t) = &p.tax_id {
        lines.push(format!("{}: {t}", loc.label(Label::TaxId)));
    }
    lines.extend(p.registration.clone());
    lines.extend(p.website.clone());
    PartyBlock { name: p.name.clone(), lines }
}

fn lines(ls: &[BillLine], currency: &Currency, loc: Locale) -> Vec<LineBlock> {
    ls.iter()
        .map(|l| {
            let detail = match (&l.sku, &l.description) {
                (Some(s), Some(d)) => Some(format!("{s} · {d}")),
                (Some(s), None) => Some(s.clone()),
                (None, Some(d)) => Some(d.clone()),
                (None, None) => None,
            };
            let quantity = match &l.unit {
                Some(u) => format!("{} {u}", loc.integer(l.quantity)),
                None => loc.integer(l.quantity),
            };
            LineBlock {
                name: l.name.clone(),
                detail,
                quantity,
                unit_price: loc.money(l.unit_price, currency),
                discount: if l.discount_percent.basis_points() == 0 {
                    String::new()
                } else {
                    loc.percent(l.discount_percent)
                },
                tax: loc.percent(l.tax_percent),
                amount: loc.money(l.net, currency),
            }
        })
        .collect()
}

/// The totals block shared by every kind of document.
fn totals(
    subtotal: i64,
    discount: i64,
    taxes: &[TaxTotal],
    total: i64,
    currency: &Currency,
    loc: Locale,
) -> Vec<TotalRow> {
    let row = |label: String, minor: i64, strong: bool| TotalRow { label, value: loc.money(minor, currency), strong };
    let mut out = vec![row(loc.label(Label::Subtotal).into(), subtotal, false)];
    if discount != 0 {
        out.push(row(loc.label(Label::Discount).into(), -discount, false));
    }
    for t in taxes {
        let label = format!("{} {} ({})", loc.label(Label::TaxAt), loc.percent(t.rate), loc.money(t.net, currency),);
        out.push(row(label, t.tax, false));
    }
    out.push(row(loc.label(Label::Total).into(), total, true));
    out
}

struct Common<'a> {
    loc: Locale,
    settings: &'a BillingSettings,
    title: Label,
    number: Option<String>,
    currency: &'a Currency,
    lines: &'a [BillLine],
    seller: &'a Party,
    customer: &'a Party,
    notes: Option<&'a str>,
}

fn field(loc: Locale, label: Label, value: impl Into<String>) -> Field {
    Field { label: loc.label(label).into(), value: value.into() }
}

impl Common<'_> {
    fn data(self, meta: Vec<Field>, totals: Vec<TotalRow>, stamp: Option<Label>) -> DocumentData {
        let loc = self.loc;
        let has_discount = self.lines.iter().any(|l| l.discount_percent.basis_points() != 0);
        let mut headers = vec![loc.label(Label::Item), loc.label(Label::Quantity), loc.label(Label::UnitPrice)];
        if has_discount {
            headers.push(loc.label(Label::Discount));
        }
        headers.extend([loc.label(Label::Tax), loc.label(Label::Amount)]);
        // A draft's seller is the settings' until it is issued.
        let seller = if self.seller.name.is_empty() { &self.settings.seller } else { self.seller };
        let title = loc.label(self.title).to_string();
        DocumentData {
            lang: loc.code(),
            rtl: loc.rtl(),
            accent: self.settings.accent_color.clone(),
            logo: self.settings.logo.clone(),
            file_name: self.number.clone().unwrap_or_else(|| format!("{}-{}", title, loc.label(Label::Draft))),
            title,
            number: self.number,
            stamp: stamp.map(|s| loc.label(s).to_string()),
            meta,
            from_label: loc.label(Label::From).into(),
            seller: party(seller, loc),
            to_label: loc.label(Label::BillTo).into(),
            customer: party(self.customer, loc),
            headers: headers.into_iter().map(String::from).collect(),
            has_discount,
            lines: lines(self.lines, self.currency, loc),
            totals,
            instructions: None,
            pay: None,
            notes: self.notes.filter(|n| !n.trim().is_empty()).map(|n| field(loc, Label::Notes, n)),
            footer: self.settings.footer.clone().filter(|f| !f.trim().is_empty()),
            page_label: loc.label(Label::Page).into(),
            of_label: loc.label(Label::Of).into(),
            digits: (0..10).map(|d| loc.integer(d)).collect(),
        }
    }
}

fn locale(opts: &DocOptions, settings: &BillingSettings) -> Locale {
    Locale::of(opts.lang.as_deref().unwrap_or(&settings.language))
}

/// The document of an invoice or credit note.
pub fn invoice_data(inv: &Invoice, settings: &BillingSettings, opts: &DocOptions) -> DocumentData {
    let loc = locale(opts, settings);
    let credit = inv.doc_type == DocumentType::CreditNote;
    let date = |d: Option<NaiveDate>| d.map(|d| loc.date(d));
    let mut meta = Vec::new();
    if let Some(d) = date(inv.issue_date) {
        meta.push(field(loc, Label::IssueDate, d));
    }
    if !credit {
        if let Some(d) = date(inv.due_date) {
            meta.push(field(loc, Label::DueDate, d));
        }
        meta.push(field(loc, Label::Terms, loc.terms(inv.payment_terms)));
    }
    if let (Some(s), Some(e)) = (inv.period_start, inv.period_end) {
        meta.push(field(loc, Label::Period, format!("{} – {}", loc.date(s), loc.date(e))));
    }
    if let Some(n) = opts.credited_number.clone().filter(|_| credit) {
        meta.push(field(loc, Label::Credits, n));
    }
    let mut rows = totals(inv.subtotal, inv.discount_total, &inv.taxes, inv.total, &inv.currency, loc);
    let issued = inv.status != InvoiceStatus::Draft && inv.status != InvoiceStatus::Void;
    if !credit && issued {
        if inv.amount_paid != 0 {
            rows.push(TotalRow {
                label: loc.label(Label::Paid).into(),
                value: loc.money(-inv.amount_paid, &inv.currency),
                strong: false,
            });
        }
        if inv.amount_credited != 0 {
            rows.push(TotalRow {
                label: loc.label(Label::Credited).into(),
                value: loc.money(-inv.amount_credited, &inv.currency),
                strong: false,
            });
        }
        rows.push(TotalRow {
            label: loc.label(Label::BalanceDue).into(),
            value: loc.money(inv.balance, &inv.currency),
            strong: true,
        });
    }
    let stamp = match inv.status {
        InvoiceStatus::Draft => Some(Label::Draft),
        InvoiceStatus::Void => Some(Label::Void),
        InvoiceStatus::Paid if !credit => Some(Label::PaidStamp),
        _ => None,
    };
    let common = Common {
        loc,
        settings,
        title: if credit { Label::CreditNote } else { Label::Invoice },
        number: inv.number.clone(),
        currency: &inv.currency,
        lines: &inv.lines,
        seller: &inv.seller,
        customer: &inv.customer,
        notes: inv.notes.as_deref(),
    };
    let mut data = common.data(meta, rows, stamp);
    let open = matches!(inv.status, InvoiceStatus::Issued | InvoiceStatus::Sent | InvoiceStatus::PartiallyPaid);
    if !credit && open {
        let instructions = inv.payment_instructions.clone().or_else(|| settings.payment_instructions.clone());
        data.instructions = instructions.filter(|i| !i.trim().is_empty()).map(|i| field(loc, Label::Instructions, i));
        data.pay = opts.pay_url.clone().map(|u| field(loc, Label::PayOnline, u));
    }
    data
}

/// The document of a quote.
pub fn quote_data(q: &Quote, settings: &BillingSettings, opts: &DocOptions) -> DocumentData {
    let loc = locale(opts, settings);
    let mut meta = Vec::new();
    if let Some(d) = q.issue_date {
        meta.push(field(loc, Label::IssueDate, loc.date(d)));
    }
    if let Some(d) = q.valid_until {
        meta.push(field(loc, Label::ValidUntil, loc.date(d)));
    }
    let rows = totals(q.subtotal, q.discount_total, &q.taxes, q.total, &q.currency, loc);
    let stamp = q.number.is_none().then_some(Label::Draft);
    Common {
        loc,
        settings,
        title: Label::Quote,
        number: q.number.clone(),
        currency: &q.currency,
        lines: &q.lines,
        seller: &q.seller,
        customer: &q.customer,
        notes: q.notes.as_deref(),
    }
    .data(meta, rows, stamp)
}

// ----- the service -------------------------------------------------------------------

/// The `template` of an outbox email that carries a document.
pub const MAIL_TEMPLATE: &str = "document";

/// An email carrying an invoice, credit note or quote, waiting in the outbox (topic
/// [`MAIL_TOPIC`]). The document is laid out when the email is sent, as it is then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentMail {
    /// Always [`MAIL_TEMPLATE`].
    pub template: String,
    /// `invoice` (invoices and credit notes) or `quote`.
    pub kind: String,
    /// The document.
    pub id: Uuid,
    /// The recipient.
    pub to: String,
    /// Copies.
    #[serde(default)]
    pub cc: Vec<String>,
    /// The language of the email and the document.
    pub lang: String,
    /// The sender's own words.
    #[serde(default)]
    pub message: Option<String>,
    /// Print and link the hosted pay page.
    #[serde(default)]
    pub pay_link: bool,
}

/// How a document is emailed.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendDocumentInput {
    /// The recipient (default: the customer's email on the document, else its
    /// contact's).
    pub to: Option<String>,
    /// Copies (at most 10).
    pub cc: Option<Vec<String>>,
    /// A message above the document (at most 5,000 characters).
    pub message: Option<String>,
    /// The language of the email and the document: `en`, `fr` or `ar` (default: the
    /// billing settings').
    pub lang: Option<String>,
}

/// A file for an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its name (`INV-2026-000001.pdf`).
    pub name: String,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// An email carrying a document, ready to address.
#[derive(Debug, Clone)]
pub struct DocumentEmail {
    /// Subject, text and HTML, in the email's language.
    pub rendered: RenderedMail,
    /// The PDF (or HTML page).
    pub file: Attachment,
    /// The seller's address, to reply to.
    pub reply_to: Option<String>,
    /// The seller's name, shown as the sender's (the address stays the server's).
    pub sender_name: String,
}

/// The document as the file an email carries: a PDF, or the HTML page when the
/// engine was built without `pdf`. Laid out off the async threads.
pub async fn file(d: DocumentData) -> Result<Attachment> {
    #[cfg(feature = "pdf")]
    {
        let name = format!("{}.pdf", d.file_name);
        let bytes = tokio::task::spawn_blocking(move || pdf(&d))
            .await
            .map_err(|e| Error::internal("laying out a document", e))??;
        Ok(Attachment { name, content_type: "application/pdf", bytes })
    }
    #[cfg(not(feature = "pdf"))]
    {
        Ok(Attachment {
            name: format!("{}.html", d.file_name),
            content_type: "text/html; charset=utf-8",
            bytes: html(&d)?.html.into_bytes(),
        })
    }
}

impl BillingService<'_> {
    /// The document of an invoice or credit note the actor may read.
    /// An unsupported `opts.lang` is an error naming `lang`.
    pub async fn invoice_document(&self, actor: &Actor, id: Uuid, opts: DocOptions) -> Result<DocumentData> {
        opts.check()?;
        let inv = self.invoice(actor, id).await?.invoice;
        self.invoice_document_of(&inv, opts).await
    }

    async fn invoice_document_of(&self, inv: &Invoice, opts: DocOptions) -> Result<DocumentData> {
        self.invoice_document_with(inv, &self.current_settings().await?, opts).await
    }

    async fn invoice_document_with(
        &self,
        inv: &Invoice,
        settings: &BillingSettings,
        mut opts: DocOptions,
    ) -> Result<DocumentData> {
        if let (Some(c), None) = (inv.credited_invoice_id, &opts.credited_number) {
            opts.credited_number = self.crm.store().get_as::<Invoice>(c).await?.and_then(|i| i.number);
        }
        Ok(invoice_data(inv, settings, &opts))
    }

    /// The document of the invoice behind a pay token, for the customer who holds the
    /// link (`None`: a forged or unknown token).
    pub async fn payer_document(&self, token: &str) -> Result<Option<DocumentData>> {
        match self.invoice_for_payer(token).await? {
            Some(inv) => Ok(Some(self.invoice_document_of(&inv, DocOptions::default()).await?)),
            None => Ok(None),
        }
    }

    /// The document of a quote the actor may read.
    /// An unsupported `opts.lang` is an error naming `lang`.
    pub async fn quote_document(&self, actor: &Actor, id: Uuid, opts: DocOptions) -> Result<DocumentData> {
        opts.check()?;
        let q = self.quote(actor, id).await?.quote;
        Ok(quote_data(&q, &self.current_settings().await?, &opts))
    }

    /// Emails an issued invoice or credit note with its PDF: queued in the outbox in
    /// the same write that marks it sent, so it goes out once, after a crash too.
    /// `pay_link`: the email and the PDF carry the hosted pay page (online payment is
    /// configured).
    pub async fn email_invoice(
        &self,
        actor: &Actor,
        id: Uuid,
        input: SendDocumentInput,
        pay_link: bool,
    ) -> Result<InvoiceView> {
        self.require(actor, crate::policy::Action::Update)?;
        let current = self.invoice(actor, id).await?.invoice;
        let (to, cc, message, lang) = self.mail_input(input, &current.customer, current.contact_id).await?;
        let changes = json!({"number": current.number, "to": to, "cc": cc});
        self.change_invoice_and(
            Some(actor),
            id,
            "invoice.emailed",
            |inv, now| {
                if matches!(inv.status, InvoiceStatus::Draft | InvoiceStatus::Void) {
                    return Err(conflict(
                        format!("the invoice is {}; only an issued invoice is sent", inv.status),
                        "status",
                    ));
                }
                inv.sent_at = inv.sent_at.or(Some(now));
                Ok(changes.clone())
            },
            |inv| {
                let mail = DocumentMail {
                    template: MAIL_TEMPLATE.into(),
                    kind: "invoice".into(),
                    id,
                    to: to.clone(),
                    cc: cc.clone(),
                    lang: lang.clone(),
                    message: message.clone(),
                    pay_link: pay_link && inv.doc_type == DocumentType::Invoice,
                };
                let payload = serde_json::to_value(&mail).map_err(|e| Error::internal("queuing an email", e))?;
                Ok(vec![self.crm.event(MAIL_TOPIC.into(), EntityKind::Invoice, id, payload)?])
            },
        )
        .await
    }

    /// Emails a sent (numbered) quote with its PDF, through the outbox.
    pub async fn email_quote(&self, actor: &Actor, id: Uuid, input: SendDocumentInput) -> Result<QuoteView> {
        self.require(actor, crate::policy::Action::Update)?;
        let q = self.quote(actor, id).await?.quote;
        self.authorize(actor, crate::policy::Action::Update, q.owner_id, q.team_id, "quote")?;
        if q.number.is_none() {
            return Err(conflict("the quote is a draft; send it first to number it", "status"));
        }
        let (to, cc, message, lang) = self.mail_input(input, &q.customer, q.contact_id).await?;
        let mail = DocumentMail {
            template: MAIL_TEMPLATE.into(),
            kind: "quote".into(),
            id,
            to: to.clone(),
            cc: cc.clone(),
            lang,
            message,
            pay_link: false,
        };
        let payload = serde_json::to_value(&mail).map_err(|e| Error::internal("queuing an email", e))?;
        let cs = crate::store::Changeset {
            writes: vec![self.crm.event(MAIL_TOPIC.into(), EntityKind::Quote, id, payload)?],
            audit: vec![],
        };
        let changes = json!({"number": q.number, "to": to, "cc": cc});
        self.commit(Some(actor), cs, "quote.emailed", EntityKind::Quote, id, changes).await?;
        Ok(QuoteView::of(q, self.today()))
    }

    /// The recipient, copies, message and language of an email, checked; the
    /// recipient defaults to the customer's address, else its contact's.
    async fn mail_input(
        &self,
        input: SendDocumentInput,
        customer: &Party,
        contact: Option<Uuid>,
    ) -> Result<(String, Vec<String>, Option<String>, String)> {
        let mut errs = Errors::new();
        let to = match input.to {
            Some(t) => input::email(&mut errs, "to", Some(t)),
            None => {
                let mut found = customer.email.clone();
                if let (None, Some(c)) = (&found, contact) {
                    found = self
                        .crm
                        .store()
                        .get_as::<crate::model::contact::Contact>(c)
                        .await?
                        .and_then(|c| c.email.map(|e| e.as_str().to_string()));
                }
                match found {
                    Some(f) => input::email(&mut errs, "to", Some(f)),
                    None => {
                        errs.add("to", "required", "the customer has no email address on file: give one");
                        None
                    }
                }
            }
        };
        let cc_in = input.cc.unwrap_or_default();
        if cc_in.len() > 10 {
            errs.add("cc", "too_long", "at most 10 copies");
        }
        let cc: Vec<String> = cc_in
            .into_iter()
            .take(10)
            .enumerate()
            .filter_map(|(i, c)| input::email(&mut errs, &format!("cc[{i}]"), Some(c)))
            .map(|e| e.as_str().to_string())
            .collect();
        let message = input::text(&mut errs, "message", input.message, 5000, true);
        let lang = crate::model::settings::language(&mut errs, "lang", input.lang);
        errs.finish()?;
        let lang = match lang {
            Some(l) => l,
            None => self.current_settings().await?.language,
        };
        let to = to.map(|e| e.as_str().to_string()).unwrap_or_default();
        Ok((to, cc, message, lang))
    }

    /// The email of a queued [`DocumentMail`]: its text, the document as a file, and
    /// the seller to reply to. `public_url` starts the pay link.
    pub async fn document_mail(&self, req: &DocumentMail, public_url: &str) -> Result<DocumentEmail> {
        let loc = Locale::of(&req.lang);
        let mut opts = DocOptions { lang: Some(req.lang.clone()), ..DocOptions::default() };
        let settings = self.current_settings().await?;
        let (data, vars) = if req.kind == "quote" {
            let q = self.load_quote(req.id).await?;
            let data = quote_data(&q, &settings, &opts);
            let vars = DocumentMailVars {
                kind: "quote".into(),
                number: q.number.clone().unwrap_or_default(),
                seller: q.seller.name.clone(),
                customer: q.customer.contact_name.clone().unwrap_or_else(|| q.customer.name.clone()),
                total: loc.money(q.total, &q.currency),
                balance: None,
                date: q.valid_until.map(|d| loc.date(d)),
                message: req.message.clone(),
                link: None,
            };
            (data, vars)
        } else {
            let inv = self.load_invoice(req.id).await?;
            let open = matches!(inv.status, InvoiceStatus::Issued | InvoiceStatus::Sent | InvoiceStatus::PartiallyPaid);
            let link = if req.pay_link && open && inv.balance > 0 {
                Some(format!("{}/pay/{}", public_url.trim_end_matches('/'), self.pay_token(inv.id)?))
            } else {
                None
            };
            opts.pay_url = link.clone();
            let data = self.invoice_document_with(&inv, &settings, opts).await?;
            let vars = DocumentMailVars {
                kind: inv.doc_type.to_string(),
                number: inv.number.clone().unwrap_or_default(),
                seller: inv.seller.name.clone(),
                customer: inv.customer.contact_name.clone().unwrap_or_else(|| inv.customer.name.clone()),
                total: loc.money(inv.total, &inv.currency),
                balance: link.as_ref().map(|_| loc.money(inv.balance, &inv.currency)),
                date: inv.due_date.map(|d| loc.date(d)),
                message: req.message.clone(),
                link,
            };
            (data, vars)
        };
        let rendered = crate::mail::document(&req.lang, &vars)?;
        Ok(DocumentEmail {
            rendered,
            file: file(data).await?,
            reply_to: settings.seller.email,
            sender_name: vars.seller,
        })
    }
}

// ----- HTML ----------------------------------------------------------------------------

/// A document as a standalone HTML page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlDocument {
    /// The page.
    pub html: String,
    /// The `Content-Security-Policy` it is served with: its one style block by hash,
    /// images from `data:` only, nothing else.
    pub csp: String,
}

const HTML: &str = include_str!("templates/document.html");
const CSS: &str = include_str!("templates/document.css");

/// The document as a standalone HTML page (print it to paper or PDF from a browser).
pub fn html(d: &DocumentData) -> Result<HtmlDocument> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let style = CSS.replace("#1f6feb", &d.accent);
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style.as_bytes()));
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("document.html", HTML).map_err(|e| Error::internal("the document layout", e))?;
    let html = env
        .get_template("document.html")
        .and_then(|t| t.render(minijinja::context! { d => minijinja::Value::from(minijinja::value::Serde(d)), logo => &d.logo, style => style }))
        .map_err(|e| Error::internal("rendering a document", e))?;
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    Ok(HtmlDocument { html, csp })
}

// ----- PDF -----------------------------------------------------------------------------

#[cfg(feature = "pdf")]
pub use typeset::pdf;

#[cfg(feature = "pdf")]
mod typeset {
    use std::sync::LazyLock;

    use base64::Engine as _;
    use typst::diag::{FileError, FileResult};
    use typst::foundations::{Bytes, Datetime, Duration};
    use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
    use typst::text::{Font, FontBook};
    use typst::utils::LazyHash;
    use typst::{Library, LibraryExt, World};

    use super::DocumentData;
    use crate::error::{Error, Result};

    /// The fonts in the binary: Latin, Greek and Cyrillic from Noto Sans, Arabic from
    /// Noto Sans Arabic (SIL Open Font License, `assets/fonts/OFL.txt`).
    static FONTS: LazyLock<(LazyHash<FontBook>, Vec<Font>)> = LazyLock::new(|| {
        let files: [&'static [u8]; 4] = [
            include_bytes!("../../assets/fonts/NotoSans-Regular.ttf"),
            include_bytes!("../../assets/fonts/NotoSans-Bold.ttf"),
            include_bytes!("../../assets/fonts/NotoSansArabic-Regular.ttf"),
            include_bytes!("../../assets/fonts/NotoSansArabic-Bold.ttf"),
        ];
        let fonts: Vec<Font> = files.into_iter().flat_map(|f| Font::iter(Bytes::new(f))).collect();
        (LazyHash::new(FontBook::from_fonts(&fonts)), fonts)
    });

    static LIBRARY: LazyLock<LazyHash<Library>> = LazyLock::new(|| LazyHash::new(<Library as LibraryExt>::default()));

    const TEMPLATE: &str = include_str!("templates/document.typ");

    fn file_id(path: &str) -> FileId {
        // The paths are constants of this module: they are valid.
        #[allow(clippy::expect_used)]
        let vpath = VirtualPath::new(path).expect("a valid virtual path");
        RootedPath::new(VirtualRoot::Project, vpath).intern()
    }

    static MAIN: LazyLock<FileId> = LazyLock::new(|| file_id("/document.typ"));
    static DATA: LazyLock<FileId> = LazyLock::new(|| file_id("/data.json"));
    static LOGO: LazyLock<FileId> = LazyLock::new(|| file_id("/logo"));
    static SOURCE: LazyLock<Source> = LazyLock::new(|| Source::new(*MAIN, TEMPLATE.to_string()));

    /// One document's world: the template, its data, its logo, the fonts.
    struct Doc {
        data: Bytes,
        logo: Option<Bytes>,
    }

    impl World for Doc {
        fn library(&self) -> &LazyHash<Library> {
            &LIBRARY
        }

        fn book(&self) -> &LazyHash<FontBook> {
            &FONTS.0
        }

        fn main(&self) -> FileId {
            *MAIN
        }

        fn source(&self, id: FileId) -> FileResult<Source> {
            if id == *MAIN {
                Ok(SOURCE.clone())
            } else {
                Err(FileError::AccessDenied)
            }
        }

        fn file(&self, id: FileId) -> FileResult<Bytes> {
            if id == *DATA {
                Ok(self.data.clone())
            } else if id == *LOGO {
                self.logo.clone().ok_or(FileError::AccessDenied)
            } else if id == *MAIN {
                Ok(Bytes::from_string(TEMPLATE))
            } else {
                Err(FileError::AccessDenied)
            }
        }

        fn font(&self, index: usize) -> Option<Font> {
            FONTS.1.get(index).cloned()
        }

        fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
            None
        }
    }

    /// The bytes of a `data:` URL logo and whether it is SVG.
    fn logo_bytes(url: &str) -> Option<(Vec<u8>, &'static str)> {
        let (head, body) = url.split_once(',')?;
        let format = if head.starts_with("data:image/svg+xml") {
            "svg"
        } else if head.starts_with("data:image/png") {
            "png"
        } else if head.starts_with("data:image/jpeg") {
            "jpg"
        } else {
            return None;
        };
        let bytes = if head.ends_with(";base64") {
            base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()?
        } else {
            percent_encoding::percent_decode_str(body).collect()
        };
        Some((bytes, format))
    }

    fn compile(doc: &Doc) -> std::result::Result<Vec<u8>, String> {
        let message = |diags: &typst::ecow::EcoVec<typst::diag::SourceDiagnostic>| {
            diags.iter().map(|d| d.message.to_string()).collect::<Vec<_>>().join("; ")
        };
        let laid = typst::compile::<typst_layout::PagedDocument>(doc).output.map_err(|d| message(&d));
        let pdf = laid.and_then(|l| typst_pdf::pdf(&l, &typst_pdf::PdfOptions::default()).map_err(|d| message(&d)));
        // typst memoises layout across compilations; a server lays out a new document
        // each time, so what the last few did not use is dropped (as typst's own CLI
        // does), else the cache grows with every invoice.
        typst::comemo::evict(10);
        pdf
    }

    /// The document as a PDF (A4, the fonts subset into it).
    pub fn pdf(d: &DocumentData) -> Result<Vec<u8>> {
        let logo = d.logo.as_deref().and_then(logo_bytes);
        let mut data = serde_json::to_value(d).map_err(|e| Error::internal("a document's data", e))?;
        if let Some(o) = data.as_object_mut() {
            let at = logo.as_ref().map(|(_, format)| serde_json::json!({"path": "/logo", "format": format}));
            o.insert("logo".into(), at.unwrap_or(serde_json::Value::Null));
        }
        let json = serde_json::to_vec(&data).map_err(|e| Error::internal("a document's data", e))?;
        let with_logo = Doc { data: Bytes::new(json.clone()), logo: logo.map(|(b, _)| Bytes::new(b)) };
        match compile(&with_logo) {
            Ok(pdf) => Ok(pdf),
            // A logo typst cannot read must not stop the invoice: it goes out without.
            Err(e) if with_logo.logo.is_some() => {
                tracing::warn!(error = %e, "the billing logo could not be laid out; the document goes without it");
                let mut data = data;
                if let Some(o) = data.as_object_mut() {
                    o.insert("logo".into(), serde_json::Value::Null);
                }
                let json = serde_json::to_vec(&data).map_err(|e| Error::internal("a document's data", e))?;
                compile(&Doc { data: Bytes::new(json), logo: None })
                    .map_err(|e| Error::internal_msg(format!("laying out a document: {e}")))
            }
            Err(e) => Err(Error::internal_msg(format!("laying out a document: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DocumentData {
        let loc = Locale::En;
        DocumentData {
            lang: "en",
            rtl: false,
            accent: "#1f6feb".into(),
            logo: None,
            title: "Invoice".into(),
            number: Some("INV-2026-000001".into()),
            stamp: None,
            meta: vec![field(loc, Label::IssueDate, "December 5, 2026")],
            from_label: "From".into(),
            seller: PartyBlock { name: String::new(), lines: vec![] },
            to_label: "Bill to".into(),
            customer: PartyBlock { name: "Acme SA".into(), lines: vec![] },
            headers: ["Description", "Qty", "Unit price", "Tax", "Amount"].map(String::from).to_vec(),
            has_discount: false,
            lines: vec![LineBlock {
                name: "Seat".into(),
                detail: None,
                quantity: "1".into(),
                unit_price: "€1.00".into(),
                discount: String::new(),
                tax: "0%".into(),
                amount: "€1.00".into(),
            }],
            totals: vec![TotalRow { label: "Total".into(), value: "€1.00".into(), strong: true }],
            instructions: None,
            pay: None,
            notes: None,
            footer: None,
            page_label: "Page".into(),
            of_label: "of".into(),
            digits: (0..10).map(|d| d.to_string()).collect(),
            file_name: "INV-2026-000001".into(),
        }
    }

    #[test]
    fn html_escapes_and_allows_its_style_by_hash() {
        let mut d = sample();
        d.customer.name = "<script>alert(1)</script>".into();
        let page = html(&d).unwrap_or_else(|e| panic!("{e}"));
        assert!(!page.html.contains("<script>"));
        assert!(page.csp.starts_with("default-src 'none'; style-src 'sha256-"));
    }

    #[cfg(feature = "pdf")]
    #[test]
    fn a_document_without_seller_details_still_lays_out() {
        let d = sample();
        let bytes = pdf(&d).unwrap_or_else(|e| panic!("{e}"));
        assert!(bytes.starts_with(b"%PDF-"));
    }
}
