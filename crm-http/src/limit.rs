//! Rate limits of the auth routes: per client address (all auth routes) and per account
//! (login and password reset requests by the name or email they give); and of the public
//! routes behind a customer's pay or card link that ask the payment gateway for
//! something, per client address and per link. Fixed windows,
//! counted in this process's memory or, with `--redis-url`, in Redis (or Valkey) where
//! every replica counts together; every answer of a limited route carries
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`, and a refusal is 429
//! `rate_limited` with `Retry-After`.
//!
//! And [`ReportSlots`]: how many reports (and report files) one user may have running at
//! once, so that nobody keeps every core busy.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

/// How many requests a key may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests.
    pub limit: u32,
    /// Per this long.
    pub window: Duration,
}

/// The quotas of the auth routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per client address, over all auth routes.
    pub per_ip: Quota,
    /// Per account named in a login or reset request.
    pub per_account: Quota,
    /// Per client address, and per link, over the public routes that make the payment
    /// gateway do something (a pay page's intent, a card page's setup and its word that
    /// the card is saved): whoever holds or guesses links cannot make objects at the
    /// gateway without end.
    pub gateway: Quota,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_ip: Quota { limit: 60, window: Duration::from_secs(60) },
            per_account: Quota { limit: 10, window: Duration::from_secs(60) },
            gateway: Quota { limit: 10, window: Duration::from_secs(60) },
        }
    }
}

/// The state of one key's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The quota.
    pub limit: u32,
    /// What is left of it.
    pub remaining: u32,
    /// Seconds until the window starts again.
    pub reset_secs: u64,
    /// Was this request allowed?
    pub allowed: bool,
}

impl Decision {
    /// Adds the `RateLimit-*` headers (and `Retry-After` on a refusal).
    pub fn headers(&self, h: &mut HeaderMap) {
        h.insert("ratelimit-limit", HeaderValue::from(self.limit));
        h.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        h.insert("ratelimit-reset", HeaderValue::from(self.reset_secs));
        if !self.allowed {
            h.insert("retry-after", HeaderValue::from(self.reset_secs.max(1)));
        }
    }

    /// The 429 answer.
    pub fn refusal(&self) -> Response {
        let mut res =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests; try again later")
                .into_response();
        self.headers(res.headers_mut());
        res
    }
}

/// Fixed-window counters by key: in this process, or shared through Redis
/// ([`RateLimiter::shared`]).
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    shared: Option<SharedRedis>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("shared", &self.shared.is_some()).finish_non_exhaustive()
    }
}

/// A Redis (or Valkey) server that replicas share: the rate limits' windows and the
/// report slots live there. Cheap to clone (one multiplexed connection, reconnected by
/// itself).
#[derive(Clone)]
pub struct SharedRedis {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    /// The scripts, hashed once (each call sends the hash, and the text only the first
    /// time a server sees it).
    window_script: redis::Script,
    slot_script: redis::Script,
}

impl std::fmt::Debug for SharedRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRedis").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl SharedRedis {
    /// Connects to the server at `url` (`redis://host:6379/0`, `rediss://` with TLS);
    /// every key starts with `prefix`. Fails, naming `redisUrl`, when it does not answer.
    pub async fn connect(url: &str, prefix: &str) -> crm_core::Result<Self> {
        let bad = |why: String| crm_core::Error::invalid("redisUrl", "invalid_value", why);
        // rediss:// speaks rustls with the process's crypto provider: ring, as everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(url).map_err(|e| bad(format!("'{url}' is not a Redis URL: {e}")))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let mut conn = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| bad(format!("Redis at {url} does not answer: {e}")))?;
        let _: String =
            redis::cmd("PING").query_async(&mut conn).await.map_err(|e| bad(format!("Redis at {url}: {e}")))?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            window_script: redis::Script::new(WINDOW_SCRIPT),
            slot_script: redis::Script::new(SLOT_SCRIPT),
        })
    }

    fn key(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }
}

/// Raises the window's counter; the first raise sets its expiry. Answers the count and
/// the milliseconds left of the window.
const WINDOW_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
";

