//! `crm-server`: the crm-rs REST API.
//!
//! ```text
//! crm-server [serve]        # listen (default 127.0.0.1:8080) on the SQLite file crm.db
//! crm-server worker         # deliver (mail, webhooks, notifications) without serving
//! crm-server migrate        # create or upgrade the database schema
//! crm-server create-admin --username U --email E --password P
//! ```
//!
//! Every flag has a `CRM_*` environment variable; see `crm-server --help`.

/// Allocations go through mimalloc (feature `mimalloc`, on by default): see the
/// feature's note in `Cargo.toml`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use crm_http::config::ServerConfig;
use crm_http::{router, AppState};

#[derive(Parser)]
#[command(name = "crm-server", version, about = "The crm-rs REST API server")]
struct Cli {
    /// A TOML file of settings (keys: database_url, bind, smtp_url, public_url, …);
    /// flags and CRM_* variables win over it.
    #[arg(long = "config", env = "CRM_CONFIG", global = true)]
    config_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    config: ServerConfig,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default); it delivers too unless `--no-worker`.
    Serve,
    /// Deliver emails, webhooks and notifications without serving the API (as many
    /// workers as wanted, beside the servers: each delivery is claimed by one).
    Worker,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Import a CSV or XLSX file of contacts, companies, deals or tasks with a progress
    /// bar, then exit. Rows that match a record (by email, domain, id or a custom field)
    /// update it. A killed import continues where it stopped with `--resume JOB`.
    Import {
        /// The file (.csv or .xlsx); not with --resume.
        file: Option<std::path::PathBuf>,
        /// contacts, companies, deals or tasks.
        #[arg(long, default_value = "contacts")]
        kind: String,
        /// How rows find the record they update: email, domain, id, customFields.<name>,
        /// or none (default: suggested from the headers).
        #[arg(long = "match")]
        match_by: Option<String>,
        /// A column's field, as `Header=field` (`Header=` leaves it out); repeatable.
        /// Default: suggested from the headers.
        #[arg(long = "map")]
        map: Vec<String>,
        /// Check every row and write the results, importing nothing.
        #[arg(long)]
        dry_run: bool,
        /// The user (name or email) the rows are imported as (default: the first admin).
        #[arg(long = "as")]
        as_user: Option<String>,
        /// Where to write each row's outcome (CSV); default: FILE.results.csv when a row failed.
        #[arg(long)]
        results: Option<std::path::PathBuf>,
        /// Continue this job after its last committed batch.
        #[arg(long)]
        resume: Option<uuid::Uuid>,
    },
    /// Write every record of a list (contacts, companies, deals, tasks, interactions)
    /// that a filter finds to a file or standard output, as CSV, XLSX or Parquet, then
    /// exit. Read with the rights of `--as` (default: the first active admin) and audited
    /// as their export.
    Export {
        /// The list: contacts, companies, deals, tasks or interactions.
        kind: String,
        /// The file; without it, standard output.
        #[arg(long, short = 'o')]
        output: Option<std::path::PathBuf>,
        /// csv, xlsx or parquet (default: the output's extension, else csv).
        #[arg(long)]
        format: Option<String>,
        /// A filter in the API's grammar (`lifecycleStage[eq]:lead`).
        #[arg(long)]
        filter: Option<String>,
        /// Free-text search.
        #[arg(long)]
        q: Option<String>,
        /// Sort keys (`name,-createdAt`: a leading `-` sorts descending).
        #[arg(long)]
        sort: Option<String>,
        /// Soft-deleted records too.
        #[arg(long)]
        include_deleted: bool,
        /// The user whose rights and scope the export has (user name or email; default:
        /// the first active admin).
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Take in a bounce mailbox (an mbox file of delivery status notifications and abuse
    /// reports): hard bounces and complaints suppress their address; then exit.
    Bounces {
        /// The mbox file.
        #[arg(long)]
        mbox: std::path::PathBuf,
    },
    /// Seal every stored billing field (bank details, tax ids) again under the current
    /// billing key, then exit: run it after making a new key current with the old one in
    /// `--billing-previous-keys`; then the old key may go.
    RotateKeys,
    /// Copy the whole CRM into another database, then exit: every record (deleted ones,
    /// sessions and queued deliveries too), the audit chain (verified after) and, with
    /// `--files-to`, the files. The target must be empty; a copy that stopped continues
    /// with `--resume`. Stop the servers and workers on the source first.
    Copy {
        /// The database copied from (default: `--database-url`).
        #[arg(long)]
        from: Option<String>,
        /// The database copied to: `sqlite://path`, `postgres://…`, `mysql://…` (MariaDB)
        /// or `mongodb://…`.
        #[arg(long)]
        to: String,
        /// Copy the files too, into this directory or `s3://bucket[/prefix]` (default:
        /// they stay where `--files-dir`/`--files-url` keep them, for the new servers too).
        #[arg(long)]
        files_to: Option<String>,
        /// Continue a copy that stopped: rows the target holds already are left out.
        #[arg(long)]
        resume: bool,
        /// Rows per write transaction.
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch: u32,
    },
    /// Write the whole CRM (records, audit chain, files) to one portable archive, then
    /// exit: a tar file (gzip when the name ends in .gz) with the data as a SQLite
    /// database. The secrets are not in it: keep them apart.
    Backup {
        /// The archive to write (`crm-backup.tar.gz`).
        #[arg(long, short = 'o')]
        to: std::path::PathBuf,
    },
    /// Restore an archive of `crm-server backup` into the database of `--database-url`
    /// (empty) and the files into `--files-dir`/`--files-url`, then exit. Run it with the
    /// secrets of the CRM backed up: its audit chain is verified under their key.
    Restore {
        /// The archive.
        archive: std::path::PathBuf,
        /// Continue a restore that stopped.
        #[arg(long)]
        resume: bool,
    },
    /// Print the OpenAPI document of the API (the web app's types are generated from it).
    Openapi,
    /// Create the first admin of an empty database, then exit.
    CreateAdmin {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Email address of the admin (confirmed at once: no link is sent).
        #[arg(long)]
        email: String,
        /// Password (at least 10 characters, not guessable).
        #[arg(long, env = "CRM_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Fill the database with a realistic demo (through the services), then exit.
    SeedDemo {
        /// How many companies to make.
        #[arg(long, default_value_t = 300)]
        companies: usize,
        /// How many contacts to make, spread over the companies.
        #[arg(long, default_value_t = 5_000)]
        contacts: usize,
        /// How many deals to make, with their stage histories.
        #[arg(long, default_value_t = 2_000)]
        deals: usize,
    },
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CRM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info,sqlx=warn"));
    let json = std::env::var("CRM_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn serve(config: ServerConfig) -> crm_core::Result<()> {
    let _one_server = config.hold_sqlite()?;
    let trusted_proxies = config.trusted_proxies()?;
    let store = config.store().await?;
    let crm = config.engine(store.store()).await?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let engine = config.delivery_engine(crm.clone())?;
    let consumers = engine.consumers();
    let campaigns = std::sync::Arc::new(config.campaign_sender(crm.clone())?);
    let mut campaign_stop = stop_rx.clone();
    let mail = (!config.no_worker).then(|| {
        tokio::spawn(engine.run(std::time::Duration::from_secs(1), async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }))
    });
    let sender = (!config.no_worker).then(|| {
        let sender = campaigns.clone();
        tokio::spawn(async move {
            sender
                .run_loop(std::time::Duration::from_secs(1), async move {
                    let _ = campaign_stop.wait_for(|stop| *stop).await;
                })
                .await
        })
    });
    // Expired sessions, tokens and idempotency records go once an hour, on one replica.
    let leader = Leader::new(crm.clone());
    let sweeper = leader.spawn(SWEEP, std::time::Duration::from_secs(3600), |crm| async move {
        if let Err(e) = crm.auth().purge_expired().await {
            tracing::warn!(error = %e, "purging expired sessions and tokens failed");
        }
    });
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| crm_core::Error::internal(format!("listening on {}", config.bind), e))?;
    let mail_to = match &config.smtp_url {
        Some(_) => "SMTP".to_string(),
        None => format!("{}/", config.mail_dir.display()),
    };
    tracing::info!(
        address = %config.bind,
        backend = store.store().backend(),
        mail = %mail_to,
        delivers = %if config.no_worker { "nothing (--no-worker)".to_string() } else { consumers.join(", ") },
        "crm-server listening on http://{}",
        config.bind
    );
    let a_minute = |limit| crm_http::limit::Quota { limit, window: std::time::Duration::from_secs(60) };
    let limits = crm_http::limit::RateLimits {
        per_ip: a_minute(config.auth_rate_limit),
        per_account: a_minute(config.login_rate_limit),
        gateway: a_minute(config.payment_rate_limit),
    };
    let payments = config.payments()?;
    // Gateway events a crash left queued are acted on here, every few seconds.
    let payment_loop = match (&payments, config.no_worker) {
        (Some(p), false) => Some(spawn_payment_loop(&leader, p.gateway.clone())),
        _ => None,
    };
    let recurring_loop = (!config.no_worker).then(|| spawn_recurring_loop(&leader, config.billing_interval));
    let import_loop = (!config.no_worker).then(|| spawn_import_loop(crm.clone()));
    let redis = config.redis().await?;
    let mut state = AppState::new(crm);
    if let Some(p) = payments {
        state = state.with_payments(p);
    }
    state = state
        .with_cors(config.cors_origins.clone())
        .with_limits(limits)
        .with_trusted_proxies(trusted_proxies)
        .with_report_concurrency(usize::try_from(config.report_concurrency).unwrap_or(2))
        .with_public_url(&config.mail_config()?.public_url)
        .with_campaigns(campaigns);
    if let Some(redis) = redis {
        state = state.with_redis(redis);
    }
    let app = router(state);
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await;
    // The mail worker finishes the batch it is sending, then stops.
    sweeper.abort();
    if let Some(p) = payment_loop {
        p.abort();
    }
    if let Some(r) = recurring_loop {
        r.abort();
    }
    if let Some(i) = import_loop {
        i.abort();
    }
    leader.release_all().await;
    let _ = stop_tx.send(true);
    if let Some(mail) = mail {
        let _ = mail.await;
    }
    if let Some(sender) = sender {
        let _ = sender.await;
    }
    store.close().await;
    served.map_err(|e| crm_core::Error::internal("serving", e))
}

/// The periodic jobs one replica runs at a time, by lease name.
const SWEEP: &str = "auth.sweep";
const SUBSCRIPTIONS: &str = "billing.subscriptions";
const PAYMENTS: &str = "billing.payments";

/// This process as a holder of scheduler leases (`crm_core::lease`): every server and
/// worker runs the same timers, and at each tick only the holder of the job's lease runs
/// it.
#[derive(Clone)]
struct Leader {
    crm: crm_core::Crm,
    holder: std::sync::Arc<str>,
}

impl Leader {
    fn new(crm: crm_core::Crm) -> Self {
        Self { crm, holder: crm_core::lease::holder_name().into() }
    }

    /// Runs `job` every `every` while this process holds its lease (taken or kept for
    /// three periods, at least 30 s, at each tick), saying when the lease changes hands.
    fn spawn<F, Fut>(&self, job: &'static str, every: std::time::Duration, run: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn(crm_core::Crm) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let this = self.clone();
        let ttl = chrono::Duration::from_std(every * 3)
            .unwrap_or(chrono::Duration::days(1))
            .clamp(chrono::Duration::seconds(30), chrono::Duration::days(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut held = false;
            loop {
                tick.tick().await;
                let holds = match this.crm.leases().hold(job, &this.holder, ttl).await {
                    Ok(holds) => holds,
                    Err(e) => {
                        tracing::warn!(job, error = %e, "taking the job's lease failed; the next tick tries again");
                        false
                    }
                };
                if holds != held {
                    let says = if holds { "this process runs the job" } else { "another replica runs the job" };
                    tracing::info!(job, holder = %this.holder, "{says}");
                    held = holds;
                }
                if holds {
                    run(this.crm.clone()).await;
                }
            }
        })
    }

    /// Hands back the leases this process holds (a clean stop), so another replica runs
    /// the jobs at its next tick.
    async fn release_all(&self) {
        for job in [SWEEP, SUBSCRIPTIONS, PAYMENTS] {
            if let Err(e) = self.crm.leases().release(job, &self.holder).await {
                tracing::warn!(job, error = %e, "handing the job's lease back failed; it runs out on its own");
            }
        }
    }
}

/// Invoices the subscriptions' periods that have begun, every `seconds`, on the replica
/// holding the lease (each period once however many run it: the periods are claimed).
fn spawn_recurring_loop(leader: &Leader, seconds: u64) -> tokio::task::JoinHandle<()> {
    leader.spawn(SUBSCRIPTIONS, std::time::Duration::from_secs(seconds.max(1)), |crm| async move {
        match crm.billing().run_subscriptions().await {
            Ok(r) if r.invoices > 0 => {
                tracing::info!(invoices = r.invoices, finished = r.finished, "billed subscription periods")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "billing subscriptions failed; the next run tries again"),
        }
    })
}

/// Acts on queued payment gateway events, and charges the invoices due to be charged to
/// saved payment methods, every five seconds, on the replica holding the lease.
fn spawn_payment_loop(
    leader: &Leader,
    gateway: std::sync::Arc<dyn crm_core::billing::gateway::PaymentGateway>,
) -> tokio::task::JoinHandle<()> {
    leader.spawn(PAYMENTS, std::time::Duration::from_secs(5), move |crm| {
        let gateway = gateway.clone();
        async move {
            if let Err(e) = crm.billing().process_gateway_events(gateway.as_ref()).await {
                tracing::warn!(error = %e, "acting on payment gateway events failed; they stay queued");
            }
            match crm.billing().charge_due_invoices(gateway.as_ref()).await {
                Ok(r) if r.charged + r.failed > 0 => {
                    tracing::info!(charged = r.charged, failed = r.failed, "charged invoices to saved payment methods")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "charging invoices failed; the next pass tries again"),
            }
        }
    })
}

/// `crm-server worker`: the delivery engine alone, until SIGTERM or Ctrl-C.
async fn worker(config: ServerConfig) -> crm_core::Result<()> {
    let _one_server = config.hold_sqlite()?;
    let store = config.store().await?;
    // No sign-ins here: the engine without the third-party providers (no discovery).
    let crm = config.crm(store.store())?;
    let engine = config.delivery_engine(crm.clone())?;
    let leader = Leader::new(crm.clone());
    let payment_loop = config.payments()?.map(|p| spawn_payment_loop(&leader, p.gateway));
    let recurring_loop = spawn_recurring_loop(&leader, config.billing_interval);
    let import_loop = spawn_import_loop(crm.clone());
    let campaigns = config.campaign_sender(crm)?;
    tracing::info!(backend = store.store().backend(), delivers = %engine.consumers().join(", "), "crm-server worker started (and sends campaigns)");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stop_campaigns = stop_rx.clone();
    let sender = tokio::spawn(async move {
        campaigns
            .run_loop(std::time::Duration::from_secs(1), async move {
                let _ = stop_campaigns.wait_for(|stop| *stop).await;
            })
            .await
    });
    engine.run(std::time::Duration::from_secs(1), shutdown_signal()).await;
    let _ = stop_tx.send(true);
    drop(stop_rx);
    let _ = sender.await;
    if let Some(p) = payment_loop {
        p.abort();
    }
    recurring_loop.abort();
    import_loop.abort();
    leader.release_all().await;
    store.close().await;
    Ok(())
}

async fn run(cli: Cli) -> crm_core::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Worker => worker(cli.config).await,
        Command::Openapi => {
            let doc = serde_json::to_string_pretty(&crm_http::openapi())
                .map_err(|e| crm_core::Error::internal("writing the OpenAPI document", e))?;
            println!("{doc}");
            Ok(())
        }
        Command::Bounces { mbox } => {
            let data = std::fs::read(&mbox)
                .map_err(|e| crm_core::Error::internal(format!("reading {}", mbox.display()), e))?;
            let store = cli.config.store().await?;
            let crm = cli.config.crm(store.store())?;
            let (mut reports, mut other, mut matched) = (0usize, 0usize, 0usize);
            let mut result = Ok(());
            for message in crm_core::campaign::dsn::split_mbox(&data) {
                match crm_core::campaign::dsn::parse(message) {
                    Some(bounces) => {
                        reports += 1;
                        match crm.campaign_bounces(&bounces, "mbox").await {
                            Ok(n) => matched += n,
                            Err(e) => {
                                result = Err(e);
                                break;
                            }
                        }
                    }
                    None => other += 1,
                }
            }
            store.close().await;
            result?;
            eprintln!("crm-server: {reports} bounce report(s), {matched} address(es) taken in, {other} other message(s) left alone");
            Ok(())
        }
        Command::RotateKeys => {
            let store = cli.config.store().await?;
            let crm = cli.config.crm(store.store())?;
            let result = crm.billing().rotate_keys().await;
            store.close().await;
            eprintln!("crm-server: {} billing row(s) sealed again under the current key", result?);
            Ok(())
        }
        Command::Import { file, kind, match_by, map, dry_run, as_user, results, resume } => {
            let store = cli.config.store().await?;
            let crm = cli.config.crm(store.store())?;
            let params = ImportParams { file, kind, match_by, map, dry_run, as_user, results, resume };
            let result = import(&crm, params).await;
            store.close().await;
            result
        }
        Command::Export { kind, output, format, filter, q, sort, include_deleted, as_user } => {
            let store = cli.config.store().await?;
            let crm = cli.config.crm(store.store())?;
            let params = ExportParams { kind, output, format, filter, q, sort, include_deleted, as_user };
            let result = export(&crm, params).await;
            store.close().await;
            result
        }
        Command::Copy { from, to, files_to, resume, batch } => {
            copy(&cli.config, CopyParams { from, to, files_to, resume, batch }).await
        }
        Command::Backup { to } => backup(&cli.config, &to).await,
        Command::Restore { archive, resume } => restore(&cli.config, &archive, resume).await,
        Command::Migrate => {
            let store = cli.config.store().await?;
            store.close().await;
            eprintln!("crm-server: the database is migrated");
            Ok(())
        }
        Command::SeedDemo { companies, contacts, deals } => {
            let store = cli.config.store().await?;
            let crm = cli.config.crm(store.store())?;
            let result = seed_demo(&crm, crm_http::demo::DemoSize { companies, contacts, deals }).await;
            store.close().await;
            result
        }
        Command::CreateAdmin { username, email, password } => {
            let store = cli.config.store().await?;
            let crm = cli.config.crm(store.store())?;
            let user = crm.users().bootstrap_admin_with_password(&username, &email, &password).await;
            store.close().await;
            let user = user?;
            eprintln!("crm-server: admin {} ({}) created", user.username, user.id);
            Ok(())
        }
    }
}

