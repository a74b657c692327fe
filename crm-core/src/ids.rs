//! Newtype ids. Every id is a UUIDv7, so ids sort by creation time.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub struct $name(pub Uuid);

        impl $name {
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

id_type!(
    /// Identifies a user.
    UserId,
    /// Identifies a team.
    TeamId,
    /// Identifies a contact.
    ContactId,
    /// Identifies a company.
    CompanyId,
    /// Identifies a deal.
    DealId,
    /// Identifies a task.
    TaskId,
    /// Identifies an interaction (call, email, meeting, note).
    InteractionId,
    /// Identifies a saved report.
    SavedReportId,
);

/// An id derived from its parts (a purpose prefix, then what makes the row unique):
/// the first 16 bytes of the SHA-256 of their concatenation, so every process that
/// computes it for the same thing gets the same id (one row per thing, by the primary
/// key).
pub fn derived_id(parts: &[&[u8]]) -> Uuid {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for p in parts {
        hash.update(p);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
