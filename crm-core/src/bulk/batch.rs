//! Batches: up to [`MAX_BATCH_ITEMS`] creates, updates, upserts and deletes of one kind
//! of record in one call, each item validated and authorized as the single call would
//! be. [`BatchMode::Atomic`] applies every item or none (one write); [`BatchMode::PerItem`]
//! applies each item on its own, in order, and reports each.
//!
//! An upsert matches a live record by its natural key (a contact's `email`, a company's
//! `domain`) and updates the fields it names, or creates the record when none matches.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::error::{Error, Errors, Result};
use crate::model::Record;
use crate::policy::Actor;
use crate::schema::Value;
use crate::service::{CompanyPatch, ContactPatch, Crm, DealPatch, NewCompany, NewContact, NewDeal, NewTask, TaskPatch};
use crate::{Company, CompanyId, Contact, ContactId, Deal, DealId, Domain, Email, Task, TaskId};

/// The most items one batch holds.
pub const MAX_BATCH_ITEMS: usize = 100;

/// How a batch is applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum BatchMode {
    /// Every item or none: one bad item refuses the batch, naming it (`items.3.email`).
    #[default]
    Atomic,
    /// Each item on its own, in order; the answer says what became of each.
    PerItem,
}

/// What an item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum BatchOp {
    /// Create `record`.
    Create,
    /// Change the fields `record` names on the record `id`.
    Update,
    /// Update the live record whose natural key (`email`, `domain`) `record` holds, or
    /// create it.
    Upsert,
    /// Soft-delete the record `id`.
    Delete,
}

/// One item of a batch.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchItem {
    /// What to do.
    pub op: BatchOp,
    /// The record's id (update, delete).
    #[serde(default)]
    pub id: Option<Uuid>,
    /// The fields, as the single create or update takes them (create, update, upsert).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub record: Option<Json>,
    /// The version the change is based on (update, delete); a stale one is a conflict.
    #[serde(default)]
    pub version: Option<i64>,
}

/// A batch.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchRequest {
    /// `atomic` (the default) or `perItem`.
    #[serde(default)]
    pub mode: BatchMode,
    /// The items, at most 100.
    pub items: Vec<BatchItem>,
}

/// What became of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ItemResult {
    /// A record was created.
    Created,
    /// The record was changed.
    Updated,
    /// The record already held these values: nothing was written.
    Unchanged,
    /// The record was deleted.
    Deleted,
    /// The item failed (`error` says why); in an atomic batch nothing was applied.
    Failed,
}

impl ItemResult {
    /// The HTTP status a single call would have answered.
    pub fn status(self) -> u16 {
        match self {
            ItemResult::Created => 201,
            ItemResult::Deleted => 204,
            ItemResult::Failed => 422,
            ItemResult::Updated | ItemResult::Unchanged => 200,
        }
    }
}

/// The outcome of one item.
#[derive(Debug)]
pub struct ItemOutcome<R> {
    /// The item's position in the batch.
    pub index: usize,
    /// What it asked.
    pub op: BatchOp,
    /// What became of it.
    pub result: ItemResult,
    /// The record as it is now (not for a failed item).
    pub record: Option<R>,
    /// Why it failed.
    pub error: Option<Error>,
}

/// A kind of record batches work on: its single calls and natural key.
#[async_trait]
pub trait Batchable: Record + Serialize + Send + Sync {
    /// The create input.
    type New: DeserializeOwned + Send;
    /// The update input.
    type Patch: DeserializeOwned + Send;
    /// The API name and storage column of the natural key an upsert matches, if any.
    const KEY: Option<(&'static str, &'static str)>;
    /// The single create.
    async fn create(crm: &Crm, actor: &Actor, input: Self::New) -> Result<Self>;
    /// The single update (`version` checked when given).
    async fn update(crm: &Crm, actor: &Actor, id: Uuid, patch: Self::Patch, version: Option<i64>) -> Result<Self>;
    /// The single soft delete.
    async fn delete(crm: &Crm, actor: &Actor, id: Uuid, version: Option<i64>) -> Result<Self>;
    /// The natural key as stored, from a client's spelling (`None`: not a valid key).
    fn key_of(raw: &str) -> Option<String>;
}

macro_rules! batchable {
    ($rec:ty, $id:ident, $svc:ident, $new:ty, $patch:ty, $key:expr, $norm:expr) => {
        #[async_trait]
        impl Batchable for $rec {
            type New = $new;
            type Patch = $patch;
            const KEY: Option<(&'static str, &'static str)> = $key;
            async fn create(crm: &Crm, actor: &Actor, input: $new) -> Result<Self> {
                crm.$svc().create(actor, input).await
            }
            async fn update(
                crm: &Crm,
                actor: &Actor,
                id: Uuid,
                mut patch: $patch,
                version: Option<i64>,
            ) -> Result<Self> {
                patch.version = patch.version.or(version);
                crm.$svc().update(actor, $id(id), patch).await
            }
            async fn delete(crm: &Crm, actor: &Actor, id: Uuid, version: Option<i64>) -> Result<Self> {
                crm.$svc().delete(actor, $id(id), version).await
            }
            fn key_of(raw: &str) -> Option<String> {
                let norm: fn(&str) -> Option<String> = $norm;
                norm(raw)
            }
        }
    };
}