/// Takes one of a user's report slots if one is free (the count stays at most ARGV[1]);
/// the key expires after ARGV[2] ms, so slots of a process that died come back.
const SLOT_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]); return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
";

/// Keys kept before old windows are swept.
const SWEEP_AT: usize = 50_000;

impl RateLimiter {
    /// Counters in Redis, shared by every process given the same server: their windows
    /// count together. A server lost later is not fatal: the limits count in this
    /// process until it is back.
    pub fn shared(redis: SharedRedis) -> Self {
        Self { windows: Mutex::default(), shared: Some(redis) }
    }

    /// Counts one request of `key` against `quota`, with every replica when the counters
    /// are shared.
    pub async fn check(&self, key: &str, quota: Quota) -> Decision {
        if let Some(shared) = &self.shared {
            match shared.window(key, quota).await {
                Ok(d) => return d,
                Err(e) => {
                    tracing::warn!(error = %e, "the shared rate-limit counters do not answer; counting in this process")
                }
            }
        }
        self.check_here(key, quota)
    }

    /// Counts one request of `key` against `quota` in this process.
    pub fn check_here(&self, key: &str, quota: Quota) -> Decision {
        let now = Instant::now();
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, (start, _)| now.duration_since(*start) < quota.window);
        }
        let entry = map.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= quota.window {
            *entry = (now, 0);
        }
        let allowed = entry.1 < quota.limit;
        if allowed {
            entry.1 += 1;
        }
        let reset = quota.window.saturating_sub(now.duration_since(entry.0));
        Decision {
            limit: quota.limit,
            remaining: quota.limit.saturating_sub(entry.1),
            reset_secs: reset.as_secs() + u64::from(reset.subsec_nanos() > 0),
            allowed,
        }
    }
}

impl SharedRedis {
    async fn window(&self, key: &str, quota: Quota) -> redis::RedisResult<Decision> {
        let window = u64::try_from(quota.window.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        let (count, ttl): (i64, i64) =
            self.window_script.key(self.key(&format!("ratelimit:{key}"))).arg(window).invoke_async(&mut conn).await?;
        let used = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
        let left = Duration::from_millis(u64::try_from(ttl.max(0)).unwrap_or(0));
        Ok(Decision {
            limit: quota.limit,
            remaining: quota.limit.saturating_sub(used),
            reset_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
            allowed: used <= quota.limit,
        })
    }

    /// Takes one of `user`'s `per_user` report slots; `false` when all are taken.
    async fn take_slot(&self, user: uuid::Uuid, per_user: usize) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let n: i64 = self
            .slot_script
            .key(self.key(&format!("reports:{user}")))
            .arg(per_user)
            .arg(u64::try_from(SLOT_LEASE.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut conn)
            .await?;
        Ok(n > 0)
    }

    /// Gives a slot back (a task of its own: dropping a slot cannot wait).
    fn give_back(&self, user: uuid::Uuid) {
        let (mut conn, key) = (self.conn.clone(), self.key(&format!("reports:{user}")));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let left: redis::RedisResult<i64> = redis::cmd("DECR").arg(&key).query_async(&mut conn).await;
                if matches!(left, Ok(n) if n <= 0) {
                    let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
                }
            });
        }
    }
}

/// How long a user's shared report slots outlive the last one taken: the slots of a
/// server that died while running reports come back after this.
const SLOT_LEASE: Duration = Duration::from_secs(600);

