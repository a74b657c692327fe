//! Billing: a won deal to a paid invoice with exact totals; gapless numbers under
//! twenty concurrent issuers; quotes, credit notes and voids; inputs that name their
//! field; who may do what.

use chrono::{Duration, NaiveDate};
use crm_core::billing::{
    CreditNoteInput, DocumentInput, InvoiceQuery, IssueInput, LineInput, PaymentInput, ProductInput, RefundInput,
    SettingsInput, VoidInput,
};
use crm_core::model::billing::{InvoiceStatus, Party, PaymentTerms, QuoteStatus};
use crm_core::model::deal::DealStage;
use crm_core::service::{NewCompany, NewContact, NewDeal, NewLineItem};
use crm_core::values::Percent;
use crm_core::{Actor, EntityKind, Role};
use uuid::Uuid;

use super::{assert_code, fields, q};
use crate::{Harness, TestBackend};

fn pct(p: f64) -> Percent {
    Percent::from_f64(p).expect("percent")
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

async fn audit_actions(h: &Harness, entity: Uuid) -> Vec<String> {
    let page = h.crm.audit().list(&h.admin, q(EntityKind::AuditEvent, &format!("entityId[eq]:{entity}"))).await;
    page.expect("audit").data.into_iter().map(|e| e.action).collect()
}

/// A company with a contact, and a deal of theirs owned by `owner` with two lines.
async fn won_deal(h: &Harness, owner: &Actor, product: Option<Uuid>) -> (Uuid, Uuid) {
    let company = h
        .crm
        .companies()
        .create(
            owner,
            NewCompany {
                name: "Acme SA".into(),
                country: Some("FR".into()),
                custom_fields: serde_json::from_value(serde_json::json!({"vat": "FR12345678901"})).expect("custom"),
                ..Default::default()
            },
        )
        .await
        .expect("company");
    let contact = h
        .crm
        .contacts()
        .create(
            owner,
            NewContact {
                name: "Ada Lovelace".into(),
                email: Some(format!("ada.{}@acme.test", Uuid::now_v7().simple())),
                company_id: Some(company.id),
                ..Default::default()
            },
        )
        .await
        .expect("contact");
    let deal = h
        .crm
        .deals()
        .create(
            owner,
            NewDeal {
                name: "Acme rollout".into(),
                currency: Some("EUR".into()),
                company_id: Some(company.id),
                contact_ids: vec![contact.id],
                products: vec![
                    NewLineItem {
                        product_id: product,
                        name: "Seat".into(),
                        quantity: Some(3),
                        unit_price: 1999,
                        discount_percent: pct(12.5),
                        tax_percent: pct(20.0),
                    },
                    NewLineItem {
                        name: "Setup".into(),
                        unit_price: 50_005,
                        tax_percent: pct(5.5),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        )
        .await
        .expect("deal");
    h.crm.deals().move_to(owner, deal.id, DealStage::ClosedWon).await.expect("won");
    (deal.id.as_uuid(), company.id.as_uuid())
}

/// The seller of the export and document cases: a French company with its VAT id.
fn northwind() -> Party {
    Party {
        name: "Northwind SAS".into(),
        address_lines: vec!["12 rue de la Paix".into(), "75002 Paris".into()],
        country: Some("FR".into()),
        tax_id: Some("FR40303265045".into()),
        ..Default::default()
    }
}

/// From a won deal to a paid invoice: exact totals, a number, due date from the terms,
/// immutable once issued, payments up to the balance, a refund, every step audited.
pub async fn invoice_from_won_deal_to_paid(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let b = h.crm.billing();
    b.update_settings(
        &h.admin,
        SettingsInput {
            seller: Some(Party {
                name: "Northwind SAS".into(),
                tax_id: Some("FR40303265045".into()),
                ..Default::default()
            }),
            payment_instructions: Some("IBAN FR76 3000 6000 0112 3456 7890 189".into()),
            currency: Some("EUR".into()),
            ..Default::default()
        },
    )
    .await
    .expect("settings");
    let seat = b
        .create_product(
            &h.admin,
            ProductInput {
                sku: Some("PRO-SEAT".into()),
                name: Some("Pro seat".into()),
                unit_price: Some(1999),
                currency: Some("EUR".into()),
                tax_percent: Some(pct(20.0)),
                ..Default::default()
            },
        )
        .await
        .expect("product");
    let (deal, company) = won_deal(&h, &h.admin, Some(seat.id)).await;
    let inv = b.invoice_from_deal(&h.admin, deal).await.expect("invoice from deal").invoice;
    assert_eq!(inv.status, InvoiceStatus::Draft);
    assert_eq!(inv.number, None);
    assert_eq!(inv.company_id, Some(company));
    assert_eq!(inv.currency.code(), "EUR");
    // Seat: 3 × 19.99 = 59.97, 12.5 % off = 7.49625 → 7.50, net 52.47, 20 % = 10.494 → 10.49.
    // Setup: 500.05 at 5.5 % = 27.50275 → 27.50.
    let l0 = &inv.lines[0];
    assert_eq!((l0.gross, l0.discount, l0.net, l0.tax, l0.total), (5997, 750, 5247, 1049, 6296));
    assert_eq!(l0.product_id, Some(seat.id));
    assert_eq!(l0.sku.as_deref(), Some("PRO-SEAT"));
    assert_eq!((inv.lines[1].tax, inv.lines[1].total), (2750, 52_755));
    assert_eq!((inv.subtotal, inv.discount_total, inv.tax_total, inv.total), (56_002, 750, 3799, 59_051));
    assert_eq!(
        inv.taxes.iter().map(|t| (t.rate.basis_points(), t.net, t.tax)).collect::<Vec<_>>(),
        vec![(550, 50_005, 2750), (2000, 5247, 1049)]
    );
    assert_eq!(inv.customer.tax_id.as_deref(), Some("FR12345678901"));
    assert_eq!(inv.customer.contact_name.as_deref(), Some("Ada Lovelace"));

    // Issued: numbered, due in 30 days, seller frozen.
    let issued = b.issue_invoice(&h.admin, inv.id, IssueInput::default()).await.expect("issue").invoice;
    assert_eq!(issued.number.as_deref(), Some("INV-2026-000001"));
    assert_eq!(issued.status, InvoiceStatus::Issued);
    assert_eq!(issued.issue_date, Some(day(2026, 1, 1)));
    assert_eq!(issued.due_date, Some(day(2026, 1, 31)));
    assert_eq!(issued.payment_terms, PaymentTerms::Net30);
    assert_eq!(issued.seller.name, "Northwind SAS");
    assert!(issued.payment_instructions.as_deref().is_some_and(|p| p.contains("IBAN")));
    // Immutable now; issuing twice is refused.
    let e = assert_code(
        b.update_invoice(&h.admin, inv.id, DocumentInput { notes: Some("x".into()), ..Default::default() }).await,
        "conflict",
    );
    assert!(e.to_string().contains("issued"), "{e}");
    assert_code(b.issue_invoice(&h.admin, inv.id, IssueInput::default()).await, "conflict");
    assert_code(b.delete_invoice(&h.admin, inv.id).await, "conflict");

    // Payments: more than the balance is refused naming amount; part, then the rest.
    let too_much =
        b.record_payment(&h.admin, inv.id, PaymentInput { amount: Some(59_052), ..Default::default() }).await;
    assert_eq!(fields(&assert_code(too_much, "validation_failed")), vec!["amount"]);
    let first = b
        .record_payment(
            &h.admin,
            inv.id,
            PaymentInput { amount: Some(20_000), reference: Some("VIR-1".into()), ..Default::default() },
        )
        .await
        .expect("first payment");
    let again = b
        .record_payment(
            &h.admin,
            inv.id,
            PaymentInput { amount: Some(1), reference: Some("VIR-1".into()), ..Default::default() },
        )
        .await;
    assert!(assert_code(again, "conflict").to_string().contains("reference"));
    let now = b.invoice(&h.admin, inv.id).await.expect("invoice").invoice;
    assert_eq!((now.status, now.amount_paid, now.balance), (InvoiceStatus::PartiallyPaid, 20_000, 39_051));
    b.record_payment(
        &h.admin,
        inv.id,
        PaymentInput { amount: Some(39_051), method: Some("cash".into()), ..Default::default() },
    )
    .await
    .expect("the rest");
    let paid = b.invoice(&h.admin, inv.id).await.expect("invoice");
    assert_eq!((paid.invoice.status, paid.invoice.balance), (InvoiceStatus::Paid, 0));
    assert!(paid.invoice.paid_at.is_some() && !paid.overdue);
    assert_code(
        b.record_payment(&h.admin, inv.id, PaymentInput { amount: Some(1), ..Default::default() }).await,
        "conflict",
    );

    // A refund of part of the first payment: owed again.
    let refund = b
        .refund_payment(&h.admin, first.id, RefundInput { amount: Some(5000), ..Default::default() })
        .await
        .expect("refund");
    assert_eq!(refund.amount, 5000);
    let too_much =
        b.refund_payment(&h.admin, first.id, RefundInput { amount: Some(15_001), ..Default::default() }).await;
    assert_eq!(fields(&assert_code(too_much, "validation_failed")), vec!["amount"]);
    let after = b.invoice(&h.admin, inv.id).await.expect("invoice").invoice;
    assert_eq!(
        (after.status, after.amount_paid, after.balance, after.paid_at),
        (InvoiceStatus::PartiallyPaid, 54_051, 5000, None)
    );
    assert_eq!(b.payments(&h.admin, Some(inv.id)).await.expect("payments").len(), 3);

    let actions = audit_actions(&h, inv.id).await;
    for a in ["invoice.created", "invoice.issued"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    assert!(audit_actions(&h, first.id).await.iter().any(|x| x == "payment.recorded"));
    assert!(audit_actions(&h, refund.id).await.iter().any(|x| x == "payment.refunded"));

    // Overdue is computed: an issued invoice past its due date.
    let other = b.invoice_from_deal(&h.admin, deal).await.expect("second invoice").invoice;
    b.issue_invoice(&h.admin, other.id, IssueInput::default()).await.expect("issue second");
    h.clock.advance(Duration::days(45));
    let late = b.invoice(&h.admin, other.id).await.expect("late");
    assert!(late.overdue && late.days_overdue == 15, "{late:?}");
    let overdue =
        b.invoices(&h.admin, InvoiceQuery { overdue: Some(true), ..Default::default() }).await.expect("overdue");
    // The first is overdue too: the refund left 50.00 owed past its due date.
    assert_eq!(overdue.iter().map(|v| v.invoice.id).collect::<Vec<_>>(), vec![other.id, inv.id]);
    assert_eq!(overdue[1].days_overdue, 15);
}

/// Twenty issuers at once: numbers 1 to 20, each once; a refused issue takes none; a
/// void keeps its number; the year starts a new sequence.
pub async fn numbers_are_gapless_under_concurrent_issuers(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let b = h.crm.billing();
    let (deal, _) = won_deal(&h, &h.admin, None).await;
    let mut drafts = Vec::new();
    for _ in 0..20 {
        drafts.push(b.invoice_from_deal(&h.admin, deal).await.expect("draft").invoice.id);
    }
    let empty =
        b.create_invoice(&h.admin, DocumentInput { deal_id: Some(deal), ..Default::default() }).await.expect("empty");
    let mut tasks = Vec::new();
    for id in drafts.iter().copied() {
        let crm = h.crm.clone();
        let admin = h.admin.clone();
        tasks.push(tokio::spawn(async move { crm.billing().issue_invoice(&admin, id, IssueInput::default()).await }));
    }
    let refused = b.issue_invoice(&h.admin, empty.invoice.id, IssueInput::default()).await;
    assert_eq!(fields(&assert_code(refused, "validation_failed")), vec!["lines"]);
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.expect("task").expect("issue").invoice.number.expect("number"));
    }
    numbers.sort();
    let expected: Vec<String> = (1..=20).map(|n| format!("INV-2026-{n:06}")).collect();
    assert_eq!(numbers, expected);
    // A void keeps its number; the next issue continues after it.
    b.void_invoice(&h.admin, drafts[0], VoidInput { reason: Some("duplicate".into()) }).await.expect("void");
    let next = b.invoice_from_deal(&h.admin, deal).await.expect("draft").invoice.id;
    let n = b.issue_invoice(&h.admin, next, IssueInput::default()).await.expect("issue").invoice.number;
    assert_eq!(n.as_deref(), Some("INV-2026-000021"));
    // Another year, another sequence.
    let next = b.invoice_from_deal(&h.admin, deal).await.expect("draft").invoice.id;
    let input = IssueInput { issue_date: Some(day(2027, 1, 2)), version: None };
    let n = b.issue_invoice(&h.admin, next, input).await.expect("issue 2027").invoice.number;
    assert_eq!(n.as_deref(), Some("INV-2027-000001"));
}

/// Quote → accepted → invoice; credit notes in part and in whole; voids only when
/// nothing was paid; an expired quote cannot be accepted.
pub async fn quotes_credit_notes_and_voids(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let b = h.crm.billing();
    let (deal, _) = won_deal(&h, &h.admin, None).await;
    let quote = b.quote_from_deal(&h.admin, deal).await.expect("quote").quote;
    assert_eq!(quote.total, 59_051);
    assert_code(b.decide_quote(&h.admin, quote.id, true).await, "conflict");
    let sent = b.send_quote(&h.admin, quote.id, IssueInput::default()).await.expect("send").quote;
    assert_eq!(sent.number.as_deref(), Some("QUO-2026-000001"));
    assert_eq!(sent.valid_until, Some(day(2026, 1, 31)));
    assert_code(b.invoice_from_quote(&h.admin, quote.id).await, "conflict");
    b.decide_quote(&h.admin, quote.id, true).await.expect("accept");
    let inv = b.invoice_from_quote(&h.admin, quote.id).await.expect("invoice").invoice;
    assert_eq!((inv.quote_id, inv.total), (Some(quote.id), 59_051));
    assert_eq!(b.quote(&h.admin, quote.id).await.expect("quote").quote.status, QuoteStatus::Converted);
    b.issue_invoice(&h.admin, inv.id, IssueInput::default()).await.expect("issue");

    // A credit note for the setup line: numbered CN, the balance falls by its total.
    let part = CreditNoteInput {
        lines: Some(vec![LineInput {
            name: Some("Setup refund".into()),
            unit_price: Some(50_005),
            tax_percent: Some(pct(5.5)),
            ..Default::default()
        }]),
        reason: Some("setup not done".into()),
        issue_date: None,
    };
    let cn = b.credit_invoice(&h.admin, inv.id, part).await.expect("credit note").invoice;
    assert_eq!(
        (cn.number.as_deref(), cn.total, cn.credited_invoice_id),
        (Some("CN-2026-000001"), 52_755, Some(inv.id))
    );
    let after = b.invoice(&h.admin, inv.id).await.expect("invoice").invoice;
    assert_eq!((after.amount_credited, after.balance, after.status), (52_755, 6296, InvoiceStatus::Issued));
    // Paid or credited invoices are not voided.
    assert_code(b.void_invoice(&h.admin, inv.id, VoidInput::default()).await, "conflict");
    // More than is left is refused; then the rest reverses it in whole.
    let too_much = CreditNoteInput {
        lines: Some(vec![LineInput { name: Some("x".into()), unit_price: Some(6297), ..Default::default() }]),
        ..Default::default()
    };
    assert_eq!(
        fields(&assert_code(b.credit_invoice(&h.admin, inv.id, too_much).await, "validation_failed")),
        vec!["lines"]
    );
    assert_eq!(
        fields(&assert_code(b.credit_invoice(&h.admin, inv.id, CreditNoteInput::default()).await, "validation_failed")),
        vec!["lines"]
    );
    let rest = CreditNoteInput {
        lines: Some(vec![LineInput { name: Some("Seats".into()), unit_price: Some(6296), ..Default::default() }]),
        ..Default::default()
    };
    b.credit_invoice(&h.admin, inv.id, rest).await.expect("the rest");
    let gone = b.invoice(&h.admin, inv.id).await.expect("invoice").invoice;
    assert_eq!((gone.status, gone.balance), (InvoiceStatus::Credited, 0));

    // A fresh issued invoice voids; its number stays taken.
    let other = b.invoice_from_deal(&h.admin, deal).await.expect("draft").invoice;
    let other = b.issue_invoice(&h.admin, other.id, IssueInput::default()).await.expect("issue").invoice;
    let void = b
        .void_invoice(&h.admin, other.id, VoidInput { reason: Some("wrong customer".into()) })
        .await
        .expect("void")
        .invoice;
    assert_eq!(
        (void.status, void.number, void.reason.as_deref()),
        (InvoiceStatus::Void, other.number, Some("wrong customer"))
    );
    assert_code(
        b.record_payment(&h.admin, other.id, PaymentInput { amount: Some(1), ..Default::default() }).await,
        "conflict",
    );

    // Expired quotes are not accepted.
    let q2 = b.quote_from_deal(&h.admin, deal).await.expect("quote").quote;
    b.send_quote(&h.admin, q2.id, IssueInput::default()).await.expect("send");
    h.clock.advance(Duration::days(31));
    assert!(b.quote(&h.admin, q2.id).await.expect("quote").expired);
    assert_code(b.decide_quote(&h.admin, q2.id, true).await, "conflict");
    b.decide_quote(&h.admin, q2.id, false).await.expect("declined still");
}

/// Bad inputs name their field; users read only the documents of their own deals;
/// managers bill; users do not.
pub async fn billing_inputs_and_roles(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let b = h.crm.billing();
    let bad = b
        .create_product(
            &h.admin,
            ProductInput {
                sku: Some("no spaces".into()),
                unit_price: Some(-1),
                currency: Some("EURO".into()),
                ..Default::default()
            },
        )
        .await;
    let mut f = fields(&assert_code(bad, "validation_failed"));
    f.sort();
    assert_eq!(f, vec!["currency", "name", "sku", "unitPrice"]);
    let usd = b
        .create_product(
            &h.admin,
            ProductInput {
                sku: Some("X-1".into()),
                name: Some("X".into()),
                unit_price: Some(100),
                currency: Some("USD".into()),
                ..Default::default()
            },
        )
        .await
        .expect("product");
    let dup = b
        .create_product(
            &h.admin,
            ProductInput { sku: Some("X-1".into()), name: Some("Y".into()), unit_price: Some(1), ..Default::default() },
        )
        .await;
    assert!(assert_code(dup, "conflict").to_string().contains("sku"));
    let (deal, company) = won_deal(&h, &h.admin, None).await;
    let bad = b
        .create_invoice(
            &h.admin,
            DocumentInput {
                company_id: Some(company),
                currency: Some("EUR".into()),
                payment_terms: Some("net_31".into()),
                lines: Some(vec![
                    LineInput { name: Some("free line".into()), ..Default::default() },
                    LineInput { product_id: Some(usd.id), ..Default::default() },
                    LineInput { product_id: Some(Uuid::now_v7()), ..Default::default() },
                    LineInput { name: Some("q".into()), unit_price: Some(1), quantity: Some(0), ..Default::default() },
                ]),
                ..Default::default()
            },
        )
        .await;
    let mut f = fields(&assert_code(bad, "validation_failed"));
    f.sort();
    assert_eq!(
        f,
        vec!["lines.0.unitPrice", "lines.1.productId", "lines.2.productId", "lines.3.quantity", "paymentTerms"]
    );
    let nobody = b.create_invoice(&h.admin, DocumentInput { lines: Some(vec![]), ..Default::default() }).await;
    assert_eq!(fields(&assert_code(nobody, "validation_failed")), vec!["companyId"]);
    let bad_deal =
        b.create_invoice(&h.admin, DocumentInput { deal_id: Some(Uuid::now_v7()), ..Default::default() }).await;
    assert_eq!(fields(&assert_code(bad_deal, "validation_failed")), vec!["dealId"]);
    let bad = b
        .update_settings(
            &h.admin,
            SettingsInput {
                accent_color: Some("blue".into()),
                language: Some("de".into()),
                quote_validity_days: Some(0),
                ..Default::default()
            },
        )
        .await;
    let mut f = fields(&assert_code(bad, "validation_failed"));
    f.sort();
    assert_eq!(f, vec!["accentColor", "language", "quoteValidityDays"]);

    // Roles: a user's own deal is invoiced by a manager; the user reads that invoice
    // only, and may not bill.
    let team = h.team("Sales").await;
    let ann = h.user("bill_ann", Role::User, Some(team)).await;
    let bob = h.user("bill_bob", Role::User, Some(team)).await;
    let mgr = h.user("bill_mgr", Role::Manager, Some(team)).await;
    let (ann_deal, _) = won_deal(&h, &ann, None).await;
    let mine = b.invoice_from_deal(&mgr, ann_deal).await.expect("manager bills").invoice;
    let theirs = b.invoice_from_deal(&mgr, deal).await.expect("manager bills").invoice;
    assert_eq!(mine.owner_id, ann.user_id.as_uuid());
    b.invoice(&ann, mine.id).await.expect("ann reads her deal's invoice");
    assert_code(b.invoice(&ann, theirs.id).await, "not_found");
    assert_code(b.invoice(&bob, mine.id).await, "not_found");
    let listed = b.invoices(&ann, InvoiceQuery::default()).await.expect("list");
    assert_eq!(listed.iter().map(|v| v.invoice.id).collect::<Vec<_>>(), vec![mine.id]);
    assert_code(b.invoice_from_deal(&ann, ann_deal).await, "forbidden");
    assert_code(b.issue_invoice(&ann, mine.id, IssueInput::default()).await, "forbidden");
    assert_code(b.create_product(&ann, ProductInput::default()).await, "forbidden");
    b.products(&ann, false).await.expect("users read the catalogue");
    b.issue_invoice(&mgr, mine.id, IssueInput::default()).await.expect("manager issues");
    let pay = b
        .record_payment(&mgr, mine.id, PaymentInput { amount: Some(100), ..Default::default() })
        .await
        .expect("manager records");
    assert_eq!(
        b.payments(&ann, None).await.expect("ann's payments").iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![pay.id]
    );
    assert_code(b.refund_payment(&ann, pay.id, RefundInput::default()).await, "forbidden");
    // A deal not yet won is quoted, not invoiced.
    let (open_deal, _) = won_deal(&h, &h.admin, None).await;
    h.crm.deals().move_to(&h.admin, crm_core::ids::DealId(open_deal), DealStage::Negotiation).await.expect("reopen");
    assert_eq!(
        fields(&assert_code(b.invoice_from_deal(&h.admin, open_deal).await, "validation_failed")),
        vec!["dealId"]
    );
    b.quote_from_deal(&h.admin, open_deal).await.expect("quoted");
}

/// Bank details and tax ids are ciphertext in the database (the SQLite file, a
/// PostgreSQL dump, MongoDB's documents), open through the engine, open after the key
/// is rotated, and not without the key.
pub async fn billing_data_is_sealed_at_rest(backend: &dyn TestBackend) {
    const IBAN: &str = "FR76 3000 6000 0112 3456 7890 189";
    const SELLER_VAT: &str = "FR40303265045";
    const BUYER_VAT: &str = "FR12345678901";
    let h = Harness::new(backend).await;
    let b = h.crm.billing();
    b.update_settings(
        &h.admin,
        SettingsInput {
            seller: Some(Party { name: "Northwind SAS".into(), tax_id: Some(SELLER_VAT.into()), ..Default::default() }),
            payment_instructions: Some(format!("IBAN {IBAN}")),
            ..Default::default()
        },
    )
    .await
    .expect("settings");
    let (deal, _) = won_deal(&h, &h.admin, None).await;
    let inv = b.invoice_from_deal(&h.admin, deal).await.expect("invoice").invoice;
    let issued = b.issue_invoice(&h.admin, inv.id, IssueInput::default()).await.expect("issue").invoice;
    let quote = b.quote_from_deal(&h.admin, deal).await.expect("quote").quote;
    b.send_quote(&h.admin, quote.id, IssueInput::default()).await.expect("send");
    // Through the engine: as entered.
    assert!(issued.payment_instructions.as_deref().is_some_and(|p| p.contains(IBAN)));
    assert_eq!(
        (issued.seller.tax_id.as_deref(), issued.customer.tax_id.as_deref()),
        (Some(SELLER_VAT), Some(BUYER_VAT))
    );
    assert_eq!(b.settings(&h.admin).await.expect("settings").seller.tax_id.as_deref(), Some(SELLER_VAT));
    // In the database: nowhere. (The buyer's tax id is also a custom field of its
    // company, CRM data in clear by the user's choice; the documents seal their copy.)
    let dump = backend.raw_dump().await;
    assert!(
        dump.contains("Northwind SAS") && dump.contains("INV-2026-000001"),
        "the dump holds the data: {}",
        &dump[..dump.len().min(300)]
    );
    for secret in [IBAN, "3000 6000 0112", SELLER_VAT] {
        assert!(!dump.contains(secret), "{secret} is in the database in clear ({})", backend.location());
    }
    assert!(dump.contains("enc:v1:"));
    // Rotation: a new key current, the old one kept; everything sealed again.
    let old = crate::test_billing_keys();
    let rotated = crm_core::billing::crypt::FieldKeys::new(&[6; 32]).with_previous(&[5; 32]);
    let crm2 = h.engine_with_billing_keys(backend, rotated);
    let n = crm2.billing().rotate_keys().await.expect("rotate");
    assert_eq!(n, 3, "the invoice, the quote and the settings");
    assert_eq!(crm2.billing().rotate_keys().await.expect("rotate again"), 0, "nothing left under the old key");
    let again = crm2.billing().invoice(&h.admin, inv.id).await.expect("opens under the new key").invoice;
    assert!(again.payment_instructions.as_deref().is_some_and(|p| p.contains(IBAN)));
    assert_eq!(again.customer.tax_id.as_deref(), Some(BUYER_VAT));
    // The new key alone opens it; the old key alone no longer does.
    let only_new = h.engine_with_billing_keys(backend, crm_core::billing::crypt::FieldKeys::new(&[6; 32]));
    only_new.billing().invoice(&h.admin, inv.id).await.expect("the new key alone");
    let only_old = h.engine_with_billing_keys(backend, old);
    assert!(only_old.billing().invoice(&h.admin, inv.id).await.is_err(), "the old key no longer opens it");
    let dump = backend.raw_dump().await;
    assert!(!dump.contains(IBAN) && !dump.contains(SELLER_VAT));
}

/// `n` schedulers run at once (as `n` servers would); answers the invoices they made.
async fn schedulers(h: &Harness, n: usize) -> usize {
    let runs: Vec<_> = (0..n)
        .map(|_| {
            let crm = h.crm.clone();
            tokio::spawn(async move { crm.billing().run_subscriptions().await.expect("run").invoices })
        })
        .collect();
    let mut total = 0;
    for r in runs {
        total += r.await.expect("scheduler");
    }
    total
}

/// A monthly subscription from January 31: one invoice per period, on the 31st, 28th,
/// 31st (clamped, not drifting), however many schedulers run at once; a catch-up after
/// a gap bills each missed period once; its last cycle finishes it; the customer's time
/// zone decides when a period has begun.
pub async fn subscriptions_bill_each_period_once(backend: &dyn TestBackend) {
    use crm_core::billing::recurring::SubscriptionInput;
    use crm_core::model::billing::SubscriptionStatus;
    let h = Harness::new(backend).await;
    let b = h.crm.billing();
    let (_, company) = won_deal(&h, &h.admin, None).await;
    let line = || LineInput {
        name: Some("Pro plan".into()),
        quantity: Some(40),
        unit_price: Some(2900),
        tax_percent: Some(pct(20.0)),
        ..Default::default()
    };
    let sub = b
        .create_subscription(
            &h.admin,
            SubscriptionInput {
                name: Some("Pro plan, 40 seats".into()),
                company_id: Some(company),
                lines: Some(vec![line()]),
                start_date: Some(day(2026, 1, 31)),
                remaining_cycles: Some(4),
                time_zone: Some("Pacific/Auckland".into()),
                ..Default::default()
            },
        )
        .await
        .expect("subscription");
    assert_eq!((sub.total, sub.next_run), (139_200, Some(day(2026, 1, 31))));
    let billed = |h: &Harness| {
        let crm = h.crm.clone();
        let admin = h.admin.clone();
        async move {
            let mut list: Vec<_> = crm
                .billing()
                .invoices(&admin, InvoiceQuery { limit: Some(1000), ..Default::default() })
                .await
                .expect("invoices")
                .into_iter()
                .filter(|v| v.invoice.subscription_id == Some(sub.id))
                .map(|v| (v.invoice.period_start, v.invoice.period_end, v.invoice.number, v.invoice.total))
                .collect();
            list.sort();
            list
        }
    };
    // 2026-01-30 11:00 UTC is already January 31 in Auckland: the first period begins.
    h.clock.set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 30, 11, 0, 0).single().expect("time"));
    // Three schedulers at once (three servers): one invoice.
    assert_eq!(schedulers(&h, 3).await, 1);
    assert_eq!(
        billed(&h).await,
        vec![(Some(day(2026, 1, 31)), Some(day(2026, 2, 27)), Some("INV-2026-000001".into()), 139_200)]
    );
    // Again the same day: nothing.
    assert_eq!(b.run_subscriptions().await.expect("run").invoices, 0);
    // Two months later (April 1 in Auckland): the February and March periods, each once,
    // on the 28th and the 31st.
    h.clock.advance(Duration::days(60));
    assert_eq!(schedulers(&h, 2).await, 2);
    let list = billed(&h).await;
    let periods: Vec<_> = list.iter().map(|(s, e, _, _)| (*s, *e)).collect();
    assert_eq!(
        periods,
        vec![
            (Some(day(2026, 1, 31)), Some(day(2026, 2, 27))),
            (Some(day(2026, 2, 28)), Some(day(2026, 3, 30))),
            (Some(day(2026, 3, 31)), Some(day(2026, 4, 29))),
        ]
    );
    let mut numbers: Vec<_> = list.iter().filter_map(|(_, _, n, _)| n.clone()).collect();
    numbers.sort();
    assert_eq!(numbers, vec!["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]);
    // The fourth and last cycle finishes it.
    h.clock.advance(Duration::days(31));
    assert_eq!(
        b.run_subscriptions().await.expect("run"),
        crm_core::billing::recurring::RecurringReport { invoices: 1, finished: 1 }
    );
    let done = b.subscription(&h.admin, sub.id).await.expect("subscription");
    assert_eq!(
        (done.status, done.cycles_billed, done.remaining_cycles, done.next_run),
        (SubscriptionStatus::Finished, 4, Some(0), None)
    );
    h.clock.advance(Duration::days(62));
    assert_eq!(b.run_subscriptions().await.expect("run").invoices, 0);
    assert_eq!(billed(&h).await.len(), 4);

    // Paused, a period is skipped; resumed, billing goes on from the next period.
    let weekly = b
        .create_subscription(
            &h.admin,
            SubscriptionInput {
                name: Some("Support".into()),
                company_id: Some(company),
                lines: Some(vec![line()]),
                frequency: Some("weekly".into()),
                auto_issue: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("weekly");
    assert_eq!(b.run_subscriptions().await.expect("run").invoices, 1);
    let paused = SubscriptionInput { status: Some("paused".into()), ..Default::default() };
    b.update_subscription(&h.admin, weekly.id, paused).await.expect("pause");
    h.clock.advance(Duration::days(10));
    assert_eq!(b.run_subscriptions().await.expect("run").invoices, 0, "paused");
    let resumed = SubscriptionInput { status: Some("active".into()), ..Default::default() };
    let r = b.update_subscription(&h.admin, weekly.id, resumed).await.expect("resume");
    assert_eq!(r.next_run, Some(weekly.start_date + Duration::days(14)), "the period begun while paused is skipped");
    h.clock.advance(Duration::days(4));
    assert_eq!(b.run_subscriptions().await.expect("run").invoices, 1);
    let drafts = b
        .invoices(&h.admin, InvoiceQuery { status: Some("draft".into()), ..Default::default() })
        .await
        .expect("drafts");
    assert_eq!(drafts.len(), 2, "autoIssue false: drafts");

    // Inputs name their fields.
    let bad = b
        .create_subscription(
            &h.admin,
            SubscriptionInput {
                frequency: Some("daily".into()),
                time_zone: Some("Mars/Olympus".into()),
                lines: Some(vec![]),
                remaining_cycles: Some(0),
                ..Default::default()
            },
        )
        .await;
    let mut f = fields(&assert_code(bad, "validation_failed"));
    f.sort();
    assert_eq!(f, vec!["companyId", "frequency", "lines", "name", "remainingCycles", "timeZone"]);
}

/// An invoice with two VAT rates and a discount, paid in part, and a credit note: their
/// UBL 2.1 documents pass CEN's EN 16931 rules (the compiled Schematron, run by Saxon);
/// the journal balances document by document, and its cells are formula-safe.
pub async fn accounting_exports_follow_en16931(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let b = h.crm.billing();
    b.update_settings(
        &h.admin,
        SettingsInput {
            seller: Some(northwind()),
            payment_instructions: Some("IBAN FR76 3000 6000 0112 3456 7890 189".into()),
            ..Default::default()
        },
    )
    .await
    .expect("settings");
    let company = h
        .crm
        .companies()
        .create(
            &h.admin,
            NewCompany {
                name: "=cmd|' /C calc'!A0 & Co <GmbH>".into(),
                country: Some("DE".into()),
                custom_fields: serde_json::from_value(serde_json::json!({"vat": "DE123456789"})).expect("custom"),
                ..Default::default()
            },
        )
        .await
        .expect("company");
    let lines = vec![
        LineInput {
            name: Some("Seat".into()),
            quantity: Some(3),
            unit_price: Some(1999),
            discount_percent: Some(pct(12.5)),
            tax_percent: Some(pct(20.0)),
            ..Default::default()
        },
        LineInput {
            name: Some("Book".into()),
            quantity: Some(2),
            unit_price: Some(2450),
            tax_percent: Some(pct(5.5)),
            ..Default::default()
        },
        LineInput { name: Some("Export".into()), unit_price: Some(10_000), ..Default::default() },
    ];
    let input = DocumentInput {
        company_id: Some(company.id.as_uuid()),
        currency: Some("EUR".into()),
        lines: Some(lines),
        ..Default::default()
    };
    let inv = b.create_invoice(&h.admin, input).await.expect("invoice").invoice;
    assert_code(b.ubl(&h.admin, inv.id).await, "conflict");
    let inv = b.issue_invoice(&h.admin, inv.id, IssueInput::default()).await.expect("issue").invoice;
    b.record_payment(
        &h.admin,
        inv.id,
        PaymentInput { amount: Some(5000), reference: Some("VIR-7".into()), ..Default::default() },
    )
    .await
    .expect("pay");
    let part = CreditNoteInput {
        lines: Some(vec![LineInput {
            name: Some("Book returned".into()),
            unit_price: Some(2450),
            tax_percent: Some(pct(5.5)),
            ..Default::default()
        }]),
        reason: Some("one book returned".into()),
        issue_date: None,
    };
    let cn = b.credit_invoice(&h.admin, inv.id, part).await.expect("credit note").invoice;

    let dir = std::env::temp_dir().join(format!("crm-ubl-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut files = Vec::new();
    for id in [inv.id, cn.id] {
        let (name, xml) = b.ubl(&h.admin, id).await.expect("ubl");
        assert!(!xml.contains("=cmd|' /C calc'!A0 & Co <GmbH>"), "escaped");
        let path = dir.join(name);
        std::fs::write(&path, &xml).expect("write");
        files.push(path);
    }
    let (invoice_xml, credit_xml) =
        (std::fs::read_to_string(&files[0]).expect("read"), std::fs::read_to_string(&files[1]).expect("read"));
    assert!(
        invoice_xml.contains("<cbc:ID>INV-2026-000001</cbc:ID>")
            && invoice_xml.contains("<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>")
    );
    assert!(
        invoice_xml.contains("<cbc:TaxInclusiveAmount currencyID=\"EUR\">214.66</cbc:TaxInclusiveAmount>"),
        "{invoice_xml}"
    );
    assert!(
        credit_xml.contains("<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>")
            && credit_xml.contains("<cbc:ID>INV-2026-000001</cbc:ID></cac:InvoiceDocumentReference>")
    );
    crate::ubl::check(&files);
    // The schema check bites: an element UBL 2.1 does not have, where it has none.
    let broken = dir.join("broken.xml");
    std::fs::write(
        &broken,
        invoice_xml.replacen("<cbc:InvoiceTypeCode>", "<cbc:Colour>red</cbc:Colour><cbc:InvoiceTypeCode>", 1),
    )
    .expect("write");
    crate::ubl::rejects_schema(&broken);

    // The journal: every document balances; payments and credit notes are there.
    let csv = b.journal(&h.admin, None, None).await.expect("journal");
    let mut sums: std::collections::HashMap<String, (f64, f64)> = Default::default();
    let mut rows = 0;
    for line in csv.lines().skip(1) {
        rows += 1;
        let cells: Vec<&str> = line.rsplitn(4, ',').collect();
        let (credit, debit) = (cells[1].parse::<f64>().expect("credit"), cells[2].parse::<f64>().expect("debit"));
        let doc = line.split(',').nth(2).expect("document").to_string();
        let key = format!("{}:{doc}", line.split(',').nth(1).expect("journal"));
        let e = sums.entry(key).or_default();
        e.0 += debit;
        e.1 += credit;
    }
    assert!(rows >= 10, "{csv}");
    for (doc, (d, c)) in &sums {
        assert!((d - c).abs() < 0.005, "{doc} does not balance: {d} against {c}\n{csv}");
    }
    assert!(
        sums.contains_key("SALES:INV-2026-000001")
            && sums.contains_key("CREDIT_NOTES:CN-2026-000001")
            && sums.contains_key("BANK:INV-2026-000001"),
        "{csv}"
    );
    assert!(csv.contains("\"'=cmd|' /C calc'!A0 & Co <GmbH>\"") || csv.contains("'=cmd"), "formula-safe: {csv}");
    assert!(!csv.lines().any(|l| l.split(',').any(|c| c.starts_with('='))), "{csv}");
    let user = h.user("journal_user", Role::User, None).await;
    assert_code(b.journal(&user, None, None).await, "forbidden");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Invoices keep their currency; totals convert at the rate of each issue date (the
/// latest on or before it, or the inverse of the opposite pair); rates imported from
/// CSV name their bad cells; a missing rate is named.
pub async fn totals_convert_at_the_invoice_date(backend: &dyn TestBackend) {
    use crm_core::billing::currency::RateInput;
    let h = Harness::new(backend).await;
    let b = h.crm.billing();
    let (_, company) = won_deal(&h, &h.admin, None).await;
    let issue = |cur: &'static str, cents: i64, on: NaiveDate| {
        let b = h.crm.billing();
        let admin = h.admin.clone();
        async move {
            let line = LineInput { name: Some("x".into()), unit_price: Some(cents), ..Default::default() };
            let input = DocumentInput {
                company_id: Some(company),
                currency: Some(cur.into()),
                lines: Some(vec![line]),
                ..Default::default()
            };
            let inv = b.create_invoice(&admin, input).await.expect("invoice").invoice;
            b.issue_invoice(&admin, inv.id, IssueInput { issue_date: Some(on), version: None })
                .await
                .expect("issue")
                .invoice
        }
    };
    issue("EUR", 50_000, day(2026, 1, 5)).await;
    let usd = issue("USD", 10_000, day(2026, 1, 5)).await;
    issue("USD", 10_000, day(2026, 2, 5)).await;
    issue("GBP", 10_000, day(2026, 2, 5)).await;
    // Rates: USD→EUR on Jan 1 and Feb 1; EUR→GBP (used inverted) on Jan 1.
    let csv = "date,base,quote,rate\n2026-01-01,USD,EUR,0.90\n2026-02-01,USD,EUR,0.95\n2026-01-01,EUR,GBP,0.80\n";
    assert_eq!(b.import_rates(&h.admin, csv).await.expect("import").stored, 3);
    assert_eq!(b.import_rates(&h.admin, csv).await.expect("again").stored, 0, "unchanged rates are not written again");
    let t = b.totals(&h.admin, Some("EUR".into()), None, None).await.expect("totals");
    // 500.00 + 100.00×0.90 + 100.00×0.95 + 100.00÷0.80 = 500 + 90 + 95 + 125 = 810.00 EUR.
    assert_eq!((t.currency.as_str(), t.invoiced), ("EUR", 81_000), "{t:?}");
    let by: Vec<(String, i64, i64)> =
        t.by_currency.iter().map(|c| (c.currency.clone(), c.invoiced, c.converted)).collect();
    assert_eq!(
        by,
        vec![("EUR".into(), 50_000, 50_000), ("GBP".into(), 10_000, 12_500), ("USD".into(), 20_000, 18_500)]
    );
    // A credit note lowers the total, converted at its own date.
    let cn = CreditNoteInput {
        lines: Some(vec![LineInput { name: Some("y".into()), unit_price: Some(1000), ..Default::default() }]),
        issue_date: Some(day(2026, 1, 20)),
        ..Default::default()
    };
    b.credit_invoice(&h.admin, usd.id, cn).await.expect("credit");
    let t = b.totals(&h.admin, Some("EUR".into()), None, None).await.expect("totals");
    assert_eq!(t.invoiced, 81_000 - 900);
    // In USD: the EUR invoices need EUR→USD (the inverse of USD→EUR), GBP has none.
    let e = assert_code(b.totals(&h.admin, Some("USD".into()), None, None).await, "validation_failed");
    assert!(e.to_string().contains("GBP→USD on 2026-02-05"), "{e}");
    // A rate set by hand replaces the day's; bad input names the cell.
    let r = b
        .set_rate(
            &h.admin,
            RateInput {
                base: Some("GBP".into()),
                quote: Some("USD".into()),
                date: Some(day(2026, 1, 1)),
                rate: Some(serde_json::json!("1.25")),
            },
        )
        .await
        .expect("rate");
    assert_eq!((r.rate.as_str(), r.rate_e9), ("1.25", 1_250_000_000));
    b.totals(&h.admin, Some("USD".into()), None, None).await.expect("every rate now");
    let bad = b.import_rates(&h.admin, "date,base,quote,rate\n2026-13-01,USD,EUR,0.9\n2026-01-01,USD,EURO,-1\n").await;
    let mut f = fields(&assert_code(bad, "validation_failed"));
    f.sort();
    assert_eq!(f, vec!["line 2.date", "line 3.quote", "line 3.rate"]);
    assert_code(b.import_rates(&h.admin, "when,from,to\n").await, "validation_failed");

    // The same as DataFrames: one row per document, converted at its issue date.
    let frame = b.invoice_frame(&h.admin, Some("EUR")).await.expect("invoice frame");
    assert_eq!(frame.height(), 5, "four invoices and a credit note");
    let col = |name: &str| frame.column(name).expect(name).clone();
    let (totals_col, kinds_col) = (col("total_reporting"), col("doc_type"));
    let (t, k) = (totals_col.i64().expect("i64"), kinds_col.str().expect("str"));
    let totals: Vec<Option<i64>> = (0..frame.height()).map(|i| t.get(i)).collect();
    let kinds: Vec<Option<String>> = (0..frame.height()).map(|i| k.get(i).map(str::to_string)).collect();
    let signed: i64 = totals
        .iter()
        .zip(&kinds)
        .map(|(t, k)| t.expect("every rate is stored") * if k.as_deref() == Some("credit_note") { -1 } else { 1 })
        .sum();
    assert_eq!(signed, 81_000 - 900, "the frame totals as the API does");
    assert_eq!(frame.column("issue_date").expect("issue_date").dtype().to_string(), "date");
    assert_code(b.invoice_frame(&h.admin, Some("EURO")).await, "validation_failed");
    let payments = b.payment_frame(&h.admin).await.expect("payment frame");
    assert_eq!(payments.height(), 0);
    assert!(payments.column("received_at").is_ok() && payments.column("reference").is_ok());
    // More than a page of documents: all of them are read, for the frame and the totals.
    for i in 0..1000 {
        let line = LineInput { name: Some(format!("draft {i}")), unit_price: Some(100), ..Default::default() };
        let input = DocumentInput { company_id: Some(company), lines: Some(vec![line]), ..Default::default() };
        b.create_invoice(&h.admin, input).await.expect("draft");
    }
    assert_eq!(b.invoice_frame(&h.admin, None).await.expect("frame").height(), 1005);
    let t = b.totals(&h.admin, Some("EUR".into()), None, None).await.expect("totals");
    assert_eq!(t.invoiced, 81_000 - 900, "drafts are not invoiced");
    // A user who owns none of them sees none.
    let outsider = h.user("frame-outsider", Role::User, None).await;
    assert_eq!(b.invoice_frame(&outsider, None).await.expect("frame").height(), 0);
}

/// A one-pixel-high SVG logo, as the settings take it.
const LOGO: &str = "data:image/svg+xml;utf8,%3Csvg xmlns='http://www.w3.org/2000/svg' width='80' height='20'%3E%3Crect width='80' height='20' fill='%23c0392b'/%3E%3C/svg%3E";

/// Invoice and quote documents: the PDF read back (number, totals, the seller and a
/// customer whose name is markup, Arabic shaped into joined forms, twenty pages for a
/// long invoice), the HTML page escaped under a hash-only CSP, and the email that
/// carries the PDF through the outbox to the SMTP sink — marking the invoice sent,
/// audited, with inputs that name their field.
pub async fn documents_are_laid_out_and_emailed(backend: &dyn TestBackend) {
    use crm_core::billing::document::{self, DocOptions, SendDocumentInput};
    let h = Harness::new(backend).await;
    let b = h.crm.billing();
    b.update_settings(
        &h.admin,
        SettingsInput {
            seller: Some(Party { email: Some("billing@northwind.example".into()), ..northwind() }),
            payment_instructions: Some("IBAN FR76 3000 6000 0112 3456 7890 189".into()),
            footer: Some("Northwind SAS, capital 10 000 €, RCS Paris 303 265 045".into()),
            accent_color: Some("#c0392b".into()),
            logo: Some(LOGO.into()),
            ..Default::default()
        },
    )
    .await
    .expect("settings");
    let (deal, _) = won_deal(&h, &h.admin, None).await;
    let inv = b.invoice_from_deal(&h.admin, deal).await.expect("from deal").invoice;
    // A draft renders, stamped, without a number.
    let draft = b.invoice_document(&h.admin, inv.id, DocOptions::default()).await.expect("draft document");
    assert_eq!(draft.stamp.as_deref(), Some("DRAFT"));
    assert_code(b.email_invoice(&h.admin, inv.id, SendDocumentInput::default(), false).await, "conflict");
    let inv = b.issue_invoice(&h.admin, inv.id, IssueInput::default()).await.expect("issue").invoice;
    let number = inv.number.clone().expect("number");

    // English: the PDF's text holds what the invoice says, written the English way.
    let en = b.invoice_document(&h.admin, inv.id, DocOptions::default()).await.expect("document");
    let pdf = document::pdf(&en).expect("pdf");
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    assert_eq!(crate::pdf::pages(&pdf), 1);
    let text = crate::pdf::text(&pdf);
    for needle in
        [number.as_str(), "Invoice", "Northwind SAS", "Acme SA", "Ada Lovelace", "Balance due", "€590.51", "FR76"]
    {
        assert!(text.contains(needle), "{needle:?} in the PDF's text:\n{text}");
    }
    // Every font is embedded as a subset (its name tagged ABCDEF+).
    let fonts = crate::pdf::glyphs_by_char(&pdf);
    assert!(!fonts.is_empty() && fonts.keys().all(|f| f.len() > 7 && f.as_bytes()[6] == b'+'), "{:?}", fonts.keys());

    // French: French dates, numbers and words.
    let fr = b.invoice_document(&h.admin, inv.id, DocOptions { lang: Some("fr".into()), ..Default::default() });
    let fr_text = crate::pdf::text(&document::pdf(&fr.await.expect("fr")).expect("pdf"));
    assert!(fr_text.contains("Facture") && fr_text.contains("590,51"), "{fr_text}");
    assert!(fr_text.contains("Reste à payer"), "{fr_text}");

    // Arabic: right to left, Arabic-Indic digits, and shaped — the letters of one word
    // take their joined forms, so one letter maps to several glyphs.
    let ar = b.invoice_document(&h.admin, inv.id, DocOptions { lang: Some("ar".into()), ..Default::default() });
    let ar = ar.await.expect("ar");
    assert!(ar.rtl);
    // A language the documents are not written in is refused, not printed in English.
    let de = b.invoice_document(&h.admin, inv.id, DocOptions { lang: Some("de".into()), ..Default::default() });
    assert_eq!(fields(&assert_code(de.await, "validation_failed")), vec!["lang".to_string()]);
    let de = b.quote_document(&h.admin, Uuid::now_v7(), DocOptions { lang: Some("de".into()), ..Default::default() });
    assert_eq!(fields(&assert_code(de.await, "validation_failed")), vec!["lang".to_string()]);
    let ar_pdf = document::pdf(&ar).expect("pdf");
    let ar_text = crate::pdf::text(&ar_pdf);
    assert!(ar_text.contains("٥٩٠٫٥١"), "Arabic-Indic amounts in:\n{ar_text}");
    let glyphs = crate::pdf::glyphs_by_char(&ar_pdf);
    let arabic = glyphs.iter().find(|(f, _)| f.contains("Arabic")).map(|(_, m)| m).expect("an Arabic font");
    // ة ت ر ف و ا of فاتورة, ل م ج و ع of المجموع...: the lam of «المستحق» and «الإجمالي»
    // is initial and medial; the teh of «فاتورة» medial, of «المستحق» medial, …
    let shaped: Vec<char> = arabic.iter().filter(|(_, g)| g.len() > 1).map(|(c, _)| *c).collect();
    assert!(shaped.len() >= 3, "letters in more than one form: {shaped:?} (all: {arabic:?})");

    // The HTML page: the same document, values escaped, a CSP with the hash of its one
    // style block.
    let page = document::html(&en).expect("html");
    assert!(page.html.contains(&number) && page.html.contains("€590.51"));
    let style = page.html.split("<style>").nth(1).and_then(|s| s.split("</style>").next()).expect("style");
    let hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style.as_bytes()))
    };
    assert!(page.csp.contains(&format!("'sha256-{hash}'")) && !page.csp.contains("unsafe-inline"), "{}", page.csp);

    // Markup in a customer's name is text in both layouts.
    let company = h
        .crm
        .companies()
        .create(&h.admin, NewCompany { name: "<b>Evil</b> #set page(width: 1cm) ]".into(), ..Default::default() })
        .await
        .expect("company");
    let mut many = Vec::new();
    for i in 0..300 {
        many.push(LineInput {
            name: Some(format!("Line {i} \\ #strong[x] $x$ باب")),
            unit_price: Some(1_000 + i),
            tax_percent: Some(pct(20.0)),
            ..Default::default()
        });
    }
    let long = DocumentInput {
        company_id: Some(company.id.as_uuid()),
        currency: Some("EUR".into()),
        lines: Some(many),
        ..Default::default()
    };
    let long = b.create_invoice(&h.admin, long).await.expect("long invoice").invoice;
    let long = b.issue_invoice(&h.admin, long.id, IssueInput::default()).await.expect("issue").invoice;
    let long_doc = b.invoice_document(&h.admin, long.id, DocOptions::default()).await.expect("document");
    let long_pdf = document::pdf(&long_doc).expect("pdf");
    let pages = crate::pdf::pages(&long_pdf);
    assert!((5..=30).contains(&pages), "300 lines on {pages} pages");
    let long_text = crate::pdf::text(&long_pdf);
    assert!(long_text.contains("<b>Evil</b> #set page(width: 1cm) ]"), "the name as written");
    assert!(long_text.contains("Line 299 \\ #strong[x] $x$"), "the last line as written");
    assert!(long_text.contains(&format!("Page 1 of {pages}")), "page numbers");
    let long_html = document::html(&long_doc).expect("html").html;
    assert!(long_html.contains("&lt;b&gt;Evil&lt;&#x2f;b&gt;") || long_html.contains("&lt;b&gt;Evil&lt;/b&gt;"));
    assert!(!long_html.contains("<b>Evil"));

    // Emailing: no address on file is an error naming `to`; bad input names its field.
    assert_eq!(
        fields(&assert_code(
            b.email_invoice(&h.admin, long.id, SendDocumentInput::default(), true).await,
            "validation_failed"
        )),
        vec!["to".to_string()]
    );
    let bad = SendDocumentInput {
        to: Some("not an address".into()),
        cc: Some(vec!["ok@example.com".into(), "nope".into()]),
        lang: Some("de".into()),
        ..Default::default()
    };
    let mut named = fields(&assert_code(b.email_invoice(&h.admin, long.id, bad, true).await, "validation_failed"));
    named.sort();
    assert_eq!(named, vec!["cc[1]".to_string(), "lang".to_string(), "to".to_string()]);

    // To the customer's contact, in French, with a message, a copy and the pay link.
    let to = inv.customer.email.clone().expect("the contact's address");
    let cc = format!("cfo.{}@acme.test", Uuid::now_v7().simple());
    let input = SendDocumentInput {
        cc: Some(vec![cc.clone()]),
        message: Some("Merci pour votre confiance.".into()),
        lang: Some("fr".into()),
        ..Default::default()
    };
    let sent = b.email_invoice(&h.admin, inv.id, input, true).await.expect("email").invoice;
    assert_eq!(sent.status, InvoiceStatus::Sent);
    assert!(audit_actions(&h, inv.id).await.contains(&"invoice.emailed".to_string()));
    h.deliver_mail().await;
    let got = crate::mail::wait_for(&to, 1).await;
    let m = got.last().expect("the email");
    assert_eq!(m.subject, format!("Facture {number} de Northwind SAS"));
    assert!(m.text.contains("Bonjour Ada Lovelace") && m.text.contains("Merci pour votre confiance."), "{}", m.text);
    assert!(m.text.contains("590,51") && m.text.contains("/pay/"), "amount and pay link in:\n{}", m.text);
    let head = m.raw.split("\r\n\r\n").next().unwrap_or_default().to_lowercase();
    assert!(head.contains("reply-to: billing@northwind.example"), "{head}");
    assert!(head.contains("from: \"northwind sas\" <no-reply@crm.test.example>"), "{head}");
    let (name, kind, bytes) = m.attachments.first().expect("the PDF attached");
    assert_eq!((name.as_str(), kind.as_str()), (format!("{number}.pdf").as_str(), "application/pdf"));
    let attached = crate::pdf::text(bytes);
    assert!(
        attached.contains("Facture")
            && attached.contains(&number)
            && attached.contains("PAYER EN LIGNE")
            && attached.contains("/pay/")
    );
    assert!(head.contains(&format!("cc: {cc}")), "the copy in:\n{head}");

    // A quote: numbered when sent, then emailed with its PDF.
    let quote = b.quote_from_deal(&h.admin, deal).await.expect("quote").quote;
    assert_code(b.email_quote(&h.admin, quote.id, SendDocumentInput::default()).await, "conflict");
    let quote = b.send_quote(&h.admin, quote.id, IssueInput::default()).await.expect("send").quote;
    b.email_quote(&h.admin, quote.id, SendDocumentInput::default()).await.expect("email quote");
    h.deliver_mail().await;
    let got = crate::mail::wait_for(&to, 2).await;
    let qm = got.last().expect("the quote email");
    let qn = quote.number.clone().expect("quote number");
    assert_eq!(qm.subject, format!("Quote {qn} from Northwind SAS"));
    let (qname, _, qbytes) = qm.attachments.first().expect("the quote PDF");
    assert_eq!(qname, &format!("{qn}.pdf"));
    assert!(crate::pdf::text(qbytes).contains("Valid until"));

    // Who: a user who owns nothing reads no document and emails none.
    let user = h.user("doc-outsider", Role::User, None).await;
    assert_code(b.invoice_document(&user, inv.id, DocOptions::default()).await, "not_found");
    assert_code(b.email_invoice(&user, inv.id, SendDocumentInput::default(), false).await, "forbidden");
}
