//! Email campaigns: designed [`CampaignTemplate`]s, [`Segment`]s of contacts (saved
//! filters or static lists), the [`Campaign`]s sent to them with one
//! [`CampaignRecipient`] row per address, each contact's [`Consent`], and the
//! [`Suppression`] list every send honours.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::string_enum;
use crate::schema::{Column, ColumnType as T, EntityKind, Index, Persist, NAME_CHARS};

string_enum! {
    /// Where a campaign is.
    CampaignState {
        /// Being written; nothing is sent.
        Draft = "draft",
        /// Waiting for its time; the scheduler starts it.
        Scheduled = "scheduled",
        /// Its audience is frozen and messages are going out.
        Sending = "sending",
        /// Stopped by a person or after too many SMTP errors; resuming continues
        /// where it stopped.
        Paused = "paused",
        /// Every recipient was handled.
        Sent = "sent",
        /// Stopped for good.
        Cancelled = "cancelled",
    }
}

string_enum! {
    /// Where one recipient's message is.
    RecipientState {
        /// Waiting to be sent.
        Queued = "queued",
        /// Handed to the SMTP server and not yet confirmed: the one window in which a
        /// crash leaves the outcome unknown.
        Sending = "sending",
        /// Accepted by the SMTP server.
        Sent = "sent",
        /// Refused for good (a permanent SMTP error).
        Failed = "failed",
        /// Left unconfirmed by a sender that stopped mid-message: maybe delivered, never
        /// sent again (nobody gets a campaign twice).
        Interrupted = "interrupted",
        /// Dropped before sending: suppressed or unsubscribed after the audience froze.
        Skipped = "skipped",
    }
}

string_enum! {
    /// A contact's permission to receive campaigns.
    ConsentStatus {
        /// Never asked: campaigns go out (soft opt-in), unless the workspace requires
        /// explicit consent.
        Unknown = "unknown",
        /// Agreed.
        Subscribed = "subscribed",
        /// Asked to be confirmed (double opt-in) and has not yet confirmed.
        Pending = "pending",
        /// Refused or unsubscribed: no campaign reaches them.
        Unsubscribed = "unsubscribed",
    }
}

string_enum! {
    /// Why an address is suppressed.
    SuppressionReason {
        /// The person unsubscribed.
        Unsubscribed = "unsubscribed",
        /// A hard bounce: the address does not exist.
        Bounced = "bounced",
        /// A spam complaint.
        Complained = "complained",
        /// Added by an admin.
        Manual = "manual",
    }
}

/// A campaign email design: MJML with minijinja placeholders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CampaignTemplate {
    /// Id.
    pub id: Uuid,
    /// Its name in lists.
    pub name: String,
    /// The subject line (minijinja: `Hello {{ contact.first_name }}`).
    pub subject: String,
    /// The MJML source (`<mjml><mj-body>…`), rendered to responsive HTML by mrml.
    pub mjml: String,
    /// The plain-text part; derived from the HTML when absent.
    pub text: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: Option<Uuid>,
    /// Version.
    pub version: i64,
}

impl Persist for CampaignTemplate {
    const KIND: EntityKind = EntityKind::CampaignTemplate;
}