/// The per-address limit of the auth routes (`/api/auth/…`), and the per-address and
/// per-link limits of the gateway's public routes ([`gateway_link`]), as a middleware.
pub async fn public_limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Owned before any await: a request is not shared between threads.
    let link = gateway_link(&req).map(|link| hex::encode(&Sha256::digest(link.as_bytes())[..16]));
    let auth = req.uri().path().starts_with("/api/auth/");
    if !auth && link.is_none() {
        return next.run(req).await;
    }
    let ip = crate::extract::client_ip(req.extensions()).map_or_else(|| "local".to_string(), |ip| ip.to_string());
    let d = match link {
        // An auth route (no gateway link is one).
        None => {
            let quota = state.limits.per_ip;
            let d = state.limiter.check(&format!("ip:{ip}"), quota).await;
            if !d.allowed {
                tracing::warn!(%ip, "auth rate limit reached");
            }
            d
        }
        Some(link) => {
            // Links are keyed by a digest: no secret sits in the counters (or in Redis).
            let quota = state.limits.gateway;
            let by_ip = state.limiter.check(&format!("gateway-ip:{ip}"), quota).await;
            let by_link = state.limiter.check(&format!("gateway-link:{link}"), quota).await;
            if !(by_ip.allowed && by_link.allowed) {
                tracing::warn!(%ip, "payment link rate limit reached");
            }
            // The tighter of the two is the one told.
            match (by_ip.allowed, by_link.allowed) {
                (true, false) => by_link,
                (false, _) => by_ip,
                (true, true) if by_link.remaining < by_ip.remaining => by_link,
                (true, true) => by_ip,
            }
        }
    };
    if !d.allowed {
        return d.refusal();
    }
    let mut res = next.run(req).await;
    d.headers(res.headers_mut());
    res
}

/// The link (token) of a public route that makes the payment gateway do something:
/// `POST /pay/{token}/intent`, `/card/{token}/setup` and `/card/{token}/saved`.
fn gateway_link(req: &Request) -> Option<&str> {
    if req.method() != axum::http::Method::POST {
        return None;
    }
    let path = req.uri().path();
    let (page, rest) = match path.strip_prefix("/pay/") {
        Some(rest) => ("pay", rest),
        None => ("card", path.strip_prefix("/card/")?),
    };
    let (token, action) = rest.split_once('/')?;
    matches!((page, action), ("pay", "intent") | ("card", "setup" | "saved")).then_some(token)
}

/// The per-account limit: `Err` is the refusal ([`Decision::refusal`] answers it).
pub async fn per_account(state: &AppState, account: &str) -> Result<(), Decision> {
    let key = format!("account:{}", account.trim().to_lowercase());
    let d = state.limiter.check(&key, state.limits.per_account).await;
    if d.allowed {
        Ok(())
    } else {
        Err(d)
    }
}

/// How many reports each user may have running at once: counted in this process, or in
/// Redis across every replica ([`ReportSlots::shared`]).
#[derive(Debug)]
pub struct ReportSlots {
    per_user: usize,
    running: Mutex<HashMap<uuid::Uuid, usize>>,
    shared: Option<SharedRedis>,
}

/// The default number of reports one user may run at once.
pub const REPORTS_PER_USER: usize = 2;

impl Default for ReportSlots {
    fn default() -> Self {
        Self::new(REPORTS_PER_USER)
    }
}

/// One running report; its slot is free again when this is dropped.
#[derive(Debug)]
pub struct ReportSlot {
    slots: std::sync::Arc<ReportSlots>,
    user: uuid::Uuid,
    /// Taken in Redis (else in this process).
    shared: bool,
}

impl Drop for ReportSlot {
    fn drop(&mut self) {
        if self.shared {
            if let Some(redis) = &self.slots.shared {
                redis.give_back(self.user);
            }
            return;
        }
        let mut running = self.slots.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.user);
            }
        }
    }
}

impl ReportSlots {
    /// Each user may run `per_user` reports at once (at least one).
    pub fn new(per_user: usize) -> Self {
        Self { per_user: per_user.max(1), running: Mutex::new(HashMap::new()), shared: None }
    }

    /// The same counted in Redis, across every process given the same server; while
    /// Redis does not answer, in this process.
    pub fn shared(per_user: usize, redis: SharedRedis) -> Self {
        Self { shared: Some(redis), ..Self::new(per_user) }
    }

    /// How many reports a user may run at once.
    pub fn per_user(&self) -> usize {
        self.per_user
    }

