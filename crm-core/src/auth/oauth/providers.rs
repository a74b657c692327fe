//! The providers that ask the network: [`OidcProvider`] (any OpenID Connect issuer, Google
//! among them) and [`FacebookProvider`]. Feature `oauth` (on by default).

use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::RwLock;

use super::{reject, ExternalIdentity, IdentityProvider, Rejected, SignInLink};
use crate::error::{Error, Result};

fn check_url(field: &str, url: &str) -> Result<()> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| Error::invalid(field, "invalid_format", format!("{url}: {e}")))?;
    let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(Error::invalid(field, "invalid_value", format!("{url}: https is required (http only on loopback)")))
    }
}

fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(StdDuration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::internal("building an HTTP client", e))
}

/// An OpenID Connect provider's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The name logins use (`google`, `okta`, …).
    pub name: String,
    /// The accepted `iss` values.
    pub issuers: Vec<String>,
    /// Our client ids: `aud` must be one of them (a web and a mobile client, say).
    pub audiences: Vec<String>,
    /// Where the provider publishes its signing keys.
    pub jwks_url: String,
    /// Clock skew tolerated on `exp`/`nbf` (seconds).
    pub leeway_secs: i64,
    /// The keys are fetched again on an unknown `kid` at most this often (default 10 s),
    /// so tokens with made-up key ids cannot make us hammer the provider.
    pub jwks_min_refetch: StdDuration,
    /// Its authorization endpoint, for a sign-in button in the browser (`None`: tokens
    /// are only checked, as for a mobile app's).
    pub authorize_url: Option<String>,
    /// What the sign-in button calls it ("Google", "Okta").
    pub label: String,
}

impl OidcConfig {
    /// Google Sign-In for the client id `client_id`.
    pub fn google(client_id: &str) -> Self {
        Self {
            name: "google".into(),
            issuers: vec!["https://accounts.google.com".into(), "accounts.google.com".into()],
            audiences: vec![client_id.into()],
            jwks_url: "https://www.googleapis.com/oauth2/v3/certs".into(),
            leeway_secs: 60,
            jwks_min_refetch: MIN_REFETCH,
            authorize_url: Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
            label: "Google".into(),
        }
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
}

impl OidcConfig {
    /// The settings of the issuer at `issuer` (`https://login.example.com/realms/x`), read
    /// from its discovery document (`/.well-known/openid-configuration`): its `issuer`
    /// must be the one asked for, and it names where the keys are.
    pub async fn discover(name: &str, issuer: &str, audiences: Vec<String>) -> Result<Self> {
        let issuer = issuer.trim_end_matches('/');
        check_url("oidcIssuer", issuer)?;
        let url = format!("{issuer}/.well-known/openid-configuration");
        let found: Discovery = client()?
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Error::internal(format!("reading {url}"), e))?
            .json()
            .await
            .map_err(|e| Error::internal(format!("reading {url}"), e))?;
        if found.issuer.trim_end_matches('/') != issuer {
            return Err(Error::invalid(
                "oidcIssuer",
                "invalid_value",
                format!("{url} names the issuer {}, not {issuer}", found.issuer),
            ));
        }
        check_url("jwksUrl", &found.jwks_uri)?;
        if let Some(authorize) = &found.authorization_endpoint {
            check_url("authorizationEndpoint", authorize)?;
        }
        Ok(Self {
            name: name.to_string(),
            issuers: vec![found.issuer],
            audiences,
            jwks_url: found.jwks_uri,
            leeway_secs: 60,
            jwks_min_refetch: MIN_REFETCH,
            authorize_url: found.authorization_endpoint,
            label: name.to_string(),
        })
    }
}

