//! The append-only, hash-chained audit log.
//!
//! Each event stores the hash of the one before it; the store keeps the head (last
//! sequence number and hash). [`verify_chain`] recomputes every hash, so an edited,
//! removed, reordered or truncated event is found.
//!
//! With an [`AuditKey`] (crm-server always has one; it comes from configuration and is
//! never stored in the database) the hash is an HMAC-SHA256 under that key, written
//! `<kid>:<hex>`: someone who can write to the database but does not hold the key cannot
//! edit an event and hash the chain again. The key id lets keys rotate: [`AuditKeys`]
//! seals with the current key and verifies with any it holds. Without a key (an embedded
//! engine that set none) the hash is plain SHA-256, as in chains written before keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::Result;
use crate::ids::UserId;
use crate::query::{Direction, Filter, Predicate, SortKey, StoreQuery};
use crate::schema::{
    format_ts, from_row, or_null, timestamp_value, Column, ColumnType as T, EntityKind, Index, Persist, Row, Value,
};
use crate::store::Store;

/// A key of the audit chain's HMAC, with its id.
#[derive(Clone)]
pub struct AuditKey {
    kid: String,
    key: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl PartialEq for AuditKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.key == other.key
    }
}

/// The shortest audit key.
pub const MIN_AUDIT_KEY: usize = 32;

impl AuditKey {
    /// A key (at least 32 bytes) under its id, [`crate::auth::key_id`] of the key.
    pub fn new(key: &[u8]) -> Result<Self> {
        Self::with_id(&crate::auth::key_id(key), key)
    }

    /// A key under this id (letters, digits, `-`, `_`).
    pub fn with_id(kid: &str, key: &[u8]) -> Result<Self> {
        if kid.is_empty() || kid.len() > 64 || !kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(crate::Error::invalid(
                "auditKey",
                "invalid_value",
                "a key id has 1 to 64 letters, digits, - or _",
            ));
        }
        if key.len() < MIN_AUDIT_KEY {
            return Err(crate::Error::invalid(
                "auditKey",
                "too_short",
                format!("an audit key has at least {MIN_AUDIT_KEY} bytes"),
            ));
        }
        Ok(Self { kid: kid.to_string(), key: key.into() })
    }

    /// Its id.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// The audit keys: the first seals new events, all of them verify.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditKeys(Vec<AuditKey>);

impl AuditKeys {
    /// No keys: plain SHA-256 hashes.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sealing with `current`.
    pub fn new(current: AuditKey) -> Self {
        Self(vec![current])
    }

    /// Also verifying with an older key.
    pub fn with_previous(mut self, key: AuditKey) -> Self {
        if !self.0.iter().any(|k| k.kid == key.kid) {
            self.0.push(key);
        }
        self
    }

    /// The key new events are sealed with.
    pub fn current(&self) -> Option<&AuditKey> {
        self.0.first()
    }

    fn get(&self, kid: &str) -> Option<&AuditKey> {
        self.0.iter().find(|k| k.kid == kid)
    }

