//! The persisted shape of every entity: its table, its typed columns, its unique keys.
//!
//! Core owns this description so that backends stay thin translations: a backend maps
//! [`ColumnType`]s to its own types and [`Value`]s to its own parameters, and
//! [`to_row`]/[`from_row`] (shared by all) turn domain structs into rows and back. A field
//! without a column is an error, never silently dropped.

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::policy::Resource;

/// The type of a persisted column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// A UUID.
    Uuid,
    /// UTF-8 text (compared and sorted by bytes on every backend).
    Text,
    /// A 64-bit integer.
    Int,
    /// A boolean.
    Bool,
    /// A UTC timestamp with millisecond precision.
    Timestamp,
    /// A calendar date.
    Date,
    /// A JSON document (object or array); not filterable.
    Json,
    /// A JSON array of UUIDs; filters test membership.
    UuidList,
    /// A JSON array of strings; filters test membership.
    TextList,
}

impl ColumnType {
    /// The element type of a list column.
    pub fn element(&self) -> Option<ColumnType> {
        match self {
            ColumnType::UuidList => Some(ColumnType::Uuid),
            ColumnType::TextList => Some(ColumnType::Text),
            _ => None,
        }
    }

    /// Is this stored as a JSON document?
    pub fn is_json(&self) -> bool {
        matches!(self, ColumnType::Json | ColumnType::UuidList | ColumnType::TextList)
    }
}

/// One persisted column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The storage name (`lifecycle_stage`).
    pub name: &'static str,
    /// The API name (`lifecycleStage`); `parent.child` for a member of a nested object;
    /// empty for a column computed by core (`search_text`).
    pub field: &'static str,
    /// The type.
    pub ty: ColumnType,
    /// May it be NULL?
    pub nullable: bool,
    /// May list queries filter on it?
    pub filterable: bool,
    /// May list queries sort by it?
    pub sortable: bool,
    /// The allowed values of an enumerated text column.
    pub choices: &'static [&'static str],
    /// Are values lower-cased (emails, domains), so filter values are lower-cased too?
    pub lowercase: bool,
    /// The most characters a text column holds (the services refuse longer), 0 when
    /// unbounded. Declared on the text columns that lead a sort index ([`NAME_CHARS`]):
    /// a backend that can index only a prefix of unbounded text (MariaDB) keys these
    /// whole, so a page sorted by them is read in index order.
    pub max_chars: usize,
}

/// The most characters of a record's name (a contact's, a company's, a product's…).
pub const NAME_CHARS: usize = 200;

impl Column {
    /// A non-null column, neither filterable nor sortable.
    pub const fn new(name: &'static str, field: &'static str, ty: ColumnType) -> Self {
        Self {
            name,
            field,
            ty,
            nullable: false,
            filterable: false,
            sortable: false,
            choices: &[],
            lowercase: false,
            max_chars: 0,
        }
    }
    /// May be NULL.
    pub const fn null(mut self) -> Self {
        self.nullable = true;
        self
    }
    /// Allow list filters (`filter=`) on the column.
    pub const fn filter(mut self) -> Self {
        self.filterable = true;
        self
    }
    /// Filterable and sortable.
    pub const fn sort(mut self) -> Self {
        self.filterable = true;
        self.sortable = true;
        self
    }
    /// Limited to these values.
    pub const fn choices(mut self, c: &'static [&'static str]) -> Self {
        self.choices = c;
        self
    }
    /// Values are lower-case.
    pub const fn lower(mut self) -> Self {
        self.lowercase = true;
        self
    }
    /// Holds at most `n` characters ([`Column::max_chars`]).
    pub const fn chars(mut self, n: usize) -> Self {
        self.max_chars = n;
        self
    }
    /// Is this the computed free-text search column?
    pub fn is_computed(&self) -> bool {
        self.field.is_empty()
    }
}

