//! Email campaigns: the sender, audiences, signed links and bounce intake.
//!
//! A campaign goes draft → scheduled → sending → sent (or paused, cancelled). When it
//! starts sending its audience is **frozen**: the segments' contacts, minus the
//! exclusion segments, minus suppressed and unsubscribed addresses, deduplicated by
//! address, become one [`CampaignRecipient`] row each (its id derived from the campaign
//! and the address, so freezing twice adds nobody twice).
//!
//! A [`CampaignSender`] (any number, in any number of processes) claims a sending
//! campaign with a lease, then works through its queue a batch at a time:
//! 1. the batch's addresses are checked against the suppression list and consents
//!    again (an unsubscribe takes effect before the next message);
//! 2. the batch moves `queued → sending` in one write;
//! 3. each message goes to the SMTP server, paced by the per-second and per-hour limits;
//! 4. each outcome is written: `sent`, `failed` (a permanent refusal; a refused
//!    mailbox is suppressed as a hard bounce), or back to `queued` (a temporary error,
//!    counted: at [`CampaignConfig::max_errors`] the campaign pauses with the reason).
//!
//! **Nobody gets a campaign twice**: a row leaves `queued` before its message is sent,
//! and a row found in `sending` by the next holder of the campaign (its sender died
//! between the SMTP server's answer and step 4) becomes `interrupted` and is never sent
//! again. That window is one batch ([`CampaignConfig::batch`] rows) per sender; the
//! crash test measures it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use futures_util::StreamExt;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use crate::audit::NewAuditEvent;
use crate::error::{Error, Result};
use crate::mail::Mailer;
use crate::model::campaign::{
    Campaign, CampaignRecipient, CampaignState, Consent, ConsentStatus, RecipientState, Segment, Suppression,
    SuppressionReason,
};
use crate::model::company::Company;
use crate::model::contact::Contact;
use crate::model::interaction::{Interaction, InteractionKind};
use crate::model::RecordMeta;
use crate::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
use crate::schema::{from_row, to_row, EntityKind, Value};
use crate::service::Crm;
use crate::store::{Changeset, Claim, StoreExt, Write};

pub mod dsn;
pub mod render;
mod service;

pub use dsn::{Bounce, BounceKind, RECIPIENT_HEADER};
pub use service::{
    CampaignInput, CampaignService, CampaignStats, ConsentInput, ContactCampaign, Preview, SegmentInput,
    SegmentPreview, SuppressionInput, TemplateInput,
};

/// How campaigns are sent.
#[derive(Debug, Clone)]
pub struct CampaignConfig {
    /// The public base URL of tracking and unsubscribe links (`https://crm.example.com`).
    pub public_url: String,
    /// The sender (a campaign's `fromName` replaces the display name).
    pub from: Mailbox,
    /// The footer every message carries: the sender's postal address (CAN-SPAM, the
    /// EU's ePrivacy rules); `{{ footer }}` places it, or it is added at the end.
    pub footer: String,
    /// Messages per second at most (0: no limit).
    pub per_second: f64,
    /// Messages per sliding hour at most, across campaigns (0: no limit).
    pub per_hour: u64,
    /// SMTP errors after which a campaign pauses.
    pub max_errors: i64,
    /// Recipients taken at once: the most a crash can leave unconfirmed.
    pub batch: usize,
    /// Messages in flight at once.
    pub concurrency: usize,
    /// How long a sender holds a campaign without renewing.
    pub lease: Duration,
    /// Add an open pixel and wrap links for click tracking.
    pub track: bool,
}

impl CampaignConfig {
    /// The defaults for this sender and public URL.
    pub fn new(public_url: impl Into<String>, from: Mailbox) -> Self {
        Self {
            public_url: public_url.into(),
            from,
            footer: String::new(),
            per_second: 50.0,
            per_hour: 0,
            max_errors: 25,
            batch: 20,
            concurrency: 4,
            lease: Duration::seconds(60),
            track: true,
        }
    }
}

/// What one pass of the sender did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReport {
    /// Scheduled campaigns started.
    pub started: usize,
    /// Messages accepted by the SMTP server.
    pub sent: usize,
    /// Messages refused for good.
    pub failed: usize,
    /// Temporary errors (the message stays queued).
    pub errors: usize,
    /// Recipients dropped before sending (suppressed or unsubscribed meanwhile).
    pub skipped: usize,
    /// Rows left unconfirmed by a sender that died, found and closed.
    pub interrupted: usize,
    /// Campaigns that finished.
    pub finished: usize,
    /// Campaigns paused after too many errors.
    pub paused: usize,
}

// ---------------------------------------------------------------------------------
// Store helpers.

pub(crate) fn col(kind: EntityKind, name: &str) -> Result<&'static crate::schema::Column> {
    kind.require_column(name)
}

pub(crate) fn eq(kind: EntityKind, name: &str, v: Value) -> Result<Filter> {
    Ok(Filter::Cmp(Cmp { column: col(kind, name)?, pred: Predicate::Eq(v) }))
}

pub(crate) fn one_of(kind: EntityKind, name: &str, vs: Vec<Value>) -> Result<Filter> {
    Ok(Filter::Cmp(Cmp { column: col(kind, name)?, pred: Predicate::In(vs) }))
}

pub(crate) fn by_id(kind: EntityKind, limit: u32, filter: Option<Filter>) -> Result<StoreQuery> {
    Ok(StoreQuery {
        filter,
        sort: vec![SortKey { column: col(kind, "id")?, direction: Direction::Asc }],
        limit,
        include_deleted: false,
    })
}

/// The audit event of a change the system made (no actor).
pub(crate) fn system_audit(
    crm: &Crm,
    action: &str,
    kind: EntityKind,
    id: Option<Uuid>,
    changes: Json,
) -> NewAuditEvent {
    let at = crm.now();
    NewAuditEvent {
        id: crm.new_id(at),
        at,
        actor_id: None,
        actor_role: None,
        action: action.to_string(),
        entity_type: kind.name().to_string(),
        entity_id: id,
        changes,
        request: json!({}),
        key: crm.audit_key(),
    }
}

/// The id of an address's row in a campaign: the same however often it is computed.
pub fn recipient_id(campaign: Uuid, email: &str) -> Uuid {
    crate::ids::derived_id(&[b"campaign.recipient:", campaign.as_bytes(), email.to_ascii_lowercase().as_bytes()])
}

