//! Bounce intake: RFC 3464 delivery status notifications (the `message/delivery-status`
//! part a mail server sends back) and RFC 5965 abuse reports (`message/feedback-report`,
//! a complaint), read with mail-parser. The campaign and recipient come from the
//! `X-CRM-Recipient` header of the returned original, when the report carries it.

use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a report says about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    /// Permanent (`Action: failed`, status 5.x.x): the address is suppressed.
    Hard,
    /// Temporary (`Action: delayed`, or status 4.x.x): counted, not suppressed.
    Soft,
    /// The recipient marked the message as spam: suppressed.
    Complaint,
}

impl BounceKind {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
            BounceKind::Complaint => "complaint",
        }
    }
}

/// One address a report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Bounce {
    /// The address (lower case).
    pub email: String,
    /// Hard, soft or a complaint.
    pub kind: BounceKind,
    /// The DSN's status code (`5.1.1`).
    pub status: Option<String>,
    /// The remote server's words (`smtp; 550 5.1.1 user unknown`).
    pub diagnostic: Option<String>,
    /// The campaign recipient the returned message was sent to, when it says.
    pub recipient_id: Option<Uuid>,
}

/// The header every campaign message carries: the recipient row it was sent for.
pub const RECIPIENT_HEADER: &str = "X-CRM-Recipient";

/// The fields of a `message/delivery-status` (or feedback report) body, block by block:
/// continuation lines unfolded, names lower-cased.
fn blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if out.last().is_some_and(|b| !b.is_empty()) {
                out.push(Vec::new());
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, v)) = out.last_mut().and_then(|b| b.last_mut()) {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            if let Some(b) = out.last_mut() {
                b.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

fn field<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `rfc822; Ada@Example.com` → `ada@example.com`.
fn address(v: &str) -> String {
    let v = v.split_once(';').map_or(v, |(_, a)| a);
    v.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase()
}

/// The recipient id in a returned original's headers.
fn recipient_in(text: &str) -> Option<Uuid> {
    let needle = RECIPIENT_HEADER.to_ascii_lowercase();
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim().to_ascii_lowercase() == needle {
            Uuid::parse_str(v.trim()).ok()
        } else {
            None
        }
    })
}

/// Reads a bounce or complaint message. `None` when it is neither (an auto-reply, a
/// plain message): such mail is left alone.
pub fn parse(raw: &[u8]) -> Option<Vec<Bounce>> {
    let msg = MessageParser::default().parse(raw)?;
    let mut status: Option<String> = None;
    let mut feedback: Option<String> = None;
    let mut original: Option<Uuid> = None;
    for part in &msg.parts {
        let Some(ct) = part.content_type() else { continue };
        let kind = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase();
        let text = match &part.body {
            PartType::Message(m) => String::from_utf8_lossy(m.raw_message()).into_owned(),
            _ => String::from_utf8_lossy(part.contents()).into_owned(),
        };
        match kind.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => status = Some(text),
            "message/feedback-report" => feedback = Some(text),
            "message/rfc822" | "text/rfc822-headers" | "message/rfc822-headers" | "message/global" => {
                original = original.or_else(|| recipient_in(&text));
            }
            _ => {}
        }
    }
    if let Some(report) = feedback {
        let blocks = blocks(&report);
        let fields: Vec<(String, String)> = blocks.into_iter().flatten().collect();
        let who = field(&fields, "original-rcpt-to").or_else(|| field(&fields, "removal-recipient"));
        let email = who.map(address).unwrap_or_default();
        let abuse = field(&fields, "feedback-type").is_none_or(|t| t.eq_ignore_ascii_case("abuse"));
        if !abuse {
            return Some(vec![]);
        }
        return Some(vec![Bounce {
            email,
            kind: BounceKind::Complaint,
            status: None,
            diagnostic: field(&fields, "feedback-type").map(str::to_string),
            recipient_id: original,
        }]);
    }
    let report = status?;
    let mut out = Vec::new();
    for block in blocks(&report) {
        let Some(who) = field(&block, "final-recipient").or_else(|| field(&block, "original-recipient")) else {
            continue;
        };
        let action = field(&block, "action").unwrap_or_default().to_ascii_lowercase();
        let code = field(&block, "status").map(|s| s.split_whitespace().next().unwrap_or_default().to_string());
        let kind = match action.as_str() {
            "delivered" | "relayed" | "expanded" => continue,
            "delayed" => BounceKind::Soft,
            _ if code.as_deref().is_some_and(|c| c.starts_with('4')) => BounceKind::Soft,
            _ => BounceKind::Hard,
        };
        out.push(Bounce {
            email: address(who),
            kind,
            status: code,
            diagnostic: field(&block, "diagnostic-code").map(str::to_string),
            recipient_id: original,
        });
    }
    Some(out)
}

