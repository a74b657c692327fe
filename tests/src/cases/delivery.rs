//! The delivery engine: claims, webhooks (signed, retried, replayed, guarded),
//! notifications by preference.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use crm_core::delivery::webhook::{ChatSender, HttpConfig, WebhookChannel};
use crm_core::delivery::{signing, ssrf::Guard, DeliveryEngine, EngineConfig};
use crm_core::mail::{MailConfig, NotificationMailChannel};
use crm_core::model::delivery::{ChatProvider, Delivery, DeliveryState, Notification};
use crm_core::outbox::OutboxEvent;
use crm_core::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
use crm_core::schema::to_row;
use crm_core::service::{ContactPatch, DealPatch, NewContact, NewDeal, NewTask, UserPatch, WebhookInput};
use crm_core::{Changeset, Claim, CrmConfig, DealStage, EntityKind, ListQuery, Role, StoreExt, Value, Write};
use serde_json::json;
use uuid::Uuid;

use super::{assert_code, fields};
use crate::receiver::Receiver;
use crate::{mail, unique_email, Harness, TestBackend, PUBLIC_URL};

fn loopback() -> CrmConfig {
    CrmConfig { outgoing: Guard::allowing(vec!["127.0.0.1/32".parse().expect("cidr")]), ..Default::default() }
}

fn engine(h: &Harness, config: EngineConfig) -> DeliveryEngine {
    let mail_config = MailConfig {
        public_url: PUBLIC_URL.into(),
        from: "crm-rs <no-reply@crm.test.example>".parse().expect("from"),
        app_name: "crm-rs".into(),
    };
    DeliveryEngine::new(h.crm.clone())
        .config(config)
        .channel(Arc::new(WebhookChannel::new(HttpConfig::default())))
        .channel(Arc::new(NotificationMailChannel::new(Arc::new(mail::sink_mailer()), mail_config)))
}

async fn deliveries(h: &Harness, consumer: &str) -> Vec<Delivery> {
    let k = EntityKind::Delivery;
    let q = StoreQuery {
        filter: Some(Filter::Cmp(Cmp {
            column: k.require_column("consumer").expect("column"),
            pred: Predicate::Eq(Value::Text(consumer.into())),
        })),
        sort: vec![SortKey { column: k.require_column("id").expect("column"), direction: Direction::Asc }],
        limit: 1000,
        include_deleted: true,
    };
    h.crm.store().list_as::<Delivery>(&q).await.expect("deliveries")
}

/// Four workers claiming at once never take the same delivery, every due one is taken,
/// and a claimed one is not taken again while its lease runs.
pub async fn claims_never_overlap(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let now = h.crm.now();
    let mut writes = Vec::new();
    for i in 0..40 {
        let d = Delivery {
            id: Uuid::now_v7(),
            event_id: Uuid::now_v7(),
            consumer: "webhook".into(),
            target_id: None,
            topic: "contact.created".into(),
            payload: json!({"i": i}),
            state: DeliveryState::Pending,
            attempts: 0,
            available_at: now - Duration::seconds(i + 1),
            created_at: now,
            delivered_at: None,
            last_error: None,
            last_status: None,
            version: 1,
        };
        writes.push(Write::Insert { kind: EntityKind::Delivery, row: to_row(&d).expect("row") });
    }
    h.crm.store().apply(Changeset { writes, audit: vec![] }).await.expect("insert");
    let k = EntityKind::Delivery;
    let claim = Claim {
        kind: k,
        query: StoreQuery {
            filter: Some(Filter::And(vec![
                Filter::Cmp(Cmp {
                    column: k.require_column("state").expect("column"),
                    pred: Predicate::Eq(Value::Text("pending".into())),
                }),
                Filter::Cmp(Cmp {
                    column: k.require_column("available_at").expect("column"),
                    pred: Predicate::Lte(Value::Timestamp(now)),
                }),
            ])),
            sort: vec![SortKey {
                column: k.require_column("available_at").expect("column"),
                direction: Direction::Asc,
            }],
            limit: 15,
            include_deleted: true,
        },
        lease_column: "available_at",
        until: now + Duration::minutes(5),
        count_column: Some("attempts"),
    };
    let store = b.store();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, claim) = (store.clone(), claim.clone());
        tasks.push(tokio::spawn(async move { store.claim(&claim).await.expect("claim") }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for row in t.await.expect("task") {
            let d: Delivery = crm_core::schema::from_row(row).expect("delivery");
            assert_eq!((d.attempts, d.version), (1, 2), "taken once: {d:?}");
            assert_eq!(d.available_at, now + Duration::minutes(5));
            assert!(seen.insert(d.id), "a delivery claimed twice: {}", d.id);
            total += 1;
        }
    }
    let all: Vec<Delivery> = h.crm.store().list_as(&StoreQuery::all(EntityKind::Delivery, 100)).await.expect("all");
    let leased = all.iter().filter(|d| d.attempts == 1).count();
    assert_eq!(total, 40, "every due delivery is taken ({leased} leased in the store)");
    assert!(store.claim(&claim).await.expect("claim").is_empty(), "leased ones wait");
}