/// What `crm-server import` was asked.
struct ImportParams {
    file: Option<std::path::PathBuf>,
    kind: String,
    match_by: Option<String>,
    map: Vec<String>,
    dry_run: bool,
    as_user: Option<String>,
    results: Option<std::path::PathBuf>,
    resume: Option<uuid::Uuid>,
}

/// The user an operator command acts as: the one named, else the first active admin.
async fn operator(crm: &crm_core::Crm, who: Option<&str>) -> crm_core::Result<crm_core::User> {
    use crm_core::StoreExt;
    let q = crm_core::query::StoreQuery {
        filter: None,
        sort: vec![crm_core::query::id_key(crm_core::EntityKind::User, crm_core::query::Direction::Asc)],
        limit: 10_000,
        include_deleted: false,
    };
    let users = crm.store().list_as::<crm_core::User>(&q).await?;
    let found = match who {
        Some(w) => {
            users.into_iter().find(|u| u.username.eq_ignore_ascii_case(w) || u.email.as_str().eq_ignore_ascii_case(w))
        }
        None => users.into_iter().find(|u| u.role == crm_core::Role::Admin && u.is_assignable()),
    };
    found.filter(|u| u.is_assignable()).ok_or_else(|| match who {
        Some(w) => crm_core::Error::invalid("as", "not_found", format!("no active user '{w}'")),
        None => {
            crm_core::Error::invalid("as", "required", "no active admin: name a user with --as, or run create-admin")
        }
    })
}

