//! HTTP receivers: outgoing webhooks (signed per Standard Webhooks) and, through the
//! same sender, Slack and Microsoft Teams posts. Every call goes through the
//! [`Guard`](super::ssrf::Guard): the host is resolved once, checked, and the
//! connection made to the checked addresses; redirects are not followed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::ssrf::{parse_url, Guard};
use super::{signing, Channel, Outcome};
use crate::model::delivery::{Delivery, Webhook};
use crate::service::Crm;
use crate::store::StoreExt;

/// How HTTP deliveries are made. Where they may go is the engine's
/// [`CrmConfig::outgoing`](crate::CrmConfig::outgoing).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// How long one call may take.
    pub timeout: Duration,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(10), user_agent: format!("crm-rs/{}", env!("CARGO_PKG_VERSION")) }
    }
}

/// Sends HTTP requests to checked addresses, keeping one client per (host, addresses).
#[derive(Debug)]
pub struct HttpSender {
    config: HttpConfig,
    clients: Mutex<HashMap<(String, Vec<SocketAddr>), reqwest::Client>>,
}

/// What an HTTP receiver answered.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// Its `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// The start of its body, for the delivery log.
    pub body: String,
}

impl HttpSender {
    /// A sender.
    pub fn new(config: HttpConfig) -> Self {
        Self { config, clients: Mutex::new(HashMap::new()) }
    }