/// Python's reference verifier (`standardwebhooks` from PyPI) accepts the signature, and
/// refuses a wrong secret, an altered body, a moved timestamp and a late replay.
fn verify_with_reference(secret: &str, r: &crate::receiver::Received) {
    let python = std::env::var("CRM_TEST_WEBHOOK_PYTHON").unwrap_or_else(|_| {
        panic!("CRM_TEST_WEBHOOK_PYTHON is not set: run scripts/test (it installs standardwebhooks)")
    });
    // Besides accepting the delivery, the reference refuses it with a wrong secret, an
    // altered body, a moved timestamp, and when replayed ten minutes later.
    let script = r#"
import base64, os, sys, datetime as dt
import standardwebhooks.webhooks as sw
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
headers = {k: os.environ["H_" + k.replace("-", "_").upper()] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
body = sys.stdin.buffer.read()
hook = Webhook(os.environ["SECRET"])
hook.verify(body, headers)
def refused(check, what):
    try:
        check()
    except WebhookVerificationError:
        return
    sys.exit("the reference accepted " + what)
other = Webhook("whsec_" + base64.b64encode(b"not the secret of this webhook!!").decode())
refused(lambda: other.verify(body, headers), "a wrong secret")
refused(lambda: hook.verify(body + b" ", headers), "an altered body")
moved = dict(headers, **{"webhook-timestamp": str(int(headers["webhook-timestamp"]) + 60)})
refused(lambda: hook.verify(body, moved), "a moved timestamp")
class Later(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return dt.datetime.now(tz) + dt.timedelta(minutes=10)
sw.datetime = Later
refused(lambda: hook.verify(body, headers), "a replay ten minutes later")
print("verified")
"#;
    let mut child = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .env("SECRET", secret)
        .env("H_WEBHOOK_ID", r.header("webhook-id").expect("id"))
        .env("H_WEBHOOK_TIMESTAMP", r.header("webhook-timestamp").expect("timestamp"))
        .env("H_WEBHOOK_SIGNATURE", r.header("webhook-signature").expect("signature"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the reference verifier");
    use std::io::Write as _;
    child.stdin.take().expect("stdin").write_all(&r.body).expect("body");
    let out = child.wait_with_output().expect("verifier");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("verified"),
        "the reference verifier refused it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A subscription gets its events signed per Standard Webhooks (checked by the
/// reference implementation); a 503 with `Retry-After` is retried after it with the
/// same `webhook-id`; too many failures make it dead; an admin replays it; a rotation
/// signs with both secrets; events it did not ask for, and private ones, never reach it.
pub async fn webhooks_are_signed_retried_and_replayed(b: &dyn TestBackend) {
    let h = Harness::with_config(b, loopback()).await;
    let rx = Receiver::start().await;
    let hooks = h.crm.webhooks();
    let input = WebhookInput {
        url: Some(rx.url("/hooks/crm?src=crm-rs")),
        events: Some(vec!["contact.*".into()]),
        description: Some("sync".into()),
        ..Default::default()
    };
    let made = hooks.create(&h.admin, input).await.expect("subscribe");
    assert!(made.secret.starts_with("whsec_"));
    let user = h.user("hook-user", Role::User, None).await;
    assert_code(hooks.list(&user).await, "forbidden");
    let eng = engine(&h, EngineConfig { max_attempts: 3, ..Default::default() });

    let ann = h
        .crm
        .contacts()
        .create(
            &h.admin,
            NewContact { name: "Ann Hook".into(), email: Some(unique_email("ann")), ..Default::default() },
        )
        .await
        .expect("contact");
    // A deal and a password reset are not for this subscription.
    h.crm.deals().create(&h.admin, NewDeal { name: "Big".into(), ..Default::default() }).await.expect("deal");
    let report = eng.run_once().await.expect("run");
    assert_eq!(report.sent, 1, "{report:?}");
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let first = &got[0];
    assert_eq!(first.path, "/hooks/crm?src=crm-rs");
    assert_eq!(first.header("content-type"), Some("application/json"));
    let body = first.json();
    assert_eq!(body["type"], "contact.created");
    assert_eq!(body["data"]["id"], json!(ann.id));
    assert_eq!(body["data"]["changes"]["name"]["after"], "Ann Hook");
    assert!(body["data"]["changed"].as_array().is_some_and(|c| c.contains(&json!("name"))), "{body}");
    // The values came from the audit event: the dispatched outbox row still has none.
    let q = StoreQuery::all(EntityKind::OutboxEvent, 100);
    let events: Vec<OutboxEvent> = h.crm.store().list_as(&q).await.expect("outbox");
    let sent = events.iter().find(|e| e.topic == "contact.created").expect("the event");
    assert!(sent.delivered_at.is_some() && sent.payload.get("changes").is_none(), "{:?}", sent.payload);
    assert_eq!(body["data"]["auditId"], sent.payload["auditId"]);
    let id = first.header("webhook-id").expect("webhook-id").to_string();
    let ts: i64 = first.header("webhook-timestamp").expect("timestamp").parse().expect("seconds");
    assert!((ts - chrono::Utc::now().timestamp()).abs() < 60, "the wall clock: {ts}");
    assert_eq!(
        first.header("webhook-signature"),
        Some(signing::sign(&made.secret, &id, ts, &first.body).expect("sign").as_str())
    );
    verify_with_reference(&made.secret, first);

    // The receiver is busy: it is asked again after its Retry-After, with the same id.
    rx.answer(&[(503, Some(120))]);
    let patch = ContactPatch { job_title: Some(Some("CEO".into())), ..Default::default() };
    h.crm.contacts().update(&h.admin, ann.id, patch).await.expect("update");
    let report = eng.run_once().await.expect("run");
    assert_eq!((report.sent, report.retried), (0, 1), "{report:?}");
    let pending =
        deliveries(&h, "webhook").await.into_iter().find(|d| d.state == DeliveryState::Pending).expect("pending");
    assert_eq!(pending.last_status, Some(503));
    assert_eq!(pending.available_at, h.crm.now() + Duration::seconds(120));
    assert_eq!(eng.run_once().await.expect("run").sent, 0, "not before Retry-After");
    h.clock.advance(Duration::seconds(121));
    assert_eq!(eng.run_once().await.expect("run").sent, 1);
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].header("webhook-id"), got[2].header("webhook-id"), "one idempotency key per event");
    assert_ne!(got[1].header("webhook-id"), Some(id.as_str()));

    // Three failures: dead. The admin API shows it and replays it.
    rx.answer(&[(500, None), (500, None), (500, None)]);
    h.crm.contacts().delete(&h.admin, ann.id, None).await.expect("delete");
    for _ in 0..3 {
        eng.run_once().await.expect("run");
        h.clock.advance(Duration::hours(2));
    }
    let dead = deliveries(&h, "webhook").await.into_iter().find(|d| d.state == DeliveryState::Dead).expect("dead");
    assert_eq!(dead.attempts, 3);
    assert!(dead.last_error.as_deref().is_some_and(|e| e.contains("HTTP 500")), "{dead:?}");
    let q = ListQuery::new().filter_str(EntityKind::Delivery, "state[eq]:dead").expect("filter");
    let page = h.crm.deliveries().list(&h.admin, q, None).await.expect("admin list");
    assert_eq!(page.data.len(), 1);
    assert_code(h.crm.deliveries().replay(&user, dead.id).await, "forbidden");
    let replayed = h.crm.deliveries().replay(&h.admin, dead.id).await.expect("replay");
    assert_eq!((replayed.state, replayed.attempts), (DeliveryState::Pending, 0));
    assert_eq!(eng.run_once().await.expect("run").sent, 1);
    let log = hooks.deliveries(&h.admin, made.webhook.id, ListQuery::new()).await.expect("log");
    assert_eq!(log.data.len(), 3);
    assert!(log.data.iter().all(|d| d.state == DeliveryState::Delivered));

    // Rotation: both secrets sign during the overlap.
    let rotated = hooks.rotate_secret(&h.admin, made.webhook.id).await.expect("rotate");
    assert_ne!(rotated.secret, made.secret);
    h.crm.contacts().restore(&h.admin, ann.id).await.expect("restore");
    eng.run_once().await.expect("run");
    let last = rx.received().pop().expect("a request");
    let sig = last.header("webhook-signature").expect("signature");
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    verify_with_reference(&rotated.secret, &last);
    verify_with_reference(&made.secret, &last);
    // Bad input names its field.
    let bad =
        WebhookInput { url: Some("ftp://x".into()), events: Some(vec!["user.created".into()]), ..Default::default() };
    let e = assert_code(hooks.create(&h.admin, bad).await, "validation_failed");
    assert_eq!(fields(&e), vec!["url", "events[0]"]);
    // Paused: nothing more.
    let pause = WebhookInput { active: Some(false), ..Default::default() };
    hooks.update(&h.admin, made.webhook.id, pause).await.expect("pause");
    let before = rx.received().len();
    h.crm.contacts().create(&h.admin, NewContact { name: "Bo".into(), ..Default::default() }).await.expect("contact");
    eng.run_once().await.expect("run");
    assert_eq!(rx.received().len(), before);
}

/// Outgoing calls never reach internal addresses unless allow-listed: literal ones
/// are refused when saved, names resolving to them (localhost) die at send.
pub async fn webhooks_refuse_internal_addresses(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let hooks = h.crm.webhooks();
    for url in
        ["http://10.1.2.3/x", "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/", "http://127.0.0.1/"]
    {
        let input = WebhookInput { url: Some(url.into()), events: Some(vec!["*".into()]), ..Default::default() };
        let e = assert_code(hooks.create(&h.admin, input).await, "validation_failed");
        assert_eq!(fields(&e), vec!["url"], "{url}");
    }
    let rx = Receiver::start().await;
    let url = format!("http://localhost:{}/x", rx.addr.port());
    let input = WebhookInput { url: Some(url), events: Some(vec!["*".into()]), ..Default::default() };
    hooks.create(&h.admin, input).await.expect("a name is checked when sending");
    h.crm.contacts().create(&h.admin, NewContact { name: "Cy".into(), ..Default::default() }).await.expect("contact");
    let report = engine(&h, EngineConfig::default()).run_once().await.expect("run");
    assert_eq!(report.abandoned, 1, "{report:?}");
    assert!(rx.received().is_empty(), "nothing reached the internal address");
    let dead = deliveries(&h, "webhook").await.pop().expect("delivery");
    assert_eq!(dead.state, DeliveryState::Dead);
    assert!(dead.last_error.as_deref().is_some_and(|e| e.contains("internal address")), "{dead:?}");
}

/// A user who set their password (invited ones are pending, and get no notifications).
async fn active_user(h: &Harness, name: &str, team: Option<crm_core::TeamId>) -> crm_core::User {
    let new = crm_core::service::NewUser {
        username: name.into(),
        email: unique_email(name),
        role: Some(Role::User),
        team_id: team,
        password: Some("correct horse battery staple".into()),
    };
    h.crm.users().create(&h.admin, new).await.expect("user")
}

async fn notes(h: &Harness, a: &crm_core::Actor) -> Vec<Notification> {
    h.crm.notifications().list(a, ListQuery::new(), false).await.expect("list").data
}

/// Task assignments, deal outcomes and records handed over reach their user by the
/// channels they chose; the actor hears nothing of their own change.
pub async fn notifications_follow_preferences(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let team = h.team("sales").await;
    let boss = h.user("boss", Role::Manager, Some(team)).await;
    let rep_user = active_user(&h, "rep", Some(team)).await;
    let email = rep_user.email.as_str().to_string();
    let rep = rep_user.actor();
    let eng = engine(&h, EngineConfig::default());

    // Defaults: in-app and email.
    let task = NewTask { name: "Call Ann".into(), assigned_user: Some(rep.user_id), ..Default::default() };
    let t = h.crm.tasks().create(&boss, task).await.expect("task");
    eng.run_once().await.expect("run");
    let got: Vec<Notification> = notes(&h, &rep).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].topic, "task.assigned");
    assert_eq!(got[0].title, "Task assigned to you: Call Ann");
    assert_eq!(got[0].link.as_deref(), Some(format!("/tasks/{}", t.id).as_str()));
    assert!(notes(&h, &boss).await.is_empty(), "the actor is not told");
    let mail = mail::wait_for(&email, 1).await.remove(0);
    assert_eq!(mail.subject, "Task assigned to you: Call Ann");
    assert!(mail.text.contains(&format!("{PUBLIC_URL}/tasks/{}", t.id)), "{}", mail.text);

    // Email off for assignments, French: in-app only, in French.
    let mut settings = crm_core::model::JsonObject::new();
    settings.insert("language".into(), json!("fr"));
    settings.insert(
        "notificationPreferences".into(),
        json!({"task.assigned": {"email": false}, "deal.won": {"in_app": false}}),
    );
    h.crm
        .users()
        .update(&rep, rep.user_id, UserPatch { settings: Some(settings), ..Default::default() })
        .await
        .expect("prefs");
    h.crm
        .tasks()
        .create(&boss, NewTask { name: "Relancer".into(), assigned_user: Some(rep.user_id), ..Default::default() })
        .await
        .expect("task");
    // A deal of the rep won by the boss: email only (in-app off).
    let deal =
        h.crm.deals().create(&rep, NewDeal { name: "Gros contrat".into(), ..Default::default() }).await.expect("deal");
    let won = DealPatch { stage: Some(DealStage::ClosedWon), ..Default::default() };
    h.crm.deals().update(&boss, deal.id, won).await.expect("won");
    let report = eng.run_once().await.expect("run");
    assert_eq!(report.sent, 1, "one email (deal.won): {report:?}");
    let got = notes(&h, &rep).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].title, "Tâche assignée : Relancer");
    let mails = mail::wait_for(&email, 2).await;
    assert_eq!(mails[1].subject, "Affaire gagnée : Gros contrat");
    let emails = deliveries(&h, "email").await;
    assert_eq!(emails.iter().map(|d| d.topic.as_str()).collect::<Vec<_>>(), ["task.assigned", "deal.won"]);

    // Their own change tells them nothing; a record handed to them does.
    h.crm
        .tasks()
        .create(&rep, NewTask { name: "Mine".into(), assigned_user: Some(rep.user_id), ..Default::default() })
        .await
        .expect("own");
    let c = h
        .crm
        .contacts()
        .create(&boss, NewContact { name: "Handed".into(), owner_id: Some(rep.user_id), ..Default::default() })
        .await
        .expect("contact");
    eng.run_once().await.expect("run");
    let got = notes(&h, &rep).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[0].topic.as_str(), got[0].entity_id), ("contact.assigned", Some(c.id.as_uuid())));

    // Unread, read, read all; nobody reads another's.
    assert_eq!(h.crm.notifications().unread_count(&rep).await.expect("count"), 3);
    assert_code(h.crm.notifications().read(&boss, got[0].id).await, "not_found");
    let read = h.crm.notifications().read(&rep, got[0].id).await.expect("read");
    assert!(read.read_at.is_some());
    let unread = h.crm.notifications().list(&rep, ListQuery::new(), true).await.expect("unread").data;
    assert_eq!(unread.len(), 2);
    assert_eq!(h.crm.notifications().read_all(&rep).await.expect("all"), 2);
    assert_eq!(h.crm.notifications().unread_count(&rep).await.expect("count"), 0);
}

