//! The saved reports service: standard or custom reports kept under a name, owned like CRM
//! records, shared with users, teams or roles, and run on the caller's snapshot; and saved
//! dashboards (their cards: standard or saved reports), owned and shared the same way.

use polars::prelude::DataFrame;
use serde::Deserialize;
use uuid::Uuid;

use super::input::{self, nullable};
use super::write_path::check_version;
use super::Crm;
use crate::analytics::{custom, Params, ReportSpec};
use crate::error::{Error, Errors, Result};
use crate::ids::{SavedReportId, UserId};
use crate::model::report::{ChartKind, ChartSpec, SavedReport, Sharing, StandardParams, StandardReport};
use crate::model::settings::{check_card_shapes, DashboardCard};
use crate::model::team::Team;
use crate::model::{Record, RecordMeta};
use crate::policy::{Action, Actor, Resource, Scope};
use crate::query::{Cmp, Filter, ListQuery, Page, Predicate};
use crate::schema::{EntityKind, Value, NAME_CHARS};

/// The most users, teams or roles one report is shared with, each.
const MAX_SHARES: usize = 100;
/// The most series a chart plots.
const MAX_SERIES: usize = 6;
/// Input of [`SavedReportService::create`]: `standard` (with `parameters`), `spec`, or a
/// dashboard's `cards`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSavedReport {
    /// Name (required).
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: Option<String>,
    /// A standard report's name (`r1_pipeline_by_stage` …).
    #[serde(default)]
    pub standard: Option<String>,
    /// The standard report's parameters; absent ones take their defaults at each run.
    #[serde(default)]
    pub parameters: Option<StandardParams>,
    /// A custom report.
    #[serde(default)]
    pub spec: Option<ReportSpec>,
    /// A dashboard: its cards, in order (1 to 24; each a standard report or a saved
    /// report that is not a dashboard, once).
    #[serde(default)]
    pub cards: Option<Vec<DashboardCard>>,
    /// How it is drawn.
    #[serde(default)]
    pub chart: Option<ChartSpec>,
    /// Who else may see and run it.
    #[serde(default)]
    pub shared_with: Option<Sharing>,
    /// Owner (default: the caller).
    #[serde(default)]
    pub owner_id: Option<UserId>,
}

/// Input of [`SavedReportService::update`]: absent fields keep their value, `null` clears.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedReportPatch {
    /// New title; absent: unchanged.
    #[serde(default)]
    pub name: Option<String>,
    /// New description; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// A standard report's name (`null` to turn it into a custom report with `spec`).
    #[serde(default, deserialize_with = "nullable")]
    pub standard: Option<Option<String>>,
    /// The standard report's parameters (replaced whole).
    #[serde(default)]
    pub parameters: Option<StandardParams>,
    /// A custom report (`null` to turn it into a standard report with `standard`).
    #[serde(default, deserialize_with = "nullable")]
    pub spec: Option<Option<ReportSpec>>,
    /// A dashboard's cards (replaced whole). A dashboard stays a dashboard and a report a
    /// report: `cards` on a report, or `standard`/`spec` on a dashboard, is refused.
    #[serde(default)]
    pub cards: Option<Vec<DashboardCard>>,
    /// How it is drawn (`null`: no chart).
    #[serde(default, deserialize_with = "nullable")]
    pub chart: Option<Option<ChartSpec>>,
    /// A new owner (needs the assign right).
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// The version the change is based on.
    #[serde(default)]
    pub version: Option<i64>,
}

/// A saved report's run: the report, its answer, and what it ran with.
#[derive(Debug, Clone)]
pub struct SavedRun {
    /// The saved report.
    pub report: SavedReport,
    /// `standard`'s name, or `custom`.
    pub name: String,
    /// The title exports show: the saved report's name.
    pub title: String,
    /// The parameters it ran with, defaults filled in (standard reports that take any).
    pub parameters: Vec<(String, String)>,
    /// The answer.
    pub frame: DataFrame,
    /// How it is drawn: the saved chart, else the standard report's default chart
    /// (none for a custom report without one: exports then guess from the columns).
    pub chart: Option<ChartSpec>,
}

impl SavedRun {
    /// What an export of this run says besides its rows: title, parameters, chart.
    pub fn about(&self) -> crate::analytics::About {
        crate::analytics::About {
            title: Some(self.title.clone()),
            parameters: self.parameters.clone(),
            chart: self.chart.clone(),
        }
    }
}

/// Saved reports.
#[derive(Debug, Clone, Copy)]
pub struct SavedReportService<'a> {
    pub(super) crm: &'a Crm,
}

