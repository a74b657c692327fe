//! Authentication: registration and email confirmation through a real SMTP sink,
//! login, lockout, sessions and refresh rotation, access-token attacks, password change,
//! forgot and reset, invitations, suspension. Every security case also checks its audit
//! event.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use crm_core::audit::AuditEvent;
use crm_core::auth::TokenRejection;
use crm_core::query::StoreQuery;
use crm_core::service::*;
use crm_core::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value as Json};

use super::{assert_code, fields, q};
use crate::mail::wait_for;
use crate::{unique_email, Harness, TestBackend, PUBLIC_URL, TEST_JWT_SECRET, TEST_KID};

const PASSWORD: &str = "correct horse battery staple";
const OTHER_PASSWORD: &str = "violet submarine orchestra 77";

fn meta() -> RequestMeta {
    RequestMeta { request_id: None, ip: Some("127.0.0.1".into()), user_agent: Some("conformance".into()) }
}

/// The newest audit events, newest first.
async fn events(h: &Harness, n: u32) -> Vec<AuditEvent> {
    h.crm.audit().list(&h.admin, ListQuery::new().limit(n)).await.expect("audit list").data
}

/// The newest audit event with this action.
async fn last_event(h: &Harness, action: &str) -> AuditEvent {
    let page = h.crm.audit().list(&h.admin, q(EntityKind::AuditEvent, &format!("action[eq]:{action}"))).await;
    page.expect("audit list").data.into_iter().next().unwrap_or_else(|| panic!("no {action} audit event"))
}

/// Registers, confirms through the emailed link, and answers the account.
async fn registered(h: &Harness, name: &str) -> User {
    let email = unique_email(name);
    let reg = Registration { username: name.into(), email: email.clone(), password: PASSWORD.into() };
    h.crm.auth().register(reg, meta()).await.expect("register");
    h.deliver_mail().await;
    let mail = wait_for(&email, 1).await.remove(0);
    h.crm.auth().verify_email(&mail.token(), meta()).await.expect("verify email")
}

async fn login(h: &Harness, who: &str) -> TokenPair {
    h.crm.auth().login(who, PASSWORD, meta()).await.expect("login")
}

/// Registration leaves the account pending; the emailed link (built from the public
/// URL, in text and HTML) activates it once; then login, authenticate, refresh, logout.
pub async fn register_confirm_login_refresh_logout(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let email = unique_email("ann");
    let reg = Registration { username: "ann".into(), email: email.clone(), password: PASSWORD.into() };
    let user = h.crm.auth().register(reg, meta()).await.expect("register");
    assert_eq!(user.status, UserStatus::Pending);
    assert_code(h.crm.auth().login("ann", PASSWORD, meta()).await, "email_not_verified");
    assert_eq!(last_event(&h, "auth.login_failed").await.changes["reason"], "email_not_verified");

    let report = h.deliver_mail().await;
    assert_eq!(report.sent, 1, "{report:?}");
    let mail = wait_for(&email, 1).await.remove(0);
    assert_eq!(mail.subject, "Confirm your email address");
    assert!(mail.link().starts_with(&format!("{PUBLIC_URL}/verify-email?token=")), "{}", mail.link());
    assert!(mail.html.contains(&mail.token()), "the HTML part carries the link too");
    assert!(mail.raw.contains("multipart/alternative"));

    let active = h.crm.auth().verify_email(&mail.token(), meta()).await.expect("verify");
    assert_eq!(active.status, UserStatus::Active);
    assert!(active.email_verified_at.is_some());
    assert_code(h.crm.auth().verify_email(&mail.token(), meta()).await, "validation_failed");

    // By user name or email, any case.
    let pair = h.crm.auth().login(&email.to_uppercase(), PASSWORD, meta()).await.expect("login by email");
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);
    let who = h.crm.auth().authenticate(&pair.access_token, meta()).await.expect("authenticate");
    assert_eq!(who.actor.user_id, user.id);
    assert_eq!(who.session_id, pair.session_id);
    assert_eq!(last_event(&h, "auth.login").await.changes["sessionId"], json!(pair.session_id));

    let next = h.crm.auth().refresh(&pair.refresh_token, meta()).await.expect("refresh");
    assert_ne!(next.refresh_token, pair.refresh_token);
    assert_eq!(next.session_id, pair.session_id);
    h.crm.auth().authenticate(&next.access_token, meta()).await.expect("new access token works");

    h.crm.auth().logout(&next.refresh_token, meta()).await.expect("logout");
    assert_code(h.crm.auth().refresh(&next.refresh_token, meta()).await, "unauthenticated");
    assert_code(h.crm.auth().authenticate(&next.access_token, meta()).await, "unauthenticated");
    assert_eq!(last_event(&h, "auth.logout").await.actor_id, Some(user.id));
    assert_eq!(last_event(&h, "auth.token_rejected").await.changes["reason"], "session_revoked");
}

/// A refresh token used twice revokes its whole session: the thief's and the owner's
/// tokens both stop working, and the reuse is audited.
pub async fn refresh_reuse_revokes_the_family(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    registered(&h, "rita").await;
    let first = login(&h, "rita").await;
    let second = h.crm.auth().refresh(&first.refresh_token, meta()).await.expect("refresh");
    // The first token again: reuse.
    assert_code(h.crm.auth().refresh(&first.refresh_token, meta()).await, "unauthenticated");
    let ev = last_event(&h, "auth.refresh_reused").await;
    assert_eq!(ev.changes["sessionId"], json!(first.session_id));
    assert_code(h.crm.auth().refresh(&second.refresh_token, meta()).await, "unauthenticated");
    assert_code(h.crm.auth().authenticate(&second.access_token, meta()).await, "unauthenticated");
    // Another session of the same user is untouched.
    let other = login(&h, "rita").await;
    h.crm.auth().refresh(&other.refresh_token, meta()).await.expect("other session refreshes");

    // Two refreshes racing with one token: one wins, the other counts as reuse.
    let fresh = login(&h, "rita").await;
    let race = |crm: Crm, t: String| tokio::spawn(async move { crm.auth().refresh(&t, meta()).await });
    let (a, b2) = (race(h.crm.clone(), fresh.refresh_token.clone()), race(h.crm.clone(), fresh.refresh_token.clone()));
    let (a, b2) = (a.await.expect("join"), b2.await.expect("join"));
    assert_eq!(usize::from(a.is_ok()) + usize::from(b2.is_ok()), 1, "exactly one refresh wins");
}

fn b64(v: &Json) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn sign(header: &Json, claims: &Json, secret: &[u8]) -> String {
    let msg = format!("{}.{}", b64(header), b64(claims));
    let sig =
        jsonwebtoken::crypto::sign(msg.as_bytes(), &EncodingKey::from_secret(secret), Algorithm::HS256).expect("sign");
    format!("{msg}.{sig}")
}