/// Storage columns of campaign templates.
pub static TEMPLATE_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).sort().chars(NAME_CHARS),
    Column::new("subject", "subject", T::Text),
    Column::new("mjml", "mjml", T::Text),
    Column::new("text", "text", T::Text).null(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("created_by", "createdBy", T::Uuid).null().filter(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `campaign_templates` besides the primary key: by name.
pub static TEMPLATE_INDEXES: &[Index] = &[Index::on("campaign_templates_name_idx", &["name", "id"])];

/// A set of contacts: a saved filter (in the list queries' grammar, over contacts and
/// their company), a static list, or both (the union).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ContactSegment))]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// Id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// A filter over contacts (`lifecycleStage = 'customer' and tags has 'vip'`).
    pub filter: Option<String>,
    /// A filter over the contacts' companies (`industry = 'Software'`).
    pub company_filter: Option<String>,
    /// Contacts named one by one (a static list).
    pub contact_ids: Vec<Uuid>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: Option<Uuid>,
    /// Version.
    pub version: i64,
}

impl Persist for Segment {
    const KIND: EntityKind = EntityKind::Segment;
}

/// Storage columns of segments.
pub static SEGMENT_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).sort().chars(NAME_CHARS),
    Column::new("description", "description", T::Text).null(),
    Column::new("filter", "filter", T::Text).null(),
    Column::new("company_filter", "companyFilter", T::Text).null(),
    Column::new("contact_ids", "contactIds", T::UuidList),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("created_by", "createdBy", T::Uuid).null().filter(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `segments` besides the primary key: by name.
pub static SEGMENT_INDEXES: &[Index] = &[Index::on("segments_name_idx", &["name", "id"])];

/// An email campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    /// Id.
    pub id: Uuid,
    /// Its name (recipients do not see it).
    pub name: String,
    /// The design it sends.
    pub template_id: Uuid,
    /// The segments whose contacts get it (their union).
    pub segment_ids: Vec<Uuid>,
    /// The segments whose contacts never get it, whatever the others say.
    pub exclude_segment_ids: Vec<Uuid>,
    /// The sender's display name; the server's default when absent.
    pub from_name: Option<String>,
    /// Where it is.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "draft"))]
    pub state: CampaignState,
    /// When the scheduler starts it.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// When sending began (the audience froze).
    pub started_at: Option<DateTime<Utc>>,
    /// When the last recipient was handled, or it was cancelled.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it is paused.
    pub paused_reason: Option<String>,
    /// Has its audience been frozen into recipient rows?
    pub frozen: bool,
    /// Recipients in the frozen audience.
    pub audience: i64,
    /// SMTP errors since it last (re)started; it pauses at the configured limit.
    pub errors: i64,
    /// The subject sent, fixed when the audience froze.
    pub subject: Option<String>,
    /// The HTML sent (rendered MJML, placeholders still in), fixed when it froze.
    pub html: Option<String>,
    /// The text part sent, fixed when it froze.
    pub text: Option<String>,
    /// The sender holding it: it alone sends until then.
    pub lease_until: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: Option<Uuid>,
    /// Version.
    pub version: i64,
}

impl Persist for Campaign {
    const KIND: EntityKind = EntityKind::Campaign;
}