/// Writes one row's change, retrying on a version conflict with `change` applied to
/// the current row (`None` from `change`: nothing to do).
async fn update_with_retry<T: crate::schema::Persist + Clone>(
    crm: &Crm,
    id: Uuid,
    mut change: impl FnMut(&T) -> Option<(T, Changeset)>,
    version: impl Fn(&T) -> i64,
) -> Result<Option<T>> {
    for _ in 0..8 {
        let Some(before) = crm.store().get_as::<T>(id).await? else { return Ok(None) };
        let Some((after, mut cs)) = change(&before) else { return Ok(Some(before)) };
        cs.writes.insert(0, Write::Update { kind: T::KIND, row: to_row(&after)?, expected_version: version(&before) });
        match crm.store().apply(cs).await {
            Ok(()) => return Ok(Some(after)),
            Err(Error::VersionConflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict { message: "the record kept changing; try again".into(), field: None })
}

// ---------------------------------------------------------------------------------
// Signed links.

/// The kinds of signed link a campaign message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// The open pixel (`/t/o/…`).
    Open,
    /// A click redirect (`/t/c/…?url=…`).
    Click,
    /// The unsubscribe page and its one-click POST (`/u/…`).
    Unsubscribe,
    /// A double opt-in confirmation (`/c/…`; the id is the contact's).
    Confirm,
}

impl LinkKind {
    fn purpose(&self) -> &'static str {
        match self {
            LinkKind::Open => "campaign.open",
            LinkKind::Click => "campaign.click",
            LinkKind::Unsubscribe => "campaign.unsubscribe",
            LinkKind::Confirm => "campaign.confirm",
        }
    }
}

fn signed_data(rid: Uuid, url: Option<&str>) -> Vec<u8> {
    let mut d = rid.as_bytes().to_vec();
    if let Some(u) = url {
        d.extend_from_slice(u.as_bytes());
    }
    d
}

/// The token of a link: `<recipient id>.<key id>.<signature>`.
pub fn link_token(crm: &Crm, kind: LinkKind, rid: Uuid, url: Option<&str>) -> Result<String> {
    let sig = crm.auth_settings()?.sealer.sign(kind.purpose(), &signed_data(rid, url));
    Ok(format!("{}.{sig}", rid.simple()))
}

/// The recipient a token names, if its signature holds (for a click: over this URL).
/// A forged or altered token is `None`.
pub fn verify_token(crm: &Crm, kind: LinkKind, token: &str, url: Option<&str>) -> Option<Uuid> {
    let (rid, sig) = token.split_once('.')?;
    let rid = Uuid::try_parse(rid).ok()?;
    crm.auth_settings().ok()?.sealer.verify(kind.purpose(), &signed_data(rid, url), sig).then_some(rid)
}

fn base(config: &CampaignConfig) -> &str {
    config.public_url.trim_end_matches('/')
}

/// The unsubscribe URL of a recipient.
pub fn unsubscribe_url(crm: &Crm, config: &CampaignConfig, rid: Uuid) -> Result<String> {
    Ok(format!("{}/u/{}", base(config), link_token(crm, LinkKind::Unsubscribe, rid, None)?))
}

fn encode_query(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------
// Audiences.

/// The contacts (id, lower-case address) of a segment, live ones with an address.
pub(crate) async fn segment_members(crm: &Crm, seg: &Segment) -> Result<Vec<(Uuid, String)>> {
    let k = EntityKind::Contact;
    let id_at = 0;
    let email_at = k.columns().iter().position(|c| c.name == "email").unwrap_or(0);
    let cols = [id_at, email_at];
    let has_email = Filter::Cmp(Cmp { column: col(k, "email")?, pred: Predicate::IsNotNull });
    let mut rows = Vec::new();
    if seg.filter.is_some() || seg.company_filter.is_some() {
        let mut parts = vec![has_email.clone()];
        if let Some(f) = seg.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            parts.push(crate::query::parse_filter(k, f)?);
        }
        let mut none = false;
        if let Some(cf) = seg.company_filter.as_deref().filter(|f| !f.trim().is_empty()) {
            let cfilter = crate::query::parse_filter(EntityKind::Company, cf)?;
            let companies = crm.store().scan_columns(EntityKind::Company, Some(&cfilter), false, &[0]).await?;
            let ids: Vec<Value> = companies.into_iter().filter_map(|mut r| r.pop()).collect();
            if ids.is_empty() {
                none = true;
            } else {
                parts.push(one_of(k, "company_id", ids)?);
            }
        }
        if !none {
            let f = crate::query::and(parts);
            rows.extend(crm.store().scan_columns(k, Some(&f), false, &cols).await?);
        }
    }
    for chunk in seg.contact_ids.chunks(1000) {
        let f = crate::query::and(vec![
            has_email.clone(),
            one_of(k, "id", chunk.iter().map(|u| Value::Uuid(*u)).collect())?,
        ]);
        rows.extend(crm.store().scan_columns(k, Some(&f), false, &cols).await?);
    }
    Ok(rows
        .into_iter()
        .filter_map(|r| match (r.first(), r.get(1)) {
            (Some(Value::Uuid(id)), Some(Value::Text(e))) => Some((*id, e.to_ascii_lowercase())),
            _ => None,
        })
        .collect())
}

/// Every suppressed address among `emails`.
pub(crate) async fn suppressed_among(crm: &Crm, emails: &[String]) -> Result<HashSet<String>> {
    let k = EntityKind::Suppression;
    let mut out = HashSet::new();
    let at = k.columns().iter().position(|c| c.name == "email").unwrap_or(1);
    for chunk in emails.chunks(1000) {
        let f = one_of(k, "email", chunk.iter().map(|e| Value::Text(e.clone())).collect())?;
        for r in crm.store().scan_columns(k, Some(&f), false, &[at]).await? {
            if let Some(Value::Text(e)) = r.into_iter().next() {
                out.insert(e);
            }
        }
    }
    Ok(out)
}

/// The contacts among `ids` whose consent keeps campaigns away (unsubscribed, or not yet
/// confirmed).
pub(crate) async fn withheld_among(crm: &Crm, ids: &[Uuid]) -> Result<HashSet<Uuid>> {
    let k = EntityKind::Consent;
    let mut out = HashSet::new();
    for chunk in ids.chunks(1000) {
        let f = crate::query::and(vec![
            one_of(k, "id", chunk.iter().map(|u| Value::Uuid(*u)).collect())?,
            one_of(
                k,
                "status",
                vec![
                    Value::Text(ConsentStatus::Unsubscribed.as_str().into()),
                    Value::Text(ConsentStatus::Pending.as_str().into()),
                ],
            )?,
        ]);
        for r in crm.store().scan_columns(k, Some(&f), false, &[0]).await? {
            if let Some(Value::Uuid(id)) = r.into_iter().next() {
                out.insert(id);
            }
        }
    }
    Ok(out)
}

