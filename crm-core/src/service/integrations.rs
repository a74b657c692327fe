//! Outgoing webhooks (admins), the delivery queue (admins: list, inspect, replay) and
//! each user's in-app notifications.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::Crm;
use crate::delivery::{signing, ssrf};
use crate::error::{Error, Errors, Result};
use crate::model::delivery::{Delivery, DeliveryState, Notification, Webhook};
use crate::policy::{Action, Actor, Resource};
use crate::query::{Cmp, Direction, Filter, ListQuery, Page, Predicate, SortKey, StoreQuery};
use crate::schema::{to_row, EntityKind, Value};
use crate::store::{Changeset, StoreExt, Write};

/// How long a rotated-out webhook secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// A webhook subscription as callers see it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// The subscription's id.
    pub id: Uuid,
    /// Where events go.
    pub url: String,
    /// The event types sent (`deal.won`, `contact.*`, `*`).
    pub events: Vec<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Paused subscriptions get nothing.
    pub active: bool,
    /// While a rotation overlaps: until when the previous secret still signs.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Version (send it back as `version` to update).
    pub version: i64,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id,
            url: w.url.clone(),
            events: w.events.clone(),
            description: w.description.clone(),
            active: w.active,
            previous_secret_until: w.previous_until,
            created_at: w.created_at,
            updated_at: w.updated_at,
            version: w.version,
        }
    }
}

/// A new subscription, or the fields of one to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookInput {
    /// Where events go: `https://…` (`http://` is accepted for allow-listed receivers).
    pub url: Option<String>,
    /// Event types: `contact.created`, `deal.stage_changed`, `deal.*`, `*`.
    pub events: Option<Vec<String>>,
    /// What it is for.
    pub description: Option<String>,
    /// Paused or not (default: active).
    pub active: Option<bool>,
    /// For updates: the version the change was made from.
    pub version: Option<i64>,
}

/// A subscription with its secret: the answer of creating one, rotating its secret,
/// or asking for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecret {
    /// The subscription.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing secret (`whsec_…`), for the receiver's verifier.
    pub secret: String,
}

/// Outgoing webhook subscriptions: admins (the `Integrations` resource).
#[derive(Debug, Clone, Copy)]
pub struct WebhookService<'a> {
    pub(super) crm: &'a Crm,
}

/// A literal internal address is refused when saved; names are checked at each send.
fn check_literal(guard: &ssrf::Guard, u: &url::Url, errs: &mut Errors) {
    let literal = match u.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if literal.is_some_and(|ip| !guard.permits(ip)) {
        errs.add("url", "forbidden_address", "an internal address; outgoing calls go to public addresses");
    }
}

fn check_input(guard: &ssrf::Guard, input: &WebhookInput, creating: bool, errs: &mut Errors) -> Option<url::Url> {
    let url = match &input.url {
        Some(u) => errs.take("url", ssrf::parse_url(u, "url")),
        None if creating => {
            errs.add("url", "required", "the receiver's URL is required");
            None
        }
        None => None,
    };
    if let Some(u) = &url {
        check_literal(guard, u, errs);
    }
    match &input.events {
        Some(events) if events.is_empty() => errs.add("events", "required", "name at least one event type"),
        Some(events) => {
            for (i, e) in events.iter().enumerate() {
                if !signing::valid_pattern(e) {
                    errs.add(
                        format!("events[{i}]"),
                        "invalid_value",
                        format!(
                            "'{e}' is not an event type: one of GET /api/webhooks/event-types, <kind>.* ({}), or *",
                            signing::PUBLIC_KINDS.join(", ")
                        ),
                    );
                }
            }
            if events.len() > 100 {
                errs.add("events", "too_long", "at most 100 event types");
            }
        }
        None if creating => errs.add("events", "required", "name at least one event type"),
        None => {}
    }
    if input.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        errs.add("description", "too_long", "at most 500 characters");
    }
    url
}

