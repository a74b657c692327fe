//! Campaign messages: MJML rendered to responsive HTML once per campaign (mrml, in Rust),
//! then personalised per recipient with minijinja (HTML auto-escaped), the text part
//! derived from the HTML unless the template has its own, links wrapped for click
//! tracking and an open pixel added.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{json, Value as Json};

use crate::error::{Error, Errors, Result};

/// The fields a template may name, per object. `custom_fields` takes any key (a missing
/// one renders empty, or its `default(...)`).
const CONTACT_FIELDS: &[&str] = &[
    "id",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone_number",
    "job_title",
    "lead_source",
    "lifecycle_stage",
    "tags",
    "address",
    "custom_fields",
];
const COMPANY_FIELDS: &[&str] =
    &["id", "name", "domain", "industry", "size", "country", "website", "address", "custom_fields"];
const CAMPAIGN_FIELDS: &[&str] = &["id", "name"];
/// Top-level names besides `contact`, `company` and `campaign`.
const OTHER_NAMES: &[&str] = &["unsubscribe_url", "footer", "sender"];
/// minijinja's own globals a template may call.
const GLOBALS: &[&str] = &["range", "dict", "namespace", "loop", "debug"];

/// A template's parts after MJML: what a campaign freezes and sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The subject (minijinja source).
    pub subject: String,
    /// The HTML (minijinja source, auto-escaped when rendered).
    pub html: String,
    /// The text part (minijinja source).
    pub text: String,
}

/// Renders MJML to HTML, or says where it is wrong (errors name `field`).
pub fn mjml_to_html(field: &str, mjml: &str) -> Result<String> {
    let parsed =
        mrml::parse(mjml).map_err(|e| Error::invalid(field, "invalid_mjml", format!("not valid MJML: {e}")))?;
    // No web fonts from third parties: a message must not call Google when opened.
    let options = mrml::prelude::render::RenderOptions { fonts: Default::default(), ..Default::default() };
    parsed
        .element
        .render(&options)
        .map_err(|e| Error::invalid(field, "invalid_mjml", format!("the MJML does not render: {e}")))
}

/// Compiles a template's subject, MJML and optional text, checking every placeholder:
/// each error names the field (`subject`, `mjml`, `text`) and the unknown variable.
pub fn compile(subject: &str, mjml: &str, text: Option<&str>) -> Result<Compiled> {
    let mut errs = Errors::new();
    let html = errs.take("mjml", mjml_to_html("mjml", mjml));
    check_variables("subject", subject, &mut errs);
    check_variables("mjml", mjml, &mut errs);
    if let Some(t) = text {
        check_variables("text", t, &mut errs);
    }
    errs.finish()?;
    let html = html.unwrap_or_default();
    let text = match text {
        Some(t) => t.to_string(),
        None => html_to_text(&html),
    };
    Ok(Compiled { subject: subject.to_string(), html, text })
}

/// Adds an error for every placeholder of `source` that no recipient has, and for a
/// source minijinja cannot parse.
pub fn check_variables(field: &str, source: &str, errs: &mut Errors) {
    let env = Environment::new();
    let tmpl = match env.template_from_str(source) {
        Ok(t) => t,
        Err(e) => {
            errs.add(field, "invalid_template", format!("not a valid template: {e}"));
            return;
        }
    };
    let names: BTreeSet<String> = tmpl.undeclared_variables(true).into_iter().collect();
    for name in names {
        let mut parts = name.split('.');
        let top = parts.next().unwrap_or_default();
        let second = parts.next();
        let known = match (top, second) {
            ("contact", None) | ("company", None) | ("campaign", None) => true,
            ("contact", Some(f)) => CONTACT_FIELDS.contains(&f),
            ("company", Some(f)) => COMPANY_FIELDS.contains(&f),
            ("campaign", Some(f)) => CAMPAIGN_FIELDS.contains(&f),
            (t, _) => OTHER_NAMES.contains(&t) || GLOBALS.contains(&t),
        };
        if !known {
            let hint = match top {
                "contact" => format!("contact has {}", CONTACT_FIELDS.join(", ")),
                "company" => format!("company has {}", COMPANY_FIELDS.join(", ")),
                "campaign" => format!("campaign has {}", CAMPAIGN_FIELDS.join(", ")),
                _ => format!("use contact.*, company.*, campaign.*, or {}", OTHER_NAMES.join(", ")),
            };
            errs.add(field, "unknown_variable", format!("unknown variable '{name}': {hint}"));
        }
    }
}

/// The values one recipient's message is rendered with.
pub fn recipient_context(
    contact: &Json,
    company: Option<&Json>,
    campaign: &Json,
    unsubscribe_url: &str,
    footer: &str,
) -> Json {
    json!({
        "contact": contact,
        "company": company.cloned().unwrap_or_else(|| json!({})),
        "campaign": campaign,
        "unsubscribe_url": unsubscribe_url,
        "footer": footer,
    })
}

