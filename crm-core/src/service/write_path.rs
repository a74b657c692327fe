//! The machinery every aggregate's service shares: scoped loads and lists, and the
//! insert/update/delete/restore/purge write paths with their audit and outbox events.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value as Json};
use uuid::Uuid;

use super::Crm;
use crate::audit::NewAuditEvent;
use crate::error::{Error, Errors, Result};
use crate::ids::{TeamId, UserId};
use crate::model::user::User;
use crate::model::Record;
use crate::outbox::{OutboxEvent, AUDIT_ID};
use crate::policy::{Action, Actor, Ownership, Resource, Scope};
use crate::query::{
    and_opt, decode_cursor, encode_cursor, id_key, keyset_filter, Cmp, Direction, Filter, ListQuery, Page, PageInfo,
    Pattern, Predicate, SortKey, StoreQuery, DEFAULT_LIMIT, MAX_LIMIT,
};
use crate::schema::{from_row, to_row, EntityKind, Persist, Value};
use crate::store::{Changeset, StoreExt, Write};

/// A batch being staged ([`Crm::staged`]): its changes, and whether the per-record
/// audit and outbox events are left out (an import writes one per batch instead).
#[derive(Default)]
struct Staging {
    changes: Changeset,
    quiet: bool,
}

tokio::task_local! {
    static STAGED: std::cell::RefCell<Staging>;
}

/// Is a quiet staging running (no per-record events wanted)?
fn quiet() -> bool {
    STAGED.try_with(|s| s.borrow().quiet).unwrap_or(false)
}

/// Fields left out of audit diffs: they change on every write.
const NOT_DIFFED: [&str; 3] = ["version", "updatedAt", "updatedBy"];
/// Fields whose values never reach the audit log or the outbox.
const SECRET: [&str; 1] = ["passwordHash"];

/// `{field: {before, after}}` of the fields that differ.
pub(crate) fn diff(before: Option<&Json>, after: Option<&Json>) -> Json {
    let empty = Map::new();
    let b = before.and_then(|v| v.as_object()).unwrap_or(&empty);
    let a = after.and_then(|v| v.as_object()).unwrap_or(&empty);
    let mut out = Map::new();
    for key in b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))) {
        if NOT_DIFFED.contains(&key.as_str()) {
            continue;
        }
        let (old, new) = (b.get(key).unwrap_or(&Json::Null), a.get(key).unwrap_or(&Json::Null));
        if old == new {
            continue;
        }
        let shown = |v: &Json| {
            if SECRET.contains(&key.as_str()) && !v.is_null() {
                json!("[redacted]")
            } else {
                v.clone()
            }
        };
        out.insert(key.clone(), json!({"before": shown(old), "after": shown(new)}));
    }
    Json::Object(out)
}