/// Two dispatchers racing over one outbox: each event becomes its deliveries once.
pub async fn dispatch_survives_a_second_dispatcher(b: &dyn TestBackend) {
    let h = Harness::with_config(b, loopback()).await;
    let rx = Receiver::start().await;
    let input = WebhookInput { url: Some(rx.url("/")), events: Some(vec!["*".into()]), ..Default::default() };
    h.crm.webhooks().create(&h.admin, input).await.expect("subscribe");
    for i in 0..30 {
        h.crm
            .contacts()
            .create(&h.admin, NewContact { name: format!("C{i}"), ..Default::default() })
            .await
            .expect("contact");
    }
    let (a, b2) = (engine(&h, EngineConfig::default()), engine(&h, EngineConfig::default()));
    let (ra, rb) =
        tokio::join!(async { a.dispatch_once().await.expect("a") }, async { b2.dispatch_once().await.expect("b") });
    assert!(ra + rb >= 30, "every event dispatched: {ra} + {rb}");
    let hooks = deliveries(&h, "webhook").await;
    let events: HashSet<Uuid> = hooks.iter().map(|d| d.event_id).collect();
    assert_eq!(hooks.len(), 30);
    assert_eq!(events.len(), 30);
    let (sa, sb) =
        tokio::join!(async { a.deliver_once().await.expect("a") }, async { b2.deliver_once().await.expect("b") });
    assert_eq!(sa.sent + sb.sent, 30);
    let ids: Vec<String> =
        rx.received().iter().map(|r| r.header("webhook-id").unwrap_or_default().to_string()).collect();
    assert_eq!(ids.len(), 30);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 30, "each event delivered once");
}