/// The messages of an mbox file (`From ` lines between them), for `crm-server bounces`.
pub fn split_mbox(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at < data.len() {
        if data[at..].starts_with(b"From ") && (at == 0 || data[at - 1] == b'\n') {
            starts.push(at);
        }
        match data[at..].iter().position(|&b| b == b'\n') {
            Some(n) => at += n + 1,
            None => break,
        }
    }
    if starts.is_empty() {
        return if data.is_empty() { vec![] } else { vec![data] };
    }
    let mut out = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(data.len());
        let body = &data[s..end];
        // Drop the `From ` separator line itself.
        let body = body.iter().position(|&b| b == b'\n').map_or(&body[..0], |n| &body[n + 1..]);
        out.push(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dsn(action: &str, status: &str, diag: &str) -> String {
        format!(
            "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@crm.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.net.\r\n\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\nArrival-Date: Thu, 3 Dec 2026 10:00:00 +0000\r\n\r\n\
Final-Recipient: rfc822; Ada@Example.com\r\nOriginal-Recipient: rfc822;ada@example.com\r\nAction: {action}\r\nStatus: {status}\r\n\
Diagnostic-Code: smtp; {diag}\r\n  continued\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@crm.example\r\nTo: ada@example.com\r\nSubject: Launch\r\n\
X-CRM-Recipient: 0190f0a6-0000-7000-8000-000000000001\r\n\r\n--B--\r\n"
        )
    }

    #[test]
    fn a_hard_bounce_names_the_address_and_the_recipient() {
        let got = parse(dsn("failed", "5.1.1", "550 5.1.1 <ada@example.com>: user unknown").as_bytes());
        let got = got.unwrap_or_default();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].email, "ada@example.com");
        assert_eq!(got[0].kind, BounceKind::Hard);
        assert_eq!(got[0].status.as_deref(), Some("5.1.1"));
        assert!(got[0].diagnostic.as_deref().is_some_and(|d| d.contains("user unknown") && d.contains("continued")));
        assert_eq!(got[0].recipient_id.map(|u| u.to_string()).as_deref(), Some("0190f0a6-0000-7000-8000-000000000001"));
    }

    #[test]
    fn delays_and_4xx_failures_are_soft_and_successes_nothing() {
        let delayed = parse(dsn("delayed", "4.4.7", "451 try later").as_bytes()).unwrap_or_default();
        assert_eq!(delayed.first().map(|b| b.kind), Some(BounceKind::Soft));
        let full = parse(dsn("failed", "4.2.2", "452 mailbox full").as_bytes()).unwrap_or_default();
        assert_eq!(full.first().map(|b| b.kind), Some(BounceKind::Soft));
        let ok = parse(dsn("delivered", "2.0.0", "250 ok").as_bytes()).unwrap_or_default();
        assert!(ok.is_empty());
    }

    #[test]
    fn an_abuse_report_is_a_complaint() {
        let arf = "From: fbl@isp.example\r\nTo: bounces@crm.example\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n--F\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n\r\n\
--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n\
Original-Rcpt-To: <Bob@Example.org>\r\n\r\n--F\r\nContent-Type: message/rfc822\r\n\r\nFrom: news@crm.example\r\nTo: bob@example.org\r\n\
X-CRM-Recipient: 0190f0a6-0000-7000-8000-000000000002\r\nSubject: Launch\r\n\r\nHello\r\n--F--\r\n";
        let got = parse(arf.as_bytes()).unwrap_or_default();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].kind, BounceKind::Complaint);
        assert_eq!(got[0].email, "bob@example.org");
        assert!(got[0].recipient_id.is_some());
    }

    #[test]
    fn a_plain_message_is_not_a_report() {
        assert_eq!(parse(b"From: a@b.c\r\nTo: d@e.f\r\nSubject: out of office\r\n\r\nI am away.\r\n"), None);
    }

    #[test]
    fn an_mbox_splits_into_its_messages() {
        let mbox = b"From MAILER-DAEMON Thu Dec  3 10:00:00 2026\nSubject: one\n\nbody\nFrom MAILER-DAEMON Thu Dec  3 10:01:00 2026\nSubject: two\n\nbody\n";
        let parts = split_mbox(mbox);
        assert_eq!(parts.len(), 2);
        assert!(parts[1].starts_with(b"Subject: two"));
    }
}
