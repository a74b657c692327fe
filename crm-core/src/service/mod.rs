//! Services: the public API of crm-core.
//!
//! Every call takes the [`Actor`] it acts for and is authorized here, so an embedding
//! program gets the same policy, validation, audit and outbox as the HTTP API. Every
//! mutation is one [`Changeset`] applied atomically: the record writes, one audit event
//! and its domain events.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{verify_chain, AuditKeys, ChainStatus};
use crate::auth::{AuthSettings, AuthState};
use crate::blob::{BlobStore, ObjectBlobStore};
use crate::clock::{Clock, IdSource, SystemClock, V7Ids};
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::store::Store;
use crate::values::Currency;

mod audit_log;
mod auth;
mod companies;
mod contacts;
mod deals;
pub mod idempotency;
pub(crate) mod input;
mod integrations;
mod interactions;
mod oauth;
#[cfg(feature = "analytics")]
mod saved_reports;
mod tasks;
mod teams;
mod throttle;
mod users;
pub(crate) mod write_path;

pub use audit_log::AuditService;
pub use auth::{AuthService, Authenticated, Registration, TokenPair};
pub use companies::{CompanyPatch, CompanyService, NewCompany};
pub use contacts::{ContactPatch, ContactService, NewContact};
pub use deals::{DealPatch, DealService, NewDeal, NewLineItem, PipelineStage};
pub use integrations::{
    ChannelOwner, ChatChannelInput, ChatChannelService, ChatChannelView, DeliveryService, NotificationService,
    WebhookInput, WebhookService, WebhookView, WebhookWithSecret, ROTATION_OVERLAP,
};
pub use interactions::{InteractionPatch, InteractionService, NewInteraction};
#[cfg(feature = "analytics")]
pub use saved_reports::{NewSavedReport, SavedReportPatch, SavedReportService, SavedRun};
pub use tasks::{NewTask, TaskPatch, TaskService};
pub use teams::{NewTeam, TeamPatch, TeamService};
pub use users::{NewUser, ProfileUpdate, UserPatch, UserService};

/// The most records one batch call (`create_many`) takes.
pub const MAX_BATCH: usize = 1_000;

/// Settings of the services.
#[derive(Debug, Clone, Default)]
pub struct CrmConfig {
    /// The currency of deals that name none.
    pub default_currency: Currency,
    /// The region (ISO 3166 alpha-2) for phone numbers written without a country code;
    /// `None` requires the international `+` form.
    pub default_phone_region: Option<String>,
    /// Where outgoing calls (webhooks, chat posts) may go: public addresses, and the
    /// internal networks allowed here. Checked when a URL is saved and at every send.
    pub outgoing: crate::delivery::ssrf::Guard,
    /// The most memory (in bytes, as `analytics::frame_bytes` counts it) the cached
    /// analytics snapshots may hold together; a larger snapshot is used for its report and not kept, so each
    /// report reads the store again. `None`: a quarter of the memory the process may use
    /// (`analytics::default_cache_bytes`). `Some(0)` keeps none.
    pub analytics_cache_bytes: Option<usize>,
}

struct Inner {
    store: Arc<dyn Store>,
    read_store: Option<Arc<dyn Store>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    policy: Policy,
    config: CrmConfig,
    auth: Option<AuthSettings>,
    auth_state: AuthState,
    blobs: Arc<dyn BlobStore>,
    audit_keys: AuditKeys,
    billing_keys: crate::billing::crypt::FieldKeys,
    #[cfg(feature = "analytics")]
    analytics: crate::analytics::snapshot::SnapshotCache,
}

/// The CRM engine: a cheap, cloneable handle on a store, a clock, an id source, the
/// policy and the configuration.
///
/// ```
/// # async fn demo(store: std::sync::Arc<dyn crm_core::Store>) -> crm_core::Result<()> {
/// use crm_core::{Crm, ListQuery, EntityKind};
/// use crm_core::service::NewContact;
///
/// let crm = Crm::new(store);
/// let admin = crm.users().bootstrap_admin("admin", "admin@example.com").await?.actor();
/// let ann = crm.contacts().create(&admin, NewContact { name: "Ann Lee".into(), ..Default::default() }).await?;
/// let page = crm.contacts().list(&admin, ListQuery::new().filter_str(EntityKind::Contact, "name[startsWith]:Ann")?).await?;
/// assert_eq!(page.data[0].id, ann.id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Crm {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Crm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crm").field("backend", &self.inner.store.backend()).finish()
    }
}

