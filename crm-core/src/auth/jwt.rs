//! Access tokens: short-lived JWTs (`sub`, `role`, `sid`, `iss`, `aud`, `exp`, `nbf`,
//! `iat`, `jti`) signed with one pinned algorithm, HS256, under keys named by `kid`.
//! Rotation adds a new signing key and keeps the old ones for verification until they
//! are retired. Verification trusts nothing in the header but the key id: any other
//! algorithm (`none`, RS256 and the HS/RS confusion), an embedded `jwk`, a `jku`, `x5u` or
//! `x5c` are refused before the signature is checked. Times are checked against the
//! caller's clock, so tests move a fake one.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::policy::{Actor, Role};

/// The one algorithm of crm-rs access tokens.
const ALGORITHM: Algorithm = Algorithm::HS256;
/// Longer tokens are refused unread.
const MAX_TOKEN: usize = 4096;
/// The shortest key accepted (256 bits, as HS256 wants).
const MIN_SECRET: usize = 32;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user (UUID).
    pub sub: Uuid,
    /// Their role when the token was issued.
    pub role: Role,
    /// The session the token belongs to (checked against revocation by the caller).
    pub sid: Uuid,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Token id.
    pub jti: Uuid,
}

/// Why a token was refused. Callers answer all of them the same way (unauthenticated);
/// the reason is for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not a JWT, too long, or claims missing or of the wrong type.
    Malformed,
    /// Another algorithm than the pinned one (including `none`).
    Algorithm,
    /// The header carries or points at a key (`jwk`, `jku`, `x5u`, `x5c`).
    EmbeddedKey,
    /// No `kid`, or one this server does not have.
    UnknownKey,
    /// The signature does not match.
    Signature,
    /// Past `exp`.
    Expired,
    /// Before `nbf`.
    NotYetValid,
    /// Another issuer.
    Issuer,
    /// Another audience.
    Audience,
}

impl TokenRejection {
    /// A stable name for logs and audit events.
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenRejection::Malformed => "malformed",
            TokenRejection::Algorithm => "algorithm",
            TokenRejection::EmbeddedKey => "embedded_key",
            TokenRejection::UnknownKey => "unknown_key",
            TokenRejection::Signature => "signature",
            TokenRejection::Expired => "expired",
            TokenRejection::NotYetValid => "not_yet_valid",
            TokenRejection::Issuer => "issuer",
            TokenRejection::Audience => "audience",
        }
    }
}

impl From<TokenRejection> for Error {
    fn from(_: TokenRejection) -> Self {
        Error::Unauthenticated
    }
}

/// Who issues tokens for whom, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// How long an access token lives (default 15 minutes).
    pub ttl: Duration,
    /// Clock skew tolerated on `exp` and `nbf` (default 30 s).
    pub leeway: Duration,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuer: "crm-rs".into(),
            audience: "crm-rs".into(),
            ttl: Duration::minutes(15),
            leeway: Duration::seconds(30),
        }
    }
}

/// The signing and verification keys, by `kid`.
#[derive(Clone)]
pub struct JwtKeys {
    config: JwtConfig,
    signing: String,
    keys: HashMap<String, Vec<u8>>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("JwtKeys").field("signing", &self.signing).field("kids", &kids).finish_non_exhaustive()
    }
}

fn check_secret(kid: &str, secret: &[u8]) -> Result<()> {
    if kid.is_empty() || kid.len() > 64 {
        return Err(Error::invalid("kid", "invalid_value", "a key id has 1 to 64 characters"));
    }
    if secret.len() < MIN_SECRET {
        return Err(Error::invalid("jwtSecret", "too_short", format!("a signing key has at least {MIN_SECRET} bytes")));
    }
    Ok(())
}

impl JwtKeys {
    /// Keys that sign with `secret` under `kid`.
    pub fn new(config: JwtConfig, kid: &str, secret: &[u8]) -> Result<Self> {
        check_secret(kid, secret)?;
        Ok(Self { config, signing: kid.to_string(), keys: HashMap::from([(kid.to_string(), secret.to_vec())]) })
    }

    /// Signs from now on with a new key; tokens signed with the older ones still verify
    /// until those are retired.
    pub fn rotate(&mut self, kid: &str, secret: &[u8]) -> Result<()> {
        check_secret(kid, secret)?;
        self.keys.insert(kid.to_string(), secret.to_vec());
        self.signing = kid.to_string();
        Ok(())
    }

    /// Accepts tokens signed with an older key, without signing with it (the current
    /// signing key stays).
    pub fn also_verify(&mut self, kid: &str, secret: &[u8]) -> Result<()> {
        check_secret(kid, secret)?;
        if kid != self.signing {
            self.keys.insert(kid.to_string(), secret.to_vec());
        }
        Ok(())
    }