fn claims_of(token: &str) -> Json {
    let part = token.split('.').nth(1).expect("claims part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("claims json")
}

/// Forged and damaged access tokens are refused, each with its reason in the audit log.
pub async fn access_token_attacks_are_refused_and_audited(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    registered(&h, "tom").await;
    let pair = login(&h, "tom").await;
    let good = claims_of(&pair.access_token);
    let hs = json!({"alg": "HS256", "typ": "JWT", "kid": TEST_KID});
    // A correctly signed copy of the real token still works: the forgeries below differ
    // only in what they test.
    h.crm.auth().authenticate(&sign(&hs, &good, TEST_JWT_SECRET), meta()).await.expect("re-signed token");

    let now = good["iat"].as_i64().expect("iat");
    let with = |k: &str, v: Json| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT", "kid": TEST_KID})), b64(&good));
    let rs_header = json!({"alg": "RS256", "typ": "JWT", "kid": TEST_KID});
    let rs_confusion = format!("{}.{}", b64(&rs_header), pair.access_token.split_once('.').expect("dot").1);
    let jwk = json!({"alg": "HS256", "kid": TEST_KID, "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(b"attacker key 0123456789012345678")}});
    let jku = json!({"alg": "HS256", "kid": TEST_KID, "jku": "http://127.0.0.1:9/keys.json"});
    // One character in the middle of the signature (the last one's spare bits may not count).
    let at = pair.access_token.len() - 10;
    let swap = if &pair.access_token[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swap}{}", &pair.access_token[..at], &pair.access_token[at + 1..]);
    let cases: Vec<(&str, String, TokenRejection)> = vec![
        ("alg=none", none, TokenRejection::Algorithm),
        ("HS/RS confusion", rs_confusion, TokenRejection::Algorithm),
        ("embedded jwk", sign(&jwk, &good, b"attacker key 0123456789012345678"), TokenRejection::EmbeddedKey),
        ("jku header", sign(&jku, &good, TEST_JWT_SECRET), TokenRejection::EmbeddedKey),
        (
            "unknown kid",
            sign(&json!({"alg": "HS256", "kid": "nope"}), &good, TEST_JWT_SECRET),
            TokenRejection::UnknownKey,
        ),
        ("tampered signature", tampered, TokenRejection::Signature),
        ("wrong key", sign(&hs, &good, b"another secret another secret another"), TokenRejection::Signature),
        ("expired", sign(&hs, &with("exp", json!(now - 120)), TEST_JWT_SECRET), TokenRejection::Expired),
        ("not yet valid", sign(&hs, &with("nbf", json!(now + 600)), TEST_JWT_SECRET), TokenRejection::NotYetValid),
        ("wrong audience", sign(&hs, &with("aud", json!("someone-else")), TEST_JWT_SECRET), TokenRejection::Audience),
        ("wrong issuer", sign(&hs, &with("iss", json!("evil")), TEST_JWT_SECRET), TokenRejection::Issuer),
        ("garbage", "not.a.jwt".into(), TokenRejection::Malformed),
    ];
    for (what, token, reason) in cases {
        assert_code(h.crm.auth().authenticate(&token, meta()).await, "unauthenticated");
        let ev = &events(&h, 1).await[0];
        assert_eq!(ev.action, "auth.token_rejected", "{what}");
        assert_eq!(ev.changes["reason"], reason.as_str(), "{what}");
        assert_eq!(ev.request["ip"], "127.0.0.1", "{what}");
    }
    // The real token, once its time is up.
    h.clock.advance(Duration::minutes(16));
    assert_code(h.crm.auth().authenticate(&pair.access_token, meta()).await, "unauthenticated");
    assert_eq!(events(&h, 1).await[0].changes["reason"], "expired");
}

/// Five wrong passwords lock the account for a minute, then for twice as long after
/// each further failure; the right password does not get through a lock; the lock ends
/// on its own (fake clock).
pub async fn lockout_and_its_expiry(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let user = registered(&h, "lou").await;
    for i in 1..=5 {
        assert_code(h.crm.auth().login("lou", "wrong wrong wrong", meta()).await, "unauthenticated");
        assert_eq!(last_event(&h, "auth.login_failed").await.changes["failedLogins"], i);
    }
    let locked = last_event(&h, "auth.locked").await;
    assert_eq!(locked.actor_id, Some(user.id));
    assert_eq!(locked.changes["seconds"], 60);
    let e = assert_code(h.crm.auth().login("lou", PASSWORD, meta()).await, "account_locked");
    assert!(matches!(e, Error::AccountLocked { retry_after_secs: 60 }), "{e:?}");
    assert_eq!(last_event(&h, "auth.login_failed").await.changes["reason"], "locked");

    h.clock.advance(Duration::seconds(61));
    // One more failure after the lock: two minutes now.
    assert_code(h.crm.auth().login("lou", "still wrong wrong", meta()).await, "unauthenticated");
    assert_eq!(last_event(&h, "auth.locked").await.changes["seconds"], 120);
    h.clock.advance(Duration::seconds(121));
    login(&h, "lou").await;
    let fresh: User = h.crm.users().get(&h.admin, user.id).await.expect("user");
    assert_eq!((fresh.failed_logins, fresh.locked_until), (0, None), "a login starts the count again");
}

/// A storm of guesses from one address makes that address wait, not the account's owner
/// elsewhere; guesses from many addresses together reach the account's ceiling, and then
/// every address waits; failures decay; names of no account are counted in the store, so
/// another engine on it (a restart, a replica) sees them.
pub async fn lockout_waits_per_client_under_an_account_ceiling(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    registered(&h, "lea").await;
    let from = |ip: &str| RequestMeta { request_id: None, ip: Some(ip.into()), user_agent: None };
    let wrong = "wrong wrong wrong";
    for _ in 0..5 {
        assert_code(h.crm.auth().login("lea", wrong, from("198.51.100.7")).await, "unauthenticated");
    }
    assert_code(h.crm.auth().login("lea", PASSWORD, from("198.51.100.7")).await, "account_locked");
    assert_eq!(last_event(&h, "auth.locked").await.changes["scope"], "client");
    h.crm.auth().login("lea", PASSWORD, from("203.0.113.5")).await.expect("the owner, from elsewhere");
    assert_code(h.crm.auth().login("lea", PASSWORD, from("198.51.100.7")).await, "account_locked");

    // Four guesses from each of five addresses: the account's ceiling (20).
    for i in 0..5 {
        for _ in 0..4 {
            let r = h.crm.auth().login("lea", wrong, from(&format!("192.0.2.{i}"))).await;
            assert_code(r, "unauthenticated");
        }
    }
    assert_eq!(last_event(&h, "auth.locked").await.changes["scope"], "account");
    let e = assert_code(h.crm.auth().login("lea", PASSWORD, from("203.0.113.77")).await, "account_locked");
    assert!(matches!(e, Error::AccountLocked { retry_after_secs: 60 }), "{e:?}");

    // One failure is forgotten every ten minutes: a trickle never keeps the name waiting.
    h.clock.advance(Duration::hours(4));
    h.crm.auth().login("lea", PASSWORD, from("198.51.100.7")).await.expect("all forgotten");
    for _ in 0..10 {
        assert_code(h.crm.auth().login("lea", wrong, from("198.51.100.8")).await, "unauthenticated");
        h.clock.advance(Duration::minutes(30));
    }
    h.crm.auth().login("lea", PASSWORD, from("198.51.100.8")).await.expect("a guess every half hour blocks nothing");

    // A name of no account: counted in the store, seen by another engine on it.
    for _ in 0..5 {
        assert_code(h.crm.auth().login("nobody-at-all", wrong, from("198.51.100.9")).await, "unauthenticated");
    }
    let other = Crm::builder(b.store()).clock(h.clock.clone()).build();
    assert_code(other.auth().login("nobody-at-all", wrong, from("198.51.100.9")).await, "account_locked");
    other.auth().purge_expired().await.expect("purge");
    h.clock.advance(Duration::days(2));
    other.auth().purge_expired().await.expect("purge");
    assert_eq!(h.crm.store().count(EntityKind::LoginThrottle, None, true).await.expect("count"), 0);
}

/// Unknown accounts answer exactly like wrong passwords, lock out the same way, and
/// "forgot password" says the same for both; only the real account gets an email.
pub async fn no_account_enumeration(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let user = registered(&h, "nina").await;
    let wrong = h.crm.auth().login("nina", "wrong wrong wrong", meta()).await.expect_err("wrong password");
    let unknown = h.crm.auth().login("nobody-here", "wrong wrong wrong", meta()).await.expect_err("unknown");
    assert_eq!((wrong.code(), wrong.to_string()), (unknown.code(), unknown.to_string()));
    assert_eq!(last_event(&h, "auth.login_failed").await.changes["reason"], "unknown_account");
    for _ in 0..4 {
        let _ = h.crm.auth().login("nobody-here", "wrong wrong wrong", meta()).await;
    }
    let e = assert_code(h.crm.auth().login("nobody-here", "wrong wrong wrong", meta()).await, "account_locked");
    assert!(matches!(e, Error::AccountLocked { retry_after_secs: 60 }), "unknown names lock like real ones: {e:?}");

    let ghost = unique_email("ghost");
    let known = h.crm.auth().forgot_password(user.email.as_str(), meta()).await;
    let unknown = h.crm.auth().forgot_password(&ghost, meta()).await;
    assert!(known.is_ok() && unknown.is_ok(), "{known:?} {unknown:?}");
    h.deliver_mail().await;
    let mails = wait_for(user.email.as_str(), 2).await;
    assert_eq!(mails[1].subject, "Reset your password");
    assert!(crate::mail::messages_to(&ghost).is_empty());
    let ev = last_event(&h, "auth.password_reset_requested").await;
    assert_eq!((ev.actor_id, ev.changes.clone()), (None, json!({"known": false})));
}

/// A reset token works once: two resets racing with it, exactly one wins. The reset
/// ends every session, and the link is dead after an hour.
pub async fn reset_token_is_single_use_and_ends_sessions(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let user = registered(&h, "rob").await;
    let pair = login(&h, "rob").await;
    h.crm.auth().forgot_password(&user.email.as_str().to_uppercase(), meta()).await.expect("forgot");
    h.deliver_mail().await;
    let mail = wait_for(user.email.as_str(), 2).await.remove(1);
    assert!(mail.link().starts_with(&format!("{PUBLIC_URL}/reset-password?token=")));
    assert!(mail.text.contains("1 hour"), "{}", mail.text);
    let token = mail.token();

    let race = |crm: Crm, t: String, p: &'static str| {
        tokio::spawn(async move { crm.auth().reset_password(&t, p, meta()).await })
    };
    let a = race(h.crm.clone(), token.clone(), OTHER_PASSWORD);
    let b2 = race(h.crm.clone(), token.clone(), "yet another long passphrase 9");
    let (a, b2) = (a.await.expect("join"), b2.await.expect("join"));
    assert_eq!(usize::from(a.is_ok()) + usize::from(b2.is_ok()), 1, "exactly one reset wins: {a:?} {b2:?}");
    let loser = if a.is_ok() { b2 } else { a };
    assert_eq!(loser.expect_err("loser").field_errors()[0].code, "invalid_token");
    assert_eq!(last_event(&h, "user.password_reset").await.entity_id, Some(user.id.as_uuid()));

    assert_code(h.crm.auth().authenticate(&pair.access_token, meta()).await, "unauthenticated");
    assert_code(h.crm.auth().refresh(&pair.refresh_token, meta()).await, "unauthenticated");
    assert_code(h.crm.auth().login("rob", PASSWORD, meta()).await, "unauthenticated");
    let new_password = if a_won(&h, "rob").await { OTHER_PASSWORD } else { "yet another long passphrase 9" };
    h.crm.auth().login("rob", new_password, meta()).await.expect("login with the new password");
    // "Your password was changed" follows.
    h.deliver_mail().await;
    assert_eq!(wait_for(user.email.as_str(), 3).await[2].subject, "Your password was changed");

    // An hour later a fresh link no longer works.
    h.crm.auth().forgot_password(user.email.as_str(), meta()).await.expect("forgot");
    h.deliver_mail().await;
    let late = wait_for(user.email.as_str(), 4).await.remove(3).token();
    h.clock.advance(Duration::minutes(61));
    assert_code(h.crm.auth().reset_password(&late, OTHER_PASSWORD, meta()).await, "validation_failed");
}

async fn a_won(h: &Harness, who: &str) -> bool {
    h.crm.auth().login(who, OTHER_PASSWORD, meta()).await.is_ok()
}

/// Changing the password needs the current one and ends the other sessions only.
pub async fn change_password_ends_other_sessions(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let user = registered(&h, "cat").await;
    let here = login(&h, "cat").await;
    let elsewhere = login(&h, "cat").await;
    let me = h.crm.auth().authenticate(&here.access_token, meta()).await.expect("auth");
    assert_eq!(h.crm.auth().sessions(&me.actor).await.expect("sessions").len(), 2);
    let e =
        assert_code(h.crm.auth().change_password(&me, "not my password", OTHER_PASSWORD).await, "validation_failed");
    assert_eq!(e.field_errors()[0].field, "currentPassword");
    assert_code(h.crm.auth().change_password(&me, PASSWORD, "cat").await, "validation_failed");
    h.crm.auth().change_password(&me, PASSWORD, OTHER_PASSWORD).await.expect("change");
    h.crm.auth().authenticate(&here.access_token, meta()).await.expect("this session stays");
    h.crm.auth().refresh(&here.refresh_token, meta()).await.expect("and refreshes");
    assert_code(h.crm.auth().authenticate(&elsewhere.access_token, meta()).await, "unauthenticated");
    assert_code(h.crm.auth().refresh(&elsewhere.refresh_token, meta()).await, "unauthenticated");
    let ev = last_event(&h, "user.password_changed").await;
    assert_eq!(ev.changes["passwordHash"]["after"], "[redacted]");
    h.deliver_mail().await;
    assert_eq!(wait_for(user.email.as_str(), 2).await[1].subject, "Your password was changed");
}

/// Sessions are listed and revoked one by one or all at once; another user's session
/// answers not found.
pub async fn sessions_list_revoke_and_logout_all(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    registered(&h, "sam").await;
    registered(&h, "sue").await;
    let s1 = login(&h, "sam").await;
    let s2 = login(&h, "sam").await;
    let sue = login(&h, "sue").await;
    let sam = h.crm.auth().authenticate(&s1.access_token, meta()).await.expect("auth").actor;
    let listed = h.crm.auth().sessions(&sam).await.expect("sessions");
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), vec![s2.session_id, s1.session_id]);
    assert_eq!(listed[0].ip.as_deref(), Some("127.0.0.1"));
    assert_code(h.crm.auth().revoke_session(&sam, sue.session_id).await, "not_found");
    h.crm.auth().revoke_session(&sam, s2.session_id).await.expect("revoke");
    assert_code(h.crm.auth().authenticate(&s2.access_token, meta()).await, "unauthenticated");
    assert_eq!(h.crm.auth().sessions(&sam).await.expect("sessions").len(), 1);
    h.crm.auth().logout_all(&sam).await.expect("logout all");
    assert_code(h.crm.auth().authenticate(&s1.access_token, meta()).await, "unauthenticated");
    assert!(h.crm.auth().sessions(&sam).await.expect("sessions").is_empty());
    assert!(last_event(&h, "auth.logout_all").await.actor_id.is_some());
    h.crm.auth().authenticate(&sue.access_token, meta()).await.expect("sue is not affected");
}

