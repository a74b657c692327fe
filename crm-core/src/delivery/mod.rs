//! The delivery engine: every side effect that leaves the CRM — account emails, webhook
//! calls, notifications by email, Slack and Teams — goes through it.
//!
//! Two steps, each safe to run in any number of workers (threads or `crm-server`
//! replicas) at once:
//! 1. **Dispatch**: each outbox event (written in the same transaction as its change)
//!    becomes the [`Delivery`] rows of its receivers — one per webhook subscription
//!    that wants it, one per notified user and channel, one for a queued email — and
//!    in-app notifications, in one atomic write that also marks the event dispatched.
//!    Two dispatchers racing for one event: the versioned update of the event lets one
//!    commit, the other's whole write is refused.
//! 2. **Deliver**: due deliveries are claimed with a lease ([`Store::claim`]:
//!    PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's single writer, MongoDB
//!    `findOneAndUpdate`), handed to the [`Channel`] of their consumer, and their outcome
//!    recorded: delivered, retried after an exponential backoff with jitter (or the
//!    receiver's `Retry-After`), or dead after [`EngineConfig::max_attempts`]. A worker
//!    that dies mid-send leaves its claim to expire; the delivery is sent again with the
//!    same idempotency key (the event id), so a receiver that remembers keys acts once.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::delivery::{Delivery, DeliveryState, Webhook};
use crate::outbox::OutboxEvent;
use crate::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
use crate::schema::{to_row, EntityKind, Value};
use crate::service::Crm;
use crate::store::{Changeset, Claim, Store, StoreExt, Write};

pub mod notify;
pub mod signing;
pub mod ssrf;
#[cfg(feature = "webhooks")]
pub mod webhook;

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver took it.
    Delivered {
        /// Its HTTP status, for HTTP receivers.
        status: Option<u16>,
    },
    /// It failed; try again later.
    Retry {
        /// Why.
        error: String,
        /// The receiver's HTTP status, if it answered.
        status: Option<u16>,
        /// Not before this long (the receiver's `Retry-After`); the backoff otherwise.
        after: Option<std::time::Duration>,
    },
    /// It can never succeed (a bad address, a refused destination): dead at once.
    Never {
        /// Why.
        error: String,
        /// The receiver's HTTP status, if it answered.
        status: Option<u16>,
    },
}

/// Sends the deliveries of one consumer.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The consumer it serves (`mail`, `webhook`, `email`, `slack`, `teams`).
    fn consumer(&self) -> &'static str;

    /// One attempt.
    async fn deliver(&self, crm: &Crm, delivery: &Delivery) -> Outcome;

    /// Removes from a payload what must not outlive its delivery (a mailed link's
    /// token), once it is delivered or dead. Nothing by default.
    fn redact(&self, _payload: &mut Json) {}
}

/// How the engine paces itself.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Attempts before a delivery is dead.
    pub max_attempts: i64,
    /// How long a claimed delivery is reserved for its worker.
    pub lease: Duration,
    /// Deliveries claimed at once by one worker.
    pub batch: u32,
    /// The first retry's wait; each next one doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// How long delivered and dead deliveries (and dispatched outbox events) are kept.
    pub retention: Duration,
    /// Deliveries attempted at once by one worker.
    pub concurrency: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            lease: Duration::minutes(5),
            batch: 50,
            first_backoff: Duration::seconds(30),
            max_backoff: Duration::hours(1),
            retention: Duration::days(14),
            concurrency: 8,
        }
    }
}

impl EngineConfig {
    /// The wait after `attempts` failed attempts: `first_backoff` doubling up to
    /// `max_backoff`, plus up to a tenth more at random so that receivers coming back
    /// are not hit by every retry at once.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
        let base = self.first_backoff.num_milliseconds().saturating_mul(1i64 << doublings.min(40));
        let base = base.min(self.max_backoff.num_milliseconds());
        let mut r = [0u8; 4];
        let _ = getrandom::getrandom(&mut r);
        let jitter = i64::from(u32::from_le_bytes(r)) % (base / 10).max(1);
        Duration::milliseconds(base + jitter)
    }
}