/// Which rows an index covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexRows {
    /// Every row.
    All,
    /// Rows not soft-deleted (`WHERE deleted_at IS NULL`): the list paths, and unique
    /// keys that a deleted record frees.
    Live,
    /// Soft-deleted rows (`WHERE deleted_at IS NOT NULL`): the trash and the purge.
    Deleted,
    /// Outbox events not yet delivered (`WHERE delivered_at IS NULL`).
    Undelivered,
}

/// One index of a kind: its name (the same on every backend), its key columns in order,
/// whether it is unique and which rows it covers. Unique indexes are the kind's unique
/// keys besides the id; a conflict names the field of the last key column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Index {
    /// The index (constraint) name.
    pub name: &'static str,
    /// The storage columns of the key, in order.
    pub columns: &'static [&'static str],
    /// Unique among the rows it covers.
    pub unique: bool,
    /// The rows it covers.
    pub rows: IndexRows,
    /// Indexes the elements of a list column (membership filters), not the whole value.
    /// Backends without such indexes (SQLite) leave it out.
    pub members: bool,
}

impl Index {
    /// A plain index over every row.
    pub const fn on(name: &'static str, columns: &'static [&'static str]) -> Self {
        Self { name, columns, unique: false, rows: IndexRows::All, members: false }
    }
    /// Make the index unique (a second row with the same key is a `Conflict`).
    pub const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    /// Over live rows only.
    pub const fn live(mut self) -> Self {
        self.rows = IndexRows::Live;
        self
    }
    /// Over soft-deleted rows only.
    pub const fn deleted(mut self) -> Self {
        self.rows = IndexRows::Deleted;
        self
    }
    /// Over undelivered outbox events only.
    pub const fn undelivered(mut self) -> Self {
        self.rows = IndexRows::Undelivered;
        self
    }
    /// Over the elements of a list column.
    pub const fn members(mut self) -> Self {
        self.members = true;
        self
    }
}

/// How an analytics column is computed from its stored column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derive {
    /// The value itself (a UUID as its text).
    Value,
    /// The first UUID of a list (a deal's first contact).
    FirstOfList,
    /// The first word of a name.
    FirstWord,
    /// The words after the first (absent for a one-word name).
    OtherWords,
    /// A head count as its size bucket (`Company::size_bucket`).
    SizeBucket,
}

/// One column of a kind's analytics table (`docs/REPORTS.md`): `column` says how reports
/// see it (name, type — ids are text —, nullability, filterable, choices), and it is
/// computed from the stored column `from` by `derive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposed {
    /// The column as reports see it.
    pub column: Column,
    /// The stored column it comes from.
    pub from: &'static str,
    /// How.
    pub derive: Derive,
}

impl Exposed {
    /// A filterable, non-null column `name` of type `ty`, the value of stored column `from`.
    pub const fn new(name: &'static str, ty: ColumnType, from: &'static str) -> Self {
        Self { column: Column::new(name, name, ty).filter(), from, derive: Derive::Value }
    }
    /// An id column (text in the analytics tables).
    pub const fn id(name: &'static str, from: &'static str) -> Self {
        Self::new(name, ColumnType::Text, from)
    }
    /// May be null.
    pub const fn null(mut self) -> Self {
        self.column.nullable = true;
        self
    }
    /// Not offered to custom reports' filters (`deleted_at`: reports see live rows).
    pub const fn hidden(mut self) -> Self {
        self.column.filterable = false;
        self
    }
    /// Limited to these values.
    pub const fn choices(mut self, c: &'static [&'static str]) -> Self {
        self.column.choices = c;
        self
    }
    /// Computed by `derive`.
    pub const fn derive(mut self, derive: Derive) -> Self {
        self.derive = derive;
        self
    }
}

/// A typed value of a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL, BSON null: no value.
    Null,
    /// A UUID.
    Uuid(Uuid),
    /// A UTF-8 string (also enums as their wire names, and decimal text).
    Text(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A timestamp.
    Timestamp(DateTime<Utc>),
    /// A date.
    Date(NaiveDate),
    /// A JSON document.
    Json(serde_json::Value),
}