/// `crm-server import`: uploads, starts and runs a job here, with a progress bar.
async fn import(crm: &crm_core::Crm, p: ImportParams) -> crm_core::Result<()> {
    use crm_core::bulk::import::IMPORTABLE;
    use indicatif::ProgressBar;
    let job = match (p.resume, &p.file) {
        (Some(id), _) => {
            let job = crm.resume_import(id).await?;
            eprintln!("crm-server: resuming import {id} after row {} of {}", job.rows_done, job.total_rows);
            job
        }
        (None, Some(file)) => {
            let kind = IMPORTABLE.into_iter().find(|k| k.table() == p.kind).ok_or_else(|| {
                crm_core::Error::invalid(
                    "kind",
                    "invalid_value",
                    format!("'{}' cannot be imported; kinds are contacts, companies, deals, tasks", p.kind),
                )
            })?;
            let bytes = std::fs::read(file).map_err(|e| {
                crm_core::Error::invalid("file", "invalid_value", format!("cannot read {}: {e}", file.display()))
            })?;
            let user = operator(crm, p.as_user.as_deref()).await?;
            let actor = user.actor();
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("import");
            let up = crm.create_import(&actor, kind, name, bytes.into()).await?;
            let mut mapping = up.job.mapping.clone();
            for m in &p.map {
                let (header, field) = m.split_once('=').ok_or_else(|| {
                    crm_core::Error::invalid("map", "invalid_format", format!("'{m}' is not Header=field"))
                })?;
                let at = up.job.headers.iter().position(|h| h == header.trim()).ok_or_else(|| {
                    crm_core::Error::invalid(
                        "map",
                        "invalid_value",
                        format!("the file has no column '{}'", header.trim()),
                    )
                })?;
                mapping[at] = Some(field.trim()).filter(|f| !f.is_empty()).map(str::to_string);
            }
            let match_by = p.match_by.as_deref().map(|m| Some(m).filter(|m| *m != "none").map(str::to_string));
            let start = crm_core::bulk::ImportStart { mapping: Some(mapping), match_by, dry_run: p.dry_run };
            let shown: Vec<String> = up
                .job
                .headers
                .iter()
                .zip(start.mapping.iter().flatten())
                .map(|(h, f)| format!("{h} → {}", f.as_deref().unwrap_or("(left out)")))
                .collect();
            eprintln!(
                "crm-server: {} rows of {} ({}, {}); {}",
                up.job.total_rows,
                name,
                up.job.format,
                up.job.encoding.as_deref().unwrap_or("-"),
                shown.join(", ")
            );
            let job = crm.start_import(&actor, up.job.id, start).await?;
            eprintln!("crm-server: import {} started (matching by {}); if it stops, `crm-server import --resume {}` continues it", job.id, job.match_by.as_deref().unwrap_or("nothing: every row is new"), job.id);
            job
        }
        (None, None) => {
            return Err(crm_core::Error::invalid("file", "required", "name the file to import, or --resume a job"))
        }
    };
    let id = job.id;
    let bar = ProgressBar::new(u64::try_from(job.total_rows).unwrap_or(0));
    bar.set_style(rows_style("{spinner} [{bar:40}] {pos}/{len} rows ({rate}, {eta} left) {msg}"));
    let runner = crm.clone();
    let run = tokio::spawn(async move { runner.run_import(id, None).await });
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    while !run.is_finished() {
        tick.tick().await;
        if let Ok(Some(j)) = crm_core::StoreExt::get_as::<crm_core::model::import::ImportJob>(crm.store(), id).await {
            bar.set_position(u64::try_from(j.rows_done).unwrap_or(0));
            bar.set_message(format!("{} failed", j.failed));
        }
    }
    let ended = run.await.map_err(|e| crm_core::Error::internal("the import", e))??;
    bar.finish_and_clear();
    let job = match ended {
        Some(j) => j,
        None => crm_core::StoreExt::get_as::<crm_core::model::import::ImportJob>(crm.store(), id)
            .await?
            .ok_or(crm_core::Error::NotFound { entity: "import_job" })?,
    };
    let verb = if job.dry_run { "would be" } else { "were" };
    eprintln!(
        "crm-server: import {} {}: {} created, {} updated, {} unchanged, {} failed ({} {verb} checked of {})",
        job.id, job.status, job.created, job.updated, job.unchanged, job.failed, job.rows_done, job.total_rows
    );
    if job.failed > 0 {
        // The first failures, so that a mapping gone wrong shows at once.
        let mut shown = 0;
        'pieces: for n in 0..job.batches {
            let piece = crm.import_results_piece(&job, n).await?;
            let mut rows = csv::ReaderBuilder::new().has_headers(false).from_reader(&piece[..]);
            for row in rows.records().flatten() {
                if row.get(1) == Some("failed") {
                    let (line, columns, message) = (
                        row.get(0).unwrap_or_default(),
                        row.get(3).unwrap_or_default(),
                        row.get(4).unwrap_or_default(),
                    );
                    let at = if columns.is_empty() { String::new() } else { format!(" ({columns})") };
                    eprintln!("crm-server:   row {line}{at}: {message}");
                    shown += 1;
                    if shown == 3 {
                        break 'pieces;
                    }
                }
            }
        }
    }
    let results = p.results.clone().or_else(|| {
        (job.failed > 0).then(|| {
            let base = p.file.clone().unwrap_or_else(|| std::path::PathBuf::from(format!("import-{id}")));
            std::path::PathBuf::from(format!("{}.results.csv", base.display()))
        })
    });
    if let Some(path) = results {
        let mut out = crm_core::bulk::import::RESULTS_HEADER.as_bytes().to_vec();
        for n in 0..job.batches {
            out.extend_from_slice(&crm.import_results_piece(&job, n).await?);
        }
        std::fs::write(&path, out).map_err(|e| {
            crm_core::Error::invalid("results", "invalid_value", format!("cannot write {}: {e}", path.display()))
        })?;
        eprintln!("crm-server: each row's outcome is in {}", path.display());
    }
    match job.status {
        crm_core::model::import::ImportStatus::Failed => {
            Err(crm_core::Error::internal_msg(job.error.unwrap_or_default()))
        }
        _ => Ok(()),
    }
}

