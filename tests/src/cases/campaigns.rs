//! Email campaigns against the real SMTP sink (aiosmtpd): once per recipient, with the
//! RFC 8058 headers; suppressions, exclusions and consents honoured; one-click
//! unsubscribe; signed tracking links; bounces; a sender killed mid-send; automatic
//! pause after SMTP errors; inputs and roles.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use crm_core::campaign::{
    dsn, CampaignConfig, CampaignInput, CampaignSender, ConsentInput, SegmentInput, SuppressionInput, TemplateInput,
};
use crm_core::mail::Mailer;
use crm_core::model::campaign::{Campaign, CampaignState, ConsentStatus, RecipientState, SuppressionReason};
use crm_core::service::NewContact;
use crm_core::{Actor, Crm, EntityKind, Error, ListQuery, Role};
use uuid::Uuid;

use super::assert_code;
use crate::{mail, Harness, TestBackend, PUBLIC_URL};

const MJML: &str = r#"<mjml><mj-head><mj-title>News</mj-title></mj-head><mj-body>
<mj-section><mj-column>
<mj-text font-size="18px">Hello {{ contact.first_name | default("there") }}{% if company.name %} of {{ company.name }}{% endif %}!</mj-text>
<mj-text>Your stage: {{ contact.lifecycle_stage }}.</mj-text>
<mj-button href="https://shop.example.com/offer?utm=crm">See the offer</mj-button>
</mj-column></mj-section></mj-body></mjml>"#;

/// A run's addresses: `<name>.<tag>@campaign.test`, one tag per run so the shared sink
/// tells runs apart.
fn tag() -> String {
    let id = Uuid::now_v7().simple().to_string();
    id[id.len() - 12..].to_string()
}

fn addr(tag: &str, i: usize) -> String {
    format!("ada{i}.{tag}@campaign.test")
}

async fn contacts(h: &Harness, tag: &str, n: usize) -> Vec<crm_core::Contact> {
    let mut out = Vec::with_capacity(n);
    let all: Vec<NewContact> = (0..n)
        .map(|i| NewContact { name: format!("Ada{i} Lovelace"), email: Some(addr(tag, i)), ..Default::default() })
        .collect();
    for chunk in all.chunks(500) {
        out.extend(h.crm.contacts().create_many(&h.admin, chunk.to_vec()).await.expect("contacts"));
    }
    out
}

fn sender(crm: &Crm, mailer: Arc<dyn Mailer>, batch: usize) -> CampaignSender {
    let mut config = CampaignConfig::new(PUBLIC_URL, "News <news@crm.test.example>".parse().expect("from"));
    config.per_second = 0.0;
    config.concurrency = 8;
    config.batch = batch;
    config.footer = "crm-rs Ltd, 1 Test Street, Testville".into();
    CampaignSender::new(crm.clone(), mailer, config)
}

fn sink() -> Arc<dyn Mailer> {
    Arc::new(mail::sink_mailer())
}

async fn template(h: &Harness) -> Uuid {
    let t = TemplateInput {
        name: Some("Launch".into()),
        subject: Some("News for {{ contact.first_name }}".into()),
        mjml: Some(MJML.into()),
        ..Default::default()
    };
    h.crm.campaigns().create_template(&h.admin, t).await.expect("template").id
}

async fn segment(h: &Harness, name: &str, filter: Option<&str>, ids: Vec<Uuid>) -> Uuid {
    let s = SegmentInput {
        name: Some(name.into()),
        filter: filter.map(str::to_string),
        contact_ids: Some(ids),
        ..Default::default()
    };
    h.crm.campaigns().create_segment(&h.admin, s).await.expect("segment").id
}

async fn campaign(h: &Harness, name: &str, template: Uuid, segments: Vec<Uuid>, exclude: Vec<Uuid>) -> Campaign {
    let input = CampaignInput {
        name: Some(name.into()),
        template_id: Some(template),
        segment_ids: Some(segments),
        exclude_segment_ids: Some(exclude),
        ..Default::default()
    };
    let c = h.crm.campaigns().create(&h.admin, input).await.expect("campaign");
    h.crm.campaigns().schedule(&h.admin, c.id, None).await.expect("schedule")
}

