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

/// Posts notifications to Slack (consumer `slack`: an incoming webhook, a Block Kit
/// message) or Microsoft Teams (consumer `teams`: a Workflows webhook, an Adaptive Card
/// in a `message` — the retired connectors' MessageCard is not sent). The delivery's
/// target is a [`ChatChannel`](crate::model::delivery::ChatChannel).
#[derive(Debug)]
pub struct ChatSender {
    sender: HttpSender,
    provider: crate::model::delivery::ChatProvider,
    public_url: String,
}

impl ChatSender {
    /// A sender for one provider; links to records start with `public_url`.
    pub fn new(provider: crate::model::delivery::ChatProvider, config: HttpConfig, public_url: &str) -> Self {
        Self { sender: HttpSender::new(config), provider, public_url: public_url.trim_end_matches('/').to_string() }
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
    serde_json::json!({
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card}],
    })
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
        let url = match crm.auth_settings().and_then(|a| a.sealer.open(&channel.url)) {
            Ok(u) => u,
            Err(e) => return never(e.to_string()),
        };
        let text = |k: &str| d.payload.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        let link = d.payload.get("link").and_then(serde_json::Value::as_str).map(|l| format!("{}{l}", self.public_url));
        let message = match self.provider {
            crate::model::delivery::ChatProvider::Slack => {
                slack_message(&text("title"), &text("body"), link.as_deref())
            }
            crate::model::delivery::ChatProvider::Teams => {
                teams_message(&text("title"), &text("body"), link.as_deref())
            }
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
