//! The account emails, localized (en, fr, ar; Arabic right-to-left), rendered with
//! minijinja into a plain-text and an HTML part. The wording lives in one table per
//! language; two layouts (text, HTML) place it. Values are HTML-escaped by the HTML
//! layout; links come from the configured public URL only.

use minijinja::{context, Environment};

use crate::error::{Error, Result};
use crate::model::string_enum;

string_enum! {
    /// Which account email.
    MailTemplate {
        /// Confirm an email address.
        VerifyEmail = "verify_email",
        /// Set the first password of an account someone made for you.
        Invitation = "invitation",
        /// Choose a new password.
        PasswordReset = "password_reset",
        /// Your password was changed.
        PasswordChanged = "password_changed",
        /// Your account was suspended.
        AccountSuspended = "account_suspended",
        /// Confirm the new address of your account (sent to the new address).
        EmailChange = "email_change",
        /// A change of your account's address was asked for (sent to the old address).
        EmailChangeNotice = "email_change_notice",
    }
}

impl MailTemplate {
    /// The page of the public URL the email's link opens, when it has one.
    pub fn link_path(&self) -> Option<&'static str> {
        match self {
            MailTemplate::VerifyEmail | MailTemplate::EmailChange => Some("/verify-email"),
            MailTemplate::Invitation => Some("/accept-invitation"),
            MailTemplate::PasswordReset => Some("/reset-password"),
            MailTemplate::PasswordChanged | MailTemplate::AccountSuspended | MailTemplate::EmailChangeNotice => None,
        }
    }
}

/// The languages emails are written in.
pub const LANGUAGES: [&str; 3] = ["en", "fr", "ar"];

/// The wording of one email in one language: subject, greeting, body, button, footer.
struct Wording {
    subject: &'static str,
    body: &'static str,
    action: &'static str,
}

struct Common {
    greeting: &'static str,
    ignore: &'static str,
    expires: &'static str,
    signature: &'static str,
    until: &'static str,
    reason: &'static str,
}

fn common(lang: &str) -> Common {
    match lang {
        "fr" => Common {
            greeting: "Bonjour {{ username }},",
            ignore: "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.",
            expires: "Ce lien expire dans {{ expires }}.",
            signature: "L'équipe {{ app }}",
            until: "Jusqu'au",
            reason: "Motif",
        },
        "ar" => Common {
            greeting: "مرحبًا {{ username }}،",
            ignore: "إذا لم تطلب ذلك، يمكنك تجاهل هذه الرسالة.",
            expires: "تنتهي صلاحية هذا الرابط خلال {{ expires }}.",
            signature: "فريق {{ app }}",
            until: "حتى",
            reason: "السبب",
        },
        _ => Common {
            greeting: "Hello {{ username }},",
            ignore: "If you did not ask for this, you can ignore this message.",
            expires: "This link expires in {{ expires }}.",
            signature: "The {{ app }} team",
            until: "Until",
            reason: "Reason",
        },
    }
}