/// Suspension and deactivation stop a live access token at once (no waiting for it to
/// expire); after the suspension ends the user can log in again.
pub async fn suspended_users_live_token_is_rejected(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let user = registered(&h, "sid").await;
    let pair = login(&h, "sid").await;
    h.crm.auth().authenticate(&pair.access_token, meta()).await.expect("auth");
    let until = h.crm.now() + Duration::days(1);
    let suspended = h.crm.users().suspend(&h.admin, user.id, Some(until.into()), Some("policy review".into())).await;
    assert_eq!(suspended.expect("suspend").status, UserStatus::Suspended);
    assert_code(h.crm.auth().authenticate(&pair.access_token, meta()).await, "unauthenticated");
    assert_eq!(last_event(&h, "auth.token_rejected").await.changes["reason"], "account_inactive");
    assert_code(h.crm.auth().refresh(&pair.refresh_token, meta()).await, "unauthenticated");
    assert_code(h.crm.auth().login("sid", PASSWORD, meta()).await, "forbidden");
    assert_eq!(last_event(&h, "user.suspended").await.entity_id, Some(user.id.as_uuid()));
    h.deliver_mail().await;
    let mail = wait_for(user.email.as_str(), 2).await.remove(1);
    assert_eq!(mail.subject, "Your account is suspended");
    assert!(mail.text.contains("policy review"));

    h.clock.advance(Duration::days(1) + Duration::seconds(1));
    let again = login(&h, "sid").await;
    assert_eq!(again.user.status, UserStatus::Active);
    h.crm.users().deactivate(&h.admin, user.id, None).await.expect("deactivate");
    assert_code(h.crm.auth().authenticate(&again.access_token, meta()).await, "unauthenticated");
    assert_code(h.crm.auth().login("sid", PASSWORD, meta()).await, "forbidden");
}

