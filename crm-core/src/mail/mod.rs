//! Email: the account emails are queued in the outbox (topic [`MAIL_TOPIC`]) in the same
//! atomic write as the change that causes them; a [`MailWorker`] renders and sends them
//! through a [`Mailer`], retrying with backoff, so a send failure loses nothing. Mailers:
//! [`SmtpMailer`] (lettre; TLS, STARTTLS, or plain on loopback) and [`DirMailer`] (`.eml`
//! files, the zero-config default).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;

#[cfg(feature = "smtp")]
mod smtp;
use serde::{Deserialize, Serialize};
#[cfg(feature = "smtp")]
pub use smtp::{SmtpConfig, SmtpMailer, SmtpSecurity};

use crate::delivery::{Channel, DeliveryEngine, Outcome};
use crate::error::{Error, Result};
use crate::model::delivery::Delivery;
use crate::model::user::{User, UserStatus};
use crate::service::Crm;
use crate::store::StoreExt;

mod templates;

pub use templates::{document, language, render, DocumentMailVars, MailTemplate, MailVars, RenderedMail, LANGUAGES};

/// The outbox topic of queued emails.
pub use crate::delivery::MAIL_TOPIC;

/// An email waiting in the outbox. The token a link carries is sealed
/// ([`crate::auth::Sealer`]): the database never holds it readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailRequest {
    /// Which email.
    pub template: MailTemplate,
    /// The recipient's address.
    pub to: String,
    /// Its language (`en`, `fr`, `ar`).
    pub lang: String,
    /// The recipient's user name.
    pub username: String,
    /// The sealed token of the link, for emails with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_token: Option<String>,
    /// How long the link works, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_minutes: Option<i64>,
    /// The end of a suspension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// An email address the message is about (the new one of an email change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Sends one email.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends it, or says why not (the worker retries later).
    async fn send(&self, message: &Message) -> Result<()>;
}

/// Writes each email as an `.eml` file into a directory: the zero-config mailer.
#[derive(Debug, Clone)]
pub struct DirMailer {
    dir: PathBuf,
}

impl DirMailer {
    /// A mailer writing into `dir` (made when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait]
impl Mailer for DirMailer {
    async fn send(&self, message: &Message) -> Result<()> {
        let mut dir = tokio::fs::DirBuilder::new();
        dir.recursive(true);
        // The messages carry live links (password resets): only the server's user reads them.
        #[cfg(unix)]
        dir.mode(0o700);
        dir.create(&self.dir).await.map_err(|e| Error::internal("making the mail directory", e))?;
        let name = format!("{}.eml", uuid::Uuid::now_v7());
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let (path, bytes) = (tmp.clone(), message.formatted());
        // Written aside, then renamed: a reader never sees half a message.
        tokio::task::spawn_blocking(move || crate::files::write_private(&path, &bytes))
            .await
            .map_err(|e| Error::internal("writing an email", e))?
            .map_err(|e| Error::internal("writing an email", e))?;
        tokio::fs::rename(&tmp, self.dir.join(name)).await.map_err(|e| Error::internal("writing an email", e))
    }
}

/// Drops the sealed token from a mail request's payload.
fn forget_token(payload: &mut serde_json::Value) {
    if let Some(o) = payload.as_object_mut() {
        o.remove("sealedToken");
    }
}

/// What the worker needs to turn requests into messages.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The public base URL links start with (`https://crm.example.com`); never taken
    /// from a request.
    pub public_url: String,
    /// The sender.
    pub from: Mailbox,
    /// The product name the emails show.
    pub app_name: String,
}

pub use crate::delivery::DeliveryReport;

fn minutes_in_words(m: i64, lang: &str) -> String {
    let (h, d) = (m / 60, m / 1440);
    match lang {
        "fr" if d >= 1 && m % 1440 == 0 => format!("{d} jour{}", if d > 1 { "s" } else { "" }),
        "fr" if h >= 1 && m % 60 == 0 => format!("{h} heure{}", if h > 1 { "s" } else { "" }),
        "fr" => format!("{m} minutes"),
        "ar" if d >= 1 && m % 1440 == 0 => format!("{d} يوم"),
        "ar" if h >= 1 && m % 60 == 0 => format!("{h} ساعة"),
        "ar" => format!("{m} دقيقة"),
        _ if d >= 1 && m % 1440 == 0 => format!("{d} day{}", if d > 1 { "s" } else { "" }),
        _ if h >= 1 && m % 60 == 0 => format!("{h} hour{}", if h > 1 { "s" } else { "" }),
        _ => format!("{m} minutes"),
    }
}

/// Sends the queued account emails (consumer `mail` of the delivery engine).
pub struct MailChannel {
    mailer: Arc<dyn Mailer>,
    config: MailConfig,
}

