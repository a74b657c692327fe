//! Demo data (cargo feature `demo`; `crm-server seed-demo`, `crm.seed_demo` in Python): a living CRM for a first look — teams and sales reps, a few
//! hundred companies, thousands of contacts, deals spread over the pipeline with their
//! stage history, tasks and logged calls and meetings. Everything goes through the
//! public services (policy, validation, audit and outbox included), on a clock set back
//! 18 months and moved forward as the story goes: companies and contacts arrive over the
//! months, deals are opened month after month and move through their stages days or
//! weeks apart (the recent ones are still open), tasks fall due and are done, calls and
//! meetings happen — so every report has a shape. Deterministic: the same sizes give the
//! same data (relative to the day it is seeded).

use crate::model::task::{Related, RelatedType};
use crate::service::{NewCompany, NewContact, NewDeal, NewInteraction, NewTask, NewTeam, NewUser};
use crate::{
    Actor, CompanyId, ContactId, Crm, DealStage, InteractionKind, LifecycleStage, Result, Role, TaskPriority, UserId,
};
use chrono::{Duration, NaiveDate};
use std::sync::Arc;

/// How far back the demo's story starts.
pub const HISTORY_DAYS: i64 = 548;

/// How much to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSize {
    /// How many companies to make.
    pub companies: usize,
    /// How many contacts to make, spread over the companies.
    pub contacts: usize,
    /// How many deals to make, with their stage histories.
    pub deals: usize,
}

impl Default for DemoSize {
    fn default() -> Self {
        Self { companies: 300, contacts: 5_000, deals: 2_000 }
    }
}

/// What was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoReport {
    /// Reps made (they log in with [`DEMO_PASSWORD`]).
    pub reps: Vec<String>,
    /// Companies made.
    pub companies: usize,
    /// Contacts made.
    pub contacts: usize,
    /// Deals made.
    pub deals: usize,
    /// Tasks made (follow-ups on deals and contacts).
    pub tasks: usize,
    /// Interactions made (calls, emails, meetings on the timeline).
    pub interactions: usize,
}

/// The reps' password.
pub const DEMO_PASSWORD: &str = "demo pipeline 2026 rocks";

const FIRST: [&str; 24] = [
    "Ann", "Bruno", "Chloé", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ivan", "Jade", "Kofi", "Lena", "Mateo",
    "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tomás", "Uma", "Viktor", "Wen", "Yara",
];
const LAST: [&str; 20] = [
    "Lee", "Martin", "Dubois", "Ivanova", "Yilmaz", "Haddad", "Berg", "Sato", "Petrov", "Moreau", "Mensah", "Fischer",
    "García", "Rahman", "Kaya", "Patel", "Lefèvre", "Rossi", "Nilsson", "Silva",
];
const WORDS: [&str; 20] = [
    "Acme",
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Oscorp",
    "Wonka",
    "Aperture",
    "Massive",
    "Nakatomi",
    "Gringotts",
    "Monarch",
    "Pied Piper",
];
const SUFFIX: [&str; 5] = ["Labs", "Systems", "Foods", "Logistics", "Partners"];
const INDUSTRIES: [&str; 8] =
    ["software", "retail", "manufacturing", "logistics", "healthcare", "finance", "energy", "education"];
const COUNTRIES: [&str; 8] = ["FR", "DE", "GB", "US", "ES", "IT", "NL", "SE"];
const TITLES: [&str; 8] =
    ["CEO", "CTO", "Head of Sales", "Buyer", "Operations Manager", "CFO", "Engineer", "Marketing Lead"];
const SOURCES: [&str; 5] = ["website", "referral", "event", "cold_call", "partner"];

/// A small deterministic generator (no randomness needed for demo data).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        let i = usize::try_from(self.next()).unwrap_or(0) % xs.len();
        &xs[i]
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The first admin, or one made now as `admin` with [`DEMO_PASSWORD`] when there is
/// none; `true` when it was made.
pub async fn admin(crm: &Crm) -> Result<(crate::User, bool)> {
    let system = Actor::new(UserId(uuid::Uuid::nil()), Role::Admin, None);
    let filter = crate::query::Filter::eq(crate::EntityKind::User, "role", crate::schema::Value::Text("admin".into()))?;
    let admins = crm.users().list(&system, crate::ListQuery::new().filter(filter)).await?;
    match admins.data.into_iter().next() {
        Some(a) => Ok((a, false)),
        None => {
            let made = crm.users().bootstrap_admin_with_password("admin", "admin@demo.example", DEMO_PASSWORD).await?;
            Ok((made, true))
        }
    }
}

