//! Login latency through the public services on SQLite and PostgreSQL: argon2id at the
//! OWASP parameters, the lockout bookkeeping, the session and refresh token writes, the
//! audit event and the JWT. Median and p99 of sequential logins, then of 16 callers at
//! once (with their throughput), then the access-token check (cached and not).
//!
//! `cargo bench -p crm-benches --bench login` (figures printed and written to
//! `target/crm-bench/login.txt`; `CRM_BENCH_LOGINS` sets the count, default 200).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::service::NewUser;
use crm_core::{Crm, RequestMeta, Store};
use crm_storage_sql::SqlStore;

const PASSWORD: &str = "correct horse battery staple";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn line(name: &str, mut d: Vec<Duration>) -> String {
    d.sort();
    format!(
        "{name:<40} n={:<5} median {:>8.2} ms   p99 {:>8.2} ms",
        d.len(),
        percentile(&d, 0.5).as_secs_f64() * 1e3,
        percentile(&d, 0.99).as_secs_f64() * 1e3
    )
}

async fn run(backend: &str, store: Arc<dyn Store>, n: usize) -> Vec<String> {
    let crm = Crm::new(store);
    let admin = crm.users().bootstrap_admin("admin", "admin@example.com").await.expect("admin").actor();
    // One account per caller: logins of different people, as a real storm has.
    for i in 0..16 {
        let input = NewUser {
            username: format!("bench{i}"),
            email: format!("bench{i}@example.com"),
            role: None,
            team_id: None,
            password: Some(PASSWORD.into()),
        };
        crm.users().create(&admin, input).await.expect("user");
    }
    let meta = RequestMeta::default();
    // Warm-up: the decoy hash, connections, statement caches.
    for _ in 0..5 {
        crm.auth().login("bench0", PASSWORD, meta.clone()).await.expect("login");
    }
    let mut out = Vec::new();
    let mut seq = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(crm.auth().login("bench0", PASSWORD, meta.clone()).await.expect("login"));
        seq.push(t.elapsed());
    }
    out.push(line(&format!("{backend} login, 1 caller"), seq));

    let callers = 16;
    let per = (n / callers).max(4);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for caller in 0..callers {
        let crm = crm.clone();
        let meta = meta.clone();
        set.spawn(async move {
            let mut d = Vec::with_capacity(per);
            let who = format!("bench{caller}");
            for _ in 0..per {
                let t = Instant::now();
                crm.auth().login(&who, PASSWORD, meta.clone()).await.expect("login");
                d.push(t.elapsed());
            }
            d
        });
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r.expect("join"));
    }
    let wall = start.elapsed();
    let rate = all.len() as f64 / wall.as_secs_f64();
    out.push(format!("{}   {rate:.1} logins/s", line(&format!("{backend} login, {callers} callers"), all)));

    let token = last.expect("a login").access_token;
    let mut cached = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        crm.auth().authenticate(&token, meta.clone()).await.expect("auth");
        cached.push(t.elapsed());
    }
    out.push(line(&format!("{backend} authenticate (cached)"), cached));
    let mut fresh = Vec::with_capacity(n / 4);
    for _ in 0..(n / 4).max(10) {
        // Past the 1 s cache: the session and user are read again.
        tokio::time::sleep(Duration::from_millis(1010)).await;
        let t = Instant::now();
        crm.auth().authenticate(&token, meta.clone()).await.expect("auth");
        fresh.push(t.elapsed());
        if fresh.len() >= 10 {
            break;
        }
    }
    out.push(line(&format!("{backend} authenticate (cache expired)"), fresh));
    out
}

fn main() {
    let n: usize = std::env::var("CRM_BENCH_LOGINS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let mut lines = vec![format!(
        "login bench: {} cores, argon2id m=19456 t=2 p=1, {n} logins",
        std::thread::available_parallelism().map(|c| c.get()).unwrap_or(0)
    )];
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("crm-bench-login-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
        let sqlite = Arc::new(SqlStore::connect(&url).await.expect("sqlite"));
        lines.extend(run("sqlite", sqlite.clone(), n).await);
        sqlite.close().await;
        let _ = std::fs::remove_dir_all(&dir);

        let base = crm_tests::backends::postgres_url();
        let schema = format!("bench_login_{}", std::process::id());
        let opts = crm_storage_sql::SqlOptions { pg_schema: Some(schema.clone()), ..Default::default() };
        let pg = Arc::new(SqlStore::connect_with(&base, opts).await.expect("postgres"));
        lines.extend(run("postgres", pg.clone(), n).await);
        pg.close().await;
        SqlStore::drop_pg_schema(&base, &schema).await.expect("drop schema");
    });
    let text = lines.join("\n");
    println!("{text}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/crm-bench");
    if std::fs::create_dir_all(&out).is_ok() {
        let _ = std::fs::write(out.join("login.txt"), format!("{text}\n"));
    }
}
