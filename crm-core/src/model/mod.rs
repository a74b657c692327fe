//! Domain types: one module per aggregate.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::UserId;
use crate::policy::Ownership;
use crate::schema::Persist;

pub mod attachment;
pub mod auth;
pub mod billing;
pub mod campaign;
pub mod company;
pub mod contact;
pub mod deal;
pub mod delivery;
pub mod idempotency;
pub mod import;
pub mod interaction;
pub mod merge;
pub mod report;
pub mod settings;
pub mod task;
pub mod team;
pub mod user;

/// Bookkeeping every record carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RecordMeta {
    /// Starts at 1, +1 on every change; a write naming an older version is refused.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who created it (absent for records made by the system).
    pub created_by: Option<UserId>,
    /// Who last changed it.
    pub updated_by: Option<UserId>,
    /// When it was soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Who soft-deleted it.
    pub deleted_by: Option<UserId>,
}

impl RecordMeta {
    /// Metadata of a record created now by `by`.
    pub fn new(at: DateTime<Utc>, by: Option<UserId>) -> Self {
        Self {
            version: 1,
            created_at: at,
            updated_at: at,
            created_by: by,
            updated_by: by,
            deleted_at: None,
            deleted_by: None,
        }
    }

    /// Is the record soft-deleted?
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// A versioned, soft-deletable record under the policy.
pub trait Record: Persist + Clone + std::fmt::Debug {
    /// Its id.
    fn id(&self) -> Uuid;
    /// Its bookkeeping.
    fn meta(&self) -> &RecordMeta;
    /// Its bookkeeping, mutably.
    fn meta_mut(&mut self) -> &mut RecordMeta;
    /// Who owns it, for the policy.
    fn ownership(&self) -> Ownership;
}

/// Declares a closed set of string values with serde, `as_str`, `FromStr` and `CHOICES`.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every value's wire name, in order.
            pub const CHOICES: &'static [&'static str] = &[$($text),+];

            /// The wire name.
            pub const fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::error::Error::invalid(
                        stringify!($name),
                        "invalid_value",
                        format!("'{}' is not one of {}", other, Self::CHOICES.join(", ")),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::String))
                    .enum_values(Some(Self::CHOICES.iter().copied()))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use string_enum;

/// A record's columns: the given ones, then [`RecordMeta`]'s, then those after `added:`.
macro_rules! record_columns {
    // Columns a later migration added (`ALTER TABLE … ADD COLUMN`) come after the
    // bookkeeping ones, where the table has them.
    ($($c:expr),* $(,)? ; added: $($a:expr),* $(,)?) => {
        &[
            $($c,)*
            $crate::schema::Column::new("version", "version", $crate::schema::ColumnType::Int).filter(),
            $crate::schema::Column::new("created_at", "createdAt", $crate::schema::ColumnType::Timestamp).sort(),
            $crate::schema::Column::new("updated_at", "updatedAt", $crate::schema::ColumnType::Timestamp).sort(),
            $crate::schema::Column::new("created_by", "createdBy", $crate::schema::ColumnType::Uuid).null().filter(),
            $crate::schema::Column::new("updated_by", "updatedBy", $crate::schema::ColumnType::Uuid).null().filter(),
            $crate::schema::Column::new("deleted_at", "deletedAt", $crate::schema::ColumnType::Timestamp).null().sort(),
            $crate::schema::Column::new("deleted_by", "deletedBy", $crate::schema::ColumnType::Uuid).null().filter(),
            $($a,)*
        ]
    };
    ($($c:expr),* $(,)?) => {
        $crate::model::record_columns![$($c),* ; added:]
    };
}
pub(crate) use record_columns;

/// Implements [`Record`] for a struct with `id` and `meta` fields.
macro_rules! impl_record {
    ($ty:ty, $kind:expr, |$s:ident| $ownership:expr, |$t:ident| $search:expr) => {
        impl $crate::schema::Persist for $ty {
            const KIND: $crate::schema::EntityKind = $kind;
            fn search_text(&self) -> String {
                let $t = self;
                $search
            }
        }
        impl $crate::model::Record for $ty {
            fn id(&self) -> uuid::Uuid {
                self.id.as_uuid()
            }
            fn meta(&self) -> &$crate::model::RecordMeta {
                &self.meta
            }
            fn meta_mut(&mut self) -> &mut $crate::model::RecordMeta {
                &mut self.meta
            }
            fn ownership(&self) -> $crate::policy::Ownership {
                let $s = self;
                $ownership
            }
        }
    };
}
pub(crate) use impl_record;

/// Joins the searchable parts of a record with spaces, skipping absent ones.
pub(crate) fn search_words<'a>(parts: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut out = String::new();
    for p in parts.into_iter().flatten() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(p);
    }
    out
}

/// A JSON object (free-form attributes: preferences, social profiles, address, custom fields).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;