/// Seeds the demo through `admin`, calling `progress(done, total, what)` as it goes.
pub async fn seed(crm: &Crm, admin: &Actor, size: DemoSize, progress: &dyn Fn(u64, u64, &str)) -> Result<DemoReport> {
    let now = crm.now();
    let start = now - Duration::days(HISTORY_DAYS);
    let clock = Arc::new(crate::clock::FakeClock::new(start));
    let crm = &crm.with_clock(clock.clone());
    // A day `d` days into the story (never after today).
    let day = |d: i64| (start + Duration::days(d)).min(now);
    let mut g = Gen(2026);
    let mut report = DemoReport::default();
    let total = (6 + size.companies + size.contacts + size.deals * 2) as u64;
    let mut done = 0u64;

    // Two teams, each with a manager and two reps.
    let mut reps: Vec<(Actor, UserId)> = Vec::new();
    for (t, team_name) in ["Enterprise", "Mid-Market"].iter().enumerate() {
        let team = crm.teams().create(admin, NewTeam { name: (*team_name).into(), ..Default::default() }).await?;
        for (r, role) in [Role::Manager, Role::User, Role::User].iter().enumerate() {
            let username = format!("demo-{}-{}", team_name.to_lowercase(), r);
            let user = crm
                .users()
                .create(
                    admin,
                    NewUser {
                        username: username.clone(),
                        email: format!("{username}@demo.example"),
                        role: Some(*role),
                        team_id: Some(team.id),
                        password: Some(DEMO_PASSWORD.into()),
                    },
                )
                .await?;
            report.reps.push(username);
            reps.push((user.actor(), user.id));
            done += 1;
            progress(done, total, "users");
        }
        let _ = t;
    }

    // (company, owning rep, domain)
    let mut companies: Vec<(CompanyId, usize, String)> = Vec::with_capacity(size.companies);
    for i in 0..size.companies {
        let rep = usize::try_from(g.below(reps.len() as u64)).unwrap_or(0);
        let actor = reps[rep].0.clone();
        clock.set(day(i64::try_from(i * 365 / size.companies.max(1)).unwrap_or(0)));
        let base = format!("{} {}", g.pick(&WORDS), g.pick(&SUFFIX));
        let name = format!("{base} {}", i + 1);
        let domain = format!("{}-{}.example", base.to_lowercase().replace(' ', "-"), i + 1);
        let c = crm
            .companies()
            .create(
                &actor,
                NewCompany {
                    name,
                    domain: Some(domain.clone()),
                    industry: Some((*g.pick(&INDUSTRIES)).into()),
                    size: Some(i64::try_from(10 + g.below(5_000)).unwrap_or(10)),
                    country: Some((*g.pick(&COUNTRIES)).into()),
                    ..Default::default()
                },
            )
            .await?;
        companies.push((c.id, rep, domain));
        done += 1;
        progress(done, total, "companies");
    }
    report.companies = companies.len();

    // Contacts in batches of up to 1,000 per owner.
    let stages = LifecycleStage::ALL;
    let mut contacts: Vec<(ContactId, Option<CompanyId>, usize)> = Vec::with_capacity(size.contacts);
    let mut i = 0;
    while i < size.contacts {
        let rep = usize::try_from(g.below(reps.len() as u64)).unwrap_or(0);
        // Leads keep coming: a batch every few weeks.
        let batch = (size.contacts - i).min(250);
        clock.set(day(
            i64::try_from(i * usize::try_from(HISTORY_DAYS).unwrap_or(548) / size.contacts.max(1)).unwrap_or(0)
        ));
        let mut inputs = Vec::with_capacity(batch);
        // A rep's contacts work at the rep's companies (the ones they can see).
        let theirs: Vec<&(CompanyId, usize, String)> = companies.iter().filter(|c| c.1 == rep).collect();
        for j in 0..batch {
            let n = i + j;
            let company = (!theirs.is_empty()).then(|| theirs[n % theirs.len()].clone());
            let (first, last) = (g.pick(&FIRST), g.pick(&LAST));
            let domain = company.as_ref().map(|c| c.2.clone()).unwrap_or_else(|| "mail.example".into());
            let local: String = format!("{first}.{last}.{n}").to_lowercase().chars().filter(char::is_ascii).collect();
            inputs.push(NewContact {
                name: format!("{first} {last}"),
                email: Some(format!("{local}@{domain}")),
                phone_number: Some(format!("+3361{:07}", n)),
                job_title: Some((*g.pick(&TITLES)).into()),
                company_id: company.map(|c| c.0),
                lead_source: Some((*g.pick(&SOURCES)).into()),
                lifecycle_stage: Some(*g.pick(stages)),
                tags: if n % 7 == 0 { vec!["vip".into()] } else { vec![] },
                ..Default::default()
            });
        }
        let made = crm.contacts().create_many(&reps[rep].0, inputs).await?;
        contacts.extend(made.iter().map(|c| (c.id, c.company_id, rep)));
        i += batch;
        done += batch as u64;
        progress(done, total, "contacts");
    }
    report.contacts = contacts.len();

    let pipeline = [
        DealStage::Prospecting,
        DealStage::Qualification,
        DealStage::Proposal,
        DealStage::Negotiation,
        DealStage::ClosedWon,
        DealStage::ClosedLost,
    ];
    for n in 0..size.deals {
        if contacts.is_empty() {
            break;
        }
        // Deals open month after month, from the second month on.
        let opened =
            day(30
                + i64::try_from(n * usize::try_from(HISTORY_DAYS - 40).unwrap_or(500) / size.deals.max(1))
                    .unwrap_or(0));
        clock.set(opened);
        let today = opened.date_naive();
        let (contact, company, rep) = contacts[usize::try_from(g.below(contacts.len() as u64)).unwrap_or(0)];
        let actor = reps[rep].0.clone();
        let deal = crm
            .deals()
            .create(
                &actor,
                NewDeal {
                    name: format!("{} — deal {}", g.pick(&WORDS), n + 1),
                    amount: Some(i64::try_from(1_000 + g.below(250_000)).unwrap_or(1_000) * 100),
                    currency: Some((*g.pick(&["EUR", "EUR", "USD", "GBP"])).into()),
                    expected_close_date: today
                        .checked_add_signed(Duration::days(30 + i64::try_from(g.below(120)).unwrap_or(30)))
                        .or(NaiveDate::from_ymd_opt(2027, 1, 1))
                        .map(Into::into),
                    contact_ids: vec![contact],
                    company_id: company,
                    ..Default::default()
                },
            )
            .await?;
        done += 1;
        // Move it along the pipeline: a history of real stage changes.
        let target = usize::try_from(g.below(pipeline.len() as u64)).unwrap_or(0);
        let path: Vec<DealStage> = if target >= 4 {
            pipeline[1..4].iter().copied().chain([pipeline[target]]).collect()
        } else {
            pipeline[1..=target].to_vec()
        };
        // Each step days or weeks after the last; what would come after today has not
        // happened yet (the deal is still open).
        let mut at = opened;
        for stage in path {
            at += Duration::days(3 + i64::try_from(g.below(25)).unwrap_or(7))
                + Duration::minutes(i64::try_from(g.below(600)).unwrap_or(0));
            if at >= now {
                break;
            }
            clock.set(at);
            crm.deals().move_to(&actor, deal.id, stage).await?;
        }
        clock.set(opened);
        done += 1;
        progress(done, total, "deals");
        report.deals += 1;
        if n % 3 == 0 {
            let due = opened + Duration::days(2 + i64::try_from(g.below(30)).unwrap_or(7));
            let task = crm
                .tasks()
                .create(
                    &actor,
                    NewTask {
                        name: format!("Follow up on {}", deal.name),
                        priority: Some(*g.pick(TaskPriority::ALL)),
                        due_date: Some(due.into()),
                        related: Some(Related { kind: RelatedType::Deal, id: deal.id.as_uuid() }),
                        ..Default::default()
                    },
                )
                .await?;
            // Most past tasks were done on time.
            if due < now && g.below(10) < 8 {
                clock.set(due);
                crm.tasks().complete(&actor, task.id).await?;
            }
            report.tasks += 1;
        }
        if n % 2 == 0 {
            clock.set((opened + Duration::days(1 + i64::try_from(g.below(14)).unwrap_or(3))).min(now));
            crm.interactions()
                .log(
                    &actor,
                    NewInteraction {
                        contact_id: contact,
                        kind: *g.pick(&[InteractionKind::Call, InteractionKind::Meeting, InteractionKind::Email]),
                        deal_id: Some(deal.id),
                        subject: Some("Discovery".into()),
                        body: Some("Talked about needs, budget and timing.".into()),
                        occurred_at: None,
                    },
                )
                .await?;
            report.interactions += 1;
        }
    }
    Ok(report)
}