/// Imports queued jobs (and takes up those whose worker stopped), every five seconds.
fn spawn_import_loop(crm: crm_core::Crm) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            if let Err(e) = crm.run_imports().await {
                tracing::warn!(error = %e, "running imports failed; the next pass tries again");
            }
        }
    })
}

/// What `crm-server export` was asked.
struct ExportParams {
    kind: String,
    output: Option<std::path::PathBuf>,
    format: Option<String>,
    filter: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    include_deleted: bool,
    as_user: Option<String>,
}

/// `crm-server export`: the file written while the records are read.
async fn export(crm: &crm_core::Crm, p: ExportParams) -> crm_core::Result<()> {
    use crm_core::bulk::export::EXPORTABLE;
    use crm_core::bulk::ExportFormat;
    let kind = EXPORTABLE.into_iter().find(|k| k.table() == p.kind).ok_or_else(|| {
        crm_core::Error::invalid(
            "kind",
            "invalid_value",
            format!("'{}' is not a list; they are contacts, companies, deals, tasks, interactions", p.kind),
        )
    })?;
    let from_extension = p.output.as_deref().and_then(|o| o.extension()).and_then(|e| e.to_str());
    let format = match p.format.as_deref().or(from_extension) {
        Some(f) => ExportFormat::parse(f)?,
        None => ExportFormat::Csv,
    };
    let deleted = p.include_deleted.to_string();
    let raw = crm_core::RawListParams {
        filter: p.filter.as_deref(),
        q: p.q.as_deref(),
        sort: p.sort.as_deref(),
        include_deleted: Some(&deleted),
        ..Default::default()
    };
    let query = crm_core::ListQuery::parse(kind, &raw)?;
    let user = operator(crm, p.as_user.as_deref()).await?;
    let export = crm.export_records(&user.actor(), kind, query, format).await?;
    let n = match &p.output {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| {
                crm_core::Error::invalid("output", "invalid_value", format!("cannot write {}: {e}", path.display()))
            })?;
            export.write_to(std::io::BufWriter::new(file)).await?
        }
        None => export.write_to(std::io::stdout()).await?,
    };
    let to = p.output.map_or_else(|| "standard output".to_string(), |o| o.display().to_string());
    let peak = peak_memory().map(|b| format!(" (peak memory {:.1} MB)", b as f64 / 1e6)).unwrap_or_default();
    eprintln!("crm-server: {n} {} written to {to} as {}{peak}", kind.table(), format.name());
    Ok(())
}