    /// Fails, naming `auditKey`, when a chain ending at `head` was sealed with a key these
    /// keys do not hold (its events would not verify here): a CRM carried elsewhere
    /// needs its own key.
    pub fn check_holds(&self, head: &AuditHead) -> Result<()> {
        match head.hash.split_once(':') {
            Some((kid, _)) if self.get(kid).is_none() => Err(crate::Error::invalid(
                "auditKey",
                "unknown_key",
                format!(
                    "the audit chain is sealed with key {kid}, which is not configured: give this CRM's audit key                      (CRM_AUDIT_KEY, or its secrets file with --secrets-file)"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The hash before the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit event not yet placed in the chain (the store seals it inside `apply`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    /// The event's id, chosen by core before sealing.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (absent for the system).
    pub actor_id: Option<UserId>,
    /// Their role then.
    pub actor_role: Option<String>,
    /// What: `contact.created`, `deal.stage_changed`, `user.login_failed`, …
    pub action: String,
    /// The entity kind concerned.
    pub entity_type: String,
    /// The entity concerned.
    pub entity_id: Option<Uuid>,
    /// `{field: {before, after}}` of the changed fields, or other details.
    pub changes: serde_json::Value,
    /// Request metadata (request id, IP, user agent).
    pub request: serde_json::Value,
    /// The key its hash is made with (none: plain SHA-256).
    pub key: Option<AuditKey>,
}

/// A sealed audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// The event's id.
    pub id: Uuid,
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor_id: Option<UserId>,
    /// Their role then.
    pub actor_role: Option<String>,
    /// What.
    pub action: String,
    /// The entity kind concerned.
    pub entity_type: String,
    /// The entity concerned.
    pub entity_id: Option<Uuid>,
    /// What changed.
    pub changes: serde_json::Value,
    /// Request metadata.
    pub request: serde_json::Value,
    /// The previous event's hash.
    pub prev_hash: String,
    /// SHA-256 (hex) of this event's content and `prev_hash`.
    pub hash: String,
}

impl Persist for AuditEvent {
    const KIND: EntityKind = EntityKind::AuditEvent;
}

/// Storage columns of the audit log.
pub static COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).filter(),
    Column::new("seq", "seq", T::Int).sort(),
    Column::new("at", "at", T::Timestamp).sort(),
    Column::new("actor_id", "actorId", T::Uuid).null().filter(),
    Column::new("actor_role", "actorRole", T::Text).null().filter(),
    Column::new("action", "action", T::Text).sort(),
    Column::new("entity_type", "entityType", T::Text).filter(),
    Column::new("entity_id", "entityId", T::Uuid).null().filter(),
    Column::new("changes", "changes", T::Json),
    Column::new("request", "request", T::Json),
    Column::new("prev_hash", "prevHash", T::Text),
    Column::new("hash", "hash", T::Text),
];

/// The indexes of `audit_events` besides the primary key.
pub static INDEXES: &[Index] = &[
    Index::on("audit_events_seq_key", &["seq"]).unique(),
    Index::on("audit_events_entity_idx", &["entity_id", "seq"]),
    Index::on("audit_events_actor_idx", &["actor_id", "seq"]),
];

/// The end of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// The last sequence number (0 before any event). Every change writes an event, so
    /// this doubles as the store's change counter.
    pub seq: i64,
    /// The last hash.
    pub hash: String,
}

impl Default for AuditHead {
    fn default() -> Self {
        Self { seq: 0, hash: GENESIS_HASH.to_string() }
    }
}

impl NewAuditEvent {
    /// Places the event after `head`, returning it and the new head.
    pub fn seal(self, head: &AuditHead) -> (AuditEvent, AuditHead) {
        let mut e = AuditEvent {
            id: self.id,
            seq: head.seq + 1,
            at: self.at,
            actor_id: self.actor_id,
            actor_role: self.actor_role,
            action: self.action,
            entity_type: self.entity_type,
            entity_id: self.entity_id,
            changes: self.changes,
            request: self.request,
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        e.hash = e.compute_hash(self.key.as_ref());
        let next = AuditHead { seq: e.seq, hash: e.hash.clone() };
        (e, next)
    }
}

impl AuditEvent {
    /// Its row, built directly: every write stores audit events, and this skips the JSON
    /// round trip of [`crate::schema::to_row`] (a test keeps the two equal).
    pub fn into_row(self) -> Row {
        vec![
            Value::Uuid(self.id),
            Value::Int(self.seq),
            timestamp_value(self.at),
            or_null(self.actor_id, |a| Value::Uuid(a.as_uuid())),
            or_null(self.actor_role, Value::Text),
            Value::Text(self.action),
            Value::Text(self.entity_type),
            or_null(self.entity_id, Value::Uuid),
            Value::Json(self.changes),
            Value::Json(self.request),
            Value::Text(self.prev_hash),
            Value::Text(self.hash),
        ]
    }

    /// Recomputes the hash from the content: `<kid>:<HMAC-SHA256 hex>` under a key,
    /// else the plain SHA-256 hex.
    pub fn compute_hash(&self, key: Option<&AuditKey>) -> String {
        let canonical = self.canonical();
        match key {
            None => hex::encode(Sha256::digest(&canonical)),
            Some(k) => {
                use hmac::Mac;
                // Any key length is accepted by HMAC.
                let mac = hmac::Hmac::<Sha256>::new_from_slice(&k.key)
                    .map(|m| m.chain_update(&canonical).finalize().into_bytes());
                match mac {
                    Ok(bytes) => format!("{}:{}", k.kid, hex::encode(bytes)),
                    Err(_) => String::new(),
                }
            }
        }
    }

    /// The bytes the hash covers.
    fn canonical(&self) -> Vec<u8> {
        // A fixed field order and serde_json's sorted maps make this canonical: the
        // SHA-256 of the JSON array of the fields. `changes` and `request` enter by their
        // own SHA-256, so that erasing a person can replace them with that digest
        // ([`AuditEvent::redact`]) and the chain still verifies.
        let canonical = (
            self.seq,
            self.id.to_string(),
            format_ts(&self.at),
            self.actor_id.map(|a| a.to_string()),
            &self.actor_role,
            &self.action,
            &self.entity_type,
            self.entity_id.map(|e| e.to_string()),
            json_digest(&self.changes),
            json_digest(&self.request),
            &self.prev_hash,
        );
        // These values always serialise.
        serde_json::to_vec(&canonical).unwrap_or_default()
    }

    /// The id of the key its hash was made with (none: plain SHA-256).
    pub fn kid(&self) -> Option<&str> {
        self.hash.split_once(':').map(|(kid, _)| kid)
    }

    /// Replaces `changes` and `request` with their digests (`{"$redacted": "<sha256>"}`):
    /// the personal data goes, the chain still verifies. Used when a user is erased.
    pub fn redact(&mut self) {
        for v in [&mut self.changes, &mut self.request] {
            if !is_redacted(v) {
                *v = serde_json::json!({ REDACTED: json_digest(v) });
            }
        }
    }

    /// Replaces only `request` (where a request came from) with its digest.
    pub fn redact_request(&mut self) {
        if !is_redacted(&self.request) {
            self.request = serde_json::json!({ REDACTED: json_digest(&self.request) });
        }
    }

    /// Have `changes` and `request` been redacted?
    pub fn is_redacted(&self) -> bool {
        is_redacted(&self.changes) && is_redacted(&self.request)
    }
}

/// The key of a redacted JSON value.
pub const REDACTED: &str = "$redacted";

pub(crate) fn is_redacted(v: &serde_json::Value) -> bool {
    v.as_object().is_some_and(|m| m.len() == 1 && m.get(REDACTED).is_some_and(|d| d.is_string()))
}

/// SHA-256 of a value's canonical JSON, hex; of a redacted value, the digest it keeps.
/// Canonical: compact, object keys sorted by their bytes at every depth — whatever order
/// the map holds them in (serde_json keeps insertion order when a dependency turns on its
/// `preserve_order`, and PostgreSQL's JSONB reorders keys), so a stored event hashes the
/// same after any round trip.
pub fn json_digest(v: &serde_json::Value) -> String {
    if is_redacted(v) {
        return v.get(REDACTED).and_then(|d| d.as_str()).unwrap_or_default().to_string();
    }
    let mut hasher = HashWriter(Sha256::new());
    let _ = write_canonical(&mut hasher, v);
    hex::encode(hasher.0.finalize())
}

/// Writes `v` as compact JSON with object keys sorted.
pub fn write_canonical<W: std::io::Write>(w: &mut W, v: &serde_json::Value) -> std::io::Result<()> {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = m.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            w.write_all(b"{")?;
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                serde_json::to_writer(&mut *w, k)?;
                w.write_all(b":")?;
                write_canonical(w, v)?;
            }
            w.write_all(b"}")
        }
        serde_json::Value::Array(items) => {
            w.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                write_canonical(w, item)?;
            }
            w.write_all(b"]")
        }
        scalar => serde_json::to_writer(w, scalar).map_err(std::io::Error::other),
    }
}