/// Chat notifications: a user's own Slack and Teams webhooks get the events they switched
/// on (Block Kit; an Adaptive Card in a Teams `message`), a team's channel its deals won;
/// only admins set a team's; an internal address is refused naming `url`.
pub async fn chat_posts_reach_slack_and_teams(b: &dyn TestBackend) {
    use crm_core::service::{ChannelOwner, ChatChannelInput};
    let h = Harness::with_config(b, loopback()).await;
    let rx = Receiver::start().await;
    let team = h.team("sales").await;
    let boss = h.user("chat-boss", Role::Manager, Some(team)).await;
    let rep = active_user(&h, "chat-rep", Some(team)).await.actor();
    let chats = h.crm.chat_channels();
    let set = ChatChannelInput::webhook;
    chats.set(&rep, ChannelOwner::User(rep.user_id), "slack", set(rx.url("/slack/rep"))).await.expect("slack");
    let teams =
        chats.set(&rep, ChannelOwner::User(rep.user_id), "teams", set(rx.url("/teams/rep"))).await.expect("teams");
    assert_eq!((teams.provider.as_str(), teams.host.as_str()), ("teams", "127.0.0.1"));
    assert_code(chats.set(&rep, ChannelOwner::Team(team), "slack", set(rx.url("/x"))).await, "forbidden");
    assert_code(chats.set(&rep, ChannelOwner::User(boss.user_id), "slack", set(rx.url("/x"))).await, "forbidden");
    let e = assert_code(
        chats.set(&rep, ChannelOwner::User(rep.user_id), "pigeon", set(rx.url("/x"))).await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["provider"]);
    let both = chats.set(&rep, ChannelOwner::User(rep.user_id), "pigeon", set("x".into())).await;
    assert_eq!(fields(&assert_code(both, "validation_failed")), vec!["provider", "url"], "every bad field at once");
    let e = assert_code(
        chats.set(&h.admin, ChannelOwner::Team(team), "slack", set("http://10.0.0.7/hook".into())).await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["url"]);
    chats.set(&h.admin, ChannelOwner::Team(team), "slack", set(rx.url("/slack/team"))).await.expect("team slack");
    let mut settings = crm_core::model::JsonObject::new();
    settings.insert("notificationPreferences".into(), json!({"task.assigned": {"slack": true, "teams": true}}));
    h.crm
        .users()
        .update(&rep, rep.user_id, UserPatch { settings: Some(settings), ..Default::default() })
        .await
        .expect("prefs");

    let eng = engine(&h, EngineConfig::default())
        .channel(Arc::new(ChatSender::new(ChatProvider::Slack, HttpConfig::default(), PUBLIC_URL)))
        .channel(Arc::new(ChatSender::new(ChatProvider::Teams, HttpConfig::default(), PUBLIC_URL)));
    let task = h
        .crm
        .tasks()
        .create(
            &boss,
            NewTask { name: "Call <Ann> & co".into(), assigned_user: Some(rep.user_id), ..Default::default() },
        )
        .await
        .expect("task");
    let deal =
        h.crm.deals().create(&boss, NewDeal { name: "Big one".into(), ..Default::default() }).await.expect("deal");
    h.crm
        .deals()
        .update(&boss, deal.id, DealPatch { stage: Some(DealStage::ClosedWon), ..Default::default() })
        .await
        .expect("won");
    eng.run_once().await.expect("run");
    let got = rx.received();
    let at =
        |path: &str| got.iter().find(|r| r.path == path).unwrap_or_else(|| panic!("nothing at {path}: {got:?}")).json();
    let link = format!("{PUBLIC_URL}/tasks/{}", task.id);

    let slack = at("/slack/rep");
    assert_eq!(slack["text"], "Task assigned to you: Call <Ann> & co");
    assert_eq!(slack["blocks"][0]["type"], "section");
    assert_eq!(slack["blocks"][0]["text"]["type"], "mrkdwn");
    assert_eq!(
        slack["blocks"][0]["text"]["text"],
        "*Task assigned to you: Call &lt;Ann&gt; &amp; co*\nchat-boss assigned you the task “Call &lt;Ann&gt; &amp; co”."
    );
    assert_eq!(slack["blocks"][1]["type"], "actions");
    assert_eq!(slack["blocks"][1]["elements"][0]["type"], "button");
    assert_eq!(slack["blocks"][1]["elements"][0]["text"]["type"], "plain_text");
    assert_eq!(slack["blocks"][1]["elements"][0]["url"], json!(link));

    let teams = at("/teams/rep");
    assert_eq!(teams["type"], "message");
    let attachment = &teams["attachments"][0];
    assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
    let card = &attachment["content"];
    assert_eq!((card["type"].as_str(), card["version"].as_str()), (Some("AdaptiveCard"), Some("1.4")));
    assert_eq!(card["body"][0]["type"], "TextBlock");
    assert_eq!(card["body"][0]["text"], "Task assigned to you: Call <Ann> & co");
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(card["actions"][0]["url"], json!(link));
    assert!(teams.get("@type").is_none() && teams.get("sections").is_none(), "no connector MessageCard");

    let team_post = at("/slack/team");
    assert_eq!(team_post["text"], "Deal won: Big one");
    assert_eq!(got.len(), 3, "the rep's deal.stage_changed is not switched on for chat: {got:?}");
    check_chat_bodies(&got);

    // A removed webhook: nothing more; a removed team channel, likewise.
    chats.delete(&rep, ChannelOwner::User(rep.user_id), "slack").await.expect("remove");
    assert_eq!(chats.list(&rep, ChannelOwner::User(rep.user_id)).await.expect("list").len(), 1);
    assert_code(chats.delete(&rep, ChannelOwner::User(rep.user_id), "slack").await, "not_found");
}