/// The most memory this process has held at once (its peak resident set, `VmHWM`), in
/// bytes; `None` where `/proc` does not say.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// What `crm-server copy` was asked.
struct CopyParams {
    from: Option<String>,
    to: String,
    files_to: Option<String>,
    resume: bool,
    batch: u32,
}

/// The style of a bar counting rows: `{rate}` is whole rows a second.
fn rows_style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", s.per_sec());
        })
        .progress_chars("=> ")
}

/// A progress bar over rows, its message the kind being copied.
fn rows_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(rows_style("{spinner} {msg:>20} [{bar:40}] {pos}/{len} rows ({rate}, {eta} left)"));
    bar
}

fn show_rows(bar: &indicatif::ProgressBar) -> impl Fn(crm_core::copy::CopyProgress) + Send + Sync + '_ {
    move |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
        bar.set_message(p.kind.table());
    }
}

fn show_files(bar: &indicatif::ProgressBar) -> impl Fn(u64, u64) + Send + Sync + '_ {
    move |done, total| {
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message("files");
    }
}

/// Checks the audit chain of `store` under the configuration's keys and says so; an
/// error when it does not verify to `seq`.
async fn verify_copied_chain(config: &ServerConfig, store: &dyn crm_core::Store, seq: i64) -> crm_core::Result<()> {
    match crm_core::audit::verify_chain(store, &config.audit_keys()?).await? {
        crm_core::ChainStatus::Intact { events, .. } if i64::try_from(events).ok() == Some(seq) => {
            eprintln!("crm-server: the audit chain verifies: {events} events, each in place and unaltered");
            Ok(())
        }
        crm_core::ChainStatus::Intact { events, .. } => {
            Err(crm_core::Error::internal_msg(format!("the audit chain holds {events} events where {seq} were copied")))
        }
        crm_core::ChainStatus::Broken { seq, reason } => Err(crm_core::Error::internal_msg(format!(
            "the copied audit chain does not verify at event {seq}: {reason}"
        ))),
    }
}