impl std::fmt::Debug for MailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailChannel").field("config", &self.config).finish_non_exhaustive()
    }
}

impl MailChannel {
    /// A channel sending through `mailer`.
    pub fn new(mailer: Arc<dyn Mailer>, config: MailConfig) -> Self {
        Self { mailer, config }
    }

    /// The message of a request: rendered, the sealed token opened into the link.
    pub fn message(&self, crm: &Crm, req: &MailRequest) -> Result<Message> {
        let lang = language(Some(&req.lang));
        let link = match (req.template.link_path(), &req.sealed_token) {
            (Some(path), Some(sealed)) => {
                let token = crm.auth_settings()?.sealer.open(sealed)?;
                Some(format!("{}{path}?token={token}", self.config.public_url.trim_end_matches('/')))
            }
            (Some(_), None) => return Err(Error::internal_msg("an email with a link has no token")),
            _ => None,
        };
        let vars = MailVars {
            username: req.username.clone(),
            app: self.config.app_name.clone(),
            link,
            expires: minutes_in_words(req.expires_minutes.unwrap_or(60), lang),
            until: req.until.map(|u| crate::schema::format_ts(&u)),
            reason: req.reason.clone(),
            address: req.address.clone(),
        };
        compose(&self.config, &req.to, render(req.template, lang, &vars)?)
    }
}

impl MailChannel {
    /// Sends an invoice, credit note or quote as it is now, laid out into the file the
    /// email carries.
    async fn deliver_document(&self, crm: &Crm, d: &Delivery) -> Outcome {
        let req = match serde_json::from_value::<crate::billing::document::DocumentMail>(d.payload.clone()) {
            Ok(r) => r,
            Err(e) => return Outcome::Never { error: format!("not a document email: {e}"), status: None },
        };
        let email = match crm.billing().document_mail(&req, &self.config.public_url).await {
            Ok(m) => m,
            Err(e @ Error::NotFound { .. }) => return Outcome::Never { error: e.to_string(), status: None },
            Err(e) => return Outcome::Retry { error: crate::error::chain(&e), status: None, after: None },
        };
        let msg = match compose_with_file(&self.config, &req.to, &req.cc, email) {
            Ok(m) => m,
            Err(e) => return Outcome::Never { error: e.to_string(), status: None },
        };
        send(self.mailer.as_ref(), &msg).await
    }
}

#[async_trait]
impl Channel for MailChannel {
    fn consumer(&self) -> &'static str {
        "mail"
    }

    async fn deliver(&self, crm: &Crm, d: &Delivery) -> Outcome {
        if d.payload.get("template").and_then(serde_json::Value::as_str)
            == Some(crate::billing::document::MAIL_TEMPLATE)
        {
            return self.deliver_document(crm, d).await;
        }
        let req = match serde_json::from_value::<MailRequest>(d.payload.clone()) {
            Ok(r) => r,
            Err(e) => return Outcome::Never { error: format!("not a mail request: {e}"), status: None },
        };
        let msg = match self.message(crm, &req) {
            Ok(m) => m,
            Err(e) => return Outcome::Never { error: e.to_string(), status: None },
        };
        send(self.mailer.as_ref(), &msg).await
    }

    /// The link is in the recipient's hands (or will never be): its token leaves the
    /// database.
    fn redact(&self, payload: &mut serde_json::Value) {
        forget_token(payload);
    }
}

/// Sends notifications by email (consumer `email`): the user's address, their
/// language, a link to the record.
pub struct NotificationMailChannel {
    mailer: Arc<dyn Mailer>,
    config: MailConfig,
}

impl std::fmt::Debug for NotificationMailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationMailChannel").field("config", &self.config).finish_non_exhaustive()
    }
}

impl NotificationMailChannel {
    /// A channel sending through `mailer`.
    pub fn new(mailer: Arc<dyn Mailer>, config: MailConfig) -> Self {
        Self { mailer, config }
    }

    /// The message telling `user` of a notification (`payload`: title, body, link, lang),
    /// or of a digest (`payload`: title, lang, items of title, body and link).
    pub fn message(&self, user: &User, payload: &serde_json::Value) -> Result<Message> {
        let text = |k: &str| payload.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        let lang = language(Some(&text("lang")));
        let link = payload.get("link").and_then(serde_json::Value::as_str).map(|l| self.url(l));
        let rendered = match payload.get("items").and_then(serde_json::Value::as_array) {
            Some(items) => {
                let items: Vec<templates::DigestItem> = items
                    .iter()
                    .map(|i| {
                        let text =
                            |k: &str| i.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
                        let link = i.get("link").and_then(serde_json::Value::as_str).map(|l| self.url(l));
                        templates::DigestItem { title: text("title"), body: text("body"), link }
                    })
                    .collect();
                templates::digest(lang, &self.config.app_name, &text("title"), &items)?
            }
            None => {
                templates::notification(lang, &self.config.app_name, &text("title"), &text("body"), link.as_deref())?
            }
        };
        compose(&self.config, user.email.as_str(), rendered)
    }