impl Value {
    /// Is this NULL?
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// One stored record: values in the order of its kind's columns.
pub type Row = Vec<Value>;

/// Every kind of stored entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    /// User accounts.
    User,
    /// Teams.
    Team,
    /// Companies.
    Company,
    /// Contacts.
    Contact,
    /// Deals.
    Deal,
    /// Deal stage history entries.
    DealStageChange,
    /// Tasks.
    Task,
    /// Interactions (calls, emails, meetings, notes) logged on contacts.
    Interaction,
    /// Audit events.
    AuditEvent,
    /// Outbox events.
    OutboxEvent,
    /// Login sessions.
    Session,
    /// Refresh tokens of sessions.
    RefreshToken,
    /// Single-use tokens sent by email.
    AuthToken,
    /// Third-party identities linked to users.
    Identity,
    /// Remembered answers of requests made with an idempotency key.
    IdempotencyKey,
    /// Saved reports.
    SavedReport,
    /// Counts of failed sign-ins.
    LoginThrottle,
    /// Outgoing deliveries (mail, webhooks, chat posts) of outbox events.
    Delivery,
    /// Outgoing webhook subscriptions.
    Webhook,
    /// In-app notifications.
    Notification,
    /// Slack and Teams webhooks of users and teams.
    ChatChannel,
    /// Campaign email designs.
    CampaignTemplate,
    /// Segments of contacts (saved filters and static lists).
    Segment,
    /// Email campaigns.
    Campaign,
    /// The frozen audience of campaigns, one row per address.
    CampaignRecipient,
    /// Contacts' consent to campaigns.
    Consent,
    /// Addresses no campaign may reach.
    Suppression,
    /// The billing catalogue.
    Product,
    /// Quotes.
    Quote,
    /// Invoices and credit notes.
    Invoice,
    /// The last number of each billing series and year.
    BillingSequence,
    /// Payments and refunds of invoices.
    Payment,
    /// The seller's details and billing defaults.
    BillingSettings,
    /// Payment gateways' webhook events.
    GatewayEvent,
    /// Recurring billing of companies.
    Subscription,
    /// Dated exchange rates.
    ExchangeRate,
    /// Companies' customers and saved payment methods at a gateway.
    PaymentProfile,
    /// An import of a CSV or XLSX file.
    ImportJob,
    /// A merge of contacts, kept for undo.
    ContactMerge,
    /// A file attached to a record.
    Attachment,
    /// Which replica runs each periodic job.
    SchedulerLease,
}

impl EntityKind {
    /// Every kind, in dependency order.
    pub const ALL: [EntityKind; 41] = [
        EntityKind::Team,
        EntityKind::User,
        EntityKind::Company,
        EntityKind::Contact,
        EntityKind::Deal,
        EntityKind::DealStageChange,
        EntityKind::Task,
        EntityKind::Interaction,
        EntityKind::AuditEvent,
        EntityKind::OutboxEvent,
        EntityKind::Session,
        EntityKind::RefreshToken,
        EntityKind::AuthToken,
        EntityKind::Identity,
        EntityKind::IdempotencyKey,
        EntityKind::SavedReport,
        EntityKind::LoginThrottle,
        EntityKind::Delivery,
        EntityKind::Webhook,
        EntityKind::Notification,
        EntityKind::ChatChannel,
        EntityKind::CampaignTemplate,
        EntityKind::Segment,
        EntityKind::Campaign,
        EntityKind::CampaignRecipient,
        EntityKind::Consent,
        EntityKind::Suppression,
        EntityKind::Product,
        EntityKind::Quote,
        EntityKind::Invoice,
        EntityKind::BillingSequence,
        EntityKind::Payment,
        EntityKind::BillingSettings,
        EntityKind::GatewayEvent,
        EntityKind::Subscription,
        EntityKind::ExchangeRate,
        EntityKind::PaymentProfile,
        EntityKind::ImportJob,
        EntityKind::ContactMerge,
        EntityKind::Attachment,
        EntityKind::SchedulerLease,
    ];