/// `crm-server copy`.
async fn copy(config: &ServerConfig, p: CopyParams) -> crm_core::Result<()> {
    let from_url = p.from.clone().unwrap_or_else(|| config.database_url.clone());
    if from_url.trim() == p.to.trim() {
        return Err(crm_core::Error::invalid("to", "invalid_value", "the copy's target is its source"));
    }
    let (source_config, target_config) = (config.on_database(&from_url), config.on_database(&p.to));
    let files_to = p.files_to.as_deref().map(crm_http::config::files_at).transpose()?;
    let from = crm_http::backup::open_named(&from_url, "from", false).await?;
    let to = crm_http::backup::open_named(&p.to, "to", true).await?;
    source_config.audit_keys()?.check_holds(&from.store().audit_head().await?)?;
    let written = source_config.carry_secrets(&target_config)?;
    let bar = rows_bar();
    let options = crm_core::copy::CopyOptions { resume: p.resume, batch: usize::try_from(p.batch).unwrap_or(1_000) };
    let started = std::time::Instant::now();
    let copied =
        crm_core::copy::copy_store(from.store().as_ref(), to.store().as_ref(), options, &show_rows(&bar)).await;
    bar.finish_and_clear();
    let report = match copied {
        Ok(r) => r,
        Err(e) => {
            from.close().await;
            to.close().await;
            if e.field_errors().is_empty() {
                eprintln!(
                    "crm-server: the copy stopped; `crm-server copy --resume` with the same --from and --to continues it"
                );
            }
            return Err(e);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "crm-server: {} rows of {} kinds in the target ({} copied now) in {seconds:.1} s ({:.0} rows/s)",
        report.rows(),
        report.kinds.len(),
        report.copied(),
        report.copied() as f64 / seconds.max(1e-9)
    );
    let verified = verify_copied_chain(&source_config, to.store().as_ref(), report.audit_head.seq).await;
    if let (Ok(()), Some(target)) = (&verified, &files_to) {
        let bar = rows_bar();
        let files = crm_core::copy::copy_files(&source_config.blobs()?, target, p.resume, &show_files(&bar)).await;
        bar.finish_and_clear();
        eprintln!("crm-server: {} files copied to {}", files?, p.files_to.as_deref().unwrap_or_default());
    }
    from.close().await;
    to.close().await;
    verified?;
    if let Some(path) = written {
        eprintln!("crm-server: the source's secrets are in {} for the servers on the target", path.display());
    }
    Ok(())
}

/// `crm-server backup`.
async fn backup(config: &ServerConfig, archive: &std::path::Path) -> crm_core::Result<()> {
    let from = crm_http::backup::open_named(&config.database_url, "databaseUrl", false).await?;
    let bar = rows_bar();
    let made =
        crm_http::backup::backup(from.store().as_ref(), &config.blobs()?, archive, &show_rows(&bar), &show_files(&bar))
            .await;
    bar.finish_and_clear();
    from.close().await;
    let m = made?;
    let size = std::fs::metadata(archive).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "crm-server: {} written ({:.1} MB): {} rows, {} audit events, {} files",
        archive.display(),
        size as f64 / 1e6,
        m.rows.values().sum::<u64>(),
        m.audit_seq,
        m.files
    );
    Ok(())
}

