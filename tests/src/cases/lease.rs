//! Scheduler leases (`crm_core::lease`): one holder of a periodic job at a time, across
//! engines on separate connections to one database, taken over when the holder's lease
//! runs out, handed back on a clean stop.

use chrono::Duration;
use crm_core::{Crm, EntityKind, Error};

use crate::{Harness, TestBackend};

/// Two replicas race for the same job many times over: exactly one holds it each time;
/// the holder keeps it while it renews, another takes it once it has run out, and a
/// release lets the other take it at once. Bad names are refused, naming the field.
pub async fn one_replica_holds_a_scheduler_lease(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let other = Crm::builder(b.second_store().await).clock(h.clock.clone()).build();
    let (one, two) = (h.crm.leases(), other.leases());
    let ttl = Duration::seconds(30);

    // The first lease of a job, raced for: one insert wins.
    let (a, c) = tokio::join!(
        one.hold("billing.subscriptions", "replica-a", ttl),
        two.hold("billing.subscriptions", "replica-b", ttl)
    );
    let (a, c) = (a.expect("a"), c.expect("b"));
    assert!(a ^ c, "exactly one replica holds the new lease: a {a}, b {c}");
    let (holder, waiter, mine, theirs) =
        if a { (&one, &two, "replica-a", "replica-b") } else { (&two, &one, "replica-b", "replica-a") };

    // Renewed by its holder, refused to the other while it runs.
    for _ in 0..5 {
        h.clock.advance(Duration::seconds(10));
        assert!(holder.hold("billing.subscriptions", mine, ttl).await.expect("renew"));
        assert!(!waiter.hold("billing.subscriptions", theirs, ttl).await.expect("wait"));
    }
    // The holder stops renewing (it died): once the lease runs out, the other takes it.
    h.clock.advance(Duration::seconds(31));
    assert!(waiter.hold("billing.subscriptions", theirs, ttl).await.expect("take over"));
    assert!(!holder.hold("billing.subscriptions", mine, ttl).await.expect("lost"));
    let lease = one.get("billing.subscriptions").await.expect("get").expect("the lease");
    assert_eq!((lease.holder.as_deref(), lease.handovers), (Some(theirs), 1));
    assert_eq!(lease.held_until, h.crm.now() + ttl);

    // A clean stop hands it back: the first replica takes it at once.
    holder.release("billing.subscriptions", mine).await.expect("release by a non-holder");
    assert!(!holder.hold("billing.subscriptions", mine, ttl).await.expect("still theirs"));
    waiter.release("billing.subscriptions", theirs).await.expect("release");
    assert!(holder.hold("billing.subscriptions", mine, ttl).await.expect("taken after the release"));

    // Many rounds of both asking at once, each time after the lease ran out: one winner each time.
    for round in 0..20 {
        h.clock.advance(Duration::seconds(31));
        let (x, y) = tokio::join!(one.hold("auth.sweep", "replica-a", ttl), two.hold("auth.sweep", "replica-b", ttl));
        let (x, y) = (x.expect("a"), y.expect("b"));
        assert!(x ^ y, "round {round}: exactly one holder (a {x}, b {y})");
    }
    // Jobs are independent; one row per job.
    assert_eq!(h.crm.store().count(EntityKind::SchedulerLease, None, true).await.expect("count"), 2);

    for (name, holder, ttl, field) in [
        ("", "replica-a", ttl, "name"),
        ("x", " ", ttl, "holder"),
        ("x", "replica-a", Duration::zero(), "ttl"),
        ("x", "replica-a", Duration::days(2), "ttl"),
    ] {
        match one.hold(name, holder, ttl).await {
            Err(Error::Validation(errors)) => assert_eq!(errors[0].field, field),
            other => panic!("{name:?}/{holder:?}/{ttl}: {other:?}"),
        }
    }
}
