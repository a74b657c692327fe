//! Third-party login: an [`IdentityProvider`] turns a token from the client into a
//! verified [`ExternalIdentity`]. [`OidcProvider`] checks an OpenID Connect ID token
//! (Google, or any issuer from configuration): RS256 only, the signature against the
//! provider's JWKS (cached, fetched again when a token names an unknown `kid`), `iss`,
//! `aud` = our client id, `exp`/`nbf` against the injected clock. [`FacebookProvider`]
//! validates an access token with the app token (`debug_token`) and reads `/me`.
//! Endpoints are configurable; plain `http` is accepted only on loopback (tests).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Error;

#[cfg(feature = "oauth")]
mod providers;
#[cfg(feature = "oauth")]
pub use providers::{FacebookConfig, FacebookProvider, OidcConfig, OidcProvider, FACEBOOK_DIALOG, MIN_REFETCH};

/// Who the provider says the person is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The provider's name (`google`, `facebook`, a configured OIDC name).
    pub provider: String,
    /// The provider's stable id of the person.
    pub subject: String,
    /// Their email, if the provider gave one.
    pub email: Option<String>,
    /// Has the provider verified that email?
    pub email_verified: bool,
    /// Their display name.
    pub name: Option<String>,
    /// The `nonce` the token carries (OIDC), to compare with the one the client sent.
    pub nonce: Option<String>,
    /// Until when the token itself is good, for single-use tokens (OIDC ID tokens: their
    /// `exp`): a token seen once is refused until then. `None`: a token the provider
    /// means to be used again (a Facebook access token).
    pub single_use_until: Option<DateTime<Utc>>,
}

/// Why a provider refused a token: for the audit log; callers answer unauthenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProviderRejection(pub String);

/// How a browser signs in with a provider: where to send the person (the provider's
/// authorization endpoint) and what to ask for. The provider sends them back to the app
/// with the token in the URL's fragment (`id_token` for OpenID Connect, an access token
/// for Facebook), which the app hands to `POST /api/auth/oauth/{provider}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignInLink {
    /// The name logins use (`google`, `facebook`, a configured OIDC name).
    pub provider: String,
    /// What the button says it is ("Google").
    pub label: String,
    /// The provider's authorization endpoint.
    pub authorize_url: String,
    /// Our client id there.
    pub client_id: String,
    /// The OAuth `response_type` to ask for: `id_token` or `token`.
    pub response_type: String,
    /// The scopes to ask for, space-separated.
    pub scope: String,
}

/// Verifies tokens of one third-party provider.
#[async_trait]
pub trait IdentityProvider: Send + Sync + 'static {
    /// The name it is configured under.
    fn name(&self) -> &str;
    /// How a browser signs in with it, when it has a sign-in page (a provider configured
    /// only to check tokens that mobile apps obtain has none).
    fn sign_in(&self) -> Option<SignInLink> {
        None
    }
    /// The identity a token proves at `now`; `Err(Ok(rejection))` when the token is
    /// refused, `Err(Err(e))` when the provider could not be asked.
    async fn verify(&self, token: &str, now: DateTime<Utc>) -> std::result::Result<ExternalIdentity, Rejected>;
}

/// A refused token, or a provider that could not be reached.
#[derive(Debug)]
pub enum Rejected {
    /// The token is not good (the reason is for the audit log).
    Token(ProviderRejection),
    /// The provider could not be asked.
    Unavailable(Error),
}

#[cfg_attr(not(feature = "oauth"), allow(dead_code))]
fn reject<T>(why: impl Into<String>) -> std::result::Result<T, Rejected> {
    Err(Rejected::Token(ProviderRejection(why.into())))
}

/// The providers logins may name, by name.
#[derive(Clone, Default)]
pub struct Providers(HashMap<String, std::sync::Arc<dyn IdentityProvider>>);

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("Providers").field(&names).finish()
    }
}

impl Providers {
    /// Adds (or replaces) a provider under its name.
    pub fn add(&mut self, p: std::sync::Arc<dyn IdentityProvider>) {
        self.0.insert(p.name().to_string(), p);
    }

    /// The provider named `name`.
    pub fn get(&self, name: &str) -> Option<&std::sync::Arc<dyn IdentityProvider>> {
        self.0.get(name)
    }

    /// How a browser signs in with each provider that has a sign-in page, by name.
    pub fn sign_in_links(&self) -> Vec<SignInLink> {
        let mut links: Vec<SignInLink> = self.0.values().filter_map(|p| p.sign_in()).collect();
        links.sort_by(|a, b| a.provider.cmp(&b.provider));
        links
    }
}