/// `crm-server restore`.
async fn restore(config: &ServerConfig, archive: &std::path::Path, resume: bool) -> crm_core::Result<()> {
    let keys = config.audit_keys()?;
    let to = config.store().await?;
    let bar = rows_bar();
    let restored =
        crm_http::backup::restore(archive, to.store().as_ref(), &config.blobs()?, &keys, resume, &show_rows(&bar))
            .await;
    bar.finish_and_clear();
    let verified = match &restored {
        Ok((_, report)) => verify_copied_chain(config, to.store().as_ref(), report.audit_head.seq).await,
        Err(_) => Ok(()),
    };
    to.close().await;
    // The target is this command's database.
    let (m, report) = restored.map_err(|e| e.renamed("to", "databaseUrl")).inspect_err(|e| {
        if e.field_errors().is_empty() {
            eprintln!(
                "crm-server: the restore stopped; `crm-server restore --resume` with the same archive continues it"
            );
        }
    })?;
    eprintln!(
        "crm-server: restored {} rows and {} files from the backup of {} ({} {})",
        report.rows(),
        m.files,
        m.created_at.format("%Y-%m-%d %H:%M UTC"),
        m.source,
        m.crm_version
    );
    verified
}

/// The demo, by the first admin (made, with the demo password, when there is none).
async fn seed_demo(crm: &crm_core::Crm, size: crm_http::demo::DemoSize) -> crm_core::Result<()> {
    use indicatif::{ProgressBar, ProgressStyle};
    let (admin, made) = crm_http::demo::admin(crm).await?;
    if made {
        eprintln!("crm-server: made admin 'admin' with password '{}'", crm_http::demo::DEMO_PASSWORD);
    }
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:>10} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let report = crm_http::demo::seed(crm, &admin.actor(), size, &|done, total, what| {
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(what.to_string());
    })
    .await?;
    bar.finish_and_clear();
    eprintln!(
        "crm-server: demo ready: {} companies, {} contacts, {} deals, {} tasks, {} interactions; reps {} log in with '{}'",
        report.companies,
        report.contacts,
        report.deals,
        report.tasks,
        report.interactions,
        report.reps.join(", "),
        crm_http::demo::DEMO_PASSWORD
    );
    Ok(())
}