    /// The table (collection) name.
    pub const fn table(&self) -> &'static str {
        match self {
            EntityKind::User => "users",
            EntityKind::Team => "teams",
            EntityKind::Company => "companies",
            EntityKind::Contact => "contacts",
            EntityKind::Deal => "deals",
            EntityKind::DealStageChange => "deal_stage_history",
            EntityKind::Task => "tasks",
            EntityKind::Interaction => "interactions",
            EntityKind::AuditEvent => "audit_events",
            EntityKind::OutboxEvent => "outbox_events",
            EntityKind::Session => "sessions",
            EntityKind::RefreshToken => "refresh_tokens",
            EntityKind::AuthToken => "auth_tokens",
            EntityKind::Identity => "identities",
            EntityKind::IdempotencyKey => "idempotency_keys",
            EntityKind::SavedReport => "saved_reports",
            EntityKind::LoginThrottle => "login_throttles",
            EntityKind::Delivery => "deliveries",
            EntityKind::Webhook => "webhooks",
            EntityKind::Notification => "notifications",
            EntityKind::ChatChannel => "chat_channels",
            EntityKind::CampaignTemplate => "campaign_templates",
            EntityKind::Segment => "segments",
            EntityKind::Campaign => "campaigns",
            EntityKind::CampaignRecipient => "campaign_recipients",
            EntityKind::Consent => "consents",
            EntityKind::Suppression => "suppressions",
            EntityKind::Product => "products",
            EntityKind::Quote => "quotes",
            EntityKind::Invoice => "invoices",
            EntityKind::BillingSequence => "billing_sequences",
            EntityKind::Payment => "payments",
            EntityKind::BillingSettings => "billing_settings",
            EntityKind::GatewayEvent => "gateway_events",
            EntityKind::Subscription => "subscriptions",
            EntityKind::ExchangeRate => "exchange_rates",
            EntityKind::PaymentProfile => "payment_profiles",
            EntityKind::ImportJob => "import_jobs",
            EntityKind::ContactMerge => "contact_merges",
            EntityKind::Attachment => "attachments",
            EntityKind::SchedulerLease => "scheduler_leases",
        }
    }

    /// The singular name, as used in errors and event names.
    pub fn name(&self) -> &'static str {
        match self {
            EntityKind::User => "user",
            EntityKind::Team => "team",
            EntityKind::Company => "company",
            EntityKind::Contact => "contact",
            EntityKind::Deal => "deal",
            EntityKind::DealStageChange => "deal_stage_change",
            EntityKind::Task => "task",
            EntityKind::Interaction => "interaction",
            EntityKind::AuditEvent => "audit_event",
            EntityKind::OutboxEvent => "outbox_event",
            EntityKind::Session => "session",
            EntityKind::RefreshToken => "refresh_token",
            EntityKind::AuthToken => "auth_token",
            EntityKind::Identity => "identity",
            EntityKind::IdempotencyKey => "idempotency_key",
            EntityKind::SavedReport => "saved_report",
            EntityKind::LoginThrottle => "login_throttle",
            EntityKind::Delivery => "delivery",
            EntityKind::Webhook => "webhook",
            EntityKind::Notification => "notification",
            EntityKind::ChatChannel => "chat_channel",
            EntityKind::CampaignTemplate => "campaign_template",
            EntityKind::Segment => "segment",
            EntityKind::Campaign => "campaign",
            EntityKind::CampaignRecipient => "campaign_recipient",
            EntityKind::Consent => "consent",
            EntityKind::Suppression => "suppression",
            EntityKind::Product => "product",
            EntityKind::Quote => "quote",
            EntityKind::Invoice => "invoice",
            EntityKind::BillingSequence => "billing_sequence",
            EntityKind::Payment => "payment",
            EntityKind::BillingSettings => "billing_settings",
            EntityKind::GatewayEvent => "gateway_event",
            EntityKind::Subscription => "subscription",
            EntityKind::ExchangeRate => "exchange_rate",
            EntityKind::PaymentProfile => "payment_profile",
            EntityKind::ImportJob => "import_job",
            EntityKind::ContactMerge => "contact_merge",
            EntityKind::Attachment => "attachment",
            EntityKind::SchedulerLease => "scheduler_lease",
        }
    }

    /// The policy resource guarding this kind.
    pub fn resource(&self) -> Resource {
        match self {
            EntityKind::User => Resource::Users,
            EntityKind::Team => Resource::Teams,
            EntityKind::Company => Resource::Companies,
            // Attachments are guarded by the record they belong to (`bulk::attachments`).
            EntityKind::Contact | EntityKind::ContactMerge | EntityKind::Attachment => Resource::Contacts,
            EntityKind::Deal | EntityKind::DealStageChange => Resource::Deals,
            EntityKind::Task => Resource::Tasks,
            EntityKind::Interaction => Resource::Interactions,
            EntityKind::AuditEvent | EntityKind::OutboxEvent => Resource::Audit,
            EntityKind::Session
            | EntityKind::RefreshToken
            | EntityKind::AuthToken
            | EntityKind::Identity
            | EntityKind::IdempotencyKey
            | EntityKind::LoginThrottle
            | EntityKind::SchedulerLease => Resource::Users,
            EntityKind::SavedReport => Resource::Reports,
            EntityKind::Delivery | EntityKind::Webhook | EntityKind::ChatChannel => Resource::Integrations,
            EntityKind::Notification | EntityKind::ImportJob => Resource::Users,
            EntityKind::CampaignTemplate
            | EntityKind::Segment
            | EntityKind::Campaign
            | EntityKind::CampaignRecipient
            | EntityKind::Consent
            | EntityKind::Suppression => Resource::Campaigns,
            EntityKind::Product
            | EntityKind::Quote
            | EntityKind::Invoice
            | EntityKind::BillingSequence
            | EntityKind::Payment
            | EntityKind::BillingSettings
            | EntityKind::GatewayEvent
            | EntityKind::Subscription
            | EntityKind::ExchangeRate
            | EntityKind::PaymentProfile => Resource::Billing,
        }
    }

    /// The storage columns the policy's scopes test: (owner, team, assignee). They hold
    /// the same values as [`crate::model::Record::ownership`].
    pub fn ownership_columns(&self) -> (Option<&'static str>, Option<&'static str>, Option<&'static str>) {
        match self {
            EntityKind::User => (Some("id"), Some("team_id"), None),
            EntityKind::Team => (Some("manager_id"), Some("id"), None),
            EntityKind::Task => (Some("owner_id"), Some("team_id"), Some("assigned_user")),
            EntityKind::AuditEvent => (Some("actor_id"), None, None),
            EntityKind::ImportJob => (Some("owner_id"), None, None),
            // Seen through the records they belong to.
            EntityKind::ContactMerge | EntityKind::Attachment => (None, None, None),
            EntityKind::Session
            | EntityKind::RefreshToken
            | EntityKind::AuthToken
            | EntityKind::Identity
            | EntityKind::Notification => (Some("user_id"), None, None),
            EntityKind::DealStageChange
            | EntityKind::OutboxEvent
            | EntityKind::IdempotencyKey
            | EntityKind::LoginThrottle
            | EntityKind::SchedulerLease
            | EntityKind::Delivery
            | EntityKind::Webhook
            | EntityKind::ChatChannel
            | EntityKind::CampaignTemplate
            | EntityKind::Segment
            | EntityKind::Campaign
            | EntityKind::CampaignRecipient
            | EntityKind::Consent
            | EntityKind::Suppression
            | EntityKind::Product
            | EntityKind::BillingSequence
            | EntityKind::BillingSettings
            | EntityKind::GatewayEvent
            | EntityKind::ExchangeRate
            | EntityKind::PaymentProfile => (None, None, None),
            _ => (Some("owner_id"), Some("team_id"), None),
        }
    }
}