struct Jwks {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

/// An OpenID Connect provider: ID tokens checked against its JWKS.
pub struct OidcProvider {
    config: OidcConfig,
    http: reqwest::Client,
    jwks: RwLock<Jwks>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
}

#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    iss: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// By default a JWKS is fetched again at most this often when tokens name unknown keys.
pub const MIN_REFETCH: StdDuration = StdDuration::from_secs(10);
/// And at least this often.
const MAX_AGE: StdDuration = StdDuration::from_secs(3600);

impl OidcProvider {
    /// A provider with these settings.
    pub fn new(config: OidcConfig) -> Result<Self> {
        check_url("jwksUrl", &config.jwks_url)?;
        if let Some(authorize) = &config.authorize_url {
            check_url("oidcAuthorizeUrl", authorize)?;
        }
        if config.audiences.iter().all(String::is_empty) || config.issuers.is_empty() {
            return Err(Error::invalid("oidc", "required", "an OIDC provider needs an audience and an issuer"));
        }
        Ok(Self { config, http: client()?, jwks: RwLock::new(Jwks { keys: HashMap::new(), fetched: None }) })
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, DecodingKey>> {
        let set: JwkSet = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Error::internal("fetching the provider's keys", e))?
            .json()
            .await
            .map_err(|e| Error::internal("reading the provider's keys", e))?;
        let mut keys = HashMap::new();
        for k in set.keys {
            if k.kty != "RSA" || k.usage.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            if let (Some(kid), Some(n), Some(e)) = (k.kid, k.n, k.e) {
                if let Ok(key) = DecodingKey::from_rsa_components(&n, &e) {
                    keys.insert(kid, key);
                }
            }
        }
        Ok(keys)
    }

    /// The key `kid`, fetching the JWKS when it is unknown (or old), rate-limited.
    async fn key(&self, kid: &str) -> Result<Option<DecodingKey>> {
        {
            let cache = self.jwks.read().await;
            let fresh = cache.fetched.is_some_and(|t| t.elapsed() < MAX_AGE);
            if let Some(k) = cache.keys.get(kid).filter(|_| fresh) {
                return Ok(Some(k.clone()));
            }
            if cache.fetched.is_some_and(|t| t.elapsed() < self.config.jwks_min_refetch) && fresh {
                return Ok(None);
            }
        }
        let mut cache = self.jwks.write().await;
        // Another caller may have fetched while this one waited.
        if cache.fetched.is_none_or(|t| t.elapsed() >= self.config.jwks_min_refetch) {
            cache.keys = self.fetch_keys().await?;
            cache.fetched = Some(Instant::now());
        }
        Ok(cache.keys.get(kid).cloned())
    }
}

#[async_trait]
impl IdentityProvider for OidcProvider {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn sign_in(&self) -> Option<SignInLink> {
        let c = &self.config;
        Some(SignInLink {
            provider: c.name.clone(),
            label: c.label.clone(),
            authorize_url: c.authorize_url.clone()?,
            client_id: c.audiences.iter().find(|a| !a.is_empty())?.clone(),
            response_type: "id_token".into(),
            scope: "openid email profile".into(),
        })
    }

    async fn verify(&self, token: &str, now: DateTime<Utc>) -> std::result::Result<ExternalIdentity, Rejected> {
        if token.len() > 16 * 1024 {
            return reject("token too long");
        }
        let Ok(header) = jsonwebtoken::decode_header(token) else { return reject("malformed") };
        if header.alg != Algorithm::RS256 {
            return reject(format!("algorithm {:?} refused", header.alg));
        }
        if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some() {
            return reject("embedded key refused");
        }
        let Some(kid) = header.kid else { return reject("no kid") };
        let key = match self.key(&kid).await {
            Ok(Some(k)) => k,
            Ok(None) => return reject(format!("unknown kid {kid}")),
            Err(e) => return Err(Rejected::Unavailable(e)),
        };
        let mut v = Validation::new(Algorithm::RS256);
        // Times are checked below against the injected clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims = ["sub", "iss", "aud", "exp"].iter().map(|s| s.to_string()).collect();
        v.set_audience(&self.config.audiences);
        v.set_issuer(&self.config.issuers);
        let claims = match jsonwebtoken::decode::<IdClaims>(token, &key, &v) {
            Ok(d) => d.claims,
            Err(e) => return reject(format!("{:?}", e.kind())),
        };
        let t = now.timestamp();
        if claims.exp + self.config.leeway_secs < t {
            return reject("expired");
        }
        if claims.nbf.is_some_and(|nbf| nbf - self.config.leeway_secs > t) {
            return reject("not yet valid");
        }
        if !self.config.issuers.contains(&claims.iss) {
            return reject("issuer");
        }
        let email_verified = match claims.email_verified {
            Some(serde_json::Value::Bool(b)) => b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        };
        Ok(ExternalIdentity {
            provider: self.config.name.clone(),
            subject: claims.sub,
            email: claims.email.map(|e| e.trim().to_lowercase()),
            email_verified,
            name: claims.name,
            nonce: claims.nonce,
            single_use_until: DateTime::from_timestamp(claims.exp + self.config.leeway_secs, 0),
        })
    }
}

/// Facebook Login settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacebookConfig {
    /// The app id.
    pub app_id: String,
    /// The app secret (the app token is `app_id|app_secret`).
    pub app_secret: String,
    /// The Graph API base (`https://graph.facebook.com`).
    pub graph_url: String,
    /// The login dialog a sign-in button opens ([`FACEBOOK_DIALOG`]).
    pub dialog_url: String,
}