    /// Stops accepting tokens signed with `kid` (never the current signing key).
    pub fn retire(&mut self, kid: &str) -> Result<()> {
        if kid == self.signing {
            return Err(Error::invalid("kid", "invalid_value", "the signing key cannot be retired; rotate first"));
        }
        self.keys.remove(kid);
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// An access token for the actor's session, issued at `now`.
    pub fn issue(&self, actor: &Actor, session: Uuid, now: DateTime<Utc>) -> Result<(String, AccessClaims)> {
        let claims = AccessClaims {
            sub: actor.user_id.as_uuid(),
            role: actor.role,
            sid: session,
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            exp: (now + self.config.ttl).timestamp(),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            jti: Uuid::now_v7(),
        };
        let secret = self.keys.get(&self.signing).ok_or_else(|| Error::internal_msg("the signing key is missing"))?;
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.signing.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
            .map_err(|e| Error::internal("signing an access token", e))?;
        Ok((token, claims))
    }

    /// The claims of a token this server issued, valid at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> std::result::Result<AccessClaims, TokenRejection> {
        if token.len() > MAX_TOKEN {
            return Err(TokenRejection::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => TokenRejection::Algorithm,
            _ => raw_alg(token).map_or(TokenRejection::Malformed, |_| TokenRejection::Algorithm),
        })?;
        if header.alg != ALGORITHM {
            return Err(TokenRejection::Algorithm);
        }
        if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some() {
            return Err(TokenRejection::EmbeddedKey);
        }
        let secret = header.kid.as_ref().and_then(|k| self.keys.get(k)).ok_or(TokenRejection::UnknownKey)?;
        let mut v = Validation::new(ALGORITHM);
        // Times are checked below against the caller's clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.audience]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_secret(secret), &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenRejection::Signature,
                K::InvalidIssuer => TokenRejection::Issuer,
                K::InvalidAudience => TokenRejection::Audience,
                K::InvalidAlgorithm => TokenRejection::Algorithm,
                _ => TokenRejection::Malformed,
            }
        })?;
        let claims = data.claims;
        let leeway = self.config.leeway.num_seconds();
        if now.timestamp() >= claims.exp + leeway {
            return Err(TokenRejection::Expired);
        }
        if now.timestamp() + leeway < claims.nbf {
            return Err(TokenRejection::NotYetValid);
        }
        Ok(claims)
    }
}