impl SavedReportService<'_> {
    /// Saves a report. The spec is compiled and the chart, sharing and owner checked first;
    /// nothing is stored when any of them is wrong.
    pub async fn create(&self, actor: &Actor, input: NewSavedReport) -> Result<SavedReport> {
        let crm = self.crm;
        crm.policy().require(actor, Resource::Reports, Action::Create)?;
        let mut errs = Errors::new();
        let name = input::required(&mut errs, "name", &input.name, NAME_CHARS);
        let description = input::text(&mut errs, "description", input.description, 2000, true);
        let (owner_id, team_id) =
            crm.resolve_owner(actor, Resource::Reports, Action::Create, input.owner_id, &mut errs).await?;
        let parameters = input.parameters.unwrap_or_default();
        let spec = match &input.cards {
            Some(cards) => {
                if input.standard.is_some() || input.spec.is_some() || input.parameters.is_some() {
                    errs.add(
                        "cards",
                        "invalid_value",
                        "a saved dashboard holds `cards` only: no `standard`, `spec` or `parameters`",
                    );
                }
                self.check_cards(actor, cards, None, &mut errs).await?;
                None
            }
            None => check_definition(&mut errs, input.standard.as_deref(), &parameters, input.spec.as_ref()),
        };
        if let Some(chart) = &input.chart {
            if input.cards.is_some() {
                errs.add("chart", "invalid_value", "a dashboard draws its cards; it has no chart of its own");
            }
            check_chart(&mut errs, chart);
        }
        let shared_with = self.check_sharing(input.shared_with.unwrap_or_default(), &mut errs).await?;
        errs.finish()?;
        let now = crm.now();
        let report = SavedReport {
            id: SavedReportId(crm.new_id(now)),
            name,
            description,
            standard: input.standard,
            parameters,
            spec,
            cards: input.cards,
            chart: input.chart,
            shared_with,
            owner_id,
            team_id,
            meta: RecordMeta::new(now, Some(actor.user_id)),
        };
        crm.commit_insert(actor, &report, Default::default()).await?;
        Ok(report)
    }

    /// A live saved report the actor may see: within their read scope, or shared with
    /// them (by user, team or role) while their role may read reports at all.
    pub async fn get(&self, actor: &Actor, id: SavedReportId) -> Result<SavedReport> {
        let crm = self.crm;
        let not_found = || Error::NotFound { entity: EntityKind::SavedReport.name() };
        let rec = crm.load::<SavedReport>(id.as_uuid()).await?.ok_or_else(not_found)?;
        if rec.meta.is_deleted() {
            return Err(not_found());
        }
        let scope = crm.policy().scope(actor.role, Resource::Reports, Action::Read);
        if scope.covers(actor, &rec.ownership()) || (scope > Scope::None && rec.shared_with.includes(actor)) {
            Ok(rec)
        } else {
            Err(not_found())
        }
    }

    /// A page of the saved reports the actor may see (their scope's and those shared
    /// with them).
    pub async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Page<SavedReport>> {
        let crm = self.crm;
        let kind = EntityKind::SavedReport;
        let sort = kind
            .column("created_at")
            .map(|column| crate::query::SortKey { column, direction: crate::query::Direction::Desc })
            .into_iter()
            .collect();
        crm.list_page(actor, kind, query, sort, None, shared_filter(actor)?).await
    }

    /// Changes a saved report (owner, or managers/admins within their scope). Those it is
    /// only shared with may not: `Forbidden`.
    pub async fn update(&self, actor: &Actor, id: SavedReportId, patch: SavedReportPatch) -> Result<SavedReport> {
        let before = self.writable(actor, id, Action::Update).await?;
        check_version(patch.version, before.meta.version)?;
        let mut errs = Errors::new();
        let mut r = before.clone();
        if let Some(n) = patch.name {
            r.name = input::required(&mut errs, "name", &n, NAME_CHARS);
        }
        if let Some(d) = patch.description {
            r.description = input::text(&mut errs, "description", d, 2000, true);
        }
        if before.cards.is_some() {
            if patch.standard.is_some() || patch.spec.is_some() || patch.parameters.is_some() {
                errs.add(
                    "cards",
                    "invalid_value",
                    "a saved dashboard holds `cards` only: no `standard`, `spec` or `parameters`",
                );
            }
            if matches!(patch.chart, Some(Some(_))) {
                errs.add("chart", "invalid_value", "a dashboard draws its cards; it has no chart of its own");
            }
            if let Some(cards) = patch.cards {
                self.check_cards(actor, &cards, Some(id), &mut errs).await?;
                r.cards = Some(cards);
            }
            return self.finish_update(actor, id, &before, r, patch.owner_id, errs).await;
        }
        if patch.cards.is_some() {
            errs.add("cards", "invalid_value", "a report does not become a dashboard; save the dashboard as its own");
        }
        // Giving one of `standard` and `spec` replaces the other.
        let spec = match (&patch.standard, patch.spec) {
            (_, Some(s)) => s,
            (Some(Some(_)), None) => None,
            (_, None) => before.spec.as_ref().map(stored_spec).transpose()?,
        };
        match patch.standard {
            Some(s) => r.standard = s,
            None if spec.is_some() => r.standard = None,
            None => {}
        }
        match patch.parameters {
            Some(p) => r.parameters = p,
            None if r.standard.is_none() => r.parameters = StandardParams::default(),
            None => {}
        }
        r.spec = check_definition(&mut errs, r.standard.as_deref(), &r.parameters, spec.as_ref());
        if let Some(c) = patch.chart {
            if let Some(chart) = &c {
                check_chart(&mut errs, chart);
            }
            r.chart = c;
        }
        self.finish_update(actor, id, &before, r, patch.owner_id, errs).await
    }

    /// The end of an update: a new owner (with the assign right), then the write.
    async fn finish_update(
        &self,
        actor: &Actor,
        id: SavedReportId,
        before: &SavedReport,
        mut r: SavedReport,
        owner: Option<UserId>,
        mut errs: Errors,
    ) -> Result<SavedReport> {
        let crm = self.crm;
        if let Some(owner) = owner.filter(|o| *o != before.owner_id) {
            self.writable(actor, id, Action::Assign).await?;
            let (o, t) = crm.resolve_owner(actor, Resource::Reports, Action::Assign, Some(owner), &mut errs).await?;
            r.owner_id = o;
            r.team_id = t;
        }
        errs.finish()?;
        crm.commit_update(actor, before, r, "updated", Default::default()).await
    }

    /// Checks a dashboard's cards: 1 to [`MAX_DASHBOARD_CARDS`](crate::MAX_DASHBOARD_CARDS),
    /// each a standard report or a live saved report the actor may see that is not a
    /// dashboard, none twice, one or two columns wide. (Those it is shared with see a card
    /// of a report they may not see as such: the dashboard does not widen what they may
    /// read.) A field gets one error: a card whose report is neither kind of name is not
    /// also told it is a repeat.
    async fn check_cards(
        &self,
        actor: &Actor,
        cards: &[DashboardCard],
        this: Option<SavedReportId>,
        errs: &mut Errors,
    ) -> Result<()> {
        if cards.is_empty() {
            errs.add("cards", "required", "a dashboard has at least one card");
        }
        if !check_card_shapes(cards, "cards", errs) {
            return Ok(());
        }
        for (i, card) in cards.iter().enumerate() {
            let field = format!("cards.{i}.report");
            let standard = card.report.parse::<StandardReport>().is_ok();
            let uuid = card.report.parse::<Uuid>().ok();
            if !standard && uuid.is_none() {
                // refused by check_card_shapes already; one error a field
                continue;
            }
            if cards[..i].iter().any(|c| c.report == card.report) {
                errs.add(field, "duplicate", "this report is on the dashboard already");
                continue;
            }
            let Some(uuid) = uuid else { continue };
            let rid = SavedReportId(uuid);
            if Some(rid) == this {
                errs.add(field, "invalid_value", "a dashboard is not a card of itself");
                continue;
            }
            match self.get(actor, rid).await {
                Ok(r) if r.cards.is_some() => {
                    errs.add(field, "invalid_value", "a dashboard is not a card of another dashboard")
                }
                Ok(_) => {}
                Err(Error::NotFound { .. }) => {
                    errs.add(field, "not_found", format!("no saved report with id {uuid} that you may see"))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Replaces who the report is shared with (as [`Self::update`] may).
    pub async fn share(
        &self,
        actor: &Actor,
        id: SavedReportId,
        sharing: Sharing,
        expected_version: Option<i64>,
    ) -> Result<SavedReport> {
        let crm = self.crm;
        let before = self.writable(actor, id, Action::Update).await?;
        check_version(expected_version, before.meta.version)?;
        let mut errs = Errors::new();
        let shared_with = self.check_sharing(sharing, &mut errs).await?;
        errs.finish()?;
        let after = SavedReport { shared_with, ..before.clone() };
        crm.commit_update(actor, &before, after, "shared", Default::default()).await
    }

    /// Soft-deletes a saved report.
    pub async fn delete(&self, actor: &Actor, id: SavedReportId, expected_version: Option<i64>) -> Result<SavedReport> {
        self.writable(actor, id, Action::Delete).await?;
        self.crm.soft_delete(actor, id.as_uuid(), expected_version).await
    }

    /// Restores a saved report.
    pub async fn restore(&self, actor: &Actor, id: SavedReportId) -> Result<SavedReport> {
        self.crm.restore_record(actor, id.as_uuid()).await
    }

    /// Runs a saved report on the caller's snapshot: what the caller may read, whoever
    /// owns the report. `overrides` replace the saved parameters of a standard report.
    pub async fn run(&self, actor: &Actor, id: SavedReportId, overrides: &Params) -> Result<SavedRun> {
        self.run_for(actor, id, overrides, &crate::analytics::Cut::default()).await
    }

    /// [`run`](Self::run) over what a dashboard's filters keep (some users' records, a
    /// period; see [`Crm::standard_report_of`] and [`Crm::custom_report_of`]), which
    /// apply to a saved report's card as to a standard one's.
    pub async fn run_for(
        &self,
        actor: &Actor,
        id: SavedReportId,
        overrides: &Params,
        cut: &crate::analytics::Cut,
    ) -> Result<SavedRun> {
        let crm = self.crm;
        let report = self.get(actor, id).await?;
        if report.cards.is_some() {
            return Err(Error::invalid(
                "cards",
                "invalid_value",
                "a saved dashboard is opened, not run: run its cards (GET /api/reports/standard/{name} or /api/reports/saved/{id}/run)",
            ));
        }
        let (name, frame, parameters) = match (&report.standard, &report.spec) {
            (Some(standard), _) => {
                let params = Params::from(report.parameters).overridden_by(overrides);
                let (frame, resolved) = crm.standard_report_of(actor, standard, &params, cut).await?;
                (standard.clone(), frame, resolved.shown(standard))
            }
            (None, Some(json)) => {
                if *overrides != Params::default() {
                    return Err(Error::invalid(
                        "parameters",
                        "invalid_value",
                        "a custom report takes no parameters; its spec holds its filters",
                    ));
                }
                let spec = stored_spec(json)?;
                ("custom".to_string(), crm.custom_report_of(actor, &spec, cut).await?, vec![])
            }
            (None, None) => return Err(Error::internal_msg("a saved report without a definition")),
        };
        let chart = report.chart.clone().or_else(|| name.parse::<StandardReport>().ok().map(|r| r.chart()));
        Ok(SavedRun { title: report.name.clone(), report, name, parameters, frame, chart })
    }

    /// The live report `id` if the actor may do `action` on it. One they only see through
    /// sharing answers `Forbidden`; one they cannot see, `NotFound`.
    async fn writable(&self, actor: &Actor, id: SavedReportId, action: Action) -> Result<SavedReport> {
        match self.crm.authorized::<SavedReport>(actor, id.as_uuid(), action).await {
            Err(Error::NotFound { entity }) => match self.get(actor, id).await {
                Ok(r) if !r.meta.is_deleted() => Err(Error::forbidden(format!(
                    "this report is shared with you; only its owner (or a manager or admin over them) may {}",
                    match action {
                        Action::Delete => "delete it",
                        Action::Assign => "give it away",
                        _ => "change it",
                    }
                ))),
                _ => Err(Error::NotFound { entity }),
            },
            other => other,
        }
    }

    /// Checks the users and teams a report is to be shared with, dropping repeats.
    async fn check_sharing(&self, sharing: Sharing, errs: &mut Errors) -> Result<Sharing> {
        let crm = self.crm;
        let mut out = Sharing::default();
        for (field, n) in [
            ("sharedWith.users", sharing.users.len()),
            ("sharedWith.teams", sharing.teams.len()),
            ("sharedWith.roles", sharing.roles.len()),
        ] {
            if n > MAX_SHARES {
                errs.add(field, "too_long", format!("a report is shared with at most {MAX_SHARES} entries here"));
            }
        }
        for (i, user) in sharing.users.into_iter().enumerate() {
            if out.users.contains(&user) {
                continue;
            }
            crm.check_user(user, &format!("sharedWith.users.{i}"), errs).await?;
            out.users.push(user);
        }
        for (i, team) in sharing.teams.into_iter().enumerate() {
            if out.teams.contains(&team) {
                continue;
            }
            if crm.load::<Team>(team.as_uuid()).await?.is_none_or(|t| t.meta.is_deleted()) {
                errs.add(format!("sharedWith.teams.{i}"), "not_found", format!("no team with id {team}"));
            }
            out.teams.push(team);
        }
        for role in sharing.roles {
            if !out.roles.contains(&role) {
                out.roles.push(role);
            }
        }
        Ok(out)
    }
}

/// The stored spec of a saved report, read back.
fn stored_spec(json: &serde_json::Value) -> Result<ReportSpec> {
    serde_json::from_value(json.clone()).map_err(|e| Error::internal("a saved report's spec", e))
}

/// Checks that a report is either a standard report (with parameters) or a custom one,
/// and compiles the spec; answers the spec as stored.
fn check_definition(
    errs: &mut Errors,
    standard: Option<&str>,
    parameters: &StandardParams,
    spec: Option<&ReportSpec>,
) -> Option<serde_json::Value> {
    match (standard, spec) {
        (None, None) => {
            errs.add("standard", "required", "a saved report needs `standard` (a standard report's name) or `spec`");
        }
        (Some(_), Some(_)) => {
            errs.add("spec", "invalid_value", "a saved report is either `standard` or `spec`, not both");
        }
        (Some(name), None) => {
            if name.parse::<StandardReport>().is_err() {
                errs.add(
                    "standard",
                    "invalid_value",
                    format!("'{name}' is not one of {}", StandardReport::CHOICES.join(", ")),
                );
            }
            if let (Some(as_of), Some(end)) = (parameters.as_of, parameters.forecast_end) {
                if end <= as_of.date_naive() {
                    errs.add("parameters.forecastEnd", "out_of_range", "forecastEnd comes after asOf");
                }
            }
            if let (Some(as_of), Some(start)) = (parameters.as_of, parameters.engagement_start) {
                if start > as_of {
                    errs.add("parameters.engagementStart", "out_of_range", "engagementStart comes before asOf");
                }
            }
        }
        (None, Some(spec)) => {
            if *parameters != StandardParams::default() {
                errs.add(
                    "parameters",
                    "invalid_value",
                    "parameters belong to standard reports; a spec holds its filters",
                );
            }
            match custom::compile(spec) {
                Ok(_) => return serde_json::to_value(spec).ok(),
                Err(Error::Validation(list)) => {
                    let mut inner = Errors::new();
                    for e in list {
                        inner.add(e.field, e.code, e.message);
                    }
                    errs.nest("spec", inner);
                }
                Err(other) => errs.add("spec", other.code(), other.to_string()),
            }
        }
    }
    None
}

/// Checks a chart's shape (its columns are checked against the report when drawn).
fn check_chart(errs: &mut Errors, chart: &ChartSpec) {
    if chart.x.trim().is_empty() {
        errs.add("chart.x", "required", "chart.x names the column along the axis");
    } else if chart.x.chars().count() > 200 {
        errs.add("chart.x", "too_long", "a column name has at most 200 characters");
    }
    for (i, y) in chart.y.iter().enumerate().take(MAX_SERIES + 1) {
        if y.trim().is_empty() || y.chars().count() > 200 {
            errs.add(format!("chart.y.{i}"), "invalid_value", "a column name of 1 to 200 characters");
        }
    }
    match (chart.kind, chart.y.len()) {
        (_, 0) => errs.add("chart.y", "required", "chart.y names the columns plotted"),
        (ChartKind::Funnel, n) if n > 1 => errs.add("chart.y", "out_of_range", "a funnel plots exactly one column"),
        (_, n) if n > MAX_SERIES => {
            errs.add("chart.y", "out_of_range", format!("a chart plots at most {MAX_SERIES} columns"))
        }
        _ => {}
    }
    if let Some(t) = &chart.title {
        input::text(errs, "chart.title", Some(t.clone()), 200, false);
    }
}

/// Live reports shared with the actor (by user, team or role).
fn shared_filter(actor: &Actor) -> Result<Option<Filter>> {
    let kind = EntityKind::SavedReport;
    let eq = |name: &str, v: Value| -> Result<Filter> {
        Ok(Filter::Cmp(Cmp { column: kind.require_column(name)?, pred: Predicate::Eq(v) }))
    };
    let mut any = vec![
        eq("shared_users", Value::Uuid(actor.user_id.as_uuid()))?,
        eq("shared_roles", Value::Text(actor.role.as_str().to_string()))?,
    ];
    if let Some(team) = actor.team_id {
        any.push(eq("shared_teams", Value::Uuid(Uuid::from(team)))?);
    }
    // Sharing shows live reports only, even to those who list deleted records.
    let live = Filter::Cmp(Cmp { column: kind.require_column("deleted_at")?, pred: Predicate::IsNull });
    Ok(Some(Filter::And(vec![Filter::Or(any), live])))
}