/// [`diff`] of a new record (`{field: {before: null, after}}` of its non-null fields),
/// its values moved rather than copied: every insert makes one.
pub(crate) fn created(after: Json) -> Json {
    let Json::Object(fields) = after else { return Json::Object(Map::new()) };
    let mut out = Map::new();
    for (key, new) in fields {
        if new.is_null() || NOT_DIFFED.contains(&key.as_str()) {
            continue;
        }
        let new = if SECRET.contains(&key.as_str()) { json!("[redacted]") } else { new };
        let mut change = Map::new();
        change.insert("before".into(), Json::Null);
        change.insert("after".into(), new);
        out.insert(key, Json::Object(change));
    }
    Json::Object(out)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Json> {
    serde_json::to_value(v).map_err(|e| Error::internal("serialising a record", e))
}

/// A write's version check: a stale version given by the caller is a conflict.
pub(crate) fn check_version(expected: Option<i64>, current: i64) -> Result<()> {
    match expected {
        Some(v) if v != current => Err(Error::VersionConflict { current }),
        _ => Ok(()),
    }
}

impl Crm {
    /// A record by id, whatever its state, without authorization.
    pub(crate) async fn load<R: Persist>(&self, id: Uuid) -> Result<Option<R>> {
        self.store().get_as::<R>(id).await
    }

    /// A record the actor may do `action` on. Soft-deleted records are found only for
    /// restore and purge; out-of-scope ones answer `NotFound`.
    pub(crate) async fn authorized<R: Record>(&self, actor: &Actor, id: Uuid, action: Action) -> Result<R> {
        let kind = R::KIND;
        let rec = self.load::<R>(id).await?.ok_or(Error::NotFound { entity: kind.name() })?;
        let deleted_visible = matches!(action, Action::Restore | Action::Purge);
        if rec.meta().is_deleted() {
            // A deleted record exists only for those who may see deleted records.
            let sees_deleted =
                self.policy().scope(actor.role, kind.resource(), Action::Restore).covers(actor, &rec.ownership());
            if !deleted_visible || !sees_deleted {
                return Err(Error::NotFound { entity: kind.name() });
            }
        }
        self.policy().authorize_record(actor, kind.resource(), action, &rec.ownership(), kind.name())?;
        Ok(rec)
    }

    /// The time zone the actor's bare dates are read in: their settings' `timezone`, else
    /// UTC. Read only when a date needs it.
    pub(crate) async fn time_zone_of(&self, actor: &Actor) -> Result<chrono_tz::Tz> {
        let user = self.load::<User>(actor.user_id.as_uuid()).await?;
        Ok(user
            .map(|u| crate::model::settings::UserSettings::from_stored(&u.settings).timezone)
            .and_then(|tz| tz.parse().ok())
            .unwrap_or(chrono_tz::Tz::UTC))
    }

    /// The moment a picked date or time means, for the actor: a bare date is read in
    /// their time zone, at its end (`end_of_day`: deadlines) or its start.
    pub(crate) async fn moment(
        &self,
        actor: &Actor,
        when: Option<crate::DateOrTime>,
        end_of_day: bool,
    ) -> Result<Option<DateTime<Utc>>> {
        let Some(w) = when else { return Ok(None) };
        let tz = if w.is_date() { self.time_zone_of(actor).await? } else { chrono_tz::Tz::UTC };
        Ok(Some(if end_of_day { w.end_of_day_in(tz) } else { w.start_of_day_in(tz) }))
    }

    /// The calendar day a picked date or time means, for the actor (a time's day in their
    /// time zone).
    pub(crate) async fn day(&self, actor: &Actor, when: Option<crate::DateOrTime>) -> Result<Option<NaiveDate>> {
        let Some(w) = when else { return Ok(None) };
        let tz = if w.is_date() { chrono_tz::Tz::UTC } else { self.time_zone_of(actor).await? };
        Ok(Some(w.date_in(tz)))
    }

    /// Records an error on `field` unless `id` names a live record the actor may read.
    pub(crate) async fn check_ref<R: Record>(
        &self,
        actor: &Actor,
        id: Uuid,
        field: &str,
        errs: &mut Errors,
    ) -> Result<()> {
        let ok = match self.load::<R>(id).await? {
            Some(r) => {
                !r.meta().is_deleted()
                    && self.policy().scope(actor.role, R::KIND.resource(), Action::Read).covers(actor, &r.ownership())
            }
            None => false,
        };
        if !ok {
            errs.add(field, "not_found", format!("no {} with id {id}", R::KIND.name()));
        }
        Ok(())
    }

    /// The owner (and their team) of a new record: the actor unless another user is
    /// named, who must be assignable and within the actor's `action` scope.
    pub(crate) async fn resolve_owner(
        &self,
        actor: &Actor,
        resource: Resource,
        action: Action,
        requested: Option<UserId>,
        errs: &mut Errors,
    ) -> Result<(UserId, Option<TeamId>)> {
        let Some(owner) = requested.filter(|o| *o != actor.user_id) else {
            return Ok((actor.user_id, actor.team_id));
        };
        match self.check_recipient(actor, resource, action, owner, "ownerId", errs).await? {
            Some(u) => Ok((u.id, u.team_id)),
            None => Ok((owner, None)),
        }
    }

    /// Checks that `user` names an assignable user whom the actor may give a record of
    /// `resource` to, as its owner or assignee: the actor's `action` scope must cover that
    /// user (`Own`: the actor themselves, `Team`: their team, `All`: anyone). A missing
    /// user is an error on `field`; one beyond the actor's scope is forbidden, so nobody
    /// hands records, or access to them, to people outside their reach.
    pub(crate) async fn check_recipient(
        &self,
        actor: &Actor,
        resource: Resource,
        action: Action,
        user: UserId,
        field: &str,
        errs: &mut Errors,
    ) -> Result<Option<User>> {
        let Some(u) = self.check_user(user, field, errs).await? else { return Ok(None) };
        let own = Ownership { owner: Some(u.id), team: u.team_id, assignee: None };
        if !self.policy().scope(actor.role, resource, action).covers(actor, &own) {
            return Err(Error::forbidden(format!(
                "role {} may not give records to this user ({field})",
                actor.role.as_str()
            )));
        }
        Ok(Some(u))
    }

    /// Checks that `user` names an assignable user, recording an error on `field`.
    pub(crate) async fn check_user(&self, user: UserId, field: &str, errs: &mut Errors) -> Result<Option<User>> {
        match self.load::<User>(user.as_uuid()).await? {
            Some(u) if u.is_assignable() => Ok(Some(u)),
            _ => {
                errs.add(field, "not_found", format!("no active user with id {user}"));
                Ok(None)
            }
        }
    }

    /// A page of records the actor may read.
    pub(crate) async fn list_records<R: Record>(&self, actor: &Actor, q: ListQuery) -> Result<Page<R>> {
        let kind = R::KIND;
        let created = kind.column("created_at").map(|c| SortKey { column: c, direction: Direction::Desc });
        self.list_page(actor, kind, q, created.into_iter().collect(), None, None).await
    }

    /// What every read of a list starts from: the actor's scope for `action` as a filter
    /// (deleted records only for those who may restore them), the search's filter (an
    /// error on `q` recorded in `errs`), and the query's sort, else `default_sort`, made
    /// total by the id.
    pub(crate) fn list_basis(
        &self,
        actor: &Actor,
        kind: EntityKind,
        q: &ListQuery,
        action: Action,
        default_sort: Vec<SortKey>,
        errs: &mut Errors,
    ) -> Result<ListBasis> {
        let resource = kind.resource();
        let scope = self.policy().require(actor, resource, action)?;
        if q.include_deleted && self.policy().scope(actor.role, resource, Action::Restore) == Scope::None {
            return Err(Error::forbidden("only managers and admins see deleted records"));
        }
        let mut sort = if q.sort.is_empty() { default_sort } else { q.sort.clone() };
        if !sort.iter().any(|k| k.column.name == "id") {
            let dir = sort.last().map(|k| k.direction).unwrap_or(Direction::Asc);
            sort.push(id_key(kind, dir));
        }
        let search = search_filter(kind, q.search.as_deref(), errs);
        Ok(ListBasis { scoped: scope_filter(kind, scope, actor), search, sort })
    }

    /// The list machinery shared by records and logs: scope, search, sort, keyset, count.
    /// `extra` narrows the list; `shared` names records visible beyond the actor's scope
    /// (saved reports shared with them).
    pub(crate) async fn list_page<T: Persist>(
        &self,
        actor: &Actor,
        kind: EntityKind,
        q: ListQuery,
        default_sort: Vec<SortKey>,
        extra: Option<Filter>,
        shared: Option<Filter>,
    ) -> Result<Page<T>> {
        let mut errs = Errors::new();
        let basis = self.list_basis(actor, kind, &q, Action::Read, default_sort, &mut errs)?;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errs.add("limit", "out_of_range", format!("limit is from 1 to {MAX_LIMIT}"));
        }
        let ListBasis { scoped, search, sort } = basis;
        let position = match &q.after {
            Some(c) => errs.take("after", decode_cursor(&sort, c)),
            None => None,
        };
        errs.finish()?;
        let visible = match (scoped, shared) {
            (Some(scoped), Some(shared)) => Some(Filter::Or(vec![scoped, shared])),
            (scoped, _) => scoped,
        };
        let base = and_opt([q.filter, search, extra, visible]);
        let page_filter = and_opt([base.clone(), position.and_then(|p| keyset_filter(&sort, &p))]);
        let store_q = StoreQuery {
            filter: page_filter,
            sort: sort.clone(),
            limit: limit + 1,
            include_deleted: q.include_deleted,
        };
        let mut rows = self.store().list(kind, &store_q).await?;
        let has_next_page = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let end_cursor = match rows.last() {
            Some(last) => {
                let mut vals = Vec::with_capacity(sort.len());
                for key in &sort {
                    let i = kind
                        .position(key.column.name)
                        .ok_or_else(|| Error::internal_msg("sort column missing from row"))?;
                    vals.push(last.get(i).cloned().unwrap_or(Value::Null));
                }
                Some(encode_cursor(&sort, &vals))
            }
            None => None,
        };
        let total_count =
            if q.count { Some(self.store().count(kind, base.as_ref(), q.include_deleted).await?) } else { None };
        let data = rows.into_iter().map(from_row).collect::<Result<Vec<T>>>()?;
        Ok(Page { data, page_info: PageInfo { has_next_page, end_cursor }, total_count })
    }

    /// An audit event by the actor.
    pub(crate) fn audit_event(
        &self,
        actor: &Actor,
        action: String,
        kind: EntityKind,
        id: Option<Uuid>,
        changes: Json,
    ) -> NewAuditEvent {
        let at = self.now();
        NewAuditEvent {
            id: self.new_id(at),
            at,
            actor_id: Some(actor.user_id),
            actor_role: Some(actor.role.as_str().to_string()),
            action,
            entity_type: kind.name().to_string(),
            entity_id: id,
            changes,
            request: serde_json::to_value(&actor.meta).unwrap_or(Json::Null),
            key: self.audit_key(),
        }
    }

    /// An outbox insert for a domain event.
    pub(crate) fn event(&self, topic: String, kind: EntityKind, id: Uuid, payload: Json) -> Result<Write> {
        let at = self.now();
        let ev = OutboxEvent::new(self.new_id(at), topic, kind, Some(id), payload, at);
        Ok(Write::Insert { kind: EntityKind::OutboxEvent, row: ev.into_row() })
    }

    /// The writes and audit event that create `rec`: the row, its `<kind>.created`
    /// outbox event and audit event.
    pub(crate) fn insert_changes<R: Record>(&self, actor: &Actor, rec: &R, cs: &mut Changeset) -> Result<()> {
        let kind = R::KIND;
        if quiet() {
            cs.writes.push(Write::Insert { kind, row: to_row(rec)? });
            return Ok(());
        }
        let id = rec.id();
        let changes = created(to_json(rec)?);
        let action = format!("{}.created", kind.name());
        cs.writes.push(Write::Insert { kind, row: to_row(rec)? });
        self.change_events(actor, action, kind, id, changes, cs)
    }

    /// The audit event of one change to a record, with its diff, and its outbox event,
    /// which names the audit event and the changed fields (the values stay in the audit log).
    fn change_events(
        &self,
        actor: &Actor,
        action: String,
        kind: EntityKind,
        id: Uuid,
        changes: Json,
        cs: &mut Changeset,
    ) -> Result<()> {
        // A service that wrote a richer event of this very topic (`task.assigned` with the
        // task's name and due date) has announced the change already: one event, not two.
        let announced = announces(cs, &action);
        let audit = self.audit_event(actor, action, kind, Some(id), changes);
        if !announced {
            // The values stay in the audit event: the outbox names it and the changed
            // fields, and dispatch reads the values back (`outbox::with_changes`).
            let changed: Vec<&str> =
                audit.changes.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
            let payload = json!({"id": id, "actorId": actor.user_id, AUDIT_ID: audit.id, "changed": changed});
            cs.writes.push(self.event(audit.action.clone(), kind, id, payload)?);
        }
        cs.audit.push(audit);
        Ok(())
    }

    /// Applies a service's changeset, or, inside [`Crm::staged`], adds it to the staged
    /// changes instead (an all-or-nothing batch applies them together).
    pub(crate) async fn apply_or_stage(&self, cs: Changeset) -> Result<()> {
        if STAGED.try_with(|_| ()).is_ok() {
            STAGED.with(|staged| {
                let staged = &mut staged.borrow_mut().changes;
                staged.writes.extend(cs.writes);
                staged.audit.extend(cs.audit);
            });
            return Ok(());
        }
        self.store().apply(cs).await
    }

    /// Runs `work` (service calls that create, change and delete records) with its writes
    /// staged rather than applied, and answers its result with the changes it staged.
    pub(crate) async fn staged<T>(&self, work: impl std::future::Future<Output = T>) -> (T, Changeset) {
        Self::staging(work, false).await
    }

    /// [`Crm::staged`] without the per-record `<kind>.created` / `<kind>.<verb>` audit
    /// and outbox events: for a caller that records the whole batch in one event.
    pub(crate) async fn staged_quietly<T>(&self, work: impl std::future::Future<Output = T>) -> (T, Changeset) {
        Self::staging(work, true).await
    }

    async fn staging<T>(work: impl std::future::Future<Output = T>, quiet: bool) -> (T, Changeset) {
        STAGED
            .scope(std::cell::RefCell::new(Staging { changes: Changeset::default(), quiet }), async move {
                let out = work.await;
                let staged = STAGED.with(|s| std::mem::take(&mut s.borrow_mut().changes));
                (out, staged)
            })
            .await
    }

    /// Stores a new record with its `<kind>.created` audit and outbox events, plus `extra`.
    pub(crate) async fn commit_insert<R: Record>(&self, actor: &Actor, rec: &R, mut extra: Changeset) -> Result<()> {
        let mut cs = Changeset::default();
        self.insert_changes(actor, rec, &mut cs)?;
        cs.writes.append(&mut extra.writes);
        cs.audit.append(&mut extra.audit);
        self.apply_or_stage(cs).await
    }

    /// Stores many new records, each with its own events, in one atomic write. Rows of one
    /// kind go first, so the store can send them as multi-row inserts.
    pub(crate) async fn commit_inserts<R: Record>(&self, actor: &Actor, recs: &[R]) -> Result<()> {
        let mut rows = Changeset::default();
        let mut events = Vec::with_capacity(recs.len());
        for rec in recs {
            let mut one = Changeset::default();
            self.insert_changes(actor, rec, &mut one)?;
            let mut writes = one.writes.into_iter();
            rows.writes.extend(writes.next());
            events.extend(writes);
            rows.audit.append(&mut one.audit);
        }
        rows.writes.append(&mut events);
        self.store().apply(rows).await
    }

    /// Stores a changed record (version raised, `<kind>.<verb>` audit and outbox events),
    /// plus `extra`. A change that changes nothing writes nothing.
    pub(crate) async fn commit_update<R: Record>(
        &self,
        actor: &Actor,
        before: &R,
        after: R,
        verb: &str,
        mut extra: Changeset,
    ) -> Result<R> {
        match self.update_changes(actor, before, after, verb, &mut extra)? {
            Some(after) => {
                self.apply_or_stage(extra).await?;
                Ok(after)
            }
            None => Ok(before.clone()),
        }
    }

    /// Adds to `cs` the write and events of a change to a record (version raised,
    /// `<kind>.<verb>` audit and outbox events) and answers the changed record; `None`
    /// when nothing changed and `cs` holds nothing else either.
    pub(crate) fn update_changes<R: Record>(
        &self,
        actor: &Actor,
        before: &R,
        mut after: R,
        verb: &str,
        cs: &mut Changeset,
    ) -> Result<Option<R>> {
        let kind = R::KIND;
        let id = before.id();
        let changes = diff(Some(&to_json(before)?), Some(&to_json(&after)?));
        if changes.as_object().is_some_and(|m| m.is_empty()) && cs.is_empty() {
            return Ok(None);
        }
        let meta = after.meta_mut();
        meta.version = before.meta().version + 1;
        meta.updated_at = self.now();
        meta.updated_by = Some(actor.user_id);
        let action = format!("{}.{verb}", kind.name());
        cs.writes.insert(0, Write::Update { kind, row: to_row(&after)?, expected_version: before.meta().version });
        let mut events = Changeset::default();
        if announces(cs, &action) {
            events.writes.extend(cs.writes.iter().filter(|w| is_event(w, &action)).cloned());
            cs.writes.retain(|w| !is_event(w, &action));
        }
        if !quiet() {
            self.change_events(actor, action, kind, id, changes, &mut events)?;
        }
        cs.writes.extend(events.writes);
        // The record's own event first, then whatever the caller added.
        for (i, ev) in events.audit.into_iter().enumerate() {
            cs.audit.insert(i, ev);
        }
        Ok(Some(after))
    }

    /// The first row of `T` whose `column` equals `value` (soft-deleted rows included).
    pub(crate) async fn find_by<T: Persist>(&self, column: &str, value: Value) -> Result<Option<T>> {
        Ok(self.find_all_by::<T>(column, value, 1).await?.pop())
    }

    /// Up to `limit` rows of `T` whose `column` equals `value`, in id order.
    pub(crate) async fn find_all_by<T: Persist>(&self, column: &str, value: Value, limit: u32) -> Result<Vec<T>> {
        let kind = T::KIND;
        let column =
            kind.column(column).ok_or_else(|| Error::internal_msg(format!("{} has no {column}", kind.name())))?;
        let q = StoreQuery {
            filter: Some(Filter::Cmp(Cmp { column, pred: Predicate::Eq(value) })),
            sort: vec![id_key(kind, Direction::Asc)],
            limit,
            include_deleted: true,
        };
        self.store().list_as::<T>(&q).await
    }

    /// Soft-deletes a record.
    pub(crate) async fn soft_delete<R: Record>(
        &self,
        actor: &Actor,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<R> {
        let before: R = self.authorized(actor, id, Action::Delete).await?;
        check_version(expected_version, before.meta().version)?;
        let mut after = before.clone();
        after.meta_mut().deleted_at = Some(self.now());
        after.meta_mut().deleted_by = Some(actor.user_id);
        self.commit_update(actor, &before, after, "deleted", Changeset::default()).await
    }

    /// Restores a soft-deleted record (a live one is returned as it is). A unique key now
    /// held by another record is a conflict.
    pub(crate) async fn restore_record<R: Record>(&self, actor: &Actor, id: Uuid) -> Result<R> {
        let before: R = self.authorized(actor, id, Action::Restore).await?;
        if !before.meta().is_deleted() {
            return Ok(before);
        }
        let mut after = before.clone();
        after.meta_mut().deleted_at = None;
        after.meta_mut().deleted_by = None;
        self.commit_update(actor, &before, after, "restored", Changeset::default()).await
    }

    /// Removes a record for good, with `cascade` writes (children, references). The audit
    /// event keeps that it happened, not the data.
    pub(crate) async fn purge_record<R: Record>(&self, actor: &Actor, id: Uuid, cascade: Vec<Write>) -> Result<()> {
        let kind = R::KIND;
        let _rec: R = self.authorized(actor, id, Action::Purge).await?;
        let action = format!("{}.purged", kind.name());
        let mut cs = Changeset::default();
        cs.writes.push(Write::Purge { kind, column: "id", id });
        cs.writes.extend(cascade);
        // Its files go with it, bytes too (once the rows are gone).
        let (files, blobs) = if crate::bulk::attachments::attachable::<R>() {
            self.purge_files_of(id).await?
        } else {
            Default::default()
        };
        cs.writes.extend(files);
        cs.writes.push(self.event(action.clone(), kind, id, json!({"id": id, "actorId": actor.user_id}))?);
        cs.audit.push(self.audit_event(actor, action, kind, Some(id), json!({"files": blobs.len()})));
        self.store().apply(cs).await?;
        for key in blobs {
            self.blobs().delete(&key).await?;
        }
        Ok(())
    }
}

/// See [`Crm::list_basis`].
pub(crate) struct ListBasis {
    /// The actor's scope (`None`: everything).
    pub scoped: Option<Filter>,
    /// The free-text search.
    pub search: Option<Filter>,
    /// The sort, ending on the id.
    pub sort: Vec<SortKey>,
}

/// The filter of a list's free-text search (`q`): the search text contains it, in any
/// case. Text of more than 200 characters is an error on `q`.
pub(crate) fn search_filter(kind: EntityKind, q: Option<&str>, errs: &mut Errors) -> Option<Filter> {
    match q.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > 200 => {
            errs.add("q", "too_long", "search text has at most 200 characters");
            None
        }
        Some(s) => kind
            .column("search_text")
            .map(|column| Filter::Cmp(Cmp { column, pred: Predicate::Like(Pattern::contains(&s.to_lowercase())) })),
        None => None,
    }
}