impl WebhookService<'_> {
    fn require(&self, actor: &Actor, action: Action) -> Result<()> {
        self.crm.policy().require(actor, Resource::Integrations, action).map(|_| ())
    }

    fn seal(&self, secret: &str) -> Result<String> {
        self.crm.auth_settings()?.sealer.seal(secret)
    }

    /// The secrets signing a subscription's deliveries now: its own, and the previous
    /// one while the rotation overlaps.
    pub fn secrets(&self, w: &Webhook) -> Result<Vec<String>> {
        let sealer = &self.crm.auth_settings()?.sealer;
        let mut out = vec![sealer.open(&w.secret)?];
        if let (Some(prev), Some(until)) = (&w.previous_secret, w.previous_until) {
            if until > self.crm.now() {
                out.push(sealer.open(prev)?);
            }
        }
        Ok(out)
    }

    /// Subscribes a URL to event types; the answer carries the new secret.
    pub async fn create(&self, actor: &Actor, input: WebhookInput) -> Result<WebhookWithSecret> {
        self.require(actor, Action::Create)?;
        let mut errs = Errors::new();
        let url = check_input(&self.crm.config().outgoing, &input, true, &mut errs);
        errs.finish()?;
        let now = self.crm.now();
        let secret = signing::new_secret()?;
        let w = Webhook {
            id: self.crm.new_id(now),
            url: url.map(|u| u.to_string()).unwrap_or_default(),
            events: input.events.unwrap_or_default(),
            description: input.description,
            active: input.active.unwrap_or(true),
            secret: self.seal(&secret)?,
            previous_secret: None,
            previous_until: None,
            created_at: now,
            updated_at: now,
            created_by: Some(actor.user_id.as_uuid()),
            version: 1,
        };
        let view = WebhookView::from(&w);
        let audit = self.crm.audit_event(
            actor,
            "webhook.created".into(),
            EntityKind::Webhook,
            Some(w.id),
            json!({"url": w.url, "events": w.events}),
        );
        let cs = Changeset {
            writes: vec![Write::Insert { kind: EntityKind::Webhook, row: to_row(&w)? }],
            audit: vec![audit],
        };
        self.crm.store().apply(cs).await?;
        Ok(WebhookWithSecret { webhook: view, secret })
    }

    async fn load(&self, actor: &Actor, id: Uuid, action: Action) -> Result<Webhook> {
        self.require(actor, action)?;
        self.crm.store().get_as::<Webhook>(id).await?.ok_or(Error::NotFound { entity: "webhook" })
    }

    /// Every subscription, oldest first.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<WebhookView>> {
        self.require(actor, Action::Read)?;
        let q = StoreQuery {
            filter: None,
            sort: vec![SortKey { column: EntityKind::Webhook.require_column("id")?, direction: Direction::Asc }],
            limit: 10_000,
            include_deleted: true,
        };
        Ok(self.crm.store().list_as::<Webhook>(&q).await?.iter().map(WebhookView::from).collect())
    }

    /// One subscription.
    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<WebhookView> {
        Ok(WebhookView::from(&self.load(actor, id, Action::Read).await?))
    }

    /// One subscription with its current secret.
    pub async fn secret(&self, actor: &Actor, id: Uuid) -> Result<WebhookWithSecret> {
        let w = self.load(actor, id, Action::Update).await?;
        let secret = self.crm.auth_settings()?.sealer.open(&w.secret)?;
        Ok(WebhookWithSecret { webhook: WebhookView::from(&w), secret })
    }

    async fn save(&self, actor: &Actor, before: &Webhook, after: Webhook, action: &str) -> Result<WebhookView> {
        let audit = self.crm.audit_event(
            actor,
            action.into(),
            EntityKind::Webhook,
            Some(after.id),
            json!({"url": after.url, "events": after.events, "active": after.active}),
        );
        let view = WebhookView::from(&after);
        let write = Write::Update { kind: EntityKind::Webhook, row: to_row(&after)?, expected_version: before.version };
        self.crm.store().apply(Changeset { writes: vec![write], audit: vec![audit] }).await?;
        Ok(view)
    }

    /// Changes a subscription's URL, events, description or state.
    pub async fn update(&self, actor: &Actor, id: Uuid, input: WebhookInput) -> Result<WebhookView> {
        let before = self.load(actor, id, Action::Update).await?;
        if let Some(v) = input.version {
            super::write_path::check_version(Some(v), before.version)?;
        }
        let mut errs = Errors::new();
        let url = check_input(&self.crm.config().outgoing, &input, false, &mut errs);
        errs.finish()?;
        let mut after = before.clone();
        if let Some(u) = url {
            after.url = u.to_string();
        }
        if let Some(e) = input.events {
            after.events = e;
        }
        if input.description.is_some() {
            after.description = input.description;
        }
        if let Some(a) = input.active {
            after.active = a;
        }
        after.updated_at = self.crm.now();
        after.version += 1;
        self.save(actor, &before, after, "webhook.updated").await
    }

    /// A new secret; the old one keeps signing beside it for [`ROTATION_OVERLAP`], so
    /// receivers can switch without missing a message.
    pub async fn rotate_secret(&self, actor: &Actor, id: Uuid) -> Result<WebhookWithSecret> {
        let before = self.load(actor, id, Action::Update).await?;
        let secret = signing::new_secret()?;
        let mut after = before.clone();
        after.previous_secret = Some(before.secret.clone());
        after.previous_until = Some(self.crm.now() + ROTATION_OVERLAP);
        after.secret = self.seal(&secret)?;
        after.updated_at = self.crm.now();
        after.version += 1;
        let view = self.save(actor, &before, after, "webhook.secret_rotated").await?;
        Ok(WebhookWithSecret { webhook: view, secret })
    }

    /// Removes a subscription; its queued deliveries die at their next attempt.
    pub async fn delete(&self, actor: &Actor, id: Uuid) -> Result<()> {
        let w = self.load(actor, id, Action::Delete).await?;
        let audit = self.crm.audit_event(
            actor,
            "webhook.deleted".into(),
            EntityKind::Webhook,
            Some(w.id),
            json!({"url": w.url}),
        );
        let cs = Changeset {
            writes: vec![Write::Purge { kind: EntityKind::Webhook, column: "id", id }],
            audit: vec![audit],
        };
        self.crm.store().apply(cs).await
    }

    /// The deliveries of one subscription, newest first.
    pub async fn deliveries(&self, actor: &Actor, id: Uuid, query: ListQuery) -> Result<Page<Delivery>> {
        self.load(actor, id, Action::Read).await?;
        self.crm.deliveries().list(actor, query, Some(id)).await
    }
}

