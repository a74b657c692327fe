//! [`SmtpMailer`]: sending through an SMTP server with lettre (TLS, STARTTLS, or plain on
//! loopback or a network the operator trusts). Feature `smtp` (on by default).

use async_trait::async_trait;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Mailer;
use crate::error::{Error, Result};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the start (port 465).
    Tls,
    /// STARTTLS, required (port 587).
    StartTls,
    /// No encryption: refused unless the server is on this machine (loopback).
    Plain,
    /// No encryption to any host: an explicit choice for a private network the operator
    /// trusts (a compose or cluster network with a mail relay beside the server).
    PlainTrustedNetwork,
}

/// Where and how to send through SMTP.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Host name.
    pub host: String,
    /// TCP port (587 for STARTTLS, 465 for implicit TLS, 25 or 1025 for a local relay).
    pub port: u16,
    /// Encryption.
    pub security: SmtpSecurity,
    /// User name and password, when the server wants them.
    pub credentials: Option<(String, String)>,
    /// How long one send may take.
    pub timeout: std::time::Duration,
}

/// Sends through an SMTP server with lettre. Plain and STARTTLS connections are its own:
/// TCP with `TCP_NODELAY` (lettre 0.11 leaves Nagle on, and its final `.` then waits for
/// the server's delayed ACK: 40 ms a message), kept in a small pool and reused. Implicit
/// TLS (port 465) goes through lettre's own pooled transport.
#[derive(Clone)]
pub struct SmtpMailer {
    inner: std::sync::Arc<Inner>,
}

enum Inner {
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
    Pool(Pool),
}

struct Pool {
    config: SmtpConfig,
    hello: ClientId,
    idle: tokio::sync::Mutex<Vec<(AsyncSmtpConnection, std::time::Instant)>>,
}

/// Connections kept open between sends.
const MAX_IDLE: usize = 16;
/// A connection idle longer than this is tested (`NOOP`) before it is used again.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(20);

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpMailer(..)")
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl SmtpMailer {
    /// A mailer for this server.
    pub fn new(config: &SmtpConfig) -> Result<Self> {
        let bad = |m: &str| Error::invalid("smtp", "invalid_value", m);
        let inner = match config.security {
            SmtpSecurity::Tls => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                    .map_err(|e| bad(&format!("SMTP over TLS to {}: {e}", config.host)))?;
                let mut builder = builder.port(config.port).timeout(Some(config.timeout));
                if let Some((user, password)) = &config.credentials {
                    builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                }
                Inner::Lettre(builder.build())
            }
            SmtpSecurity::StartTls => {
                TlsParameters::new(config.host.clone())
                    .map_err(|e| bad(&format!("SMTP with STARTTLS to {}: {e}", config.host)))?;
                Inner::Pool(Pool::new(config))
            }
            SmtpSecurity::Plain if is_loopback(&config.host) => Inner::Pool(Pool::new(config)),
            SmtpSecurity::Plain => {
                return Err(bad("unencrypted SMTP is allowed only to a server on this machine (loopback); \
                     smtp+insecure:// says the network is trusted"));
            }
            SmtpSecurity::PlainTrustedNetwork => Inner::Pool(Pool::new(config)),
        };
        Ok(Self { inner: std::sync::Arc::new(inner) })
    }
}

fn smtp_err(what: &str, e: lettre::transport::smtp::Error) -> Error {
    Error::internal(what.to_string(), e)
}

impl Pool {
    fn new(config: &SmtpConfig) -> Self {
        Self { config: config.clone(), hello: ClientId::default(), idle: tokio::sync::Mutex::new(Vec::new()) }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection> {
        let c = &self.config;
        let tcp = tokio::time::timeout(c.timeout, tokio::net::TcpStream::connect((c.host.as_str(), c.port)))
            .await
            .map_err(|_| Error::internal_msg(format!("connecting to {}:{} timed out", c.host, c.port)))?
            .map_err(|e| Error::internal(format!("connecting to {}:{}", c.host, c.port), e))?;
        tcp.set_nodelay(true).map_err(|e| Error::internal("setting TCP_NODELAY", e))?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
            .await
            .map_err(|e| smtp_err("greeting the SMTP server", e))?;
        if c.security == SmtpSecurity::StartTls {
            let tls = TlsParameters::new(c.host.clone()).map_err(|e| smtp_err("TLS settings", e))?;
            conn.starttls(tls, &self.hello).await.map_err(|e| smtp_err("STARTTLS", e))?;
        }
        if let Some((user, password)) = &c.credentials {
            let creds = Credentials::new(user.clone(), password.clone());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
                .await
                .map_err(|e| smtp_err("authenticating to the SMTP server", e))?;
        }
        Ok(conn)
    }

    /// A connection: an idle one that still answers, or a new one.
    async fn take(&self) -> Result<AsyncSmtpConnection> {
        loop {
            let next = self.idle.lock().await.pop();
            match next {
                Some((mut conn, since)) => {
                    if conn.has_broken() {
                        continue;
                    }
                    if since.elapsed() > STALE_AFTER && !conn.test_connected().await {
                        continue;
                    }
                    return Ok(conn);
                }
                None => return self.connect().await,
            }
        }
    }

    async fn send(&self, message: &Message) -> Result<()> {
        let mut conn = self.take().await?;
        let sent = tokio::time::timeout(self.config.timeout, conn.send(message.envelope(), &message.formatted())).await;
        match sent {
            Ok(Ok(_)) => {
                let mut idle = self.idle.lock().await;
                if idle.len() < MAX_IDLE && !conn.has_broken() {
                    idle.push((conn, std::time::Instant::now()));
                }
                Ok(())
            }
            Ok(Err(e)) => {
                // A refused message leaves the session usable; anything else ends it.
                if e.is_permanent() && !conn.has_broken() {
                    let mut idle = self.idle.lock().await;
                    if idle.len() < MAX_IDLE {
                        idle.push((conn, std::time::Instant::now()));
                    }
                }
                Err(smtp_err("sending an email", e))
            }
            Err(_) => {
                conn.abort().await;
                Err(Error::internal_msg(format!("sending an email timed out after {:?}", self.config.timeout)))
            }
        }
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message: &Message) -> Result<()> {
        match self.inner.as_ref() {
            Inner::Lettre(t) => {
                t.send(message.clone()).await.map(|_| ()).map_err(|e| Error::internal("sending an email", e))
            }
            Inner::Pool(p) => p.send(message).await,
        }
    }
}