/// The filter that keeps a list inside the actor's scope (`None` for `All`).
pub(crate) fn scope_filter(kind: EntityKind, scope: Scope, actor: &Actor) -> Option<Filter> {
    let col_eq = |name: Option<&'static str>, v: Uuid| {
        name.and_then(|n| kind.column(n)).map(|column| Filter::Cmp(Cmp { column, pred: Predicate::Eq(Value::Uuid(v)) }))
    };
    let (owner, team, assignee) = kind.ownership_columns();
    let mut any: Vec<Filter> = Vec::new();
    if scope >= Scope::Own {
        any.extend(col_eq(owner, actor.user_id.as_uuid()));
        any.extend(col_eq(assignee, actor.user_id.as_uuid()));
    }
    if scope >= Scope::Team {
        if let Some(t) = actor.team_id {
            any.extend(col_eq(team, t.as_uuid()));
        }
    }
    match scope {
        Scope::All => None,
        _ if any.is_empty() => {
            // No column can match: nothing is visible.
            let column = kind.columns().first()?;
            Some(Filter::And(vec![
                Filter::Cmp(Cmp { column, pred: Predicate::IsNull }),
                Filter::Cmp(Cmp { column, pred: Predicate::IsNotNull }),
            ]))
        }
        _ if any.len() == 1 => any.pop(),
        _ => Some(Filter::Or(any)),
    }
}

