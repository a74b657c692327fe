//! Role-based access control held as data.
//!
//! A [`Policy`] is a matrix `Role × Resource × Action → Scope`. Anything the matrix does
//! not grant is denied. Embedders replace the matrix with [`Policy::set`] or build their
//! own from [`Policy::deny_all`]. Every service call goes through it, so skipping the HTTP
//! layer skips nothing.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{TeamId, UserId};

/// A user's role. Ordered: `User < Manager < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works their own records.
    User,
    /// Runs a team.
    Manager,
    /// Runs the system.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Manager, Role::User];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }
}

/// What is acted upon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// User accounts.
    Users,
    /// Teams and their members.
    Teams,
    /// Contacts, with their interactions.
    Contacts,
    /// Companies and their contact details.
    Companies,
    /// Deals, with their stage history and line items.
    Deals,
    /// Tasks and reminders.
    Tasks,
    /// Interactions logged on contacts.
    Interactions,
    /// The audit log.
    Audit,
    /// Saved reports.
    Reports,
    /// Outgoing webhooks, team chat channels and the delivery queue.
    Integrations,
    /// Email campaigns, their templates, segments, consents and suppressions.
    Campaigns,
    /// Products, quotes, invoices, credit notes and payments.
    Billing,
}

impl Resource {
    /// Every resource.
    pub const ALL: [Resource; 12] = [
        Resource::Users,
        Resource::Teams,
        Resource::Contacts,
        Resource::Companies,
        Resource::Deals,
        Resource::Tasks,
        Resource::Interactions,
        Resource::Audit,
        Resource::Reports,
        Resource::Integrations,
        Resource::Campaigns,
        Resource::Billing,
    ];

    /// The CRM records (as opposed to users, teams and the audit log).
    pub const CRM: [Resource; 5] =
        [Resource::Contacts, Resource::Companies, Resource::Deals, Resource::Tasks, Resource::Interactions];
}

/// What is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create a record.
    Create,
    /// Read a record or list records.
    Read,
    /// Change a record.
    Update,
    /// Soft-delete a record.
    Delete,
    /// Restore a soft-deleted record (and see deleted records in lists).
    Restore,
    /// Remove a record permanently.
    Purge,
    /// Assign a record (a task) to a user, or change a record's owner.
    Assign,
    /// Export records in bulk.
    Export,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 8] = [
        Action::Create,
        Action::Read,
        Action::Update,
        Action::Delete,
        Action::Restore,
        Action::Purge,
        Action::Assign,
        Action::Export,
    ];
}

/// How far a grant reaches. Ordered: `None < Own < Team < All`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Nothing.
    None,
    /// Records the actor owns or is assigned (for users: themselves).
    Own,
    /// Records of the actor's team, and their own.
    Team,
    /// Everything.
    All,
}

/// Who owns a record, as far as the policy cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    /// The owner (for a user account: the user itself).
    pub owner: Option<UserId>,
    /// The team the record belongs to.
    pub team: Option<TeamId>,
    /// The assignee (tasks).
    pub assignee: Option<UserId>,
}

impl Scope {
    /// Does this scope reach a record with this ownership, for this actor?
    pub fn covers(&self, actor: &Actor, record: &Ownership) -> bool {
        let own = record.owner == Some(actor.user_id) || record.assignee == Some(actor.user_id);
        match self {
            Scope::None => false,
            Scope::Own => own,
            Scope::Team => own || (actor.team_id.is_some() && record.team == actor.team_id),
            Scope::All => true,
        }
    }
}

/// Metadata about the request an action came from, kept in the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMeta {
    /// The request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The client's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.request_id.is_none() && self.ip.is_none() && self.user_agent.is_none()
    }
}

/// The caller of a service: who, in which role and team, from which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user acting.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
    /// Their team.
    pub team_id: Option<TeamId>,
    /// Where the request came from.
    pub meta: RequestMeta,
}

impl Actor {
    /// An actor with no request metadata.
    pub fn new(user_id: UserId, role: Role, team_id: Option<TeamId>) -> Self {
        Self { user_id, role, team_id, meta: RequestMeta::default() }
    }

    /// The same actor with request metadata.
    pub fn with_meta(mut self, meta: RequestMeta) -> Self {
        self.meta = meta;
        self
    }

    /// The spec's `checkRole(role)`: succeeds when the actor's role is `role` or higher.
    pub fn require_role(&self, role: Role) -> Result<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Error::forbidden(format!("requires the {} role", role.as_str())))
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.user_id, self.role.as_str())
    }
}

/// The access matrix. Deny by default: a missing entry is [`Scope::None`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    grants: HashMap<(Role, Resource, Action), Scope>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::standard()
    }
}

impl Policy {
    /// A policy that grants nothing.
    pub fn deny_all() -> Self {
        Self { grants: HashMap::new() }
    }

