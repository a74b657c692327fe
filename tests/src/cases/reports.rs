//! Saved reports: a stored entity with an owner and sharing, under the policy.

use chrono::{TimeZone, Utc};
use crm_core::analytics::{Params, ReportSpec};
use crm_core::service::*;
use crm_core::*;

use super::{assert_code, fields, names, q};
use crate::{Harness, TestBackend};

fn standard(name: &str, report: &str) -> NewSavedReport {
    NewSavedReport { name: name.into(), standard: Some(report.into()), ..Default::default() }
}

/// The sum of a report's `total_amount`.
fn total(df: &crm_core::analytics::polars::prelude::DataFrame) -> i64 {
    let c = df.column("total_amount").expect("total_amount");
    (0..df.height()).filter_map(|i| c.get(i).ok()?.extract::<i64>()).sum()
}

fn spec(json: serde_json::Value) -> ReportSpec {
    serde_json::from_value(json).expect("spec")
}

/// Create, read, list, change (standard ↔ custom), delete and restore; every bad input
/// named on its field and nothing stored; each change audited.
pub async fn saved_report_crud_and_validation(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let svc = h.crm.saved_reports();
    let as_of = Utc.with_ymd_and_hms(2026, 6, 30, 0, 0, 0).single().expect("ts");
    let forecast = svc
        .create(
            &h.admin,
            NewSavedReport {
                description: Some("  For the board  ".into()),
                parameters: Some(StandardParams { as_of: Some(as_of), ..Default::default() }),
                chart: Some(ChartSpec {
                    kind: ChartKind::Bar,
                    x: "month".into(),
                    y: vec!["total_amount".into(), "weighted_amount".into()],
                    title: None,
                }),
                ..standard("Forecast", "r2_forecast_by_month")
            },
        )
        .await
        .expect("create");
    assert_eq!(forecast.owner_id, h.admin.user_id);
    assert_eq!(forecast.description.as_deref(), Some("For the board"));
    assert_eq!(forecast.meta.version, 1);
    let got = svc.get(&h.admin, forecast.id).await.expect("get");
    assert_eq!(got, forecast, "what is read back is what was stored");

    let by_industry = svc
        .create(
            &h.admin,
            NewSavedReport {
                name: "Won by industry".into(),
                spec: Some(spec(serde_json::json!({
                    "source": "deals", "join": ["companies"], "filter": "pipeline_stage[eq]:closed_won",
                    "groupBy": ["companies.industry"],
                    "aggregates": [{"fn": "sum", "field": "amount_cents", "as": "revenue"}]
                }))),
                ..Default::default()
            },
        )
        .await
        .expect("custom");
    assert!(by_industry.standard.is_none());
    assert_eq!(by_industry.spec.as_ref().and_then(|s| s["source"].as_str()), Some("deals"));

    // Lists: newest first, filters and search on the stored columns.
    let page = svc.list(&h.admin, ListQuery::new()).await.expect("list");
    assert_eq!(names(&page, |r| &r.name), ["Won by industry", "Forecast"]);
    let page = svc.list(&h.admin, q(EntityKind::SavedReport, "standard[eq]:r2_forecast_by_month")).await.expect("l");
    assert_eq!(names(&page, |r| &r.name), ["Forecast"]);
    let page = svc.list(&h.admin, ListQuery { search: Some("board".into()), ..ListQuery::new() }).await.expect("q");
    assert_eq!(names(&page, |r| &r.name), ["Forecast"]);

    // Every bad input at once, nothing stored.
    let before = svc.list(&h.admin, ListQuery::new()).await.expect("list").data.len();
    let e = assert_code(
        svc.create(
            &h.admin,
            NewSavedReport {
                name: " ".into(),
                chart: Some(ChartSpec {
                    kind: ChartKind::Funnel,
                    x: "".into(),
                    y: vec!["a".into(), "b".into()],
                    title: None,
                }),
                shared_with: Some(Sharing {
                    users: vec![UserId(uuid::Uuid::now_v7())],
                    teams: vec![TeamId(uuid::Uuid::now_v7())],
                    roles: vec![],
                }),
                ..Default::default()
            },
        )
        .await,
        "validation_failed",
    );
    let mut got = fields(&e);
    got.sort();
    assert_eq!(got, ["chart.x", "chart.y", "name", "sharedWith.teams.0", "sharedWith.users.0", "standard"]);
    assert_eq!(
        fields(&assert_code(svc.create(&h.admin, standard("X", "r9_nothing")).await, "validation_failed")),
        ["standard"]
    );
    let both = NewSavedReport { spec: by_industry_spec(), ..standard("X", "r1_pipeline_by_stage") };
    assert_eq!(fields(&assert_code(svc.create(&h.admin, both).await, "validation_failed")), ["spec"]);
    let bad_spec = NewSavedReport {
        name: "X".into(),
        spec: Some(spec(serde_json::json!({"source": "deals", "groupBy": ["nope"], "limit": 0}))),
        parameters: Some(StandardParams { as_of: Some(as_of), ..Default::default() }),
        ..Default::default()
    };
    let mut got = fields(&assert_code(svc.create(&h.admin, bad_spec).await, "validation_failed"));
    got.sort();
    assert_eq!(got, ["parameters", "spec.aggregates", "spec.groupBy.0.field", "spec.limit"]);
    let backwards = NewSavedReport {
        parameters: Some(StandardParams {
            as_of: Some(as_of),
            forecast_end: Some(as_of.date_naive() - chrono::Duration::days(1)),
            ..Default::default()
        }),
        ..standard("X", "r2_forecast_by_month")
    };
    assert_eq!(
        fields(&assert_code(svc.create(&h.admin, backwards).await, "validation_failed")),
        ["parameters.forecastEnd"]
    );
    assert_eq!(svc.list(&h.admin, ListQuery::new()).await.expect("list").data.len(), before);

    // A custom report becomes a standard one by naming it (its spec goes), and back.
    let changed = svc
        .update(
            &h.admin,
            by_industry.id,
            SavedReportPatch { standard: Some(Some("r6_top_companies_by_revenue".into())), ..Default::default() },
        )
        .await
        .expect("to standard");
    assert_eq!((changed.standard.as_deref(), changed.spec.is_none()), (Some("r6_top_companies_by_revenue"), true));
    assert_eq!(changed.meta.version, 2);
    let back = svc
        .update(
            &h.admin,
            by_industry.id,
            SavedReportPatch { spec: Some(by_industry_spec()), version: Some(2), ..Default::default() },
        )
        .await
        .expect("to custom");
    assert!(back.standard.is_none() && back.spec.is_some());
    assert_code(
        svc.update(&h.admin, by_industry.id, SavedReportPatch { version: Some(1), ..Default::default() }).await,
        "version_conflict",
    );
    let cleared = svc
        .update(
            &h.admin,
            forecast.id,
            SavedReportPatch { chart: Some(None), description: Some(None), ..Default::default() },
        )
        .await
        .expect("clear");
    assert!(cleared.chart.is_none() && cleared.description.is_none());
    assert_eq!(cleared.parameters, forecast.parameters, "parameters stay unless given");

    // Delete hides it; restore brings it back; the log has every step.
    svc.delete(&h.admin, forecast.id, None).await.expect("delete");
    assert_code(svc.get(&h.admin, forecast.id).await, "not_found");
    assert_code(svc.run(&h.admin, forecast.id, &Params::default()).await, "not_found");
    svc.restore(&h.admin, forecast.id).await.expect("restore");
    let log = h
        .crm
        .audit()
        .for_record::<SavedReport>(&h.admin, forecast.id.as_uuid(), ListQuery::new())
        .await
        .expect("audit");
    let mut actions: Vec<&str> = log.data.iter().map(|e| e.action.as_str()).collect();
    actions.reverse();
    assert_eq!(
        actions,
        ["saved_report.created", "saved_report.updated", "saved_report.deleted", "saved_report.restored"]
    );
}

