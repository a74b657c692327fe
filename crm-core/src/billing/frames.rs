//! Invoices and payments as polars DataFrames (feature `analytics`), for notebooks
//! (`crm.Client.invoices()`, `.payments()` in crm-py) and reports: one row per invoice or
//! credit note, one per payment or refund, amounts in minor units of their own currency
//! and, when a reporting currency is asked for, converted at the rate of each
//! document's issue date (null where no rate is stored).

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;

use super::currency::convert;
use super::{BillingService, InvoiceView};
use crate::analytics::from_polars;
use crate::error::{Errors, Result};
use crate::model::billing::{Invoice, Payment};
use crate::policy::Actor;
use crate::values::Currency;

fn days(d: Option<NaiveDate>) -> Option<i32> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    d.and_then(|d| i32::try_from((d - epoch).num_days()).ok())
}

fn micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_micros())
}

fn date_column(name: &str, values: Vec<Option<i32>>) -> Result<Column> {
    Column::new(name.into(), values).cast(&DataType::Date).map_err(from_polars)
}

fn time_column(name: &str, values: Vec<Option<i64>>) -> Result<Column> {
    Column::new(name.into(), values).cast(&DataType::Datetime(TimeUnit::Microseconds, None)).map_err(from_polars)
}

impl BillingService<'_> {
    /// The invoices and credit notes the actor may read, one row each, newest first:
    /// `id, number, doc_type, status, company_id, contact_id, deal_id, subscription_id,
    /// currency, subtotal, discount_total, tax_total, total, amount_paid, amount_credited,
    /// balance, issue_date, due_date, overdue, days_overdue, owner_id, created_at` and,
    /// with `reporting` (ISO 4217), `reporting_currency`, `total_reporting` and
    /// `balance_reporting` at the rate of the issue date (credit notes keep their sign:
    /// their totals are what they give back).
    pub async fn invoice_frame(&self, actor: &Actor, reporting: Option<&str>) -> Result<DataFrame> {
        let mut errs = Errors::new();
        let target = match reporting {
            Some(c) => match Currency::parse(c) {
                Ok(c) => Some(c),
                Err(_) => {
                    errs.add("currency", "invalid_value", "an ISO 4217 code such as EUR");
                    None
                }
            },
            None => None,
        };
        errs.finish()?;
        let today = self.today();
        let views: Vec<InvoiceView> =
            self.all_invoices(actor).await?.into_iter().map(|i| InvoiceView::of(i, today)).collect();
        let mut converted: Vec<(Option<i64>, Option<i64>)> = Vec::with_capacity(views.len());
        if let Some(t) = &target {
            for v in &views {
                let inv = &v.invoice;
                let rate = match inv.issue_date {
                    Some(day) => self.rate_on(&inv.currency, t, day).await?,
                    None => None,
                };
                converted.push(match rate {
                    Some(r) => (convert(inv.total, &inv.currency, t, r), convert(inv.balance, &inv.currency, t, r)),
                    None => (None, None),
                });
            }
        }
        let inv = |f: &dyn Fn(&Invoice) -> Option<String>| views.iter().map(|v| f(&v.invoice)).collect::<Vec<_>>();
        let int = |f: &dyn Fn(&Invoice) -> i64| views.iter().map(|v| f(&v.invoice)).collect::<Vec<i64>>();
        let uuid = |f: &dyn Fn(&Invoice) -> Option<uuid::Uuid>| {
            views.iter().map(|v| f(&v.invoice).map(|u| u.to_string())).collect::<Vec<_>>()
        };
        let mut columns = vec![
            Column::new("id".into(), uuid(&|i| Some(i.id))),
            Column::new("number".into(), inv(&|i| i.number.clone())),
            Column::new("doc_type".into(), inv(&|i| Some(i.doc_type.to_string()))),
            Column::new("status".into(), inv(&|i| Some(i.status.to_string()))),
            Column::new("company_id".into(), uuid(&|i| i.company_id)),
            Column::new("contact_id".into(), uuid(&|i| i.contact_id)),
            Column::new("deal_id".into(), uuid(&|i| i.deal_id)),
            Column::new("subscription_id".into(), uuid(&|i| i.subscription_id)),
            Column::new("currency".into(), inv(&|i| Some(i.currency.code().to_string()))),
            Column::new("subtotal".into(), int(&|i| i.subtotal)),
            Column::new("discount_total".into(), int(&|i| i.discount_total)),
            Column::new("tax_total".into(), int(&|i| i.tax_total)),
            Column::new("total".into(), int(&|i| i.total)),
            Column::new("amount_paid".into(), int(&|i| i.amount_paid)),
            Column::new("amount_credited".into(), int(&|i| i.amount_credited)),
            Column::new("balance".into(), int(&|i| i.balance)),
            date_column("issue_date", views.iter().map(|v| days(v.invoice.issue_date)).collect())?,
            date_column("due_date", views.iter().map(|v| days(v.invoice.due_date)).collect())?,
            Column::new("overdue".into(), views.iter().map(|v| v.overdue).collect::<Vec<bool>>()),
            Column::new("days_overdue".into(), views.iter().map(|v| v.days_overdue).collect::<Vec<i64>>()),
            Column::new("owner_id".into(), uuid(&|i| Some(i.owner_id))),
            time_column("created_at", views.iter().map(|v| micros(Some(v.invoice.created_at))).collect())?,
        ];
        if let Some(t) = &target {
            columns.push(Column::new("reporting_currency".into(), vec![t.code().to_string(); views.len()]));
            columns.push(Column::new("total_reporting".into(), converted.iter().map(|c| c.0).collect::<Vec<_>>()));
            columns.push(Column::new("balance_reporting".into(), converted.iter().map(|c| c.1).collect::<Vec<_>>()));
        }
        DataFrame::new_infer_height(columns).map_err(from_polars)
    }

    /// The payments and refunds the actor may read, one row each, newest first: `id,
    /// invoice_id, kind, amount, currency, method, gateway, reference, refund_of,
    /// refunded, received_at, recorded_by`.
    pub async fn payment_frame(&self, actor: &Actor) -> Result<DataFrame> {
        let list: Vec<Payment> = self.all_payments(actor).await?;
        let s = |f: &dyn Fn(&Payment) -> Option<String>| list.iter().map(f).collect::<Vec<_>>();
        let columns = vec![
            Column::new("id".into(), s(&|p| Some(p.id.to_string()))),
            Column::new("invoice_id".into(), s(&|p| Some(p.invoice_id.to_string()))),
            Column::new("kind".into(), s(&|p| Some(p.kind.to_string()))),
            Column::new("amount".into(), list.iter().map(|p| p.amount).collect::<Vec<i64>>()),
            Column::new("currency".into(), s(&|p| Some(p.currency.code().to_string()))),
            Column::new("method".into(), s(&|p| Some(p.method.to_string()))),
            Column::new("gateway".into(), s(&|p| Some(p.gateway.clone()))),
            Column::new("reference".into(), s(&|p| p.reference.clone())),
            Column::new("refund_of".into(), s(&|p| p.refund_of.map(|u| u.to_string()))),
            Column::new("refunded".into(), list.iter().map(|p| p.refunded).collect::<Vec<i64>>()),
            time_column("received_at", list.iter().map(|p| micros(Some(p.received_at))).collect())?,
            Column::new("recorded_by".into(), s(&|p| p.recorded_by.map(|u| u.to_string()))),
        ];
        DataFrame::new_infer_height(columns).map_err(from_polars)
    }
}