/// A user cannot raise their own role, and the attempt is audited.
pub async fn raising_own_role_is_refused_and_audited(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let user = registered(&h, "max").await;
    let me = user.actor();
    let patch = UserPatch { role: Some(Role::Admin), ..Default::default() };
    assert_code(h.crm.users().update(&me, user.id, patch).await, "forbidden");
    let ev = last_event(&h, "user.role_change_denied").await;
    assert_eq!((ev.actor_id, ev.changes["role"].clone()), (Some(user.id), json!("admin")));
    // Not even an admin raises their own.
    let patch = UserPatch { role: Some(Role::User), ..Default::default() };
    assert_code(h.crm.users().update(&h.admin, h.admin.user_id, patch).await, "forbidden");
    let still: User = h.crm.users().get(&h.admin, user.id).await.expect("user");
    assert_eq!(still.role, Role::User);
}

/// Secret tokens never reach the database readable: not the refresh token, not the
/// mailed ones (the queued emails hold them sealed), not passwords.
pub async fn raw_tokens_are_absent_from_the_database(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let email = unique_email("raw");
    let reg = Registration { username: "raw".into(), email: email.clone(), password: PASSWORD.into() };
    h.crm.auth().register(reg, meta()).await.expect("register");
    let dump_before_delivery = dump(&h).await;
    h.deliver_mail().await;
    let verify = wait_for(&email, 1).await.remove(0).token();
    h.crm.auth().verify_email(&verify, meta()).await.expect("verify");
    let pair = login(&h, "raw").await;
    let next = h.crm.auth().refresh(&pair.refresh_token, meta()).await.expect("refresh");
    h.crm.auth().forgot_password(&email, meta()).await.expect("forgot");
    h.deliver_mail().await;
    let reset = wait_for(&email, 2).await.remove(1).token();
    let all = format!("{dump_before_delivery}\n{}", dump(&h).await);
    for (what, secret) in [
        ("verification token", verify.as_str()),
        ("reset token", reset.as_str()),
        ("refresh token", pair.refresh_token.as_str()),
        ("next refresh token", next.refresh_token.as_str()),
        ("password", PASSWORD),
    ] {
        assert!(secret.len() >= 20, "{what}");
        assert!(!all.contains(secret), "the {what} is stored readable");
    }
    // What is stored is the SHA-256 of the token.
    assert!(all.contains(&crm_core::auth::SecretToken::digest_of(&reset)));
}

async fn dump(h: &Harness) -> String {
    let mut out = String::new();
    for kind in EntityKind::ALL {
        let q = StoreQuery { include_deleted: true, ..StoreQuery::all(kind, 10_000) };
        for row in h.crm.store().list(kind, &q).await.expect("list") {
            out.push_str(&format!("{row:?}\n"));
        }
    }
    out
}

/// An account made by an admin without a password gets an invitation; its link sets
/// the password and confirms the address, once.
pub async fn invitation_sets_the_first_password(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let email = unique_email("ivy");
    let new = NewUser { username: "ivy".into(), email: email.clone(), role: None, team_id: None, password: None };
    let ivy = h.crm.users().create(&h.admin, new).await.expect("create");
    assert_eq!(ivy.status, UserStatus::Pending);
    h.deliver_mail().await;
    let mail = wait_for(&email, 1).await.remove(0);
    assert_eq!(mail.subject, "You are invited to crm-rs");
    assert!(mail.link().starts_with(&format!("{PUBLIC_URL}/accept-invitation?token=")));
    assert_code(h.crm.auth().accept_invitation(&mail.token(), "ivy", meta()).await, "validation_failed");
    let active = h.crm.auth().accept_invitation(&mail.token(), PASSWORD, meta()).await.expect("accept");
    assert_eq!(active.status, UserStatus::Active);
    assert_code(h.crm.auth().accept_invitation(&mail.token(), PASSWORD, meta()).await, "validation_failed");
    login(&h, "ivy").await;

    // With a password, no invitation: the account is usable at once.
    let email = unique_email("pat");
    let new = NewUser {
        username: "pat".into(),
        email: email.clone(),
        role: None,
        team_id: None,
        password: Some(PASSWORD.into()),
    };
    h.crm.users().create(&h.admin, new).await.expect("create with password");
    login(&h, "pat").await;
}