fn by_industry_spec() -> Option<ReportSpec> {
    Some(spec(serde_json::json!({
        "source": "deals", "join": ["companies"], "groupBy": ["companies.industry"],
        "aggregates": [{"fn": "count", "as": "deals"}]
    })))
}

/// Sharing: a report is seen by its owner, by managers over the owner's team, and by the
/// users, teams and roles it is shared with, who may run it (on what they themselves may
/// read) but not change it. Others get `not_found`.
pub async fn saved_report_sharing_and_scope(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let red = h.team("Red").await;
    let blue = h.team("Blue").await;
    let ann = h.user("ann", Role::User, Some(red)).await;
    let bob = h.user("bob", Role::User, Some(red)).await;
    let cy = h.user("cyd", Role::User, Some(blue)).await;
    let rita = h.user("rita", Role::Manager, Some(red)).await;
    let bert = h.user("bert", Role::Manager, Some(blue)).await;
    let svc = h.crm.saved_reports();
    for (who, amount) in [(&ann, 1_000), (&bob, 20)] {
        h.crm
            .deals()
            .create(who, NewDeal { name: "D".into(), amount: Some(amount), ..Default::default() })
            .await
            .expect("deal");
    }
    let pipeline = svc.create(&ann, standard("My pipeline", "r1_pipeline_by_stage")).await.expect("create");
    assert_eq!(pipeline.team_id, Some(red));
    let seen = |actor: &Actor| {
        let actor = actor.clone();
        async move {
            let listed =
                svc.list(&actor, ListQuery::new()).await.expect("list").data.iter().any(|r| r.id == pipeline.id);
            let got = svc.get(&actor, pipeline.id).await.is_ok();
            assert_eq!(listed, got, "list and get agree for {actor}");
            got
        }
    };
    // Unshared: the owner, the red manager and the admin.
    assert_eq!(
        [
            seen(&ann).await,
            seen(&bob).await,
            seen(&cy).await,
            seen(&rita).await,
            seen(&bert).await,
            seen(&h.admin).await
        ],
        [true, false, false, true, false, true]
    );
    assert_code(svc.run(&bob, pipeline.id, &Params::default()).await, "not_found");
    // Plain users may not share others' reports nor change them.
    assert_code(svc.share(&bob, pipeline.id, Sharing::default(), None).await, "not_found");

    // Shared with Bob by name: he sees and runs it on his own deals, but may not change it.
    let shared = svc
        .share(&ann, pipeline.id, Sharing { users: vec![bob.user_id, bob.user_id], ..Default::default() }, Some(1))
        .await
        .expect("share");
    assert_eq!(shared.shared_with.users, [bob.user_id], "repeats dropped");
    assert_eq!(shared.meta.version, 2);
    assert!(seen(&bob).await && !seen(&cy).await);
    let run = svc.run(&bob, pipeline.id, &Params::default()).await.expect("run");
    assert_eq!(run.title, "My pipeline");
    assert_eq!(run.name, "r1_pipeline_by_stage");
    let chart = run.chart.clone().expect("the standard report's chart");
    assert_eq!((chart.kind, chart.x.as_str()), (ChartKind::Bar, "stage"));
    assert_eq!(run.about().title.as_deref(), Some("My pipeline"));
    assert_eq!(total(&run.frame), 20, "Bob's run covers Bob's deals");
    let owners = total(&svc.run(&ann, pipeline.id, &Params::default()).await.expect("run").frame);
    assert_eq!(owners, 1_000);
    assert_code(
        svc.update(&bob, pipeline.id, SavedReportPatch { name: Some("Mine now".into()), ..Default::default() }).await,
        "forbidden",
    );
    assert_code(svc.delete(&bob, pipeline.id, None).await, "forbidden");
    assert_code(svc.share(&bob, pipeline.id, Sharing::default(), None).await, "forbidden");
    // A custom report takes no parameters at run time.
    let custom = svc
        .create(&ann, NewSavedReport { name: "Deals".into(), spec: by_industry_spec(), ..Default::default() })
        .await
        .expect("custom");
    let at = Params { as_of: Some(Utc::now().naive_utc()), ..Default::default() };
    assert_eq!(fields(&assert_code(svc.run(&ann, custom.id, &at).await, "validation_failed")), ["parameters"]);
    assert_eq!(svc.run(&ann, custom.id, &Params::default()).await.expect("run").name, "custom");

    // Shared with the blue team: Cy sees it; with managers: Bert does too.
    svc.share(&ann, pipeline.id, Sharing { teams: vec![blue], ..Default::default() }, None).await.expect("share");
    // (Bert manages in blue; Bob's own share was replaced.)
    assert_eq!([seen(&cy).await, seen(&bert).await, seen(&bob).await], [true, true, false]);
    svc.share(&ann, pipeline.id, Sharing { roles: vec![Role::Manager], ..Default::default() }, None)
        .await
        .expect("share");
    assert_eq!([seen(&cy).await, seen(&bert).await, seen(&bob).await], [false, true, false]);
    // The shared-with filter finds it.
    let page = svc.list(&h.admin, q(EntityKind::SavedReport, "sharedWith.roles[eq]:manager")).await.expect("list");
    assert_eq!(names(&page, |r| &r.name), ["My pipeline"]);

    // The red manager (Team scope) changes it and gives it to Bob.
    let moved = svc
        .update(&rita, pipeline.id, SavedReportPatch { owner_id: Some(bob.user_id), ..Default::default() })
        .await
        .expect("reassign");
    assert_eq!(moved.owner_id, bob.user_id);
    assert!(seen(&bob).await && !seen(&ann).await);
    // A deleted report is not listed to those it was shared with, even with deleted records.
    svc.delete(&rita, pipeline.id, None).await.expect("delete");
    let with_deleted = ListQuery { include_deleted: true, ..ListQuery::new() };
    let listed = svc.list(&bert, with_deleted.clone()).await.expect("list");
    assert!(listed.data.iter().all(|r| r.id != pipeline.id), "deleted and only shared: not listed");
    assert!(svc.list(&rita, with_deleted).await.expect("list").data.iter().any(|r| r.id == pipeline.id));
    svc.restore(&rita, pipeline.id).await.expect("restore");
    // A role that may not read reports sees none, shared or not.
    let mut policy = Policy::standard();
    policy.set(Role::Manager, Resource::Reports, Action::Read, Scope::None);
    let locked = Crm::builder(b.store()).policy(policy).build();
    assert_code(locked.saved_reports().get(&bert, pipeline.id).await, "not_found");
    assert_code(locked.saved_reports().list(&bert, ListQuery::new()).await, "forbidden");
}