/// A type stored as rows of one [`EntityKind`].
pub trait Persist: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Its kind.
    const KIND: EntityKind;
    /// The text the computed `search_text` column holds (lower-cased by [`to_row`]).
    fn search_text(&self) -> String {
        String::new()
    }
}

fn bad_row(kind: EntityKind, why: impl std::fmt::Display) -> Error {
    Error::internal_msg(format!("{} row: {why}", kind.name()))
}

/// Turns a value into a row of its kind: each field goes straight into its column's
/// typed value, with no JSON document in between (see `row_ser`); a field without a
/// column is an error.
pub fn to_row<T: Persist>(item: &T) -> Result<Row> {
    let kind = T::KIND;
    let cols = kind.columns();
    let mut row = vec![Value::Null; cols.len()];
    crate::row_ser::to_slots(cols, item, &mut row).map_err(|e| bad_row(kind, e))?;
    for (col, value) in cols.iter().zip(row.iter_mut()) {
        if col.is_computed() {
            *value = Value::Text(item.search_text().to_lowercase());
        } else if value.is_null() && !col.nullable {
            return Err(bad_row(kind, format!("{} may not be null", col.field)));
        }
    }
    Ok(row)
}

/// Turns a row back into a value of its kind: each typed value goes straight to its
/// field's deserialiser, with no JSON document in between (see `row_de`).
pub fn from_row<T: Persist>(mut row: Row) -> Result<T> {
    let kind = T::KIND;
    let cols = kind.columns();
    if row.len() != cols.len() {
        return Err(bad_row(kind, format!("{} values for {} columns", row.len(), cols.len())));
    }
    T::deserialize(crate::row_de::RowDe::new(cols, &mut row)).map_err(|e| bad_row(kind, e))
}

