//! Duplicate contacts and their merge.
//!
//! [`Crm::contact_duplicates`] finds the contacts that are likely the same person as one
//! contact: the same email once case, `+tags` and Gmail's dots are set aside, the same
//! phone number (stored in E.164), the same name (accents, case, punctuation and word
//! order set aside) at the same company or at the same email domain.
//!
//! [`Crm::merge_contacts`] folds contacts into a survivor in one atomic write: the
//! survivor takes, field by field, the value the caller chose or else its own (empty
//! fields filled from the others; tags, addresses and custom fields combined; the most
//! advanced lifecycle stage and the first conversion kept); every row that referred to
//! a merged contact (deals, tasks, interactions, campaign history, quotes, invoices,
//! subscriptions, attachments, static segments) refers to the survivor; a withdrawn
//! consent stays withdrawn; the merged contacts are soft-deleted. The merge is kept as a
//! [`ContactMerge`] with every value it changed, so [`Crm::undo_contact_merge`] can put
//! things back within [`UNDO_DAYS`] days: where a value was changed again since, the
//! newer value stays.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::error::{Error, Errors, Result};
use crate::ids::ContactId;
use crate::model::campaign::{Consent, ConsentStatus};
use crate::model::contact::{Contact, LifecycleStage};
use crate::model::merge::{ContactMerge, Relink, UNDO_DAYS};
use crate::model::Record;
use crate::policy::{Action, Actor, Resource};
use crate::query::{and_opt, id_key, Cmp, Direction, Filter, Pattern, Predicate, StoreQuery};
use crate::schema::{json_to_value, to_row, value_to_json, EntityKind, Row, Value};
use crate::service::write_path::{scope_filter, search_filter};
use crate::service::Crm;
use crate::store::{Changeset, StoreExt, Write};

/// At most this many contacts are folded into a survivor at once.
pub const MAX_MERGED: usize = 10;

/// The most candidates [`Crm::contact_duplicates`] answers.
pub const MAX_CANDIDATES: usize = 50;

/// How many candidates [`Crm::contact_duplicates`] reads before it ranks them.
const CANDIDATE_READ: u32 = 500;

/// Why a contact looks like a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum DuplicateReason {
    /// The same email address once case, `+tags` and Gmail's dots are set aside.
    Email,
    /// The same phone number.
    Phone,
    /// The same name at the same company.
    NameCompany,
    /// The same name at the same email domain (a company's, not a free mail service's).
    NameDomain,
}

impl DuplicateReason {
    fn weight(self) -> u32 {
        match self {
            DuplicateReason::Email => 100,
            DuplicateReason::Phone => 80,
            DuplicateReason::NameCompany => 60,
            DuplicateReason::NameDomain => 50,
        }
    }
}

/// A likely duplicate of a contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DuplicateCandidate {
    /// The other contact.
    pub contact: Contact,
    /// What they have in common.
    pub reasons: Vec<DuplicateReason>,
    /// The reasons' weight added up (email 100, phone 80, name and company 60, name and
    /// domain 50): the higher, the surer.
    pub score: u32,
}

/// What [`Crm::merge_contacts`] does.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MergeRequest {
    /// The contacts folded into the survivor (1 to 10); they are soft-deleted.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Uuid>))]
    pub merge_ids: Vec<ContactId>,
    /// For a field (`email`, `phoneNumber`, `companyId`, `customFields.<name>`, …), the
    /// contact whose value the survivor takes, even an empty one. Fields not named keep
    /// the survivor's value, filled from the merged contacts when empty.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: BTreeMap<String, ContactId>,
    /// The survivor's version the choice was made on; a stale one is a conflict.
    #[serde(default)]
    pub version: Option<i64>,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MergeOutcome {
    /// The survivor as the merge left it.
    pub contact: Contact,
    /// The merge, with what it moved; undo it by its id.
    pub merge: ContactMerge,
}

/// The fields a merge may take from another contact, as the API spells them.
const SCALARS: [&str; 6] = ["name", "email", "phoneNumber", "jobTitle", "companyId", "leadSource"];
/// Free-form objects, combined key by key (the survivor's keys first).
const OBJECTS: [&str; 4] = ["preferences", "social", "address", "customFields"];
/// Every field a request may choose.
const CHOOSABLE: [&str; 14] = [
    "name",
    "email",
    "phoneNumber",
    "jobTitle",
    "companyId",
    "leadSource",
    "ownerId",
    "lifecycleStage",
    "convertedAt",
    "tags",
    "preferences",
    "social",
    "address",
    "customFields",
];