/// Is this write the outbox event of `topic`?
fn is_event(w: &Write, topic: &str) -> bool {
    let k = EntityKind::OutboxEvent;
    let Some(at) = k.columns().iter().position(|c| c.name == "topic") else { return false };
    matches!(w, Write::Insert { kind, row } if *kind == k && matches!(row.get(at), Some(Value::Text(t)) if t == topic))
}

/// Does `cs` hold an outbox event of `topic`?
fn announces(cs: &Changeset, topic: &str) -> bool {
    cs.writes.iter().any(|w| is_event(w, topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_records_diff_is_the_general_diff_from_nothing() {
        let rec = json!({
            "id": "c1", "name": "Ann", "email": null, "version": 1, "updatedAt": "2026-12-07T00:00:00Z",
            "updatedBy": null, "passwordHash": "$argon2id$...", "tags": ["a", "b"], "customFields": {"tier": 2},
            "score": 0, "active": false,
        });
        let made = created(rec.clone());
        assert_eq!(made, diff(None, Some(&rec)));
        assert_eq!(made["passwordHash"], json!({"before": null, "after": "[redacted]"}));
        assert_eq!(made["score"], json!({"before": null, "after": 0}));
        assert!(made.get("email").is_none() && made.get("version").is_none() && made.get("updatedAt").is_none());
        assert_eq!(created(Json::Null), json!({}));
    }
}