/// Converts a JSON value to the column's typed value.
pub fn json_to_value(col: &Column, v: &serde_json::Value) -> Option<Value> {
    json_into_value(col, v.clone())
}

/// Converts a JSON value to the column's typed value, taking it.
pub fn json_into_value(col: &Column, v: serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    Some(match (col.ty, v) {
        (ColumnType::Uuid, J::String(s)) => Value::Uuid(Uuid::parse_str(&s).ok()?),
        (ColumnType::Text, J::String(s)) => Value::Text(s),
        (ColumnType::Int, v) => Value::Int(v.as_i64()?),
        (ColumnType::Bool, J::Bool(b)) => Value::Bool(b),
        // Stored to the millisecond on every backend, as cursors and the API show them.
        (ColumnType::Timestamp, J::String(s)) => {
            timestamp_value(DateTime::parse_from_rfc3339(&s).ok()?.with_timezone(&Utc))
        }
        (ColumnType::Date, J::String(s)) => Value::Date(NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()?),
        (ColumnType::Json | ColumnType::UuidList | ColumnType::TextList, v) => Value::Json(v),
        _ => return None,
    })
}

/// Converts a typed value to JSON, as the domain types' serde expects.
pub fn value_to_json(v: Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Uuid(u) => serde_json::Value::String(u.to_string()),
        Value::Text(s) => serde_json::Value::String(s),
        Value::Int(i) => serde_json::Value::from(i),
        Value::Bool(b) => serde_json::Value::Bool(b),
        Value::Timestamp(t) => serde_json::Value::String(format_ts(&t)),
        Value::Date(d) => serde_json::Value::String(d.format("%Y-%m-%d").to_string()),
        Value::Json(j) => j,
    }
}

/// A timestamp as stored: cut to whole milliseconds, the precision of the API, of
/// cursors and of every backend.
pub fn timestamp_value(t: DateTime<Utc>) -> Value {
    Value::Timestamp(crate::clock::truncate_ms(t))
}

