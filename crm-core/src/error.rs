//! The one error type of crm-core.
//!
//! Variants are grouped by meaning, not by origin: a storage adapter maps a unique
//! violation to [`Error::Conflict`], a stale write to [`Error::VersionConflict`], and
//! anything it cannot classify to [`Error::Internal`]. No driver type appears here.

use std::fmt;

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One offending input field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field, in API (camelCase) spelling, dotted for nested values (`products.0.name`).
    pub field: String,
    /// A stable machine code: `required`, `too_long`, `invalid_format`, `invalid_value`,
    /// `unknown_field`, `unknown_operator`, `not_found`, `out_of_range`, …
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code, message: message.into() }
    }
}

/// All errors of crm-core and its adapters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record does not exist, or it lies outside the caller's scope (no existence leak).
    #[error("{entity} not found")]
    NotFound {
        /// The entity name (`contact`, `deal`, …).
        entity: &'static str,
    },
    /// A uniqueness or state conflict (duplicate email, restoring onto a taken key, …).
    #[error("conflict: {message}")]
    Conflict {
        /// What collided.
        message: String,
        /// The field concerned, when one is.
        field: Option<String>,
    },
    /// An update or delete named a version that is no longer current.
    #[error("version conflict: the record is at version {current}")]
    VersionConflict {
        /// The record's current version.
        current: i64,
    },
    /// The input is invalid; every offending field is listed.
    #[error("validation failed: {}", display_fields(.0))]
    Validation(Vec<FieldError>),
    /// The input does not have the shape of its type (a member missing, of the wrong JSON
    /// type, outside an enumeration, or unknown); every offending field is listed. Where
    /// [`Error::Validation`] says the values break a rule, this says they could not be
    /// read at all (HTTP answers 400 rather than 422).
    #[error("malformed input: {}", display_fields(.0))]
    Malformed(Vec<FieldError>),
    /// No (valid) credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is known but not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Too many attempts; try again after the given number of seconds.
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// Too many failed logins: the account is locked for the given number of seconds.
    #[error("account locked; retry after {retry_after_secs} s")]
    AccountLocked {
        /// Seconds until the lock ends.
        retry_after_secs: u64,
    },
    /// The password was right but the email address is not confirmed yet.
    #[error("the email address is not verified yet")]
    EmailNotVerified,
    /// The store gave up on a statement that ran past its time limit (a report over too
    /// much data, a pattern too costly): try a narrower one, or later.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A service the engine relies on (a payment gateway) refused or could not be
    /// reached; the message says which and why, without secrets.
    #[error("upstream failure: {message}")]
    Upstream {
        /// What failed.
        message: String,
    },
    /// Anything else. The message is for logs, never for API clients.
    #[error("internal error: {message}")]
    Internal {
        /// What went wrong, for the log.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

fn display_fields(fields: &[FieldError]) -> String {
    fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
}

impl Error {
    /// The same error with the field errors on `from` named `to` (one service serving two
    /// routes whose members are spelled apart).
    pub fn renamed(self, from: &str, to: &str) -> Error {
        let rename = |mut list: Vec<FieldError>| {
            for f in &mut list {
                if f.field == from {
                    f.field = to.to_string();
                }
            }
            list
        };
        match self {
            Error::Validation(list) => Error::Validation(rename(list)),
            Error::Malformed(list) => Error::Malformed(rename(list)),
            other => other,
        }
    }

    /// The stable machine code of this error, as used by the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::VersionConflict { .. } => "version_conflict",
            Error::Validation(_) | Error::Malformed(_) => "validation_failed",
            Error::Unauthenticated => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::RateLimited { .. } => "rate_limited",
            Error::AccountLocked { .. } => "account_locked",
            Error::EmailNotVerified => "email_not_verified",
            Error::Timeout(_) => "timeout",
            Error::Upstream { .. } => "upstream_failed",
            Error::Internal { .. } => "internal",
        }
    }

    /// A validation error on one field.
    pub fn invalid(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, code, message)])
    }

    /// An internal error wrapping a source error.
    pub fn internal<E>(message: impl Into<String>, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Internal { message: message.into(), source: Some(Box::new(source)) }
    }

    /// An internal error with a message only.
    pub fn internal_msg(message: impl Into<String>) -> Self {
        Error::Internal { message: message.into(), source: None }
    }

    /// A conflict the caller may retry: the database rolled its transaction back so that
    /// a concurrent one on `what` (a table, or "the same records") could go on.
    pub fn lost_race(what: &str) -> Self {
        Error::Conflict { message: format!("a concurrent write to {what} won; try again"), field: None }
    }

    /// A forbidden error.
    pub fn forbidden(message: impl fmt::Display) -> Self {
        Error::Forbidden(message.to_string())
    }

    /// The field errors, when this is a validation error.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Validation(f) | Error::Malformed(f) => f,
            _ => &[],
        }
    }
}

/// Collects field errors so that one response can name every bad field at once.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>, Shape);

/// Whether any collected error said the input could not be read ([`Error::Malformed`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Shape {
    #[default]
    Readable,
    Malformed,
}

impl Errors {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one error.
    pub fn add(&mut self, field: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    /// Records the field errors of a nested validation error; other errors are kept
    /// as an error on `field`.
    pub fn absorb(&mut self, field: &str, err: Error) {
        match err {
            Error::Validation(list) => self.0.extend(list),
            Error::Malformed(list) => {
                self.1 = Shape::Malformed;
                self.0.extend(list);
            }
            other => self.add(field, other.code(), other.to_string()),
        }
    }

    /// Records the field errors of an error about a nested value under `prefix`
    /// (`language` becomes `settings.language`); other errors are kept as an error on
    /// `prefix`.
    pub fn absorb_under(&mut self, prefix: &str, err: Error) {
        let (list, shape) = match err {
            Error::Validation(list) => (list, Shape::Readable),
            Error::Malformed(list) => (list, Shape::Malformed),
            other => return self.add(prefix, other.code(), other.to_string()),
        };
        if shape == Shape::Malformed {
            self.1 = Shape::Malformed;
        }
        self.0.extend(list.into_iter().map(|mut e| {
            e.field = format!("{prefix}.{}", e.field);
            e
        }));
    }

    /// Takes the value of a validation step, recording its error.
    pub fn take<T>(&mut self, field: &str, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.absorb(field, e);
                None
            }
        }
    }

    /// Records another collector's errors under `prefix` (`3` makes `email` `3.email`).
    pub fn nest(&mut self, prefix: &str, other: Errors) {
        if other.1 == Shape::Malformed {
            self.1 = Shape::Malformed;
        }
        self.0.extend(other.0.into_iter().map(|mut e| {
            e.field = format!("{prefix}.{}", e.field);
            e
        }));
    }

    /// Is there an error on `field` or inside it (`lines.0.name` is inside `lines`)?
    pub fn names(&self, field: &str) -> bool {
        self.0.iter().any(|f| f.field == field || f.field.starts_with(&format!("{field}.")))
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, else the validation error ([`Error::Malformed`]
    /// when any recorded error was).
    pub fn finish(self) -> Result<()> {
        match (self.0.is_empty(), self.1) {
            (true, _) => Ok(()),
            (false, Shape::Readable) => Err(Error::Validation(self.0)),
            (false, Shape::Malformed) => Err(Error::Malformed(self.0)),
        }
    }
}

/// An error and its sources, joined with `: ` (for logs and stored failure reasons).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
