//! The server's configuration: flags and environment (`CRM_*`), with zero-config
//! defaults — a SQLite file `crm.db`, mail written as `.eml` files to `./mail-outbox`,
//! files in `./crm-files`, and secrets generated on first run and kept beside the
//! database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use crm_core::auth::{AuthSettings, JwtConfig, JwtKeys, Sealer};
use crm_core::blob::ObjectBlobStore;
use crm_core::mail::{DirMailer, MailConfig, Mailer, SmtpConfig, SmtpMailer, SmtpSecurity};
use crm_core::{Crm, Error, Result, Store};
use serde::{Deserialize, Serialize};

/// One of the stores the server runs on (crm-storage's, opened from the URL).
pub use crm_storage::AnyStore;

/// Where the server keeps its data and how it reaches the world.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// The database: `sqlite://path` (created when missing), `postgres://user@host/db`,
    /// `mysql://user@host/db` (MariaDB 10.6+) or `mongodb://host/db` (a replica set:
    /// transactions need one).
    #[arg(long, env = "CRM_DATABASE_URL", default_value = "sqlite://crm.db")]
    pub database_url: String,
    /// A read replica of the database (a PostgreSQL standby, a MariaDB replica, or a
    /// MongoDB URL reading from secondaries): the server's reports, dashboards and record
    /// exports read from it, so that they may lag the last writes by the replica's delay.
    #[arg(long, env = "CRM_READ_DATABASE_URL")]
    pub read_database_url: Option<String>,
    /// The address to listen on.
    #[arg(long, env = "CRM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The access-token signing secret (at least 32 bytes). Every replica needs the same
    /// one; absent (and no `--jwt-secret-file`): generated and kept in the secrets file.
    #[arg(long, env = "CRM_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// A file holding the signing secret (a mounted Kubernetes or Docker secret).
    #[arg(long, env = "CRM_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// Earlier signing secrets, comma-separated: tokens they signed are still accepted
    /// until they expire (rotation: move the old secret here, set a new one above).
    #[arg(long, env = "CRM_JWT_PREVIOUS_SECRETS", value_delimiter = ',', hide_env_values = true)]
    pub jwt_previous_secrets: Vec<String>,
    /// The key that seals the tokens of queued emails (64 hex digits). Every replica
    /// needs the same one, or mail queued by one cannot be sent by another; absent (and no
    /// `--seal-key-file`): generated and kept in the secrets file.
    #[arg(long, env = "CRM_SEAL_KEY", hide_env_values = true)]
    pub seal_key: Option<String>,
    /// A file holding the seal key.
    #[arg(long, env = "CRM_SEAL_KEY_FILE")]
    pub seal_key_file: Option<PathBuf>,
    /// The key of the audit chain's HMAC (at least 32 bytes; never stored in the
    /// database). Every replica needs the same one; absent (and no `--audit-key-file`):
    /// generated and kept in the secrets file.
    #[arg(long, env = "CRM_AUDIT_KEY", hide_env_values = true)]
    pub audit_key: Option<String>,
    /// A file holding the audit key.
    #[arg(long, env = "CRM_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,
    /// The key sealing sensitive billing fields at rest (bank details, tax ids; 64 hex
    /// digits, AES-256-GCM). Every replica needs the same one; absent (and no
    /// `--billing-key-file`): generated and kept in the secrets file.
    #[arg(long, env = "CRM_BILLING_KEY", hide_env_values = true)]
    pub billing_key: Option<String>,
    /// A file holding the billing key.
    #[arg(long, env = "CRM_BILLING_KEY_FILE")]
    pub billing_key_file: Option<PathBuf>,
    /// Earlier billing keys, comma-separated: what they sealed still opens (rotation: move
    /// the old key here, set a new one, run `crm-server rotate-keys`).
    #[arg(long, env = "CRM_BILLING_PREVIOUS_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub billing_previous_keys: Vec<String>,
    /// Earlier audit keys, comma-separated: events they sealed still verify.
    #[arg(long, env = "CRM_AUDIT_PREVIOUS_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub audit_previous_keys: Vec<String>,
    /// Earlier seal keys, comma-separated: mail they sealed can still be sent.
    #[arg(long, env = "CRM_SEAL_PREVIOUS_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub seal_previous_keys: Vec<String>,
    /// The secrets file (default: beside a SQLite database, else `./crm-secrets.json`).
    #[arg(long, env = "CRM_SECRETS_FILE")]
    pub secrets_file: Option<PathBuf>,
    /// SMTP server: `smtp://[user:pass@]host[:port]` (STARTTLS), `smtps://…` (TLS),
    /// `smtp+plain://host:port` (no encryption, loopback only) or `smtp+insecure://…` (no
    /// encryption, a private network you trust). Absent: mail goes to `--mail-dir` as
    /// `.eml` files.
    #[arg(long, env = "CRM_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Where mail goes without SMTP.
    #[arg(long, env = "CRM_MAIL_DIR", default_value = "mail-outbox")]
    pub mail_dir: PathBuf,
    /// The sender of emails.
    #[arg(long, env = "CRM_MAIL_FROM", default_value = "crm-rs <no-reply@localhost>")]
    pub mail_from: String,
    /// The public base URL of links in emails (default `http://<bind>`).
    #[arg(long, env = "CRM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Browser origins allowed to call the API, comma-separated (CORS; none by default).
    #[arg(long, env = "CRM_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Proxies in front of the server, comma-separated addresses or CIDR blocks
    /// (`10.0.0.0/8,::1`). From these peers the client's address is read from `Forwarded`
    /// or `X-Forwarded-For` (for rate limits and the audit log); from any other peer those
    /// headers are ignored. None by default: the client is the TCP peer.
    #[arg(long, env = "CRM_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Google Sign-In: the OAuth client ids whose Google ID tokens log in
    /// (`POST /api/auth/oauth/google`), comma-separated (a web and a mobile client, say).
    #[arg(long, env = "CRM_GOOGLE_CLIENT_IDS", value_delimiter = ',')]
    pub google_client_ids: Vec<String>,
    /// Facebook Login: the app id (`POST /api/auth/oauth/facebook`).
    #[arg(long, env = "CRM_FACEBOOK_APP_ID")]
    pub facebook_app_id: Option<String>,
    /// The Facebook app's secret (checks access tokens with the app token).
    #[arg(long, env = "CRM_FACEBOOK_APP_SECRET", hide_env_values = true)]
    pub facebook_app_secret: Option<String>,
    /// Any OpenID Connect provider (Keycloak, Okta, Entra ID, Auth0…): its issuer URL;
    /// its keys are found through its discovery document.
    #[arg(long, env = "CRM_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The name logins use for it: `POST /api/auth/oauth/<name>`.
    #[arg(long, env = "CRM_OIDC_NAME", default_value = "oidc")]
    pub oidc_name: String,
    /// Its client ids: the audiences its ID tokens must name, comma-separated.
    #[arg(long, env = "CRM_OIDC_CLIENT_IDS", value_delimiter = ',')]
    pub oidc_client_ids: Vec<String>,
    /// Where its keys are, when its discovery document should not be asked.
    #[arg(long, env = "CRM_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,
    /// Its authorization endpoint, for the sign-in page's button (default: the one its
    /// discovery document names; none with `--oidc-jwks-url`, so no button).
    #[arg(long, env = "CRM_OIDC_AUTHORIZE_URL")]
    pub oidc_authorize_url: Option<String>,
    /// What the sign-in page's button calls it ("Continue with <label>"; default: its name).
    #[arg(long, env = "CRM_OIDC_LABEL")]
    pub oidc_label: Option<String>,
    /// Where uploaded files (avatars, attachments) are kept.
    #[arg(long, env = "CRM_FILES_DIR", default_value = "crm-files")]
    pub files_dir: PathBuf,
    /// Keep uploaded files in S3 or S3-compatible storage instead of `--files-dir`:
    /// `s3://bucket` or `s3://bucket/prefix`, with the usual `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and, for other providers, `AWS_ENDPOINT`
    /// (and `AWS_ALLOW_HTTP=true` for a plain-HTTP one).
    #[arg(long, env = "CRM_FILES_URL")]
    pub files_url: Option<String>,
    /// Requests a minute one client address may make to the auth routes.
    #[arg(long, env = "CRM_AUTH_RATE_LIMIT", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_rate_limit: u32,
    /// Internal networks outgoing webhooks (and chat posts) may reach, as CIDRs,
    /// comma-separated: loopback, private and link-local addresses are refused unless
    /// listed here (`10.0.0.0/8` for a receiver inside your network).
    #[arg(long, env = "CRM_WEBHOOK_ALLOW_NETWORKS", value_delimiter = ',')]
    pub webhook_allow_networks: Vec<String>,
    /// How long one webhook call may take, in seconds.
    #[arg(long, env = "CRM_WEBHOOK_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub webhook_timeout: u64,
    /// Where Slack's Web API is, for channels that post through a bot token
    /// (`chat.postMessage`).
    #[arg(long, env = "CRM_SLACK_API_URL", default_value = crm_core::delivery::webhook::SLACK_API)]
    pub slack_api_url: String,
    /// Deliveries (emails, webhooks, notifications) one worker attempts at once.
    #[arg(long, env = "CRM_DELIVERY_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub delivery_concurrency: u32,
    /// How long a worker holds a delivery it is sending, in seconds: a worker that dies
    /// mid-send leaves it to another after this long.
    #[arg(long, env = "CRM_DELIVERY_LEASE", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub delivery_lease: u64,
    /// Serve the API without delivering (run `crm-server worker` elsewhere).
    #[arg(long, env = "CRM_NO_WORKER")]
    pub no_worker: bool,
    /// Campaign messages per second at most, per sending process (0: no limit).
    #[arg(long, env = "CRM_CAMPAIGN_RATE", default_value_t = 50.0)]
    pub campaign_rate: f64,
    /// Campaign messages in any sliding hour at most, per sending process (0: no limit;
    /// set your SMTP provider's hourly quota).
    #[arg(long, env = "CRM_CAMPAIGN_HOURLY_LIMIT", default_value_t = 0)]
    pub campaign_hourly_limit: u64,
    /// SMTP errors after which a campaign pauses (with the reason) until resumed.
    #[arg(long, env = "CRM_CAMPAIGN_MAX_ERRORS", default_value_t = 25, value_parser = clap::value_parser!(i64).range(1..))]
    pub campaign_max_errors: i64,
    /// Campaign recipients taken at once by a sender: at most this many messages have an
    /// unknown outcome if the sender is killed mid-send (they are never sent twice).
    #[arg(long, env = "CRM_CAMPAIGN_BATCH", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub campaign_batch: u32,
    /// Campaign messages in flight at once, per sending process.
    #[arg(long, env = "CRM_CAMPAIGN_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub campaign_concurrency: u32,
    /// How long a process holds a campaign it sends without renewing, in seconds: another
    /// takes it over this long after the holder dies.
    #[arg(long, env = "CRM_CAMPAIGN_LEASE", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub campaign_lease: u64,
    /// The footer of every campaign message: your organisation's postal address, which
    /// anti-spam laws (CAN-SPAM, the EU's ePrivacy rules) require.
    #[arg(long, env = "CRM_CAMPAIGN_FOOTER", default_value = "")]
    pub campaign_footer: String,
    /// How often the billing scheduler looks for subscription periods that have begun,
    /// in seconds (each period is invoiced once, however many processes look).
    #[arg(long, env = "CRM_BILLING_INTERVAL", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub billing_interval: u64,
    /// Stripe's secret key (`sk_…`): invoices get pay links and Stripe's webhook
    /// (`/api/payments/stripe/webhook`) records their payments. Absent: no online payment.
    #[arg(long, env = "CRM_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Stripe's publishable key (`pk_…`), which the pay page gives Stripe.js.
    #[arg(long, env = "CRM_STRIPE_PUBLISHABLE_KEY")]
    pub stripe_publishable_key: Option<String>,
    /// The webhook endpoint's signing secrets (`whsec_…`), comma-separated: the old and
    /// the new one while rolling.
    #[arg(long, env = "CRM_STRIPE_WEBHOOK_SECRETS", value_delimiter = ',', hide_env_values = true)]
    pub stripe_webhook_secrets: Vec<String>,
    /// Stripe's API (another address for a test double such as localstripe).
    #[arg(long, env = "CRM_STRIPE_API_BASE", default_value = "https://api.stripe.com")]
    pub stripe_api_base: String,
    /// Stripe.js, which the pay page loads.
    #[arg(long, env = "CRM_STRIPE_JS_URL", default_value = "https://js.stripe.com/v3/")]
    pub stripe_js_url: String,
    /// Reports (and report files) one user may have running at once; more answer 429.
    #[arg(long, env = "CRM_REPORT_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub report_concurrency: u32,
    /// The most memory, in MiB, the cached analytics snapshots (what reports and
    /// dashboards read) may hold together. A snapshot larger than this is read from the
    /// database again for every report. Absent: a quarter of the memory the server may
    /// use (its container's or systemd unit's limit, else the machine's); 0 keeps none.
    #[arg(long, env = "CRM_ANALYTICS_CACHE_MB")]
    pub analytics_cache_mb: Option<u64>,
    /// Login and password-reset requests a minute for one account name.
    #[arg(long, env = "CRM_LOGIN_RATE_LIMIT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_rate_limit: u32,
    /// Requests a minute one client address, and one pay or card link, may make to the
    /// public routes that ask the payment gateway for something (a pay page's intent, a
    /// card page's setup and its confirmation).
    #[arg(long, env = "CRM_PAYMENT_RATE_LIMIT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub payment_rate_limit: u32,
    /// Redis (or Valkey) keeping the rate limits' counters and the report slots, so that
    /// every replica counts together: `redis://host:6379/0` (`rediss://` for TLS). Absent:
    /// each process counts its own.
    #[arg(long, env = "CRM_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Secrets {
    jwt_secret: String,
    seal_key: String,
    /// Absent from files written before the audit chain was keyed: added then.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    audit_key: String,
    /// Absent from files written before billing: added then.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    billing_key: String,
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).map_err(|e| Error::internal("reading the OS random source", e))?;
    Ok(hex::encode(b))
}