/// A campaign's audience now: the segments' contacts, minus the exclusion segments',
/// minus suppressed addresses and withheld consents, one per address (the first contact
/// with it, by id).
pub(crate) async fn audience(crm: &Crm, c: &Campaign) -> Result<Vec<(Uuid, String)>> {
    let mut members: Vec<(Uuid, String)> = Vec::new();
    for id in &c.segment_ids {
        let seg = crm.store().get_as::<Segment>(*id).await?.ok_or(Error::NotFound { entity: "segment" })?;
        members.extend(segment_members(crm, &seg).await?);
    }
    let mut excluded_ids = HashSet::new();
    let mut excluded_emails = HashSet::new();
    for id in &c.exclude_segment_ids {
        let seg = crm.store().get_as::<Segment>(*id).await?.ok_or(Error::NotFound { entity: "segment" })?;
        for (cid, e) in segment_members(crm, &seg).await? {
            excluded_ids.insert(cid);
            excluded_emails.insert(e);
        }
    }
    members.sort();
    let mut seen = HashSet::new();
    members.retain(|(id, e)| !excluded_ids.contains(id) && !excluded_emails.contains(e) && seen.insert(e.clone()));
    let emails: Vec<String> = members.iter().map(|(_, e)| e.clone()).collect();
    let suppressed = suppressed_among(crm, &emails).await?;
    let ids: Vec<Uuid> = members.iter().map(|(id, _)| *id).collect();
    let withheld = withheld_among(crm, &ids).await?;
    members.retain(|(id, e)| !suppressed.contains(e) && !withheld.contains(id));
    Ok(members)
}

// ---------------------------------------------------------------------------------
// The sender.

/// Paces messages: at most `per_second`, and `per_hour` in any sliding hour.
#[derive(Debug)]
struct Pace {
    next: Instant,
    gap: StdDuration,
    per_hour: u64,
    window: VecDeque<Instant>,
}

impl Pace {
    fn new(per_second: f64, per_hour: u64) -> Self {
        let gap = if per_second > 0.0 { StdDuration::from_secs_f64(1.0 / per_second) } else { StdDuration::ZERO };
        Self { next: Instant::now(), gap, per_hour, window: VecDeque::new() }
    }

    /// The instant the next message may leave (and books it).
    fn book(&mut self) -> Instant {
        let now = Instant::now();
        let hour = StdDuration::from_secs(3600);
        while self.window.front().is_some_and(|t| now.duration_since(*t) >= hour) {
            self.window.pop_front();
        }
        let mut at = self.next.max(now);
        if self.per_hour > 0 && self.window.len() as u64 >= self.per_hour {
            let freed = self.window.len() + 1 - self.per_hour as usize;
            if let Some(t) = self.window.get(freed.saturating_sub(1)) {
                at = at.max(*t + hour);
            }
        }
        self.next = at + self.gap;
        if self.per_hour > 0 {
            self.window.push_back(at);
        }
        at
    }
}

/// Is this mail error a permanent refusal (an SMTP 5xx), rather than worth a retry?
pub fn is_permanent(err: &Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        #[cfg(feature = "smtp")]
        if let Some(smtp) = e.downcast_ref::<lettre::transport::smtp::Error>() {
            return smtp.is_permanent();
        }
        source = e.source();
    }
    false
}

/// Sends campaigns: starts the scheduled ones that are due, freezes audiences, and works
/// through each sending campaign's queue under a lease.
pub struct CampaignSender {
    crm: Crm,
    mailer: Arc<dyn Mailer>,
    config: CampaignConfig,
    pace: tokio::sync::Mutex<Pace>,
    stopping: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for CampaignSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignSender").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What became of one message.
enum Sent {
    Ok,
    Permanent(String),
    Temporary(String),
}

impl CampaignSender {
    /// A sender for `crm`'s campaigns through `mailer`.
    pub fn new(crm: Crm, mailer: Arc<dyn Mailer>, config: CampaignConfig) -> Self {
        let pace = Pace::new(config.per_second, config.per_hour);
        Self { crm, mailer, config, pace: tokio::sync::Mutex::new(pace), stopping: Default::default() }
    }

    /// Its configuration.
    pub fn config(&self) -> &CampaignConfig {
        &self.config
    }

    /// The CRM it sends for.
    pub fn crm(&self) -> &Crm {
        &self.crm
    }

    /// Starts due campaigns and sends every sending campaign it can claim until each is
    /// done, paused or taken away. Safe to run in any number of workers at once.
    pub async fn run_once(&self) -> Result<SendReport> {
        let mut report = SendReport { started: self.start_due().await?, ..Default::default() };
        while !self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            let Some(c) = self.claim().await? else { break };
            self.work(c, &mut report).await?;
        }
        Ok(report)
    }

