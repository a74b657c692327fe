//! The SMTP sink the suite sends real email to: aiosmtpd on 127.0.0.1, writing every
//! message it receives into a maildir (`scripts/test` starts it). Cases send through
//! crm-core's [`SmtpMailer`], then read the messages back from the maildir, parse them
//! and follow their links.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crm_core::mail::{SmtpConfig, SmtpMailer, SmtpSecurity};

/// Where the sink listens: `CRM_TEST_SMTP` (`host:port`), default `127.0.0.1:2525`.
pub fn smtp_addr() -> String {
    std::env::var("CRM_TEST_SMTP").unwrap_or_else(|_| "127.0.0.1:2525".into())
}

/// Where the sink writes: `CRM_TEST_MAILDIR`, default `<tmp>/crm-rs-test-maildir`.
pub fn maildir() -> PathBuf {
    std::env::var_os("CRM_TEST_MAILDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("crm-rs-test-maildir"))
}

/// A mailer sending to the sink; fails the test, saying how to start the sink, when
/// nothing listens there.
pub fn sink_mailer() -> SmtpMailer {
    let addr = smtp_addr();
    let (host, port) = addr.rsplit_once(':').unwrap_or(("127.0.0.1", "2525"));
    let port: u16 = port.parse().unwrap_or(2525);
    if std::net::TcpStream::connect_timeout(
        &format!("{host}:{port}").parse().unwrap_or_else(|e| panic!("CRM_TEST_SMTP={addr}: {e}")),
        Duration::from_secs(2),
    )
    .is_err()
    {
        panic!(
            "no SMTP sink at {addr}: run scripts/test, or start one with \
             `python3 -m aiosmtpd -n -l {addr} -c aiosmtpd.handlers.Mailbox {}`",
            maildir().display()
        );
    }
    SmtpMailer::new(&SmtpConfig {
        host: host.to_string(),
        port,
        security: SmtpSecurity::Plain,
        credentials: None,
        timeout: Duration::from_secs(10),
    })
    .unwrap_or_else(|e| panic!("SMTP mailer: {e}"))
}

/// One received message, parsed.
#[derive(Debug, Clone)]
pub struct Received {
    /// The decoded `Subject:` header.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// The whole message as received.
    pub raw: String,
    /// The files attached: name, media type, bytes.
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

impl Received {
    /// The `token` of the first link in the text part.
    pub fn token(&self) -> String {
        let at = self.text.find("?token=").unwrap_or_else(|| panic!("no link in:\n{}", self.text));
        self.text[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
    }

    /// The first link of the text part.
    pub fn link(&self) -> String {
        let at = self.text.find("http").unwrap_or_else(|| panic!("no link in:\n{}", self.text));
        self.text[at..].split_whitespace().next().unwrap_or_default().to_string()
    }
}

fn parse(raw: &[u8]) -> Option<Received> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    Some(Received {
        subject: msg.subject().unwrap_or_default().to_string(),
        text: msg.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
        html: msg.body_html(0).map(|t| t.to_string()).unwrap_or_default(),
        raw: String::from_utf8_lossy(raw).to_string(),
        attachments: msg
            .attachments()
            .map(|a| {
                use mail_parser::MimeHeaders as _;
                let kind = a
                    .content_type()
                    .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
                    .unwrap_or_default();
                (a.attachment_name().unwrap_or_default().to_string(), kind, a.contents().to_vec())
            })
            .collect(),
    })
}

/// Every message the sink holds for `to`, oldest first.
pub fn messages_to(to: &str) -> Vec<Received> {
    let dir = maildir().join("new");
    let mut found: Vec<(std::time::SystemTime, Received)> = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return vec![] };
    let needle = format!("<{to}>");
    for e in entries.flatten() {
        let Ok(raw) = std::fs::read(e.path()) else { continue };
        let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n" || w == b"\n\n\n\n").unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
        let to_line = head.lines().any(|l| l.starts_with("to:") && (l.contains(&needle) || l.ends_with(to)));
        if !to_line {
            continue;
        }
        if let Some(m) = parse(&raw) {
            let at = e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
            found.push((at, m));
        }
    }
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, m)| m).collect()
}

/// Waits (up to 10 s) until the sink holds `n` messages for `to`, and returns them.
pub async fn wait_for(to: &str, n: usize) -> Vec<Received> {
    let start = Instant::now();
    loop {
        let got = messages_to(to);
        if got.len() >= n {
            return got;
        }
        if start.elapsed() > Duration::from_secs(10) {
            panic!("the SMTP sink holds {} message(s) for {to}, expected {n}", got.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The messages the sink holds for each of `addresses` (lower case), read in one pass
/// over the maildir: the raw messages, by address. For campaigns of thousands.
pub fn messages_for(addresses: &std::collections::HashSet<String>) -> std::collections::HashMap<String, Vec<Vec<u8>>> {
    let mut out: std::collections::HashMap<String, Vec<Vec<u8>>> = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir(maildir().join("new")) else { return out };
    for e in entries.flatten() {
        let Ok(raw) = std::fs::read(e.path()) else { continue };
        let head_end =
            raw.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| raw.windows(2).position(|w| w == b"\n\n"));
        let head = String::from_utf8_lossy(&raw[..head_end.unwrap_or(raw.len())]).to_lowercase();
        let Some(to) = head.lines().find_map(|l| l.strip_prefix("to:")) else { continue };
        let to = to.trim();
        let addr = match (to.rfind('<'), to.rfind('>')) {
            (Some(a), Some(b)) if a < b => &to[a + 1..b],
            _ => to,
        };
        if addresses.contains(addr) {
            out.entry(addr.to_string()).or_default().push(raw);
        }
    }
    out
}

/// One raw message parsed.
pub fn parse_raw(raw: &[u8]) -> Received {
    parse(raw).unwrap_or_else(|| panic!("not a message: {}", String::from_utf8_lossy(raw)))
}

/// A header of a raw message, unfolded (`None` when absent).
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let head = text.split("\n\n").next().unwrap_or_default().replace("\n ", " ").replace("\n\t", " ");
    let want = format!("{}:", name.to_ascii_lowercase());
    head.lines().find(|l| l.to_ascii_lowercase().starts_with(&want)).map(|l| l[want.len()..].trim().to_string())
}