/// The delivery queue: admins (the `Integrations` resource).
#[derive(Debug, Clone, Copy)]
pub struct DeliveryService<'a> {
    pub(super) crm: &'a Crm,
}

impl DeliveryService<'_> {
    /// Deliveries, newest first; filter on `state`, `consumer`, `topic`, `targetId`,
    /// `eventId`, `attempts`, `createdAt`.
    pub async fn list(&self, actor: &Actor, query: ListQuery, target: Option<Uuid>) -> Result<Page<Delivery>> {
        let k = EntityKind::Delivery;
        let newest = vec![SortKey { column: k.require_column("id")?, direction: Direction::Desc }];
        let extra = match target {
            Some(t) => {
                Some(Filter::Cmp(Cmp { column: k.require_column("target_id")?, pred: Predicate::Eq(Value::Uuid(t)) }))
            }
            None => None,
        };
        self.crm.list_page(actor, k, query, newest, extra, None).await
    }

    /// One delivery.
    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<Delivery> {
        self.crm.policy().require(actor, Resource::Integrations, Action::Read)?;
        self.crm.store().get_as::<Delivery>(id).await?.ok_or(Error::NotFound { entity: "delivery" })
    }

    /// Sends a delivery again: back to pending, due now, its attempts counted afresh.
    pub async fn replay(&self, actor: &Actor, id: Uuid) -> Result<Delivery> {
        self.crm.policy().require(actor, Resource::Integrations, Action::Update)?;
        let before = self.crm.store().get_as::<Delivery>(id).await?.ok_or(Error::NotFound { entity: "delivery" })?;
        if before.state == DeliveryState::Pending && before.attempts == 0 {
            return Ok(before);
        }
        let mut after = before.clone();
        after.state = DeliveryState::Pending;
        after.attempts = 0;
        after.available_at = self.crm.now();
        after.delivered_at = None;
        after.version += 1;
        let audit = self.crm.audit_event(
            actor,
            "delivery.replayed".into(),
            EntityKind::Delivery,
            Some(id),
            json!({"consumer": after.consumer, "topic": after.topic, "was": before.state}),
        );
        let write =
            Write::Update { kind: EntityKind::Delivery, row: to_row(&after)?, expected_version: before.version };
        self.crm.store().apply(Changeset { writes: vec![write], audit: vec![audit] }).await?;
        Ok(after)
    }
}

