//! Who is told of an event, and how: the notification rules, read against each
//! recipient's preferences (event × channel, see [`UserSettings`]).
//!
//! - `task.assigned`: the assignee;
//! - `task.due` (written by [`super::DeliveryEngine::remind_once`]): the assignee, or the
//!   owner of a task nobody is assigned;
//! - `deal.stage_changed`: the deal's owner, as `deal.won`, `deal.lost` or
//!   `deal.stage_changed`;
//! - a contact or deal created for, or handed to, another user: that user
//!   (`contact.assigned`, `deal.assigned`);
//! - any other change to a contact, company, deal or task: its owner (`record.changed`);
//! - `invoice.paid` (an invoice settled in full, online or by hand): the invoice's owner;
//! - a password changed, or a change of address asked for: the account's user
//!   (`account.security`, in the app and on chat; the security email itself always goes).
//!
//! The actor is never told of their own change (security notices excepted), and accounts
//! that are not active get nothing. An event set to `digest` on a channel waits as a
//! `digest` delivery until the user's next digest hour; [`super::DeliveryEngine`] then
//! gathers each user's waiting ones into one message per channel.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use crate::error::Result;
use crate::model::delivery::{ChatChannel, Notification};
use crate::model::settings::{Frequency, UserSettings};
use crate::model::user::{User, UserStatus};
use crate::outbox::OutboxEvent;
use crate::query::{Cmp, Filter, Predicate, StoreQuery};
use crate::schema::{EntityKind, Value};
use crate::service::Crm;
use crate::store::StoreExt;

/// One thing to do for one recipient.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// A notification in the app, stored at once.
    InApp(Notification),
    /// A message through a delivery channel (`email`, `slack`, `teams`).
    Send {
        /// The channel.
        consumer: &'static str,
        /// The user told.
        target: Uuid,
        /// The preference event (`deal.won`).
        topic: String,
        /// What the channel renders.
        payload: Json,
    },
    /// A message held for the user's next digest on a channel (`email`, `slack`, `teams`).
    Digest {
        /// The user told.
        target: Uuid,
        /// The preference event.
        topic: String,
        /// What the digest lists of it (its `channel` among it).
        payload: Json,
        /// When the digest goes out.
        at: DateTime<Utc>,
    },
}

/// The consumer name of messages held for a digest (no channel sends them: the engine
/// gathers them).
pub const DIGEST: &str = "digest";

/// Plans the notifications of events, remembering the users it read.
pub struct Planner<'a> {
    crm: &'a Crm,
    users: HashMap<Uuid, Option<User>>,
    /// (user or team, provider) → its chat channel.
    chats: HashMap<(Uuid, &'static str), Option<Uuid>>,
}

impl std::fmt::Debug for Planner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner").finish_non_exhaustive()
    }
}

fn uuid_at(v: &Json, path: &[&str]) -> Option<Uuid> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().and_then(|s| Uuid::parse_str(s).ok())
}

/// The record kinds whose changes notify their owner.
const OWNED_KINDS: [EntityKind; 4] = [EntityKind::Contact, EntityKind::Company, EntityKind::Deal, EntityKind::Task];

impl<'a> Planner<'a> {
    /// A planner for `crm`.
    pub fn new(crm: &'a Crm) -> Self {
        Self { crm, users: HashMap::new(), chats: HashMap::new() }
    }

    async fn user(&mut self, id: Uuid) -> Result<Option<User>> {
        if let Some(u) = self.users.get(&id) {
            return Ok(u.clone());
        }
        let u = self.crm.store().get_as::<User>(id).await?;
        self.users.insert(id, u.clone());
        Ok(u)
    }

    /// The chat channel of a user or team for a provider.
    pub async fn chat(&mut self, owner: Uuid, provider: &'static str) -> Result<Option<Uuid>> {
        if let Some(c) = self.chats.get(&(owner, provider)) {
            return Ok(*c);
        }
        let k = EntityKind::ChatChannel;
        let q = StoreQuery {
            filter: Some(Filter::And(vec![
                Filter::Cmp(Cmp { column: k.require_column("scope_id")?, pred: Predicate::Eq(Value::Uuid(owner)) }),
                Filter::Cmp(Cmp {
                    column: k.require_column("provider")?,
                    pred: Predicate::Eq(Value::Text(provider.into())),
                }),
            ])),
            sort: vec![],
            limit: 1,
            include_deleted: true,
        };
        let found = self.crm.store().list_as::<ChatChannel>(&q).await?.first().map(|c| c.id);
        self.chats.insert((owner, provider), found);
        Ok(found)
    }