/// Scalar columns that refer to a contact, relinked by a merge.
const REFERENCES: [(EntityKind, &str); 7] = [
    (EntityKind::Interaction, "contact_id"),
    (EntityKind::Task, "related_id"),
    (EntityKind::CampaignRecipient, "contact_id"),
    (EntityKind::Quote, "contact_id"),
    (EntityKind::Invoice, "contact_id"),
    (EntityKind::Subscription, "contact_id"),
    (EntityKind::Attachment, "parent_id"),
];
/// List columns that hold contacts, relinked by a merge.
const LIST_REFERENCES: [(EntityKind, &str); 2] =
    [(EntityKind::Deal, "contact_ids"), (EntityKind::Segment, "contact_ids")];

/// Mail services whose domain says nothing about a person's employer.
const FREE_MAIL: [&str; 24] = [
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.fr",
    "yahoo.co.uk",
    "hotmail.com",
    "hotmail.fr",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "yandex.ru",
    "mail.ru",
    "qq.com",
];

/// A name compared without accents, case, punctuation or word order (`Dupont, Zoé` and
/// `zoe dupont` are the same).
pub fn normalized_name(name: &str) -> String {
    let plain: String = name
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let mut words: Vec<&str> = plain.split_whitespace().collect();
    words.sort_unstable();
    words.join(" ")
}

/// An email compared without case, `+tags`, and, at Gmail, dots (`Zoe.Dupont+crm@gmail.com`
/// is `zoedupont@gmail.com`).
pub fn normalized_email(email: &str) -> String {
    let email = email.trim().to_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else { return email };
    let local = local.split('+').next().unwrap_or(local);
    match domain {
        "gmail.com" | "googlemail.com" => format!("{}@gmail.com", local.replace('.', "")),
        _ => format!("{local}@{domain}"),
    }
}

/// The domain of an email, lower-cased, unless it is a free mail service's.
fn company_domain(email: &str) -> Option<String> {
    let domain = email.rsplit_once('@')?.1.trim().to_lowercase();
    (!FREE_MAIL.contains(&domain.as_str())).then_some(domain)
}

/// Why `other` looks like a duplicate of `of`, strongest first.
pub fn duplicate_reasons(of: &Contact, other: &Contact) -> Vec<DuplicateReason> {
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (&of.email, &other.email) {
        if normalized_email(a.as_str()) == normalized_email(b.as_str()) {
            out.push(DuplicateReason::Email);
        }
    }
    if of.phone_number.is_some() && of.phone_number == other.phone_number {
        out.push(DuplicateReason::Phone);
    }
    let name = normalized_name(&of.name);
    if !name.is_empty() && name == normalized_name(&other.name) {
        if of.company_id.is_some() && of.company_id == other.company_id {
            out.push(DuplicateReason::NameCompany);
        }
        let domain = |c: &Contact| c.email.as_ref().and_then(|e| company_domain(e.as_str()));
        if domain(of).is_some() && domain(of) == domain(other) {
            out.push(DuplicateReason::NameDomain);
        }
    }
    out
}

fn column(kind: EntityKind, name: &str) -> Result<&'static crate::schema::Column> {
    kind.column(name).ok_or_else(|| Error::internal_msg(format!("{} has no {name}", kind.name())))
}

fn eq(kind: EntityKind, name: &str, v: Value) -> Result<Filter> {
    Ok(Filter::Cmp(Cmp { column: column(kind, name)?, pred: Predicate::Eq(v) }))
}

/// `text` with the `LIKE` wildcards escaped.
fn literal(text: &str) -> String {
    text.chars().fold(String::new(), |mut s, c| {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
        s
    })
}

/// The kind a [`Relink`] names.
fn kind_named(name: &str) -> Result<EntityKind> {
    EntityKind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| Error::internal_msg(format!("a merge names an unknown kind {name}")))
}

/// `row` with `column` set to `value`, its version raised and, where it has them, its
/// change time and author set: the update of a row a merge relinks.
fn relinked(kind: EntityKind, mut row: Row, column: &str, value: Value, actor: &Actor, now: &Value) -> Result<Write> {
    let at = kind.position(column).ok_or_else(|| Error::internal_msg(format!("{} has no {column}", kind.name())))?;
    row[at] = value;
    let v = kind.position("version").ok_or_else(|| Error::internal_msg(format!("{} has no version", kind.name())))?;
    let Value::Int(version) = row[v] else { return Err(Error::internal_msg("a version that is not a number")) };
    bumped(kind, row, version, actor, now)
}

