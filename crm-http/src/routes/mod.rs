//! The routes, by area.

pub mod audit;
pub mod auth;
pub mod billing;
pub mod campaigns;
pub mod docs;
pub mod health;
pub mod integrations;
pub mod records;
pub mod reports;
pub mod users;