/// The segment of a run's contacts: those whose address ends with its tag.
fn run_filter(tag: &str) -> String {
    format!("email[like]:\"%.{tag}@campaign.test\"")
}

/// A 2,000-recipient campaign arrives once per recipient, personalised, as MJML-rendered
/// HTML with the RFC 8058 headers; excluded, suppressed and unsubscribed contacts get
/// nothing.
pub async fn campaign_reaches_each_recipient_once(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let tag = tag();
    let people = contacts(&h, &tag, 2000).await;
    let all = segment(&h, "Everyone", Some(&run_filter(&tag)), vec![]).await;
    let excluded: Vec<Uuid> = people[..50].iter().map(|c| c.id.as_uuid()).collect();
    let exclusion = segment(&h, "Do not mail", None, excluded).await;
    for c in &people[50..80] {
        let input = SuppressionInput {
            email: c.email.as_ref().map(|e| e.as_str().to_uppercase()).unwrap_or_default(),
            reason: None,
            detail: None,
        };
        h.crm.campaigns().suppress(&h.admin, input).await.expect("suppress");
    }
    for c in &people[80..100] {
        let input = ConsentInput { status: ConsentStatus::Unsubscribed, source: Some("phone".into()) };
        h.crm.campaigns().set_consent(&h.admin, c.id.as_uuid(), input).await.expect("consent");
    }
    let t = template(&h).await;
    let preview = h.crm.campaigns().preview_segment(&h.admin, all).await.expect("preview");
    assert_eq!(preview.count, 2000);
    assert_eq!(preview.sample.len(), 10);
    let c = campaign(&h, "Launch", t, vec![all], vec![exclusion]).await;
    let report = sender(&h.crm, sink(), 50).run_once().await.expect("send");
    assert_eq!(report.started, 1);
    assert_eq!(report.sent, 1900, "{report:?}");
    assert_eq!(report.finished, 1);
    let c = h.crm.campaigns().get(&h.admin, c.id).await.expect("campaign");
    assert_eq!(c.state, CampaignState::Sent);
    assert_eq!(c.audience, 1900);
    let stats = h.crm.campaigns().stats(&h.admin, c.id).await.expect("stats");
    assert_eq!((stats.audience, stats.sent, stats.queued, stats.interrupted), (1900, 1900, 0, 0), "{stats:?}");

    let addresses: HashSet<String> = (0..2000).map(|i| addr(&tag, i)).collect();
    let got = mail::messages_for(&addresses);
    for i in 0..2000 {
        let n = got.get(&addr(&tag, i)).map_or(0, Vec::len);
        let want = usize::from(i >= 100);
        assert_eq!(n, want, "{} got {n} message(s)", addr(&tag, i));
    }
    let raw = &got[&addr(&tag, 1234)][0];
    let unsubscribe = mail::header(raw, "List-Unsubscribe").expect("List-Unsubscribe");
    assert!(unsubscribe.starts_with(&format!("<{PUBLIC_URL}/u/")) && unsubscribe.ends_with('>'), "{unsubscribe}");
    assert_eq!(mail::header(raw, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    assert_eq!(mail::header(raw, "X-CRM-Campaign"), Some(c.id.to_string()));
    let m = mail::parse_raw(raw);
    assert_eq!(m.subject, "News for Ada1234");
    assert!(m.html.to_lowercase().starts_with("<!doctype html>"), "MJML renders a whole document");
    assert!(m.html.contains("Hello Ada1234!"), "personalised");
    assert!(m.html.contains("Your stage: lead."), "{}", m.html);
    assert!(m.html.contains("/t/o/"), "an open pixel");
    assert!(m.html.contains("/t/c/") && !m.html.contains("href=\"https://shop.example.com"), "links are tracked");
    assert!(m.html.contains("1 Test Street"), "the footer");
    assert!(m.text.contains("Hello Ada1234!") && m.text.contains("Unsubscribe: https://"), "{}", m.text);
    // Sending again finds nothing to do.
    let again = sender(&h.crm, sink(), 50).run_once().await.expect("again");
    assert_eq!(again.sent, 0);
}

fn token_after(s: &str, marker: &str) -> String {
    let at = s.find(marker).unwrap_or_else(|| panic!("no {marker} in {s}")) + marker.len();
    s[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_').collect()
}

fn forge(token: &str) -> String {
    let mut t: Vec<char> = token.chars().collect();
    let last = t.len() - 1;
    t[last] = if t[last] == 'A' { 'B' } else { 'A' };
    t.into_iter().collect()
}

/// One-click unsubscribe through the header's link, then the next campaign skips that
/// contact; forged unsubscribe and tracking links are refused; opens and clicks count
/// and land on the contact's timeline.
pub async fn unsubscribe_and_tracking_links(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let tag = tag();
    let people = contacts(&h, &tag, 3).await;
    let seg = segment(&h, "Three", Some(&run_filter(&tag)), vec![]).await;
    let t = template(&h).await;
    let first = campaign(&h, "First", t, vec![seg], vec![]).await;
    assert_eq!(sender(&h.crm, sink(), 10).run_once().await.expect("send").sent, 3);
    let addresses: HashSet<String> = (0..3).map(|i| addr(&tag, i)).collect();
    let got = mail::messages_for(&addresses);
    let (x, y) = (&got[&addr(&tag, 0)][0], &got[&addr(&tag, 1)][0]);

    // Unsubscribe: forged tokens do nothing, the real one works once and for all.
    let header = mail::header(x, "List-Unsubscribe").expect("header");
    let token = token_after(&header, "/u/");
    assert!(!h.crm.campaign_unsubscribe(&forge(&token), "one-click").await.expect("forged"));
    let y_html = mail::parse_raw(y).html;
    let open = token_after(&y_html, "/t/o/");
    assert!(!h.crm.campaign_unsubscribe(&open, "one-click").await.expect("an open token"), "tokens have one purpose");
    assert!(h.crm.campaign_unsubscribe(&token, "one-click").await.expect("unsubscribe"));
    assert!(h.crm.campaign_unsubscribe(&token, "one-click").await.expect("twice"), "idempotent");
    // Two at once (a mail client's one-click POST and the person's own click): both
    // succeed, one suppression and one consent change.
    let z = &got[&addr(&tag, 2)][0];
    let zt = token_after(&mail::header(z, "List-Unsubscribe").expect("header"), "/u/");
    let (a, b) = tokio::join!(h.crm.campaign_unsubscribe(&zt, "one-click"), h.crm.campaign_unsubscribe(&zt, "page"));
    assert!(a.expect("the first of two at once") && b.expect("the second of two at once"));
    let sup = h.crm.campaigns().suppressions(&h.admin).await.expect("suppressions");
    assert!(sup.iter().any(|s| s.email == addr(&tag, 0) && s.reason == SuppressionReason::Unsubscribed));
    let consent = h.crm.campaigns().consent(&h.admin, people[0].id.as_uuid()).await.expect("consent");
    assert_eq!(consent.status, ConsentStatus::Unsubscribed);

    // Opens and clicks: signed, and a click goes only where it was signed to go.
    assert!(!h.crm.campaign_open(&forge(&open)).await.expect("forged open"));
    assert!(h.crm.campaign_open(&open).await.expect("open"));
    assert!(h.crm.campaign_open(&open).await.expect("open again"));
    let click = token_after(&y_html, "/t/c/");
    let target = "https://shop.example.com/offer?utm=crm";
    assert_eq!(h.crm.campaign_click(&click, target).await.expect("click").as_deref(), Some(target));
    assert_eq!(
        h.crm.campaign_click(&click, "https://evil.example/").await.expect("other url"),
        None,
        "no open redirect"
    );
    assert_eq!(h.crm.campaign_click(&forge(&click), target).await.expect("forged"), None);
    let stats = h.crm.campaigns().stats(&h.admin, first.id).await.expect("stats");
    assert_eq!(
        (stats.opened, stats.opens, stats.clicked, stats.clicks, stats.unsubscribed),
        (1, 2, 1, 1, 2),
        "{stats:?}"
    );
    let timeline = h
        .crm
        .interactions()
        .list(
            &h.admin,
            ListQuery::new()
                .filter_str(EntityKind::Interaction, &format!("contactId[eq]:{}", people[1].id.as_uuid()))
                .expect("q"),
        )
        .await
        .expect("interactions");
    let subjects: Vec<String> = timeline.data.iter().filter_map(|i| i.subject.clone()).collect();
    assert_eq!(subjects.len(), 2, "one open and one click, however often: {subjects:?}");
    assert!(
        subjects.iter().any(|s| s.starts_with("Opened campaign")) && subjects.iter().any(|s| s.starts_with("Clicked"))
    );
    let history = h.crm.campaigns().contact_history(&h.admin, people[1].id.as_uuid()).await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].name, "First");

    // The next campaign skips the unsubscribed contacts.
    campaign(&h, "Second", t, vec![seg], vec![]).await;
    assert_eq!(sender(&h.crm, sink(), 10).run_once().await.expect("send").sent, 1);
    let got = mail::messages_for(&addresses);
    assert_eq!(got[&addr(&tag, 0)].len(), 1, "nothing after the unsubscribe");
    assert_eq!(got[&addr(&tag, 1)].len(), 2);
}

/// Hard bounces and complaints suppress, soft bounces are counted; a DSN names the
/// recipient through the returned headers.
pub async fn bounces_suppress_and_count(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let tag = tag();
    contacts(&h, &tag, 3).await;
    let seg = segment(&h, "Three", Some(&run_filter(&tag)), vec![]).await;
    let t = template(&h).await;
    let c = campaign(&h, "Bouncy", t, vec![seg], vec![]).await;
    sender(&h.crm, sink(), 10).run_once().await.expect("send");
    let addresses: HashSet<String> = (0..3).map(|i| addr(&tag, i)).collect();
    let got = mail::messages_for(&addresses);
    let rid = mail::header(&got[&addr(&tag, 0)][0], "X-CRM-Recipient").expect("recipient header");
    let report = format!(
        "From: MAILER-DAEMON@mx.test\r\nTo: bounces@crm.test.example\r\nSubject: failure\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nGone.\r\n\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\n\
Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nX-CRM-Recipient: {rid}\r\n\r\n--B--\r\n",
        addr(&tag, 0)
    );
    let hard = dsn::parse(report.as_bytes()).expect("a DSN");
    assert_eq!(hard[0].recipient_id.map(|u| u.to_string()), Some(rid));
    let soft = dsn::parse(
        report
            .replace("Action: failed", "Action: delayed")
            .replace("5.1.1", "4.4.7")
            .replace(&addr(&tag, 0), &addr(&tag, 1))
            .replace("X-CRM-Recipient", "X-Other")
            .as_bytes(),
    )
    .expect("a DSN");
    let complaint = vec![dsn::Bounce {
        email: addr(&tag, 2),
        kind: dsn::BounceKind::Complaint,
        status: None,
        diagnostic: None,
        recipient_id: None,
    }];
    assert_eq!(h.crm.campaign_bounces(&hard, "dsn").await.expect("hard"), 1);
    assert_eq!(h.crm.campaign_bounces(&soft, "dsn").await.expect("soft"), 1);
    assert_eq!(h.crm.campaign_bounces(&complaint, "webhook").await.expect("complaint"), 1);
    let stats = h.crm.campaigns().stats(&h.admin, c.id).await.expect("stats");
    assert_eq!((stats.hard_bounced, stats.soft_bounced, stats.complained, stats.delivered), (1, 1, 1, 2), "{stats:?}");
    let sup: HashMap<String, SuppressionReason> = h
        .crm
        .campaigns()
        .suppressions(&h.admin)
        .await
        .expect("list")
        .into_iter()
        .map(|s| (s.email, s.reason))
        .collect();
    assert_eq!(sup.get(&addr(&tag, 0)), Some(&SuppressionReason::Bounced));
    assert_eq!(sup.get(&addr(&tag, 1)), None, "a soft bounce does not suppress");
    assert_eq!(sup.get(&addr(&tag, 2)), Some(&SuppressionReason::Complained));
    campaign(&h, "Again", t, vec![seg], vec![]).await;
    assert_eq!(
        sender(&h.crm, sink(), 10).run_once().await.expect("send").sent,
        1,
        "only the soft bounce is mailed again"
    );
}

/// Sends through the sink until `ok` messages went, then hangs: a sender that dies
/// between the SMTP server's answer and the row update.
struct DiesAfter {
    inner: Arc<dyn Mailer>,
    ok: usize,
    sent: AtomicUsize,
}

#[async_trait]
impl Mailer for DiesAfter {
    async fn send(&self, m: &lettre::Message) -> crm_core::Result<()> {
        if self.sent.fetch_add(1, Ordering::SeqCst) >= self.ok {
            std::future::pending::<()>().await;
        }
        self.inner.send(m).await
    }
}

/// A sender killed mid-send: its campaign is taken over once its lease runs out, the rows
/// it left unconfirmed are never sent again, and every other recipient gets exactly one
/// message. The unknown outcomes are at most one batch.
pub async fn a_dead_sender_never_sends_twice(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let tag = tag();
    contacts(&h, &tag, 120).await;
    let seg = segment(&h, "All", Some(&run_filter(&tag)), vec![]).await;
    let t = template(&h).await;
    let c = campaign(&h, "Crashy", t, vec![seg], vec![]).await;
    let dying = Arc::new(DiesAfter { inner: sink(), ok: 45, sent: AtomicUsize::new(0) });
    let s = sender(&h.crm, dying.clone(), 10);
    let run = tokio::spawn(async move { s.run_once().await });
    let start = std::time::Instant::now();
    while dying.sent.load(Ordering::SeqCst) <= 45 {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the sender never reached its 46th message");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    run.abort();
    let _ = run.await;
    // Its lease holds the campaign: another sender waits for it to run out.
    assert_eq!(sender(&h.crm, sink(), 10).run_once().await.expect("blocked").sent, 0);
    h.clock.advance(chrono::Duration::seconds(61));
    let report = sender(&h.crm, sink(), 10).run_once().await.expect("resume");
    assert!(report.interrupted > 0 && report.interrupted <= 10, "at most one batch unknown: {report:?}");
    let stats = h.crm.campaigns().stats(&h.admin, c.id).await.expect("stats");
    assert_eq!(stats.sent + stats.interrupted, 120, "{stats:?}");
    assert_eq!(h.crm.campaigns().get(&h.admin, c.id).await.expect("c").state, CampaignState::Sent);
    let addresses: HashSet<String> = (0..120).map(|i| addr(&tag, i)).collect();
    let got = mail::messages_for(&addresses);
    let twice: Vec<&String> = got.iter().filter(|(_, m)| m.len() > 1).map(|(a, _)| a).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    let missing = 120 - got.len();
    assert!(missing <= stats.interrupted as usize, "{missing} missing, {} interrupted", stats.interrupted);
    let interrupted =
        h.crm.campaigns().recipients(&h.admin, c.id, Some(RecipientState::Interrupted), 100).await.expect("rows");
    assert_eq!(interrupted.len() as u64, stats.interrupted);
}

/// Fails every message with a temporary error.
struct Refuses(AtomicUsize);

#[async_trait]
impl Mailer for Refuses {
    async fn send(&self, _m: &lettre::Message) -> crm_core::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Error::internal_msg("451 4.3.0 try again later"))
    }
}