/// Builds a [`Crm`] with a non-default clock, id source, policy or configuration.
pub struct CrmBuilder {
    store: Arc<dyn Store>,
    read_store: Option<Arc<dyn Store>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    policy: Policy,
    config: CrmConfig,
    auth: Option<AuthSettings>,
    blobs: Option<Arc<dyn BlobStore>>,
    audit_keys: AuditKeys,
    billing_keys: Option<crate::billing::crypt::FieldKeys>,
}

impl CrmBuilder {
    /// Seals the sensitive billing fields (bank details, tax ids) under these keys (the
    /// current one seals, all open). Without, under a key derived from the seal key of
    /// the authentication settings: keep that key, or billing data no longer opens.
    pub fn billing_keys(mut self, keys: crate::billing::crypt::FieldKeys) -> Self {
        self.billing_keys = Some(keys);
        self
    }

    /// Hashes the audit chain with HMAC under these keys (the first seals, all verify);
    /// without, plain SHA-256 (anyone who can write to the database can then rewrite the
    /// chain unnoticed).
    pub fn audit_keys(mut self, keys: AuditKeys) -> Self {
        self.audit_keys = keys;
        self
    }

    /// Reads analytics snapshots and record exports from this store: a read replica of
    /// the store (a PostgreSQL hot standby, say), so that bulk reads do not load the
    /// primary. They then show the replica's data, which may lag a little behind the
    /// last writes. Every other read and every write goes to the store.
    pub fn read_store(mut self, store: Arc<dyn Store>) -> Self {
        self.read_store = Some(store);
        self
    }

    /// Keeps files (avatars) here; without one, in memory.
    pub fn blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// Uses these authentication settings (keys, hashing, lifetimes, lockout).
    pub fn auth(mut self, auth: AuthSettings) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Uses this clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses this id source.
    pub fn ids(mut self, ids: Arc<dyn IdSource>) -> Self {
        self.ids = ids;
        self
    }

    /// Uses this access matrix.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Uses this configuration.
    pub fn config(mut self, config: CrmConfig) -> Self {
        self.config = config;
        self
    }

    /// The engine.
    pub fn build(self) -> Crm {
        // Without settings, random keys: sessions then last as long as the process.
        let auth = self.auth.or_else(|| AuthSettings::ephemeral().ok());
        let billing_keys = self.billing_keys.unwrap_or_else(|| {
            let secret = auth.as_ref().map(|a| a.sealer.sign("billing.fields", b"key")).unwrap_or_default();
            crate::billing::crypt::FieldKeys::new(&crate::billing::crypt::derive_key(secret.as_bytes()))
        });
        Crm {
            inner: Arc::new(Inner {
                store: self.store,
                read_store: self.read_store,
                clock: self.clock,
                ids: self.ids,
                policy: self.policy,
                config: self.config,
                auth,
                auth_state: AuthState::default(),
                blobs: self.blobs.unwrap_or_else(|| Arc::new(ObjectBlobStore::memory())),
                audit_keys: self.audit_keys,
                billing_keys,
                #[cfg(feature = "analytics")]
                analytics: Default::default(),
            }),
        }
    }
}