impl ServerConfig {
    /// The database URL with SQLite's create-when-missing mode.
    pub fn database(&self) -> String {
        crm_storage::with_sqlite_mode(&self.database_url, "rwc")
    }

    /// The file of a SQLite database URL (none for other stores and `:memory:`).
    fn sqlite_file(&self) -> Option<PathBuf> {
        crm_storage::sqlite_file(self.database_url.trim())
    }

    fn secrets_path(&self) -> PathBuf {
        if let Some(p) = &self.secrets_file {
            return p.clone();
        }
        match self.sqlite_file() {
            Some(db) => PathBuf::from(format!("{}.secrets.json", db.display())),
            None => PathBuf::from("crm-secrets.json"),
        }
    }

    /// One secret: the flag or variable, else its file (`field` names both in errors).
    fn given(value: &Option<String>, file: &Option<PathBuf>, field: &str) -> Result<Option<String>> {
        match (value, file) {
            (Some(_), Some(_)) => Err(Error::invalid(
                format!("{field}File"),
                "conflict",
                format!("give {field} or {field}File, not both"),
            )),
            (Some(v), None) => Ok(Some(v.trim().to_string())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::invalid(format!("{field}File"), "invalid_value", format!("reading {}: {e}", path.display()))
                })?;
                Ok(Some(text.trim().to_string()))
            }
            (None, None) => Ok(None),
        }
    }

    /// The secrets: from flags, variables or their files; what is missing comes from the
    /// secrets file, made now (mode 0600) when there is none, completed when it lacks a
    /// key that came later.
    fn secrets(&self) -> Result<Secrets> {
        let jwt = Self::given(&self.jwt_secret, &self.jwt_secret_file, "jwtSecret")?;
        let seal = Self::given(&self.seal_key, &self.seal_key_file, "sealKey")?;
        let audit = Self::given(&self.audit_key, &self.audit_key_file, "auditKey")?;
        let billing = Self::given(&self.billing_key, &self.billing_key_file, "billingKey")?;
        if let (Some(jwt_secret), Some(seal_key), Some(audit_key), Some(billing_key)) = (&jwt, &seal, &audit, &billing)
        {
            return Ok(Secrets {
                jwt_secret: jwt_secret.clone(),
                seal_key: seal_key.clone(),
                audit_key: audit_key.clone(),
                billing_key: billing_key.clone(),
            });
        }
        let path = self.secrets_path();
        let stored: Option<Secrets> = match std::fs::read_to_string(&path) {
            Ok(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| Error::invalid("secretsFile", "invalid_format", format!("{}: {e}", path.display())))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::internal(format!("reading {}", path.display()), e)),
        };
        let stored = match stored {
            Some(s) if !s.audit_key.is_empty() && !s.billing_key.is_empty() => s,
            Some(mut s) => {
                if s.audit_key.is_empty() {
                    s.audit_key = random_hex(32)?;
                }
                if s.billing_key.is_empty() {
                    s.billing_key = random_hex(32)?;
                }
                replace_private(&path, &serde_json::to_string_pretty(&s).unwrap_or_default())?;
                tracing::info!(file = %path.display(), "added the keys that came later to the server secrets");
                s
            }
            None => {
                let s = Secrets {
                    jwt_secret: random_hex(32)?,
                    seal_key: random_hex(32)?,
                    audit_key: random_hex(32)?,
                    billing_key: random_hex(32)?,
                };
                write_private(&path, &serde_json::to_string_pretty(&s).unwrap_or_default())?;
                if self.sqlite_file().is_none() {
                    tracing::warn!(
                        file = %path.display(),
                        "generated the server secrets into a local file: with more than one replica, give \
                         every replica the same CRM_JWT_SECRET, CRM_SEAL_KEY, CRM_AUDIT_KEY and CRM_BILLING_KEY instead"
                    );
                } else {
                    tracing::info!(file = %path.display(), "generated the server secrets");
                }
                s
            }
        };
        Ok(Secrets {
            jwt_secret: jwt.unwrap_or(stored.jwt_secret),
            seal_key: seal.unwrap_or(stored.seal_key),
            audit_key: audit.unwrap_or(stored.audit_key),
            billing_key: billing.unwrap_or(stored.billing_key),
        })
    }

    fn billing_keys_from(&self, s: &Secrets) -> Result<crm_core::billing::crypt::FieldKeys> {
        use crm_core::billing::crypt::{parse_key, FieldKeys};
        let mut keys = FieldKeys::new(&parse_key(&s.billing_key, "billingKey")?);
        for old in self.billing_previous_keys.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            keys = keys.with_previous(&parse_key(old, "billingPreviousKeys")?);
        }
        Ok(keys)
    }

    /// The audit chain's keys: the current one seals, the previous ones still verify.
    pub fn audit_keys(&self) -> Result<crm_core::audit::AuditKeys> {
        self.audit_keys_from(&self.secrets()?)
    }

    fn audit_keys_from(&self, s: &Secrets) -> Result<crm_core::audit::AuditKeys> {
        use crm_core::audit::{AuditKey, AuditKeys};
        let current = AuditKey::new(s.audit_key.as_bytes()).map_err(|e| rename_field(e, "auditKey"))?;
        let mut keys = AuditKeys::new(current);
        for old in self.audit_previous_keys.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            keys = keys.with_previous(AuditKey::new(old.as_bytes()).map_err(|e| rename_field(e, "auditPreviousKeys"))?);
        }
        Ok(keys)
    }

    /// Authentication settings from the secrets: the current keys sign and seal, the
    /// previous ones still verify and open. Each key's id is [`crm_core::auth::key_id`].
    pub fn auth(&self) -> Result<AuthSettings> {
        self.auth_from(&self.secrets()?)
    }

    fn auth_from(&self, s: &Secrets) -> Result<AuthSettings> {
        let jwt_kid = |secret: &str| crm_core::auth::key_id(secret.as_bytes());
        let mut keys = JwtKeys::new(JwtConfig::default(), &jwt_kid(&s.jwt_secret), s.jwt_secret.as_bytes())
            .map_err(|e| rename_field(e, "jwtSecret"))?;
        for old in self.jwt_previous_secrets.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            keys.also_verify(&jwt_kid(old), old.as_bytes()).map_err(|e| rename_field(e, "jwtPreviousSecrets"))?;
        }
        let mut sealer = Sealer::new(&seal_key(&s.seal_key, "sealKey")?);
        for old in self.seal_previous_keys.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            let key = seal_key(old, "sealPreviousKeys")?;
            sealer.also_open(&crm_core::auth::key_id(&key), &key)?;
        }
        Ok(AuthSettings::with_keys(keys, sealer))
    }

    /// Makes the SQLite file readable by the server's user only, before SQLite creates
    /// it with the umask's mode (its journal files take the same mode).
    fn private_sqlite_file(&self) -> Result<()> {
        match self.sqlite_file() {
            Some(file) => crm_core::files::touch_private(&file)
                .map_err(|e| Error::internal(format!("creating {}", file.display()), e)),
            None => Ok(()),
        }
    }

    /// Connects (and migrates, or indexes) the store the URL names: `sqlite:`,
    /// `postgres:`/`postgresql:`, `mongodb:`/`mongodb+srv:`.
    pub async fn store(&self) -> Result<AnyStore> {
        let url = self.database();
        if url.starts_with("sqlite:") {
            self.private_sqlite_file()?;
        }
        crm_storage::open(&url).await
    }

    /// The third-party logins configured: Google, Facebook, one OpenID Connect issuer
    /// (its discovery document is read now).
    pub async fn providers(&self) -> Result<crm_core::auth::Providers> {
        use crm_core::auth::oauth::{FacebookConfig, FacebookProvider, OidcConfig, OidcProvider, FACEBOOK_DIALOG};
        let listed =
            |v: &[String]| v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
        let mut providers = crm_core::auth::Providers::default();
        let google = listed(&self.google_client_ids);
        if let Some(first) = google.first() {
            let mut c = OidcConfig::google(first);
            c.audiences = google.clone();
            providers.add(Arc::new(OidcProvider::new(c)?));
        }
        match (&self.facebook_app_id, &self.facebook_app_secret) {
            (Some(app_id), Some(app_secret)) => {
                let c = FacebookConfig {
                    app_id: app_id.trim().to_string(),
                    app_secret: app_secret.trim().to_string(),
                    graph_url: "https://graph.facebook.com".into(),
                    dialog_url: FACEBOOK_DIALOG.into(),
                };
                providers.add(Arc::new(FacebookProvider::new(c)?));
            }
            (Some(_), None) => {
                return Err(Error::invalid("facebookAppSecret", "required", "Facebook Login needs the app's secret"))
            }
            (None, Some(_)) => {
                return Err(Error::invalid("facebookAppId", "required", "Facebook Login needs the app id"))
            }
            (None, None) => {}
        }
        if let Some(issuer) = &self.oidc_issuer {
            let audiences = listed(&self.oidc_client_ids);
            if audiences.is_empty() {
                return Err(Error::invalid("oidcClientIds", "required", "an OIDC provider needs its client id"));
            }
            let name = self.oidc_name.trim();
            if name.is_empty() || ["google", "facebook"].contains(&name) {
                return Err(Error::invalid("oidcName", "invalid_value", "a name of its own: not google or facebook"));
            }
            let c = match &self.oidc_jwks_url {
                Some(jwks) => OidcConfig {
                    name: name.to_string(),
                    issuers: vec![issuer.trim_end_matches('/').to_string()],
                    audiences,
                    jwks_url: jwks.clone(),
                    leeway_secs: 60,
                    jwks_min_refetch: crm_core::auth::oauth::MIN_REFETCH,
                    authorize_url: None,
                    label: String::new(),
                },
                None => OidcConfig::discover(name, issuer, audiences).await?,
            };
            let mut c = c;
            if let Some(url) = self.oidc_authorize_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
                c.authorize_url = Some(url.to_string());
            }
            c.label = match self.oidc_label.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
                Some(label) => label.to_string(),
                None => name.to_string(),
            };
            providers.add(Arc::new(OidcProvider::new(c)?));
        } else if !self.oidc_client_ids.is_empty() {
            return Err(Error::invalid("oidcIssuer", "required", "OIDC client ids need the issuer"));
        }
        Ok(providers)
    }

    /// The engine for serving: [`ServerConfig::crm`] with the third-party logins, and
    /// the read replica (`--read-database-url`) for its bulk reads.
    pub async fn engine(&self, store: Arc<dyn Store>) -> Result<Crm> {
        let crm = self.build(store, self.providers().await?)?;
        match self.read_database_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => {
                let replica = crm_storage::open_replica(url).await?;
                tracing::info!(backend = replica.store().backend(), "reports and exports read from the read replica");
                Ok(crm.with_read_store(replica.store()))
            }
            None => Ok(crm),
        }
    }

    /// The proxies whose forwarding headers are believed.
    pub fn trusted_proxies(&self) -> Result<crate::client::TrustedProxies> {
        crate::client::TrustedProxies::parse(&self.trusted_proxies)
    }

    /// The engine on a store, with this configuration's secrets and files (no
    /// third-party logins: [`ServerConfig::engine`] adds them).
    pub fn crm(&self, store: Arc<dyn Store>) -> Result<Crm> {
        self.build(store, crm_core::auth::Providers::default())
    }

    /// The engine with these providers; the secrets are read (or made) once.
    fn build(&self, store: Arc<dyn Store>, providers: crm_core::auth::Providers) -> Result<Crm> {
        let secrets = self.secrets()?;
        let mut auth = self.auth_from(&secrets)?;
        auth.providers = providers;
        let blobs = Arc::new(self.blobs()?);
        let config = crm_core::CrmConfig {
            outgoing: self.outgoing_guard()?,
            analytics_cache_bytes: self
                .analytics_cache_mb
                .map(|mb| usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)),
            ..Default::default()
        };
        Ok(Crm::builder(store)
            .auth(auth)
            .audit_keys(self.audit_keys_from(&secrets)?)
            .billing_keys(self.billing_keys_from(&secrets)?)
            .blobs(blobs)
            .config(config)
            .build())
    }

    /// On SQLite, makes this process the database's one server: holds an exclusive lock
    /// on `<file>.lock` for as long as the returned file lives. A second `serve` or
    /// `worker` on the same file fails at once, naming `databaseUrl` (SQLite takes one
    /// server; several replicas need PostgreSQL or MongoDB). One-off commands (import,
    /// export, migrate, copy) do not take it. `None` on other stores.
    pub fn hold_sqlite(&self) -> Result<Option<std::fs::File>> {
        let Some(db) = self.sqlite_file() else { return Ok(None) };
        let path = PathBuf::from(format!("{}.lock", db.display()));
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| Error::internal(format!("opening {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::invalid(
                "databaseUrl",
                "in_use",
                format!(
                    "another crm-server process serves {} already: a SQLite database takes one server (with its \
                     worker); for several, move the CRM to PostgreSQL (crm-server copy --to postgres://…)",
                    db.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::internal(format!("locking {}", path.display()), e)),
        }
    }

    /// The Redis (or Valkey) the replicas share, when `--redis-url` names one (it must
    /// answer now).
    pub async fn redis(&self) -> Result<Option<crate::limit::SharedRedis>> {
        match self.redis_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Ok(Some(crate::limit::SharedRedis::connect(url, "crm-rs:").await?)),
            None => Ok(None),
        }
    }

    /// Where uploaded files are kept: `--files-url`, else `--files-dir`.
    pub fn blobs(&self) -> Result<ObjectBlobStore> {
        match &self.files_url {
            Some(url) => files_at(url),
            None => ObjectBlobStore::local(&self.files_dir),
        }
    }

    /// This configuration on another database (its secrets file follows the URL, as
    /// for a server started on it).
    pub fn on_database(&self, url: &str) -> Self {
        Self { database_url: url.trim().to_string(), ..self.clone() }
    }

    /// Gives the server of `to` (this configuration on another database) the secrets of
    /// this one, which its copied data needs (the audit chain's key, the billing fields'
    /// key, the sealed mail's key, the sessions' signing secret): writes them to the
    /// secrets file a server on `to` reads, when it has none. Returns that file when
    /// written. Fails, naming `to`, when the file exists with other keys.
    pub fn carry_secrets(&self, to: &ServerConfig) -> Result<Option<PathBuf>> {
        let mine = self.secrets()?;
        let all_given = [
            (&to.jwt_secret, &to.jwt_secret_file),
            (&to.seal_key, &to.seal_key_file),
            (&to.audit_key, &to.audit_key_file),
            (&to.billing_key, &to.billing_key_file),
        ]
        .iter()
        .all(|(v, f)| v.is_some() || f.is_some());
        let path = to.secrets_path();
        if all_given || path == self.secrets_path() {
            return Ok(None);
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let theirs: Secrets = serde_json::from_str(&text)
                    .map_err(|e| Error::invalid("secretsFile", "invalid_format", format!("{}: {e}", path.display())))?;
                if theirs == mine {
                    Ok(None)
                } else {
                    Err(Error::invalid(
                        "to",
                        "other_secrets",
                        format!(
                            "{} holds other keys than the source's: the copied audit chain and sealed fields need                              the source's; move that file away, or name another with --secrets-file",
                            path.display()
                        ),
                    ))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_private(&path, &serde_json::to_string_pretty(&mine).unwrap_or_default())?;
                Ok(Some(path))
            }
            Err(e) => Err(Error::internal(format!("reading {}", path.display()), e)),
        }
    }

    /// The delivery engine of `crm`: account emails, notification emails, webhooks.
    pub fn delivery_engine(&self, crm: Crm) -> Result<crm_core::delivery::DeliveryEngine> {
        use crm_core::delivery::{webhook, DeliveryEngine, EngineConfig};
        let http =
            webhook::HttpConfig { timeout: std::time::Duration::from_secs(self.webhook_timeout), ..Default::default() };
        let (mailer, mail) = (self.mailer()?, self.mail_config()?);
        let config = EngineConfig {
            concurrency: usize::try_from(self.delivery_concurrency).unwrap_or(8),
            lease: chrono::Duration::seconds(i64::try_from(self.delivery_lease).unwrap_or(300)),
            ..Default::default()
        };
        crm_core::delivery::ssrf::parse_url(&self.slack_api_url, "slackApiUrl")?;
        let chat =
            |p| Arc::new(webhook::ChatSender::new(p, http.clone(), &mail.public_url).slack_api(&self.slack_api_url));
        Ok(DeliveryEngine::new(crm)
            .config(config)
            .channel(chat(crm_core::model::delivery::ChatProvider::Slack))
            .channel(chat(crm_core::model::delivery::ChatProvider::Teams))
            .channel(Arc::new(crm_core::mail::MailChannel::new(mailer.clone(), mail.clone())))
            .channel(Arc::new(crm_core::mail::NotificationMailChannel::new(mailer, mail)))
            .channel(Arc::new(webhook::WebhookChannel::new(http))))
    }

    /// The campaign sender of `crm`.
    pub fn campaign_sender(&self, crm: Crm) -> Result<crm_core::campaign::CampaignSender> {
        let mail = self.mail_config()?;
        if !(self.campaign_rate.is_finite() && self.campaign_rate >= 0.0) {
            return Err(Error::invalid("campaignRate", "out_of_range", "messages per second: 0 or more"));
        }
        let mut config = crm_core::campaign::CampaignConfig::new(mail.public_url, mail.from);
        config.per_second = self.campaign_rate;
        config.per_hour = self.campaign_hourly_limit;
        config.max_errors = self.campaign_max_errors;
        config.batch = usize::try_from(self.campaign_batch).unwrap_or(20);
        config.concurrency = usize::try_from(self.campaign_concurrency).unwrap_or(4);
        config.footer = self.campaign_footer.clone();
        config.lease = chrono::Duration::seconds(i64::try_from(self.campaign_lease).unwrap_or(60));
        Ok(crm_core::campaign::CampaignSender::new(crm, self.mailer()?, config))
    }

    /// Online payments through Stripe, when its secret key is set.
    pub fn payments(&self) -> Result<Option<crate::Payments>> {
        let Some(key) = self.stripe_secret_key.clone().filter(|k| !k.trim().is_empty()) else { return Ok(None) };
        let secrets: Vec<String> =
            self.stripe_webhook_secrets.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return Err(Error::invalid(
                "stripeWebhookSecrets",
                "required",
                "with a Stripe key, the webhook's signing secret (whsec_…) is required: payments are recorded from the webhook",
            ));
        }
        for (field, url) in [("stripeApiBase", &self.stripe_api_base), ("stripeJsUrl", &self.stripe_js_url)] {
            if url::Url::parse(url).map(|u| !matches!(u.scheme(), "http" | "https")).unwrap_or(true) {
                return Err(Error::invalid(field, "invalid_value", "an http(s) URL"));
            }
        }
        let gateway = crm_core::billing::gateway::StripeGateway::new(crm_core::billing::gateway::StripeConfig {
            api_base: self.stripe_api_base.clone(),
            secret_key: key,
            publishable_key: self.stripe_publishable_key.clone(),
            js_url: self.stripe_js_url.clone(),
        })?;
        Ok(Some(crate::Payments { gateway: Arc::new(gateway), webhook_secrets: secrets, tolerance: 300 }))
    }

    /// The internal networks outgoing calls may reach (`--webhook-allow-networks`).
    pub fn outgoing_guard(&self) -> Result<crm_core::delivery::ssrf::Guard> {
        let mut allow = Vec::new();
        for (i, net) in self.webhook_allow_networks.iter().enumerate() {
            let net = net.trim();
            let parsed = net
                .parse::<ipnet::IpNet>()
                .or_else(|_| net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    Error::invalid(
                        format!("webhookAllowNetworks[{i}]"),
                        "invalid_value",
                        format!("'{net}' is not a CIDR"),
                    )
                })?;
            allow.push(parsed);
        }
        Ok(crm_core::delivery::ssrf::Guard::allowing(allow))
    }

    /// The mailer: SMTP when configured, else the mail directory.
    pub fn mailer(&self) -> Result<Arc<dyn Mailer>> {
        let Some(url) = &self.smtp_url else { return Ok(Arc::new(DirMailer::new(&self.mail_dir))) };
        Ok(Arc::new(SmtpMailer::new(&parse_smtp_url(url)?)?))
    }

    /// How emails are made.
    pub fn mail_config(&self) -> Result<MailConfig> {
        let from = self
            .mail_from
            .parse()
            .map_err(|e| Error::invalid("mailFrom", "invalid_format", format!("{}: {e}", self.mail_from)))?;
        let public_url = self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.bind));
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            return Err(Error::invalid(
                "publicUrl",
                "invalid_format",
                "the public URL starts with http:// or https://",
            ));
        }
        Ok(MailConfig { public_url, from, app_name: "crm-rs".into() })
    }
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("making {}", dir.display()), e))?;
    }
    crm_core::files::write_private(path, text.as_bytes())
        .map_err(|e| Error::internal(format!("writing {}", path.display()), e))
}

