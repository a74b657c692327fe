//! Authentication building blocks: password hashing and policy, access tokens (JWT),
//! opaque secret tokens.
//!
//! The flows (registration, login, sessions, resets, third-party login) build on these;
//! see issue 4. Nothing here touches the store.

pub mod jwt;
pub mod password;
pub mod token;

pub use jwt::{AccessClaims, JwtConfig, JwtKeys, TokenRejection};
pub use password::{PasswordHasher, PasswordPolicy, Verified};
pub use token::SecretToken;