batchable!(Contact, ContactId, contacts, NewContact, ContactPatch, Some(("email", "email")), |s| {
    Email::parse(s).ok().map(|e| e.as_str().to_string())
});
batchable!(Company, CompanyId, companies, NewCompany, CompanyPatch, Some(("domain", "domain")), |s| {
    Domain::parse(s).ok().map(|d| d.as_str().to_string())
});
batchable!(Deal, DealId, deals, NewDeal, DealPatch, None, |_| None);
batchable!(Task, TaskId, tasks, NewTask, TaskPatch, None, |_| None);

/// An item checked for shape: what the op needs is there.
enum Checked<N, P> {
    Create(N),
    Update(Uuid, P),
    Upsert(String, N, P),
    Delete(Uuid, Option<i64>),
}

impl Crm {
    /// Runs a batch of `R` records for the actor. In atomic mode a failed item refuses
    /// the whole batch with a validation error naming each failed item's fields
    /// (`items.3.record.email`; other failures as an error on `items.3`) and nothing is
    /// written; otherwise the answer holds every item's outcome, in order.
    pub async fn batch<R: Batchable>(&self, actor: &Actor, request: BatchRequest) -> Result<Vec<ItemOutcome<R>>> {
        let n = request.items.len();
        if n == 0 {
            return Err(Error::invalid("items", "required", "a batch holds at least one item"));
        }
        if n > MAX_BATCH_ITEMS {
            return Err(Error::invalid("items", "too_long", format!("a batch holds at most {MAX_BATCH_ITEMS} items")));
        }
        match request.mode {
            BatchMode::PerItem => {
                let mut out = Vec::with_capacity(n);
                for (index, item) in request.items.into_iter().enumerate() {
                    out.push(self.batch_item::<R>(actor, index, item).await);
                }
                Ok(out)
            }
            BatchMode::Atomic => {
                let items = request.items;
                let (outcomes, staged) = self
                    .staged(async {
                        let mut out = Vec::with_capacity(n);
                        for (index, item) in items.into_iter().enumerate() {
                            out.push(self.batch_item::<R>(actor, index, item).await);
                        }
                        out
                    })
                    .await;
                let mut outcomes = outcomes;
                let mut errs = Errors::new();
                let mut seen_ids: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
                let mut seen_keys: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
                for o in &mut outcomes {
                    let prefix = format!("items.{}", o.index);
                    if let Some(e) = o.error.take() {
                        absorb_item(&mut errs, &prefix, e);
                        continue;
                    }
                    let Some(r) = &o.record else { continue };
                    // Two items on one record would each be computed from the record as it
                    // was: refuse the later one.
                    if let Some(first) = seen_ids.insert(r.id(), o.index) {
                        errs.add(format!("{prefix}.id"), "duplicate", format!("item {first} works on the same record"));
                        continue;
                    }
                    let Some((field, _)) = R::KEY else { continue };
                    let Some(key) = natural_key(r, field) else { continue };
                    if let Some(first) = seen_keys.insert(key.clone(), o.index) {
                        errs.add(
                            format!("{prefix}.record.{field}"),
                            "duplicate",
                            format!("the same {field} as item {first}"),
                        );
                    } else if o.result == ItemResult::Created && self.live_by_key::<R>(&key).await?.is_some() {
                        // The store would refuse the whole write; say which item.
                        errs.add(
                            format!("{prefix}.record.{field}"),
                            "conflict",
                            format!("another {} has this {field}", R::KIND.name()),
                        );
                    }
                }
                errs.finish()?;
                if !staged.is_empty() {
                    self.store().apply(staged).await?;
                }
                Ok(outcomes)
            }
        }
    }

    /// One item, run through the single calls.
    async fn batch_item<R: Batchable>(&self, actor: &Actor, index: usize, item: BatchItem) -> ItemOutcome<R> {
        let op = item.op;
        let run = async {
            let checked = check::<R>(item)?;
            let done = match checked {
                Checked::Create(input) => R::create(self, actor, input).await.map(|r| (ItemResult::Created, r)),
                Checked::Update(id, patch) => self.batch_update::<R>(actor, id, patch).await,
                Checked::Upsert(key, input, patch) => match self.live_by_key::<R>(&key).await? {
                    Some(id) => self.batch_update::<R>(actor, id, patch).await,
                    None => R::create(self, actor, input).await.map(|r| (ItemResult::Created, r)),
                },
                Checked::Delete(id, version) => {
                    R::delete(self, actor, id, version).await.map(|r| (ItemResult::Deleted, r))
                }
            };
            // The single call names the record's fields; the item holds them in `record`.
            done.map_err(under_record)
        };
        match run.await {
            Ok((result, record)) => ItemOutcome { index, op, result, record: Some(record), error: None },
            Err(e) => ItemOutcome { index, op, result: ItemResult::Failed, record: None, error: Some(e) },
        }
    }