/// Files in a directory, or in S3 (`s3://bucket[/prefix]`).
pub fn files_at(place: &str) -> Result<ObjectBlobStore> {
    if place.starts_with("s3://") {
        ObjectBlobStore::s3(place)
    } else {
        ObjectBlobStore::local(place)
    }
}

/// Replaces a file's content at once (a file beside it, renamed over it), mode 0600.
fn replace_private(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::now_v7().simple()));
    write_private(&tmp, text)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::internal(format!("replacing {}", path.display()), e))
}

/// A seal key: 64 hex digits (`field` names it in the error).
fn seal_key(hex_digits: &str, field: &str) -> Result<[u8; 32]> {
    hex::decode(hex_digits.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::invalid(field, "invalid_format", "a seal key is 64 hex digits (openssl rand -hex 32)"))
}

/// The same error naming `field` instead.
pub(crate) fn rename_field(e: Error, field: &str) -> Error {
    match e {
        Error::Validation(mut fields) => {
            for f in &mut fields {
                f.field = field.to_string();
            }
            Error::Validation(fields)
        }
        other => other,
    }
}

/// `smtp://user:pass@host:587` (STARTTLS), `smtps://…:465` (TLS), `smtp+plain://host:25`.
pub fn parse_smtp_url(url: &str) -> Result<SmtpConfig> {
    let bad =
        |why: &str| Error::invalid("smtpUrl", "invalid_format", format!("{why} (smtp://[user:pass@]host[:port])"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let (security, default_port) = match scheme {
        "smtp" => (SmtpSecurity::StartTls, 587),
        "smtps" => (SmtpSecurity::Tls, 465),
        "smtp+plain" => (SmtpSecurity::Plain, 25),
        "smtp+insecure" => (SmtpSecurity::PlainTrustedNetwork, 25),
        _ => return Err(bad("the scheme is smtp, smtps, smtp+plain (loopback) or smtp+insecure (trusted network)")),
    };
    let rest = rest.trim_end_matches('/');
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let credentials = match auth {
        Some(a) => {
            let (u, p) = a.split_once(':').ok_or_else(|| bad("credentials are user:password"))?;
            Some((u.to_string(), p.to_string()))
        }
        None => None,
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("the port is a number"))?),
        None => (hostport, default_port),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(SmtpConfig { host: host.to_string(), port, security, credentials, timeout: std::time::Duration::from_secs(30) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let c = parse_smtp_url("smtp://me:secret@mail.example.com").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.host.as_str(), c.port, c.security), ("mail.example.com", 587, SmtpSecurity::StartTls));
        assert_eq!(c.credentials, Some(("me".into(), "secret".into())));
        let c = parse_smtp_url("smtp+plain://127.0.0.1:2525").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.port, c.security, c.credentials), (2525, SmtpSecurity::Plain, None));
        assert!(parse_smtp_url("http://x").is_err());
        assert!(parse_smtp_url("smtp://host:notaport").is_err());
    }
}