/// One run of the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Outbox events dispatched into deliveries.
    pub dispatched: usize,
    /// Delivered.
    pub sent: usize,
    /// Failed, to be retried.
    pub retried: usize,
    /// Given up (too many attempts, or a delivery that can never succeed).
    pub abandoned: usize,
    /// Digests gathered (one per user and channel).
    pub digests: usize,
}

/// Every consumer the engine knows of (a channel may serve each).
pub const CONSUMERS: [&str; 6] = ["mail", "email", "webhook", "slack", "teams", notify::DIGEST];

/// The id of the reminder of a task due at `due`: the same for every worker and pass.
fn reminder_id(task: Uuid, due: DateTime<Utc>) -> Uuid {
    crate::ids::derived_id(&[b"task.due:", task.as_bytes(), &due.timestamp_millis().to_be_bytes()])
}

/// The outbox topics queued emails travel under.
pub const MAIL_TOPIC: &str = "mail.send";

/// The engine: dispatches outbox events and delivers them through its channels.
#[derive(Clone)]
pub struct DeliveryEngine {
    crm: Crm,
    channels: HashMap<&'static str, Arc<dyn Channel>>,
    config: EngineConfig,
}

impl std::fmt::Debug for DeliveryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryEngine")
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn col(kind: EntityKind, name: &str) -> Result<&'static crate::schema::Column> {
    kind.require_column(name)
}

fn eq(kind: EntityKind, name: &str, v: Value) -> Result<Filter> {
    Ok(Filter::Cmp(Cmp { column: col(kind, name)?, pred: Predicate::Eq(v) }))
}

impl DeliveryEngine {
    /// An engine for `crm` with no channels yet.
    pub fn new(crm: Crm) -> Self {
        Self { crm, channels: HashMap::new(), config: EngineConfig::default() }
    }

    /// Adds a channel (replacing one of the same consumer).
    pub fn channel(mut self, channel: Arc<dyn Channel>) -> Self {
        self.channels.insert(channel.consumer(), channel);
        self
    }