    /// The default matrix:
    /// - admin: `All` on everything;
    /// - manager: `Team` on CRM records for every action but purge, may create records,
    ///   reads users and teams, creates `user` accounts in their team, reads their own activity log (and the history of any record
    ///   they can read);
    /// - user: creates CRM records (owned by themselves), reads, updates, deletes, assigns and
    ///   exports their `Own` ones (owned or assigned), reads and updates their own account,
    ///   reads their own team and their own activity log;
    /// - campaigns (the workspace's, not anyone's): managers create, read, change, delete
    ///   and export them all; users read them;
    /// - billing: managers create, read, change (issue, void, record payments), delete
    ///   and export all quotes, invoices, payments and products; users read the
    ///   documents they own (those of their deals and companies) and the catalogue.
    ///
    /// Saved reports are granted like CRM records; a report shared with a user, their team
    /// or their role is readable by them as well, as long as their role may read reports
    /// at all (see `SavedReportService`).
    pub fn standard() -> Self {
        let mut p = Self::deny_all();
        for res in Resource::ALL {
            for act in Action::ALL {
                p.set(Role::Admin, res, act, Scope::All);
            }
        }
        for res in Resource::CRM.into_iter().chain([Resource::Reports]) {
            for act in [Action::Read, Action::Update, Action::Delete, Action::Restore, Action::Assign, Action::Export] {
                p.set(Role::Manager, res, act, Scope::Team);
            }
            p.set(Role::Manager, res, Action::Create, Scope::Team);
            for act in [Action::Read, Action::Update, Action::Delete, Action::Assign, Action::Export] {
                p.set(Role::User, res, act, Scope::Own);
            }
            p.set(Role::User, res, Action::Create, Scope::Own);
        }
        p.set(Role::Manager, Resource::Users, Action::Read, Scope::All);
        p.set(Role::Manager, Resource::Users, Action::Create, Scope::Team);
        p.set(Role::Manager, Resource::Users, Action::Update, Scope::Own);
        p.set(Role::Manager, Resource::Teams, Action::Read, Scope::All);
        p.set(Role::Manager, Resource::Audit, Action::Read, Scope::Own);
        p.set(Role::User, Resource::Users, Action::Read, Scope::Own);
        p.set(Role::User, Resource::Users, Action::Update, Scope::Own);
        p.set(Role::User, Resource::Teams, Action::Read, Scope::Team);
        p.set(Role::User, Resource::Audit, Action::Read, Scope::Own);
        // Campaigns belong to the workspace: managers make and send them, users read them.
        for act in [Action::Create, Action::Read, Action::Update, Action::Delete, Action::Export] {
            p.set(Role::Manager, Resource::Campaigns, act, Scope::All);
        }
        p.set(Role::User, Resource::Campaigns, Action::Read, Scope::All);
        // Billing: managers quote, issue, void and record payments for the workspace;
        // users read the quotes and invoices of the deals and companies they own.
        for act in [Action::Create, Action::Read, Action::Update, Action::Delete, Action::Export] {
            p.set(Role::Manager, Resource::Billing, act, Scope::All);
        }
        p.set(Role::User, Resource::Billing, Action::Read, Scope::Own);
        p
    }

    /// Sets one cell of the matrix.
    pub fn set(&mut self, role: Role, resource: Resource, action: Action, scope: Scope) -> &mut Self {
        if scope == Scope::None {
            self.grants.remove(&(role, resource, action));
        } else {
            self.grants.insert((role, resource, action), scope);
        }
        self
    }

    /// The scope a role has for an action on a resource.
    pub fn scope(&self, role: Role, resource: Resource, action: Action) -> Scope {
        self.grants.get(&(role, resource, action)).copied().unwrap_or(Scope::None)
    }

    /// The actor's scope for the action, or `Forbidden` when it is `None`.
    pub fn require(&self, actor: &Actor, resource: Resource, action: Action) -> Result<Scope> {
        match self.scope(actor.role, resource, action) {
            Scope::None => {
                Err(Error::forbidden(format!("role {} may not {action:?} {resource:?}", actor.role.as_str())))
            }
            s => Ok(s),
        }
    }