/// Reminders: an open task due within its assignee's reminder window gets one `task.due`,
/// whatever the passes or workers; a task due later gets its own when its time comes; a
/// done one none; a new due date a new reminder.
pub async fn task_reminders_come_once(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let rep_user = active_user(&h, "remind", None).await;
    let rep = rep_user.actor();
    let mut settings = crm_core::model::JsonObject::new();
    settings.insert("reminderMinutes".into(), json!(120));
    h.crm
        .users()
        .update(&rep, rep.user_id, UserPatch { settings: Some(settings.clone()), ..Default::default() })
        .await
        .expect("window");
    settings.insert("reminderMinutes".into(), json!(1));
    let e = assert_code(
        h.crm.users().update(&rep, rep.user_id, UserPatch { settings: Some(settings), ..Default::default() }).await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["settings.reminderMinutes"]);
    let now = h.crm.now();
    let task = |name: &str, due: chrono::DateTime<chrono::Utc>| NewTask {
        name: name.into(),
        due_date: Some(crm_core::DateOrTime::Time(due)),
        assigned_user: Some(rep.user_id),
        ..Default::default()
    };
    let soon = h.crm.tasks().create(&h.admin, task("Soon", now + Duration::minutes(90))).await.expect("soon");
    h.crm.tasks().create(&h.admin, task("Later", now + Duration::hours(3))).await.expect("later");
    let done = h.crm.tasks().create(&h.admin, task("Done", now + Duration::minutes(30))).await.expect("done");
    h.crm.tasks().complete(&h.admin, done.id).await.expect("complete");
    let (a, b2) = (engine(&h, EngineConfig::default()), engine(&h, EngineConfig::default()));
    let (ra, rb) =
        tokio::join!(async { a.remind_once().await.expect("a") }, async { b2.remind_once().await.expect("b") });
    assert_eq!(ra + rb, 1, "one reminder, whichever worker wrote it");
    assert_eq!(a.remind_once().await.expect("again"), 0);
    a.run_once().await.expect("deliver");
    let due: Vec<Notification> = notes(&h, &rep).await.into_iter().filter(|n| n.topic == "task.due").collect();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].title.as_str(), due[0].entity_id), ("Task due soon: Soon", Some(soon.id.as_uuid())));
    // An hour on: "Later" is within two hours.
    h.clock.advance(Duration::hours(1) + Duration::minutes(1));
    assert_eq!(a.remind_once().await.expect("later"), 1);
    // A new due date is a new reminder.
    let patch = crm_core::service::TaskPatch {
        due_date: Some(Some(crm_core::DateOrTime::Time(h.crm.now() + Duration::minutes(20)))),
        ..Default::default()
    };
    h.crm.tasks().update(&h.admin, soon.id, patch).await.expect("moved");
    assert_eq!(a.remind_once().await.expect("moved"), 1);
    a.run_once().await.expect("deliver");
    let due = notes(&h, &rep).await.into_iter().filter(|n| n.topic == "task.due").count();
    assert_eq!(due, 3);
}

