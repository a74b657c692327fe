//! Idempotent requests: a caller names a request with a key; the first request with that
//! key runs and its answer is kept; the same key with the same request within
//! [`TTL_HOURS`] replays the kept answer and acts no more; the same key with another
//! request, or while the first still runs, is a conflict. Keys are scoped (crm-http uses
//! the caller's user id, or `anonymous`) and stored hashed, in the store, so every server
//! instance sees them. An answer that is not kept ([`IdempotencyService::forget`]: a
//! server error, or one too large to keep) frees the key for a retry.
//!
//! ```no_run
//! # async fn demo(crm: &crm_core::Crm) -> crm_core::Result<()> {
//! use crm_core::service::idempotency::{Begun, KeptAnswer};
//! match crm.idempotency().begin("user-1", "order-42", &[b"POST /orders", b"{...}"]).await? {
//!     Begun::Replay(answer) => { /* answer as before */ }
//!     Begun::Run(ticket) => {
//!         // … act …
//!         let answer = KeptAnswer { status: 201, body: "{}".into(), content_type: None, location: None };
//!         crm.idempotency().keep(ticket, answer).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

use chrono::Duration;
use sha2::{Digest, Sha256};

use crate::error::{Error, FieldError, Result};
use crate::model::idempotency::IdempotencyRecord;
use crate::query::{id_key, Direction, Filter, StoreQuery};
use crate::schema::{to_row, EntityKind, Value};
use crate::service::Crm;
use crate::store::{Changeset, StoreExt, Write};

/// How long a key is remembered.
pub const TTL_HOURS: i64 = 24;
/// The longest key.
pub const MAX_KEY: usize = 255;
/// The largest answer body kept; a larger one is answered but not kept.
pub const MAX_KEPT: usize = 1024 * 1024;

/// The error field a key's problems are reported on (the HTTP header's name).
const FIELD: &str = "Idempotency-Key";

/// What to do with a request.
#[derive(Debug)]
pub enum Begun {
    /// It is the first with its key: run it, then [`IdempotencyService::keep`] its
    /// answer or [`IdempotencyService::forget`] it.
    Run(Ticket),
    /// It ran before: answer this again.
    Replay(KeptAnswer),
}

/// A request that holds its key while it runs.
#[derive(Debug)]
pub struct Ticket {
    record: IdempotencyRecord,
}

/// An answer as kept and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    /// The status code.
    pub status: u16,
    /// The body (text: the API answers JSON).
    pub body: String,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// Its `Location`.
    pub location: Option<String>,
}

/// Idempotency keys (`Crm::idempotency`).
#[derive(Clone, Copy)]
pub struct IdempotencyService<'a> {
    pub(crate) crm: &'a Crm,
}

fn sha(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn conflict(message: &str) -> Error {
    Error::Conflict { message: message.into(), field: Some(FIELD.into()) }
}

impl IdempotencyService<'_> {
    /// Starts a request named `key` by `scope`; `request` is what makes two requests the
    /// same (method, path and body, say). A key of 1 to [`MAX_KEY`] characters.
    pub async fn begin(&self, scope: &str, key: &str, request: &[&[u8]]) -> Result<Begun> {
        if key.is_empty() || key.len() > MAX_KEY {
            let why = "Idempotency-Key has 1 to 255 visible characters";
            return Err(Error::Malformed(vec![FieldError::new(FIELD, "invalid_value", why)]));
        }
        let crm = self.crm;
        let key_hash = sha(&[scope.as_bytes(), key.as_bytes()]);
        let request_hash = sha(request);
        let now = crm.now();
        let mut cs = Changeset::default();
        if let Some(rec) = self.find(&key_hash).await? {
            if rec.expires_at > now {
                if rec.request_hash != request_hash {
                    return Err(conflict("this Idempotency-Key was used with another request"));
                }
                return match (rec.status, rec.response) {
                    (Some(status), Some(response)) => Ok(Begun::Replay(answer_of(status, &response))),
                    _ => Err(conflict("a request with this Idempotency-Key is still running")),
                };
            }
            cs.writes.push(Write::Purge { kind: EntityKind::IdempotencyKey, column: "id", id: rec.id });
        }
        let record = IdempotencyRecord {
            id: crm.new_id(now),
            key_hash,
            request_hash,
            status: None,
            response: None,
            created_at: now,
            expires_at: now + Duration::hours(TTL_HOURS),
            version: 1,
        };
        cs.writes.push(Write::Insert { kind: EntityKind::IdempotencyKey, row: to_row(&record)? });
        match crm.store().apply(cs).await {
            Ok(()) => Ok(Begun::Run(Ticket { record })),
            // Another request took the key between the read and the write.
            Err(Error::Conflict { .. }) => Err(conflict("a request with this Idempotency-Key is still running")),
            Err(e) => Err(e),
        }
    }

    /// Keeps the answer of a request for replays; one larger than [`MAX_KEPT`] is not
    /// kept (the key is freed) and `false` says so.
    pub async fn keep(&self, ticket: Ticket, answer: KeptAnswer) -> Result<bool> {
        if answer.body.len() > MAX_KEPT {
            self.forget(ticket).await?;
            return Ok(false);
        }
        let mut done = ticket.record.clone();
        done.status = Some(i64::from(answer.status));
        done.response = Some(serde_json::json!({
            "body": answer.body,
            "contentType": answer.content_type,
            "location": answer.location,
        }));
        done.version += 1;
        let write = Write::Update {
            kind: EntityKind::IdempotencyKey,
            row: to_row(&done)?,
            expected_version: ticket.record.version,
        };
        self.crm.store().apply(Changeset { writes: vec![write], audit: vec![] }).await?;
        Ok(true)
    }

    /// Frees the key of a request whose answer is not to be replayed (a server error:
    /// the caller may try again with the same key).
    pub async fn forget(&self, ticket: Ticket) -> Result<()> {
        let write = Write::Purge { kind: EntityKind::IdempotencyKey, column: "id", id: ticket.record.id };
        self.crm.store().apply(Changeset { writes: vec![write], audit: vec![] }).await
    }

    async fn find(&self, key_hash: &str) -> Result<Option<IdempotencyRecord>> {
        let kind = EntityKind::IdempotencyKey;
        let q = StoreQuery {
            filter: Some(Filter::eq(kind, "keyHash", Value::Text(key_hash.into()))?),
            sort: vec![id_key(kind, Direction::Asc)],
            limit: 1,
            include_deleted: true,
        };
        Ok(self.crm.store().list_as::<IdempotencyRecord>(&q).await?.pop())
    }
}

fn answer_of(status: i64, response: &serde_json::Value) -> KeptAnswer {
    let text = |f: &str| response.get(f).and_then(|v| v.as_str()).map(str::to_string);
    KeptAnswer {
        status: u16::try_from(status).unwrap_or(200),
        body: text("body").unwrap_or_default(),
        content_type: text("contentType"),
        location: text("location"),
    }
}
