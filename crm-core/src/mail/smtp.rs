//! [`SmtpMailer`]: sending through an SMTP server with lettre (TLS, STARTTLS, or plain on
//! loopback or a network the operator trusts). Feature `smtp` (on by default).

use async_trait::async_trait;
use lettre::transport::smtp::authentication::Credentials;
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

/// Sends through an SMTP server with lettre.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

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
        let builder = match config.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|e| bad(&format!("SMTP over TLS to {}: {e}", config.host)))?,
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                .map_err(|e| bad(&format!("SMTP with STARTTLS to {}: {e}", config.host)))?,
            SmtpSecurity::Plain if is_loopback(&config.host) => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            }
            SmtpSecurity::Plain => {
                return Err(bad("unencrypted SMTP is allowed only to a server on this machine (loopback); \
                     smtp+insecure:// says the network is trusted"));
            }
            SmtpSecurity::PlainTrustedNetwork => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
        };
        let mut builder = builder.port(config.port).timeout(Some(config.timeout));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self { transport: builder.build() })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message: &Message) -> Result<()> {
        self.transport.send(message.clone()).await.map(|_| ()).map_err(|e| Error::internal("sending an email", e))
    }
}