/// `--config FILE` (or `CRM_CONFIG`): the file's settings become environment variables
/// where none is set, before the flags are read, so flags > environment > file.
fn load_config_file() -> Result<(), crm_core::Error> {
    let args: Vec<String> = std::env::args().collect();
    let from_args = args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| args.iter().find_map(|a| a.strip_prefix("--config=").map(str::to_string)));
    let Some(path) = from_args.or_else(|| std::env::var("CRM_CONFIG").ok()) else { return Ok(()) };
    for (var, value) in crm_http::config::read_file(std::path::Path::new(&path))? {
        if std::env::var_os(var).is_none() {
            // Single-threaded still: nothing else reads the environment yet.
            set_env(var, &value);
        }
    }
    Ok(())
}

/// An error for the operator: a bad setting names each field, anything else says what failed.
fn report(e: &crm_core::Error) {
    if e.field_errors().is_empty() {
        eprintln!("crm-server: {e}");
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            eprintln!("  caused by: {s}");
            src = s.source();
        }
    } else {
        eprintln!("crm-server: invalid settings:");
        for f in e.field_errors() {
            eprintln!("  {}: {}", f.field, f.message);
        }
    }
}

fn set_env(var: &str, value: &str) {
    std::env::set_var(var, value);
}

fn main() -> ExitCode {
    if let Err(e) = load_config_file() {
        report(&e);
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    init_logs();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("crm-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}