/// Checks what Slack and Teams receivers got against the platforms' published shapes
/// (`tests/python/check_chat.py`: Slack's SDK for Block Kit, Microsoft's Adaptive Card
/// 1.4 JSON schema), with the Python that `scripts/test` prepares.
fn check_chat_bodies(got: &[crate::receiver::Received]) {
    let python = std::env::var("CRM_TEST_WEBHOOK_PYTHON").unwrap_or_else(|_| {
        panic!("CRM_TEST_WEBHOOK_PYTHON is not set: run scripts/test (it installs slack_sdk and the card schema)")
    });
    let messages: Vec<serde_json::Value> = got
        .iter()
        .filter_map(|r| {
            let provider = if r.path.contains("slack") {
                "slack"
            } else if r.path.contains("teams") {
                "teams"
            } else {
                return None;
            };
            let mut body = r.json();
            // A bot's post carries where it goes besides the message itself.
            if let Some(o) = body.as_object_mut() {
                o.remove("channel");
                o.remove("unfurl_links");
            }
            Some(json!({"provider": provider, "body": body}))
        })
        .collect();
    assert!(!messages.is_empty(), "no chat message to check");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/check_chat.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the chat checker");
    use std::io::Write as _;
    child.stdin.take().expect("stdin").write_all(&serde_json::to_vec(&messages).expect("json")).expect("write");
    let out = child.wait_with_output().expect("checker");
    assert!(
        out.status.success(),
        "a chat message does not match its platform's schema: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sets a user's settings (as the user).
async fn set_settings(h: &Harness, who: &crm_core::Actor, settings: serde_json::Value) {
    let settings = settings.as_object().cloned().expect("an object");
    h.crm
        .users()
        .update(who, who.user_id, UserPatch { settings: Some(settings), ..Default::default() })
        .await
        .expect("settings");
}

/// Digests: events set to `digest` wait until the user's digest hour in their time zone,
/// then go out as one email and one Teams card listing them all, once; in-app ones come
/// at once; what comes after waits for the next day. The app refuses a digest.
pub async fn digests_gather_a_day(b: &dyn TestBackend) {
    use crm_core::model::settings::UserSettings;
    use crm_core::service::{ChannelOwner, ChatChannelInput};
    let h = Harness::with_config(b, loopback()).await;
    let rx = Receiver::start().await;
    let rep_user = active_user(&h, "digest-rep", None).await;
    let email = rep_user.email.as_str().to_string();
    let rep = rep_user.actor();
    h.crm
        .chat_channels()
        .set(&rep, ChannelOwner::User(rep.user_id), "teams", ChatChannelInput::webhook(rx.url("/teams/rep")))
        .await
        .expect("teams");
    h.crm
        .chat_channels()
        .set(&rep, ChannelOwner::User(rep.user_id), "slack", ChatChannelInput::webhook(rx.url("/slack/rep")))
        .await
        .expect("slack");
    let refused = h
        .crm
        .users()
        .update(
            &rep,
            rep.user_id,
            UserPatch {
                settings: json!({"notificationPreferences": {"task.assigned": {"in_app": "digest"}}, "digestHour": 24})
                    .as_object()
                    .cloned(),
                ..Default::default()
            },
        )
        .await;
    let mut named = fields(&assert_code(refused, "validation_failed"));
    named.sort();
    assert_eq!(named, ["settings.digestHour", "settings.notificationPreferences.task.assigned.in_app"]);
    set_settings(
        &h,
        &rep,
        json!({
            "timezone": "Asia/Tokyo",
            "digestHour": 9,
            "notificationPreferences": {
                "task.assigned": {"email": "digest", "teams": "digest", "in_app": "immediate"},
                "deal.won": {"email": "digest", "slack": "digest"},
            },
        }),
    )
    .await;
    let settings = UserSettings { timezone: "Asia/Tokyo".into(), digest_hour: 9, ..Default::default() };
    let due = settings.next_digest(h.crm.now());
    let eng = engine(&h, EngineConfig::default())
        .channel(Arc::new(ChatSender::new(ChatProvider::Slack, HttpConfig::default(), PUBLIC_URL)))
        .channel(Arc::new(ChatSender::new(ChatProvider::Teams, HttpConfig::default(), PUBLIC_URL)));

    for name in ["Call Ann", "Send <the> quote"] {
        let task = NewTask { name: name.into(), assigned_user: Some(rep.user_id), ..Default::default() };
        h.crm.tasks().create(&h.admin, task).await.expect("task");
    }
    let deal =
        h.crm.deals().create(&rep, NewDeal { name: "Big one".into(), ..Default::default() }).await.expect("deal");
    let won = DealPatch { stage: Some(DealStage::ClosedWon), ..Default::default() };
    h.crm.deals().update(&h.admin, deal.id, won).await.expect("won");
    let report = eng.run_once().await.expect("run");
    assert_eq!((report.sent, report.digests), (0, 0), "nothing is sent before the digest hour: {report:?}");
    assert_eq!(rx.count(), 0);
    assert_eq!(notes(&h, &rep).await.len(), 3, "in-app comes at once (deal.won's in-app is on by default)");
    let held = deliveries(&h, "digest").await;
    assert_eq!(held.len(), 6, "2 tasks × (email, teams) + deal.won × (email, slack): {held:?}");
    assert!(held.iter().all(|d| d.available_at == due && d.target_id == Some(rep.user_id.as_uuid())), "{held:?}");

    h.clock.set(due - Duration::minutes(1));
    assert_eq!(eng.run_once().await.expect("run").digests, 0, "a minute early");
    h.clock.set(due + Duration::seconds(30));
    let second = engine(&h, EngineConfig::default());
    let (r1, r2) = tokio::join!(eng.run_once(), second.digest_once());
    let (r1, r2) = (r1.expect("run"), r2.expect("second worker"));
    assert_eq!(r1.digests + r2, 3, "one email, one Teams and one Slack digest, whichever worker gathers them");
    eng.run_once().await.expect("deliver");
    let mails = mail::wait_for(&email, 1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "Your digest: 3 notifications");
    for expected in ["Call Ann", "Send <the> quote", "Deal won: Big one", &format!("{PUBLIC_URL}/deals/{}", deal.id)] {
        assert!(mails[0].text.contains(expected), "{expected} in {}", mails[0].text);
    }
    assert!(mails[0].html.contains("Send &lt;the&gt; quote"), "{}", mails[0].html);
    let got = rx.received();
    assert_eq!(got.len(), 2, "{got:?}");
    let at = |path: &str| got.iter().find(|r| r.path == path).unwrap_or_else(|| panic!("nothing at {path}")).json();
    let slack = at("/slack/rep");
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert_eq!(
        slack["blocks"][1]["text"]["text"],
        json!(format!("*<{PUBLIC_URL}/deals/{}|Deal won: Big one>*\nadmin marked the deal “Big one” as won.", deal.id))
    );
    let card = &at("/teams/rep")["attachments"][0]["content"];
    assert_eq!(card["body"][0]["text"], "Your digest: 2 notifications");
    assert_eq!(card["body"].as_array().map(Vec::len), Some(3));
    assert_eq!(card["body"][1]["type"], "Container");
    check_chat_bodies(&got);
    assert!(deliveries(&h, "digest").await.iter().all(|d| d.state == DeliveryState::Delivered));
    let sent = deliveries(&h, "email").await;
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].topic.as_str(), sent[0].event_id), ("digest", sent[0].id), "a digest is its own event");

    // Nothing twice; what comes now waits for tomorrow's digest.
    assert_eq!(eng.run_once().await.expect("again").digests, 0);
    let task = NewTask { name: "Tomorrow".into(), assigned_user: Some(rep.user_id), ..Default::default() };
    h.crm.tasks().create(&h.admin, task).await.expect("task");
    eng.run_once().await.expect("run");
    let later: Vec<Delivery> =
        deliveries(&h, "digest").await.into_iter().filter(|d| d.state == DeliveryState::Pending).collect();
    assert_eq!(later.len(), 2);
    assert!(later.iter().all(|d| d.available_at == due + Duration::days(1)), "{later:?}");
    assert_eq!(mail::wait_for(&email, 1).await.len(), 1);
}