    /// POSTs `body` (JSON) with `headers` to `url`. `Err(Outcome)` when no answer came.
    pub async fn post(
        &self,
        guard: &Guard,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, Outcome> {
        let never = |e: crate::Error| Outcome::Never { error: e.to_string(), status: None };
        let url = parse_url(url, "url").map_err(never)?;
        let addrs = guard.resolve(&url, "url").await.map_err(|e| match &e {
            // A name that does not resolve now may later.
            crate::Error::Validation(errs) if errs.iter().any(|f| f.code == "unresolvable") => {
                Outcome::Retry { error: e.to_string(), status: None, after: None }
            }
            _ => never(e),
        })?;
        let client = self.client(&url, addrs).map_err(never)?;
        let mut req = client.post(url).header("content-type", "application/json").body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.map_err(|e| Outcome::Retry {
            error: crate::error::chain(&e),
            status: None,
            after: None,
        })?;
        let status = resp.status().as_u16();
        let retry_after =
            resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
        let mut body = resp.text().await.unwrap_or_default();
        if body.len() > 500 {
            let mut end = 500;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            body.truncate(end);
        }
        Ok(Answer { status, retry_after, body })
    }

    fn client(&self, url: &url::Url, addrs: Vec<SocketAddr>) -> crate::Result<reqwest::Client> {
        let host = url.host_str().unwrap_or_default().to_string();
        let key = (host.clone(), addrs.clone());
        let mut clients = self.clients.lock().map_err(|_| crate::Error::internal_msg("the HTTP client cache"))?;
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        if clients.len() > 1_000 {
            clients.clear();
        }
        let client = reqwest::Client::builder()
            .timeout(self.config.timeout)
            .connect_timeout(self.config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(self.config.user_agent.clone())
            .resolve_to_addrs(&host, &addrs)
            .build()
            .map_err(|e| crate::Error::internal("making an HTTP client", e))?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// The outcome of an answer: 2xx delivered; 410 Gone never (the receiver is gone);
/// anything else retried, after `Retry-After` when given.
pub fn outcome_of(a: &Answer) -> Outcome {
    match a.status {
        200..=299 => Outcome::Delivered { status: Some(a.status) },
        410 => Outcome::Never { error: format!("HTTP 410: {}", a.body), status: Some(410) },
        s => Outcome::Retry {
            error: format!("HTTP {s}: {}", a.body),
            status: Some(s),
            after: a.retry_after.map(Duration::from_secs),
        },
    }
}

/// Delivers `webhook` deliveries: the subscription's URL, signed with its secret(s).
#[derive(Debug)]
pub struct WebhookChannel {
    sender: HttpSender,
}

impl WebhookChannel {
    /// A channel sending through `config`.
    pub fn new(config: HttpConfig) -> Self {
        Self { sender: HttpSender::new(config) }
    }
}

#[async_trait]
impl Channel for WebhookChannel {
    fn consumer(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&self, crm: &Crm, d: &Delivery) -> Outcome {
        let retry = |e: crate::Error| Outcome::Retry { error: e.to_string(), status: None, after: None };
        let Some(target) = d.target_id else {
            return Outcome::Never { error: "no subscription".into(), status: None };
        };
        let hook = match crm.store().get_as::<Webhook>(target).await {
            Ok(Some(h)) => h,
            Ok(None) => return Outcome::Never { error: "the subscription was deleted".into(), status: None },
            Err(e) => return retry(e),
        };
        if !hook.active {
            return Outcome::Never { error: "the subscription is paused".into(), status: None };
        }
        let secrets = match crm.webhooks().secrets(&hook) {
            Ok(s) => s,
            Err(e) => return Outcome::Never { error: e.to_string(), status: None },
        };
        let body = match serde_json::to_vec(&d.payload) {
            Ok(b) => b,
            Err(e) => return Outcome::Never { error: e.to_string(), status: None },
        };
        let id = format!("msg_{}", d.event_id.simple());
        // The receiver checks it against its own clock (replays are refused after a few
        // minutes): the wall clock, whatever clock the engine schedules by.
        let ts = chrono::Utc::now().timestamp();
        let sig = match signing::signature_header(&secrets, &id, ts, &body) {
            Ok(s) => s,
            Err(e) => return Outcome::Never { error: e.to_string(), status: None },
        };
        let headers = [
            ("webhook-id", id.clone()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", sig),
            ("idempotency-key", id),
        ];
        match self.sender.post(&crm.config().outgoing, &hook.url, &headers, body).await {
            Ok(answer) => outcome_of(&answer),
            Err(o) => o,
        }
    }
}

/// Posts notifications to Slack (consumer `slack`: an incoming webhook, or a bot token
/// through `chat.postMessage`; a Block Kit message) or Microsoft Teams (consumer
/// `teams`: a Workflows webhook, an Adaptive Card in a `message` — the retired
/// connectors' MessageCard is not sent). The delivery's target is a
/// [`ChatChannel`](crate::model::delivery::ChatChannel).
#[derive(Debug)]
pub struct ChatSender {
    sender: HttpSender,
    provider: crate::model::delivery::ChatProvider,
    public_url: String,
    slack_api: String,
}

/// Where Slack's Web API is.
pub const SLACK_API: &str = "https://slack.com/api";

/// The most notifications one digest message lists (Slack allows 50 blocks).
const DIGEST_MAX: usize = 40;

/// Slack Web API errors that retrying does not mend.
const SLACK_FATAL: [&str; 14] = [
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "msg_too_long",
    "restricted_action",
    "ekm_access_denied",
];

impl ChatSender {
    /// A sender for one provider; links to records start with `public_url`.
    pub fn new(provider: crate::model::delivery::ChatProvider, config: HttpConfig, public_url: &str) -> Self {
        Self {
            sender: HttpSender::new(config),
            provider,
            public_url: public_url.trim_end_matches('/').to_string(),
            slack_api: SLACK_API.into(),
        }
    }

    /// Where Slack's Web API is (tests: a receiver on 127.0.0.1).
    pub fn slack_api(mut self, base: &str) -> Self {
        self.slack_api = base.trim_end_matches('/').to_string();
        self
    }

    fn link(&self, v: &serde_json::Value) -> Option<String> {
        v.get("link").and_then(serde_json::Value::as_str).map(|l| format!("{}{l}", self.public_url))
    }

    /// The message of a delivery: one notification, or a digest of several.
    fn message(&self, payload: &serde_json::Value) -> serde_json::Value {
        use crate::model::delivery::ChatProvider;
        let text = |v: &serde_json::Value, k: &str| {
            v.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_string()
        };
        let title = text(payload, "title");
        if let Some(items) = payload.get("items").and_then(serde_json::Value::as_array) {
            let items: Vec<(String, String, Option<String>)> =
                items.iter().map(|i| (text(i, "title"), text(i, "body"), self.link(i))).collect();
            return match self.provider {
                ChatProvider::Slack => slack_digest(&title, &items),
                ChatProvider::Teams => teams_digest(&title, &items),
            };
        }
        let (body, link) = (text(payload, "body"), self.link(payload));
        match self.provider {
            ChatProvider::Slack => slack_message(&title, &body, link.as_deref()),
            ChatProvider::Teams => teams_message(&title, &body, link.as_deref()),
        }
    }

    /// Posts through a Slack bot: `chat.postMessage` answers 200 with `ok: false` and an
    /// error code when it refuses.
    async fn post_as_bot(&self, crm: &Crm, token: &str, channel: &str, mut message: serde_json::Value) -> Outcome {
        message["channel"] = serde_json::Value::String(channel.to_string());
        message["unfurl_links"] = serde_json::Value::Bool(false);
        let body = match serde_json::to_vec(&message) {
            Ok(b) => b,
            Err(e) => return Outcome::Never { error: e.to_string(), status: None },
        };
        let url = format!("{}/chat.postMessage", self.slack_api);
        let headers = [("authorization", format!("Bearer {token}"))];
        let answer = match self.sender.post(&crm.config().outgoing, &url, &headers, body).await {
            Ok(a) => a,
            Err(o) => return o,
        };
        if answer.status != 200 {
            return outcome_of(&answer);
        }
        let reply: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
        if reply.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
            return Outcome::Delivered { status: Some(200) };
        }
        let code = reply.get("error").and_then(serde_json::Value::as_str).unwrap_or("unknown_error").to_string();
        let error = format!("Slack refused it: {code}");
        if SLACK_FATAL.contains(&code.as_str()) {
            Outcome::Never { error, status: Some(200) }
        } else {
            Outcome::Retry { error, status: Some(200), after: answer.retry_after.map(Duration::from_secs) }
        }
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The Block Kit message of a notification: a section with the title and text, a
/// button to the record; `text` is the fallback notifications show.
pub fn slack_message(title: &str, body: &str, link: Option<&str>) -> serde_json::Value {
    let mut blocks = vec![serde_json::json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{}*\n{}", slack_escape(title), slack_escape(body))},
    })];
    if let Some(url) = link {
        blocks.push(serde_json::json!({
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": url}],
        }));
    }
    serde_json::json!({"text": title, "blocks": blocks})
}

/// The Block Kit message of a digest: a header, then a section per notification whose
/// title links to its record (the first [`DIGEST_MAX`], and how many more).
pub fn slack_digest(title: &str, items: &[(String, String, Option<String>)]) -> serde_json::Value {
    let mut blocks = vec![serde_json::json!({
        "type": "header",
        "text": {"type": "plain_text", "text": title.chars().take(150).collect::<String>()},
    })];
    for (t, b, link) in items.iter().take(DIGEST_MAX) {
        let head = match link {
            Some(url) => format!("*<{url}|{}>*", slack_escape(t)),
            None => format!("*{}*", slack_escape(t)),
        };
        let text = format!("{head}\n{}", slack_escape(b));
        blocks.push(serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    if items.len() > DIGEST_MAX {
        let more = format!("… +{}", items.len() - DIGEST_MAX);
        blocks.push(serde_json::json!({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]}));
    }
    serde_json::json!({"text": title, "blocks": blocks})
}

/// The Teams message of a digest: an Adaptive Card (1.4) with the title, then a
/// container per notification that opens its record when selected.
pub fn teams_digest(title: &str, items: &[(String, String, Option<String>)]) -> serde_json::Value {
    let mut body = vec![
        serde_json::json!({"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true}),
    ];
    for (t, b, link) in items.iter().take(DIGEST_MAX) {
        let mut c = serde_json::json!({
            "type": "Container",
            "separator": true,
            "items": [
                {"type": "TextBlock", "text": t, "weight": "Bolder", "wrap": true},
                {"type": "TextBlock", "text": b, "wrap": true, "spacing": "Small"},
            ],
        });
        if let Some(url) = link {
            c["selectAction"] = serde_json::json!({"type": "Action.OpenUrl", "title": "Open", "url": url});
        }
        body.push(c);
    }
    if items.len() > DIGEST_MAX {
        let more = format!("… +{}", items.len() - DIGEST_MAX);
        body.push(serde_json::json!({"type": "TextBlock", "text": more, "isSubtle": true}));
    }
    teams_envelope(serde_json::json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }))
}

/// A card in the `message` a Teams workflow takes.
fn teams_envelope(card: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card}],
    })
}

/// The Teams message of a notification: an Adaptive Card (1.4) with the title, the
/// text and an Open action to the record.
pub fn teams_message(title: &str, body: &str, link: Option<&str>) -> serde_json::Value {
    let mut card = serde_json::json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true},
            {"type": "TextBlock", "text": body, "wrap": true},
        ],
    });
    if let Some(url) = link {
        card["actions"] = serde_json::json!([{"type": "Action.OpenUrl", "title": "Open", "url": url}]);
    }
    teams_envelope(card)
}

