//! The routes, by area.

pub mod auth;
pub mod health;
