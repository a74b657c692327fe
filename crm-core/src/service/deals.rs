//! The deals service: pipeline stages, probabilities, line items and stage history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::input::{self, nullable};
use super::write_path::check_version;
use super::Crm;
use crate::date_or_time::DateOrTime;
use crate::error::{Errors, Result};
use crate::ids::{CompanyId, ContactId, DealId, UserId};
use crate::model::company::Company;
use crate::model::contact::Contact;
use crate::model::deal::{Deal, DealStage, DealStageChange, LineItem};
use crate::model::RecordMeta;
use crate::policy::{Action, Actor, Resource};
use crate::query::{Cmp, Direction, Filter, ListQuery, Page, Predicate, SortKey};
use crate::schema::{to_row, EntityKind, Value, NAME_CHARS};
use crate::store::StoreExt;
use crate::store::{Changeset, Write};
use crate::values::{Currency, Percent};

/// A line item as given.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewLineItem {
    /// The catalogue product it is (`/api/products`); it must exist.
    #[serde(default)]
    pub product_id: Option<uuid::Uuid>,
    /// What is sold.
    pub name: String,
    /// How many (default 1).
    #[serde(default)]
    pub quantity: Option<i64>,
    /// Price of one, in minor units.
    pub unit_price: i64,
    /// Discount, percent.
    #[serde(default)]
    pub discount_percent: Percent,
    /// Tax, percent.
    #[serde(default)]
    pub tax_percent: Percent,
}

/// Input of [`DealService::create`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDeal {
    /// Name (required).
    pub name: String,
    /// What is being sold, in free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Value in minor units; the sum of the line items when absent and there are some.
    #[serde(default)]
    pub amount: Option<i64>,
    /// Currency (default: the configured one).
    #[serde(default)]
    pub currency: Option<String>,
    /// Stage (default `prospecting`).
    #[serde(default)]
    pub stage: Option<DealStage>,
    /// Win probability in percent (default: the stage's).
    #[serde(default)]
    pub probability: Option<i64>,
    /// Expected close date (`YYYY-MM-DD`; a time is taken as its day in the caller's
    /// time zone).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<NaiveDate>))]
    pub expected_close_date: Option<DateOrTime>,
    /// Contacts involved, the primary first.
    #[serde(default)]
    pub contact_ids: Vec<ContactId>,
    /// The buying company.
    #[serde(default)]
    pub company_id: Option<CompanyId>,
    /// The salesperson; absent: the caller.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// Line items.
    #[serde(default)]
    pub products: Vec<NewLineItem>,
    /// Free-text notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// Why it was lost.
    #[serde(default)]
    pub lost_reason: Option<String>,
}

/// Input of [`DealService::update`]: absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DealPatch {
    /// New name; absent: unchanged.
    #[serde(default)]
    pub name: Option<String>,
    /// New description; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// New amount in minor units; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub amount: Option<Option<i64>>,
    /// New ISO 4217 currency; absent: unchanged.
    #[serde(default)]
    pub currency: Option<String>,
    /// Stage; a change appends to the history and resets the probability to the stage's
    /// unless `probability` is given too.
    #[serde(default)]
    pub stage: Option<DealStage>,
    /// New win probability in percent (0–100); absent: unchanged.
    #[serde(default)]
    pub probability: Option<i64>,
    /// Expected close date (`YYYY-MM-DD`, or a time: its day in the caller's time zone);
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<NaiveDate>))]
    pub expected_close_date: Option<Option<DateOrTime>>,
    /// Contacts (replace).
    #[serde(default)]
    pub contact_ids: Option<Vec<ContactId>>,
    /// New company; `null` unlinks it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub company_id: Option<Option<CompanyId>>,
    /// New owner (the deal moves to their team); absent: unchanged.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// Line items (replace); the amount follows them unless `amount` is given too.
    #[serde(default)]
    pub products: Option<Vec<NewLineItem>>,
    /// New notes; `null` clears them, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub notes: Option<Option<String>>,
    /// Why it was lost; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub lost_reason: Option<Option<String>>,
    /// The version the change is based on.
    #[serde(default)]
    pub version: Option<i64>,
}