/// A campaign's compiled parts, ready to personalise many times.
pub struct Personalizer {
    env: Environment<'static>,
}

impl std::fmt::Debug for Personalizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Personalizer(..)")
    }
}

/// One recipient's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personalized {
    /// Subject.
    pub subject: String,
    /// HTML part.
    pub html: String,
    /// Text part.
    pub text: String,
}

impl Personalizer {
    /// Parses the three parts once.
    pub fn new(compiled: &Compiled) -> Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
        let bad = |part: &str, e: minijinja::Error| Error::invalid(part, "invalid_template", e.to_string());
        env.add_template_owned("subject.txt", compiled.subject.clone()).map_err(|e| bad("subject", e))?;
        env.add_template_owned("body.html", compiled.html.clone()).map_err(|e| bad("mjml", e))?;
        env.add_template_owned("body.txt", compiled.text.clone()).map_err(|e| bad("text", e))?;
        Ok(Self { env })
    }

    /// The message for one recipient's values ([`recipient_context`]).
    pub fn render(&self, ctx: &Json) -> Result<Personalized> {
        let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
        let one = |name: &str| {
            self.env
                .get_template(name)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| Error::invalid(name, "render_failed", e.to_string()))
        };
        // A subject is one line whatever the data holds.
        let subject = one("subject.txt")?.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(Personalized { subject, html: one("body.html")?, text: one("body.txt")? })
    }
}