/// The keys a configuration file may hold, with the environment variable each fills.
pub const FILE_KEYS: [(&str, &str); 59] = [
    ("database_url", "CRM_DATABASE_URL"),
    ("read_database_url", "CRM_READ_DATABASE_URL"),
    ("bind", "CRM_BIND"),
    ("jwt_secret", "CRM_JWT_SECRET"),
    ("jwt_secret_file", "CRM_JWT_SECRET_FILE"),
    ("jwt_previous_secrets", "CRM_JWT_PREVIOUS_SECRETS"),
    ("seal_key", "CRM_SEAL_KEY"),
    ("seal_key_file", "CRM_SEAL_KEY_FILE"),
    ("seal_previous_keys", "CRM_SEAL_PREVIOUS_KEYS"),
    ("audit_key", "CRM_AUDIT_KEY"),
    ("audit_key_file", "CRM_AUDIT_KEY_FILE"),
    ("audit_previous_keys", "CRM_AUDIT_PREVIOUS_KEYS"),
    ("secrets_file", "CRM_SECRETS_FILE"),
    ("smtp_url", "CRM_SMTP_URL"),
    ("mail_dir", "CRM_MAIL_DIR"),
    ("mail_from", "CRM_MAIL_FROM"),
    ("public_url", "CRM_PUBLIC_URL"),
    ("files_dir", "CRM_FILES_DIR"),
    ("files_url", "CRM_FILES_URL"),
    ("redis_url", "CRM_REDIS_URL"),
    ("google_client_ids", "CRM_GOOGLE_CLIENT_IDS"),
    ("facebook_app_id", "CRM_FACEBOOK_APP_ID"),
    ("facebook_app_secret", "CRM_FACEBOOK_APP_SECRET"),
    ("oidc_issuer", "CRM_OIDC_ISSUER"),
    ("oidc_name", "CRM_OIDC_NAME"),
    ("oidc_client_ids", "CRM_OIDC_CLIENT_IDS"),
    ("oidc_jwks_url", "CRM_OIDC_JWKS_URL"),
    ("oidc_authorize_url", "CRM_OIDC_AUTHORIZE_URL"),
    ("oidc_label", "CRM_OIDC_LABEL"),
    ("cors_origins", "CRM_CORS_ORIGINS"),
    ("trusted_proxies", "CRM_TRUSTED_PROXIES"),
    ("log_format", "CRM_LOG_FORMAT"),
    ("auth_rate_limit", "CRM_AUTH_RATE_LIMIT"),
    ("login_rate_limit", "CRM_LOGIN_RATE_LIMIT"),
    ("payment_rate_limit", "CRM_PAYMENT_RATE_LIMIT"),
    ("report_concurrency", "CRM_REPORT_CONCURRENCY"),
    ("analytics_cache_mb", "CRM_ANALYTICS_CACHE_MB"),
    ("webhook_allow_networks", "CRM_WEBHOOK_ALLOW_NETWORKS"),
    ("webhook_timeout", "CRM_WEBHOOK_TIMEOUT"),
    ("slack_api_url", "CRM_SLACK_API_URL"),
    ("delivery_concurrency", "CRM_DELIVERY_CONCURRENCY"),
    ("delivery_lease", "CRM_DELIVERY_LEASE"),
    ("no_worker", "CRM_NO_WORKER"),
    ("campaign_rate", "CRM_CAMPAIGN_RATE"),
    ("campaign_hourly_limit", "CRM_CAMPAIGN_HOURLY_LIMIT"),
    ("campaign_max_errors", "CRM_CAMPAIGN_MAX_ERRORS"),
    ("campaign_batch", "CRM_CAMPAIGN_BATCH"),
    ("campaign_concurrency", "CRM_CAMPAIGN_CONCURRENCY"),
    ("campaign_lease", "CRM_CAMPAIGN_LEASE"),
    ("campaign_footer", "CRM_CAMPAIGN_FOOTER"),
    ("stripe_secret_key", "CRM_STRIPE_SECRET_KEY"),
    ("stripe_publishable_key", "CRM_STRIPE_PUBLISHABLE_KEY"),
    ("stripe_webhook_secrets", "CRM_STRIPE_WEBHOOK_SECRETS"),
    ("stripe_api_base", "CRM_STRIPE_API_BASE"),
    ("stripe_js_url", "CRM_STRIPE_JS_URL"),
    ("billing_key", "CRM_BILLING_KEY"),
    ("billing_key_file", "CRM_BILLING_KEY_FILE"),
    ("billing_previous_keys", "CRM_BILLING_PREVIOUS_KEYS"),
    ("billing_interval", "CRM_BILLING_INTERVAL"),
];