    /// A slot for one more report of `user`, or 429 `rate_limited` while they have as
    /// many running as they may.
    pub async fn take(self: &std::sync::Arc<Self>, user: crm_core::UserId) -> Result<ReportSlot, ApiError> {
        let busy = || {
            let detail =
                format!("you have {} reports running; one more can start when one of them ends", self.per_user);
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail).retry_after(1)
        };
        if let Some(redis) = &self.shared {
            match redis.take_slot(user.as_uuid(), self.per_user).await {
                Ok(true) => return Ok(ReportSlot { slots: self.clone(), user: user.as_uuid(), shared: true }),
                Ok(false) => return Err(busy()),
                Err(e) => tracing::warn!(error = %e, "the shared report slots do not answer; counting in this process"),
            }
        }
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let n = running.entry(user.as_uuid()).or_insert(0);
        if *n >= self.per_user {
            return Err(busy());
        }
        *n += 1;
        Ok(ReportSlot { slots: self.clone(), user: user.as_uuid(), shared: false })
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_runs_so_many_reports_at_once_and_others_are_not_held_up() {
        let slots = std::sync::Arc::new(ReportSlots::new(2));
        let (ann, bob) = (crm_core::UserId(uuid::Uuid::from_u128(1)), crm_core::UserId(uuid::Uuid::from_u128(2)));
        let first = slots.take(ann).await.ok();
        let second = slots.take(ann).await.ok();
        assert!(first.is_some() && second.is_some());
        assert!(slots.take(ann).await.is_err(), "a third waits");
        assert!(slots.take(bob).await.is_ok(), "another user is not held up");
        drop(first);
        assert!(slots.take(ann).await.is_ok(), "a slot is free again when a report ends");
    }

    /// A Redis server for the shared counters: `CRM_TEST_REDIS_URL`, or the local one.
    /// With `CI=true` one that does not answer fails the test.
    async fn redis(prefix: &str) -> Option<SharedRedis> {
        let url = std::env::var("CRM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
        match SharedRedis::connect(&url, prefix).await {
            Ok(r) => Some(r),
            Err(e) => {
                assert!(std::env::var("CI").map_or(true, |v| v != "true"), "no Redis at {url}: {e}");
                eprintln!("skipping: no Redis at {url}: {e}");
                None
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_share_windows_and_report_slots_through_redis() {
        let prefix = format!("crm-rs-test:{}:", uuid::Uuid::now_v7().simple());
        let (Some(a), Some(b)) = (redis(&prefix).await, redis(&prefix).await) else { return };
        // Two limiters, as two server processes hold them: one window between them.
        let (la, lb) = (RateLimiter::shared(a.clone()), RateLimiter::shared(b.clone()));
        let q = Quota { limit: 3, window: Duration::from_secs(60) };
        let mut got = Vec::new();
        for i in 0..5 {
            let limiter = if i % 2 == 0 { &la } else { &lb };
            got.push(limiter.check("ip:10.0.0.1", q).await.allowed);
        }
        assert_eq!(got, [true, true, true, false, false]);
        let d = lb.check("ip:10.0.0.2", q).await;
        assert!(d.allowed && d.remaining == 2 && d.reset_secs == 60, "{d:?}");
        // Two slot counters: one report at a time for Ann, whichever server runs it.
        let (sa, sb) = (std::sync::Arc::new(ReportSlots::shared(1, a)), std::sync::Arc::new(ReportSlots::shared(1, b)));
        let ann = crm_core::UserId(uuid::Uuid::now_v7());
        let running = sa.take(ann).await.expect("the first report");
        assert!(sb.take(ann).await.is_err(), "the other server makes her wait");
        drop(running);
        let start = std::time::Instant::now();
        loop {
            if let Ok(slot) = sb.take(ann).await {
                drop(slot);
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "the slot came back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn a_window_allows_its_quota_then_refuses_until_it_ends() {
        let l = RateLimiter::default();
        let q = Quota { limit: 3, window: Duration::from_millis(200) };
        let got: Vec<bool> = (0..4).map(|_| l.check_here("k", q).allowed).collect();
        assert_eq!(got, [true, true, true, false]);
        let d = l.check_here("k", q);
        assert_eq!((d.remaining, d.reset_secs), (0, 1));
        assert!(l.check_here("other", q).allowed, "keys are apart");
        std::thread::sleep(Duration::from_millis(210));
        assert!(l.check_here("k", q).allowed);
    }
}