/// Facebook's login dialog.
pub const FACEBOOK_DIALOG: &str = "https://www.facebook.com/v21.0/dialog/oauth";

/// Facebook: access tokens validated with `debug_token`, the person read from `/me`.
pub struct FacebookProvider {
    config: FacebookConfig,
    http: reqwest::Client,
}

impl std::fmt::Debug for FacebookProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacebookProvider").field("app_id", &self.config.app_id).finish_non_exhaustive()
    }
}

impl FacebookProvider {
    /// A Graph API answer: a 4xx refuses the token, anything else failing is the
    /// provider being unavailable.
    async fn graph<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, &str)],
    ) -> std::result::Result<T, Rejected> {
        let unavailable = |e: reqwest::Error| Rejected::Unavailable(Error::internal("asking Facebook", e));
        let res = self.http.get(url).query(query).send().await.map_err(unavailable)?;
        if res.status().is_client_error() {
            return reject(format!("Facebook answered {}", res.status().as_u16()));
        }
        res.error_for_status().map_err(unavailable)?.json().await.map_err(unavailable)
    }

    /// A provider with these settings.
    pub fn new(config: FacebookConfig) -> Result<Self> {
        check_url("graphUrl", &config.graph_url)?;
        check_url("facebookDialogUrl", &config.dialog_url)?;
        Ok(Self { config, http: client()? })
    }
}

#[derive(Deserialize)]
struct DebugToken {
    data: DebugData,
}

#[derive(Deserialize)]
struct DebugData {
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    is_valid: bool,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    expires_at: Option<i64>,
}

#[derive(Deserialize)]
struct Me {
    id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[async_trait]
impl IdentityProvider for FacebookProvider {
    fn name(&self) -> &str {
        "facebook"
    }

    fn sign_in(&self) -> Option<SignInLink> {
        Some(SignInLink {
            provider: "facebook".into(),
            label: "Facebook".into(),
            authorize_url: self.config.dialog_url.clone(),
            client_id: self.config.app_id.clone(),
            response_type: "token".into(),
            scope: "email public_profile".into(),
        })
    }

    async fn verify(&self, token: &str, now: DateTime<Utc>) -> std::result::Result<ExternalIdentity, Rejected> {
        if token.is_empty() || token.len() > 4096 {
            return reject("malformed");
        }
        let base = self.config.graph_url.trim_end_matches('/');
        let app_token = format!("{}|{}", self.config.app_id, self.config.app_secret);
        let query = [("input_token", token), ("access_token", app_token.as_str())];
        let debug: DebugToken = self.graph(&format!("{base}/debug_token"), &query).await?;
        let d = debug.data;
        if !d.is_valid {
            return reject("token not valid");
        }
        if d.app_id.as_deref() != Some(self.config.app_id.as_str()) {
            return reject("token of another app");
        }
        if d.expires_at.is_some_and(|e| e != 0 && e < now.timestamp()) {
            return reject("expired");
        }
        let Some(user_id) = d.user_id else { return reject("no user") };
        let me: Me = self.graph(&format!("{base}/me"), &[("fields", "id,name,email"), ("access_token", token)]).await?;
        if me.id != user_id {
            return reject("/me is another user");
        }
        Ok(ExternalIdentity {
            provider: "facebook".into(),
            subject: me.id,
            email: me.email.map(|e| e.trim().to_lowercase()),
            // Facebook makes no claim that the address was verified: it never links an
            // existing account on its own.
            email_verified: false,
            name: me.name,
            nonce: None,
            single_use_until: None,
        })
    }
}