/// The keys whose value may be a list of strings.
const LIST_KEYS: [&str; 10] = [
    "cors_origins",
    "billing_previous_keys",
    "stripe_webhook_secrets",
    "webhook_allow_networks",
    "trusted_proxies",
    "jwt_previous_secrets",
    "seal_previous_keys",
    "audit_previous_keys",
    "google_client_ids",
    "oidc_client_ids",
];

/// Reads a TOML configuration file into `(variable, value)` pairs. Flags and the
/// environment win over the file; unknown keys and values of the wrong type are errors
/// that name them.
pub fn read_file(path: &Path) -> Result<Vec<(&'static str, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::internal(format!("reading {}", path.display()), e))?;
    parse_file(&text).map_err(|e| match e {
        Error::Validation(mut fields) => {
            for f in &mut fields {
                f.message = format!("{}: {}", path.display(), f.message);
            }
            Error::Validation(fields)
        }
        other => other,
    })
}

/// [`read_file`] on text.
pub fn parse_file(text: &str) -> Result<Vec<(&'static str, String)>> {
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| Error::invalid("config", "invalid_format", e.to_string()))?;
    let mut errs = crm_core::error::Errors::new();
    let mut out = Vec::new();
    for (key, value) in table {
        let Some((_, var)) = FILE_KEYS.iter().find(|(k, _)| *k == key) else {
            let known: Vec<&str> = FILE_KEYS.iter().map(|(k, _)| *k).collect();
            errs.add(key.clone(), "unknown_field", format!("unknown key; the keys are {}", known.join(", ")));
            continue;
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n)
                if key.ends_with("_rate_limit")
                    || key == "report_concurrency"
                    || key == "analytics_cache_mb"
                    || key.starts_with("campaign_") =>
            {
                n.to_string()
            }
            toml::Value::Float(n) if key == "campaign_rate" => n.to_string(),
            toml::Value::Array(items) if LIST_KEYS.contains(&key.as_str()) => {
                let strings: Option<Vec<String>> = items.into_iter().map(|i| i.as_str().map(str::to_string)).collect();
                match strings {
                    Some(s) => s.join(","),
                    None => {
                        errs.add(key, "invalid_value", "a list of strings");
                        continue;
                    }
                }
            }
            other => {
                errs.add(key, "invalid_value", format!("a string, not {}", other.type_str()));
                continue;
            }
        };
        out.push((*var, text));
    }
    errs.finish()?;
    Ok(out)
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn config_files_map_to_variables_and_name_their_mistakes() {
        let mut ok =
            parse_file("database_url = \"postgres://x@h/db\"\ncors_origins = [\"https://a\", \"https://b\"]\n")
                .unwrap_or_else(|e| panic!("{e}"));
        ok.sort();
        assert_eq!(
            ok,
            [("CRM_CORS_ORIGINS", "https://a,https://b".to_string()), ("CRM_DATABASE_URL", "postgres://x@h/db".into())]
        );
        assert_eq!(
            parse_file("analytics_cache_mb = 2048\n").unwrap_or_else(|e| panic!("{e}")),
            [("CRM_ANALYTICS_CACHE_MB", "2048".to_string())]
        );
        let e = parse_file("bind = 8080\ncolour = \"red\"\n").err().unwrap_or_else(|| panic!("accepted"));
        let mut fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        fields.sort();
        assert_eq!(fields, ["bind", "colour"]);
        assert!(parse_file("not toml [").is_err());
    }
}