fn wording(t: MailTemplate, lang: &str) -> Wording {
    use MailTemplate as M;
    let w = |subject, body, action| Wording { subject, body, action };
    match (lang, t) {
        ("fr", M::VerifyEmail) => w(
            "Confirmez votre adresse e-mail",
            "Confirmez votre adresse pour activer votre compte {{ app }}.",
            "Confirmer mon adresse",
        ),
        ("fr", M::Invitation) => w(
            "Vous êtes invité sur {{ app }}",
            "Un compte {{ app }} a été créé pour vous. Choisissez votre mot de passe pour commencer.",
            "Choisir mon mot de passe",
        ),
        ("fr", M::PasswordReset) => w(
            "Réinitialisez votre mot de passe",
            "Vous avez demandé un nouveau mot de passe pour votre compte {{ app }}.",
            "Choisir un nouveau mot de passe",
        ),
        ("fr", M::PasswordChanged) => w(
            "Votre mot de passe a été modifié",
            "Le mot de passe de votre compte {{ app }} vient d'être modifié et vos autres sessions ont été fermées. Si ce n'était pas vous, contactez votre administrateur.",
            "",
        ),
        ("fr", M::EmailChange) => w(
            "Confirmez la nouvelle adresse de votre compte",
            "Vous avez demandé que votre compte {{ app }} utilise désormais cette adresse. Elle remplacera l'ancienne quand vous l'aurez confirmée ; vos sessions seront alors fermées.",
            "Confirmer cette adresse",
        ),
        ("fr", M::EmailChangeNotice) => w(
            "Changement d'adresse demandé pour votre compte",
            "Quelqu'un a demandé que votre compte {{ app }} utilise l'adresse {{ address }}. Rien ne change tant que le lien envoyé à cette adresse n'est pas suivi. Si ce n'était pas vous, changez votre mot de passe et prévenez votre administrateur.",
            "",
        ),
        ("fr", M::AccountSuspended) => w(
            "Votre compte est suspendu",
            "Votre compte {{ app }} a été suspendu par un administrateur.",
            "",
        ),
        ("ar", M::VerifyEmail) => {
            w("أكّد عنوان بريدك الإلكتروني", "أكّد عنوانك لتفعيل حسابك في {{ app }}.", "تأكيد العنوان")
        }
        ("ar", M::Invitation) => w(
            "دعوة للانضمام إلى {{ app }}",
            "أُنشئ لك حساب في {{ app }}. اختر كلمة مرورك للبدء.",
            "اختيار كلمة المرور",
        ),
        ("ar", M::PasswordReset) => w(
            "إعادة تعيين كلمة المرور",
            "طلبت كلمة مرور جديدة لحسابك في {{ app }}.",
            "اختيار كلمة مرور جديدة",
        ),
        ("ar", M::PasswordChanged) => w(
            "تم تغيير كلمة مرورك",
            "تم تغيير كلمة مرور حسابك في {{ app }} وأُغلقت جلساتك الأخرى. إن لم تكن أنت، فاتصل بالمسؤول.",
            "",
        ),
        ("ar", M::EmailChange) => w(
            "أكّد العنوان الجديد لحسابك",
            "طلبت أن يستخدم حسابك في {{ app }} هذا العنوان. سيحلّ محلّ العنوان القديم بعد تأكيده، وستُغلق جلساتك عندها.",
            "تأكيد هذا العنوان",
        ),
        ("ar", M::EmailChangeNotice) => w(
            "طُلب تغيير عنوان حسابك",
            "طلب أحدهم أن يستخدم حسابك في {{ app }} العنوان {{ address }}. لن يتغير شيء ما لم يُتبع الرابط المرسل إلى ذلك العنوان. إن لم تكن أنت، فغيّر كلمة مرورك وأبلغ المسؤول.",
            "",
        ),
        ("ar", M::AccountSuspended) => w("تم تعليق حسابك", "علّق أحد المسؤولين حسابك في {{ app }}.", ""),
        (_, M::VerifyEmail) => w(
            "Confirm your email address",
            "Confirm your address to activate your {{ app }} account.",
            "Confirm my address",
        ),
        (_, M::Invitation) => w(
            "You are invited to {{ app }}",
            "An account on {{ app }} was made for you. Choose your password to start.",
            "Choose my password",
        ),
        (_, M::PasswordReset) => w(
            "Reset your password",
            "You asked for a new password for your {{ app }} account.",
            "Choose a new password",
        ),
        (_, M::PasswordChanged) => w(
            "Your password was changed",
            "The password of your {{ app }} account was just changed and your other sessions were signed out. If this was not you, contact your administrator.",
            "",
        ),
        (_, M::EmailChange) => w(
            "Confirm the new address of your account",
            "You asked for your {{ app }} account to use this address. It replaces the old one once you confirm it; your sessions are then signed out.",
            "Confirm this address",
        ),
        (_, M::EmailChangeNotice) => w(
            "A change of your account's address was asked for",
            "Someone asked for your {{ app }} account to use the address {{ address }}. Nothing changes unless the link sent to that address is followed. If this was not you, change your password and tell your administrator.",
            "",
        ),
        (_, M::AccountSuspended) => {
            w("Your account is suspended", "An administrator suspended your {{ app }} account.", "")
        }
    }
}