    /// A deal's team, for its team's chat channels.
    async fn team_of(&self, kind: EntityKind, id: Uuid) -> Result<Option<Uuid>> {
        let Some(row) = self.crm.store().get(kind, id).await? else { return Ok(None) };
        let at = kind.ownership_columns().1.and_then(|name| kind.columns().iter().position(|c| c.name == name));
        Ok(at.and_then(|i| match row.get(i) {
            Some(Value::Uuid(u)) => Some(*u),
            _ => None,
        }))
    }

    /// A record's (owner, label), read from its row.
    async fn owner_and_label(&self, kind: EntityKind, id: Uuid) -> Result<(Option<Uuid>, Option<String>)> {
        let Some(row) = self.crm.store().get(kind, id).await? else { return Ok((None, None)) };
        let at = |name: &str| kind.columns().iter().position(|c| c.name == name).and_then(|i| row.get(i));
        let owner = kind.ownership_columns().0.and_then(at).and_then(|v| match v {
            Value::Uuid(u) => Some(*u),
            _ => None,
        });
        let label = at("name").and_then(|v| match v {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        });
        Ok((owner, label))
    }

    /// The (recipient, preference event) pairs of an event.
    async fn recipients(&self, ev: &OutboxEvent) -> Result<(Vec<(Uuid, &'static str)>, Option<String>)> {
        let p = &ev.payload;
        if ev.topic == super::MAIL_TOPIC {
            let security =
                matches!(p.get("template").and_then(Json::as_str), Some("password_changed" | "email_change_notice"));
            return Ok((
                ev.entity_id.filter(|_| security).map(|u| (u, "account.security")).into_iter().collect(),
                None,
            ));
        }
        let actor = uuid_at(p, &["actorId"]);
        if ev.topic == "invoice.paid" {
            // The invoice's owner (its deal's, company's or contact's), unless they
            // recorded the payment themselves.
            let owner = uuid_at(p, &["ownerId"]).filter(|o| Some(*o) != actor);
            let label = p.get("number").and_then(Json::as_str).map(str::to_string);
            return Ok((owner.map(|o| (o, "invoice.paid")).into_iter().collect(), label));
        }
        let Some(kind) = EntityKind::ALL.into_iter().find(|k| k.name() == ev.entity_type) else {
            return Ok((vec![], None));
        };
        if !OWNED_KINDS.contains(&kind) {
            return Ok((vec![], None));
        }
        let Some(id) = ev.entity_id else { return Ok((vec![], None)) };
        let verb = ev.topic.split_once('.').map(|(_, v)| v).unwrap_or_default();
        let handed = uuid_at(p, &["changes", "ownerId", "after"]);
        let assigned = match kind {
            EntityKind::Contact => Some("contact.assigned"),
            EntityKind::Deal => Some("deal.assigned"),
            _ => None,
        };
        let handover = handed.zip(assigned);
        // Whom to tell, by rule; the record is read only for rules about its owner.
        let (to_owner, event): (bool, Option<&'static str>) = match ev.topic.as_str() {
            "task.assigned" => (false, Some("task.assigned")),
            "task.due" => (false, Some("task.due")),
            "deal.stage_changed" => (
                true,
                Some(match p.get("to").and_then(Json::as_str) {
                    Some("closed_won") => "deal.won",
                    Some("closed_lost") => "deal.lost",
                    _ => "deal.stage_changed",
                }),
            ),
            _ if (verb == "created" || verb == "updated") && handover.is_some() => (false, handover.map(|(_, e)| e)),
            // A task's assignee hears through `task.assigned`; a stage change through
            // `deal.stage_changed`.
            _ if verb == "updated" && !only_stage(p) => (true, Some("record.changed")),
            _ if verb == "deleted" || verb == "restored" => (true, Some("record.changed")),
            _ => (false, None),
        };
        let Some(event) = event else { return Ok((vec![], None)) };
        let (owner, mut label) = if to_owner { self.owner_and_label(kind, id).await? } else { (None, None) };
        let mut out: Vec<(Uuid, &'static str)> = Vec::new();
        let recipient = match event {
            "task.assigned" | "task.due" => uuid_at(p, &["assignedUser"]),
            _ if to_owner => owner,
            _ => handover.map(|(to, _)| to),
        };
        out.extend(recipient.filter(|u| Some(*u) != actor).map(|u| (u, event)));
        if out.is_empty() {
            return Ok((out, None));
        }
        if label.is_none() {
            let named = p.get("name").or_else(|| p.pointer("/changes/name/after")).and_then(Json::as_str);
            label = match named {
                Some(n) => Some(n.to_string()),
                None => self.owner_and_label(kind, id).await?.1,
            };
        }
        Ok((out, label))
    }

    /// What to do for an event.
    pub async fn plan(&mut self, ev: &OutboxEvent) -> Result<Vec<Planned>> {
        let mut out = self.team_posts(ev).await?;
        let (recipients, label) = self.recipients(ev).await?;
        for (user_id, event) in recipients {
            let Some(user) = self.user(user_id).await? else { continue };
            if user.status != UserStatus::Active {
                continue;
            }
            let settings = UserSettings::from_stored(&user.settings);
            let actor_name = match uuid_at(&ev.payload, &["actorId"]) {
                Some(a) => self.user(a).await?.map(|u| u.username),
                None => None,
            };
            let text = texts(event, &settings.language, label.as_deref(), actor_name.as_deref(), &ev.payload);
            let link = link(&ev.entity_type, ev.entity_id);
            for channel in crate::model::settings::CHANNELS {
                let frequency = settings.wants(event, channel);
                // The security email is the queued account email itself.
                if frequency == Frequency::Off || (event == "account.security" && channel == "email") {
                    continue;
                }
                if channel == "in_app" {
                    let at = self.crm.now();
                    out.push(Planned::InApp(Notification {
                        id: self.crm.new_id(at),
                        user_id,
                        event_id: ev.id,
                        topic: event.to_string(),
                        entity_type: ev.entity_type.clone(),
                        entity_id: ev.entity_id,
                        title: text.0.clone(),
                        body: text.1.clone(),
                        link: link.clone(),
                        created_at: at,
                        read_at: None,
                        version: 1,
                    }));
                    continue;
                }
                let payload = json!({
                    "event": event,
                    "title": text.0,
                    "body": text.1,
                    "link": link,
                    "lang": settings.language,
                    "entityType": ev.entity_type,
                    "entityId": ev.entity_id,
                    "channel": channel,
                    "at": ev.created_at,
                });
                if frequency == Frequency::Digest {
                    let at = settings.next_digest(self.crm.now());
                    out.push(Planned::Digest { target: user_id, topic: event.to_string(), payload, at });
                    continue;
                }
                // Email goes to the user; a chat post to the webhook they set (none: nothing).
                let (consumer, target) = match channel {
                    "email" => ("email", user_id),
                    "slack" | "teams" => {
                        let provider = if channel == "slack" { "slack" } else { "teams" };
                        match self.chat(user_id, provider).await? {
                            Some(c) => (provider, c),
                            None => continue,
                        }
                    }
                    _ => continue,
                };
                out.push(Planned::Send { consumer, target, topic: event.to_string(), payload });
            }
        }
        Ok(out)
    }
}

impl Planner<'_> {
    /// A deal won or lost is posted to its team's chat channels (in English: a channel
    /// has no language of its own), whoever moved it.
    async fn team_posts(&mut self, ev: &OutboxEvent) -> Result<Vec<Planned>> {
        let event = match (ev.topic.as_str(), ev.payload.get("to").and_then(Json::as_str)) {
            ("deal.stage_changed", Some("closed_won")) => "deal.won",
            ("deal.stage_changed", Some("closed_lost")) => "deal.lost",
            _ => return Ok(vec![]),
        };
        let Some(id) = ev.entity_id else { return Ok(vec![]) };
        let Some(team) = self.team_of(EntityKind::Deal, id).await? else { return Ok(vec![]) };
        let mut out = Vec::new();
        for provider in ["slack", "teams"] {
            let Some(channel) = self.chat(team, provider).await? else { continue };
            let label = self.owner_and_label(EntityKind::Deal, id).await?.1;
            let actor = match uuid_at(&ev.payload, &["actorId"]) {
                Some(a) => self.user(a).await?.map(|u| u.username),
                None => None,
            };
            let (title, body) = texts(event, "en", label.as_deref(), actor.as_deref(), &ev.payload);
            out.push(Planned::Send {
                consumer: provider,
                target: channel,
                topic: event.to_string(),
                payload: json!({
                    "event": event, "title": title, "body": body, "link": link(&ev.entity_type, ev.entity_id),
                    "lang": "en", "entityType": ev.entity_type, "entityId": ev.entity_id,
                }),
            });
        }
        Ok(out)
    }
}

/// Is this update a stage change alone (told as `deal.stage_changed`)?
fn only_stage(p: &Json) -> bool {
    p.get("changes").and_then(Json::as_object).is_some_and(|c| {
        c.contains_key("stage")
            && c.keys().all(|k| matches!(k.as_str(), "stage" | "stageChangedAt" | "probability" | "closedAt"))
    })
}

/// The path of a record in the web app.
pub fn link(entity_type: &str, id: Option<Uuid>) -> Option<String> {
    let section = match entity_type {
        "contact" => "contacts",
        "company" => "companies",
        "deal" => "deals",
        "task" => "tasks",
        _ => return None,
    };
    Some(match id {
        Some(id) => format!("/{section}/{id}"),
        None => format!("/{section}"),
    })
}

/// The (title, body) of a security notice: a password changed, or else a change of
/// address asked for.
fn security_texts(lang: &str, password: bool) -> (String, String) {
    let (t, b) = match (lang, password) {
        ("fr", true) => (
            "Mot de passe modifié",
            "Le mot de passe de votre compte a été modifié. Si ce n'est pas vous, réinitialisez-le et prévenez un administrateur.",
        ),
        ("fr", false) => (
            "Changement d'adresse demandé",
            "Un changement de l'adresse e-mail de votre compte a été demandé. Si ce n'est pas vous, changez votre mot de passe.",
        ),
        ("ar", true) => ("تم تغيير كلمة المرور", "تم تغيير كلمة مرور حسابك. إن لم تكن أنت، فأعد تعيينها وأبلغ المسؤول."),
        ("ar", false) => (
            "طلب تغيير البريد الإلكتروني",
            "طُلب تغيير عنوان البريد الإلكتروني لحسابك. إن لم تكن أنت، فغيّر كلمة المرور.",
        ),
        (_, true) => (
            "Your password was changed",
            "The password of your account was changed. If it was not you, reset it and tell an administrator.",
        ),
        (_, false) => (
            "A change of your email address was asked for",
            "Someone asked to change your account's email address. If it was not you, change your password.",
        ),
    };
    (t.to_string(), b.to_string())
}

/// The (title, body) of a notification in a language (`en`, `fr`, `ar`).
pub fn texts(event: &str, lang: &str, label: Option<&str>, actor: Option<&str>, p: &Json) -> (String, String) {
    let name = label.unwrap_or("—");
    let who = actor.unwrap_or(match lang {
        "fr" => "Quelqu'un",
        "ar" => "شخص ما",
        _ => "Someone",
    });
    let stage = p.get("to").and_then(Json::as_str).unwrap_or_default().replace('_', " ");
    if event == "account.security" {
        return security_texts(lang, p.get("template").and_then(Json::as_str) == Some("password_changed"));
    }
    if event == "invoice.paid" {
        let amount = match (p.get("total").and_then(Json::as_i64), p.get("currency").and_then(Json::as_str)) {
            (Some(t), Some(c)) => crate::values::Currency::parse(c)
                .map(|c| crate::billing::locale::Locale::of(lang).money(t, &c))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let (t, b) = match lang {
            "fr" => (format!("Facture payée : {name}"), format!("La facture {name} ({amount}) est payée.")),
            "ar" => (format!("فاتورة مدفوعة: {name}"), format!("تم دفع الفاتورة {name} ({amount}).")),
            _ => (format!("Invoice paid: {name}"), format!("Invoice {name} ({amount}) is paid in full.")),
        };
        return (t, b);
    }
    let (title, body) = match (lang, event) {
        ("fr", "task.assigned") => {
            (format!("Tâche assignée : {name}"), format!("{who} vous a assigné la tâche « {name} »."))
        }
        ("fr", "deal.won") => {
            (format!("Affaire gagnée : {name}"), format!("{who} a marqué l'affaire « {name} » comme gagnée."))
        }
        ("fr", "deal.lost") => {
            (format!("Affaire perdue : {name}"), format!("{who} a marqué l'affaire « {name} » comme perdue."))
        }
        ("fr", "deal.stage_changed") => {
            (format!("Affaire : {name}"), format!("{who} a passé l'affaire « {name} » à l'étape {stage}."))
        }
        ("fr", "deal.assigned") => {
            (format!("Affaire confiée : {name}"), format!("{who} vous a confié l'affaire « {name} »."))
        }
        ("fr", "contact.assigned") => {
            (format!("Contact confié : {name}"), format!("{who} vous a confié le contact « {name} »."))
        }
        ("fr", "task.due") => (format!("Tâche à échéance : {name}"), format!("La tâche « {name} » arrive à échéance.")),
        ("fr", _) => (format!("Modifié : {name}"), format!("{who} a modifié « {name} », qui vous appartient.")),
        ("ar", "task.assigned") => (format!("مهمة مسندة إليك: {name}"), format!("أسند إليك {who} المهمة «{name}».")),
        ("ar", "deal.won") => (format!("صفقة رابحة: {name}"), format!("سجّل {who} الصفقة «{name}» كصفقة رابحة.")),
        ("ar", "deal.lost") => (format!("صفقة خاسرة: {name}"), format!("سجّل {who} الصفقة «{name}» كصفقة خاسرة.")),
        ("ar", "deal.stage_changed") => {
            (format!("صفقة: {name}"), format!("نقل {who} الصفقة «{name}» إلى المرحلة {stage}."))
        }
        ("ar", "deal.assigned") => (format!("صفقة أسندت إليك: {name}"), format!("أسند إليك {who} الصفقة «{name}».")),
        ("ar", "contact.assigned") => {
            (format!("جهة اتصال أسندت إليك: {name}"), format!("أسند إليك {who} جهة الاتصال «{name}»."))
        }
        ("ar", "task.due") => (format!("مهمة مستحقة: {name}"), format!("موعد المهمة «{name}» يقترب.")),
        ("ar", _) => (format!("تعديل: {name}"), format!("عدّل {who} «{name}» الذي تملكه.")),
        (_, "task.assigned") => {
            (format!("Task assigned to you: {name}"), format!("{who} assigned you the task “{name}”."))
        }
        (_, "deal.won") => (format!("Deal won: {name}"), format!("{who} marked the deal “{name}” as won.")),
        (_, "deal.lost") => (format!("Deal lost: {name}"), format!("{who} marked the deal “{name}” as lost.")),
        (_, "deal.stage_changed") => {
            (format!("Deal moved: {name}"), format!("{who} moved the deal “{name}” to {stage}."))
        }
        (_, "deal.assigned") => {
            (format!("Deal assigned to you: {name}"), format!("{who} handed you the deal “{name}”."))
        }
        (_, "contact.assigned") => {
            (format!("Contact assigned to you: {name}"), format!("{who} handed you the contact “{name}”."))
        }
        (_, "task.due") => (format!("Task due soon: {name}"), format!("The task “{name}” is due soon.")),
        (_, _) => (format!("Changed: {name}"), format!("{who} changed “{name}”, which you own.")),
    };
    (title, body)
}

/// The title of a digest of `n` notifications in a language.
pub fn digest_title(lang: &str, n: usize) -> String {
    match (lang, n) {
        ("fr", 1) => "Votre récapitulatif : 1 notification".into(),
        ("fr", _) => format!("Votre récapitulatif : {n} notifications"),
        ("ar", _) => format!("ملخّصك: عدد الإشعارات {n}"),
        (_, 1) => "Your digest: 1 notification".into(),
        (_, _) => format!("Your digest: {n} notifications"),
    }
}