fn card(report: &str, width: u8) -> DashboardCard {
    DashboardCard { report: report.into(), width }
}

/// Saved dashboards: cards of standard and saved reports kept under a name, shared like a
/// report (the sharing does not widen what a card's report shows), changed by their owner
/// only, opened but never run; every bad card named on its field, nothing stored.
pub async fn saved_dashboard_cards_and_sharing(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let red = h.team("Red").await;
    let ann = h.user("ann", Role::Manager, Some(red)).await;
    let bob = h.user("bob", Role::User, Some(red)).await;
    let cy = h.user("cyd", Role::User, None).await;
    let svc = h.crm.saved_reports();
    let mine = svc.create(&ann, standard("Pipeline", "r1_pipeline_by_stage")).await.expect("report");
    let others = svc.create(&h.admin, standard("Admin's", "r8_customer_acquisition")).await.expect("report");
    let board = NewSavedReport {
        name: "Sales board".into(),
        cards: Some(vec![card("r4_stage_funnel", 2), card(&mine.id.to_string(), 1)]),
        shared_with: Some(Sharing { users: vec![bob.user_id], ..Default::default() }),
        ..Default::default()
    };
    let dash = svc.create(&ann, board.clone()).await.expect("dashboard");
    assert_eq!(dash.cards.as_ref().map(Vec::len), Some(2));
    assert!(dash.standard.is_none() && dash.spec.is_none() && dash.chart.is_none());
    assert_eq!(svc.get(&ann, dash.id).await.expect("get"), dash, "read back as stored");
    // Bob, it is shared with, opens it; Cy does not see it.
    assert_eq!(svc.get(&bob, dash.id).await.expect("shared").cards, dash.cards);
    assert!(svc.list(&bob, ListQuery::new()).await.expect("list").data.iter().any(|r| r.id == dash.id));
    assert_code(svc.get(&cy, dash.id).await, "not_found");
    // Its saved card stays the owner's: Bob, not shared that report, may not run it.
    assert_code(svc.run(&bob, mine.id, &Params::default()).await, "not_found");
    // A dashboard is opened, not run (nor exported, which runs).
    assert_eq!(fields(&assert_code(svc.run(&ann, dash.id, &Params::default()).await, "validation_failed")), ["cards"]);

    // Every bad card at once, nothing stored.
    let before = svc.list(&h.admin, ListQuery::new()).await.expect("list").data.len();
    let bad = NewSavedReport {
        cards: Some(vec![
            card("r4_stage_funnel", 3),
            card("r4_stage_funnel", 1),
            card("r9_nothing", 1),
            card(&others.id.to_string(), 1),
            card(&dash.id.to_string(), 1),
            card(&uuid::Uuid::now_v7().to_string(), 1),
            card("r9_nothing", 1),
        ]),
        standard: Some("r1_pipeline_by_stage".into()),
        ..board.clone()
    };
    let mut got = fields(&assert_code(svc.create(&ann, bad).await, "validation_failed"));
    got.sort();
    assert_eq!(
        got,
        [
            "cards",
            "cards.0.width",
            "cards.1.report",
            "cards.2.report",
            "cards.3.report",
            "cards.4.report",
            "cards.5.report",
            "cards.6.report"
        ],
        "a width out of range, a repeat, an unknown name, a report Ann may not see, a dashboard, an unknown id, \
         the unknown name again (one error, not also a repeat)"
    );
    let empty = NewSavedReport { cards: Some(vec![]), ..board.clone() };
    assert_eq!(fields(&assert_code(svc.create(&ann, empty).await, "validation_failed")), ["cards"]);
    let many = (0..25).map(|i| card(&format!("x{i}"), 1)).collect();
    assert_eq!(
        fields(&assert_code(
            svc.create(&ann, NewSavedReport { cards: Some(many), ..board.clone() }).await,
            "validation_failed"
        )),
        ["cards"]
    );
    let charted = NewSavedReport {
        chart: Some(ChartSpec { kind: ChartKind::Bar, x: "stage".into(), y: vec!["n".into()], title: None }),
        ..board.clone()
    };
    assert_eq!(fields(&assert_code(svc.create(&ann, charted).await, "validation_failed")), ["chart"]);
    assert_eq!(svc.list(&h.admin, ListQuery::new()).await.expect("list").data.len(), before);

    // The owner rearranges it; a dashboard stays a dashboard and a report a report.
    let cards = vec![card(&mine.id.to_string(), 2), card("r2_forecast_by_month", 1), card("r1_pipeline_by_stage", 1)];
    let changed = svc
        .update(&ann, dash.id, SavedReportPatch { cards: Some(cards.clone()), version: Some(1), ..Default::default() })
        .await
        .expect("rearranged");
    assert_eq!((changed.cards.as_deref(), changed.meta.version), (Some(&cards[..]), 2));
    let to_report = SavedReportPatch { standard: Some(Some("r1_pipeline_by_stage".into())), ..Default::default() };
    assert_eq!(fields(&assert_code(svc.update(&ann, dash.id, to_report).await, "validation_failed")), ["cards"]);
    let to_dash = SavedReportPatch { cards: Some(cards.clone()), ..Default::default() };
    assert_eq!(fields(&assert_code(svc.update(&ann, mine.id, to_dash).await, "validation_failed")), ["cards"]);
    let onto_itself = SavedReportPatch { cards: Some(vec![card(&dash.id.to_string(), 1)]), ..Default::default() };
    assert_eq!(
        fields(&assert_code(svc.update(&ann, dash.id, onto_itself).await, "validation_failed")),
        ["cards.0.report"]
    );
    // Bob may open it, not change it.
    let renamed = SavedReportPatch { name: Some("Bob's".into()), ..Default::default() };
    assert_code(svc.update(&bob, dash.id, renamed).await, "forbidden");
    // Each change audited.
    let trail =
        h.crm.audit().for_record::<SavedReport>(&h.admin, dash.id.as_uuid(), ListQuery::new()).await.expect("audit");
    let actions: Vec<&str> = trail.data.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["saved_report.updated", "saved_report.created"]);
}