const TEXT: &str = r#"{{ greeting }}

{{ body }}
{%- if until %}
{{ until_label }}: {{ until }}{% endif %}
{%- if reason %}
{{ reason_label }}: {{ reason }}{% endif %}
{%- if link %}

{{ action }}:
{{ link }}

{{ expires }}
{{ ignore }}{% endif %}

{{ signature }}
"#;

const HTML: &str = r#"<!DOCTYPE html>
<html lang="{{ lang }}" dir="{{ dir }}">
<head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: sans-serif; direction: {{ dir }}; text-align: {{ align }};">
<p>{{ greeting }}</p>
<p>{{ body }}</p>
{%- if until %}
<p>{{ until_label }}: {{ until }}</p>{% endif %}
{%- if reason %}
<p>{{ reason_label }}: {{ reason }}</p>{% endif %}
{%- if link %}
<p><a href="{{ link }}" style="display: inline-block; padding: 10px 16px; background: #2f6fde; color: #ffffff; text-decoration: none; border-radius: 4px;">{{ action }}</a></p>
<p>{{ expires }}<br>{{ ignore }}</p>{% endif %}
<p>{{ signature }}</p>
</body>
</html>
"#;

/// What an email says, filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailVars {
    /// The recipient's user name.
    pub username: String,
    /// The product name shown.
    pub app: String,
    /// The link, for emails that have one.
    pub link: Option<String>,
    /// How long the link works, in words ("1 hour").
    pub expires: String,
    /// The end of a suspension.
    pub until: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// An email address the message is about.
    pub address: Option<String>,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// The subject line, in the recipient's language.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

/// The language used for `requested`: itself when supported, else English.
pub fn language(requested: Option<&str>) -> &'static str {
    let base = requested.unwrap_or("en").split(['-', '_']).next().unwrap_or("en").to_ascii_lowercase();
    LANGUAGES.iter().find(|l| **l == base).copied().unwrap_or("en")
}

fn render_str(env: &Environment<'_>, src: &str, ctx: &minijinja::Value) -> Result<String> {
    env.render_str(src, ctx).map_err(|e| Error::internal("rendering an email", e))
}

/// Renders one email in one language.
pub fn render(template: MailTemplate, lang: &str, vars: &MailVars) -> Result<RenderedMail> {
    let lang = language(Some(lang));
    let (c, w) = (common(lang), wording(template, lang));
    // Wording first (it holds {{ username }}, {{ app }}), auto-escaping off for the text part.
    let plain_env = Environment::new();
    let values = context! {
        username => &vars.username, app => &vars.app, expires => &vars.expires, address => &vars.address,
    };
    let fill = |s: &str| render_str(&plain_env, s, &values);
    let dir = if lang == "ar" { "rtl" } else { "ltr" };
    let ctx = context! {
        lang => lang,
        dir => dir,
        align => if dir == "rtl" { "right" } else { "left" },
        subject => fill(w.subject)?,
        greeting => fill(c.greeting)?,
        body => fill(w.body)?,
        action => w.action,
        link => &vars.link,
        expires => fill(c.expires)?,
        ignore => c.ignore,
        signature => fill(c.signature)?,
        until => &vars.until,
        until_label => c.until,
        reason => &vars.reason,
        reason_label => c.reason,
    };
    let mut html_tmpl = Environment::new();
    html_tmpl.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    html_tmpl.add_template("mail.html", HTML).map_err(|e| Error::internal("an email layout", e))?;
    let html = html_tmpl
        .get_template("mail.html")
        .and_then(|t| t.render(&ctx))
        .map_err(|e| Error::internal("rendering an email", e))?;
    Ok(RenderedMail { subject: fill(w.subject)?, text: render_str(&plain_env, TEXT, &ctx)?, html })
}