/// The `alg` a header names, when the header is JSON at all (for telling an unknown
/// algorithm such as `none` from garbage).
fn raw_alg(token: &str) -> Option<String> {
    let head = token.split('.').next()?;
    let json: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).ok()?).ok()?;
    json.get("alg")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> JwtKeys {
        JwtKeys::new(JwtConfig::default(), "k1", SECRET).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    fn actor() -> Actor {
        Actor::new(UserId(Uuid::now_v7()), Role::Manager, None)
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// A token with any header, HMAC-signed with `secret` (or unsigned).
    fn forge(header: serde_json::Value, claims: &AccessClaims, secret: Option<&[u8]>) -> String {
        let msg = format!("{}.{}", b64(&header), b64(&serde_json::json!(claims)));
        let sig = secret
            .map(|s| jsonwebtoken::crypto::sign(msg.as_bytes(), &EncodingKey::from_secret(s), Algorithm::HS256))
            .transpose()
            .unwrap_or_default()
            .unwrap_or_default();
        format!("{msg}.{sig}")
    }

    const NOW: i64 = 1_767_225_600;

    #[test]
    fn issued_tokens_verify_with_every_claim() {
        let k = keys();
        let a = actor();
        let sid = Uuid::now_v7();
        let (token, claims) = k.issue(&a, sid, at(NOW)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jsonwebtoken::decode_header(&token).ok().and_then(|h| h.kid).as_deref(), Some("k1"));
        let back = k.verify(&token, at(NOW + 60));
        assert_eq!(back.as_ref().ok(), Some(&claims));
        assert_eq!((claims.sub, claims.role, claims.sid), (a.user_id.as_uuid(), Role::Manager, sid));
        assert_eq!((claims.exp - claims.iat, claims.nbf), (900, NOW));
    }

    #[test]
    fn times_follow_the_callers_clock() {
        let k = keys();
        let (token, _) = k.issue(&actor(), Uuid::now_v7(), at(NOW)).unwrap_or_else(|e| panic!("{e}"));
        assert!(k.verify(&token, at(NOW + 900 + 29)).is_ok(), "within the leeway");
        assert_eq!(k.verify(&token, at(NOW + 900 + 30)), Err(TokenRejection::Expired));
        assert!(k.verify(&token, at(NOW - 29)).is_ok());
        assert_eq!(k.verify(&token, at(NOW - 31)), Err(TokenRejection::NotYetValid));
    }

    #[test]
    fn forged_headers_are_refused_before_the_signature() {
        let k = keys();
        let (_, claims) = k.issue(&actor(), Uuid::now_v7(), at(NOW)).unwrap_or_else(|e| panic!("{e}"));
        let now = at(NOW);
        let none = forge(serde_json::json!({"alg": "none", "typ": "JWT", "kid": "k1"}), &claims, None);
        assert_eq!(k.verify(&none, now), Err(TokenRejection::Algorithm));
        // HS/RS confusion: an RS256 header over an HMAC made with the shared secret.
        let rs = forge(serde_json::json!({"alg": "RS256", "kid": "k1"}), &claims, Some(SECRET));
        assert_eq!(k.verify(&rs, now), Err(TokenRejection::Algorithm));
        let hs512 = forge(serde_json::json!({"alg": "HS512", "kid": "k1"}), &claims, Some(SECRET));
        assert_eq!(k.verify(&hs512, now), Err(TokenRejection::Algorithm));
        // Correctly signed, but pointing at or carrying a key: refused all the same.
        let jku = forge(
            serde_json::json!({"alg": "HS256", "kid": "k1", "jku": "http://127.0.0.1/keys"}),
            &claims,
            Some(SECRET),
        );
        assert_eq!(k.verify(&jku, now), Err(TokenRejection::EmbeddedKey));
        let jwk = serde_json::json!({"alg": "HS256", "kid": "k1", "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(b"attacker key attacker key attack")}});
        assert_eq!(
            k.verify(&forge(jwk, &claims, Some(b"attacker key attacker key attack")), now),
            Err(TokenRejection::EmbeddedKey)
        );
        let x5u =
            forge(serde_json::json!({"alg": "HS256", "kid": "k1", "x5u": "http://127.0.0.1/c"}), &claims, Some(SECRET));
        assert_eq!(k.verify(&x5u, now), Err(TokenRejection::EmbeddedKey));
        let nokid = forge(serde_json::json!({"alg": "HS256"}), &claims, Some(SECRET));
        assert_eq!(k.verify(&nokid, now), Err(TokenRejection::UnknownKey));
        assert_eq!(k.verify("not.a.jwt", now), Err(TokenRejection::Malformed));
        assert_eq!(k.verify(&"x".repeat(5000), now), Err(TokenRejection::Malformed));
    }

    #[test]
    fn signature_issuer_and_audience_are_checked() {
        let k = keys();
        let (token, claims) = k.issue(&actor(), Uuid::now_v7(), at(NOW)).unwrap_or_else(|e| panic!("{e}"));
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut elevated = claims.clone();
        elevated.role = Role::Admin;
        parts[1] = b64(&serde_json::json!(elevated));
        assert_eq!(k.verify(&parts.join("."), at(NOW)), Err(TokenRejection::Signature), "tampered payload");
        let header = serde_json::json!({"alg": "HS256", "kid": "k1"});
        let other_iss = AccessClaims { iss: "someone-else".into(), ..claims.clone() };
        assert_eq!(k.verify(&forge(header.clone(), &other_iss, Some(SECRET)), at(NOW)), Err(TokenRejection::Issuer));
        let other_aud = AccessClaims { aud: "another-app".into(), ..claims };
        assert_eq!(k.verify(&forge(header, &other_aud, Some(SECRET)), at(NOW)), Err(TokenRejection::Audience));
    }

    #[test]
    fn keys_rotate_and_retire() {
        let mut k = keys();
        let (old, _) = k.issue(&actor(), Uuid::now_v7(), at(NOW)).unwrap_or_else(|e| panic!("{e}"));
        assert!(k.rotate("k2", b"another 32-byte secret for k2 !!").is_ok());
        let (new, _) = k.issue(&actor(), Uuid::now_v7(), at(NOW)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jsonwebtoken::decode_header(&new).ok().and_then(|h| h.kid).as_deref(), Some("k2"));
        assert!(k.verify(&old, at(NOW)).is_ok(), "old tokens live until their key retires");
        assert!(k.retire("k2").is_err(), "the signing key stays");
        assert!(k.retire("k1").is_ok());
        assert_eq!(k.verify(&old, at(NOW)), Err(TokenRejection::UnknownKey));
        assert!(k.verify(&new, at(NOW)).is_ok());
        assert!(JwtKeys::new(JwtConfig::default(), "k", b"short").is_err());
    }
}