impl Crm {
    /// An engine on a store with the system clock, UUIDv7 ids, the standard policy and
    /// the default configuration.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::builder(store).build()
    }

    /// A builder.
    pub fn builder(store: Arc<dyn Store>) -> CrmBuilder {
        CrmBuilder {
            store,
            read_store: None,
            clock: Arc::new(SystemClock),
            ids: Arc::new(V7Ids::new()),
            policy: Policy::standard(),
            config: CrmConfig::default(),
            auth: None,
            blobs: None,
            audit_keys: AuditKeys::none(),
            billing_keys: None,
        }
    }

    /// The same CRM (store, ids, policy, configuration, keys) reading the time from
    /// `clock`: for work that must be dated otherwise, such as the demo's history.
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Crm {
        self.derived(clock, self.inner.read_store.clone())
    }

    /// The same engine reading its analytics snapshots and exports from `store`, a read
    /// replica (see [`CrmBuilder::read_store`]).
    pub fn with_read_store(&self, store: Arc<dyn Store>) -> Crm {
        self.derived(self.inner.clock.clone(), Some(store))
    }

    /// This engine with another clock and read store, and caches of its own.
    fn derived(&self, clock: Arc<dyn Clock>, read_store: Option<Arc<dyn Store>>) -> Crm {
        let i = &self.inner;
        Crm {
            inner: Arc::new(Inner {
                store: i.store.clone(),
                read_store,
                clock,
                ids: i.ids.clone(),
                policy: i.policy.clone(),
                config: i.config.clone(),
                auth: i.auth.clone(),
                auth_state: Default::default(),
                blobs: i.blobs.clone(),
                audit_keys: i.audit_keys.clone(),
                billing_keys: i.billing_keys.clone(),
                #[cfg(feature = "analytics")]
                analytics: Default::default(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// The store of bulk reads: the read replica given to [`CrmBuilder::read_store`],
    /// else the store.
    pub fn read_store(&self) -> &dyn Store {
        self.inner.read_store.as_deref().unwrap_or(self.inner.store.as_ref())
    }

    /// The cached analytics snapshots.
    #[cfg(feature = "analytics")]
    pub(crate) fn analytics_cache(&self) -> &crate::analytics::snapshot::SnapshotCache {
        &self.inner.analytics
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The configuration.
    pub fn config(&self) -> &CrmConfig {
        &self.inner.config
    }

    /// The authentication settings.
    pub fn auth_settings(&self) -> Result<&AuthSettings> {
        self.inner.auth.as_ref().ok_or_else(|| Error::internal_msg("authentication is not configured"))
    }

    /// Where files are kept.
    pub fn blobs(&self) -> &dyn BlobStore {
        self.inner.blobs.as_ref()
    }

    pub(crate) fn auth_state(&self) -> &AuthState {
        &self.inner.auth_state
    }

    /// Authentication: registration, login, sessions, passwords.
    pub fn auth(&self) -> AuthService<'_> {
        AuthService { crm: self }
    }

    /// The injected clock's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) fn new_id(&self, at: DateTime<Utc>) -> Uuid {
        self.inner.ids.new_id(at)
    }

    /// People: create, read, update, delete and list contacts within the caller's scope.
    pub fn contacts(&self) -> ContactService<'_> {
        ContactService { crm: self }
    }

    /// Organisations: create, read, update, delete and list companies.
    pub fn companies(&self) -> CompanyService<'_> {
        CompanyService { crm: self }
    }

    /// Sales opportunities: deals, their stages, line items and history.
    pub fn deals(&self) -> DealService<'_> {
        DealService { crm: self }
    }

    /// Follow-ups: tasks with due dates and reminders.
    pub fn tasks(&self) -> TaskService<'_> {
        TaskService { crm: self }
    }

    /// Interactions logged on contacts.
    pub fn interactions(&self) -> InteractionService<'_> {
        InteractionService { crm: self }
    }

    /// Idempotency keys: run a request once, replay its answer after.
    pub fn idempotency(&self) -> idempotency::IdempotencyService<'_> {
        idempotency::IdempotencyService { crm: self }
    }

    /// User accounts.
    pub fn users(&self) -> UserService<'_> {
        UserService { crm: self }
    }

    /// Teams and their members.
    pub fn teams(&self) -> TeamService<'_> {
        TeamService { crm: self }
    }

    /// Report definitions users save, share and put on dashboards.
    #[cfg(feature = "analytics")]
    pub fn saved_reports(&self) -> SavedReportService<'_> {
        SavedReportService { crm: self }
    }

    /// Outgoing webhook subscriptions.
    pub fn webhooks(&self) -> WebhookService<'_> {
        WebhookService { crm: self }
    }

    /// The delivery queue.
    pub fn deliveries(&self) -> DeliveryService<'_> {
        DeliveryService { crm: self }
    }

    /// Slack and Teams webhooks of users and teams.
    pub fn chat_channels(&self) -> ChatChannelService<'_> {
        ChatChannelService { crm: self }
    }

    /// The caller's in-app notifications.
    pub fn notifications(&self) -> NotificationService<'_> {
        NotificationService { crm: self }
    }

    /// The audit log.
    pub fn audit(&self) -> AuditService<'_> {
        AuditService { crm: self }
    }

    /// Recomputes the whole audit chain with the engine's keys (see [`verify_chain`]).
    pub async fn verify_audit_chain(&self) -> Result<ChainStatus> {
        verify_chain(self.store(), &self.inner.audit_keys).await
    }

    /// The key new audit events are sealed with.
    pub(crate) fn audit_key(&self) -> Option<crate::audit::AuditKey> {
        self.inner.audit_keys.current().cloned()
    }

    /// The keys of the sensitive billing fields.
    pub(crate) fn billing_keys(&self) -> &crate::billing::crypt::FieldKeys {
        &self.inner.billing_keys
    }
}