/// A user's in-app notifications.
#[derive(Debug, Clone, Copy)]
pub struct NotificationService<'a> {
    pub(super) crm: &'a Crm,
}

fn mine(actor: &Actor) -> Result<Filter> {
    Ok(Filter::Cmp(Cmp {
        column: EntityKind::Notification.require_column("user_id")?,
        pred: Predicate::Eq(Value::Uuid(actor.user_id.as_uuid())),
    }))
}

fn unread() -> Result<Filter> {
    Ok(Filter::Cmp(Cmp { column: EntityKind::Notification.require_column("read_at")?, pred: Predicate::IsNull }))
}

impl NotificationService<'_> {
    /// The actor's notifications, newest first (`unread_only`: those not read yet).
    pub async fn list(&self, actor: &Actor, query: ListQuery, unread_only: bool) -> Result<Page<Notification>> {
        let k = EntityKind::Notification;
        let newest = vec![SortKey { column: k.require_column("id")?, direction: Direction::Desc }];
        let extra = if unread_only { Filter::And(vec![mine(actor)?, unread()?]) } else { mine(actor)? };
        self.crm.list_page(actor, k, query, newest, Some(extra), None).await
    }

    /// How many the actor has not read.
    pub async fn unread_count(&self, actor: &Actor) -> Result<u64> {
        let f = Filter::And(vec![mine(actor)?, unread()?]);
        self.crm.store().count(EntityKind::Notification, Some(&f), true).await
    }

    /// Marks one read (it must be the actor's).
    pub async fn read(&self, actor: &Actor, id: Uuid) -> Result<Notification> {
        let n = self.crm.store().get_as::<Notification>(id).await?;
        let Some(before) = n.filter(|n| n.user_id == actor.user_id.as_uuid()) else {
            return Err(Error::NotFound { entity: "notification" });
        };
        if before.read_at.is_some() {
            return Ok(before);
        }
        let mut after = before.clone();
        after.read_at = Some(self.crm.now());
        after.version += 1;
        let write =
            Write::Update { kind: EntityKind::Notification, row: to_row(&after)?, expected_version: before.version };
        self.crm.store().apply(Changeset { writes: vec![write], audit: vec![] }).await?;
        Ok(after)
    }

    /// Marks every one of the actor's read; returns how many were unread.
    pub async fn read_all(&self, actor: &Actor) -> Result<u64> {
        let now = self.crm.now();
        let mut total = 0;
        loop {
            let q = StoreQuery {
                filter: Some(Filter::And(vec![mine(actor)?, unread()?])),
                sort: vec![],
                limit: 500,
                include_deleted: true,
            };
            let batch = self.crm.store().list_as::<Notification>(&q).await?;
            if batch.is_empty() {
                return Ok(total);
            }
            let mut writes = Vec::with_capacity(batch.len());
            for n in &batch {
                let mut after = n.clone();
                after.read_at = Some(now);
                after.version += 1;
                writes.push(Write::Update {
                    kind: EntityKind::Notification,
                    row: to_row(&after)?,
                    expected_version: n.version,
                });
            }
            match self.crm.store().apply(Changeset { writes, audit: vec![] }).await {
                Ok(()) => total += batch.len() as u64,
                // Read meanwhile elsewhere: look again.
                Err(Error::VersionConflict { .. } | Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whose chat channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOwner {
    /// A user's own (their direct messages, or a channel of theirs).
    User(crate::ids::UserId),
    /// A team's channel: deals of the team won or lost are posted there.
    Team(crate::ids::TeamId),
}

impl ChannelOwner {
    fn parts(&self) -> (&'static str, Uuid) {
        match self {
            ChannelOwner::User(u) => ("user", u.as_uuid()),
            ChannelOwner::Team(t) => ("team", t.as_uuid()),
        }
    }
}

/// A chat channel as callers see it: where it posts, never the whole URL or the token
/// (credentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChatChannelView {
    /// `slack` or `teams`.
    pub provider: String,
    /// `webhook` (an incoming webhook or a Teams workflow) or `bot` (a Slack bot token
    /// posting with `chat.postMessage`).
    pub via: String,
    /// The webhook's host (`hooks.slack.com`); `slack.com` for a bot.
    pub host: String,
    /// The Slack channel a bot posts to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// When it was set.
    pub updated_at: DateTime<Utc>,
}

/// The body setting a chat channel: a webhook `url`, or (Slack) a bot `token` and the
/// `channel` it posts to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatChannelInput {
    /// The incoming-webhook URL of a Slack app, or the URL of a Teams workflow
    /// ("Post to a channel when a webhook request is received").
    #[serde(default)]
    pub url: Option<String>,
    /// Slack only: a bot token (`xoxb-…`) with the `chat:write` scope, instead of a URL.
    #[serde(default)]
    pub token: Option<String>,
    /// Slack only, with `token`: the channel to post to (its id, `C0123456789`, or
    /// `#name`); the bot must be a member.
    #[serde(default)]
    pub channel: Option<String>,
}

impl ChatChannelInput {
    /// An incoming webhook or Teams workflow.
    pub fn webhook(url: impl Into<String>) -> Self {
        Self { url: Some(url.into()), ..Self::default() }
    }

    /// A Slack bot posting to `channel`.
    pub fn bot(token: impl Into<String>, channel: impl Into<String>) -> Self {
        Self { url: None, token: Some(token.into()), channel: Some(channel.into()) }
    }
}

/// Where a checked chat channel posts: a URL, or a bot's token and channel.
enum ChatTarget {
    Webhook(url::Url),
    Bot { token: String, channel: String },
}

/// Checks a chat channel's input, every field at once.
fn check_chat(
    guard: &ssrf::Guard,
    provider: Option<crate::model::delivery::ChatProvider>,
    input: &ChatChannelInput,
    errs: &mut Errors,
) -> Option<ChatTarget> {
    use crate::model::delivery::ChatProvider;
    let slack = provider == Some(ChatProvider::Slack);
    match (&input.url, &input.token, &input.channel) {
        (Some(u), None, None) => {
            let url = errs.take("url", ssrf::parse_url(u, "url"));
            if let Some(u) = &url {
                check_literal(guard, u, errs);
            }
            url.map(ChatTarget::Webhook)
        }
        (Some(_), _, _) => {
            let other = if input.token.is_some() { "token" } else { "channel" };
            errs.add(other, "invalid_value", "give a webhook url, or a bot token and channel, not both");
            None
        }
        (None, token, channel) if !slack && provider.is_some() => {
            if token.is_some() || channel.is_some() {
                let f = if token.is_some() { "token" } else { "channel" };
                errs.add(f, "invalid_value", "Teams posts through a workflow's webhook url; bots are for Slack");
            } else {
                errs.add("url", "required", "the workflow's webhook url is required");
            }
            None
        }
        (None, None, None) => {
            errs.add("url", "required", "give a webhook url, or (Slack) a bot token and channel");
            None
        }
        (None, token, channel) => {
            let token = match token.as_deref().map(str::trim) {
                None => {
                    errs.add("token", "required", "a bot token goes with the channel");
                    None
                }
                Some(t) if !(t.starts_with("xoxb-") || t.starts_with("xoxp-")) || t.len() > 255 => {
                    errs.add(
                        "token",
                        "invalid_value",
                        "a Slack bot token starts with xoxb- (or a user token with xoxp-)",
                    );
                    None
                }
                Some(t) if t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                    errs.add("token", "invalid_value", "a token has no spaces");
                    None
                }
                Some(t) => Some(t.to_string()),
            };
            let channel = match channel.as_deref().map(str::trim) {
                None | Some("") => {
                    errs.add("channel", "required", "the Slack channel to post to (C0123456789 or #name)");
                    None
                }
                Some(c) if c.len() > 80 || c.chars().any(|ch| ch.is_whitespace() || ch.is_control()) => {
                    errs.add("channel", "invalid_value", "a channel id (C0123456789) or #name, without spaces");
                    None
                }
                Some(c) => Some(c.to_string()),
            };
            token.zip(channel).map(|(token, channel)| ChatTarget::Bot { token, channel })
        }
    }
}

/// Slack and Teams webhooks: each user sets their own; admins set teams'.
#[derive(Debug, Clone, Copy)]
pub struct ChatChannelService<'a> {
    pub(super) crm: &'a Crm,
}

