//! Email: the account emails are queued in the outbox (topic [`MAIL_TOPIC`]) in the same
//! atomic write as the change that causes them; a [`MailWorker`] renders and sends them
//! through a [`Mailer`], retrying with backoff, so a send failure loses nothing. Mailers:
//! [`SmtpMailer`] (lettre; TLS, STARTTLS, or plain on loopback) and [`DirMailer`] (`.eml`
//! files, the zero-config default).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;

#[cfg(feature = "smtp")]
mod smtp;
use serde::{Deserialize, Serialize};
#[cfg(feature = "smtp")]
pub use smtp::{SmtpConfig, SmtpMailer, SmtpSecurity};

use crate::error::{Error, Result};
use crate::outbox::OutboxEvent;
use crate::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
use crate::schema::{EntityKind, Value};
use crate::service::Crm;
use crate::store::{Changeset, StoreExt, Write};

mod templates;

pub use templates::{language, render, MailTemplate, MailVars, RenderedMail, LANGUAGES};

/// The outbox topic of queued emails.
pub const MAIL_TOPIC: &str = "mail.send";

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

/// One run of the worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Sent.
    pub sent: usize,
    /// Failed, to be retried.
    pub retried: usize,
    /// Given up (too many attempts, or an email that can never be made).
    pub abandoned: usize,
}

/// How many attempts before an email is given up.
pub const MAX_ATTEMPTS: i64 = 12;
/// How long a claimed email is reserved for the worker that claimed it.
const LEASE: i64 = 300;

/// The wait before the next attempt: 30 s, doubling, at most 1 hour.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::seconds(30i64.saturating_mul(1 << doublings)).min(Duration::hours(1))
}

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

/// Delivers the queued emails of the outbox.
pub struct MailWorker {
    crm: Crm,
    mailer: Arc<dyn Mailer>,
    config: MailConfig,
}

impl std::fmt::Debug for MailWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailWorker").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Why an email failed: worth retrying or not.
enum Failure {
    Retry(String),
    Never(String),
}

impl MailWorker {
    /// A worker delivering `crm`'s queued emails through `mailer`.
    pub fn new(crm: Crm, mailer: Arc<dyn Mailer>, config: MailConfig) -> Self {
        Self { crm, mailer, config }
    }

    /// The message of a request: rendered, the sealed token opened into the link.
    pub fn message(&self, req: &MailRequest) -> Result<Message> {
        let lang = language(Some(&req.lang));
        let link = match (req.template.link_path(), &req.sealed_token) {
            (Some(path), Some(sealed)) => {
                let token = self.crm.auth_settings()?.sealer.open(sealed)?;
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
        let rendered = render(req.template, lang, &vars)?;
        let to: Mailbox = req.to.parse().map_err(|e| Error::internal("an email recipient", e))?;
        Message::builder()
            .from(self.config.from.clone())
            .to(to)
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))
            .map_err(|e| Error::internal("building an email", e))
    }

    /// Sends every email that is due, once each. Several workers may run at once: each
    /// email is claimed (a versioned write) before it is sent.
    pub async fn run_once(&self) -> Result<DeliveryReport> {
        let store = self.crm.store();
        let now = self.crm.now();
        let col = |n: &str| EntityKind::OutboxEvent.require_column(n);
        let filter = Filter::And(vec![
            Filter::Cmp(Cmp { column: col("topic")?, pred: Predicate::Eq(Value::Text(MAIL_TOPIC.into())) }),
            Filter::Cmp(Cmp { column: col("delivered_at")?, pred: Predicate::IsNull }),
            Filter::Cmp(Cmp { column: col("available_at")?, pred: Predicate::Lte(Value::Timestamp(now)) }),
        ]);
        let q = StoreQuery {
            filter: Some(filter),
            sort: vec![
                SortKey { column: col("available_at")?, direction: Direction::Asc },
                SortKey { column: col("id")?, direction: Direction::Asc },
            ],
            limit: 50,
            include_deleted: true,
        };
        let mut report = DeliveryReport::default();
        for ev in store.list_as::<OutboxEvent>(&q).await? {
            // Claim it: another worker that claimed it first makes this a version conflict.
            let mut claimed = ev.clone();
            claimed.attempts += 1;
            claimed.available_at = now + Duration::seconds(LEASE);
            claimed.version += 1;
            match self.save(claimed.clone(), ev.version).await {
                Ok(()) => {}
                Err(Error::VersionConflict { .. } | Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
            let outcome = match serde_json::from_value::<MailRequest>(claimed.payload.clone()) {
                Err(e) => Err(Failure::Never(format!("not a mail request: {e}"))),
                Ok(req) => match self.message(&req) {
                    Err(e) => Err(Failure::Never(e.to_string())),
                    Ok(msg) => self.mailer.send(&msg).await.map_err(|e| Failure::Retry(error_chain(&e))),
                },
            };
            let mut done = claimed.clone();
            done.version += 1;
            let now = self.crm.now();
            match outcome {
                Ok(()) => {
                    done.delivered_at = Some(now);
                    done.last_error = None;
                    // The link is in the recipient's hands: its token leaves the database.
                    forget_token(&mut done.payload);
                    report.sent += 1;
                }
                Err(Failure::Retry(why)) if claimed.attempts < MAX_ATTEMPTS => {
                    done.available_at = now + backoff(claimed.attempts);
                    done.last_error = Some(why);
                    report.retried += 1;
                }
                Err(Failure::Retry(why) | Failure::Never(why)) => {
                    // Kept, undelivered, out of the queue: an operator can look at it, but
                    // not at the token of a link that will never be sent.
                    forget_token(&mut done.payload);
                    done.available_at = now + Duration::days(36_500);
                    done.last_error = Some(format!("given up after {} attempts: {why}", claimed.attempts));
                    report.abandoned += 1;
                }
            }
            self.save(done, claimed.version).await?;
        }
        Ok(report)
    }

    async fn save(&self, ev: OutboxEvent, expected_version: i64) -> Result<()> {
        let cs = Changeset {
            writes: vec![Write::Update { kind: EntityKind::OutboxEvent, row: ev.into_row(), expected_version }],
            audit: vec![],
        };
        self.crm.store().apply(cs).await
    }

    /// Runs until `shutdown` completes, looking for due emails every `every`.
    pub async fn run(self, every: std::time::Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %error_chain(&e), "mail delivery run failed");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

fn error_chain(e: &Error) -> String {
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