/// Wraps every `http(s)` link of `html` with `wrap(url)` (click tracking), leaving
/// `mailto:`, anchors and the links `keep` names alone, and adds `pixel` (an open
/// tracking image URL) before `</body>`.
pub fn track(html: &str, keep: &[&str], pixel: Option<&str>, wrap: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html;
    while let Some(at) = rest.find("href=\"") {
        let (before, after) = rest.split_at(at + 6);
        out.push_str(before);
        let end = after.find('"').unwrap_or(after.len());
        let raw = &after[..end];
        let url = unescape(raw);
        // Only links people click (`<a href>`), not style sheets or other resources.
        let tag_start = before.rfind('<').map_or("", |i| &before[i..]);
        let is_anchor = tag_start.len() > 2
            && tag_start.as_bytes()[1].eq_ignore_ascii_case(&b'a')
            && tag_start.as_bytes()[2].is_ascii_whitespace();
        if is_anchor && (url.starts_with("https://") || url.starts_with("http://")) && !keep.contains(&url.as_str()) {
            out.push_str(&escape_attr(&wrap(&url)));
        } else {
            out.push_str(raw);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    if let Some(p) = pixel {
        let img = format!(
            "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\" />",
            escape_attr(p)
        );
        match out.rfind("</body>") {
            Some(i) => out.insert_str(i, &img),
            None => out.push_str(&img),
        }
    }
    out
}

pub(crate) fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Decodes the entities HTML attributes and text commonly hold.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(semi) = tail.find(';').filter(|&n| n <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let name = &tail[1..semi];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            n if n.starts_with("#x") || n.starts_with("#X") => {
                u32::from_str_radix(&n[2..], 16).ok().and_then(char::from_u32)
            }
            n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The plain-text part of an HTML email: the text of its body, paragraphs and table rows
/// on their own lines, links written `text (url)`, images' alt text, no styles, scripts
/// or comments.
pub fn html_to_text(html: &str) -> String {
    let body = match (html.find("<body"), html.rfind("</body>")) {
        (Some(s), Some(e)) if s < e => &html[s..e],
        _ => html,
    };
    let mut out = String::new();
    let mut links: Vec<String> = Vec::new();
    let mut rest = body;
    let mut skip_until: Option<&str> = None;
    while !rest.is_empty() {
        if let Some(end) = skip_until {
            match rest.find(end) {
                Some(i) => {
                    rest = &rest[i + end.len()..];
                    skip_until = None;
                    continue;
                }
                None => break,
            }
        }
        match rest.find('<') {
            None => {
                out.push_str(&unescape(rest));
                break;
            }
            Some(i) => {
                out.push_str(&unescape(&rest[..i]));
                rest = &rest[i..];
                if rest.starts_with("<!--") {
                    skip_until = Some("-->");
                    continue;
                }
                let end = rest.find('>').map_or(rest.len(), |e| e + 1);
                let tag = &rest[..end];
                rest = &rest[end..];
                let lower = tag.to_ascii_lowercase();
                let name: String = lower
                    .trim_start_matches('<')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
                    .collect();
                match name.as_str() {
                    "style" => skip_until = Some("</style>"),
                    "script" => skip_until = Some("</script>"),
                    "title" => skip_until = Some("</title>"),
                    "br" | "br/" => out.push('\n'),
                    "p" | "/p" | "div" | "/div" | "tr" | "/tr" | "h1" | "/h1" | "h2" | "/h2" | "h3" | "/h3" | "li"
                    | "/table" | "hr" => out.push('\n'),
                    "a" => links.push(attr(tag, "href").unwrap_or_default()),
                    "/a" => {
                        if let Some(href) = links.pop().filter(|h| h.starts_with("http") || h.starts_with("{{")) {
                            out.push_str(&format!(" ({href})"));
                        }
                    }
                    "img" => {
                        if let Some(alt) = attr(tag, "alt").filter(|a| !a.is_empty()) {
                            out.push_str(&alt);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    // Collapse the layout's whitespace: words keep one space, paragraphs one blank line.
    let mut text = String::new();
    let mut blank = 0;
    for line in out.lines() {
        let words = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if words.is_empty() {
            blank += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        text.push_str(&words);
    }
    text.push('\n');
    text
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let key = format!("{name}=\"");
    let at = lower.find(&format!(" {key}"))? + 1 + key.len();
    let end = tag[at..].find('"')? + at;
    Some(unescape(&tag[at..end]))
}

/// The JSON a template sees for a record: its fields in snake_case, `first_name` and
/// `last_name` split from a contact's name.
pub fn template_object(record: &Json, is_contact: bool) -> Json {
    let mut out = BTreeMap::new();
    if let Some(o) = record.as_object() {
        for (k, v) in o {
            out.insert(snake(k), v.clone());
        }
    }
    if is_contact {
        let name = record.get("name").and_then(Json::as_str).unwrap_or_default();
        let mut words = name.split_whitespace();
        let first = words.next().unwrap_or_default().to_string();
        let last = words.collect::<Vec<_>>().join(" ");
        out.insert("first_name".into(), json!(first));
        out.insert("last_name".into(), json!(last));
    }
    serde_json::to_value(out).unwrap_or(Json::Null)
}

fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MJML: &str = r#"<mjml><mj-body><mj-section><mj-column>
        <mj-text>Hello {{ contact.first_name | default("there") }} of {{ company.name }}!</mj-text>
        <mj-button href="https://example.com/offer?a=1&amp;b=2">See the offer</mj-button>
        <mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
        </mj-column></mj-section></mj-body></mjml>"#;

    #[test]
    fn mjml_renders_and_personalises() -> Result<()> {
        let c = compile("Hi {{ contact.first_name }}", MJML, None)?;
        assert!(c.html.contains("<!doctype html>") || c.html.contains("<!DOCTYPE html>"), "{}", c.html);
        assert!(!c.html.contains("fonts.googleapis.com"), "no third-party fonts");
        assert!(c.text.contains("See the offer (https://example.com/offer?a=1&b=2)"), "{}", c.text);
        let p = Personalizer::new(&c)?;
        let contact = template_object(&json!({"name": "Ada <b>Lovelace</b>", "email": "ada@example.com"}), true);
        let ctx = recipient_context(
            &contact,
            Some(&json!({"name": "Analytical & Co"})),
            &json!({"name": "Launch"}),
            "https://crm.example/u/x",
            "",
        );
        let m = p.render(&ctx)?;
        assert_eq!(m.subject, "Hi Ada");
        assert!(m.html.contains("Analytical &amp; Co"), "escaped in HTML");
        assert!(m.text.contains("Analytical & Co"), "plain in text: {}", m.text);
        let none = recipient_context(&json!({}), None, &json!({}), "u", "");
        assert!(p.render(&none)?.html.contains("Hello there of !"));
        Ok(())
    }

    #[test]
    fn unknown_variables_are_named() {
        let err = compile("Hi {{ contact.frist_name }}", MJML, Some("{{ nope }}")).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("contact.frist_name"), "{err}");
        assert!(err.contains("nope"), "{err}");
        let bad = compile("x", "<mjml><mj-body><mj-section>", None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(bad.contains("MJML"), "{bad}");
    }

    #[test]
    fn links_are_wrapped_but_not_the_unsubscribe_link() {
        let html = r#"<head><link href="https://fonts.example/css" rel="stylesheet"></head><body><a href="https://a.example/x?y=1&amp;z=2">A</a><a href="mailto:x@y">M</a><a href="https://crm/u/1">U</a></body>"#;
        let out = track(html, &["https://crm/u/1"], Some("https://crm/t/o/1"), |u| format!("https://crm/t/c?u={u}"));
        assert!(out.contains(r#"href="https://crm/t/c?u=https://a.example/x?y=1&amp;z=2""#), "{out}");
        assert!(out.contains(r#"href="mailto:x@y""#));
        assert!(out.contains(r#"<link href="https://fonts.example/css""#), "only anchors");
        assert!(out.contains(r#"href="https://crm/u/1""#));
        assert!(out.contains(r#"<img src="https://crm/t/o/1""#));
    }
}