/// Emails follow the user's language; Arabic ones are right-to-left.
pub async fn emails_are_localized(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let user = registered(&h, "amal").await;
    let mut settings = crm_core::model::JsonObject::new();
    settings.insert("language".into(), json!("ar"));
    let patch = UserPatch { settings: Some(settings), ..Default::default() };
    h.crm.users().update(&h.admin, user.id, patch).await.expect("settings");
    h.crm.auth().forgot_password(user.email.as_str(), meta()).await.expect("forgot");
    h.deliver_mail().await;
    let mail = wait_for(user.email.as_str(), 2).await.remove(1);
    assert_eq!(mail.subject, "إعادة تعيين كلمة المرور");
    assert!(mail.html.contains(r#"dir="rtl""#), "{}", mail.html);
    assert!(mail.text.contains("amal"));
}

/// A send that fails is retried later with backoff, and nothing is lost.
pub async fn failed_sends_are_retried(b: &dyn TestBackend) {
    use crm_core::mail::{MailConfig, MailWorker, SmtpConfig, SmtpMailer, SmtpSecurity};
    let h = Harness::new(b).await;
    let email = unique_email("retry");
    let reg = Registration { username: "retry".into(), email: email.clone(), password: PASSWORD.into() };
    h.crm.auth().register(reg, meta()).await.expect("register");
    // Port 9 (discard) has no SMTP server: the send fails.
    let dead = SmtpMailer::new(&SmtpConfig {
        host: "127.0.0.1".into(),
        port: 9,
        security: SmtpSecurity::Plain,
        credentials: None,
        timeout: std::time::Duration::from_secs(2),
    })
    .expect("mailer");
    let config = MailConfig {
        public_url: PUBLIC_URL.into(),
        from: "crm-rs <no-reply@crm.test.example>".parse().expect("from"),
        app_name: "crm-rs".into(),
    };
    let worker = MailWorker::new(h.crm.clone(), std::sync::Arc::new(dead), config);
    let report = worker.run_once().await.expect("run");
    assert_eq!((report.sent, report.retried), (0, 1));
    assert_eq!(worker.run_once().await.expect("run").retried, 0, "not due again yet");
    let queued: Vec<crm_core::model::delivery::Delivery> =
        h.crm.store().list_as(&StoreQuery::all(EntityKind::Delivery, 1000)).await.expect("deliveries");
    let mail = queued.iter().find(|d| d.consumer == "mail").expect("queued mail");
    assert_eq!(mail.attempts, 1);
    assert!(mail.last_error.as_deref().is_some_and(|e| !e.is_empty()));
    // 30 s, and up to a tenth more so that retries spread out.
    let wait = mail.available_at - h.crm.now();
    assert!(wait >= Duration::seconds(30) && wait <= Duration::seconds(33), "{wait}");
    // Later, with the sink up, it goes out.
    h.clock.advance(Duration::seconds(34));
    assert_eq!(h.deliver_mail().await.sent, 1);
    wait_for(&email, 1).await;
    // Unsafe plain SMTP to another machine is refused up front.
    let remote = SmtpConfig {
        host: "smtp.example.com".into(),
        port: 25,
        security: SmtpSecurity::Plain,
        credentials: None,
        timeout: std::time::Duration::from_secs(2),
    };
    assert_code(SmtpMailer::new(&remote).map(|_| ()), "validation_failed");
}

/// A password hashed with weaker parameters than the current ones is rehashed at the
/// next login, transparently.
pub async fn weak_hashes_are_upgraded_at_login(b: &dyn TestBackend) {
    use crm_core::auth::{AuthSettings, JwtConfig, JwtKeys, PasswordHasher, Sealer};
    let h = Harness::new(b).await;
    let weak_params = argon2::Params::new(1024, 1, 1, None).expect("params");
    let keys = JwtKeys::new(JwtConfig::default(), TEST_KID, TEST_JWT_SECRET).expect("keys");
    let mut weak = AuthSettings::with_keys(keys, Sealer::new(&[42; 32]));
    weak.hasher = PasswordHasher::new(weak_params, 2);
    let old_crm = Crm::builder(b.store()).clock(h.clock.clone()).auth(weak).build();
    let email = unique_email("old");
    let new = NewUser { username: "old".into(), email, role: None, team_id: None, password: Some(PASSWORD.into()) };
    let user = old_crm.users().create(&h.admin, new).await.expect("create with a weak hash");
    assert!(user.password_hash.as_deref().is_some_and(|p| p.contains("m=1024,t=1,p=1")));
    let pair = login(&h, "old").await;
    assert_eq!(last_event(&h, "auth.login").await.changes["rehashed"], true);
    let stored: User = h.crm.users().get(&h.admin, user.id).await.expect("user");
    assert!(stored.password_hash.as_deref().is_some_and(|p| p.contains("m=19456,t=2,p=1")), "{stored:?}");
    assert_eq!(pair.user.password_hash, stored.password_hash);
    login(&h, "old").await;
    assert_eq!(last_event(&h, "auth.login").await.changes["rehashed"], false);
}

/// Your own new email address takes your current password and waits for the link sent to
/// it: until then the old address stays the account's (and is told); following the link
/// makes the new one the account's, confirmed, and ends every session.
pub async fn email_change_is_reverified(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let user = registered(&h, "eve").await;
    assert!(user.email_verified_at.is_some());
    h.crm.auth().resend_verification(user.email.as_str(), meta()).await.expect("resend (not pending: nothing sent)");
    let pair = login(&h, "eve").await;
    let new_email = unique_email("eve2");
    let patch = UserPatch { email: Some(new_email.clone()), ..Default::default() };
    let e = assert_code(h.crm.users().update(&user.actor(), user.id, patch.clone()).await, "validation_failed");
    assert_eq!(fields(&e), ["currentPassword"]);
    let wrong = UserPatch { current_password: Some(OTHER_PASSWORD.into()), ..patch.clone() };
    assert_code(h.crm.users().update(&user.actor(), user.id, wrong).await, "validation_failed");
    assert_eq!(last_event(&h, "user.email_change_denied").await.entity_id, Some(user.id.as_uuid()));
    let right = UserPatch { current_password: Some(PASSWORD.into()), ..patch };
    let pending = h.crm.users().update(&user.actor(), user.id, right).await.expect("ask to change the email");
    assert_eq!(pending.email, user.email, "the old address stays until the new one is confirmed");
    assert!(pending.email_verified_at.is_some());
    assert_eq!(last_event(&h, "user.email_change_requested").await.entity_id, Some(user.id.as_uuid()));
    h.deliver_mail().await;
    let mail = wait_for(&new_email, 1).await.remove(0);
    assert_eq!(wait_for(user.email.as_str(), 2).await.len(), 2, "the old address is told");
    let changed = h.crm.auth().verify_email(&mail.token(), meta()).await.expect("confirm the new address");
    assert_eq!(changed.email.as_str(), new_email.to_lowercase());
    assert!(changed.email_verified_at.is_some());
    assert_eq!(last_event(&h, "user.email_changed").await.entity_id, Some(user.id.as_uuid()));
    assert_code(h.crm.auth().authenticate(&pair.access_token, meta()).await, "unauthenticated");
    h.crm.auth().login(&new_email, PASSWORD, meta()).await.expect("the new address signs in");
}

/// Settings are validated as a whole, every bad value named; only the user or an admin
/// reads and changes them.
pub async fn settings_are_validated(b: &dyn TestBackend) {
    use crm_core::model::settings::UserSettings;
    let h = Harness::new(b).await;
    let ann = registered(&h, "ann").await;
    let bob = registered(&h, "bob").await;
    let obj = |v: Json| v.as_object().cloned().expect("object");
    let s = h
        .crm
        .users()
        .update_settings(&ann.actor(), ann.id, obj(json!({"language": "fr", "timezone": "Europe/Paris"})))
        .await
        .expect("settings");
    assert_eq!((s.language.as_str(), s.timezone.as_str(), s.display_options.page_size), ("fr", "Europe/Paris", 25));
    let bad = json!({"language": "klingon", "displayOptions": {"pageSize": 0, "theme": "system", "dateFormat": "YYYY-MM-DD"}});
    let e = assert_code(h.crm.users().update_settings(&ann.actor(), ann.id, obj(bad)).await, "validation_failed");
    let mut named: Vec<String> = e.field_errors().iter().map(|f| f.field.clone()).collect();
    named.sort();
    assert_eq!(named, ["displayOptions.pageSize", "language"]);
    let kept: UserSettings = h.crm.users().settings(&ann.actor(), ann.id).await.expect("read");
    assert_eq!(kept.language, "fr", "a refused change changes nothing");
    assert_code(h.crm.users().settings(&bob.actor(), ann.id).await, "not_found");
    let by_admin = h.crm.users().update_settings(&h.admin, ann.id, obj(json!({"language": "ar"}))).await;
    assert_eq!(by_admin.expect("admin").language, "ar");
}

/// The activity log of a user lists their auth events and changes, newest first,
/// filterable by action and time; users see only their own.
pub async fn activity_log_by_user(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let ann = registered(&h, "ann").await;
    let bob = registered(&h, "bob").await;
    let _ = h.crm.auth().login("ann", "wrong wrong wrong", meta()).await;
    h.clock.advance(Duration::minutes(5));
    let since = h.crm.now();
    login(&h, "ann").await;
    let all = h.crm.audit().for_user(&ann.actor(), ann.id, ListQuery::new()).await.expect("own log");
    let actions: Vec<&str> = all.data.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions[0], "auth.login");
    assert!(actions.contains(&"auth.login_failed") && actions.contains(&"user.email_verified"), "{actions:?}");
    let filter = "action[eq]:auth.login_failed";
    let failed = h.crm.audit().for_user(&ann.actor(), ann.id, q(EntityKind::AuditEvent, filter)).await.expect("log");
    assert_eq!(failed.data.len(), 1);
    let filter = format!("at[gte]:{}", crm_core::schema::format_ts(&since));
    let recent = h.crm.audit().for_user(&ann.actor(), ann.id, q(EntityKind::AuditEvent, &filter)).await.expect("log");
    assert_eq!(recent.data.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["auth.login"]);
    let peek = h.crm.audit().for_user(&bob.actor(), ann.id, ListQuery::new()).await;
    assert!(peek.map(|p| p.data.is_empty()).unwrap_or(true), "bob sees nothing of ann's log");
    let admin_view = h.crm.audit().for_user(&h.admin, ann.id, ListQuery::new()).await.expect("admin");
    assert_eq!(admin_view.data.len(), all.data.len());
}

/// A CRM on the harness's store whose logins accept the local provider under the names
/// `acme` (generic OIDC), `google` (Google's settings, local endpoints) and `facebook`.
fn with_providers(h: &Harness, b: &dyn TestBackend, idp: &crate::idp::LocalIdp) -> Crm {
    use crm_core::auth::oauth::{FacebookConfig, FacebookProvider, OidcConfig, OidcProvider};
    use crm_core::auth::{AuthSettings, JwtConfig, JwtKeys, Sealer};
    let keys = JwtKeys::new(JwtConfig::default(), TEST_KID, TEST_JWT_SECRET).expect("keys");
    let mut s = AuthSettings::with_keys(keys, Sealer::new(&[42; 32]));
    let acme = OidcConfig {
        name: "acme".into(),
        issuers: vec![idp.base()],
        audiences: vec!["crm-client".into()],
        jwks_url: idp.jwks_url(),
        leeway_secs: 30,
        // Long enough that the five made-up key ids below are tried within it even on a
        // loaded machine (at 300 ms, five failed logins on MongoDB could outlast it).
        jwks_min_refetch: std::time::Duration::from_secs(3),
        authorize_url: None,
        label: "Acme".into(),
    };
    s.providers.add(std::sync::Arc::new(OidcProvider::new(acme).expect("oidc")));
    let mut google = OidcConfig::google("crm-google-client");
    google.jwks_url = idp.jwks_url();
    s.providers.add(std::sync::Arc::new(OidcProvider::new(google).expect("google")));
    let fb = FacebookConfig {
        app_id: crate::idp::FB_APP_ID.into(),
        app_secret: crate::idp::FB_APP_SECRET.into(),
        graph_url: idp.base(),
        dialog_url: format!("{}/dialog/oauth", idp.base()),
    };
    s.providers.add(std::sync::Arc::new(FacebookProvider::new(fb).expect("facebook")));
    Crm::builder(b.store()).clock(h.clock.clone()).auth(s).build()
}

fn id_claims(h: &Harness, iss: &str, aud: &str, sub: &str, email: &str, verified: bool) -> Json {
    let now = h.crm.now().timestamp();
    json!({"iss": iss, "aud": aud, "sub": sub, "email": email, "email_verified": verified,
           "iat": now, "nbf": now, "exp": now + 3600, "name": "Oscar Auth", "jti": uuid::Uuid::now_v7().to_string()})
}

/// OIDC login: a first login makes an account; the next finds it by (provider,
/// subject); forged, expired, foreign-audience and foreign-issuer tokens are refused and
/// audited; a key rotation at the provider is picked up on the unknown `kid`.
pub async fn oidc_login_with_real_rs256_tokens(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let idp = crate::idp::LocalIdp::start().await;
    let crm = with_providers(&h, b, &idp);
    let email = unique_email("oscar");
    let token = idp.id_token(1, &id_claims(&h, &idp.base(), "crm-client", "oidc-sub-1", &email, true));
    let first = crm.auth().oauth_login("acme", &token, None, meta()).await.expect("first oauth login");
    assert_eq!((first.user.status, first.user.email.as_str()), (UserStatus::Active, email.as_str()));
    assert!(first.user.email_verified_at.is_some() && first.user.password_hash.is_none());
    let ev = last_event(&h, "auth.identity_linked").await;
    assert_eq!((ev.changes["newAccount"].clone(), ev.changes["provider"].clone()), (json!(true), json!("acme")));
    assert_eq!(last_event(&h, "auth.login").await.changes["method"], "oauth:acme");
    // A token logs in once.
    assert_code(crm.auth().oauth_login("acme", &token, None, meta()).await, "unauthenticated");
    assert!(last_event(&h, "auth.oauth_failed").await.changes["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("replayed"));
    let token = idp.id_token(1, &id_claims(&h, &idp.base(), "crm-client", "oidc-sub-1", &email, true));
    let again = crm.auth().oauth_login("acme", &token, None, meta()).await.expect("second login");
    assert_eq!(again.user.id, first.user.id);
    // A nonce the client sent must be the token's.
    let mut with_nonce = id_claims(&h, &idp.base(), "crm-client", "oidc-sub-1", &email, true);
    with_nonce["nonce"] = json!("n-123");
    let t = idp.id_token(1, &with_nonce);
    assert_code(crm.auth().oauth_login("acme", &t, Some("n-999"), meta()).await, "unauthenticated");
    assert!(last_event(&h, "auth.oauth_failed").await.changes["reason"].as_str().unwrap_or_default().contains("nonce"));
    let t = idp.id_token(1, &with_nonce);
    crm.auth().oauth_login("acme", &t, Some("n-123"), meta()).await.expect("the nonce matches");
    crm.auth().authenticate(&again.access_token, meta()).await.expect("a normal session");

    let claims = id_claims(&h, &idp.base(), "crm-client", "oidc-sub-1", &email, true);
    let with = |k: &str, v: Json| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    // One character of the signature changed (not the last: its spare bits do not count).
    let signed = idp.id_token(1, &claims);
    let at = signed.len() - 20;
    let swap = if &signed[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swap}{}", &signed[..at], &signed[at + 1..]);
    let hs_header = json!({"alg": "HS256", "kid": "test-oidc-1", "typ": "JWT"});
    let now = h.crm.now().timestamp();
    let bad: Vec<(&str, String, &str)> = vec![
        ("wrong audience", idp.id_token(1, &with("aud", json!("someone-else"))), "InvalidAudience"),
        ("wrong issuer", idp.id_token(1, &with("iss", json!("https://evil.example"))), "InvalidIssuer"),
        ("expired", idp.id_token(1, &with("exp", json!(now - 3600))), "expired"),
        ("not yet valid", idp.id_token(1, &with("nbf", json!(now + 3600))), "not yet valid"),
        ("tampered", tampered, "InvalidSignature"),
        ("HS256 with the public key", sign(&hs_header, &claims, b"public-key-bytes-0123456789abcdef"), "algorithm"),
        ("garbage", "nope".into(), "malformed"),
    ];
    for (what, t, reason) in bad {
        assert_code(crm.auth().oauth_login("acme", &t, None, meta()).await, "unauthenticated");
        let ev = &events(&h, 1).await[0];
        assert_eq!(ev.action, "auth.oauth_failed", "{what}");
        let got = ev.changes["reason"].as_str().unwrap_or_default();
        assert!(got.contains(reason), "{what}: {got}");
    }
    assert_code(crm.auth().oauth_login("nowhere", &token, None, meta()).await, "not_found");

    // The provider rotates to key 2: the unknown kid makes us fetch the keys again, but
    // not more often than the refetch interval allows.
    tokio::time::sleep(std::time::Duration::from_millis(3_050)).await;
    let fetches = idp.jwks_fetches();
    idp.serve_keys(&[1, 2]);
    let rotated = idp.id_token(2, &claims);
    let r = crm.auth().oauth_login("acme", &rotated, None, meta()).await.expect("token signed with the new key");
    assert_eq!(r.user.id, first.user.id);
    assert_eq!(idp.jwks_fetches(), fetches + 1);
    let made_up = sign(&json!({"alg": "RS256", "kid": "made-up"}), &claims, b"x");
    for _ in 0..5 {
        assert_code(crm.auth().oauth_login("acme", &made_up, None, meta()).await, "unauthenticated");
    }
    assert_eq!(idp.jwks_fetches(), fetches + 1, "made-up key ids within the interval fetch nothing");
}

/// The first provider login links to an existing account only when both sides have
/// verified the same email; otherwise it is a conflict, audited.
pub async fn oidc_auto_link_needs_both_emails_verified(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let idp = crate::idp::LocalIdp::start().await;
    let crm = with_providers(&h, b, &idp);
    let gina = registered(&h, "gina").await;
    let google = "https://accounts.google.com";
    let unverified = idp.id_token(1, &id_claims(&h, google, "crm-google-client", "g-1", gina.email.as_str(), false));
    let e = assert_code(crm.auth().oauth_login("google", &unverified, None, meta()).await, "conflict");
    assert!(e.to_string().contains("link google"), "{e}");
    assert_eq!(last_event(&h, "auth.oauth_failed").await.changes["reason"], "email_conflict");
    let verified = idp.id_token(1, &id_claims(&h, google, "crm-google-client", "g-1", gina.email.as_str(), true));
    let pair = crm.auth().oauth_login("google", &verified, None, meta()).await.expect("auto link");
    assert_eq!(pair.user.id, gina.id);
    assert_eq!(last_event(&h, "auth.identity_linked").await.changes["automatic"], true);
    assert_eq!(crm.auth().identities(&gina.actor()).await.expect("identities").len(), 1);

    // An account whose own address is unconfirmed is never linked automatically.
    let email = unique_email("pend");
    let reg = Registration { username: "pend".into(), email: email.clone(), password: PASSWORD.into() };
    crm.auth().register(reg, meta()).await.expect("register");
    let t = idp.id_token(1, &id_claims(&h, google, "crm-google-client", "g-2", &email, true));
    assert_code(crm.auth().oauth_login("google", &t, None, meta()).await, "conflict");
}

/// Linking while logged in, one identity per account, unlinking, and never the last way in.
pub async fn oauth_link_and_unlink(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let idp = crate::idp::LocalIdp::start().await;
    let crm = with_providers(&h, b, &idp);
    let lin = registered(&h, "lin").await;
    let other = registered(&h, "other").await;
    let lin_token =
        || idp.id_token(1, &id_claims(&h, &idp.base(), "crm-client", "acme-lin", "lin.elsewhere@example.org", false));
    // Linking adds a way in: the account's password confirms it.
    let e =
        assert_code(crm.auth().oauth_link(&lin.actor(), "acme", &lin_token(), None, None).await, "validation_failed");
    assert_eq!(e.field_errors()[0].field, "currentPassword");
    let wrong = crm.auth().oauth_link(&lin.actor(), "acme", &lin_token(), None, Some("not the password")).await;
    assert_eq!(assert_code(wrong, "validation_failed").field_errors()[0].code, "invalid_value");
    assert_eq!(last_event(&h, "auth.identity_link_denied").await.actor_id, Some(lin.id));
    let linked = crm.auth().oauth_link(&lin.actor(), "acme", &lin_token(), None, Some(PASSWORD)).await.expect("link");
    assert_eq!(linked.user_id, lin.id);
    let again = crm.auth().oauth_link(&lin.actor(), "acme", &lin_token(), None, Some(PASSWORD)).await.expect("again");
    assert_eq!(again.id, linked.id, "idempotent");
    assert_code(crm.auth().oauth_link(&other.actor(), "acme", &lin_token(), None, Some(PASSWORD)).await, "conflict");
    let pair =
        crm.auth().oauth_login("acme", &lin_token(), None, meta()).await.expect("login with the linked identity");
    assert_eq!(pair.user.id, lin.id);
    crm.auth().oauth_unlink(&lin.actor(), "acme").await.expect("unlink");
    assert_eq!(last_event(&h, "auth.identity_unlinked").await.actor_id, Some(lin.id));
    assert_code(crm.auth().oauth_unlink(&lin.actor(), "acme").await, "not_found");

    // An account made by a provider login has no password: its only identity stays.
    let t = idp.id_token(1, &id_claims(&h, &idp.base(), "crm-client", "acme-new", &unique_email("new"), true));
    let newbie = crm.auth().oauth_login("acme", &t, None, meta()).await.expect("new account").user;
    assert_code(crm.auth().oauth_unlink(&newbie.actor(), "acme").await, "conflict");
}

/// Facebook: the access token is checked with the app token (`debug_token`), then
/// `/me`; tokens of another app or unknown ones are refused; an email from Facebook
/// never links an existing account by itself.
pub async fn facebook_login_via_debug_token(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let idp = crate::idp::LocalIdp::start().await;
    let crm = with_providers(&h, b, &idp);
    // A sign-in page offers the providers with a sign-in page of their own: Facebook's
    // dialog asks for an access token; `acme`, configured without an authorization
    // endpoint, only checks tokens.
    let links = crm.auth_settings().expect("auth").providers.sign_in_links();
    let offered: Vec<(&str, &str, &str)> =
        links.iter().map(|l| (l.provider.as_str(), l.client_id.as_str(), l.response_type.as_str())).collect();
    assert_eq!(offered, [("facebook", crate::idp::FB_APP_ID, "token"), ("google", "crm-google-client", "id_token")]);
    let email = unique_email("fred");
    idp.facebook_user("fb-token-1", crate::idp::FB_APP_ID, "fb-100", "Fred", Some(&email));
    idp.facebook_user("fb-token-other-app", "999", "fb-101", "Mallory", Some("m@example.com"));
    // Facebook's email is not taken as verified: the new account waits for its link.
    assert_code(crm.auth().oauth_login("facebook", "fb-token-1", None, meta()).await, "email_not_verified");
    let made = crm.users().by_login(&email).await.expect("find").expect("the account");
    assert_eq!((made.status, made.email_verified_at), (UserStatus::Pending, None));
    h.deliver_mail().await;
    assert_eq!(wait_for(&email, 1).await[0].subject, "Confirm your email address");
    assert_code(crm.auth().oauth_login("facebook", "fb-token-1", None, meta()).await, "email_not_verified");
    assert_code(crm.auth().oauth_login("facebook", "fb-token-other-app", None, meta()).await, "unauthenticated");
    assert!(last_event(&h, "auth.oauth_failed").await.changes["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("another app"));
    assert_code(crm.auth().oauth_login("facebook", "fb-unknown", None, meta()).await, "unauthenticated");
    let gina = registered(&h, "gina").await;
    idp.facebook_user("fb-token-gina", crate::idp::FB_APP_ID, "fb-102", "Gina", Some(gina.email.as_str()));
    assert_code(crm.auth().oauth_login("facebook", "fb-token-gina", None, meta()).await, "conflict");
}

/// An avatar upload is checked by content, re-encoded to a 256×256 PNG in the file
/// store (a local directory here), replaced cleanly, and refused when it is not a
/// picture; only the user or an admin sets it.
pub async fn avatar_upload(b: &dyn TestBackend) {
    use crm_core::blob::ObjectBlobStore;
    use image::{ImageBuffer, ImageFormat, Rgb};
    let h = Harness::new(b).await;
    let dir = std::env::temp_dir().join(format!("crm-rs-blobs-{}", uuid::Uuid::now_v7().simple()));
    let blobs = std::sync::Arc::new(ObjectBlobStore::local(&dir).expect("blob dir"));
    let crm = Crm::builder(b.store()).clock(h.clock.clone()).blobs(blobs).build();
    let ann = registered(&h, "ann").await;
    let bob = registered(&h, "bob").await;
    let picture = |w: u32, hgt: u32, format: ImageFormat| {
        let img = ImageBuffer::from_fn(w, hgt, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 200]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode");
        out.into_inner()
    };
    let files = || -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path())
                } else {
                    found.push(e.path())
                }
            }
        }
        found
    };
    let with =
        crm.users().set_avatar(&ann.actor(), ann.id, picture(800, 600, ImageFormat::Jpeg)).await.expect("upload");
    let key = with.profile_picture.clone().expect("key");
    let stored = crm.users().avatar(&h.admin, ann.id).await.expect("read").expect("picture");
    let back = image::load_from_memory_with_format(&stored, ImageFormat::Png).expect("a PNG");
    assert_eq!((back.width(), back.height()), (256, 256));
    assert_eq!(files().len(), 1);
    assert_eq!(last_event(&h, "user.avatar_changed").await.entity_id, Some(ann.id.as_uuid()));

    let e = assert_code(crm.users().set_avatar(&ann.actor(), ann.id, b"<svg/>".to_vec()).await, "validation_failed");
    assert_eq!(e.field_errors()[0].code, "invalid_format");
    assert_code(crm.users().set_avatar(&bob.actor(), ann.id, picture(10, 10, ImageFormat::Png)).await, "forbidden");
    let unchanged: User = crm.users().get(&h.admin, ann.id).await.expect("user");
    assert_eq!(unchanged.profile_picture.as_deref(), Some(key.as_str()));

    let replaced =
        crm.users().set_avatar(&ann.actor(), ann.id, picture(300, 900, ImageFormat::WebP)).await.expect("webp");
    assert_ne!(replaced.profile_picture, Some(key));
    assert_eq!(files().len(), 1, "the old picture is removed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Erasing an account removes its personal data everywhere (the user row, tokens,
/// sessions, queued emails, audit details), hands its records on, and the audit chain
/// still verifies.
pub async fn erase_removes_personal_data_and_keeps_the_chain(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let erin = registered(&h, "erin").await;
    let heir = registered(&h, "heir").await;
    let pair = login(&h, "erin").await;
    h.crm.auth().forgot_password(erin.email.as_str(), meta()).await.expect("a queued email");
    let contact = NewContact { name: "Client of Erin".into(), ..Default::default() };
    let c = h.crm.contacts().create(&erin.actor(), contact).await.expect("contact");
    assert_code(h.crm.users().erase(&heir.actor(), erin.id, None).await, "forbidden");
    assert_code(h.crm.users().erase(&h.admin, h.admin.user_id, None).await, "forbidden");

    let erased = h.crm.users().erase(&h.admin, erin.id, Some(heir.id)).await.expect("erase");
    assert_eq!(erased.status, UserStatus::Erased);
    assert!(erased.username.starts_with("erased-") && erased.password_hash.is_none());
    let ev = last_event(&h, "user.erased").await;
    assert!(ev.changes["auditEventsRedacted"].as_u64().unwrap_or(0) >= 5, "{}", ev.changes);
    assert_eq!(h.crm.contacts().get(&h.admin, c.id).await.expect("contact").owner_id, heir.id);
    assert_code(h.crm.auth().login("erin", PASSWORD, meta()).await, "unauthenticated");
    assert_code(h.crm.auth().authenticate(&pair.access_token, meta()).await, "unauthenticated");
    let all = dump(&h).await;
    assert!(!all.contains(erin.email.as_str()), "the email is gone from every table");
    assert!(!all.contains("\"erin\""), "the user name is gone from every table");
    assert_eq!(h.crm.verify_audit_chain().await.expect("verify"), ChainStatusOk::intact(&h).await);
    // The erased user's events stay, under the pseudonym.
    let kept = h.crm.audit().for_user(&h.admin, erin.id, ListQuery::new()).await.expect("log");
    assert!(kept.data.iter().any(|e| e.action == "auth.login" && e.is_redacted()));
    // An outbox event whose values were in a redacted audit event delivers none of them.
    let redacted = kept.data.iter().find(|e| e.is_redacted()).expect("a redacted event");
    let at = h.clock.now();
    let payload = json!({"id": erin.id, "auditId": redacted.id, "changed": ["email"]});
    let id = uuid::Uuid::from_u128(7);
    let ev = crm_core::outbox::OutboxEvent::new(
        id,
        "user.updated".into(),
        EntityKind::User,
        Some(erin.id.as_uuid()),
        payload,
        at,
    );
    let full = crm_core::outbox::with_changes(h.crm.store(), std::slice::from_ref(&ev)).await.expect("read back");
    assert_eq!(full, vec![ev], "nothing added from a redacted event");
    assert_eq!(h.crm.users().erase(&h.admin, erin.id, None).await.expect("again").status, UserStatus::Erased);
}

/// What an intact chain of the harness's store looks like.
struct ChainStatusOk;

impl ChainStatusOk {
    async fn intact(h: &Harness) -> crm_core::ChainStatus {
        let events = h.crm.store().count(EntityKind::AuditEvent, None, true).await.expect("count");
        crm_core::ChainStatus::Intact { events, unkeyed: 0 }
    }
}

async fn count(h: &Harness, kind: EntityKind) -> u64 {
    h.crm.store().count(kind, None, true).await.expect("count")
}

/// Expired sessions, refresh tokens and mailed tokens are deleted (after a day of
/// grace); live ones stay.
pub async fn expired_sessions_and_tokens_are_purged(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let user = registered(&h, "old").await;
    login(&h, "old").await;
    h.crm.auth().forgot_password(user.email.as_str(), meta()).await.expect("forgot");
    assert_eq!((count(&h, EntityKind::Session).await, count(&h, EntityKind::AuthToken).await), (1, 2));
    h.crm.auth().purge_expired().await.expect("purge");
    assert_eq!(count(&h, EntityKind::AuthToken).await, 2, "nothing has expired yet");
    // The reset link (1 h) and the verification link (48 h) expire; the session (30 days) lives.
    h.clock.advance(Duration::days(4));
    let fresh = login(&h, "old").await;
    h.crm.auth().purge_expired().await.expect("purge");
    assert_eq!((count(&h, EntityKind::Session).await, count(&h, EntityKind::AuthToken).await), (2, 0));
    h.clock.advance(Duration::days(28));
    h.crm.auth().purge_expired().await.expect("purge");
    assert_eq!(count(&h, EntityKind::Session).await, 1, "the first session is past its 30 days and the grace day");
    assert_eq!(count(&h, EntityKind::RefreshToken).await, 0, "its refresh token (14 days) went too");
    h.crm.auth().authenticate(&fresh.access_token, meta()).await.expect_err("its access token expired long ago");
    h.crm.auth().refresh(&fresh.refresh_token, meta()).await.expect_err("its refresh token is past 14 days");
}
