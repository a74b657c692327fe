//! Resource limits of the stores that the conformance suite cannot reach through the
//! engine's API: a PostgreSQL statement stops at its time limit and says so.

use std::time::Duration;

use crm_core::Error;
use crm_storage_sql::{SqlOptions, SqlStore};

#[tokio::test]
async fn a_postgres_statement_stops_at_its_time_limit() {
    let url = crm_tests::backends::postgres_url();
    let schema = format!("crm_test_{}", uuid::Uuid::now_v7().simple());
    let opts = SqlOptions {
        pg_schema: Some(schema.clone()),
        statement_timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let store = SqlStore::connect_with(&url, opts)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} cannot be reached ({e})"));
    let slow = store.execute_unchecked("SELECT pg_sleep(5)").await;
    assert!(matches!(slow, Err(Error::Timeout(_))), "{slow:?}");
    // Quick ones are not bothered, and migrations ran without the limit.
    assert!(store.execute_unchecked("SELECT pg_sleep(0.01)").await.is_ok());
    store.close().await;
    SqlStore::drop_pg_schema(&url, &schema).await.unwrap_or_else(|e| panic!("{e}"));
}
