//! Shared set-up of the crm-rs benchmarks: a CRM on a fresh store of each backend,
//! seeded with a realistic contact base through the public services.

/// Every bench allocates as `crm-server` does (its default feature `mimalloc`), so what
/// runs in the bench process (an import, a report) is measured as the server runs it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod scale1;

use crm_core::service::{NewCompany, NewContact, NewUser};
use crm_core::{Actor, CompanyId, ContactId, Crm, LifecycleStage, Result, Role};

/// How many contacts the benchmarks seed: `CRM_BENCH_ROWS`, default 100,000.
pub fn bench_rows() -> usize {
    std::env::var("CRM_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// A seeded CRM: the admin, a plain user who owns a share of the contacts, and the ids.
pub struct Seeded {
    /// The bootstrap admin.
    pub admin: Actor,
    /// A sales rep owning about a tenth of the contacts.
    pub rep: Actor,
    /// Every seeded contact's id, in creation order.
    pub contacts: Vec<ContactId>,
}

const STAGES: [LifecycleStage; 6] = [
    LifecycleStage::Subscriber,
    LifecycleStage::Lead,
    LifecycleStage::Mql,
    LifecycleStage::Sql,
    LifecycleStage::Opportunity,
    LifecycleStage::Customer,
];
const FIRST: [&str; 12] =
    ["Ann", "Bob", "Carla", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kira", "Luis"];
const LAST: [&str; 10] = ["Lee", "Stone", "Díaz", "Patel", "Müller", "Okafor", "Rossi", "Nguyen", "Smith", "Kowalski"];

/// A contact input numbered `i` (unique email; names, stages and tags spread).
pub fn contact_input(i: usize, company: Option<CompanyId>, owner: Option<crm_core::UserId>) -> NewContact {
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i / FIRST.len()) % LAST.len()];
    NewContact {
        name: format!("{first} {last} {i}"),
        email: Some(format!("{}.{}.{i}@example{}.com", first.to_lowercase(), i % 97, i % 13)),
        phone_number: i.is_multiple_of(3).then(|| format!("+4420794{:05}", i % 100_000)),
        job_title: Some(["CEO", "CTO", "Buyer", "Engineer", "Head of Sales"][i % 5].to_string()),
        lead_source: Some(["web", "referral", "event", "ads"][i % 4].to_string()),
        // Scrambled so that stages do not follow the order of names or of creation.
        lifecycle_stage: Some(STAGES[(i.wrapping_mul(2_654_435_761) >> 8) % STAGES.len()]),
        tags: if i.is_multiple_of(4) { vec!["vip".into()] } else { vec![] },
        company_id: company,
        owner_id: owner,
        ..Default::default()
    }
}

/// Creates an admin, a rep, 200 companies and `rows` contacts (in batches of 1,000).
pub async fn seed(crm: &Crm, rows: usize) -> Result<Seeded> {
    let admin = crm.users().bootstrap_admin("admin", "admin@example.com").await?.actor();
    let rep = crm
        .users()
        .create(
            &admin,
            NewUser {
                username: "rep".into(),
                email: "rep@example.com".into(),
                role: Some(Role::User),
                team_id: None,
                password: None,
            },
        )
        .await?
        .actor();
    let mut companies = Vec::new();
    for i in 0..200 {
        let c = crm
            .companies()
            .create(
                &admin,
                NewCompany {
                    name: format!("Company {i}"),
                    domain: Some(format!("company{i}.com")),
                    ..Default::default()
                },
            )
            .await?;
        companies.push(c.id);
    }
    let mut contacts = Vec::with_capacity(rows);
    let mut i = 0;
    while i < rows {
        let end = (i + crm_core::service::MAX_BATCH).min(rows);
        let batch = (i..end)
            .map(|n| {
                let owner = (n % 10 == 0).then_some(rep.user_id);
                contact_input(n, (n % 5 != 0).then(|| companies[n % companies.len()]), owner)
            })
            .collect();
        contacts.extend(crm.contacts().create_many(&admin, batch).await?.into_iter().map(|c| c.id));
        i = end;
    }
    Ok(Seeded { admin, rep, contacts })
}

/// The engine the throughput benches run: bench keys, and `config` (outgoing calls).
pub fn bench_crm(store: std::sync::Arc<dyn crm_core::Store>, config: crm_core::CrmConfig) -> Crm {
    let jwt = crm_core::auth::JwtKeys::new(
        crm_core::auth::JwtConfig::default(),
        "bench",
        b"bench-secret-bench-secret-0123456789",
    );
    let auth = crm_core::auth::AuthSettings::with_keys(
        jwt.unwrap_or_else(|e| panic!("bench keys: {e}")),
        crm_core::auth::Sealer::new(&[7; 32]),
    );
    Crm::builder(store).config(config).auth(auth).build()
}

/// A fresh store of `backend` (`sqlite`: a file in the temp directory; `postgres`: a
/// schema of its own on the test server) named after `bench`.
pub async fn bench_store(backend: &str, bench: &str) -> std::sync::Arc<dyn crm_core::Store> {
    use crm_storage_sql::SqlStore;
    match backend {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("crm-bench-{bench}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
            std::sync::Arc::new(SqlStore::connect(&url).await.unwrap_or_else(|e| panic!("sqlite: {e}")))
        }
        "postgres" => {
            let base = crm_tests::backends::postgres_url();
            let schema = format!("bench_{bench}_{}", std::process::id());
            let opts = crm_storage_sql::SqlOptions { pg_schema: Some(schema), ..Default::default() };
            std::sync::Arc::new(SqlStore::connect_with(&base, opts).await.unwrap_or_else(|e| panic!("postgres: {e}")))
        }
        other => panic!("unknown backend {other}"),
    }
}

/// A field of `/proc/self/status` in bytes (`VmRSS:`, `VmHWM:`; 0 off Linux).
pub fn proc_status(name: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1));
    kb.and_then(|kb| kb.parse::<usize>().ok()).unwrap_or(0) * 1024
}

/// Resets the process's resident-set high-water mark (Linux: `5` written to
/// `/proc/self/clear_refs`) and answers the resident set it starts from.
pub fn peak_rss_reset() -> usize {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    proc_status("VmRSS:")
}

/// The resident set's high-water mark since [`peak_rss_reset`].
pub fn peak_rss() -> usize {
    proc_status("VmHWM:")
}
