//! The registry of kinds: each [`EntityKind`]'s one declaration (columns, indexes), read
//! from the module that defines the kind.
//!
//! It sits above the models so that [`crate::schema`] (the vocabulary: columns, indexes,
//! values) does not import them and they do not import each other through it. Backends
//! create what this declares (SQL migrations are checked against it by the conformance
//! case `schema_agrees`; MongoDB's indexes are generated from it), and the analytics
//! catalog reads it. `docs/ARCHITECTURE.md` has the add-a-field checklist.

use crate::error::{Error, Result};
use crate::model;
use crate::schema::{Column, EntityKind, Exposed, Index};

impl EntityKind {
    /// The columns, `id` first, in the order of the SQL tables.
    pub fn columns(&self) -> &'static [Column] {
        match self {
            EntityKind::User => model::user::COLUMNS,
            EntityKind::Team => model::team::COLUMNS,
            EntityKind::Company => model::company::COLUMNS,
            EntityKind::Contact => model::contact::COLUMNS,
            EntityKind::Deal => model::deal::COLUMNS,
            EntityKind::DealStageChange => model::deal::HISTORY_COLUMNS,
            EntityKind::Task => model::task::COLUMNS,
            EntityKind::Interaction => model::interaction::COLUMNS,
            EntityKind::AuditEvent => crate::audit::COLUMNS,
            EntityKind::OutboxEvent => crate::outbox::COLUMNS,
            EntityKind::Session => model::auth::SESSION_COLUMNS,
            EntityKind::RefreshToken => model::auth::REFRESH_COLUMNS,
            EntityKind::AuthToken => model::auth::TOKEN_COLUMNS,
            EntityKind::Identity => model::auth::IDENTITY_COLUMNS,
            EntityKind::IdempotencyKey => model::idempotency::COLUMNS,
            EntityKind::SavedReport => model::report::COLUMNS,
            EntityKind::LoginThrottle => model::auth::THROTTLE_COLUMNS,
            EntityKind::Delivery => model::delivery::COLUMNS,
            EntityKind::Webhook => model::delivery::WEBHOOK_COLUMNS,
            EntityKind::Notification => model::delivery::NOTIFICATION_COLUMNS,
            EntityKind::ChatChannel => model::delivery::CHAT_COLUMNS,
            EntityKind::CampaignTemplate => model::campaign::TEMPLATE_COLUMNS,
            EntityKind::Segment => model::campaign::SEGMENT_COLUMNS,
            EntityKind::Campaign => model::campaign::CAMPAIGN_COLUMNS,
            EntityKind::CampaignRecipient => model::campaign::RECIPIENT_COLUMNS,
            EntityKind::Consent => model::campaign::CONSENT_COLUMNS,
            EntityKind::Suppression => model::campaign::SUPPRESSION_COLUMNS,
            EntityKind::Product => model::billing::PRODUCT_COLUMNS,
            EntityKind::Quote => model::billing::QUOTE_COLUMNS,
            EntityKind::Invoice => model::billing::INVOICE_COLUMNS,
            EntityKind::BillingSequence => model::billing::SEQUENCE_COLUMNS,
            EntityKind::Payment => model::billing::PAYMENT_COLUMNS,
            EntityKind::BillingSettings => model::billing::SETTINGS_COLUMNS,
            EntityKind::GatewayEvent => model::billing::EVENT_COLUMNS,
            EntityKind::Subscription => model::billing::SUBSCRIPTION_COLUMNS,
            EntityKind::ExchangeRate => model::billing::RATE_COLUMNS,
            EntityKind::PaymentProfile => model::billing::PROFILE_COLUMNS,
            EntityKind::ImportJob => model::import::COLUMNS,
            EntityKind::ContactMerge => model::merge::COLUMNS,
            EntityKind::Attachment => model::attachment::COLUMNS,
            EntityKind::SchedulerLease => crate::lease::COLUMNS,
        }
    }

    /// The indexes besides the primary key: unique keys and the list paths'.
    pub fn indexes(&self) -> &'static [Index] {
        match self {
            EntityKind::User => model::user::INDEXES,
            EntityKind::Team => model::team::INDEXES,
            EntityKind::Company => model::company::INDEXES,
            EntityKind::Contact => model::contact::INDEXES,
            EntityKind::Deal => model::deal::INDEXES,
            EntityKind::DealStageChange => model::deal::HISTORY_INDEXES,
            EntityKind::Task => model::task::INDEXES,
            EntityKind::Interaction => model::interaction::INDEXES,
            EntityKind::AuditEvent => crate::audit::INDEXES,
            EntityKind::OutboxEvent => crate::outbox::INDEXES,
            EntityKind::Session => model::auth::SESSION_INDEXES,
            EntityKind::RefreshToken => model::auth::REFRESH_INDEXES,
            EntityKind::AuthToken => model::auth::TOKEN_INDEXES,
            EntityKind::Identity => model::auth::IDENTITY_INDEXES,
            EntityKind::IdempotencyKey => model::idempotency::INDEXES,
            EntityKind::SavedReport => model::report::INDEXES,
            EntityKind::LoginThrottle => model::auth::THROTTLE_INDEXES,
            EntityKind::Delivery => model::delivery::INDEXES,
            EntityKind::Webhook => model::delivery::WEBHOOK_INDEXES,
            EntityKind::Notification => model::delivery::NOTIFICATION_INDEXES,
            EntityKind::ChatChannel => model::delivery::CHAT_INDEXES,
            EntityKind::CampaignTemplate => model::campaign::TEMPLATE_INDEXES,
            EntityKind::Segment => model::campaign::SEGMENT_INDEXES,
            EntityKind::Campaign => model::campaign::CAMPAIGN_INDEXES,
            EntityKind::CampaignRecipient => model::campaign::RECIPIENT_INDEXES,
            EntityKind::Consent => model::campaign::CONSENT_INDEXES,
            EntityKind::Suppression => model::campaign::SUPPRESSION_INDEXES,
            EntityKind::Product => model::billing::PRODUCT_INDEXES,
            EntityKind::Quote => model::billing::QUOTE_INDEXES,
            EntityKind::Invoice => model::billing::INVOICE_INDEXES,
            EntityKind::BillingSequence => model::billing::SEQUENCE_INDEXES,
            EntityKind::Payment => model::billing::PAYMENT_INDEXES,
            EntityKind::BillingSettings => model::billing::SETTINGS_INDEXES,
            EntityKind::GatewayEvent => model::billing::EVENT_INDEXES,
            EntityKind::Subscription => model::billing::SUBSCRIPTION_INDEXES,
            EntityKind::ExchangeRate => model::billing::RATE_INDEXES,
            EntityKind::PaymentProfile => model::billing::PROFILE_INDEXES,
            EntityKind::ImportJob => model::import::INDEXES,
            EntityKind::ContactMerge => model::merge::INDEXES,
            EntityKind::Attachment => model::attachment::INDEXES,
            EntityKind::SchedulerLease => crate::lease::INDEXES,
        }
    }

    /// The columns of its analytics table (`docs/REPORTS.md`; the table has the kind's
    /// table name), empty for kinds reports do not read.
    pub fn analytics(&self) -> &'static [Exposed] {
        match self {
            EntityKind::Company => model::company::ANALYTICS,
            EntityKind::Contact => model::contact::ANALYTICS,
            EntityKind::Deal => model::deal::ANALYTICS,
            EntityKind::DealStageChange => model::deal::HISTORY_ANALYTICS,
            EntityKind::Interaction => model::interaction::ANALYTICS,
            EntityKind::Task => model::task::ANALYTICS,
            _ => &[],
        }
    }

    /// The unique keys besides the id.
    pub fn unique_keys(&self) -> impl Iterator<Item = &'static Index> {
        self.indexes().iter().filter(|i| i.unique)
    }

    /// Does the kind have `deleted_at` (soft delete)?
    pub fn soft_deletes(&self) -> bool {
        self.column("deleted_at").is_some()
    }

    /// Does the kind have `version` (optimistic concurrency)?
    pub fn versioned(&self) -> bool {
        self.column("version").is_some()
    }

    /// A column by storage name.
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns().iter().find(|c| c.name == name)
    }

    /// A column by storage name that must exist (an internal error naming it otherwise).
    pub fn require_column(&self, name: &str) -> Result<&'static Column> {
        self.column(name).ok_or_else(|| Error::internal_msg(format!("{} has no column {name}", self.name())))
    }

    /// A column by API field name.
    pub fn field(&self, field: &str) -> Option<&'static Column> {
        self.columns().iter().find(|c| !c.is_computed() && c.field == field)
    }

    /// The position of a column in a row.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns().iter().position(|c| c.name == name)
    }

    /// The error of a write that collides with a unique key of this kind, named by the
    /// index or one of its columns as the backend reports it (`users_email_key`,
    /// `email`): a conflict naming the key's field, worded the same on every backend.
    pub fn unique_violation(&self, constraint_or_column: Option<&str>) -> Error {
        let field = constraint_or_column.and_then(|c| self.unique_field(c));
        let message = match field {
            Some(f) => format!("another {} already has this {f}", self.name()),
            None => format!("this {} collides with another", self.name()),
        };
        Error::Conflict { message, field: field.map(str::to_string) }
    }

    /// The API field a unique violation is about, from the constraint's name or one of
    /// its storage columns: the field of the key's last column (`identities (provider,
    /// subject)` names `subject`).
    pub fn unique_field(&self, constraint_or_column: &str) -> Option<&'static str> {
        self.unique_keys()
            .find(|k| k.name == constraint_or_column || k.columns.contains(&constraint_or_column))
            .and_then(|k| k.columns.last())
            .and_then(|c| self.column(c))
            .map(|c| c.field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_names_its_own_columns_and_a_unique_name() {
        let mut names = std::collections::HashSet::new();
        for kind in EntityKind::ALL {
            for index in kind.indexes() {
                assert!(names.insert(index.name), "{} is declared twice", index.name);
                assert!(index.name.starts_with(kind.table()), "{} does not start with {}", index.name, kind.table());
                for c in index.columns {
                    assert!(kind.column(c).is_some(), "{}: {} has no column {c}", index.name, kind.name());
                }
                if index.members {
                    assert!(index.columns.len() == 1, "{}: a membership index has one column", index.name);
                    assert!(kind.column(index.columns[0]).is_some_and(|c| c.ty.element().is_some()));
                }
                if index.rows != crate::schema::IndexRows::All && index.rows != crate::schema::IndexRows::Undelivered {
                    assert!(kind.soft_deletes(), "{}: {} does not soft-delete", index.name, kind.name());
                }
            }
        }
    }

    #[test]
    fn every_analytics_column_comes_from_a_stored_one() {
        for kind in EntityKind::ALL {
            for e in kind.analytics() {
                assert!(kind.column(e.from).is_some(), "{}.{}: no column {}", kind.table(), e.column.name, e.from);
            }
        }
    }

    #[test]
    fn a_composite_key_names_its_last_field() {
        assert_eq!(EntityKind::Identity.unique_field("identities_provider_subject_key"), Some("subject"));
        assert_eq!(EntityKind::Contact.unique_field("email"), Some("email"));
        assert_eq!(EntityKind::Contact.unique_field("name"), None);
    }
}