    /// Authorizes an action on one record. A record the actor may not even read answers
    /// `NotFound` (no existence leak); one they may read but not change answers `Forbidden`.
    pub fn authorize_record(
        &self,
        actor: &Actor,
        resource: Resource,
        action: Action,
        record: &Ownership,
        entity: &'static str,
    ) -> Result<()> {
        if self.scope(actor.role, resource, action).covers(actor, record) {
            return Ok(());
        }
        if action != Action::Read && self.scope(actor.role, resource, Action::Read).covers(actor, record) {
            return Err(Error::forbidden(format!("role {} may not {action:?} this {entity}", actor.role.as_str())));
        }
        Err(Error::NotFound { entity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default matrix as the issue and ARCHITECTURE.md state it, written out
    /// independently of [`Policy::standard`].
    fn expected(role: Role, res: Resource, act: Action) -> Scope {
        use Action::*;
        use Resource::*;
        let crm_record = matches!(res, Contacts | Companies | Deals | Tasks | Interactions | Reports);
        match role {
            Role::Admin => Scope::All,
            Role::Manager => match (res, act) {
                (_, Purge) if crm_record => Scope::None,
                _ if crm_record => Scope::Team,
                (Users, Read) | (Teams, Read) => Scope::All,
                (Users, Create) => Scope::Team,
                (Users, Update) | (Audit, Read) => Scope::Own,
                (Campaigns, Create | Read | Update | Delete | Export) => Scope::All,
                (Billing, Create | Read | Update | Delete | Export) => Scope::All,
                _ => Scope::None,
            },
            Role::User => match (res, act) {
                (_, Create | Read | Update | Delete | Assign | Export) if crm_record => Scope::Own,
                (Users, Read | Update) | (Audit, Read) => Scope::Own,
                (Teams, Read) => Scope::Team,
                (Campaigns, Read) => Scope::All,
                (Billing, Read) => Scope::Own,
                _ => Scope::None,
            },
        }
    }

    #[test]
    fn standard_matrix_cell_by_cell() {
        let p = Policy::standard();
        let mut cells = 0;
        for role in Role::ALL {
            for res in Resource::ALL {
                for act in Action::ALL {
                    assert_eq!(p.scope(role, res, act), expected(role, res, act), "{role:?} {res:?} {act:?}");
                    cells += 1;
                }
            }
        }
        assert_eq!(cells, 3 * 12 * 8);
    }

    fn actor(team: Option<TeamId>) -> Actor {
        Actor::new(UserId(uuid::Uuid::now_v7()), Role::User, team)
    }

    /// Every role × resource × action against records owned, assigned, in the team and
    /// elsewhere: allowed exactly where the scope reaches; otherwise forbidden when the
    /// actor may read the record and not found when they may not.
    #[test]
    fn authorize_record_walks_the_matrix() {
        let p = Policy::standard();
        let red = TeamId(uuid::Uuid::now_v7());
        let blue = TeamId(uuid::Uuid::now_v7());
        for role in Role::ALL {
            let me = Actor { role, ..actor(Some(red)) };
            let stranger = UserId(uuid::Uuid::now_v7());
            let records = [
                ("owned", Ownership { owner: Some(me.user_id), team: Some(red), assignee: None }, Scope::Own),
                (
                    "assigned",
                    Ownership { owner: Some(stranger), team: Some(blue), assignee: Some(me.user_id) },
                    Scope::Own,
                ),
                ("team", Ownership { owner: Some(stranger), team: Some(red), assignee: None }, Scope::Team),
                ("other", Ownership { owner: Some(stranger), team: Some(blue), assignee: None }, Scope::All),
            ];
            for res in Resource::ALL {
                for act in Action::ALL {
                    for (what, rec, needs) in &records {
                        let got = p.authorize_record(&me, res, act, rec, "record");
                        let allowed = expected(role, res, act) >= *needs;
                        let readable = expected(role, res, Action::Read) >= *needs;
                        let want = if allowed {
                            "ok"
                        } else if readable && act != Action::Read {
                            "forbidden"
                        } else {
                            "not_found"
                        };
                        let code = got.as_ref().map(|_| "ok").unwrap_or_else(|e| e.code());
                        assert_eq!(code, want, "{role:?} {act:?} {res:?} on a record {what}");
                    }
                }
            }
        }
    }

    #[test]
    fn scopes_reach_as_documented() {
        let me = actor(None);
        let mine = Ownership { owner: Some(me.user_id), team: None, assignee: None };
        let nobody = Ownership::default();
        assert!(!Scope::None.covers(&me, &mine));
        assert!(Scope::Own.covers(&me, &mine));
        // Without a team, Team reaches only one's own records, never other team-less ones.
        assert!(!Scope::Team.covers(&me, &nobody));
        assert!(Scope::All.covers(&me, &nobody));
    }

    #[test]
    fn deny_by_default_and_replaceable() {
        let mut p = Policy::deny_all();
        let me = actor(None);
        for res in Resource::ALL {
            for act in Action::ALL {
                assert!(p.require(&me, res, act).is_err());
            }
        }
        p.set(Role::User, Resource::Contacts, Action::Read, Scope::All);
        assert_eq!(p.require(&me, Resource::Contacts, Action::Read).ok(), Some(Scope::All));
        p.set(Role::User, Resource::Contacts, Action::Read, Scope::None);
        assert!(p.require(&me, Resource::Contacts, Action::Read).is_err());
    }

    #[test]
    fn require_role_orders_roles() {
        let me = Actor::new(UserId(uuid::Uuid::now_v7()), Role::Manager, None);
        assert!(me.require_role(Role::User).is_ok());
        assert!(me.require_role(Role::Manager).is_ok());
        assert_eq!(me.require_role(Role::Admin).map_err(|e| e.code()), Err("forbidden"));
    }
}