/// Renders a notification email: its title and text (already in `lang`), a button to
/// the record, and where to change what reaches you.
pub fn notification(lang: &str, app: &str, title: &str, body: &str, link: Option<&str>) -> Result<RenderedMail> {
    let lang = language(Some(lang));
    let dir = if lang == "ar" { "rtl" } else { "ltr" };
    let (action, footer) = match lang {
        "fr" => ("Ouvrir", format!("Vous recevez ce message de {app} selon vos préférences de notification.")),
        "ar" => ("فتح", format!("تصلك هذه الرسالة من {app} وفق تفضيلات الإشعارات لديك.")),
        _ => ("Open", format!("You get this from {app} by your notification preferences.")),
    };
    let ctx = context! {
        lang => lang, dir => dir, align => if dir == "rtl" { "right" } else { "left" },
        title => title, body => body, link => link, action => action, footer => footer,
    };
    render_note(title, &ctx, NOTE_HTML, NOTE_TEXT)
}

/// What the email carrying an invoice, credit note or quote says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentMailVars {
    /// `invoice`, `credit_note` or `quote`.
    pub kind: String,
    /// Its number.
    pub number: String,
    /// The seller's name (the signature).
    pub seller: String,
    /// Whom it greets.
    pub customer: String,
    /// The total, written out.
    pub total: String,
    /// What is left to pay, written out (invoices).
    pub balance: Option<String>,
    /// The due date or the end of a quote's validity, written out.
    pub date: Option<String>,
    /// The sender's own words.
    pub message: Option<String>,
    /// The hosted pay page.
    pub link: Option<String>,
}

/// Renders the email that carries a document (attached to it by the caller).
pub fn document(lang: &str, v: &DocumentMailVars) -> Result<RenderedMail> {
    let lang = language(Some(lang));
    let dir = if lang == "ar" { "rtl" } else { "ltr" };
    let (n, s, t) = (&v.number, &v.seller, &v.total);
    let date = v.date.clone().unwrap_or_default();
    let (subject, greeting, body) = match (lang, v.kind.as_str()) {
        ("fr", "credit_note") => (
            format!("Avoir {n} de {s}"),
            format!("Bonjour {},", v.customer),
            format!("Veuillez trouver ci-joint l'avoir {n} d'un montant de {t}."),
        ),
        ("fr", "quote") => (
            format!("Devis {n} de {s}"),
            format!("Bonjour {},", v.customer),
            format!("Veuillez trouver ci-joint notre devis {n} d'un montant de {t}, valable jusqu'au {date}."),
        ),
        ("fr", _) => (
            format!("Facture {n} de {s}"),
            format!("Bonjour {},", v.customer),
            format!("Veuillez trouver ci-joint la facture {n} d'un montant de {t}, payable avant le {date}."),
        ),
        ("ar", "credit_note") => (
            format!("إشعار دائن {n} من {s}"),
            format!("مرحبًا {}،", v.customer),
            format!("تجدون مرفقًا الإشعار الدائن {n} بمبلغ {t}."),
        ),
        ("ar", "quote") => (
            format!("عرض سعر {n} من {s}"),
            format!("مرحبًا {}،", v.customer),
            format!("تجدون مرفقًا عرض السعر {n} بمبلغ {t}، وهو صالح حتى {date}."),
        ),
        ("ar", _) => (
            format!("فاتورة {n} من {s}"),
            format!("مرحبًا {}،", v.customer),
            format!("تجدون مرفقًا الفاتورة {n} بمبلغ {t}، وتاريخ استحقاقها {date}."),
        ),
        (_, "credit_note") => (
            format!("Credit note {n} from {s}"),
            format!("Hello {},", v.customer),
            format!("Please find attached credit note {n} for {t}."),
        ),
        (_, "quote") => (
            format!("Quote {n} from {s}"),
            format!("Hello {},", v.customer),
            format!("Please find attached our quote {n} for {t}, valid until {date}."),
        ),
        _ => (
            format!("Invoice {n} from {s}"),
            format!("Hello {},", v.customer),
            format!("Please find attached invoice {n} for {t}, due on {date}."),
        ),
    };
    let action = v.balance.as_ref().map(|b| match lang {
        "fr" => format!("Payer {b} en ligne"),
        "ar" => format!("ادفع {b} عبر الإنترنت"),
        _ => format!("Pay {b} online"),
    });
    let ctx = context! {
        lang => lang, dir => dir, align => if dir == "rtl" { "right" } else { "left" },
        title => &subject, greeting => greeting, body => body, message => &v.message,
        link => if action.is_some() { v.link.as_deref() } else { None }, action => action,
        footer => s,
    };
    render_note(&subject, &ctx, NOTE_HTML, NOTE_TEXT)
}