/// The update storing `row`, read at `version`: version raised, change time and author
/// set where the kind has them.
fn bumped(kind: EntityKind, mut row: Row, version: i64, actor: &Actor, now: &Value) -> Result<Write> {
    let v = kind.position("version").ok_or_else(|| Error::internal_msg(format!("{} has no version", kind.name())))?;
    row[v] = Value::Int(version + 1);
    if let Some(u) = kind.position("updated_at") {
        row[u] = now.clone();
    }
    if let Some(u) = kind.position("updated_by") {
        row[u] = Value::Uuid(actor.user_id.as_uuid());
    }
    Ok(Write::Update { kind, row, expected_version: version })
}

/// The ids in a list column's JSON value.
fn uuids(v: &Json) -> Vec<Uuid> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str()?.parse().ok()).collect()).unwrap_or_default()
}

fn uuid_list(ids: &[Uuid]) -> Json {
    Json::Array(ids.iter().map(|u| Json::String(u.to_string())).collect())
}

impl Crm {
    /// Every row of `kind` matching `filter`, deleted ones included, read by pages of
    /// 1,000 in id order.
    async fn all_rows(&self, kind: EntityKind, filter: Filter) -> Result<Vec<Row>> {
        let id_col = column(kind, "id")?;
        let mut out: Vec<Row> = Vec::new();
        loop {
            let after = out.last().map(|r| Filter::Cmp(Cmp { column: id_col, pred: Predicate::Gt(r[0].clone()) }));
            let q = StoreQuery {
                filter: and_opt([Some(filter.clone()), after]),
                sort: vec![id_key(kind, Direction::Asc)],
                limit: 1000,
                include_deleted: true,
            };
            let page = self.store().list(kind, &q).await?;
            let done = page.len() < 1000;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// The contacts the actor may read that are likely the same person as contact `id`,
    /// surest first (at most `limit`, 1 to [`MAX_CANDIDATES`]).
    pub async fn contact_duplicates(
        &self,
        actor: &Actor,
        id: ContactId,
        limit: usize,
    ) -> Result<Vec<DuplicateCandidate>> {
        if !(1..=MAX_CANDIDATES).contains(&limit) {
            return Err(Error::invalid("limit", "out_of_range", format!("limit is from 1 to {MAX_CANDIDATES}")));
        }
        let of: Contact = self.authorized(actor, id.as_uuid(), Action::Read).await?;
        let kind = EntityKind::Contact;
        let mut errs = Errors::new();
        let mut any: Vec<Filter> = Vec::new();
        if let Some(p) = &of.phone_number {
            any.push(eq(kind, "phone_number", Value::Text(p.as_str().to_string()))?);
        }
        // A company or an email domain holds many people: the same name is asked too (its
        // longest word, as spelt here), so that the read stays small.
        let lowered = of.name.to_lowercase();
        let word = lowered.split(|c: char| !c.is_alphanumeric()).max_by_key(|w| w.chars().count()).unwrap_or_default();
        let named = search_filter(kind, Some(word).filter(|w| w.chars().count() >= 2), &mut errs);
        if let (Some(c), Some(named)) = (of.company_id, &named) {
            any.push(Filter::And(vec![eq(kind, "company_id", Value::Uuid(c.as_uuid()))?, named.clone()]));
        }
        if let Some(e) = &of.email {
            let norm = normalized_email(e.as_str());
            let local = norm.split('@').next().unwrap_or_default();
            if local.chars().count() >= 3 {
                any.extend(search_filter(kind, Some(local), &mut errs));
            }
            if let (Some(domain), Some(named)) = (company_domain(e.as_str()), &named) {
                let pattern = Pattern::parse(&format!("%@{}", literal(&domain)));
                let at = Filter::Cmp(Cmp { column: column(kind, "email")?, pred: Predicate::Like(pattern) });
                any.push(Filter::And(vec![at, named.clone()]));
            }
        }
        // The same spelling anywhere, for `Zoé Dupont` with no company and another email.
        any.extend(search_filter(kind, Some(of.name.as_str()), &mut errs));
        errs.finish()?;
        if any.is_empty() {
            return Ok(Vec::new());
        }
        let scope = self.policy().require(actor, Resource::Contacts, Action::Read)?;
        let not_self =
            Filter::Cmp(Cmp { column: column(kind, "id")?, pred: Predicate::Neq(Value::Uuid(of.id.as_uuid())) });
        let q = StoreQuery {
            filter: and_opt([Some(Filter::Or(any)), Some(not_self), scope_filter(kind, scope, actor)]),
            sort: vec![id_key(kind, Direction::Asc)],
            limit: CANDIDATE_READ,
            include_deleted: false,
        };
        let mut out: Vec<DuplicateCandidate> = self
            .store()
            .list_as::<Contact>(&q)
            .await?
            .into_iter()
            .filter_map(|c| {
                let reasons = duplicate_reasons(&of, &c);
                let score = reasons.iter().map(|r| r.weight()).sum();
                (!reasons.is_empty()).then_some(DuplicateCandidate { contact: c, reasons, score })
            })
            .collect();
        out.sort_by(|a, b| b.score.cmp(&a.score).then(a.contact.meta.created_at.cmp(&b.contact.meta.created_at)));
        out.truncate(limit);
        Ok(out)
    }

    /// Folds the contacts `request.merge_ids` into contact `survivor` (see the module's
    /// documentation). The actor needs the right to update the survivor and to delete
    /// each merged contact; giving the survivor another owner needs the right to assign.
    pub async fn merge_contacts(
        &self,
        actor: &Actor,
        survivor: ContactId,
        request: MergeRequest,
    ) -> Result<MergeOutcome> {
        let before: Contact = self.authorized(actor, survivor.as_uuid(), Action::Update).await?;
        crate::service::write_path::check_version(request.version, before.meta.version)?;
        let mut errs = Errors::new();
        if request.merge_ids.is_empty() {
            errs.add("mergeIds", "required", "name at least one contact to merge");
        }
        if request.merge_ids.len() > MAX_MERGED {
            errs.add("mergeIds", "too_long", format!("at most {MAX_MERGED} contacts at once"));
        }
        let mut merged: Vec<Contact> = Vec::new();
        let mut seen = HashSet::from([survivor]);
        for (i, id) in request.merge_ids.iter().take(MAX_MERGED).enumerate() {
            let field = format!("mergeIds.{i}");
            if !seen.insert(*id) {
                let what = if *id == survivor { "the survivor itself" } else { "named twice" };
                errs.add(field, "duplicate", format!("contact {id} is {what}"));
                continue;
            }
            match self.authorized::<Contact>(actor, id.as_uuid(), Action::Delete).await {
                Ok(c) => merged.push(c),
                Err(Error::NotFound { .. }) => errs.add(field, "not_found", format!("no contact with id {id}")),
                Err(e) => return Err(e),
            }
        }
        let known: HashMap<ContactId, &Contact> =
            std::iter::once(&before).chain(merged.iter()).map(|c| (c.id, c)).collect();
        for (name, from) in &request.fields {
            let field = format!("fields.{name}");
            let choosable =
                CHOOSABLE.contains(&name.as_str()) || name.strip_prefix("customFields.").is_some_and(|k| !k.is_empty());
            if !choosable {
                errs.add(
                    field,
                    "unknown_field",
                    format!(
                        "a merge cannot choose {name}; it can choose {}, customFields.<name>",
                        CHOOSABLE.join(", ")
                    ),
                );
            } else if !known.contains_key(from) {
                errs.add(field, "not_merged", format!("contact {from} is neither the survivor nor one merged"));
            }
        }
        errs.finish()?;

        let (mut after, sources) = self.merged_contact(&before, &merged, &request.fields, &known)?;
        if after.owner_id != before.owner_id {
            self.authorized::<Contact>(actor, before.id.as_uuid(), Action::Assign).await?;
            let mut errs = Errors::new();
            let (owner, team) =
                self.resolve_owner(actor, Resource::Contacts, Action::Assign, Some(after.owner_id), &mut errs).await?;
            errs.finish().map_err(|e| e.renamed("ownerId", "fields.ownerId"))?;
            after.owner_id = owner;
            after.team_id = team;
        }

        let now = self.now();
        let stamp = Value::Timestamp(crate::clock::truncate_ms(now));
        let to = Value::Uuid(survivor.as_uuid());
        let mut relinks: Vec<Relink> = Vec::new();
        let mut writes: Vec<Write> = Vec::new();
        let mut counts: BTreeMap<&'static str, i64> = BTreeMap::new();
        let merged_ids: Vec<Uuid> = merged.iter().map(|c| c.id.as_uuid()).collect();
        let lists = LIST_REFERENCES.iter().map(|r| (r, true));
        for (&(kind, col), is_list) in REFERENCES.iter().map(|r| (r, false)).chain(lists) {
            let at = kind.position(col).ok_or_else(|| Error::internal_msg("relinked column"))?;
            let from = Filter::Cmp(Cmp {
                column: column(kind, col)?,
                pred: Predicate::In(merged_ids.iter().map(|u| Value::Uuid(*u)).collect()),
            });
            for row in self.all_rows(kind, from).await? {
                let Value::Uuid(id) = row[0] else { continue };
                let before = value_to_json(row[at].clone());
                let value = if is_list {
                    // Each merged contact becomes the survivor, who is never named twice.
                    let mut ids: Vec<Uuid> = Vec::new();
                    for u in uuids(&before) {
                        let u = if merged_ids.contains(&u) { survivor.as_uuid() } else { u };
                        if !ids.contains(&u) {
                            ids.push(u);
                        }
                    }
                    Value::Json(uuid_list(&ids))
                } else {
                    to.clone()
                };
                let after = value_to_json(value.clone());
                relinks.push(Relink { kind: kind.name().to_string(), id, column: col.to_string(), before, after });
                writes.push(relinked(kind, row, col, value, actor, &stamp)?);
                *counts.entry(kind.table()).or_default() += 1;
            }
        }
        self.merge_consents(survivor, &merged_ids, &mut relinks, &mut writes).await?;

        let merge = ContactMerge {
            id: self.new_id(now),
            survivor_id: survivor.as_uuid(),
            merged_ids: merged_ids.clone(),
            sources,
            survivor_before: as_object(&before)?,
            survivor_after: Map::new(),
            relinked_counts: counts.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect(),
            relinks,
            merged_by: actor.user_id.as_uuid(),
            created_at: now,
            undone_at: None,
            undone_by: None,
            version: 1,
        };

        // The merged contacts go first: the survivor may take one's email, unique among
        // live contacts.
        let mut cs = Changeset::default();
        for c in &merged {
            let mut gone = c.clone();
            gone.meta.deleted_at = Some(now);
            gone.meta.deleted_by = Some(actor.user_id);
            let mut one = Changeset::default();
            self.update_changes(actor, c, gone, "deleted", &mut one)?;
            for a in &mut one.audit {
                add_to_changes(&mut a.changes, "mergedInto", json!(survivor));
            }
            cs.writes.append(&mut one.writes);
            cs.audit.append(&mut one.audit);
        }
        let payload = json!({
            "id": survivor,
            "actorId": actor.user_id,
            "mergeId": merge.id,
            "mergedIds": merged_ids,
            "relinked": merge.relinked_counts,
        });
        let mut mine = Changeset::default();
        mine.writes.push(self.event("contact.merged".into(), EntityKind::Contact, survivor.as_uuid(), payload)?);
        let after = self
            .update_changes(actor, &before, after, "merged", &mut mine)?
            .ok_or_else(|| Error::internal_msg("a merge that changed nothing"))?;
        for a in mine.audit.iter_mut().filter(|a| a.action == "contact.merged") {
            add_to_changes(
                &mut a.changes,
                "merge",
                json!({"id": merge.id, "mergedIds": merged_ids, "relinked": merge.relinked_counts, "sources": merge.sources}),
            );
        }
        let merge = ContactMerge { survivor_after: as_object(&after)?, ..merge };
        cs.writes.append(&mut mine.writes);
        cs.audit.append(&mut mine.audit);
        cs.writes.extend(writes);
        cs.writes.push(Write::Insert { kind: EntityKind::ContactMerge, row: to_row(&merge)? });
        self.store().apply(cs).await?;
        Ok(MergeOutcome { contact: after, merge })
    }

    /// The survivor with the merged contacts' values folded in, and for each field that
    /// changed, the contact its value came from.
    fn merged_contact(
        &self,
        survivor: &Contact,
        merged: &[Contact],
        chosen: &BTreeMap<String, ContactId>,
        known: &HashMap<ContactId, &Contact>,
    ) -> Result<(Contact, Map<String, Json>)> {
        let me = as_object(survivor)?;
        let others: Vec<(ContactId, Map<String, Json>)> =
            merged.iter().map(|c| Ok((c.id, as_object(c)?))).collect::<Result<_>>()?;
        let of = |id: &ContactId| -> Result<Map<String, Json>> {
            as_object(known.get(id).ok_or_else(|| Error::internal_msg("a chosen contact not loaded"))?)
        };
        let mut out = me.clone();
        let mut sources = Map::new();
        let set = |out: &mut Map<String, Json>,
                   sources: &mut Map<String, Json>,
                   field: &str,
                   value: Json,
                   from: ContactId| {
            if me.get(field) != Some(&value) {
                sources.insert(field.to_string(), json!(from));
            }
            out.insert(field.to_string(), value);
        };
        for field in SCALARS.iter().chain(["ownerId", "lifecycleStage", "convertedAt", "tags"].iter()) {
            if let Some(from) = chosen.get(*field) {
                let v = of(from)?.get(*field).cloned().unwrap_or(Json::Null);
                set(&mut out, &mut sources, field, v, *from);
                continue;
            }
            match *field {
                "lifecycleStage" => {
                    let rank =
                        |c: &Contact| LifecycleStage::CHOICES.iter().position(|s| *s == c.lifecycle_stage.as_str());
                    if let Some(best) = merged.iter().filter(|c| rank(c) > rank(survivor)).max_by_key(|c| rank(c)) {
                        set(&mut out, &mut sources, field, json!(best.lifecycle_stage), best.id);
                    }
                }
                "convertedAt" => {
                    let first = merged
                        .iter()
                        .filter_map(|c| Some((c.converted_at?, c.id)))
                        .filter(|(t, _)| survivor.converted_at.is_none_or(|s| *t < s))
                        .min();
                    if let Some((t, from)) = first {
                        set(&mut out, &mut sources, field, json!(crate::schema::format_ts(&t)), from);
                    }
                }
                "tags" => {
                    let mut tags = survivor.tags.clone();
                    for c in merged {
                        for t in &c.tags {
                            if !tags.contains(t) {
                                tags.push(t.clone());
                            }
                        }
                    }
                    if tags != survivor.tags {
                        out.insert("tags".into(), json!(tags));
                        sources.insert("tags".into(), json!("combined"));
                    }
                }
                "ownerId" => {}
                _ => {
                    if me.get(*field).is_none_or(Json::is_null) {
                        if let Some((from, v)) =
                            others.iter().find_map(|(id, o)| o.get(*field).filter(|v| !v.is_null()).map(|v| (*id, v)))
                        {
                            set(&mut out, &mut sources, field, v.clone(), from);
                        }
                    }
                }
            }
        }
        for field in OBJECTS {
            if let Some(from) = chosen.get(field) {
                let v = of(from)?.get(field).cloned().unwrap_or_else(|| json!({}));
                set(&mut out, &mut sources, field, v, *from);
            } else {
                let mut combined = me.get(field).and_then(|v| v.as_object()).cloned().unwrap_or_default();
                for (_, o) in &others {
                    for (k, v) in o.get(field).and_then(|v| v.as_object()).into_iter().flatten() {
                        if combined.get(k).is_none_or(Json::is_null) && !v.is_null() {
                            combined.insert(k.clone(), v.clone());
                        }
                    }
                }
                if Some(&Json::Object(combined.clone())) != me.get(field) {
                    sources.insert(field.to_string(), json!("combined"));
                }
                out.insert(field.to_string(), Json::Object(combined));
            }
        }
        for (name, from) in chosen {
            let Some(key) = name.strip_prefix("customFields.") else { continue };
            let v = of(from)?.get("customFields").and_then(|o| o.get(key)).cloned().unwrap_or(Json::Null);
            let fields = out.entry("customFields").or_insert_with(|| json!({}));
            if let Some(m) = fields.as_object_mut() {
                if v.is_null() {
                    m.remove(key);
                } else {
                    m.insert(key.to_string(), v);
                }
            }
            sources.insert(name.clone(), json!(from));
        }
        let contact: Contact =
            serde_json::from_value(Json::Object(out)).map_err(|e| Error::internal("folding merged contacts", e))?;
        Ok((contact, sources))
    }

    /// The survivor's consent to campaigns after a merge: a withdrawal by any of the
    /// contacts stands; otherwise the survivor keeps its own answer, or takes the latest
    /// one given by a merged contact when it has none.
    async fn merge_consents(
        &self,
        survivor: ContactId,
        merged: &[Uuid],
        relinks: &mut Vec<Relink>,
        writes: &mut Vec<Write>,
    ) -> Result<()> {
        let theirs: Vec<Consent> = {
            let mut v = Vec::new();
            for id in merged {
                v.extend(self.load::<Consent>(*id).await?);
            }
            v
        };
        if theirs.is_empty() {
            return Ok(());
        }
        let mine = self.load::<Consent>(survivor.as_uuid()).await?;
        let withdrawn = theirs.iter().filter(|c| c.status == ConsentStatus::Unsubscribed).max_by_key(|c| c.changed_at);
        let latest = theirs.iter().filter(|c| c.status != ConsentStatus::Unknown).max_by_key(|c| c.changed_at);
        let kind = EntityKind::Consent;
        let taken = match (&mine, withdrawn) {
            (Some(m), _) if m.status == ConsentStatus::Unsubscribed => None,
            (_, Some(w)) => Some(w),
            (Some(m), None) if m.status != ConsentStatus::Unknown => None,
            _ => latest,
        };
        let Some(taken) = taken else { return Ok(()) };
        let new = Consent { id: survivor.as_uuid(), version: 1, ..taken.clone() };
        match mine {
            None => {
                relinks.push(Relink {
                    kind: kind.name().to_string(),
                    id: survivor.as_uuid(),
                    column: "*".into(),
                    before: Json::Null,
                    after: json!(new),
                });
                writes.push(Write::Insert { kind, row: to_row(&new)? });
            }
            Some(m) => {
                let mut row = to_row(&m)?;
                for (col, value) in [
                    ("status", Value::Text(taken.status.as_str().to_string())),
                    ("source", Value::Text(taken.source.clone())),
                    ("changed_at", Value::Timestamp(crate::clock::truncate_ms(taken.changed_at))),
                ] {
                    let at = kind.position(col).ok_or_else(|| Error::internal_msg("consent column"))?;
                    relinks.push(Relink {
                        kind: kind.name().to_string(),
                        id: m.id,
                        column: col.to_string(),
                        before: value_to_json(row[at].clone()),
                        after: value_to_json(value.clone()),
                    });
                    row[at] = value;
                }
                let v = kind.position("version").ok_or_else(|| Error::internal_msg("consent version"))?;
                row[v] = Value::Int(m.version + 1);
                writes.push(Write::Update { kind, row, expected_version: m.version });
            }
        }
        Ok(())
    }

    /// A merge the actor may see: one whose survivor they may read.
    pub async fn contact_merge(&self, actor: &Actor, id: Uuid) -> Result<ContactMerge> {
        let merge = self.load::<ContactMerge>(id).await?.ok_or(Error::NotFound { entity: "contact_merge" })?;
        let survivor =
            self.load::<Contact>(merge.survivor_id).await?.ok_or(Error::NotFound { entity: "contact_merge" })?;
        let scope = self.policy().scope(actor.role, Resource::Contacts, Action::Read);
        if !scope.covers(actor, &survivor.ownership()) {
            return Err(Error::NotFound { entity: "contact_merge" });
        }
        Ok(merge)
    }

    /// The merges into contact `id`, newest first.
    pub async fn contact_merges(&self, actor: &Actor, id: ContactId) -> Result<Vec<ContactMerge>> {
        let _: Contact = self.authorized(actor, id.as_uuid(), Action::Read).await?;
        let mut merges = self.find_all_by::<ContactMerge>("survivor_id", Value::Uuid(id.as_uuid()), 200).await?;
        merges.sort_by_key(|m| std::cmp::Reverse(m.created_at));
        Ok(merges)
    }

    /// Undoes a merge within [`UNDO_DAYS`] days: the merged contacts come back, every
    /// row the merge relinked refers to them again, and the survivor's fields the merge
    /// set go back to what they were, except where a value was changed since the merge
    /// (the newer value stays). The actor needs the rights the merge needed.
    pub async fn undo_contact_merge(&self, actor: &Actor, id: Uuid) -> Result<Contact> {
        let merge = self.contact_merge(actor, id).await?;
        let conflict = |message: String| Error::Conflict { message, field: None };
        if merge.undone_at.is_some() {
            return Err(conflict("this merge was undone already".into()));
        }
        let now = self.now();
        if now > merge.undo_until() {
            return Err(conflict(format!("a merge can be undone for {UNDO_DAYS} days; this one is older")));
        }
        let current: Contact = self.authorized(actor, merge.survivor_id, Action::Update).await?;
        let mut merged: Vec<Contact> = Vec::new();
        for m in &merge.merged_ids {
            let c = self
                .load::<Contact>(*m)
                .await?
                .ok_or_else(|| conflict(format!("contact {m} was purged since the merge; it cannot come back")))?;
            let own = c.ownership();
            self.policy().authorize_record(actor, Resource::Contacts, Action::Restore, &own, "contact")?;
            merged.push(c);
        }

        // The survivor's fields the merge set, back where nobody changed them since.
        let before = &merge.survivor_before;
        let after = &merge.survivor_after;
        let mut now_json = as_object(&current)?;
        for (field, was) in before {
            if matches!(field.as_str(), "version" | "updatedAt" | "updatedBy" | "createdAt" | "createdBy") {
                continue;
            }
            let set = after.get(field).unwrap_or(&Json::Null);
            if set != was && now_json.get(field).unwrap_or(&Json::Null) == set {
                now_json.insert(field.clone(), was.clone());
            }
        }
        let restored: Contact =
            serde_json::from_value(Json::Object(now_json)).map_err(|e| Error::internal("undoing a merge", e))?;

        let mut cs = Changeset::default();
        let stamp = Value::Timestamp(crate::clock::truncate_ms(now));
        let mut mine = Changeset::default();
        mine.writes.push(self.event(
            "contact.unmerged".into(),
            EntityKind::Contact,
            merge.survivor_id,
            json!({"id": merge.survivor_id, "actorId": actor.user_id, "mergeId": merge.id, "restoredIds": merge.merged_ids}),
        )?);
        let survivor = self.update_changes(actor, &current, restored, "unmerged", &mut mine)?.unwrap_or(current);
        for a in mine.audit.iter_mut().filter(|a| a.action == "contact.unmerged") {
            add_to_changes(&mut a.changes, "merge", json!({"id": merge.id, "restoredIds": merge.merged_ids}));
        }
        cs.writes.append(&mut mine.writes);
        cs.audit.append(&mut mine.audit);
        for c in &merged {
            if !c.meta.is_deleted() {
                continue;
            }
            let mut back = c.clone();
            back.meta.deleted_at = None;
            back.meta.deleted_by = None;
            let mut one = Changeset::default();
            self.update_changes(actor, c, back, "restored", &mut one)?;
            cs.writes.append(&mut one.writes);
            cs.audit.append(&mut one.audit);
        }
        // Each row once, with every value of it the merge changed put back.
        let mut rows: Vec<((EntityKind, Uuid), Row, i64)> = Vec::new();
        for r in &merge.relinks {
            let kind = kind_named(&r.kind)?;
            if r.column == "*" {
                if self.store().get(kind, r.id).await?.is_some() {
                    cs.writes.push(Write::Purge { kind, column: "id", id: r.id });
                }
                continue;
            }
            let at = match rows.iter().position(|(key, _, _)| *key == (kind, r.id)) {
                Some(i) => i,
                None => {
                    let Some(row) = self.store().get(kind, r.id).await? else { continue };
                    let v = kind.position("version").ok_or_else(|| Error::internal_msg("a row without a version"))?;
                    let Value::Int(version) = row[v] else { continue };
                    rows.push(((kind, r.id), row, version));
                    rows.len() - 1
                }
            };
            let col = column(kind, &r.column)?;
            let pos = kind.position(&r.column).ok_or_else(|| Error::internal_msg("relinked column"))?;
            let row = &mut rows[at].1;
            let now_value = value_to_json(row[pos].clone());
            let back = if now_value == r.after {
                r.before.clone()
            } else if now_value.is_array() {
                // A list changed since: take out what the merge put in, put back what it took.
                let (b, a) = (uuids(&r.before), uuids(&r.after));
                let mut ids: Vec<Uuid> =
                    uuids(&now_value).into_iter().filter(|u| b.contains(u) || !a.contains(u)).collect();
                for u in b.iter().filter(|u| !a.contains(u)) {
                    if !ids.contains(u) {
                        ids.push(*u);
                    }
                }
                uuid_list(&ids)
            } else {
                continue;
            };
            row[pos] = json_to_value(col, &back).unwrap_or(Value::Null);
        }
        for ((kind, _), row, version) in rows {
            cs.writes.push(bumped(kind, row, version, actor, &stamp)?);
        }
        let mut done = merge.clone();
        done.undone_at = Some(now);
        done.undone_by = Some(actor.user_id.as_uuid());
        done.version = merge.version + 1;
        cs.writes.push(Write::Update {
            kind: EntityKind::ContactMerge,
            row: to_row(&done)?,
            expected_version: merge.version,
        });
        self.store().apply(cs).await?;
        Ok(survivor)
    }
}

fn as_object<T: Serialize>(v: &T) -> Result<Map<String, Json>> {
    match serde_json::to_value(v).map_err(|e| Error::internal("serialising a record", e))? {
        Json::Object(m) => Ok(m),
        _ => Err(Error::internal_msg("a record that is not an object")),
    }
}

/// Adds `key` to an audit event's changes.
fn add_to_changes(changes: &mut Json, key: &str, value: Json) {
    if let Some(m) = changes.as_object_mut() {
        m.insert(key.to_string(), value);
    } else {
        *changes = json!({ key: value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_accents_case_punctuation_or_order() {
        assert_eq!(normalized_name("Dupont, Zoé"), normalized_name("zoe  DUPONT"));
        assert_eq!(normalized_name("José-María López"), "jose lopez maria");
        assert_ne!(normalized_name("Zoe Dupont"), normalized_name("Zoe Dupond"));
    }

    #[test]
    fn emails_compare_without_case_tags_or_gmail_dots() {
        assert_eq!(normalized_email("Zoe.Dupont+crm@GMail.com"), "zoedupont@gmail.com");
        assert_eq!(normalized_email("zoe.dupont+x@acme.com"), "zoe.dupont@acme.com");
        assert_ne!(normalized_email("zoe.dupont@acme.com"), normalized_email("zoedupont@acme.com"));
        assert_eq!(company_domain("a@Acme.com").as_deref(), Some("acme.com"));
        assert_eq!(company_domain("a@gmail.com"), None);
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(literal("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