    /// Sets how the engine paces itself.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The consumers it delivers for.
    pub fn consumers(&self) -> Vec<&'static str> {
        let mut c: Vec<_> = self.channels.keys().copied().collect();
        c.sort_unstable();
        c
    }

    /// The CRM it serves.
    pub fn crm(&self) -> &Crm {
        &self.crm
    }

    /// Dispatches what is due, gathers the digests that are due, then delivers what is
    /// due: one pass.
    pub async fn run_once(&self) -> Result<DeliveryReport> {
        let dispatched = self.dispatch_once().await?;
        let digests = self.digest_once().await?;
        let mut report = self.deliver_once().await?;
        report.dispatched = dispatched;
        report.digests = digests;
        Ok(report)
    }

    /// Turns due outbox events into deliveries (see the module documentation); returns
    /// how many events this worker dispatched.
    pub async fn dispatch_once(&self) -> Result<usize> {
        let store = self.crm.store();
        let now = self.crm.now();
        let k = EntityKind::OutboxEvent;
        let due = |topic: Option<&str>, limit: u32| -> Result<StoreQuery> {
            let mut parts = vec![
                Filter::Cmp(Cmp { column: col(k, "delivered_at")?, pred: Predicate::IsNull }),
                Filter::Cmp(Cmp { column: col(k, "available_at")?, pred: Predicate::Lte(Value::Timestamp(now)) }),
            ];
            if let Some(t) = topic {
                parts.push(eq(k, "topic", Value::Text(t.into()))?);
            }
            Ok(StoreQuery {
                filter: Some(Filter::And(parts)),
                sort: vec![
                    SortKey { column: col(k, "available_at")?, direction: Direction::Asc },
                    SortKey { column: col(k, "id")?, direction: Direction::Asc },
                ],
                limit,
                include_deleted: true,
            })
        };
        // Account emails (a confirmation link, a password reset) first: someone is
        // waiting for them, and a backlog of other events (an import, the demo) must not
        // hold them up.
        let mut events = store.list_as::<OutboxEvent>(&due(Some(MAIL_TOPIC), 50)?).await?;
        let first: std::collections::HashSet<Uuid> = events.iter().map(|e| e.id).collect();
        let rest = store.list_as::<OutboxEvent>(&due(None, 200)?).await?;
        events.extend(rest.into_iter().filter(|e| !first.contains(&e.id)));
        if events.is_empty() {
            return Ok(0);
        }
        let webhooks = self.active_webhooks().await?;
        let mut planner = notify::Planner::new(&self.crm);
        // The deliveries see each change's values, read back from the audit log; the
        // outbox row keeps only their names.
        let full = crate::outbox::with_changes(store, &events).await?;
        let mut done = 0;
        for (ev, full) in events.into_iter().zip(full) {
            let mut cs = Changeset::default();
            for d in self.fan_out(&full, &webhooks, &mut planner, now).await? {
                cs.writes.push(d);
            }
            let mut marked = ev.clone();
            marked.delivered_at = Some(now);
            marked.version += 1;
            // What travels on (a mailed link's sealed token) is in the delivery now.
            if ev.topic == MAIL_TOPIC {
                if let Some(o) = marked.payload.as_object_mut() {
                    o.remove("sealedToken");
                }
            }
            cs.writes.push(Write::Update { kind: k, row: marked.into_row(), expected_version: ev.version });
            match store.apply(cs).await {
                Ok(()) => done += 1,
                // Another dispatcher took it first: its deliveries stand, ours are void.
                Err(Error::VersionConflict { .. } | Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    async fn active_webhooks(&self) -> Result<Vec<Webhook>> {
        let q = StoreQuery {
            filter: Some(eq(EntityKind::Webhook, "active", Value::Bool(true))?),
            sort: vec![SortKey { column: col(EntityKind::Webhook, "id")?, direction: Direction::Asc }],
            limit: 10_000,
            include_deleted: true,
        };
        self.crm.store().list_as::<Webhook>(&q).await
    }

    /// The writes that deliver one event: its deliveries and in-app notifications.
    async fn fan_out(
        &self,
        ev: &OutboxEvent,
        webhooks: &[Webhook],
        planner: &mut notify::Planner<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Write>> {
        let mut out = Vec::new();
        let delivery = |consumer: &str, target: Option<Uuid>, topic: &str, payload: Json| -> Result<Write> {
            Self::queued(self.crm.new_id(now), ev.id, consumer, target, topic, payload, now, now)
        };
        if ev.topic == MAIL_TOPIC {
            // Its target is the user it is about, so erasing them removes it.
            out.push(delivery("mail", ev.entity_id, MAIL_TOPIC, ev.payload.clone())?);
        }
        if signing::is_public_topic(&ev.topic) {
            for w in webhooks.iter().filter(|w| signing::wants(&w.events, &ev.topic)) {
                out.push(delivery("webhook", Some(w.id), &ev.topic, signing::body(ev))?);
            }
        }
        for n in planner.plan(ev).await? {
            match n {
                notify::Planned::InApp(note) => {
                    out.push(Write::Insert { kind: EntityKind::Notification, row: to_row(&note)? });
                }
                notify::Planned::Send { consumer, target, topic, payload } => {
                    out.push(delivery(consumer, Some(target), &topic, payload)?);
                }
                notify::Planned::Digest { target, topic, payload, at } => {
                    let id = self.crm.new_id(now);
                    out.push(Self::queued(id, ev.id, notify::DIGEST, Some(target), &topic, payload, now, at)?);
                }
            }
        }
        Ok(out)
    }

    /// The insert of a pending delivery made `now`, due at `at`.
    #[allow(clippy::too_many_arguments)]
    fn queued(
        id: Uuid,
        event_id: Uuid,
        consumer: &str,
        target: Option<Uuid>,
        topic: &str,
        payload: Json,
        now: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Write> {
        let d = Delivery {
            id,
            event_id,
            consumer: consumer.to_string(),
            target_id: target,
            topic: topic.to_string(),
            payload,
            state: DeliveryState::Pending,
            attempts: 0,
            available_at: at,
            created_at: now,
            delivered_at: None,
            last_error: None,
            last_status: None,
            version: 1,
        };
        Ok(Write::Insert { kind: EntityKind::Delivery, row: to_row(&d)? })
    }

    /// Gathers the held digest messages that are due into one delivery per user and
    /// channel — a digest email, Slack or Teams post listing them — in one atomic write
    /// that also marks them delivered; a second worker gathering the same ones has its
    /// write refused. Returns how many digests it queued.
    pub async fn digest_once(&self) -> Result<usize> {
        use crate::model::settings::UserSettings;
        use crate::model::user::{User, UserStatus};
        let store = self.crm.store();
        let now = self.crm.now();
        let k = EntityKind::Delivery;
        let q = StoreQuery {
            filter: Some(Filter::And(vec![
                eq(k, "state", Value::Text(DeliveryState::Pending.as_str().into()))?,
                eq(k, "consumer", Value::Text(notify::DIGEST.into()))?,
                Filter::Cmp(Cmp { column: col(k, "available_at")?, pred: Predicate::Lte(Value::Timestamp(now)) }),
            ])),
            sort: vec![
                SortKey { column: col(k, "available_at")?, direction: Direction::Asc },
                SortKey { column: col(k, "id")?, direction: Direction::Asc },
            ],
            limit: 2_000,
            include_deleted: true,
        };
        let held = store.list_as::<Delivery>(&q).await?;
        let mut groups: std::collections::BTreeMap<(Uuid, String), Vec<Delivery>> = Default::default();
        for d in held {
            let Some(user) = d.target_id else { continue };
            let channel = d.payload.get("channel").and_then(Json::as_str).unwrap_or("email").to_string();
            groups.entry((user, channel)).or_default().push(d);
        }
        let mut planner = notify::Planner::new(&self.crm);
        let mut queued = 0;
        for ((user_id, channel), items) in groups {
            let user = store.get_as::<User>(user_id).await?.filter(|u| u.status == UserStatus::Active);
            let lang = user.as_ref().map(|u| UserSettings::from_stored(&u.settings).language).unwrap_or_default();
            let (target, missing) = match (channel.as_str(), &user) {
                (_, None) => (None, "the recipient is not an active user".to_string()),
                ("email", Some(_)) => (Some(user_id), String::new()),
                (provider @ ("slack" | "teams"), Some(_)) => {
                    let provider = if provider == "slack" { "slack" } else { "teams" };
                    (planner.chat(user_id, provider).await?, format!("no {provider} channel is set"))
                }
                (other, Some(_)) => (None, format!("no channel {other}")),
            };
            let mut cs = Changeset::default();
            let id = self.crm.new_id(now);
            if let Some(target) = target {
                let list: Vec<Json> = items
                    .iter()
                    .map(|d| {
                        let p = &d.payload;
                        serde_json::json!({
                            "event": d.topic, "title": p.get("title"), "body": p.get("body"),
                            "link": p.get("link"), "at": p.get("at"),
                        })
                    })
                    .collect();
                let payload = serde_json::json!({
                    "title": notify::digest_title(&lang, list.len()),
                    "lang": lang,
                    "channel": channel,
                    "items": list,
                });
                let consumer = match channel.as_str() {
                    "slack" => "slack",
                    "teams" => "teams",
                    _ => "email",
                };
                // A digest is its own event: its id is the idempotency key receivers see.
                cs.writes.push(Self::queued(id, id, consumer, Some(target), notify::DIGEST, payload, now, now)?);
            }
            for d in &items {
                let mut done = d.clone();
                done.version += 1;
                if target.is_some() {
                    done.state = DeliveryState::Delivered;
                    done.delivered_at = Some(now);
                } else {
                    done.state = DeliveryState::Dead;
                    done.last_error = Some(missing.clone());
                }
                cs.writes.push(Write::Update { kind: k, row: to_row(&done)?, expected_version: d.version });
            }
            match store.apply(cs).await {
                Ok(()) if target.is_some() => queued += 1,
                Ok(()) | Err(Error::VersionConflict { .. } | Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(queued)
    }

    /// Writes a `task.due` event for each open task that falls due within its user's
    /// reminder window (`reminderMinutes`, default an hour; the assignee's, or the
    /// owner's when nobody is assigned), once per task and due time: the event's id is
    /// derived from both, so a second pass, another worker or a restart finds it written.
    /// Returns how many it wrote.
    pub async fn remind_once(&self) -> Result<usize> {
        use crate::model::settings::{UserSettings, MAX_REMINDER_MINUTES};
        use crate::model::task::{Task, TaskStatus};
        use crate::model::user::User;
        let store = self.crm.store();
        let now = self.crm.now();
        let k = EntityKind::Task;
        let horizon = now + Duration::minutes(i64::from(MAX_REMINDER_MINUTES));
        let q = StoreQuery {
            filter: Some(Filter::And(vec![
                Filter::Cmp(Cmp { column: col(k, "due_date")?, pred: Predicate::Gte(Value::Timestamp(now)) }),
                Filter::Cmp(Cmp { column: col(k, "due_date")?, pred: Predicate::Lte(Value::Timestamp(horizon)) }),
                Filter::Cmp(Cmp {
                    column: col(k, "status")?,
                    pred: Predicate::In(vec![
                        Value::Text(TaskStatus::Open.as_str().into()),
                        Value::Text(TaskStatus::InProgress.as_str().into()),
                    ]),
                }),
            ])),
            sort: vec![SortKey { column: col(k, "due_date")?, direction: Direction::Asc }],
            limit: 5_000,
            include_deleted: false,
        };
        let mut windows: HashMap<Uuid, Option<Duration>> = HashMap::new();
        let mut written = 0;
        for task in store.list_as::<Task>(&q).await? {
            let Some(due) = task.due_date else { continue };
            let who = task.assigned_user.unwrap_or(task.owner_id).as_uuid();
            let window = match windows.get(&who) {
                Some(w) => *w,
                None => {
                    let w = store
                        .get_as::<User>(who)
                        .await?
                        .map(|u| Duration::minutes(i64::from(UserSettings::from_stored(&u.settings).reminder_minutes)));
                    windows.insert(who, w);
                    w
                }
            };
            if window.is_none_or(|w| due - now > w) {
                continue;
            }
            let id = reminder_id(task.id.as_uuid(), due);
            if store.get(EntityKind::OutboxEvent, id).await?.is_some() {
                continue;
            }
            let ev = OutboxEvent {
                id,
                topic: "task.due".into(),
                entity_type: k.name().into(),
                entity_id: Some(task.id.as_uuid()),
                payload: serde_json::json!({"id": task.id, "name": task.name, "dueDate": due, "assignedUser": who}),
                created_at: now,
                available_at: now,
                attempts: 0,
                delivered_at: None,
                last_error: None,
                version: 1,
            };
            let cs = Changeset {
                writes: vec![Write::Insert { kind: EntityKind::OutboxEvent, row: ev.into_row() }],
                audit: vec![],
            };
            match store.apply(cs).await {
                Ok(()) => written += 1,
                // Written meanwhile by another worker.
                Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Claims and attempts the due deliveries of this engine's consumers, once each.
    pub async fn deliver_once(&self) -> Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        if self.channels.is_empty() {
            return Ok(report);
        }
        let now = self.crm.now();
        let k = EntityKind::Delivery;
        let consumers: Vec<Value> = self.consumers().into_iter().map(|c| Value::Text(c.into())).collect();
        let claim = Claim {
            kind: k,
            query: StoreQuery {
                filter: Some(Filter::And(vec![
                    eq(k, "state", Value::Text(DeliveryState::Pending.as_str().into()))?,
                    Filter::Cmp(Cmp { column: col(k, "available_at")?, pred: Predicate::Lte(Value::Timestamp(now)) }),
                    Filter::Cmp(Cmp { column: col(k, "consumer")?, pred: Predicate::In(consumers) }),
                ])),
                sort: vec![
                    SortKey { column: col(k, "available_at")?, direction: Direction::Asc },
                    SortKey { column: col(k, "id")?, direction: Direction::Asc },
                ],
                limit: self.config.batch,
                include_deleted: true,
            },
            lease_column: "available_at",
            until: now + self.config.lease,
            count_column: Some("attempts"),
        };
        let claimed: Vec<Delivery> =
            self.crm.store().claim(&claim).await?.into_iter().map(crate::schema::from_row).collect::<Result<_>>()?;
        let mut results = Vec::with_capacity(claimed.len());
        for chunk in claimed.chunks(self.config.concurrency.max(1)) {
            let attempts = chunk.iter().map(|d| async move {
                let outcome = match self.channels.get(d.consumer.as_str()) {
                    Some(ch) => ch.deliver(&self.crm, d).await,
                    None => Outcome::Retry { error: "no channel".into(), status: None, after: None },
                };
                (d, outcome)
            });
            results.extend(futures_util::future::join_all(attempts).await);
        }
        for (d, outcome) in results {
            match self.record(d, outcome).await? {
                Some(DeliveryState::Delivered) => report.sent += 1,
                Some(DeliveryState::Dead) => report.abandoned += 1,
                Some(DeliveryState::Pending) => report.retried += 1,
                None => {}
            }
        }
        Ok(report)
    }

    /// Writes the outcome of an attempt on the claimed copy; `None` when another worker
    /// re-claimed it meanwhile (its lease ran out), whose outcome then stands.
    async fn record(&self, claimed: &Delivery, outcome: Outcome) -> Result<Option<DeliveryState>> {
        // Counters for whatever `metrics` recorder the embedder installed (crm-server:
        // Prometheus on /metrics).
        let consumer = [("consumer", claimed.consumer.clone())];
        metrics::counter!("crm_delivery_attempts_total", &consumer).increment(1);
        let mut done = claimed.clone();
        done.version += 1;
        let now = self.crm.now();
        let channel = self.channels.get(claimed.consumer.as_str());
        match outcome {
            Outcome::Delivered { status } => {
                done.state = DeliveryState::Delivered;
                done.delivered_at = Some(now);
                done.last_status = status.map(i64::from);
                done.last_error = None;
                if let Some(ch) = channel {
                    ch.redact(&mut done.payload);
                }
            }
            Outcome::Retry { error, status, after } if claimed.attempts < self.config.max_attempts => {
                metrics::counter!("crm_delivery_failures_total", &consumer).increment(1);
                let wait = match after {
                    Some(a) => Duration::from_std(a).unwrap_or(self.config.max_backoff).min(Duration::days(1)),
                    None => self.config.backoff(claimed.attempts),
                };
                done.available_at = now + wait;
                done.last_error = Some(error);
                done.last_status = status.map(i64::from);
            }
            Outcome::Retry { error, status, .. } | Outcome::Never { error, status } => {
                metrics::counter!("crm_delivery_failures_total", &consumer).increment(1);
                metrics::counter!("crm_delivery_dead_total", &consumer).increment(1);
                done.state = DeliveryState::Dead;
                done.last_error = Some(format!("given up after {} attempts: {error}", claimed.attempts));
                done.last_status = status.map(i64::from);
                if let Some(ch) = channel {
                    ch.redact(&mut done.payload);
                }
                tracing::warn!(delivery = %claimed.id, consumer = %claimed.consumer, "delivery given up");
            }
        }
        let state = done.state;
        let write =
            Write::Update { kind: EntityKind::Delivery, row: to_row(&done)?, expected_version: claimed.version };
        match self.crm.store().apply(Changeset { writes: vec![write], audit: vec![] }).await {
            Ok(()) => Ok(Some(state)),
            Err(Error::VersionConflict { .. } | Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes delivered and dead deliveries, and dispatched outbox events, older than
    /// the retention period.
    pub async fn purge(&self) -> Result<u64> {
        let before = self.crm.now() - self.config.retention;
        let store = self.crm.store();
        let k = EntityKind::Delivery;
        let q = StoreQuery {
            filter: Some(Filter::And(vec![
                Filter::Cmp(Cmp {
                    column: col(k, "state")?,
                    pred: Predicate::In(vec![
                        Value::Text(DeliveryState::Delivered.as_str().into()),
                        Value::Text(DeliveryState::Dead.as_str().into()),
                    ]),
                }),
                Filter::Cmp(Cmp { column: col(k, "created_at")?, pred: Predicate::Lt(Value::Timestamp(before)) }),
            ])),
            sort: vec![],
            limit: 5_000,
            include_deleted: true,
        };
        let old = store.list_as::<Delivery>(&q).await?;
        let n = old.len() as u64;
        let mut writes: Vec<Write> =
            old.into_iter().map(|d| Write::Purge { kind: k, column: "id", id: d.id }).collect();
        writes.push(Write::PurgeExpired { kind: EntityKind::OutboxEvent, column: "delivered_at", before });
        store.apply(Changeset { writes, audit: vec![] }).await?;
        Ok(n)
    }

    /// Runs until `shutdown` completes: a pass every `every` (at once again while a
    /// pass finds a full batch), task reminders every 30 seconds, a purge every hour.
    pub async fn run(self, every: std::time::Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_purge = std::time::Instant::now();
        let mut last_reminders: Option<std::time::Instant> = None;
        loop {
            if last_reminders.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(30)) {
                last_reminders = Some(std::time::Instant::now());
                if let Err(e) = self.remind_once().await {
                    tracing::warn!(error = %crate::error::chain(&e), "writing task reminders failed");
                }
            }
            let busy = match self.run_once().await {
                Ok(r) => r.dispatched >= 200 || r.sent + r.retried + r.abandoned >= self.config.batch as usize,
                Err(e) => {
                    tracing::warn!(error = %crate::error::chain(&e), "a delivery pass failed");
                    false
                }
            };
            if last_purge.elapsed() > std::time::Duration::from_secs(3600) {
                last_purge = std::time::Instant::now();
                if let Err(e) = self.purge().await {
                    tracing::warn!(error = %e, "purging old deliveries failed");
                }
            }
            // A full pass goes again at once, but a shutdown still stops it between passes.
            let wait = if busy { std::time::Duration::ZERO } else { every };
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// How many deliveries of `consumer` wait, and the age of the oldest, for metrics.
    pub async fn backlog(store: &dyn Store, consumer: &str, now: DateTime<Utc>) -> Result<(u64, Duration)> {
        let k = EntityKind::Delivery;
        let filter = Filter::And(vec![
            eq(k, "state", Value::Text(DeliveryState::Pending.as_str().into()))?,
            eq(k, "consumer", Value::Text(consumer.into()))?,
        ]);
        let n = store.count(k, Some(&filter), true).await?;
        let q = StoreQuery {
            filter: Some(filter),
            sort: vec![SortKey { column: col(k, "created_at")?, direction: Direction::Asc }],
            limit: 1,
            include_deleted: true,
        };
        let oldest = store.list_as::<Delivery>(&q).await?.first().map(|d| now - d.created_at);
        Ok((n, oldest.unwrap_or_else(Duration::zero)))
    }
}