/// Every notification event × channel × frequency (immediate, digest, off; in-app
/// immediate or off): three rounds, each with a new user whose preferences shift by one,
/// so that each cell takes each value once. What is planned for the user is exactly what
/// their preferences say; security emails go whatever they say.
pub async fn preference_matrix(b: &dyn TestBackend) {
    use crm_core::model::settings::{Frequency, CHANNELS, NOTIFICATION_EVENTS};
    use crm_core::service::{ChannelOwner, ChatChannelInput};
    let h = Harness::with_config(b, loopback()).await;
    let rx = Receiver::start().await;
    let eng = engine(&h, EngineConfig::default());
    let freqs = [Frequency::Off, Frequency::Immediate, Frequency::Digest];
    let want = |event: usize, channel: usize, round: usize| -> Frequency {
        if CHANNELS[channel] == "in_app" {
            [Frequency::Off, Frequency::Immediate][(event + round) % 2]
        } else {
            freqs[(event + channel + round) % 3]
        }
    };
    let mut seen: HashSet<(usize, usize, &str)> = HashSet::new();
    for round in 0..3 {
        let rep_user = active_user(&h, &format!("matrix-{round}"), None).await;
        let rep = rep_user.actor();
        let mut prefs = serde_json::Map::new();
        for (i, event) in NOTIFICATION_EVENTS.iter().enumerate() {
            let mut per = serde_json::Map::new();
            for (j, channel) in CHANNELS.iter().enumerate() {
                if *event == "account.security" && *channel == "email" {
                    continue;
                }
                per.insert((*channel).into(), json!(want(i, j, round).as_str()));
            }
            prefs.insert((*event).into(), per.into());
        }
        set_settings(&h, &rep, json!({"notificationPreferences": prefs})).await;
        let chats = h.crm.chat_channels();
        for provider in ["slack", "teams"] {
            let input = ChatChannelInput::webhook(rx.url(&format!("/{provider}/{round}")));
            chats.set(&rep, ChannelOwner::User(rep.user_id), provider, input).await.expect("chat");
        }
        let k = EntityKind::ChatChannel;
        let q = StoreQuery {
            filter: Some(Filter::Cmp(Cmp {
                column: k.require_column("scope_id").expect("column"),
                pred: Predicate::Eq(Value::Uuid(rep.user_id.as_uuid())),
            })),
            sort: vec![],
            limit: 10,
            include_deleted: true,
        };
        let chat_ids: HashSet<Uuid> = h
            .crm
            .store()
            .list_as::<crm_core::model::delivery::ChatChannel>(&q)
            .await
            .expect("channels")
            .iter()
            .map(|c| c.id)
            .collect();

        // One of each event for the rep, by someone else (task.due by the scheduler).
        let assigned = NewTask { name: "Assigned".into(), assigned_user: Some(rep.user_id), ..Default::default() };
        h.crm.tasks().create(&h.admin, assigned).await.expect("task.assigned");
        let due = NewTask {
            name: "Due".into(),
            due_date: Some(crm_core::DateOrTime::Time(h.crm.now() + Duration::minutes(30))),
            assigned_user: Some(rep.user_id),
            ..Default::default()
        };
        h.crm.tasks().create(&rep, due).await.expect("own task");
        let handed = NewDeal { name: "Handed".into(), owner_id: Some(rep.user_id), ..Default::default() };
        let deal = h.crm.deals().create(&h.admin, handed).await.expect("deal.assigned");
        let moved = DealPatch { stage: Some(DealStage::Proposal), ..Default::default() };
        h.crm.deals().update(&h.admin, deal.id, moved).await.expect("deal.stage_changed");
        let won = DealPatch { stage: Some(DealStage::ClosedWon), ..Default::default() };
        h.crm.deals().update(&h.admin, deal.id, won).await.expect("deal.won");
        let own = h.crm.deals().create(&rep, NewDeal { name: "Own".into(), ..Default::default() }).await.expect("own");
        let lost = DealPatch { stage: Some(DealStage::ClosedLost), ..Default::default() };
        h.crm.deals().update(&h.admin, own.id, lost).await.expect("deal.lost");
        let contact = NewContact { name: "Handed".into(), owner_id: Some(rep.user_id), ..Default::default() };
        let c = h.crm.contacts().create(&h.admin, contact).await.expect("contact.assigned");
        let patch = ContactPatch { phone_number: Some(Some("+33 1 23 45 67 89".into())), ..Default::default() };
        h.crm.contacts().update(&h.admin, c.id, patch).await.expect("record.changed");
        let meta = crm_core::RequestMeta::default();
        let pair = h.crm.auth().login(&format!("matrix-{round}"), "correct horse battery staple", meta.clone()).await;
        let me = h.crm.auth().authenticate(&pair.expect("login").access_token, meta).await.expect("auth");
        h.crm
            .auth()
            .change_password(&me, "correct horse battery staple", "another long passphrase 7")
            .await
            .expect("account.security");
        let billed = crm_core::service::NewCompany {
            name: format!("Billed {round}"),
            owner_id: Some(rep.user_id),
            ..Default::default()
        };
        let billed = h.crm.companies().create(&h.admin, billed).await.expect("company");
        let b = h.crm.billing();
        let line =
            crm_core::billing::LineInput { name: Some("Seat".into()), unit_price: Some(1000), ..Default::default() };
        let draft = crm_core::billing::DocumentInput {
            company_id: Some(billed.id.as_uuid()),
            currency: Some("EUR".into()),
            lines: Some(vec![line]),
            ..Default::default()
        };
        let inv = b.create_invoice(&h.admin, draft).await.expect("invoice").invoice;
        b.issue_invoice(&h.admin, inv.id, crm_core::billing::IssueInput::default()).await.expect("issue");
        let pay = crm_core::billing::PaymentInput { amount: Some(1000), ..Default::default() };
        b.record_payment(&h.admin, inv.id, pay).await.expect("invoice.paid");
        eng.remind_once().await.expect("task.due");
        eng.dispatch_once().await.expect("dispatch");

        let inbox = notes(&h, &rep).await;
        let all: Vec<Delivery> =
            h.crm.store().list_as(&StoreQuery::all(EntityKind::Delivery, 10_000)).await.expect("deliveries");
        for (i, event) in NOTIFICATION_EVENTS.iter().enumerate() {
            for (j, channel) in CHANNELS.iter().enumerate() {
                let expected = if *event == "account.security" && *channel == "email" {
                    // The security email is the account email itself (consumer `mail`).
                    Frequency::Off
                } else {
                    want(i, j, round)
                };
                seen.insert((i, j, expected.as_str()));
                let mine = |d: &&Delivery| match *channel {
                    "email" => d.target_id == Some(rep.user_id.as_uuid()),
                    _ => d.target_id.is_some_and(|t| chat_ids.contains(&t)),
                };
                let immediate = all.iter().filter(|d| d.consumer == *channel && d.topic == *event).filter(mine).count()
                    + inbox.iter().filter(|n| *channel == "in_app" && n.topic == *event).count();
                let digest = all
                    .iter()
                    .filter(|d| {
                        d.consumer == "digest"
                            && d.topic == *event
                            && d.target_id == Some(rep.user_id.as_uuid())
                            && d.payload["channel"] == *channel
                    })
                    .count();
                let got = match (immediate, digest) {
                    (0, 0) => Frequency::Off,
                    (1, 0) => Frequency::Immediate,
                    (0, 1) => Frequency::Digest,
                    other => panic!("{event} on {channel}: {other:?} (immediate, digest) in round {round}"),
                };
                assert_eq!(got, expected, "{event} on {channel} in round {round}");
            }
        }
        let security = all.iter().filter(|d| d.consumer == "mail" && d.target_id == Some(rep.user_id.as_uuid()));
        assert!(security.count() >= 1, "the security email goes whatever the preferences");
    }
    let cells = NOTIFICATION_EVENTS.len() * CHANNELS.len();
    let covered: HashSet<(usize, usize)> = seen.iter().map(|(i, j, _)| (*i, *j)).collect();
    assert_eq!(covered.len(), cells);
    // Each chat and email cell took all three values, each in-app cell both of its.
    assert_eq!(seen.len(), (NOTIFICATION_EVENTS.len() - 1) * (3 * 3 + 2) + (2 * 3 + 2 + 1));
}