/// Too many SMTP errors pause a campaign with the reason; resuming sends everyone once.
pub async fn smtp_errors_pause_and_resume_continues(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let tag = tag();
    contacts(&h, &tag, 12).await;
    let seg = segment(&h, "All", Some(&run_filter(&tag)), vec![]).await;
    let t = template(&h).await;
    let c = campaign(&h, "Flaky", t, vec![seg], vec![]).await;
    let refuses = Arc::new(Refuses(AtomicUsize::new(0)));
    let mut config = CampaignConfig::new(PUBLIC_URL, "News <news@crm.test.example>".parse().expect("from"));
    config.per_second = 0.0;
    config.batch = 4;
    config.max_errors = 6;
    let report = CampaignSender::new(h.crm.clone(), refuses.clone(), config).run_once().await.expect("run");
    assert_eq!((report.paused, report.sent), (1, 0), "{report:?}");
    let paused = h.crm.campaigns().get(&h.admin, c.id).await.expect("c");
    assert_eq!(paused.state, CampaignState::Paused);
    assert!(paused.paused_reason.as_deref().is_some_and(|r| r.contains("8 SMTP errors")), "{:?}", paused.paused_reason);
    assert_eq!(refuses.0.load(Ordering::SeqCst), 8);
    let resumed = h.crm.campaigns().resume(&h.admin, c.id).await.expect("resume");
    assert_eq!((resumed.state, resumed.errors), (CampaignState::Sending, 0));
    assert_eq!(sender(&h.crm, sink(), 4).run_once().await.expect("send").sent, 12);
    let addresses: HashSet<String> = (0..12).map(|i| addr(&tag, i)).collect();
    let got = mail::messages_for(&addresses);
    assert!(addresses.iter().all(|a| got.get(a).map_or(0, Vec::len) == 1), "each once");
}

