//! Recurring billing: subscriptions of companies and the scheduler that invoices each
//! of their periods **exactly once** — across restarts, crashes and several workers —
//! because the period's invoice (unique per subscription and period start) and the
//! subscription's advance to the next period are one write.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{conflict, currency, is_retryable, parse_enum, required, BillingService, LineInput};
use crate::error::{Error, Errors, Result};
use crate::model::billing::{
    BillingFrequency, ChargeState, DocumentType, Invoice, InvoiceStatus, PaymentTerms, Subscription, SubscriptionStatus,
};
use crate::model::company::Company;
use crate::policy::{Action, Actor};
use crate::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
use crate::schema::{to_row, EntityKind, Value, NAME_CHARS};
use crate::store::{Changeset, StoreExt, Write};

/// A subscription's fields (all for a new one; those to change for an update).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionInput {
    /// What it is.
    pub name: Option<String>,
    /// The customer company (required for a new one).
    pub company_id: Option<Uuid>,
    /// The contact invoices are addressed to.
    pub contact_id: Option<Uuid>,
    /// ISO 4217 (default: the billing settings').
    pub currency: Option<String>,
    /// Each period's lines.
    pub lines: Option<Vec<LineInput>>,
    /// `weekly`, `monthly` (default), `quarterly`, `semiannual`, `yearly`.
    pub frequency: Option<String>,
    /// Weeks, months or years between periods (default 1; 1 to 52 weeks, 1 to 36 months,
    /// 1 to 10 years).
    pub interval: Option<i64>,
    /// The first period's first day (default today in the time zone).
    pub start_date: Option<NaiveDate>,
    /// No period starts after it.
    pub end_date: Option<NaiveDate>,
    /// How many periods to bill (none: until ended).
    pub remaining_cycles: Option<i64>,
    /// IANA time zone (default UTC).
    pub time_zone: Option<String>,
    /// The invoices' payment terms (default: the settings').
    pub payment_terms: Option<String>,
    /// Issue each invoice at once (default true).
    pub auto_issue: Option<bool>,
    /// Charge each issued invoice to the company's saved payment method (default
    /// false; needs `autoIssue`).
    pub auto_charge: Option<bool>,
    /// Updates only: `active`, `paused` or `cancelled`.
    pub status: Option<String>,
    /// For updates: the version the change was made from.
    pub version: Option<i64>,
}

/// What a run of the scheduler did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RecurringReport {
    /// Invoices made.
    pub invoices: usize,
    /// Subscriptions that billed their last period.
    pub finished: usize,
}

/// The first day of period `k` (0 for the first) of a subscription, or `None` past the
/// calendar. Months count from the start date, so the day of the month is kept where
/// the month has it and clamped to its last day where it has not (Jan 31 → Feb 28 →
/// Mar 31).
pub fn period_start(frequency: BillingFrequency, interval: i64, start: NaiveDate, k: i64) -> Option<NaiveDate> {
    let k = u32::try_from(k).ok()?;
    let months = |per: u32| start.checked_add_months(Months::new(per.checked_mul(k)?));
    let n = u32::try_from(interval.max(1)).ok()?;
    match frequency {
        BillingFrequency::Weekly => start.checked_add_days(Days::new(u64::from(7 * n) * u64::from(k))),
        BillingFrequency::Monthly => months(n),
        BillingFrequency::Quarterly => months(3),
        BillingFrequency::Semiannual => months(6),
        BillingFrequency::Yearly => months(12 * n),
    }
}

fn today_in(tz: &str, now: DateTime<Utc>) -> NaiveDate {
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
    now.with_timezone(&tz).date_naive()
}

