//! Outgoing webhook bodies and their signatures, per the Standard Webhooks
//! specification (<https://www.standardwebhooks.com>): headers `webhook-id` (the event
//! id: the same on every attempt), `webhook-timestamp` (Unix seconds of the attempt) and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per valid
//! secret, space-separated while a rotation overlaps); secrets are `whsec_<base64>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value as Json};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::outbox::OutboxEvent;

/// The prefix of webhook secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// The record kinds whose events webhooks may carry: CRM records only (never users,
/// sessions, tokens or queued mail).
pub const PUBLIC_KINDS: [&str; 5] = ["contact", "company", "deal", "task", "interaction"];

/// The verbs of record events.
pub const VERBS: [&str; 5] = ["created", "updated", "deleted", "restored", "purged"];

/// The event types a subscription may name besides `<kind>.<verb>`.
pub const EXTRA_TOPICS: [&str; 2] = ["deal.stage_changed", "task.assigned"];

/// Every event type a webhook can receive.
pub fn event_types() -> Vec<String> {
    let mut out: Vec<String> =
        PUBLIC_KINDS.iter().flat_map(|k| VERBS.iter().map(move |v| format!("{k}.{v}"))).collect();
    out.extend(EXTRA_TOPICS.iter().map(|t| t.to_string()));
    out
}

/// May a webhook carry this outbox topic?
pub fn is_public_topic(topic: &str) -> bool {
    if EXTRA_TOPICS.contains(&topic) {
        return true;
    }
    matches!(topic.split_once('.'), Some((k, v)) if PUBLIC_KINDS.contains(&k) && VERBS.contains(&v))
}

/// Is `pattern` a valid subscription: `*`, `<kind>.*` or an event type?
pub fn valid_pattern(pattern: &str) -> bool {
    pattern == "*" || pattern.strip_suffix(".*").is_some_and(|k| PUBLIC_KINDS.contains(&k)) || is_public_topic(pattern)
}

/// Does a subscription to `patterns` want `topic`?
pub fn wants(patterns: &[String], topic: &str) -> bool {
    patterns.iter().any(|p| {
        p == "*"
            || p == topic
            || p.strip_suffix(".*").is_some_and(|k| topic.split_once('.').is_some_and(|(t, _)| t == k))
    })
}

/// The body a webhook receives for an event: `{"type", "timestamp", "data"}`.
pub fn body(ev: &OutboxEvent) -> Json {
    let mut data = match &ev.payload {
        Json::Object(m) => m.clone(),
        other => {
            let mut m = serde_json::Map::new();
            m.insert("value".into(), other.clone());
            m
        }
    };
    data.insert("entityType".into(), json!(ev.entity_type));
    if let Some(id) = ev.entity_id {
        data.insert("id".into(), json!(id));
    }
    json!({
        "type": ev.topic,
        "timestamp": ev.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
}

/// A new secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> Result<String> {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| Error::internal("reading the OS random source", e))?;
    Ok(format!("{SECRET_PREFIX}{}", B64.encode(key)))
}

/// The signature of one message under one secret: `v1,<base64>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let key = B64
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|e| Error::internal("a webhook secret is not base64", e))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key).map_err(|e| Error::internal("a webhook secret is unusable", e))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(secrets: &[String], id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let sigs = secrets.iter().map(|s| sign(s, id, timestamp, body)).collect::<Result<Vec<_>>>()?;
    Ok(sigs.join(" "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The specification's own example (standard-webhooks, `spec/standard-webhooks.md`).
    #[test]
    fn matches_the_reference_signature() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn patterns() {
        let p = vec!["deal.*".to_string(), "task.assigned".to_string()];
        assert!(wants(&p, "deal.stage_changed"));
        assert!(wants(&p, "deal.created"));
        assert!(wants(&p, "task.assigned"));
        assert!(!wants(&p, "task.created"));
        assert!(wants(&["*".to_string()], "contact.created"));
        assert!(valid_pattern("contact.*") && valid_pattern("deal.stage_changed") && valid_pattern("*"));
        assert!(!valid_pattern("user.created") && !valid_pattern("mail.send") && !valid_pattern("user.*"));
        assert!(!is_public_topic("mail.send") && !is_public_topic("user.updated"));
    }
}
