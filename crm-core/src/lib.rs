//! # crm-core
//!
//! The engine of crm-rs, an embeddable CRM: the domain model (users, teams, contacts,
//! companies, deals with line items and stage history, tasks, interactions), the RBAC
//! [`Policy`], the services that enforce it, and the [`Store`] trait storage backends
//! implement (`crm-storage-sql` for SQLite and PostgreSQL).
//!
//! Every service call takes the [`Actor`] it acts for. Every change is validated (all
//! bad fields reported at once), authorized, and committed as one atomic [`Changeset`]
//! holding the record writes, a hash-chained audit event and the outbox events.
//!
//! ```
//! use std::sync::Arc;
//! use crm_core::{Crm, EntityKind, ListQuery};
//! use crm_core::service::{NewCompany, NewContact};
//!
//! # async fn demo(store: Arc<dyn crm_core::Store>) -> crm_core::Result<()> {
//! let crm = Crm::new(store);
//! let admin = crm.users().bootstrap_admin("admin", "admin@example.com").await?.actor();
//! let acme = crm.companies().create(&admin, NewCompany { name: "Acme".into(), ..Default::default() }).await?;
//! crm.contacts()
//!     .create(&admin, NewContact { name: "Ann Lee".into(), company_id: Some(acme.id), ..Default::default() })
//!     .await?;
//! let q = ListQuery::new().filter_str(EntityKind::Contact, &format!("companyId[eq]:{}", acme.id))?;
//! assert_eq!(crm.contacts().list(&admin, q).await?.data.len(), 1);
//! # Ok(()) }
//! ```

#[cfg(feature = "analytics")]
pub mod analytics;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod blob;
pub mod bulk;
pub mod campaign;
pub mod clock;
pub mod copy;
pub mod date_or_time;
pub mod decode;
pub mod delivery;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod files;
pub mod ids;
pub mod lease;
pub mod mail;
pub mod model;
pub mod outbox;
pub mod policy;
pub mod query;
mod registry;
mod row_de;
mod row_ser;
pub mod schema;
pub mod schema_check;
pub mod service;
pub mod store;
pub mod values;

pub use audit::{AuditEvent, AuditHead, ChainStatus};
pub use clock::{Clock, FakeClock, IdSource, SystemClock, V7Ids};
pub use date_or_time::DateOrTime;
pub use error::{Error, FieldError, Result};
pub use ids::{CompanyId, ContactId, DealId, InteractionId, SavedReportId, TaskId, TeamId, UserId};
pub use model::company::Company;
pub use model::contact::{Contact, LifecycleStage};
pub use model::deal::{Deal, DealStage, DealStageChange, LineItem};
pub use model::interaction::{Interaction, InteractionKind};
pub use model::report::{ChartKind, ChartSpec, SavedReport, Sharing, StandardParams};
pub use model::settings::{DashboardCard, MAX_DASHBOARD_CARDS};
pub use model::task::{Related, RelatedType, Task, TaskPriority, TaskStatus};
pub use model::team::Team;
pub use model::user::{User, UserStatus};
pub use model::{Record, RecordMeta};
pub use outbox::OutboxEvent;
pub use policy::{Action, Actor, Ownership, Policy, RequestMeta, Resource, Role, Scope};
pub use query::{Filter, ListQuery, Page, PageInfo, RawListParams};
pub use schema::{EntityKind, Value};
pub use service::{Crm, CrmBuilder, CrmConfig};
pub use store::{Changeset, Claim, Store, StoreExt, Write};
pub use values::{Currency, Domain, Email, Money, Percent, Phone};