/// A pipeline stage with its default probability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PipelineStage {
    /// The stage to move to (a closed stage sets `closedAt`).
    pub stage: DealStage,
    /// Its default probability, percent.
    pub probability: i64,
    /// Is it a closing stage?
    pub closed: bool,
}

fn line_items(errs: &mut Errors, items: Vec<NewLineItem>) -> Vec<LineItem> {
    if items.len() > 200 {
        errs.add("products", "too_long", "at most 200 line items");
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, it)| {
            let field = |f: &str| format!("products.{i}.{f}");
            let name = input::required(errs, &field("name"), &it.name, 200);
            let quantity = it.quantity.unwrap_or(1);
            if !(1..=1_000_000).contains(&quantity) {
                errs.add(field("quantity"), "out_of_range", "quantity is from 1 to 1,000,000");
            }
            if it.unit_price < 0 {
                errs.add(field("unitPrice"), "out_of_range", "unit price may not be negative");
            }
            let mut li = LineItem {
                product_id: it.product_id,
                name,
                quantity,
                unit_price: it.unit_price,
                discount_percent: it.discount_percent,
                tax_percent: it.tax_percent,
                total: 0,
            };
            match li.compute_total() {
                Some(t) => li.total = t,
                None => errs.add(field("unitPrice"), "out_of_range", "the line total is too large"),
            }
            li
        })
        .collect()
}

/// Line items naming a catalogue product name one that exists.
async fn check_products(crm: &Crm, items: &[LineItem], errs: &mut Errors) -> Result<()> {
    for (i, it) in items.iter().enumerate() {
        if let Some(pid) = it.product_id {
            if crm.store().get_as::<crate::model::billing::Product>(pid).await?.is_none() {
                errs.add(format!("products.{i}.productId"), "not_found", "no such product");
            }
        }
    }
    Ok(())
}

fn sum(items: &[LineItem]) -> Option<i64> {
    items.iter().try_fold(0i64, |acc, li| acc.checked_add(li.total))
}

fn probability(errs: &mut Errors, p: i64) -> i64 {
    if !(0..=100).contains(&p) {
        errs.add("probability", "out_of_range", "probability is a percentage from 0 to 100");
    }
    p
}

fn amount(errs: &mut Errors, a: Option<i64>) -> Option<i64> {
    if a.is_some_and(|a| a < 0) {
        errs.add("amount", "out_of_range", "amount may not be negative");
    }
    a
}

/// Deals: sales opportunities.
#[derive(Debug, Clone, Copy)]
pub struct DealService<'a> {
    pub(super) crm: &'a Crm,
}

