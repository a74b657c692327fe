//! # crm-storage
//!
//! Opens the store a database URL names, for programs that choose their backend when they
//! start (crm-server, the Python package) rather than when they are built:
//!
//! | URL | store | feature |
//! |---|---|---|
//! | `sqlite://path` (created when missing) | [`crm_storage_sql::SqlStore`] | `sqlite` |
//! | `postgres://…`, `postgresql://…` | [`crm_storage_sql::SqlStore`] | `postgres` |
//! | `mysql://…`, `mariadb://…` (MariaDB 10.6+) | [`crm_storage_sql::SqlStore`] | `mysql` |
//! | `mongodb://…`, `mongodb+srv://…` | [`crm_storage_mongo::MongoStore`] | `mongodb` |
//!
//! All four are on by default; a program that needs one turns the others off and links
//! only that driver. A URL whose backend this build leaves out is refused by name.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! let store = crm_storage::open("sqlite://crm.db").await?;
//! let crm = crm_core::Crm::new(store.store());
//! # Ok(()) }
//! ```

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql", feature = "mongodb")))]
compile_error!("crm-storage needs at least one of its features: sqlite, postgres, mysql, mongodb");

use std::sync::Arc;

use crm_core::{Error, Result, Store};

/// One of the stores a URL can name.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// SQLite, PostgreSQL or MariaDB.
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    Sql(Arc<crm_storage_sql::SqlStore>),
    /// MongoDB.
    #[cfg(feature = "mongodb")]
    Mongo(Arc<crm_storage_mongo::MongoStore>),
}

impl AnyStore {
    /// The store, for the engine.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            AnyStore::Sql(s) => s.clone(),
            #[cfg(feature = "mongodb")]
            AnyStore::Mongo(s) => s.clone(),
        }
    }

    /// Folds SQLite's write-ahead log into the database file, so that the file alone
    /// holds every committed write (a copy of the file is whole). Nothing to do on the
    /// other stores.
    pub async fn checkpoint(&self) -> Result<()> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sql(s) if s.backend() == "sqlite" => {
                s.execute_unchecked("PRAGMA wal_checkpoint(TRUNCATE)").await.map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// Closes its connections (SQLite checkpoints its journal).
    pub async fn close(&self) {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            AnyStore::Sql(s) => s.close().await,
            #[cfg(feature = "mongodb")]
            AnyStore::Mongo(_) => {}
        }
    }
}

/// The backends a URL can name, as (scheme prefixes, name, feature).
const SCHEMES: [(&[&str], &str, &str); 4] = [
    (&["sqlite:"], "SQLite", "sqlite"),
    (&["postgres:", "postgresql:"], "PostgreSQL", "postgres"),
    (&["mysql:", "mariadb:"], "MariaDB", "mysql"),
    (&["mongodb:", "mongodb+srv:"], "MongoDB", "mongodb"),
];

/// The SQLite file a `sqlite:` URL names, if it names one.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(':')).then(|| std::path::PathBuf::from(path))
}

/// `url` with SQLite's open mode `mode` (`rwc`: created when missing; `rw`: must exist)
/// unless it names one already; other URLs as they are.
pub fn with_sqlite_mode(url: &str, mode: &str) -> String {
    let url = url.trim();
    if url.starts_with("sqlite:") && !url.contains("mode=") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode={mode}")
    } else {
        url.to_string()
    }
}

/// Connects to the store `url` names and migrates it (SQL) or creates its indexes
/// (MongoDB). The error names `databaseUrl`.
pub async fn open(url: &str) -> Result<AnyStore> {
    let Some((_, name, feature)) = SCHEMES.iter().find(|(prefixes, ..)| prefixes.iter().any(|p| url.starts_with(p)))
    else {
        return Err(Error::invalid(
            "databaseUrl",
            "invalid_value",
            format!("{url}: use sqlite://path, postgres://user@host/db, mysql://user@host/db or mongodb://host/db"),
        ));
    };
    match *feature {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(AnyStore::Sql(Arc::new(crm_storage_sql::SqlStore::connect(url).await?))),
        #[cfg(feature = "postgres")]
        "postgres" => Ok(AnyStore::Sql(Arc::new(crm_storage_sql::SqlStore::connect(url).await?))),
        #[cfg(feature = "mysql")]
        "mysql" => Ok(AnyStore::Sql(Arc::new(crm_storage_sql::SqlStore::connect(url).await?))),
        #[cfg(feature = "mongodb")]
        "mongodb" => Ok(AnyStore::Mongo(Arc::new(crm_storage_mongo::MongoStore::connect(url).await?))),
        _ => Err(Error::invalid(
            "databaseUrl",
            "unsupported",
            format!("this build has no {name} store (crm-storage's feature `{feature}` is off)"),
        )),
    }
}

/// Connects to a read replica of a store (`--read-database-url`): a PostgreSQL standby or
/// a MariaDB replica (connected without migrating: the schema comes from the primary) or
/// a MongoDB URL
/// (say with `readPreference=secondaryPreferred`). SQLite has no replicas to read from.
/// The error names `readDatabaseUrl`.
pub async fn open_replica(url: &str) -> Result<AnyStore> {
    let renamed = |e: Error| e.renamed("databaseUrl", "readDatabaseUrl");
    if url.starts_with("sqlite:") {
        return Err(Error::invalid(
            "readDatabaseUrl",
            "unsupported",
            "a SQLite database has no read replica: give a PostgreSQL, MariaDB or MongoDB URL",
        ));
    }
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    if ["postgres:", "postgresql:", "mysql:", "mariadb:"].iter().any(|p| url.starts_with(p)) {
        let opts = crm_storage_sql::SqlOptions { migrate: false, ..Default::default() };
        return Ok(AnyStore::Sql(Arc::new(crm_storage_sql::SqlStore::connect_with(url, opts).await.map_err(renamed)?)));
    }
    open(url).await.map_err(renamed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_schemes_are_refused_by_name() {
        let err = open("oracle://localhost/crm").await.map(|_| ()).err();
        let Some(Error::Validation(fields)) = err else { panic!("{err:?}") };
        assert_eq!(fields[0].field, "databaseUrl");
    }

    #[test]
    fn sqlite_files_are_read_from_urls() {
        assert_eq!(sqlite_file("sqlite://data/crm.db?mode=rwc"), Some("data/crm.db".into()));
        assert_eq!(sqlite_file("sqlite:crm.db"), Some("crm.db".into()));
        assert_eq!(sqlite_file("postgres://x"), None);
    }
}