    async fn batch_update<R: Batchable>(&self, actor: &Actor, id: Uuid, patch: R::Patch) -> Result<(ItemResult, R)> {
        let before = self.load::<R>(id).await?.map(|r| r.meta().version);
        let after = R::update(self, actor, id, patch, None).await?;
        let result = if before == Some(after.meta().version) { ItemResult::Unchanged } else { ItemResult::Updated };
        Ok((result, after))
    }

    /// The live record whose natural key is `key` (as stored), if any.
    async fn live_by_key<R: Batchable>(&self, key: &str) -> Result<Option<Uuid>> {
        let Some((_, column)) = R::KEY else { return Ok(None) };
        let found = self.find_all_by::<R>(column, Value::Text(key.to_string()), 20).await?;
        Ok(found.into_iter().find(|r| !r.meta().is_deleted()).map(|r| r.id()))
    }
}

/// A record's natural key as an upsert compares it (lower case).
fn natural_key<R: Serialize>(r: &R, field: &str) -> Option<String> {
    let v = serde_json::to_value(r).ok()?;
    v.get(field)?.as_str().map(str::to_lowercase)
}

/// An item's error under its prefix (`items.3`).
fn absorb_item(errs: &mut Errors, prefix: &str, e: Error) {
    match e {
        Error::Validation(_) | Error::Malformed(_) => errs.absorb_under(prefix, e),
        other => errs.add(prefix.to_string(), other.code(), other.to_string()),
    }
}

/// A record's field errors as the item's (`email` becomes `record.email`); other errors
/// stay as they are.
fn under_record(e: Error) -> Error {
    match e {
        Error::Validation(_) | Error::Malformed(_) => {
            let mut errs = Errors::new();
            errs.absorb_under("record", e);
            errs.finish().err().unwrap_or_else(|| Error::internal_msg("an empty error"))
        }
        other => other,
    }
}

fn check<R: Batchable>(item: BatchItem) -> Result<Checked<R::New, R::Patch>> {
    let needs = |what: &str| Error::invalid(what, "required", format!("{what} is required for this op"));
    let record = |r: Option<Json>| -> Result<Json> {
        match r {
            Some(Json::Object(m)) => Ok(Json::Object(m)),
            Some(_) => Err(Error::invalid("record", "invalid_type", "record is an object of the record's fields")),
            None => Err(needs("record")),
        }
    };
    match item.op {
        BatchOp::Create => {
            let r = record(item.record)?;
            Ok(Checked::Create(crate::decode::from_json(r).map_err(under_record)?))
        }
        BatchOp::Update => {
            let id = item.id.ok_or_else(|| needs("id"))?;
            let mut r = record(item.record)?;
            if let (Some(v), Json::Object(m)) = (item.version, &mut r) {
                m.entry("version").or_insert(Json::from(v));
            }
            Ok(Checked::Update(id, crate::decode::from_json(r).map_err(under_record)?))
        }
        BatchOp::Upsert => {
            let Some((field, _)) = R::KEY else {
                return Err(Error::invalid(
                    "op",
                    "invalid_value",
                    format!("{} have no natural key to upsert by; use create or update", R::KIND.table()),
                ));
            };
            let r = record(item.record)?;
            let raw = r.get(field).and_then(Json::as_str).map(str::trim).unwrap_or_default();
            if raw.is_empty() {
                return Err(Error::invalid(
                    format!("record.{field}"),
                    "required",
                    format!("an upsert matches by {field}: it is required"),
                ));
            }
            let Some(key) = R::key_of(raw) else {
                return Err(Error::invalid(
                    format!("record.{field}"),
                    "invalid_format",
                    format!("'{raw}' is not a valid {field}"),
                ));
            };
            let mut for_patch = r.clone();
            if let (Some(v), Json::Object(m)) = (item.version, &mut for_patch) {
                m.entry("version").or_insert(Json::from(v));
            }
            let input = crate::decode::from_json(r).map_err(under_record)?;
            let patch = crate::decode::from_json(for_patch).map_err(under_record)?;
            Ok(Checked::Upsert(key, input, patch))
        }
        BatchOp::Delete => Ok(Checked::Delete(item.id.ok_or_else(|| needs("id"))?, item.version)),
    }
}