/// An optional value as stored: `Null` when absent.
pub fn or_null<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    v.map_or(Value::Null, f)
}

/// The one timestamp format of crm-rs: RFC 3339, UTC, milliseconds.
pub fn format_ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The former JSON round trip of [`from_row`], kept as the oracle its tests compare with.
#[cfg(test)]
pub(crate) fn from_row_via_json<T: Persist>(row: Row) -> Result<T> {
    use serde_json::Map;
    let kind = T::KIND;
    let cols = kind.columns();
    if row.len() != cols.len() {
        return Err(bad_row(kind, format!("{} values for {} columns", row.len(), cols.len())));
    }
    let mut obj = Map::with_capacity(cols.len());
    for (col, value) in cols.iter().zip(row) {
        if col.is_computed() {
            continue;
        }
        let json = value_to_json(value);
        match col.field.split_once('.') {
            Some((parent, child)) => {
                let entry = obj.entry(parent).or_insert_with(|| serde_json::Value::Object(Map::new()));
                if let serde_json::Value::Object(m) = entry {
                    if !json.is_null() {
                        m.insert(child.to_string(), json);
                    }
                }
            }
            None => {
                obj.insert(col.field.to_string(), json);
            }
        }
    }
    // A nested object whose members are all NULL is absent.
    for col in cols {
        if let Some((parent, _)) = col.field.split_once('.') {
            if obj.get(parent).and_then(|v| v.as_object()).is_some_and(|m| m.is_empty()) {
                obj.insert(parent.to_string(), serde_json::Value::Null);
            }
        }
    }
    serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| bad_row(kind, e))
}

/// The former JSON round trip of [`to_row`], kept as the oracle its tests compare with.
#[cfg(test)]
pub(crate) fn to_row_via_json<T: Persist>(item: &T) -> Result<Row> {
    use serde_json::Map;
    let kind = T::KIND;
    let json = serde_json::to_value(item).map_err(|e| Error::internal("serialising a record", e))?;
    let serde_json::Value::Object(mut obj) = json else {
        return Err(bad_row(kind, "not a JSON object"));
    };
    let mut row = Vec::with_capacity(kind.columns().len());
    // Nested objects (`contactDetails.email`), taken out of `obj` when first met.
    let mut parents: Vec<(&str, Map<String, serde_json::Value>)> = Vec::new();
    for col in kind.columns() {
        if col.is_computed() {
            row.push(Value::Text(item.search_text().to_lowercase()));
            continue;
        }
        let found = match col.field.split_once('.') {
            Some((parent, child)) => {
                let at = match parents.iter().position(|(p, _)| *p == parent) {
                    Some(i) => Some(i),
                    None => match obj.remove(parent) {
                        Some(serde_json::Value::Object(m)) => {
                            parents.push((parent, m));
                            Some(parents.len() - 1)
                        }
                        None | Some(serde_json::Value::Null) => None,
                        Some(other) => return Err(bad_row(kind, format!("{parent}: {other} is not an object"))),
                    },
                };
                at.and_then(|i| parents[i].1.remove(child))
            }
            None => obj.remove(col.field),
        };
        let value = match found {
            None | Some(serde_json::Value::Null) => Value::Null,
            Some(v) => json_into_value(col, v)
                .ok_or_else(|| bad_row(kind, format!("{} does not hold a {:?}", col.field, col.ty)))?,
        };
        if value.is_null() && !col.nullable {
            return Err(bad_row(kind, format!("{} may not be null", col.field)));
        }
        row.push(value);
    }
    let mut unmapped: Vec<String> = obj.keys().cloned().collect();
    for (parent, rest) in &parents {
        unmapped.extend(rest.keys().map(|k| format!("{parent}.{k}")));
    }
    if !unmapped.is_empty() {
        return Err(bad_row(kind, format!("fields without a column: {unmapped:?}")));
    }
    Ok(row)
}