/// A Slack channel set with a bot token posts through `chat.postMessage` (bearer token,
/// the channel in the body); Slack's `ok: false` answers are read: `ratelimited` is
/// retried, `channel_not_found` gives up at once. The token is never shown back.
pub async fn slack_bots_post_with_chat_post_message(b: &dyn TestBackend) {
    use crm_core::service::{ChannelOwner, ChatChannelInput};
    let h = Harness::with_config(b, loopback()).await;
    let api = Receiver::start().await;
    let rep = active_user(&h, "bot-rep", None).await.actor();
    let chats = h.crm.chat_channels();
    let me = ChannelOwner::User(rep.user_id);
    let bad = chats.set(&rep, me, "slack", ChatChannelInput::bot("hunter2", " ")).await;
    let mut named = fields(&assert_code(bad, "validation_failed"));
    named.sort();
    assert_eq!(named, ["channel", "token"]);
    let both = ChatChannelInput { url: Some(api.url("/x")), ..ChatChannelInput::bot("xoxb-1", "C1") };
    assert_eq!(fields(&assert_code(chats.set(&rep, me, "slack", both).await, "validation_failed")), ["token"]);
    let teams_bot = chats.set(&rep, me, "teams", ChatChannelInput::bot("xoxb-1", "C1")).await;
    assert_eq!(fields(&assert_code(teams_bot, "validation_failed")), ["token"]);
    let token = "xoxb-1111-2222-abcdefghijkl";
    let view = chats.set(&rep, me, "slack", ChatChannelInput::bot(token, "C0123456789")).await.expect("bot");
    assert_eq!((view.via.as_str(), view.channel.as_deref()), ("bot", Some("C0123456789")));
    assert!(!serde_json::to_string(&view).expect("json").contains("xoxb"), "the token is never shown");
    set_settings(&h, &rep, json!({"notificationPreferences": {"task.assigned": {"slack": "immediate"}}})).await;

    let eng = engine(&h, EngineConfig::default()).channel(Arc::new(
        ChatSender::new(ChatProvider::Slack, HttpConfig::default(), PUBLIC_URL).slack_api(&api.url("/api")),
    ));
    api.reply(&[(200, r#"{"ok":false,"error":"ratelimited"}"#), (200, r#"{"ok":true,"ts":"1.2"}"#)]);
    let task = NewTask { name: "Call Ann".into(), assigned_user: Some(rep.user_id), ..Default::default() };
    h.crm.tasks().create(&h.admin, task).await.expect("task");
    let first = eng.run_once().await.expect("run");
    assert_eq!(first.retried, 1, "ratelimited is retried: {first:?}");
    h.clock.advance(Duration::minutes(5));
    assert_eq!(eng.run_once().await.expect("retry").sent, 1);
    let got = api.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].path, "/api/chat.postMessage");
    assert_eq!(got[1].header("authorization"), Some(format!("Bearer {token}").as_str()));
    let body = got[1].json();
    assert_eq!(
        (body["channel"].as_str(), body["text"].as_str()),
        (Some("C0123456789"), Some("Task assigned to you: Call Ann"))
    );
    assert_eq!(body["blocks"][0]["type"], "section");
    check_chat_bodies(&[crate::receiver::Received { path: "/slack".into(), ..got[1].clone() }]);
    assert!(got[0].body == got[1].body, "the retry sends the same message");

    // A channel the bot is not in: dead at once, Slack's error kept.
    api.reply(&[(200, r#"{"ok":false,"error":"channel_not_found"}"#)]);
    let task = NewTask { name: "Again".into(), assigned_user: Some(rep.user_id), ..Default::default() };
    h.crm.tasks().create(&h.admin, task).await.expect("task");
    assert_eq!(eng.run_once().await.expect("run").abandoned, 1);
    let dead = deliveries(&h, "slack").await.pop().expect("delivery");
    assert_eq!(dead.state, DeliveryState::Dead);
    assert!(dead.last_error.as_deref().is_some_and(|e| e.contains("channel_not_found")), "{dead:?}");
    // Back to a webhook: the token is dropped.
    let view = chats.set(&rep, me, "slack", ChatChannelInput::webhook(api.url("/hook"))).await.expect("webhook");
    assert_eq!((view.via.as_str(), view.channel), ("webhook", None));
}

/// An account email (here a password reset) is dispatched before a backlog of other
/// events: someone is waiting for its link.
pub async fn account_mail_goes_before_a_backlog(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let contacts: Vec<NewContact> =
        (0..300).map(|i| NewContact { name: format!("Backlog {i}"), ..Default::default() }).collect();
    h.crm.contacts().create_many(&h.admin, contacts).await.expect("backlog");
    h.clock.advance(Duration::seconds(1));
    let meta = crm_core::RequestMeta::default();
    h.crm.auth().forgot_password(h.admin_user.email.as_str(), meta).await.expect("forgot");
    let eng = engine(&h, EngineConfig::default());
    let dispatched = eng.dispatch_once().await.expect("dispatch");
    assert!(dispatched <= 250, "one pass takes a bounded batch: {dispatched}");
    let mails = deliveries(&h, "mail").await;
    assert_eq!(mails.len(), 1, "the reset email is queued in the first pass, before 300 older events");
}