    /// The whole URL of a path of the web app.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.public_url.trim_end_matches('/'))
    }
}

#[async_trait]
impl Channel for NotificationMailChannel {
    fn consumer(&self) -> &'static str {
        "email"
    }

    async fn deliver(&self, crm: &Crm, d: &Delivery) -> Outcome {
        let Some(target) = d.target_id else { return Outcome::Never { error: "no recipient".into(), status: None } };
        let user = match crm.store().get_as::<User>(target).await {
            Ok(Some(u)) if u.status == UserStatus::Active => u,
            Ok(_) => return Outcome::Never { error: "the recipient is not an active user".into(), status: None },
            Err(e) => return Outcome::Retry { error: e.to_string(), status: None, after: None },
        };
        let msg = match self.message(&user, &d.payload) {
            Ok(m) => m,
            Err(e) => return Outcome::Never { error: e.to_string(), status: None },
        };
        send(self.mailer.as_ref(), &msg).await
    }
}

/// Delivers the queued account emails: a [`DeliveryEngine`] with the [`MailChannel`]
/// alone (and, through it, the dispatch of every outbox event). `crm-server` runs one
/// engine with every channel instead.
pub struct MailWorker {
    engine: DeliveryEngine,
    channel: Arc<MailChannel>,
}

impl std::fmt::Debug for MailWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailWorker").field("engine", &self.engine).finish_non_exhaustive()
    }
}

impl MailWorker {
    /// A worker delivering `crm`'s queued emails through `mailer`.
    pub fn new(crm: Crm, mailer: Arc<dyn Mailer>, config: MailConfig) -> Self {
        let channel = Arc::new(MailChannel::new(mailer, config));
        let engine = DeliveryEngine::new(crm).channel(channel.clone());
        Self { engine, channel }
    }

    /// The message of a request: rendered, the sealed token opened into the link.
    pub fn message(&self, req: &MailRequest) -> Result<Message> {
        self.channel.message(self.engine.crm(), req)
    }

    /// Dispatches the outbox and sends every email that is due, once each. Several
    /// workers may run at once: each email is claimed before it is sent.
    pub async fn run_once(&self) -> Result<DeliveryReport> {
        self.engine.run_once().await
    }

    /// Runs until `shutdown` completes, looking for due emails every `every`.
    pub async fn run(self, every: std::time::Duration, shutdown: impl std::future::Future<Output = ()>) {
        self.engine.run(every, shutdown).await
    }
}

/// A rendered email from the configured sender to `to`, text and HTML.
fn compose(config: &MailConfig, to: &str, rendered: RenderedMail) -> Result<Message> {
    let to: Mailbox = to.parse().map_err(|e| Error::internal("an email recipient", e))?;
    Message::builder()
        .from(config.from.clone())
        .to(to)
        .subject(rendered.subject)
        .multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))
        .map_err(|e| Error::internal("building an email", e))
}

/// One attempt through a mailer: a failure is worth retrying.
async fn send(mailer: &dyn Mailer, msg: &Message) -> Outcome {
    match mailer.send(msg).await {
        Ok(()) => Outcome::Delivered { status: None },
        Err(e) => Outcome::Retry { error: crate::error::chain(&e), status: None, after: None },
    }
}

/// A document's email to `to` and the copies, from the seller's name at the server's
/// address, replying to the seller when it has an address.
fn compose_with_file(
    config: &MailConfig,
    to: &str,
    cc: &[String],
    email: crate::billing::document::DocumentEmail,
) -> Result<Message> {
    use lettre::message::header::ContentType;
    use lettre::message::Attachment;
    let crate::billing::document::DocumentEmail { rendered, file, reply_to, sender_name } = email;
    let mailbox = |a: &str| a.parse::<Mailbox>().map_err(|e| Error::internal("an email recipient", e));
    let from = if sender_name.trim().is_empty() {
        config.from.clone()
    } else {
        Mailbox::new(Some(sender_name), config.from.email.clone())
    };
    let mut b = Message::builder().from(from).to(mailbox(to)?).subject(rendered.subject);
    for c in cc {
        b = b.cc(mailbox(c)?);
    }
    if let Some(r) = reply_to.and_then(|r| r.parse::<Mailbox>().ok()) {
        b = b.reply_to(r);
    }
    let kind = ContentType::parse(file.content_type).map_err(|e| Error::internal("an attachment's type", e))?;
    b.multipart(
        MultiPart::mixed()
            .multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))
            .singlepart(Attachment::new(file.name).body(file.bytes, kind)),
    )
    .map_err(|e| Error::internal("building an email", e))
}
