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
use crm_storage_mongo::MongoStore;
use crm_storage_sql::SqlStore;
use serde::{Deserialize, Serialize};

/// One of the stores the server runs on.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// SQLite or PostgreSQL.
    Sql(Arc<SqlStore>),
    /// MongoDB.
    Mongo(Arc<MongoStore>),
}

impl AnyStore {
    /// The store, for the engine.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            AnyStore::Sql(s) => s.clone(),
            AnyStore::Mongo(s) => s.clone(),
        }
    }

    /// Closes its connections (SQLite checkpoints its journal).
    pub async fn close(&self) {
        if let AnyStore::Sql(s) = self {
            s.close().await;
        }
    }
}

/// Where the server keeps its data and how it reaches the world.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// The database: `sqlite://path` (created when missing), `postgres://user@host/db` or
    /// `mongodb://host/db` (a replica set: transactions need one).
    #[arg(long, env = "CRM_DATABASE_URL", default_value = "sqlite://crm.db")]
    pub database_url: String,
    /// The address to listen on.
    #[arg(long, env = "CRM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The access-token signing secret (at least 32 bytes); generated and kept in the
    /// secrets file when absent.
    #[arg(long, env = "CRM_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
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
    /// Where uploaded files (avatars) are kept.
    #[arg(long, env = "CRM_FILES_DIR", default_value = "crm-files")]
    pub files_dir: PathBuf,
    /// Requests a minute one client address may make to the auth routes.
    #[arg(long, env = "CRM_AUTH_RATE_LIMIT", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_rate_limit: u32,
    /// Login and password-reset requests a minute for one account name.
    #[arg(long, env = "CRM_LOGIN_RATE_LIMIT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_rate_limit: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Secrets {
    jwt_secret: String,
    seal_key: String,
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).map_err(|e| Error::internal("reading the OS random source", e))?;
    Ok(hex::encode(b))
}

impl ServerConfig {
    /// The database URL with SQLite's create-when-missing mode.
    pub fn database(&self) -> String {
        let url = self.database_url.trim();
        if url.starts_with("sqlite:") && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_string()
        }
    }

    fn secrets_path(&self) -> PathBuf {
        if let Some(p) = &self.secrets_file {
            return p.clone();
        }
        let url = self.database_url.trim();
        match url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Some(rest) => {
                let file = rest.split('?').next().unwrap_or("crm.db");
                PathBuf::from(format!("{file}.secrets.json"))
            }
            None => PathBuf::from("crm-secrets.json"),
        }
    }

    /// The secrets: from flags/env, else the secrets file, else made now and written
    /// there (mode 0600).
    fn secrets(&self) -> Result<Secrets> {
        let path = self.secrets_path();
        let stored: Option<Secrets> = match std::fs::read_to_string(&path) {
            Ok(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| Error::invalid("secretsFile", "invalid_format", format!("{}: {e}", path.display())))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::internal(format!("reading {}", path.display()), e)),
        };
        let secrets = match stored {
            Some(s) => s,
            None => {
                let s = Secrets { jwt_secret: random_hex(32)?, seal_key: random_hex(32)? };
                write_private(&path, &serde_json::to_string_pretty(&s).unwrap_or_default())?;
                tracing::info!(file = %path.display(), "generated the server secrets");
                s
            }
        };
        Ok(match &self.jwt_secret {
            Some(j) => Secrets { jwt_secret: j.clone(), seal_key: secrets.seal_key },
            None => secrets,
        })
    }

    /// Authentication settings from the secrets.
    pub fn auth(&self) -> Result<AuthSettings> {
        let s = self.secrets()?;
        let keys = JwtKeys::new(JwtConfig::default(), "k1", s.jwt_secret.as_bytes())?;
        let seal: [u8; 32] = hex::decode(&s.seal_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::invalid("sealKey", "invalid_format", "the seal key is 64 hex digits"))?;
        Ok(AuthSettings::with_keys(keys, Sealer::new(&seal)))
    }

    /// Connects (and migrates, or indexes) the store the URL names: `sqlite:`,
    /// `postgres:`/`postgresql:`, `mongodb:`/`mongodb+srv:`.
    pub async fn store(&self) -> Result<AnyStore> {
        let url = self.database();
        if url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:") {
            return Ok(AnyStore::Sql(Arc::new(SqlStore::connect(&url).await?)));
        }
        if url.starts_with("mongodb:") || url.starts_with("mongodb+srv:") {
            return Ok(AnyStore::Mongo(Arc::new(MongoStore::connect(&url).await?)));
        }
        Err(Error::invalid(
            "databaseUrl",
            "invalid_value",
            format!("{url}: use sqlite://path, postgres://user@host/db or mongodb://host/db"),
        ))
    }

    /// The engine on a store, with this configuration's secrets and files.
    pub fn crm(&self, store: Arc<dyn Store>) -> Result<Crm> {
        let blobs = Arc::new(ObjectBlobStore::local(&self.files_dir)?);
        Ok(Crm::builder(store).auth(self.auth()?).blobs(blobs).build())
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
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(path).map_err(|e| Error::internal(format!("writing {}", path.display()), e))?;
    f.write_all(text.as_bytes()).map_err(|e| Error::internal(format!("writing {}", path.display()), e))
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
pub const FILE_KEYS: [(&str, &str); 13] = [
    ("database_url", "CRM_DATABASE_URL"),
    ("bind", "CRM_BIND"),
    ("jwt_secret", "CRM_JWT_SECRET"),
    ("secrets_file", "CRM_SECRETS_FILE"),
    ("smtp_url", "CRM_SMTP_URL"),
    ("mail_dir", "CRM_MAIL_DIR"),
    ("mail_from", "CRM_MAIL_FROM"),
    ("public_url", "CRM_PUBLIC_URL"),
    ("files_dir", "CRM_FILES_DIR"),
    ("cors_origins", "CRM_CORS_ORIGINS"),
    ("log_format", "CRM_LOG_FORMAT"),
    ("auth_rate_limit", "CRM_AUTH_RATE_LIMIT"),
    ("login_rate_limit", "CRM_LOGIN_RATE_LIMIT"),
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
            toml::Value::Integer(n) if key.ends_with("_rate_limit") => n.to_string(),
            toml::Value::Array(items) if key == "cors_origins" => {
                let strings: Option<Vec<String>> = items.into_iter().map(|i| i.as_str().map(str::to_string)).collect();
                match strings {
                    Some(s) => s.join(","),
                    None => {
                        errs.add(key, "invalid_value", "a list of origin strings");
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
        let e = parse_file("bind = 8080\ncolour = \"red\"\n").err().unwrap_or_else(|| panic!("accepted"));
        let mut fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        fields.sort();
        assert_eq!(fields, ["bind", "colour"]);
        assert!(parse_file("not toml [").is_err());
    }
}
