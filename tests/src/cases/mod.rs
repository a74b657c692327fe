//! The conformance cases. Each panics on a failed expectation.

use crm_core::{EntityKind, Error, ListQuery, Page};

mod analytics;
mod auth;
mod billing;
mod bulk;
mod campaigns;
mod copy;
mod crud;
mod delivery;
mod integrity;
mod lease;
mod merge;
mod policy;
mod query;
mod reports;

pub use analytics::*;
pub use auth::*;
pub use billing::*;
pub use bulk::*;
pub use campaigns::*;
pub use copy::*;
pub use crud::*;
pub use delivery::*;
pub use integrity::*;
pub use lease::*;
pub use merge::*;
pub use policy::*;
pub use query::*;
pub use reports::*;

/// A list query with a filter in the API grammar.
pub(crate) fn q(kind: EntityKind, filter: &str) -> ListQuery {
    ListQuery::new().filter_str(kind, filter).unwrap_or_else(|e| panic!("bad test filter {filter}: {e}"))
}

/// The names of a page's records, via a projection.
pub(crate) fn names<T>(page: &Page<T>, f: impl Fn(&T) -> &str) -> Vec<String> {
    page.data.iter().map(|x| f(x).to_string()).collect()
}

/// Asserts an error's stable code.
pub(crate) fn assert_code<T: std::fmt::Debug>(r: Result<T, Error>, code: &str) -> Error {
    match r {
        Ok(v) => panic!("expected {code}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.code(), code, "unexpected error: {e}");
            e
        }
    }
}

/// The fields named by a validation error.
pub(crate) fn fields(e: &Error) -> Vec<String> {
    e.field_errors().iter().map(|f| f.field.clone()).collect()
}