/// One notification of a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestItem {
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// The record's whole URL.
    pub link: Option<String>,
}

/// Renders a digest email: its title, then each notification with a link to its record.
pub fn digest(lang: &str, app: &str, title: &str, items: &[DigestItem]) -> Result<RenderedMail> {
    let lang = language(Some(lang));
    let dir = if lang == "ar" { "rtl" } else { "ltr" };
    let (action, footer) = match lang {
        "fr" => (
            "Ouvrir",
            format!("Le récapitulatif de {app}, envoyé une fois par jour selon vos préférences de notification."),
        ),
        "ar" => ("فتح", format!("ملخّص {app} اليومي، يصلك وفق تفضيلات الإشعارات لديك.")),
        _ => ("Open", format!("Your daily digest from {app}, sent by your notification preferences.")),
    };
    let ctx = context! {
        lang => lang, dir => dir, align => if dir == "rtl" { "right" } else { "left" },
        title => title, items => items.iter().map(|i| context! { title => &i.title, body => &i.body, link => &i.link }).collect::<Vec<_>>(), action => action, footer => footer,
    };
    render_note(title, &ctx, DIGEST_HTML, DIGEST_TEXT)
}

/// Renders a notification or digest layout (HTML escaped, text as is).
fn render_note(subject: &str, ctx: &minijinja::Value, html: &'static str, text: &'static str) -> Result<RenderedMail> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env.add_template("note.html", html).map_err(|e| Error::internal("an email layout", e))?;
    env.add_template("note.txt", text).map_err(|e| Error::internal("an email layout", e))?;
    let render = |name: &str| {
        env.get_template(name).and_then(|t| t.render(ctx)).map_err(|e| Error::internal("rendering an email", e))
    };
    Ok(RenderedMail { subject: subject.to_string(), text: render("note.txt")?, html: render("note.html")? })
}

const NOTE_TEXT: &str = r#"{% if greeting %}{{ greeting }}{% else %}{{ title }}{% endif %}

{{ body }}
{%- if message %}

{{ message }}{% endif %}
{%- if link %}

{{ action }}: {{ link }}{% endif %}

-- 
{{ footer }}
"#;

const NOTE_HTML: &str = r#"<!DOCTYPE html>
<html lang="{{ lang }}" dir="{{ dir }}">
<head><meta charset="utf-8"><title>{{ title }}</title></head>
<body style="font-family: sans-serif; direction: {{ dir }}; text-align: {{ align }};">
{%- if greeting %}
<p>{{ greeting }}</p>
{%- else %}
<h2 style="font-size: 18px;">{{ title }}</h2>
{%- endif %}
<p>{{ body }}</p>
{%- if message %}
<p style="white-space: pre-line;">{{ message }}</p>{% endif %}
{%- if link %}
<p><a href="{{ link }}" style="display: inline-block; padding: 10px 16px; background: #2f6fde; color: #ffffff; text-decoration: none; border-radius: 4px;">{{ action }}</a></p>{% endif %}
<p style="color: #666666; font-size: 12px;">{{ footer }}</p>
</body>
</html>
"#;

const DIGEST_TEXT: &str = r#"{{ title }}
{% for item in items %}
* {{ item.title }}
  {{ item.body }}
{%- if item.link %}
  {{ action }}: {{ item.link }}{% endif %}
{% endfor %}
-- 
{{ footer }}
"#;