impl DealService<'_> {
    /// The pipeline: stages in order with their default probabilities.
    pub fn pipeline(&self) -> Vec<PipelineStage> {
        DealStage::ALL
            .iter()
            .map(|s| PipelineStage { stage: *s, probability: s.probability(), closed: s.is_closed() })
            .collect()
    }

    async fn check_contacts(&self, actor: &Actor, ids: &[ContactId], errs: &mut Errors) -> Result<Vec<ContactId>> {
        let mut out: Vec<ContactId> = Vec::new();
        if ids.len() > 100 {
            errs.add("contactIds", "too_long", "at most 100 contacts");
        }
        for (i, id) in ids.iter().enumerate() {
            if !out.contains(id) {
                self.crm.check_ref::<Contact>(actor, id.as_uuid(), &format!("contactIds.{i}"), errs).await?;
                out.push(*id);
            }
        }
        Ok(out)
    }

    fn history_entry(
        &self,
        actor: &Actor,
        deal: DealId,
        from: Option<DealStage>,
        to: DealStage,
        at: DateTime<Utc>,
    ) -> Result<Write> {
        let change = DealStageChange {
            id: self.crm.new_id(at),
            deal_id: deal,
            from_stage: from,
            to_stage: to,
            changed_at: at,
            changed_by: Some(actor.user_id),
        };
        Ok(Write::Insert { kind: EntityKind::DealStageChange, row: to_row(&change)? })
    }

    /// Creates a deal; its history starts with its first stage.
    pub async fn create(&self, actor: &Actor, input: NewDeal) -> Result<Deal> {
        let crm = self.crm;
        crm.policy().require(actor, Resource::Deals, Action::Create)?;
        let mut errs = Errors::new();
        let name = input::required(&mut errs, "name", &input.name, NAME_CHARS);
        let description = input::text(&mut errs, "description", input.description, 10_000, true);
        let notes = input::text(&mut errs, "notes", input.notes, 10_000, true);
        let lost_reason = input::text(&mut errs, "lostReason", input.lost_reason, 500, false);
        let currency = match input.currency {
            Some(c) => errs.take("currency", Currency::parse(&c)).unwrap_or_default(),
            None => crm.config().default_currency,
        };
        let products = line_items(&mut errs, input.products);
        check_products(crm, &products, &mut errs).await?;
        let amount =
            amount(&mut errs, input.amount.or_else(|| (!products.is_empty()).then(|| sum(&products)).flatten()));
        let stage = input.stage.unwrap_or(DealStage::Prospecting);
        let probability = probability(&mut errs, input.probability.unwrap_or(stage.probability()));
        let contact_ids = self.check_contacts(actor, &input.contact_ids, &mut errs).await?;
        if let Some(c) = input.company_id {
            crm.check_ref::<Company>(actor, c.as_uuid(), "companyId", &mut errs).await?;
        }
        let (owner_id, team_id) =
            crm.resolve_owner(actor, Resource::Deals, Action::Create, input.owner_id, &mut errs).await?;
        errs.finish()?;
        let expected_close_date = crm.day(actor, input.expected_close_date).await?;
        let now = crm.now();
        let deal = Deal {
            id: DealId(crm.new_id(now)),
            name,
            description,
            amount,
            currency,
            stage,
            probability,
            expected_close_date,
            closed_at: stage.is_closed().then_some(now),
            stage_changed_at: now,
            contact_ids,
            company_id: input.company_id,
            owner_id,
            team_id,
            products,
            notes,
            lost_reason,
            meta: RecordMeta::new(now, Some(actor.user_id)),
        };
        let extra = Changeset { writes: vec![self.history_entry(actor, deal.id, None, stage, now)?], audit: vec![] };
        crm.commit_insert(actor, &deal, extra).await?;
        Ok(deal)
    }

    /// A live deal the actor may read.
    pub async fn get(&self, actor: &Actor, id: DealId) -> Result<Deal> {
        self.crm.authorized(actor, id.as_uuid(), Action::Read).await
    }

    /// A page of deals the actor may read.
    pub async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Page<Deal>> {
        self.crm.list_records(actor, query).await
    }

    /// Changes the fields the patch names. A stage change appends to the history, emits
    /// `deal.stage_changed`, sets the stage's probability (unless one is given) and sets
    /// or clears `closedAt`.
    pub async fn update(&self, actor: &Actor, id: DealId, patch: DealPatch) -> Result<Deal> {
        let crm = self.crm;
        let before: Deal = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        check_version(patch.version, before.meta.version)?;
        let mut errs = Errors::new();
        let mut d = before.clone();
        if let Some(n) = patch.name {
            d.name = input::required(&mut errs, "name", &n, NAME_CHARS);
        }
        if let Some(x) = patch.description {
            d.description = input::text(&mut errs, "description", x, 10_000, true);
        }
        if let Some(x) = patch.notes {
            d.notes = input::text(&mut errs, "notes", x, 10_000, true);
        }
        if let Some(x) = patch.lost_reason {
            d.lost_reason = input::text(&mut errs, "lostReason", x, 500, false);
        }
        if let Some(c) = patch.currency {
            d.currency = errs.take("currency", Currency::parse(&c)).unwrap_or(d.currency);
        }
        if let Some(x) = patch.expected_close_date {
            d.expected_close_date = crm.day(actor, x).await?;
        }
        if let Some(items) = patch.products {
            d.products = line_items(&mut errs, items);
            check_products(crm, &d.products, &mut errs).await?;
            if patch.amount.is_none() {
                d.amount = sum(&d.products);
            }
        }
        if let Some(a) = patch.amount {
            d.amount = amount(&mut errs, a);
        }
        if let Some(ids) = patch.contact_ids {
            d.contact_ids = self.check_contacts(actor, &ids, &mut errs).await?;
        }
        if let Some(company) = patch.company_id {
            if let Some(cid) = company.filter(|c| Some(*c) != before.company_id) {
                crm.check_ref::<Company>(actor, cid.as_uuid(), "companyId", &mut errs).await?;
            }
            d.company_id = company;
        }
        let mut extra = Changeset::default();
        if let Some(stage) = patch.stage.filter(|s| *s != before.stage) {
            // A deal's history is strictly ordered in time: two changes within one
            // millisecond (or after the clock stepped back) are a millisecond apart.
            let now = crm.now().max(before.stage_changed_at + chrono::Duration::milliseconds(1));
            d.stage = stage;
            d.stage_changed_at = now;
            d.probability = stage.probability();
            d.closed_at = if stage.is_closed() { Some(now) } else { None };
            extra.writes.push(self.history_entry(actor, id, Some(before.stage), stage, now)?);
            extra.writes.push(crm.event(
                "deal.stage_changed".into(),
                EntityKind::Deal,
                id.as_uuid(),
                json!({"id": id, "actorId": actor.user_id, "from": before.stage, "to": stage, "amount": d.amount, "currency": d.currency}),
            )?);
        }
        if let Some(p) = patch.probability {
            d.probability = probability(&mut errs, p);
        }
        if let Some(owner) = patch.owner_id.filter(|o| *o != before.owner_id) {
            crm.authorized::<Deal>(actor, id.as_uuid(), Action::Assign).await?;
            let (o, t) = crm.resolve_owner(actor, Resource::Deals, Action::Assign, Some(owner), &mut errs).await?;
            d.owner_id = o;
            d.team_id = t;
        }
        errs.finish()?;
        crm.commit_update(actor, &before, d, "updated", extra).await
    }

    /// Moves a deal to a stage (a shorthand for an update with only `stage`).
    pub async fn move_to(&self, actor: &Actor, id: DealId, stage: DealStage) -> Result<Deal> {
        self.update(actor, id, DealPatch { stage: Some(stage), ..Default::default() }).await
    }

    /// The stage history of a deal the actor may read, oldest first.
    pub async fn history(&self, actor: &Actor, id: DealId) -> Result<Vec<DealStageChange>> {
        let crm = self.crm;
        let _deal: Deal = crm.authorized(actor, id.as_uuid(), Action::Read).await?;
        let kind = EntityKind::DealStageChange;
        let (Some(deal_col), Some(at_col)) = (kind.column("deal_id"), kind.column("changed_at")) else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        let mut query = crate::query::StoreQuery {
            filter: Some(Filter::Cmp(Cmp { column: deal_col, pred: Predicate::Eq(Value::Uuid(id.as_uuid())) })),
            sort: vec![
                SortKey { column: at_col, direction: Direction::Asc },
                crate::query::id_key(kind, Direction::Asc),
            ],
            limit: 1000,
            include_deleted: false,
        };
        let base = query.filter.clone();
        loop {
            let rows = crm.store().list(kind, &query).await?;
            let n = rows.len();
            let page: Vec<DealStageChange> = rows.into_iter().map(crate::schema::from_row).collect::<Result<_>>()?;
            let Some(last) = page.last() else { break };
            let pos = vec![Value::Timestamp(last.changed_at), Value::Uuid(last.id)];
            query.filter = crate::query::and_opt([base.clone(), crate::query::keyset_filter(&query.sort, &pos)]);
            out.extend(page);
            if n < 1000 {
                break;
            }
        }
        Ok(out)
    }

    /// Soft-deletes a deal.
    pub async fn delete(&self, actor: &Actor, id: DealId, expected_version: Option<i64>) -> Result<Deal> {
        self.crm.soft_delete(actor, id.as_uuid(), expected_version).await
    }

    /// Restores a soft-deleted deal.
    pub async fn restore(&self, actor: &Actor, id: DealId) -> Result<Deal> {
        self.crm.restore_record(actor, id.as_uuid()).await
    }

    /// Removes a deal for good, with its stage history.
    pub async fn purge(&self, actor: &Actor, id: DealId) -> Result<()> {
        let cascade = vec![Write::Purge { kind: EntityKind::DealStageChange, column: "deal_id", id: id.as_uuid() }];
        self.crm.purge_record::<Deal>(actor, id.as_uuid(), cascade).await
    }
}