fn channel_filter(owner: Uuid, provider: Option<&str>) -> Result<Filter> {
    let k = EntityKind::ChatChannel;
    let mut parts =
        vec![Filter::Cmp(Cmp { column: k.require_column("scope_id")?, pred: Predicate::Eq(Value::Uuid(owner)) })];
    if let Some(p) = provider {
        parts.push(Filter::Cmp(Cmp {
            column: k.require_column("provider")?,
            pred: Predicate::Eq(Value::Text(p.into())),
        }));
    }
    Ok(Filter::And(parts))
}

impl ChatChannelService<'_> {
    /// Users manage their own; a team's, and other users', take the `Integrations`
    /// right (admins).
    async fn authorize(&self, actor: &Actor, owner: ChannelOwner, action: Action) -> Result<()> {
        if owner == ChannelOwner::User(actor.user_id) {
            return Ok(());
        }
        self.crm.policy().require(actor, Resource::Integrations, action)?;
        let exists = match owner {
            ChannelOwner::User(u) => self.crm.store().get(EntityKind::User, u.as_uuid()).await?.is_some(),
            ChannelOwner::Team(t) => self.crm.store().get(EntityKind::Team, t.as_uuid()).await?.is_some(),
        };
        match (exists, owner) {
            (true, _) => Ok(()),
            (false, ChannelOwner::User(_)) => Err(Error::NotFound { entity: "user" }),
            (false, ChannelOwner::Team(_)) => Err(Error::NotFound { entity: "team" }),
        }
    }

    fn provider(provider: &str) -> Result<crate::model::delivery::ChatProvider> {
        provider.parse().map_err(|_| Error::invalid("provider", "invalid_value", "one of slack, teams"))
    }

    fn view(&self, c: &crate::model::delivery::ChatChannel) -> ChatChannelView {
        if c.token.is_some() {
            let (via, host) = ("bot".into(), "slack.com".into());
            return ChatChannelView {
                provider: c.provider.clone(),
                via,
                host,
                channel: c.channel.clone(),
                updated_at: c.updated_at,
            };
        }
        let host = self
            .crm
            .auth_settings()
            .and_then(|a| a.sealer.open(&c.url))
            .ok()
            .and_then(|u| url::Url::parse(&u).ok())
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        ChatChannelView {
            provider: c.provider.clone(),
            via: "webhook".into(),
            host,
            channel: None,
            updated_at: c.updated_at,
        }
    }

    async fn find(&self, owner: Uuid, provider: Option<&str>) -> Result<Vec<crate::model::delivery::ChatChannel>> {
        let q = StoreQuery {
            filter: Some(channel_filter(owner, provider)?),
            sort: vec![SortKey {
                column: EntityKind::ChatChannel.require_column("provider")?,
                direction: Direction::Asc,
            }],
            limit: 10,
            include_deleted: true,
        };
        self.crm.store().list_as(&q).await
    }

    /// The channels of a user or team.
    pub async fn list(&self, actor: &Actor, owner: ChannelOwner) -> Result<Vec<ChatChannelView>> {
        self.authorize(actor, owner, Action::Read).await?;
        Ok(self.find(owner.parts().1, None).await?.iter().map(|c| self.view(c)).collect())
    }

    /// Sets (or replaces) where `provider` posts for a user or team.
    pub async fn set(
        &self,
        actor: &Actor,
        owner: ChannelOwner,
        provider: &str,
        input: ChatChannelInput,
    ) -> Result<ChatChannelView> {
        use crate::model::delivery::ChatChannel;
        self.authorize(actor, owner, Action::Update).await?;
        let mut errs = Errors::new();
        let provider = errs.take("provider", Self::provider(provider));
        let target = check_chat(&self.crm.config().outgoing, provider, &input, &mut errs);
        errs.finish()?;
        let (Some(provider), Some(target)) = (provider, target) else {
            return Err(Error::internal_msg("a checked channel lost its provider or target"));
        };
        let (scope, scope_id) = owner.parts();
        let now = self.crm.now();
        let sealer = &self.crm.auth_settings()?.sealer;
        let (sealed, token, channel, via) = match target {
            ChatTarget::Webhook(url) => (sealer.seal(url.as_str())?, None, None, "webhook"),
            ChatTarget::Bot { token, channel } => (String::new(), Some(sealer.seal(&token)?), Some(channel), "bot"),
        };
        let audit_changes = json!({"scope": scope, "provider": provider.as_str(), "via": via});
        let (write, after) = match self.find(scope_id, Some(provider.as_str())).await?.pop() {
            Some(before) => {
                let mut after = before.clone();
                after.url = sealed;
                after.token = token;
                after.channel = channel;
                after.updated_at = now;
                after.version += 1;
                let w = Write::Update {
                    kind: EntityKind::ChatChannel,
                    row: to_row(&after)?,
                    expected_version: before.version,
                };
                (w, after)
            }
            None => {
                let c = ChatChannel {
                    id: self.crm.new_id(now),
                    scope: scope.into(),
                    scope_id,
                    provider: provider.as_str().into(),
                    url: sealed,
                    token,
                    channel,
                    created_at: now,
                    updated_at: now,
                    created_by: Some(actor.user_id.as_uuid()),
                    version: 1,
                };
                (Write::Insert { kind: EntityKind::ChatChannel, row: to_row(&c)? }, c)
            }
        };
        let audit = self.crm.audit_event(
            actor,
            "chat_channel.set".into(),
            EntityKind::ChatChannel,
            Some(after.id),
            audit_changes,
        );
        self.crm.store().apply(Changeset { writes: vec![write], audit: vec![audit] }).await?;
        Ok(self.view(&after))
    }

    /// Removes where `provider` posts for a user or team.
    pub async fn delete(&self, actor: &Actor, owner: ChannelOwner, provider: &str) -> Result<()> {
        self.authorize(actor, owner, Action::Update).await?;
        let provider = Self::provider(provider)?;
        let Some(c) = self.find(owner.parts().1, Some(provider.as_str())).await?.pop() else {
            return Err(Error::NotFound { entity: "chat_channel" });
        };
        let audit = self.crm.audit_event(
            actor,
            "chat_channel.removed".into(),
            EntityKind::ChatChannel,
            Some(c.id),
            json!({"scope": c.scope, "provider": c.provider}),
        );
        let cs = Changeset {
            writes: vec![Write::Purge { kind: EntityKind::ChatChannel, column: "id", id: c.id }],
            audit: vec![audit],
        };
        self.crm.store().apply(cs).await
    }
}