/// Lets serde_json write straight into a SHA-256 state.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    /// Every event is in place and unaltered.
    Intact {
        /// How many events.
        events: u64,
        /// How many of them are hashed without a key (written before keys, or by an
        /// engine without one). They come first: none may follow a keyed event.
        unkeyed: u64,
    },
    /// The chain is broken at this sequence number.
    Broken {
        /// The first bad position.
        seq: i64,
        /// What is wrong there.
        reason: String,
    },
}

/// Walks the whole audit log in order and checks every link and hash, keyed ones with
/// `keys`.
pub async fn verify_chain(store: &dyn Store, keys: &AuditKeys) -> Result<ChainStatus> {
    let kind = EntityKind::AuditEvent;
    let seq_col = kind.column("seq").unwrap_or(&kind.columns()[1]);
    let mut prev = AuditHead::default();
    let (mut count, mut unkeyed) = (0u64, 0u64);
    loop {
        let filter = Filter::Cmp(crate::query::Cmp { column: seq_col, pred: Predicate::Gt(Value::Int(prev.seq)) });
        let q = StoreQuery {
            filter: Some(filter),
            sort: vec![SortKey { column: seq_col, direction: Direction::Asc }],
            limit: 1000,
            include_deleted: false,
        };
        let rows = store.list(kind, &q).await?;
        let n = rows.len();
        for row in rows {
            let e: AuditEvent = from_row(row)?;
            let broken = |reason: String| Ok(ChainStatus::Broken { seq: e.seq, reason });
            if e.seq != prev.seq + 1 {
                return Ok(ChainStatus::Broken {
                    seq: prev.seq + 1,
                    reason: format!("event {} is missing", prev.seq + 1),
                });
            }
            if e.prev_hash != prev.hash {
                return broken("its link to the previous event does not match".into());
            }
            let key = match e.kid() {
                None if count > unkeyed => {
                    return broken(
                        "it has no keyed hash, but events before it have: it was written without the key".into(),
                    )
                }
                None => {
                    unkeyed += 1;
                    None
                }
                Some(kid) => match keys.get(kid) {
                    Some(k) => Some(k),
                    None => {
                        return broken(format!(
                            "its hash is made with key {kid}, which this server does not hold (configure it as a \
                             previous audit key)"
                        ))
                    }
                },
            };
            if e.compute_hash(key) != e.hash {
                return broken("its content was altered".into());
            }
            prev = AuditHead { seq: e.seq, hash: e.hash };
            count += 1;
        }
        if n < 1000 {
            break;
        }
    }
    let head = store.audit_head().await?;
    if head != prev {
        return Ok(ChainStatus::Broken {
            seq: prev.seq + 1,
            reason: format!("the log ends at {} but the head says {}", prev.seq, head.seq),
        });
    }
    Ok(ChainStatus::Intact { events: count, unkeyed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        let (e, _) = NewAuditEvent {
            id: Uuid::from_u128(7),
            at: DateTime::from_timestamp_millis(1_767_225_600_123).unwrap_or_default(),
            actor_id: Some(UserId(Uuid::from_u128(1))),
            actor_role: Some("admin".into()),
            action: "contact.updated".into(),
            entity_type: "contact".into(),
            entity_id: Some(Uuid::from_u128(9)),
            changes: serde_json::json!({"name": {"before": "Ann \"A\" Lee", "after": "Ann 😀"}, "email": {"before": null, "after": "a@b.c"}}),
            request: serde_json::json!({"ip": "127.0.0.1"}),
            key: None,
        }
        .seal(&AuditHead::default());
        e
    }

    /// The same value, its objects' keys in sorted order (a `BTreeMap` serialises sorted).
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        fn to_tree(v: &serde_json::Value) -> serde_json::Value {
            match v {
                serde_json::Value::Object(m) => {
                    let tree: std::collections::BTreeMap<&String, serde_json::Value> =
                        m.iter().map(|(k, v)| (k, to_tree(v))).collect();
                    serde_json::to_value(tree).unwrap_or_default()
                }
                serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(to_tree).collect()),
                other => other.clone(),
            }
        }
        to_tree(v)
    }

    #[test]
    fn digest_ignores_the_order_maps_hold_keys_in() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": null}}"#).unwrap_or_default();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a": {"x": null, "y": [1, {"c": 3, "d": 2}]}, "b": 1}"#).unwrap_or_default();
        assert_eq!(json_digest(&a), json_digest(&b));
        let mut out = Vec::new();
        let _ = write_canonical(&mut out, &a);
        assert_eq!(String::from_utf8_lossy(&out), r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#);
    }

    /// The hash is SHA-256 of the compact JSON array of the fields in a fixed order:
    /// stored chains stay verifiable only while this stays true.
    #[test]
    fn hash_is_the_canonical_json_array() {
        let e = event();
        let canonical = serde_json::json!([
            e.seq,
            e.id.to_string(),
            format_ts(&e.at),
            e.actor_id.map(|a| a.to_string()),
            e.actor_role,
            e.action,
            e.entity_type,
            e.entity_id.map(|x| x.to_string()),
            hex::encode(Sha256::digest(sorted(&e.changes).to_string().as_bytes())),
            hex::encode(Sha256::digest(sorted(&e.request).to_string().as_bytes())),
            e.prev_hash,
        ]);
        assert_eq!(e.hash, hex::encode(Sha256::digest(canonical.to_string().as_bytes())));
        assert_eq!(e.hash.len(), 64);
    }

    #[test]
    fn redaction_keeps_the_hash_and_drops_the_data() {
        let e = event();
        let mut r = e.clone();
        r.redact();
        assert!(r.is_redacted());
        assert!(!r.changes.to_string().contains("Ann"));
        assert!(!r.request.to_string().contains("127.0.0.1"));
        assert_eq!(r.compute_hash(None), e.hash);
        let before = r.clone();
        r.redact();
        assert_eq!(r, before, "redacting twice changes nothing");
        // A redacted digest that is altered breaks the chain.
        r.changes[REDACTED] = serde_json::json!("00");
        assert_ne!(r.compute_hash(None), e.hash);
    }

    #[test]
    fn into_row_matches_the_schema_mapping() {
        let e = event();
        assert_eq!(crate::schema::to_row(&e).ok(), Some(e.clone().into_row()));
        let bare = AuditEvent { actor_id: None, actor_role: None, entity_id: None, ..e };
        assert_eq!(crate::schema::to_row(&bare).ok(), Some(bare.into_row()));
    }

    #[test]
    fn any_edit_changes_the_hash() {
        let e = event();
        let mut edited = e.clone();
        edited.changes["name"]["after"] = serde_json::json!("Bob");
        assert_ne!(edited.compute_hash(None), e.hash);
        let mut moved = e.clone();
        moved.seq += 1;
        assert_ne!(moved.compute_hash(None), e.hash);
    }

    #[test]
    fn a_keyed_hash_needs_its_key() {
        let key = AuditKey::with_id("2026", &[5; 32]).unwrap_or_else(|e| panic!("{e}"));
        let plain = event();
        let mut keyed = plain.clone();
        keyed.hash = keyed.compute_hash(Some(&key));
        assert!(keyed.hash.starts_with("2026:") && keyed.hash.len() == 5 + 64, "{}", keyed.hash);
        assert_eq!(keyed.kid(), Some("2026"));
        assert_eq!(plain.kid(), None);
        // Without the key nobody makes the same hash: not the plain one, not another key's.
        assert_ne!(keyed.hash[5..], plain.hash);
        let other = AuditKey::with_id("2026", &[6; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(keyed.compute_hash(Some(&other)), keyed.hash);
        // Redaction keeps a keyed hash too.
        let mut r = keyed.clone();
        r.redact();
        assert_eq!(r.compute_hash(Some(&key)), keyed.hash);
        assert!(AuditKey::new(&[1; 16]).is_err(), "too short");
        assert!(AuditKey::with_id("a:b", &[1; 32]).is_err(), "the separator is not an id");
    }
}