    /// Runs until `shutdown` completes, looking for work every `every` (a campaign being
    /// sent when it completes is left to its lease: another sender, or this one after a
    /// restart, carries on).
    pub async fn run_loop(&self, every: StdDuration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let pass = self.run_once();
            tokio::pin!(pass);
            let result = tokio::select! {
                r = &mut pass => r,
                () = &mut shutdown => {
                    // Finish the batch in flight (its outcomes are written), then stop.
                    self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
                    if let Err(e) = pass.await {
                        tracing::warn!(error = %crate::error::chain(&e), "campaign sender pass failed");
                    }
                    return;
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %crate::error::chain(&e), "campaign sender pass failed");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Moves scheduled campaigns whose time has come to `sending`.
    async fn start_due(&self) -> Result<usize> {
        let k = EntityKind::Campaign;
        let now = self.crm.now();
        let f = crate::query::and(vec![
            eq(k, "state", Value::Text(CampaignState::Scheduled.as_str().into()))?,
            Filter::Cmp(Cmp { column: col(k, "scheduled_at")?, pred: Predicate::Lte(Value::Timestamp(now)) }),
        ]);
        let due: Vec<Campaign> = self.crm.store().list_as(&by_id(k, 100, Some(f))?).await?;
        let mut n = 0;
        for c in due {
            let mut after = c.clone();
            after.state = CampaignState::Sending;
            after.lease_until = now;
            after.updated_at = now;
            after.version += 1;
            let audit =
                system_audit(&self.crm, "campaign.started", k, Some(c.id), json!({"scheduledAt": c.scheduled_at}));
            let cs = Changeset {
                writes: vec![Write::Update { kind: k, row: to_row(&after)?, expected_version: c.version }],
                audit: vec![audit],
            };
            match self.crm.store().apply(cs).await {
                Ok(()) => n += 1,
                Err(Error::VersionConflict { .. } | Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Takes one sending campaign no live sender holds.
    async fn claim(&self) -> Result<Option<Campaign>> {
        let k = EntityKind::Campaign;
        let now = self.crm.now();
        let f = crate::query::and(vec![
            eq(k, "state", Value::Text(CampaignState::Sending.as_str().into()))?,
            Filter::Cmp(Cmp { column: col(k, "lease_until")?, pred: Predicate::Lte(Value::Timestamp(now)) }),
        ]);
        let claim = Claim {
            kind: k,
            query: by_id(k, 1, Some(f))?,
            lease_column: "lease_until",
            until: now + self.config.lease,
            count_column: None,
        };
        let rows = self.crm.store().claim(&claim).await?;
        rows.into_iter().next().map(from_row).transpose()
    }

    /// Renews the lease (and writes `change`); `None` when the campaign left `sending`
    /// or another sender holds it.
    async fn renew(&self, c: &Campaign, change: impl FnOnce(&mut Campaign)) -> Result<Option<Campaign>> {
        let mut after = c.clone();
        after.lease_until = self.crm.now() + self.config.lease;
        after.updated_at = self.crm.now();
        change(&mut after);
        after.version = c.version + 1;
        let w = Write::Update { kind: EntityKind::Campaign, row: to_row(&after)?, expected_version: c.version };
        match self.crm.store().apply(Changeset { writes: vec![w], audit: vec![] }).await {
            Ok(()) => Ok(Some(after)),
            Err(Error::VersionConflict { .. } | Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one claimed campaign until it is done, paused or taken away.
    async fn work(&self, mut c: Campaign, report: &mut SendReport) -> Result<()> {
        report.interrupted += self.close_interrupted(&c).await?;
        if !c.frozen {
            c = match self.freeze(c).await? {
                Some(c) => c,
                None => return Ok(()),
            };
        }
        let compiled = render::Compiled {
            subject: c.subject.clone().unwrap_or_default(),
            html: c.html.clone().unwrap_or_default(),
            text: c.text.clone().unwrap_or_default(),
        };
        let personalizer = match render::Personalizer::new(&compiled) {
            Ok(p) => p,
            Err(e) => {
                self.pause(&c, &format!("the template does not render: {e}"), report).await?;
                return Ok(());
            }
        };
        loop {
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                // Hand the campaign over at once rather than at the lease's end.
                self.renew(&c, |a| a.lease_until = a.updated_at).await?;
                return Ok(());
            }
            let batch = self.next_batch(&c).await?;
            if batch.is_empty() {
                let now = self.crm.now();
                if let Some(done) = self
                    .renew(&c, |a| {
                        a.state = CampaignState::Sent;
                        a.finished_at = Some(now);
                        a.lease_until = now;
                    })
                    .await?
                {
                    let audit = system_audit(
                        &self.crm,
                        "campaign.sent",
                        EntityKind::Campaign,
                        Some(done.id),
                        json!({"audience": done.audience}),
                    );
                    self.crm.store().apply(Changeset { writes: vec![], audit: vec![audit] }).await?;
                    report.finished += 1;
                }
                return Ok(());
            }
            let errors = self.send_batch(&c, &personalizer, batch, report).await?;
            let total = c.errors + errors;
            let Some(next) = self.renew(&c, |a| a.errors = total).await? else { return Ok(()) };
            c = next;
            if c.errors >= self.config.max_errors {
                let reason = format!("paused after {} SMTP errors (the limit is {})", c.errors, self.config.max_errors);
                self.pause(&c, &reason, report).await?;
                return Ok(());
            }
        }
    }

    async fn pause(&self, c: &Campaign, reason: &str, report: &mut SendReport) -> Result<()> {
        let now = self.crm.now();
        let reason = reason.to_string();
        let r2 = reason.clone();
        if self
            .renew(c, move |a| {
                a.state = CampaignState::Paused;
                a.paused_reason = Some(r2);
                a.lease_until = now;
            })
            .await?
            .is_some()
        {
            let audit =
                system_audit(&self.crm, "campaign.paused", EntityKind::Campaign, Some(c.id), json!({"reason": reason}));
            self.crm.store().apply(Changeset { writes: vec![], audit: vec![audit] }).await?;
            report.paused += 1;
        }
        Ok(())
    }

    /// Rows a dead sender left in `sending`: maybe delivered, so never sent again.
    async fn close_interrupted(&self, c: &Campaign) -> Result<usize> {
        let k = EntityKind::CampaignRecipient;
        let f = crate::query::and(vec![
            eq(k, "campaign_id", Value::Uuid(c.id))?,
            eq(k, "state", Value::Text(RecipientState::Sending.as_str().into()))?,
        ]);
        let rows: Vec<CampaignRecipient> = self.crm.store().list_as(&by_id(k, 10_000, Some(f))?).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut cs = Changeset::default();
        for r in &rows {
            let mut a = r.clone();
            a.state = RecipientState::Interrupted;
            a.error = Some("its sender stopped between sending and confirming: maybe delivered, not sent again".into());
            a.version += 1;
            cs.writes.push(Write::Update { kind: k, row: to_row(&a)?, expected_version: r.version });
        }
        cs.audit.push(system_audit(
            &self.crm,
            "campaign.interrupted",
            EntityKind::Campaign,
            Some(c.id),
            json!({"recipients": rows.len()}),
        ));
        self.crm.store().apply(cs).await?;
        Ok(rows.len())
    }

    /// Freezes the audience and the content; `None` when the campaign was taken away
    /// (or paused for a missing template).
    async fn freeze(&self, c: Campaign) -> Result<Option<Campaign>> {
        let mut report = SendReport::default();
        let template = match self.crm.store().get_as::<crate::model::campaign::CampaignTemplate>(c.template_id).await? {
            Some(t) => t,
            None => {
                self.pause(&c, "its template was deleted", &mut report).await?;
                return Ok(None);
            }
        };
        let compiled = match render::compile(&template.subject, &template.mjml, template.text.as_deref()) {
            Ok(x) => x,
            Err(e) => {
                self.pause(&c, &format!("the template is not valid: {e}"), &mut report).await?;
                return Ok(None);
            }
        };
        let members = audience(&self.crm, &c).await?;
        let k = EntityKind::CampaignRecipient;
        let existing: HashSet<Uuid> = {
            let f = eq(k, "campaign_id", Value::Uuid(c.id))?;
            self.crm
                .store()
                .scan_columns(k, Some(&f), false, &[0])
                .await?
                .into_iter()
                .filter_map(|r| match r.first() {
                    Some(Value::Uuid(u)) => Some(*u),
                    _ => None,
                })
                .collect()
        };
        let mut c = c;
        // Written 500 rows at a time, each chunk built when it is written: a large
        // audience is never held as rows all at once.
        let missing: Vec<&(Uuid, String)> =
            members.iter().filter(|(_, email)| !existing.contains(&recipient_id(c.id, email))).collect();
        for chunk in missing.chunks(500) {
            let mut writes = Vec::with_capacity(chunk.len());
            for (contact, email) in chunk {
                let row = to_row(&CampaignRecipient {
                    id: recipient_id(c.id, email),
                    campaign_id: c.id,
                    contact_id: *contact,
                    email: email.clone(),
                    state: RecipientState::Queued,
                    attempts: 0,
                    sent_at: None,
                    error: None,
                    opened_at: None,
                    opens: 0,
                    clicked_at: None,
                    clicks: 0,
                    bounced_at: None,
                    bounce: None,
                    unsubscribed_at: None,
                    complained_at: None,
                    version: 1,
                })?;
                writes.push(Write::Insert { kind: k, row });
            }
            self.crm.store().apply(Changeset { writes, audit: vec![] }).await?;
            // Hold the lease while a large audience is written.
            match self.renew(&c, |_| {}).await? {
                Some(n) => c = n,
                None => return Ok(None),
            }
        }
        let n = i64::try_from(members.len()).unwrap_or(i64::MAX);
        let now = self.crm.now();
        let Some(frozen) = self
            .renew(&c, |a| {
                a.frozen = true;
                a.audience = n;
                a.started_at = a.started_at.or(Some(now));
                a.subject = Some(compiled.subject.clone());
                a.html = Some(compiled.html.clone());
                a.text = Some(compiled.text.clone());
            })
            .await?
        else {
            return Ok(None);
        };
        let audit =
            system_audit(&self.crm, "campaign.frozen", EntityKind::Campaign, Some(c.id), json!({"audience": n}));
        self.crm.store().apply(Changeset { writes: vec![], audit: vec![audit] }).await?;
        Ok(Some(frozen))
    }

    /// The next queued recipients, oldest first.
    async fn next_batch(&self, c: &Campaign) -> Result<Vec<CampaignRecipient>> {
        let k = EntityKind::CampaignRecipient;
        let f = crate::query::and(vec![
            eq(k, "campaign_id", Value::Uuid(c.id))?,
            eq(k, "state", Value::Text(RecipientState::Queued.as_str().into()))?,
        ]);
        let n = u32::try_from(self.config.batch.max(1)).unwrap_or(20);
        self.crm.store().list_as(&by_id(k, n, Some(f))?).await
    }

    /// Sends a batch; answers the number of temporary errors.
    async fn send_batch(
        &self,
        c: &Campaign,
        personalizer: &render::Personalizer,
        batch: Vec<CampaignRecipient>,
        report: &mut SendReport,
    ) -> Result<i64> {
        let k = EntityKind::CampaignRecipient;
        // 1. Unsubscribes and suppressions that came in since the audience froze.
        let emails: Vec<String> = batch.iter().map(|r| r.email.clone()).collect();
        let suppressed = suppressed_among(&self.crm, &emails).await?;
        let ids: Vec<Uuid> = batch.iter().map(|r| r.contact_id).collect();
        let withheld = withheld_among(&self.crm, &ids).await?;
        let contacts: HashMap<Uuid, Contact> = {
            let f = one_of(EntityKind::Contact, "id", ids.iter().map(|u| Value::Uuid(*u)).collect())?;
            let list: Vec<Contact> = self.crm.store().list_as(&by_id(EntityKind::Contact, 10_000, Some(f))?).await?;
            list.into_iter().map(|x| (x.id.as_uuid(), x)).collect()
        };
        let company_ids: Vec<Value> = contacts
            .values()
            .filter_map(|x| x.company_id.map(|i| i.as_uuid()))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(Value::Uuid)
            .collect();
        let companies: HashMap<Uuid, Company> = if company_ids.is_empty() {
            HashMap::new()
        } else {
            let f = one_of(EntityKind::Company, "id", company_ids)?;
            let list: Vec<Company> = self.crm.store().list_as(&by_id(EntityKind::Company, 10_000, Some(f))?).await?;
            list.into_iter().map(|x| (x.id.as_uuid(), x)).collect()
        };
        // 2. Out of the queue before anything is sent.
        let mut claim = Changeset::default();
        let mut sending = Vec::new();
        for r in batch {
            let mut a = r.clone();
            a.version += 1;
            let drop = suppressed.contains(&r.email)
                || withheld.contains(&r.contact_id)
                || !contacts.contains_key(&r.contact_id);
            if drop {
                a.state = RecipientState::Skipped;
                a.error = Some(if suppressed.contains(&r.email) {
                    "suppressed".into()
                } else if withheld.contains(&r.contact_id) {
                    "unsubscribed".into()
                } else {
                    "the contact was deleted".into()
                });
                report.skipped += 1;
            } else {
                a.state = RecipientState::Sending;
                a.attempts += 1;
                sending.push(a.clone());
            }
            claim.writes.push(Write::Update { kind: k, row: to_row(&a)?, expected_version: r.version });
        }
        match self.crm.store().apply(claim).await {
            Ok(()) => {}
            // Another sender took these rows: it sends them.
            Err(Error::VersionConflict { .. }) => return Ok(0),
            Err(e) => return Err(e),
        }
        // 3. Out to the SMTP server, paced.
        let campaign_ctx = json!({"id": c.id, "name": c.name});
        let mut messages = Vec::with_capacity(sending.len());
        let mut outcomes: Vec<(CampaignRecipient, Sent)> = Vec::with_capacity(sending.len());
        for r in sending {
            let contact = contacts.get(&r.contact_id);
            let company = contact.and_then(|x| x.company_id).and_then(|id| companies.get(&id.as_uuid()));
            match self.message(c, personalizer, &campaign_ctx, &r, contact, company) {
                Ok(m) => messages.push((r, m)),
                Err(e) => outcomes.push((r, Sent::Permanent(format!("could not be rendered: {e}")))),
            }
        }
        let sent: Vec<(CampaignRecipient, Sent)> = futures_util::stream::iter(messages)
            .map(|(r, m)| async move {
                let at = self.pace.lock().await.book();
                tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                let outcome = match self.mailer.send(&m).await {
                    Ok(()) => Sent::Ok,
                    Err(e) if is_permanent(&e) => Sent::Permanent(crate::error::chain(&e)),
                    Err(e) => Sent::Temporary(crate::error::chain(&e)),
                };
                (r, outcome)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        outcomes.extend(sent);
        // 4. The outcomes, before anything else (a pause racing us must not lose them).
        let now = self.crm.now();
        let mut cs = Changeset::default();
        let mut errors = 0;
        for (r, outcome) in outcomes {
            let mut a = r.clone();
            a.version += 1;
            match outcome {
                Sent::Ok => {
                    a.state = RecipientState::Sent;
                    a.sent_at = Some(now);
                    a.error = None;
                    report.sent += 1;
                }
                Sent::Permanent(e) => {
                    a.state = RecipientState::Failed;
                    a.bounce = Some("hard".into());
                    a.bounced_at = Some(now);
                    // The batch's addresses were checked against the list in step 1.
                    let email = a.email.trim().to_ascii_lowercase();
                    if !suppressed.contains(&email) {
                        cs.writes.push(suppression_insert(
                            &self.crm,
                            email,
                            SuppressionReason::Bounced,
                            "smtp",
                            Some(c.id),
                            Some(&e),
                        )?);
                    }
                    a.error = Some(e);
                    report.failed += 1;
                }
                Sent::Temporary(e) => {
                    a.state = RecipientState::Queued;
                    a.error = Some(e);
                    errors += 1;
                    report.errors += 1;
                }
            }
            cs.writes.push(Write::Update { kind: k, row: to_row(&a)?, expected_version: r.version });
        }
        self.crm.store().apply(cs).await?;
        Ok(errors)
    }

    /// One recipient's message.
    fn message(
        &self,
        c: &Campaign,
        personalizer: &render::Personalizer,
        campaign_ctx: &Json,
        r: &CampaignRecipient,
        contact: Option<&Contact>,
        company: Option<&Company>,
    ) -> Result<Message> {
        let unsubscribe = unsubscribe_url(&self.crm, &self.config, r.id)?;
        let contact_json =
            contact.map(serde_json::to_value).transpose().map_err(|e| Error::internal("a contact", e))?;
        let contact_obj = render::template_object(&contact_json.unwrap_or_else(|| json!({"email": r.email})), true);
        let company_json =
            company.map(serde_json::to_value).transpose().map_err(|e| Error::internal("a company", e))?;
        let company_obj = company_json.map(|j| render::template_object(&j, false));
        let ctx = render::recipient_context(
            &contact_obj,
            company_obj.as_ref(),
            campaign_ctx,
            &unsubscribe,
            &self.config.footer,
        );
        let mut p = personalizer.render(&ctx)?;
        self.finish_body(&mut p, r.id, &unsubscribe)?;
        let mut from = self.config.from.clone();
        if let Some(name) = &c.from_name {
            from.name = Some(name.clone());
        }
        build_message(from, &r.email, &p, &unsubscribe, c.id, Some(r.id))
    }

    /// Adds the footer and unsubscribe link where the template has none, and tracking.
    fn finish_body(&self, p: &mut render::Personalized, rid: Uuid, unsubscribe: &str) -> Result<()> {
        if !p.html.contains(unsubscribe) {
            let footer = format!(
                "<div style=\"font-size:12px;color:#666;text-align:center;padding:16px\">{}<br/><a href=\"{}\">Unsubscribe</a></div>",
                render::escape_attr(&self.config.footer),
                render::escape_attr(unsubscribe)
            );
            match p.html.rfind("</body>") {
                Some(i) => p.html.insert_str(i, &footer),
                None => p.html.push_str(&footer),
            }
        }
        if !p.text.contains(unsubscribe) {
            p.text.push_str(&format!("\n--\n{}\nUnsubscribe: {unsubscribe}\n", self.config.footer));
        }
        if self.config.track {
            let open = format!("{}/t/o/{}", base(&self.config), link_token(&self.crm, LinkKind::Open, rid, None)?);
            let crm = &self.crm;
            let b = base(&self.config).to_string();
            p.html = render::track(&p.html, &[unsubscribe], Some(&open), |url| {
                match link_token(crm, LinkKind::Click, rid, Some(url)) {
                    Ok(t) => format!("{b}/t/c/{t}?url={}", encode_query(url)),
                    Err(_) => url.to_string(),
                }
            });
        }
        Ok(())
    }

    /// Double opt-in: marks a contact's consent `pending` and emails them a link to
    /// confirm it (`/c/{token}`); until they do, no campaign reaches them.
    pub async fn request_confirmation(&self, actor: &crate::policy::Actor, contact: Uuid) -> Result<Consent> {
        self.crm.policy().require(actor, crate::policy::Resource::Campaigns, crate::policy::Action::Update)?;
        let c = self.crm.contacts().get(actor, crate::ids::ContactId(contact)).await?;
        let Some(email) = c.email.clone() else {
            return Err(Error::invalid("email", "required", "the contact has no email address to confirm"));
        };
        let url = format!("{}/c/{}", base(&self.config), link_token(&self.crm, LinkKind::Confirm, contact, None)?);
        let first = c.name.split_whitespace().next().unwrap_or_default().to_string();
        let footer =
            if self.config.footer.is_empty() { String::new() } else { format!("\n--\n{}\n", self.config.footer) };
        let text = format!(
            "Hello {first},\n\nplease confirm that you want to receive our emails:\n\n{url}\n\nIf you did not ask for them, ignore this message: you will get nothing.\n{footer}"
        );
        let html = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\"><p>Hello {},</p><p>please confirm that you want to receive our emails:</p>\
<p><a href=\"{}\" style=\"display:inline-block;padding:10px 18px;background:#2563eb;color:#fff;border-radius:6px;text-decoration:none\">Confirm my subscription</a></p>\
<p>If you did not ask for them, ignore this message: you will get nothing.</p><p style=\"color:#666;font-size:12px\">{}</p></body></html>",
            render::escape_attr(&first),
            render::escape_attr(&url),
            render::escape_attr(&self.config.footer)
        );
        let msg = Message::builder()
            .from(self.config.from.clone())
            .to(email.as_str().parse().map_err(|e| Error::internal("a contact address", e))?)
            .subject("Please confirm your subscription")
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| Error::internal("building a confirmation email", e))?;
        let mut cs = Changeset {
            writes: consent_write(&self.crm, contact, ConsentStatus::Pending, "double-opt-in").await?,
            audit: vec![],
        };
        cs.audit.push(self.crm.audit_event(
            actor,
            "consent.confirmation_requested".into(),
            EntityKind::Consent,
            Some(contact),
            json!({"email": email.as_str()}),
        ));
        self.crm.store().apply(cs).await?;
        self.mailer.send(&msg).await?;
        self.crm.campaigns().consent(actor, contact).await
    }

    /// Sends a template to one address now, rendered for `contact` (or with empty
    /// values): the test send. Not tracked; its unsubscribe link does nothing.
    pub async fn test_send(
        &self,
        actor: &crate::policy::Actor,
        template: Uuid,
        to: &str,
        contact: Option<Uuid>,
    ) -> Result<()> {
        let preview = self.crm.campaigns().preview_template(actor, template, contact).await?;
        let to_box: Mailbox = to.parse().map_err(|_| Error::invalid("to", "invalid_email", "not an email address"))?;
        let p = render::Personalized {
            subject: format!("[Test] {}", preview.subject),
            html: preview.html,
            text: preview.text,
        };
        let url = format!("{}/u/test", base(&self.config));
        let msg = build_message(self.config.from.clone(), to_box.email.as_ref(), &p, &url, template, None)?;
        self.mailer.send(&msg).await
    }
}

fn header(name: &str, value: String) -> Result<HeaderValue> {
    let n = HeaderName::new_from_ascii(name.to_string()).map_err(|e| Error::internal("a header name", e))?;
    Ok(HeaderValue::new(n, value))
}

/// The message with the RFC 8058 one-click headers and the campaign's tags.
fn build_message(
    from: Mailbox,
    to: &str,
    p: &render::Personalized,
    unsubscribe: &str,
    campaign: Uuid,
    recipient: Option<Uuid>,
) -> Result<Message> {
    let to: Mailbox = to.parse().map_err(|e| Error::internal("a campaign recipient", e))?;
    let mut b = Message::builder()
        .from(from)
        .to(to)
        .subject(p.subject.clone())
        .raw_header(header("List-Unsubscribe", format!("<{unsubscribe}>"))?)
        .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into())?)
        .raw_header(header("X-CRM-Campaign", campaign.to_string())?)
        .raw_header(header("Precedence", "bulk".into())?);
    if let Some(r) = recipient {
        b = b.raw_header(header(RECIPIENT_HEADER, r.to_string())?);
    }
    b.multipart(MultiPart::alternative_plain_html(p.text.clone(), p.html.clone()))
        .map_err(|e| Error::internal("building a campaign email", e))
}

/// A suppression insert for `email`, unless it is suppressed already.
pub(crate) async fn suppress_write(
    crm: &Crm,
    email: &str,
    reason: SuppressionReason,
    source: &str,
    campaign: Option<Uuid>,
    detail: Option<&str>,
) -> Result<Option<Write>> {
    let email = email.trim().to_ascii_lowercase();
    if !suppressed_among(crm, std::slice::from_ref(&email)).await?.is_empty() {
        return Ok(None);
    }
    suppression_insert(crm, email, reason, source, campaign, detail).map(Some)
}

/// The insert of a suppression of `email` (lower-cased), for a caller that knows the
/// address is not suppressed yet.
fn suppression_insert(
    crm: &Crm,
    email: String,
    reason: SuppressionReason,
    source: &str,
    campaign: Option<Uuid>,
    detail: Option<&str>,
) -> Result<Write> {
    let now = crm.now();
    let s = Suppression {
        id: crm.new_id(now),
        email,
        reason,
        source: source.to_string(),
        campaign_id: campaign,
        detail: detail.map(|d| d.chars().take(1000).collect()),
        created_at: now,
        version: 1,
    };
    Ok(Write::Insert { kind: EntityKind::Suppression, row: to_row(&s)? })
}

// ---------------------------------------------------------------------------------
// What recipients do: open, click, unsubscribe; what mail servers send back.

/// The interaction an open or a click leaves on the contact's timeline.
fn engagement(crm: &Crm, contact: &Contact, subject: String, body: Option<String>, cs: &mut Changeset) -> Result<()> {
    let now = crm.now();
    let it = Interaction {
        id: crate::ids::InteractionId(crm.new_id(now)),
        contact_id: contact.id,
        deal_id: None,
        kind: InteractionKind::Email,
        occurred_at: now,
        subject: Some(subject.chars().take(500).collect()),
        body,
        owner_id: contact.owner_id,
        team_id: contact.team_id,
        meta: RecordMeta::new(now, None),
    };
    let id = it.id.as_uuid();
    let k = EntityKind::Interaction;
    let changes = json!({"contactId": it.contact_id, "kind": "email", "subject": it.subject});
    cs.writes.push(Write::Insert { kind: k, row: to_row(&it)? });
    cs.writes.push(crm.event(
        "interaction.created".into(),
        k,
        id,
        json!({"id": id, "actorId": null, "changes": changes}),
    )?);
    cs.audit.push(system_audit(crm, "interaction.created", k, Some(id), changes));
    Ok(())
}

impl Crm {
    /// Records an open (the pixel of a recipient's message was loaded). Unknown or
    /// forged tokens are ignored (the pixel is served whatever happens).
    pub async fn campaign_open(&self, token: &str) -> Result<bool> {
        let Some(rid) = verify_token(self, LinkKind::Open, token, None) else { return Ok(false) };
        self.engage(rid, None).await
    }

    /// Records a click and answers the URL to redirect to: only the URL the token was
    /// signed for (no open redirect). `None` for a forged token or another URL.
    pub async fn campaign_click(&self, token: &str, url: &str) -> Result<Option<String>> {
        let Some(rid) = verify_token(self, LinkKind::Click, token, Some(url)) else { return Ok(None) };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Ok(None);
        }
        self.engage(rid, Some(url)).await?;
        Ok(Some(url.to_string()))
    }

    async fn engage(&self, rid: Uuid, url: Option<&str>) -> Result<bool> {
        let now = self.now();
        let Some(r) = self.store().get_as::<CampaignRecipient>(rid).await? else { return Ok(false) };
        let first = if url.is_some() { r.clicked_at.is_none() } else { r.opened_at.is_none() };
        let campaign = self.store().get_as::<Campaign>(r.campaign_id).await?;
        let contact = self.store().get_as::<Contact>(r.contact_id).await?.filter(|c| !c.meta.is_deleted());
        let mut extra = Changeset::default();
        if first {
            if let (Some(c), Some(contact)) = (&campaign, &contact) {
                let (subject, body) = match url {
                    Some(u) => (format!("Clicked a link in campaign “{}”", c.name), Some(u.to_string())),
                    None => (format!("Opened campaign “{}”", c.name), None),
                };
                engagement(self, contact, subject, body, &mut extra)?;
            }
        }
        let is_click = url.is_some();
        self.change_recipient(rid, extra, |a| {
            if is_click {
                a.clicks += 1;
                a.clicked_at = a.clicked_at.or(Some(now));
                // A click shows the message was opened, pixel or not.
                a.opened_at = a.opened_at.or(Some(now));
            } else {
                a.opens += 1;
                a.opened_at = a.opened_at.or(Some(now));
            }
        })
        .await?;
        Ok(true)
    }

    /// Unsubscribes the recipient a token names from every campaign: the address is
    /// suppressed and the contact's consent withdrawn, in one write, before the next
    /// message goes out. `false` for a forged token. Idempotent.
    pub async fn campaign_unsubscribe(&self, token: &str, source: &str) -> Result<bool> {
        let Some(rid) = verify_token(self, LinkKind::Unsubscribe, token, None) else { return Ok(false) };
        let Some(r) = self.store().get_as::<CampaignRecipient>(rid).await? else { return Ok(false) };
        // Two clicks at once (a mail client's one-click POST and the person's own) both
        // read "not suppressed yet"; the loser's insert meets the winner's row. Built
        // again from what is stored, its writes then have nothing left to add.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let now = self.now();
            let mut cs = Changeset::default();
            if let Some(w) =
                suppress_write(self, &r.email, SuppressionReason::Unsubscribed, source, Some(r.campaign_id), None)
                    .await?
            {
                cs.writes.push(w);
            }
            cs.writes.extend(consent_write(self, r.contact_id, ConsentStatus::Unsubscribed, source).await?);
            cs.audit.push(system_audit(
                self,
                "campaign.unsubscribed",
                EntityKind::CampaignRecipient,
                Some(rid),
                json!({"campaignId": r.campaign_id, "contactId": r.contact_id, "source": source}),
            ));
            match self.change_recipient(rid, cs, |a| a.unsubscribed_at = a.unsubscribed_at.or(Some(now))).await {
                Err(Error::Conflict { .. } | Error::VersionConflict { .. }) if attempt < 5 => continue,
                other => return other.map(|()| true),
            }
        }
    }

    /// Confirms a double opt-in: the contact's consent becomes `subscribed` and an
    /// earlier unsubscribe of their address is lifted (bounces and complaints stay).
    /// `false` for a forged token or a contact that is gone.
    pub async fn campaign_confirm(&self, token: &str) -> Result<bool> {
        let Some(contact_id) = verify_token(self, LinkKind::Confirm, token, None) else { return Ok(false) };
        let Some(contact) = self.store().get_as::<Contact>(contact_id).await?.filter(|c| !c.meta.is_deleted()) else {
            return Ok(false);
        };
        let mut cs = Changeset {
            writes: consent_write(self, contact_id, ConsentStatus::Subscribed, "double-opt-in").await?,
            audit: vec![],
        };
        if let Some(email) = &contact.email {
            let k = EntityKind::Suppression;
            let f = crate::query::and(vec![
                eq(k, "email", Value::Text(email.as_str().to_string()))?,
                eq(k, "reason", Value::Text(SuppressionReason::Unsubscribed.as_str().into()))?,
            ]);
            for s in self.store().list_as::<Suppression>(&by_id(k, 10, Some(f))?).await? {
                cs.writes.push(Write::Purge { kind: k, column: "id", id: s.id });
            }
        }
        cs.audit.push(system_audit(
            self,
            "consent.confirmed",
            EntityKind::Consent,
            Some(contact_id),
            json!({"source": "double-opt-in"}),
        ));
        self.store().apply(cs).await?;
        Ok(true)
    }

    /// Takes in bounces and complaints: hard bounces and complaints suppress their
    /// address, soft bounces are counted on the recipient. Answers how many reports
    /// matched an address or recipient.
    pub async fn campaign_bounces(&self, bounces: &[Bounce], source: &str) -> Result<usize> {
        let mut matched = 0;
        for b in bounces {
            let rid = match b.recipient_id {
                Some(r) => Some(r),
                None => self.latest_recipient(&b.email).await?,
            };
            let now = self.now();
            let mut cs = Changeset::default();
            let reason = match b.kind {
                BounceKind::Hard => Some(SuppressionReason::Bounced),
                BounceKind::Complaint => Some(SuppressionReason::Complained),
                BounceKind::Soft => None,
            };
            let recipient = match rid {
                Some(r) => self.store().get_as::<CampaignRecipient>(r).await?,
                None => None,
            };
            let email = if b.email.is_empty() {
                recipient.as_ref().map(|r| r.email.clone()).unwrap_or_default()
            } else {
                b.email.clone()
            };
            if email.is_empty() {
                continue;
            }
            if let Some(reason) = reason {
                let cid = recipient.as_ref().map(|r| r.campaign_id);
                if let Some(w) = suppress_write(self, &email, reason, source, cid, b.diagnostic.as_deref()).await? {
                    cs.writes.push(w);
                }
            }
            cs.audit.push(system_audit(
                self,
                &format!("campaign.{}", if b.kind == BounceKind::Complaint { "complaint" } else { "bounce" }),
                EntityKind::CampaignRecipient,
                rid,
                json!({"email": email, "kind": b.kind.as_str(), "status": b.status, "source": source}),
            ));
            match recipient {
                Some(r) => {
                    let kind = b.kind;
                    self.change_recipient(r.id, cs, |a| match kind {
                        BounceKind::Complaint => a.complained_at = a.complained_at.or(Some(now)),
                        BounceKind::Hard => {
                            a.bounce = Some("hard".into());
                            a.bounced_at = a.bounced_at.or(Some(now));
                        }
                        BounceKind::Soft => {
                            if a.bounce.is_none() {
                                a.bounce = Some("soft".into());
                            }
                            a.bounced_at = a.bounced_at.or(Some(now));
                        }
                    })
                    .await?;
                }
                None => self.store().apply(cs).await?,
            }
            matched += 1;
        }
        Ok(matched)
    }

    /// Changes a recipient row (version raised) together with `extra`, again on the
    /// current row when another write got there first (`extra` goes with every attempt:
    /// a refused changeset wrote none of it).
    async fn change_recipient(
        &self,
        rid: Uuid,
        extra: Changeset,
        change: impl Fn(&mut CampaignRecipient),
    ) -> Result<()> {
        update_with_retry::<CampaignRecipient>(
            self,
            rid,
            |b| {
                let mut a = b.clone();
                a.version += 1;
                change(&mut a);
                Some((a, extra.clone()))
            },
            |r| r.version,
        )
        .await
        .map(|_| ())
    }

    /// The newest campaign recipient row of an address.
    async fn latest_recipient(&self, email: &str) -> Result<Option<Uuid>> {
        let k = EntityKind::CampaignRecipient;
        let q = StoreQuery {
            filter: Some(eq(k, "email", Value::Text(email.to_ascii_lowercase()))?),
            sort: vec![SortKey { column: col(k, "sent_at")?, direction: Direction::Desc }],
            limit: 1,
            include_deleted: false,
        };
        Ok(self.store().list_as::<CampaignRecipient>(&q).await?.into_iter().next().map(|r| r.id))
    }
}

/// The write setting a contact's consent (insert or versioned update).
pub(crate) async fn consent_write(crm: &Crm, contact: Uuid, status: ConsentStatus, source: &str) -> Result<Vec<Write>> {
    let now = crm.now();
    let k = EntityKind::Consent;
    Ok(match crm.store().get_as::<Consent>(contact).await? {
        Some(before) if before.status == status => vec![],
        Some(before) => {
            let after =
                Consent { status, source: source.into(), changed_at: now, version: before.version + 1, id: contact };
            vec![Write::Update { kind: k, row: to_row(&after)?, expected_version: before.version }]
        }
        None => {
            let c = Consent { id: contact, status, source: source.into(), changed_at: now, version: 1 };
            vec![Write::Insert { kind: k, row: to_row(&c)? }]
        }
    })
}