#[async_trait]
impl Channel for ChatSender {
    fn consumer(&self) -> &'static str {
        self.provider.as_str()
    }

    async fn deliver(&self, crm: &Crm, d: &Delivery) -> Outcome {
        let never = |error: String| Outcome::Never { error, status: None };
        let Some(target) = d.target_id else { return never("no channel".into()) };
        let channel = match crm.store().get_as::<crate::model::delivery::ChatChannel>(target).await {
            Ok(Some(c)) => c,
            Ok(None) => return never("the chat channel was removed".into()),
            Err(e) => return Outcome::Retry { error: e.to_string(), status: None, after: None },
        };
        let message = self.message(&d.payload);
        if let Some(sealed) = &channel.token {
            let token = match crm.auth_settings().and_then(|a| a.sealer.open(sealed)) {
                Ok(t) => t,
                Err(e) => return never(e.to_string()),
            };
            let target = channel.channel.clone().unwrap_or_default();
            return self.post_as_bot(crm, &token, &target, message).await;
        }
        let url = match crm.auth_settings().and_then(|a| a.sealer.open(&channel.url)) {
            Ok(u) => u,
            Err(e) => return never(e.to_string()),
        };
        let body = match serde_json::to_vec(&message) {
            Ok(b) => b,
            Err(e) => return never(e.to_string()),
        };
        match self.sender.post(&crm.config().outgoing, &url, &[], body).await {
            // A webhook that is gone or refused (Slack: 403, 404 `no_service`; Teams: 404)
            // will not come back by itself.
            Ok(a) if matches!(a.status, 400 | 403 | 404) => {
                Outcome::Never { error: format!("HTTP {}: {}", a.status, a.body), status: Some(a.status) }
            }
            Ok(a) => outcome_of(&a),
            Err(o) => o,
        }
    }
}