/// Storage columns of campaigns.
pub static CAMPAIGN_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).sort(),
    Column::new("template_id", "templateId", T::Uuid).filter(),
    Column::new("segment_ids", "segmentIds", T::UuidList).filter(),
    Column::new("exclude_segment_ids", "excludeSegmentIds", T::UuidList).filter(),
    Column::new("from_name", "fromName", T::Text).null(),
    Column::new("state", "state", T::Text).filter().choices(CampaignState::CHOICES),
    Column::new("scheduled_at", "scheduledAt", T::Timestamp).null().sort(),
    Column::new("started_at", "startedAt", T::Timestamp).null().sort(),
    Column::new("finished_at", "finishedAt", T::Timestamp).null().sort(),
    Column::new("paused_reason", "pausedReason", T::Text).null(),
    Column::new("frozen", "frozen", T::Bool).filter(),
    Column::new("audience", "audience", T::Int).filter(),
    Column::new("errors", "errors", T::Int).filter(),
    Column::new("subject", "subject", T::Text).null(),
    Column::new("html", "html", T::Text).null(),
    Column::new("text", "text", T::Text).null(),
    Column::new("lease_until", "leaseUntil", T::Timestamp).sort(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("created_by", "createdBy", T::Uuid).null().filter(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `campaigns` besides the primary key: the scheduler's.
pub static CAMPAIGN_INDEXES: &[Index] = &[Index::on("campaigns_state_idx", &["state", "lease_until"])];

/// One address of a campaign's frozen audience and what became of its message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CampaignRecipient {
    /// Id: derived from the campaign and the address, so an address is in a campaign
    /// once, however often its audience is frozen.
    pub id: Uuid,
    /// The campaign.
    pub campaign_id: Uuid,
    /// The contact.
    pub contact_id: Uuid,
    /// The address (lower case).
    pub email: String,
    /// Where its message is.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "sent"))]
    pub state: RecipientState,
    /// Attempts so far.
    pub attempts: i64,
    /// When the SMTP server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// The last SMTP error.
    pub error: Option<String>,
    /// The first open.
    pub opened_at: Option<DateTime<Utc>>,
    /// Opens (pixel loads).
    pub opens: i64,
    /// The first click.
    pub clicked_at: Option<DateTime<Utc>>,
    /// Clicks.
    pub clicks: i64,
    /// When a bounce came back.
    pub bounced_at: Option<DateTime<Utc>>,
    /// `hard` or `soft`.
    pub bounce: Option<String>,
    /// When the recipient unsubscribed through this campaign.
    pub unsubscribed_at: Option<DateTime<Utc>>,
    /// When they complained (marked it as spam).
    pub complained_at: Option<DateTime<Utc>>,
    /// Version.
    pub version: i64,
}

impl Persist for CampaignRecipient {
    const KIND: EntityKind = EntityKind::CampaignRecipient;
}

/// Storage columns of campaign recipients.
pub static RECIPIENT_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("campaign_id", "campaignId", T::Uuid).filter(),
    Column::new("contact_id", "contactId", T::Uuid).filter(),
    Column::new("email", "email", T::Text).sort(),
    Column::new("state", "state", T::Text).filter().choices(RecipientState::CHOICES),
    Column::new("attempts", "attempts", T::Int).filter(),
    Column::new("sent_at", "sentAt", T::Timestamp).null().sort(),
    Column::new("error", "error", T::Text).null(),
    Column::new("opened_at", "openedAt", T::Timestamp).null().sort(),
    Column::new("opens", "opens", T::Int).filter(),
    Column::new("clicked_at", "clickedAt", T::Timestamp).null().sort(),
    Column::new("clicks", "clicks", T::Int).filter(),
    Column::new("bounced_at", "bouncedAt", T::Timestamp).null().sort(),
    Column::new("bounce", "bounce", T::Text).null().filter(),
    Column::new("unsubscribed_at", "unsubscribedAt", T::Timestamp).null().sort(),
    Column::new("complained_at", "complainedAt", T::Timestamp).null().sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `campaign_recipients` besides the primary key: a campaign's by state
/// (the sender's queue), a contact's history, the hourly window.
pub static RECIPIENT_INDEXES: &[Index] = &[
    Index::on("campaign_recipients_queue_idx", &["campaign_id", "state", "id"]),
    Index::on("campaign_recipients_contact_idx", &["contact_id", "id"]),
    Index::on("campaign_recipients_sent_idx", &["sent_at"]),
];

/// A contact's permission to get campaigns (id: the contact's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    /// The contact's id.
    pub id: Uuid,
    /// Their answer.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "subscribed"))]
    pub status: ConsentStatus,
    /// Where it came from (`form`, `import`, `unsubscribe-link`, `admin`, …).
    pub source: String,
    /// When it was given or withdrawn.
    pub changed_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

impl Persist for Consent {
    const KIND: EntityKind = EntityKind::Consent;
}

/// Storage columns of consents.
pub static CONSENT_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("status", "status", T::Text).filter().choices(ConsentStatus::CHOICES),
    Column::new("source", "source", T::Text).filter(),
    Column::new("changed_at", "changedAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `consents` besides the primary key.
pub static CONSENT_INDEXES: &[Index] = &[Index::on("consents_status_idx", &["status"])];

/// An address no campaign may reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    /// Id.
    pub id: Uuid,
    /// The address (lower case), unique.
    pub email: String,
    /// Why.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "bounced"))]
    pub reason: SuppressionReason,
    /// What told us (`one-click`, `dsn`, `webhook`, `admin`).
    pub source: String,
    /// The campaign it came from.
    pub campaign_id: Option<Uuid>,
    /// Details (the DSN's diagnostic code).
    pub detail: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

impl Persist for Suppression {
    const KIND: EntityKind = EntityKind::Suppression;
}

/// Storage columns of suppressions.
pub static SUPPRESSION_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("email", "email", T::Text).sort(),
    Column::new("reason", "reason", T::Text).filter().choices(SuppressionReason::CHOICES),
    Column::new("source", "source", T::Text).filter(),
    Column::new("campaign_id", "campaignId", T::Uuid).null().filter(),
    Column::new("detail", "detail", T::Text).null(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `suppressions` besides the primary key: one row per address.
pub static SUPPRESSION_INDEXES: &[Index] = &[Index::on("suppressions_email_key", &["email"]).unique()];
