//! Fresh databases for each test: a new SQLite file, a new PostgreSQL schema, a new
//! MariaDB database, a new MongoDB database.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use crm_core::Store;
use crm_storage_mongo::mongodb::bson::{doc, Document};
use crm_storage_mongo::MongoStore;
use crm_storage_sql::{SqlOptions, SqlStore};
use uuid::Uuid;

use crate::TestBackend;

/// The PostgreSQL server the suite uses: `CRM_TEST_POSTGRES_URL`, or the local one.
pub fn postgres_url() -> String {
    std::env::var("CRM_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// The MariaDB server the suite uses: `CRM_TEST_MARIADB_URL`, or the local one.
pub fn mariadb_url() -> String {
    std::env::var("CRM_TEST_MARIADB_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string())
}

/// A SQL store under test.
pub struct SqlBackend {
    store: Arc<SqlStore>,
    file: Option<PathBuf>,
    /// The PostgreSQL schema or MariaDB database, and the server's URL.
    schema: Option<String>,
    server: String,
}

impl SqlBackend {
    /// The concrete store.
    pub fn sql(&self) -> &SqlStore {
        &self.store
    }
}

#[async_trait]
impl TestBackend for SqlBackend {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn after_bulk_load(&self) {
        if self.schema.is_some() {
            self.store.analyze().await.expect("analyze");
        }
    }

    async fn raw_dump(&self) -> String {
        if let Some(file) = &self.file {
            let mut out = String::new();
            for f in [file.clone(), PathBuf::from(format!("{}-wal", file.display()))] {
                if let Ok(bytes) = std::fs::read(&f) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            return out;
        }
        let schema = self.schema.clone().expect("a schema");
        let out = if self.is_mariadb() {
            let url = url_parts(&self.server);
            std::process::Command::new("mariadb-dump")
                .args(["--skip-extended-insert", "-h", &url.0, "-P", &url.1, "-u", &url.2, &schema])
                .env("MYSQL_PWD", &url.3)
                .output()
                .expect("mariadb-dump (mariadb-client) runs")
        } else {
            std::process::Command::new("pg_dump")
                .args(["--no-owner", "--schema", &schema, &self.server])
                .output()
                .expect("pg_dump (postgresql-client) runs")
        };
        assert!(out.status.success(), "dump: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn location(&self) -> String {
        match (&self.file, &self.schema) {
            (Some(f), _) => f.display().to_string(),
            (_, Some(s)) if self.is_mariadb() => format!("database {s} at {}", self.server),
            (_, Some(s)) => format!("schema {s} at {}", self.server),
            _ => String::new(),
        }
    }

    async fn tamper_audit_event(&self, seq: i64) {
        let n = self
            .store
            .execute_unchecked(&format!("UPDATE audit_events SET action = 'contact.tampered' WHERE seq = {seq}"))
            .await
            .expect("tamper");
        assert_eq!(n, 1, "no audit event {seq} to tamper with");
    }

    async fn delete_audit_event(&self, seq: i64) {
        let n = self
            .store
            .execute_unchecked(&format!("DELETE FROM audit_events WHERE seq = {seq}"))
            .await
            .expect("delete audit event");
        assert_eq!(n, 1, "no audit event {seq} to delete");
    }

    async fn drop_index(&self, table: &str, index: &str) {
        let sql =
            if self.is_mariadb() { format!("DROP INDEX {index} ON {table}") } else { format!("DROP INDEX {index}") };
        self.store.execute_unchecked(&sql).await.expect("drop index");
    }

    async fn drop_column(&self, table: &str, column: &str) -> bool {
        self.store.execute_unchecked(&format!("ALTER TABLE {table} DROP COLUMN {column}")).await.expect("drop column");
        true
    }

    async fn second_store(&self) -> Arc<dyn Store> {
        let store = match (&self.file, &self.schema) {
            (Some(f), _) => SqlStore::connect(&format!("sqlite://{}", f.display())).await,
            (_, Some(s)) => {
                let opts = SqlOptions { pg_schema: Some(s.clone()), max_connections: 4, ..Default::default() };
                SqlStore::connect_with(&self.server, opts).await
            }
            _ => panic!("a SQL backend without a file or a schema"),
        };
        Arc::new(store.expect("a second store on the same database"))
    }

    async fn cleanup(&self) {
        self.store.close().await;
        if let Some(f) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = f.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
        if let Some(s) = &self.schema {
            let _ = SqlStore::drop_pg_schema(&self.server, s).await;
        }
    }
}

impl SqlBackend {
    fn is_mariadb(&self) -> bool {
        self.server.starts_with("mysql:") || self.server.starts_with("mariadb:")
    }
}

/// (host, port, user, password) of a server URL, for the command-line clients.
fn url_parts(url: &str) -> (String, String, String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (auth, host) = rest.split_once('@').unwrap_or(("", rest));
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let host = host.split(['/', '?']).next().unwrap_or_default();
    let (host, port) = host.split_once(':').unwrap_or((host, "3306"));
    (host.to_string(), port.to_string(), user.to_string(), password.to_string())
}

/// A fresh SQLite file.
pub async fn sqlite() -> Box<SqlBackend> {
    let file = std::env::temp_dir().join(format!("crm-test-{}.db", Uuid::now_v7().simple()));
    let store = SqlStore::connect(&format!("sqlite://{}", file.display())).await.expect("open a SQLite file");
    Box::new(SqlBackend { store: Arc::new(store), file: Some(file), schema: None, server: String::new() })
}

/// A fresh schema on the PostgreSQL server. Panics, failing the test, when the server
/// cannot be reached: a backend that is not tested is not skipped silently.
pub async fn postgres() -> Box<SqlBackend> {
    let url = postgres_url();
    let schema = format!("crm_test_{}", Uuid::now_v7().simple());
    let opts = SqlOptions { pg_schema: Some(schema.clone()), max_connections: 8, ..Default::default() };
    let store = match SqlStore::connect_with(&url, opts).await {
        Ok(s) => s,
        Err(e) => panic!(
            "PostgreSQL at {url} cannot be reached ({e}). Start it (scripts/test does) or point \
             CRM_TEST_POSTGRES_URL at a server."
        ),
    };
    Box::new(SqlBackend { store: Arc::new(store), file: None, schema: Some(schema), server: url })
}

/// A fresh database on the MariaDB server. Panics, failing the test, when the server
/// cannot be reached.
pub async fn mariadb() -> Box<SqlBackend> {
    let url = mariadb_url();
    let db = format!("crm_test_{}", Uuid::now_v7().simple());
    let opts = SqlOptions { pg_schema: Some(db.clone()), max_connections: 8, ..Default::default() };
    let store = match SqlStore::connect_with(&url, opts).await {
        Ok(s) => s,
        Err(e) => panic!(
            "MariaDB at {url} cannot be reached ({e:?}). Start it (scripts/test does) or point \
             CRM_TEST_MARIADB_URL at a server."
        ),
    };
    Box::new(SqlBackend { store: Arc::new(store), file: None, schema: Some(db), server: url })
}

/// The MongoDB-compatible server the suite uses: `CRM_TEST_MONGO_URL`, or the SecantusDB
/// server `scripts/test` starts on 127.0.0.1:27018.
pub fn mongo_url() -> String {
    std::env::var("CRM_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27018/?directConnection=true".to_string())
}

/// A MongoDB store under test, on a database of its own.
pub struct MongoBackend {
    store: Arc<MongoStore>,
}

#[async_trait]
impl TestBackend for MongoBackend {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    fn location(&self) -> String {
        format!("database {} at {}", self.store.database().name(), mongo_url())
    }

    async fn raw_dump(&self) -> String {
        let db = self.store.database();
        let mut out = String::new();
        for name in db.list_collection_names().await.expect("collections") {
            let mut cursor = db.collection::<Document>(&name).find(doc! {}).await.expect("find");
            while cursor.advance().await.expect("next") {
                let d = cursor.deserialize_current().expect("a document");
                out.push_str(&format!("{name}: {d}\n"));
            }
        }
        out
    }

    async fn tamper_audit_event(&self, seq: i64) {
        let done = self
            .store
            .database()
            .collection::<Document>("audit_events")
            .update_one(doc! { "seq": seq }, doc! { "$set": { "action": "contact.tampered" } })
            .await
            .expect("tamper");
        assert_eq!(done.matched_count, 1, "no audit event {seq} to tamper with");
    }

    async fn delete_audit_event(&self, seq: i64) {
        let done = self
            .store
            .database()
            .collection::<Document>("audit_events")
            .delete_one(doc! { "seq": seq })
            .await
            .expect("delete audit event");
        assert_eq!(done.deleted_count, 1, "no audit event {seq} to delete");
    }

    async fn drop_index(&self, table: &str, index: &str) {
        self.store.database().collection::<Document>(table).drop_index(index).await.expect("drop index");
    }

    async fn drop_column(&self, _table: &str, _column: &str) -> bool {
        false
    }

    async fn second_store(&self) -> Arc<dyn Store> {
        let name = self.store.database().name().to_string();
        Arc::new(MongoStore::connect_to(&mongo_url(), &name).await.expect("a second store on the same database"))
    }

    async fn cleanup(&self) {
        let _ = self.store.drop_database().await;
    }
}

/// A fresh database on the MongoDB-compatible server. Panics, failing the test, when the
/// server cannot be reached.
pub async fn mongo() -> Box<MongoBackend> {
    let url = mongo_url();
    let name = format!("crm_test_{}", Uuid::now_v7().simple());
    let store = match MongoStore::connect_to(&url, &name).await {
        Ok(s) => s,
        Err(e) => panic!(
            "the MongoDB-compatible server at {url} cannot be reached ({e}). Start it (scripts/test starts \
             SecantusDB) or point CRM_TEST_MONGO_URL at a server."
        ),
    };
    Box::new(MongoBackend { store: Arc::new(store) })
}