impl BillingService<'_> {
    async fn load_subscription(&self, id: Uuid) -> Result<Subscription> {
        self.crm.store().get_as::<Subscription>(id).await?.ok_or(Error::NotFound { entity: "subscription" })
    }

    /// One subscription the actor may read.
    pub async fn subscription(&self, actor: &Actor, id: Uuid) -> Result<Subscription> {
        self.require(actor, Action::Read)?;
        let s = self.load_subscription(id).await?;
        self.authorize(actor, Action::Read, s.owner_id, s.team_id, "subscription")?;
        Ok(s)
    }

    /// The subscriptions the actor may read, newest first; of one company when given.
    pub async fn subscriptions(&self, actor: &Actor, company_id: Option<Uuid>) -> Result<Vec<Subscription>> {
        let scope = self.require(actor, Action::Read)?;
        let k = EntityKind::Subscription;
        let mut all: Vec<Filter> = Vec::new();
        all.extend(crate::service::write_path::scope_filter(k, scope, actor));
        if let Some(c) = company_id {
            all.push(Filter::Cmp(Cmp { column: k.require_column("company_id")?, pred: Predicate::Eq(Value::Uuid(c)) }));
        }
        let q = StoreQuery {
            filter: if all.is_empty() { None } else { Some(Filter::And(all)) },
            sort: vec![SortKey { column: k.require_column("id")?, direction: Direction::Desc }],
            limit: 1000,
            include_deleted: false,
        };
        self.crm.store().list_as(&q).await
    }

    /// A new subscription (managers and admins); its first period is billed when its
    /// start date begins in its time zone.
    pub async fn create_subscription(&self, actor: &Actor, input: SubscriptionInput) -> Result<Subscription> {
        self.require(actor, Action::Create)?;
        let settings = self.current_settings().await?;
        let mut errs = Errors::new();
        let name = required(&mut errs, "name", input.name, NAME_CHARS);
        let company = match input.company_id {
            None => {
                errs.add("companyId", "required", "a subscription is a company's");
                None
            }
            Some(id) => match self.crm.store().get_as::<Company>(id).await?.filter(|c| !c.meta.is_deleted()) {
                Some(c) => Some(c),
                None => {
                    errs.add("companyId", "not_found", "no such company");
                    None
                }
            },
        };
        if let Some(cid) = input.contact_id {
            if self.crm.store().get_as::<crate::model::contact::Contact>(cid).await?.is_none() {
                errs.add("contactId", "not_found", "no such contact");
            }
        }
        let cur = currency(&mut errs, "currency", input.currency).unwrap_or(settings.currency);
        let lines = self.lines(&mut errs, input.lines.unwrap_or_default(), cur).await?;
        if lines.is_empty() && !errs.names("lines") {
            errs.add("lines", "required", "a subscription bills at least one line");
        }
        let frequency: BillingFrequency =
            parse_enum(&mut errs, "frequency", input.frequency, BillingFrequency::CHOICES)
                .unwrap_or(BillingFrequency::Monthly);
        let interval = input.interval.unwrap_or(1);
        let max = match frequency {
            BillingFrequency::Weekly => 52,
            BillingFrequency::Monthly => 36,
            BillingFrequency::Yearly => 10,
            _ => 1,
        };
        if !(1..=max).contains(&interval) {
            errs.add(
                "interval",
                "out_of_range",
                format!("a {frequency} subscription's interval lies between 1 and {max}"),
            );
        }
        let time_zone = input.time_zone.unwrap_or_else(|| "UTC".into());
        if time_zone.parse::<chrono_tz::Tz>().is_err() {
            errs.add("timeZone", "invalid_value", format!("'{time_zone}' is not an IANA time zone (Europe/Paris)"));
        }
        let start = input.start_date.unwrap_or_else(|| today_in(&time_zone, self.crm.now()));
        if input.end_date.is_some_and(|e| e < start) {
            errs.add("endDate", "out_of_range", "the end date is before the start date");
        }
        if input.remaining_cycles.is_some_and(|r| !(1..=10_000).contains(&r)) {
            errs.add("remainingCycles", "out_of_range", "between 1 and 10000 periods");
        }
        let terms = parse_enum(&mut errs, "paymentTerms", input.payment_terms, PaymentTerms::CHOICES)
            .unwrap_or(settings.payment_terms);
        if input.status.is_some() {
            errs.add("status", "invalid_value", "a new subscription is active; pause or cancel it with an update");
        }
        if input.auto_charge == Some(true) && input.auto_issue == Some(false) {
            errs.add("autoCharge", "invalid_value", "only issued invoices are charged: set autoIssue too");
        }
        errs.finish()?;
        let company = company.ok_or(Error::NotFound { entity: "company" })?;
        let total = super::money::totals(&lines).map(|t| t.total).unwrap_or_default();
        let now = self.crm.now();
        let s = Subscription {
            id: self.crm.new_id(now),
            name: name.unwrap_or_default(),
            company_id: company.id.as_uuid(),
            contact_id: input.contact_id,
            currency: cur,
            lines,
            total,
            frequency,
            interval,
            start_date: start,
            end_date: input.end_date,
            remaining_cycles: input.remaining_cycles,
            cycles_billed: 0,
            next_run: Some(start),
            time_zone,
            payment_terms: terms,
            auto_issue: input.auto_issue.unwrap_or(true),
            auto_charge: input.auto_charge.unwrap_or(false),
            status: SubscriptionStatus::Active,
            last_invoice_id: None,
            owner_id: company.owner_id.as_uuid(),
            team_id: company.team_id.map(|t| t.as_uuid()),
            created_at: now,
            updated_at: now,
            created_by: Some(actor.user_id.as_uuid()),
            version: 1,
        };
        let cs = Changeset {
            writes: vec![Write::Insert { kind: EntityKind::Subscription, row: to_row(&s)? }],
            audit: vec![],
        };
        self.commit(Some(actor), cs, "subscription.created", EntityKind::Subscription, s.id, json!({"name": s.name, "companyId": s.company_id, "total": s.total, "frequency": s.frequency, "startDate": s.start_date}))
            .await?;
        Ok(s)
    }

    /// Pauses, resumes or cancels a subscription, or changes its name, lines, end or
    /// remaining periods (the next invoices bill the new lines).
    pub async fn update_subscription(&self, actor: &Actor, id: Uuid, input: SubscriptionInput) -> Result<Subscription> {
        self.require(actor, Action::Update)?;
        let before = self.load_subscription(id).await?;
        self.authorize(actor, Action::Update, before.owner_id, before.team_id, "subscription")?;
        crate::service::write_path::check_version(input.version, before.version)?;
        if matches!(before.status, SubscriptionStatus::Cancelled | SubscriptionStatus::Finished) {
            return Err(conflict(format!("the subscription is {}", before.status), "status"));
        }
        let mut errs = Errors::new();
        let mut s = before.clone();
        for (set, field) in [
            (input.company_id.is_some(), "companyId"),
            (input.currency.is_some(), "currency"),
            (input.frequency.is_some(), "frequency"),
            (input.interval.is_some(), "interval"),
            (input.start_date.is_some(), "startDate"),
            (input.time_zone.is_some(), "timeZone"),
        ] {
            if set {
                errs.add(
                    field,
                    "invalid_value",
                    format!("{field} is fixed once a subscription exists; make a new one"),
                );
            }
        }
        if input.name.is_some() {
            if let Some(n) = required(&mut errs, "name", input.name, NAME_CHARS) {
                s.name = n;
            }
        }
        if let Some(l) = input.lines {
            s.lines = self.lines(&mut errs, l, s.currency).await?;
            if s.lines.is_empty() && !errs.names("lines") {
                errs.add("lines", "required", "a subscription bills at least one line");
            }
            s.total = super::money::totals(&s.lines).map(|t| t.total).unwrap_or_default();
        }
        if let Some(e) = input.end_date {
            if e < s.start_date {
                errs.add("endDate", "out_of_range", "the end date is before the start date");
            }
            s.end_date = Some(e);
        }
        if let Some(r) = input.remaining_cycles {
            if !(1..=10_000).contains(&r) {
                errs.add("remainingCycles", "out_of_range", "between 1 and 10000 periods");
            }
            s.remaining_cycles = Some(r);
        }
        if let Some(t) = parse_enum(&mut errs, "paymentTerms", input.payment_terms, PaymentTerms::CHOICES) {
            s.payment_terms = t;
        }
        if let Some(a) = input.auto_issue {
            s.auto_issue = a;
        }
        if let Some(a) = input.auto_charge {
            s.auto_charge = a;
        }
        if s.auto_charge && !s.auto_issue {
            errs.add("autoCharge", "invalid_value", "only issued invoices are charged: set autoIssue too");
        }
        let today = today_in(&s.time_zone, self.crm.now());
        match parse_enum::<SubscriptionStatus>(&mut errs, "status", input.status, SubscriptionStatus::CHOICES) {
            Some(SubscriptionStatus::Finished) => {
                errs.add("status", "invalid_value", "a subscription finishes by itself")
            }
            Some(SubscriptionStatus::Active) if before.status == SubscriptionStatus::Paused => {
                // Resuming skips the periods that began while paused.
                s.status = SubscriptionStatus::Active;
                if s.next_run.is_some_and(|n| n < today) {
                    s.next_run = (0..100_000)
                        .map_while(|k| period_start(s.frequency, s.interval, s.start_date, k))
                        .find(|d| *d >= today);
                }
            }
            Some(st) => s.status = st,
            None => {}
        }
        errs.finish()?;
        s.updated_at = self.crm.now();
        s.version = before.version + 1;
        let cs = Changeset {
            writes: vec![Write::Update {
                kind: EntityKind::Subscription,
                row: to_row(&s)?,
                expected_version: before.version,
            }],
            audit: vec![],
        };
        self.commit(
            Some(actor),
            cs,
            "subscription.updated",
            EntityKind::Subscription,
            id,
            json!({"status": s.status, "total": s.total, "nextRun": s.next_run}),
        )
        .await?;
        Ok(s)
    }

    /// [`BillingService::run_subscriptions`] now, for a manager or admin.
    pub async fn run_subscriptions_as(&self, actor: &Actor) -> Result<RecurringReport> {
        self.require(actor, Action::Update)?;
        self.run_subscriptions().await
    }

    /// Invoices every period that has begun, once: the scheduler's step, run every
    /// minute by `crm-server serve` and `worker` (and safe to run anywhere at once).
    pub async fn run_subscriptions(&self) -> Result<RecurringReport> {
        let k = EntityKind::Subscription;
        let now = self.crm.now();
        // The furthest-ahead time zone is at most 14 hours ahead of UTC.
        let horizon = (now + chrono::Duration::hours(14)).date_naive();
        let mut report = RecurringReport::default();
        let mut after: Option<Uuid> = None;
        loop {
            let mut all = vec![
                Filter::Cmp(Cmp {
                    column: k.require_column("status")?,
                    pred: Predicate::Eq(Value::Text(SubscriptionStatus::Active.as_str().into())),
                }),
                Filter::Cmp(Cmp { column: k.require_column("next_run")?, pred: Predicate::Lte(Value::Date(horizon)) }),
            ];
            if let Some(a) = after {
                all.push(Filter::Cmp(Cmp { column: k.require_column("id")?, pred: Predicate::Gt(Value::Uuid(a)) }));
            }
            let q = StoreQuery {
                filter: Some(Filter::And(all)),
                sort: vec![SortKey { column: k.require_column("id")?, direction: Direction::Asc }],
                limit: 200,
                include_deleted: false,
            };
            let due: Vec<Subscription> = self.crm.store().list_as(&q).await?;
            let Some(last) = due.last().map(|s| s.id) else { break };
            for s in due {
                self.bill_due_periods(s.id, &mut report).await?;
            }
            after = Some(last);
        }
        Ok(report)
    }

    /// Bills every period of one subscription that has begun in its time zone.
    async fn bill_due_periods(&self, id: Uuid, report: &mut RecurringReport) -> Result<()> {
        let mut attempt = 0;
        loop {
            let s = self.load_subscription(id).await?;
            let today = today_in(&s.time_zone, self.crm.now());
            let Some(start) = s.next_run.filter(|n| *n <= today && s.status == SubscriptionStatus::Active) else {
                return Ok(());
            };
            match self.bill_period(&s, start).await {
                Ok(finished) => {
                    attempt = 0;
                    report.invoices += 1;
                    if finished {
                        report.finished += 1;
                    }
                }
                // Another worker billed it (the period's unique key, or the
                // subscription's version), or took the number first: look again.
                Err(e) if is_retryable(&e) && attempt < super::ATTEMPTS => {
                    attempt += 1;
                    super::backoff(self.crm, attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One period's invoice and the subscription's advance, in one write; answers
    /// whether that was the last period.
    async fn bill_period(&self, s: &Subscription, start: NaiveDate) -> Result<bool> {
        // The period's index: its count since the start, whatever was skipped.
        let k = (0..100_000)
            .find(|k| period_start(s.frequency, s.interval, s.start_date, *k).is_none_or(|d| d >= start))
            .unwrap_or(s.cycles_billed);
        let next = period_start(s.frequency, s.interval, s.start_date, k + 1);
        let end = next.and_then(|n| n.pred_opt()).unwrap_or(start);
        let now = self.crm.now();
        let customer = self.current_customer(Some(s.company_id), s.contact_id).await?;
        let settings = self.current_settings().await?;
        let totals =
            super::money::totals(&s.lines).ok_or_else(|| Error::internal_msg("a subscription's total overflows"))?;
        let mut inv = Invoice {
            id: self.crm.new_id(now),
            doc_type: DocumentType::Invoice,
            series: "INV".into(),
            number: None,
            status: InvoiceStatus::Draft,
            company_id: Some(s.company_id),
            contact_id: s.contact_id,
            deal_id: None,
            quote_id: None,
            credited_invoice_id: None,
            subscription_id: Some(s.id),
            currency: s.currency,
            lines: s.lines.clone(),
            taxes: totals.taxes,
            subtotal: totals.subtotal,
            discount_total: totals.discount_total,
            tax_total: totals.tax_total,
            total: totals.total,
            amount_paid: 0,
            amount_credited: 0,
            balance: totals.total,
            issue_date: None,
            due_date: None,
            payment_terms: s.payment_terms,
            payment_instructions: settings.payment_instructions.clone(),
            notes: Some(format!("{} — {start} to {end}", s.name)),
            period_start: Some(start),
            period_end: Some(end),
            customer,
            seller: settings.seller.clone(),
            issued_at: None,
            sent_at: None,
            paid_at: None,
            voided_at: None,
            reason: None,
            charge_state: None,
            charge_attempts: 0,
            charge_error: None,
            owner_id: s.owner_id,
            team_id: s.team_id,
            created_at: now,
            updated_at: now,
            created_by: None,
            version: 1,
        };
        let mut writes = Vec::new();
        if s.auto_issue {
            let (number, seq) = self.next_number(&inv.series, start.year()).await?;
            writes.push(seq);
            inv.number = Some(number);
            inv.status = InvoiceStatus::Issued;
            inv.issue_date = Some(start);
            inv.due_date = Some(s.payment_terms.due_date(start));
            inv.issued_at = Some(now);
            if s.auto_charge && inv.total > 0 {
                inv.charge_state = Some(ChargeState::Due);
            }
        }
        let mut after = s.clone();
        after.cycles_billed = s.cycles_billed + 1;
        after.remaining_cycles = s.remaining_cycles.map(|r| r - 1);
        after.next_run = next;
        after.last_invoice_id = Some(inv.id);
        let finished = after.remaining_cycles.is_some_and(|r| r <= 0)
            || next.is_none()
            || next.zip(s.end_date).is_some_and(|(n, e)| n > e);
        if finished {
            after.status = SubscriptionStatus::Finished;
            after.next_run = None;
        }
        after.updated_at = now;
        after.version = s.version + 1;
        writes.push(Write::Insert { kind: EntityKind::Invoice, row: self.invoice_row(&inv)? });
        writes.push(Write::Update {
            kind: EntityKind::Subscription,
            row: to_row(&after)?,
            expected_version: s.version,
        });
        let action = if s.auto_issue { "invoice.issued" } else { "invoice.created" };
        let changes = json!({"number": inv.number, "total": inv.total, "currency": inv.currency, "subscriptionId": s.id, "periodStart": start, "periodEnd": end});
        self.commit(None, Changeset { writes, audit: vec![] }, action, EntityKind::Invoice, inv.id, changes).await?;
        Ok(finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn periods_keep_the_day_of_month_and_clamp_to_its_end() {
        let start = d(2026, 1, 31);
        let monthly: Vec<Option<NaiveDate>> =
            (0..4).map(|k| period_start(BillingFrequency::Monthly, 1, start, k)).collect();
        assert_eq!(
            monthly,
            vec![Some(d(2026, 1, 31)), Some(d(2026, 2, 28)), Some(d(2026, 3, 31)), Some(d(2026, 4, 30))]
        );
        assert_eq!(period_start(BillingFrequency::Quarterly, 1, start, 1), Some(d(2026, 4, 30)));
        assert_eq!(period_start(BillingFrequency::Yearly, 1, d(2024, 2, 29), 1), Some(d(2025, 2, 28)));
        assert_eq!(period_start(BillingFrequency::Yearly, 1, d(2024, 2, 29), 4), Some(d(2028, 2, 29)));
        assert_eq!(period_start(BillingFrequency::Weekly, 2, start, 1), Some(d(2026, 2, 14)));
        assert_eq!(period_start(BillingFrequency::Semiannual, 1, start, 1), Some(d(2026, 7, 31)));
        assert_eq!(period_start(BillingFrequency::Monthly, 3, start, 2), Some(d(2026, 7, 31)));
    }
}