/// Bad inputs name their field; users read campaigns, managers make and send them.
pub async fn campaign_inputs_and_roles(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let user: Actor = h.user("camp_user", Role::User, None).await;
    let manager: Actor = h.user("camp_mgr", Role::Manager, None).await;
    let svc = h.crm.campaigns();
    let bad = svc
        .create_template(
            &h.admin,
            TemplateInput {
                name: Some("x".into()),
                subject: Some("Hi {{ contact.frist_name }}".into()),
                mjml: Some(MJML.replace("contact.lifecycle_stage", "deal.amount")),
                ..Default::default()
            },
        )
        .await;
    let e = assert_code(bad, "validation_failed");
    let text = e.to_string();
    assert!(text.contains("subject") && text.contains("contact.frist_name") && text.contains("deal.amount"), "{text}");
    let bad = svc
        .create_template(
            &h.admin,
            TemplateInput {
                name: Some("x".into()),
                subject: Some("s".into()),
                mjml: Some("<mjml><mj-body><mj-section>".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(assert_code(bad, "validation_failed").to_string().contains("mjml"));
    let bad = svc
        .create_segment(
            &h.admin,
            SegmentInput {
                name: Some("s".into()),
                filter: Some("nope[eq]:1".into()),
                company_filter: Some("alsonope[eq]:2".into()),
                ..Default::default()
            },
        )
        .await;
    let text = assert_code(bad, "validation_failed").to_string();
    assert!(text.contains("filter") && text.contains("companyFilter"), "{text}");
    let bad = svc
        .create(
            &h.admin,
            CampaignInput {
                name: Some("c".into()),
                template_id: Some(Uuid::now_v7()),
                segment_ids: Some(vec![Uuid::now_v7()]),
                ..Default::default()
            },
        )
        .await;
    let text = assert_code(bad, "validation_failed").to_string();
    assert!(text.contains("templateId") && text.contains("segmentIds[0]"), "{text}");

    let t = svc
        .create_template(
            &manager,
            TemplateInput {
                name: Some("m".into()),
                subject: Some("s".into()),
                mjml: Some(MJML.into()),
                ..Default::default()
            },
        )
        .await
        .expect("a manager makes templates");
    let s = svc
        .create_segment(
            &manager,
            SegmentInput { name: Some("all".into()), filter: Some(String::new()), ..Default::default() },
        )
        .await
        .expect("segment");
    let c = svc
        .create(
            &manager,
            CampaignInput {
                name: Some("m".into()),
                template_id: Some(t.id),
                segment_ids: Some(vec![s.id]),
                ..Default::default()
            },
        )
        .await
        .expect("campaign");
    assert_code(
        svc.create(
            &user,
            CampaignInput {
                name: Some("u".into()),
                template_id: Some(t.id),
                segment_ids: Some(vec![s.id]),
                ..Default::default()
            },
        )
        .await,
        "forbidden",
    );
    assert_code(svc.schedule(&user, c.id, None).await, "forbidden");
    assert_eq!(svc.list(&user).await.expect("users read").len(), 1);
    assert_code(svc.pause(&manager, c.id).await, "conflict");
    assert_code(svc.resume(&manager, c.id).await, "conflict");
    let sched = svc.schedule(&manager, c.id, None).await.expect("schedule");
    assert_eq!(sched.state, CampaignState::Scheduled);
    assert_code(svc.delete_template(&manager, t.id).await, "conflict");
    assert_code(svc.delete(&manager, c.id).await, "conflict");
    svc.cancel(&manager, c.id).await.expect("cancel");
    svc.delete(&manager, c.id).await.expect("delete a cancelled campaign");
    let audit = h
        .crm
        .audit()
        .list(
            &h.admin,
            ListQuery::new().filter_str(EntityKind::AuditEvent, &format!("entityId[eq]:{}", c.id)).expect("q"),
        )
        .await
        .expect("audit");
    let actions: Vec<String> = audit.data.iter().map(|e| e.action.clone()).collect();
    for want in ["campaign.created", "campaign.scheduled", "campaign.cancelled", "campaign.deleted"] {
        assert!(actions.iter().any(|a| a == want), "{want} audited: {actions:?}");
    }
}

/// Double opt-in: a pending contact gets no campaign until they follow the emailed link;
/// confirming lifts their earlier unsubscribe; a forged link confirms nothing.
pub async fn double_opt_in_confirms_by_link(backend: &dyn TestBackend) {
    let h = Harness::new(backend).await;
    let tag = tag();
    let people = contacts(&h, &tag, 2).await;
    let seg = segment(&h, "Two", Some(&run_filter(&tag)), vec![]).await;
    let t = template(&h).await;
    let s = sender(&h.crm, sink(), 10);
    // The first unsubscribes through a campaign, then asks to come back.
    campaign(&h, "Before", t, vec![seg], vec![]).await;
    assert_eq!(s.run_once().await.expect("send").sent, 2);
    let addresses: HashSet<String> = (0..2).map(|i| addr(&tag, i)).collect();
    let got = mail::messages_for(&addresses);
    let header = mail::header(&got[&addr(&tag, 0)][0], "List-Unsubscribe").expect("header");
    assert!(h.crm.campaign_unsubscribe(&token_after(&header, "/u/"), "one-click").await.expect("unsubscribe"));
    let pending = s.request_confirmation(&h.admin, people[0].id.as_uuid()).await.expect("request");
    assert_eq!(pending.status, ConsentStatus::Pending);
    let second = s.request_confirmation(&h.admin, people[1].id.as_uuid()).await.expect("request");
    assert_eq!(second.status, ConsentStatus::Pending);
    campaign(&h, "While pending", t, vec![seg], vec![]).await;
    assert_eq!(s.run_once().await.expect("send").sent, 0, "pending contacts get nothing");
    let got = mail::messages_for(&addresses);
    let ask = got[&addr(&tag, 0)]
        .iter()
        .map(|r| mail::parse_raw(r))
        .find(|m| m.subject == "Please confirm your subscription");
    let ask = ask.expect("a confirmation email");
    let token = token_after(&ask.text, "/c/");
    assert!(!h.crm.campaign_confirm(&forge(&token)).await.expect("forged"));
    assert!(h.crm.campaign_confirm(&token).await.expect("confirm"));
    let consent = h.crm.campaigns().consent(&h.admin, people[0].id.as_uuid()).await.expect("consent");
    assert_eq!((consent.status, consent.source.as_str()), (ConsentStatus::Subscribed, "double-opt-in"));
    let sup = h.crm.campaigns().suppressions(&h.admin).await.expect("list");
    assert!(!sup.iter().any(|x| x.email == addr(&tag, 0)), "the unsubscribe is lifted: {sup:?}");
    campaign(&h, "After", t, vec![seg], vec![]).await;
    assert_eq!(s.run_once().await.expect("send").sent, 1, "the confirmed contact only");
}
