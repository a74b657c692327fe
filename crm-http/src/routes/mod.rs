//! The routes, by area.

pub mod attachments;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod bulk;
pub mod campaigns;
pub mod docs;
pub mod health;
pub mod integrations;
pub mod merges;
pub mod records;
pub mod reports;
pub mod users;

/// `{"data": [...]}`: the body of the lists that are not paged.
#[derive(Debug, serde::Serialize)]
pub(crate) struct List<T> {
    pub(crate) data: Vec<T>,
}

/// `201 Created` with the new resource's `Location` and its JSON.
pub(crate) fn created<T: serde::Serialize>(path: String, v: T) -> axum::response::Response {
    use axum::response::IntoResponse;
    (axum::http::StatusCode::CREATED, [(axum::http::header::LOCATION, path)], axum::Json(v)).into_response()
}
