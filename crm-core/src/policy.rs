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
    /// Teams.
    Teams,
    /// Contacts.
    Contacts,
    /// Companies.
    Companies,
    /// Deals.
    Deals,
    /// Tasks.
    Tasks,
    /// Interactions logged on contacts.
    Interactions,
    /// The audit log.
    Audit,
}

impl Resource {
    /// Every resource.
    pub const ALL: [Resource; 8] = [
        Resource::Users,
        Resource::Teams,
        Resource::Contacts,
        Resource::Companies,
        Resource::Deals,
        Resource::Tasks,
        Resource::Interactions,
        Resource::Audit,
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
    ///   reads their own team and their own activity log.
    pub fn standard() -> Self {
        let mut p = Self::deny_all();
        for res in Resource::ALL {
            for act in Action::ALL {
                p.set(Role::Admin, res, act, Scope::All);
            }
        }
        for res in Resource::CRM {
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