const DIGEST_HTML: &str = r#"<!DOCTYPE html>
<html lang="{{ lang }}" dir="{{ dir }}">
<head><meta charset="utf-8"><title>{{ title }}</title></head>
<body style="font-family: sans-serif; direction: {{ dir }}; text-align: {{ align }};">
<h2 style="font-size: 18px;">{{ title }}</h2>
{%- for item in items %}
<div style="border-top: 1px solid #dddddd; padding: 8px 0;">
<p style="margin: 0; font-weight: bold;">{% if item.link %}<a href="{{ item.link }}" style="color: #2f6fde;">{{ item.title }}</a>{% else %}{{ item.title }}{% endif %}</p>
<p style="margin: 4px 0 0 0;">{{ item.body }}</p>
</div>
{%- endfor %}
<p style="color: #666666; font-size: 12px;">{{ footer }}</p>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn digests_list_each_notification_escaped() {
        let items = [
            DigestItem {
                title: "Deal won: <A>".into(),
                body: "x & y".into(),
                link: Some("https://crm.example.com/deals/1".into()),
            },
            DigestItem { title: "Changed".into(), body: "b".into(), link: None },
        ];
        let m = digest("ar", "crm-rs", "ملخّصك: عدد الإشعارات 2", &items).unwrap();
        assert!(
            m.html.contains(r#"dir="rtl""#) && m.html.contains("Deal won: &lt;A&gt;") && m.html.contains("x &amp; y")
        );
        assert!(m.html.contains(r#"href="https:&#x2f;&#x2f;crm.example.com&#x2f;deals&#x2f;1""#), "{}", m.html);
        assert!(
            m.text.contains("* Deal won: <A>") && m.text.contains("فتح: https://crm.example.com/deals/1"),
            "{}",
            m.text
        );
        assert!(m.text.contains("* Changed\n  b\n"), "{}", m.text);
    }

    #[test]
    fn notifications_escape_and_turn_right_to_left() {
        let m = notification("ar", "crm-rs", "صفقة <b>", "x & y", Some("https://crm.example.com/deals/1")).unwrap();
        assert!(m.html.contains(r#"dir="rtl""#) && m.html.contains("&lt;b&gt;") && m.html.contains("x &amp; y"));
        assert!(m.text.contains("صفقة <b>") && m.text.contains("https://crm.example.com/deals/1"));
    }

    fn vars() -> MailVars {
        MailVars {
            username: "ann<b>".into(),
            app: "crm-rs".into(),
            link: Some("https://crm.example.com/reset-password?token=abc".into()),
            expires: "1 hour".into(),
            until: None,
            reason: None,
            address: Some("new@example.com".into()),
        }
    }

    #[test]
    fn every_template_renders_in_every_language() {
        for t in MailTemplate::ALL {
            for lang in LANGUAGES {
                let mut v = vars();
                if t.link_path().is_none() {
                    v.link = None;
                }
                let m = render(*t, lang, &v).unwrap_or_else(|e| panic!("{t} {lang}: {e}"));
                assert!(!m.subject.is_empty() && !m.subject.contains("{{"), "{t} {lang}");
                assert!(!m.text.contains("{{") && !m.html.contains("{{"), "{t} {lang}");
                assert_eq!(m.text.contains("token=abc"), t.link_path().is_some(), "{t} {lang}");
            }
        }
    }

    #[test]
    fn arabic_is_right_to_left_and_html_is_escaped() {
        let m = render(MailTemplate::PasswordReset, "ar", &vars()).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.html.contains(r#"dir="rtl""#));
        assert!(m.html.contains("ann&lt;b&gt;"), "{}", m.html);
        assert!(m.text.contains("ann<b>"));
        let fr = render(MailTemplate::PasswordReset, "fr-CA", &vars()).unwrap_or_else(|e| panic!("{e}"));
        assert!(fr.subject.starts_with("Réinitialisez"));
        assert!(fr.html.contains(r#"dir="ltr""#));
    }
}
