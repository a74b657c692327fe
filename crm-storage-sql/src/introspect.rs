//! What the database holds, for crm-core's schema check: SQLite's `pragma_table_info`,
//! `pragma_index_list`, `pragma_index_info` and `sqlite_master`; PostgreSQL's catalogs;
//! MariaDB's `information_schema`.

use crm_core::schema::{Column, ColumnType, EntityKind, Index};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crm_core::schema_check::rows_of_condition;
use crm_core::schema_check::{LiveColumn, LiveIndex, LiveSchema, LiveTable};
use crm_core::{Error, Result};
#[cfg(feature = "mysql")]
use sqlx::MySqlPool;
#[cfg(feature = "postgres")]
use sqlx::PgPool;
#[cfg(feature = "sqlite")]
use sqlx::SqlitePool;

fn failed(e: sqlx::Error) -> Error {
    Error::internal("reading the database schema", e)
}

/// The native type of a column type, as the migrations spell it.
#[cfg(feature = "sqlite")]
fn sqlite_type(col: &Column) -> String {
    String::from(match col.ty {
        ColumnType::Uuid => "BLOB",
        ColumnType::Text | ColumnType::Date | ColumnType::Json | ColumnType::UuidList | ColumnType::TextList => "TEXT",
        ColumnType::Int | ColumnType::Bool | ColumnType::Timestamp => "INTEGER",
    })
}

/// The native type of a column type, as `format_type` spells it; text sorts by bytes.
#[cfg(feature = "postgres")]
fn postgres_type(col: &Column) -> String {
    String::from(match col.ty {
        ColumnType::Uuid => "uuid",
        ColumnType::Text => "text COLLATE \"C\"",
        ColumnType::Int => "bigint",
        ColumnType::Bool => "boolean",
        ColumnType::Timestamp => "timestamp with time zone",
        ColumnType::Date => "date",
        ColumnType::Json | ColumnType::UuidList | ColumnType::TextList => "jsonb",
    })
}

/// SQLite has no index over the elements of a JSON array.
#[cfg(feature = "sqlite")]
fn sqlite_index(index: &Index) -> Option<Index> {
    (!index.members).then_some(*index)
}

/// PostgreSQL keeps every index as declared (membership ones as GIN).
#[cfg(feature = "postgres")]
fn postgres_index(index: &Index) -> Option<Index> {
    Some(*index)
}

/// The schema of a SQLite database.
#[cfg(feature = "sqlite")]
pub async fn sqlite(pool: &SqlitePool) -> Result<LiveSchema> {
    let mut tables = Vec::new();
    for kind in EntityKind::ALL {
        let name = kind.table();
        let cols: Vec<(String, String, bool)> =
            sqlx::query_as("SELECT name, type, \"notnull\" FROM pragma_table_info(?1) ORDER BY cid")
                .bind(name)
                .fetch_all(pool)
                .await
                .map_err(failed)?;
        if cols.is_empty() {
            continue;
        }
        let columns = cols.into_iter().map(|(name, ty, notnull)| LiveColumn { name, ty, nullable: !notnull }).collect();
        let list: Vec<(String, bool, String)> =
            sqlx::query_as("SELECT name, \"unique\", origin FROM pragma_index_list(?1) ORDER BY name")
                .bind(name)
                .fetch_all(pool)
                .await
                .map_err(failed)?;
        let mut indexes = Vec::new();
        for (index, unique, origin) in list {
            if origin == "pk" {
                continue;
            }
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .bind(&index)
                .fetch_all(pool)
                .await
                .map_err(failed)?;
            let sql: Option<String> =
                sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1")
                    .bind(&index)
                    .fetch_optional(pool)
                    .await
                    .map_err(failed)?
                    .flatten();
            let condition = sql.as_deref().and_then(where_clause);
            indexes.push(LiveIndex {
                name: index,
                columns,
                unique,
                rows: rows_of_condition(condition),
                members: false,
            });
        }
        tables.push(LiveTable { name: name.to_string(), columns, indexes });
    }
    Ok(LiveSchema { tables, column_type: Some(sqlite_type), index_form: sqlite_index })
}

/// The text after the last top-level ` WHERE ` of a `CREATE INDEX` statement.
#[cfg(feature = "sqlite")]
fn where_clause(sql: &str) -> Option<&str> {
    let upper = sql.to_ascii_uppercase();
    upper.rfind(" WHERE ").map(|at| sql[at + 7..].trim().trim_end_matches(';'))
}

/// An index: name, unique, GIN, condition, key columns.
#[cfg(feature = "postgres")]
type PgIndexRow = (String, bool, bool, Option<String>, Vec<String>);

/// The schema of a PostgreSQL database (the tables the search path finds).
#[cfg(feature = "postgres")]
pub async fn postgres(pool: &PgPool) -> Result<LiveSchema> {
    const COLUMNS: &str = "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
            || CASE WHEN co.collname IS NULL OR co.collname = 'default' THEN '' \
                    ELSE ' COLLATE \"' || co.collname || '\"' END, \
            NOT a.attnotnull \
        FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation \
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
    const INDEXES: &str = "SELECT c.relname::text, ix.indisunique, am.amname::text = 'gin', \
            pg_get_expr(ix.indpred, ix.indrelid), \
            ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY AS k(num, ord) \
                  JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.num ORDER BY k.ord) \
        FROM pg_index ix JOIN pg_class c ON c.oid = ix.indexrelid JOIN pg_am am ON am.oid = c.relam \
        WHERE ix.indrelid = to_regclass($1) AND NOT ix.indisprimary ORDER BY c.relname";
    let mut tables = Vec::new();
    for kind in EntityKind::ALL {
        let name = kind.table();
        let cols: Vec<(String, String, bool)> =
            sqlx::query_as(COLUMNS).bind(name).fetch_all(pool).await.map_err(failed)?;
        if cols.is_empty() {
            continue;
        }
        let columns = cols.into_iter().map(|(name, ty, nullable)| LiveColumn { name, ty, nullable }).collect();
        let found: Vec<PgIndexRow> = sqlx::query_as(INDEXES).bind(name).fetch_all(pool).await.map_err(failed)?;
        let indexes = found
            .into_iter()
            .map(|(name, unique, gin, condition, columns)| LiveIndex {
                name,
                columns,
                unique,
                rows: rows_of_condition(condition.as_deref()),
                members: gin,
            })
            .collect();
        tables.push(LiveTable { name: name.to_string(), columns, indexes });
    }
    Ok(LiveSchema { tables, column_type: Some(postgres_type), index_form: postgres_index })
}

/// The native type of a column type, as `information_schema` spells it (with the
/// collation of text): text by code point, JSON as MariaDB's JSON (LONGTEXT). Text of a
/// bounded length ([`Column::max_chars`]) is a VARCHAR of that length, which an index
/// keys whole (LONGTEXT only by a prefix, which cannot give rows in order).
#[cfg(feature = "mysql")]
fn mysql_type(col: &Column) -> String {
    match col.ty {
        ColumnType::Uuid => "binary(16)".into(),
        ColumnType::Text if col.max_chars > 0 => format!("varchar({}) COLLATE utf8mb4_nopad_bin", col.max_chars),
        ColumnType::Text => "longtext COLLATE utf8mb4_nopad_bin".into(),
        ColumnType::Int => "bigint(20)".into(),
        ColumnType::Bool => "tinyint(1)".into(),
        ColumnType::Timestamp => "datetime(6)".into(),
        ColumnType::Date => "date".into(),
        ColumnType::Json | ColumnType::UuidList | ColumnType::TextList => "longtext COLLATE utf8mb4_bin".into(),
    }
}

/// MariaDB has neither partial nor membership indexes: an index over some rows covers
/// all of them, except a unique one over live rows, which the schema builds on a stored
/// generated column (`live_<column>`, read back as the column over live rows).
#[cfg(feature = "mysql")]
fn mysql_index(index: &Index) -> Option<Index> {
    use crm_core::schema::IndexRows;
    if index.members {
        return None;
    }
    let mut form = *index;
    if !(index.unique && index.rows == IndexRows::Live) {
        form.rows = IndexRows::All;
    }
    Some(form)
}

/// The schema of a MariaDB database (the connection's).
#[cfg(feature = "mysql")]
pub async fn mysql(pool: &MySqlPool) -> Result<LiveSchema> {
    use crm_core::schema::IndexRows;
    const COLUMNS: &str = "SELECT CAST(COLUMN_NAME AS CHAR), CAST(CONCAT(COLUMN_TYPE, \
            IF(COLLATION_NAME IS NULL, '', CONCAT(' COLLATE ', COLLATION_NAME))) AS CHAR), \
            IS_NULLABLE = 'YES', EXTRA LIKE '%GENERATED%' \
        FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
        ORDER BY ORDINAL_POSITION";
    const INDEXES: &str = "SELECT CAST(INDEX_NAME AS CHAR), NON_UNIQUE = 0, CAST(COLUMN_NAME AS CHAR) \
        FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
            AND INDEX_NAME <> 'PRIMARY' \
        ORDER BY INDEX_NAME, SEQ_IN_INDEX";
    let mut tables = Vec::new();
    for kind in EntityKind::ALL {
        let name = kind.table();
        let cols: Vec<(String, String, bool, bool)> =
            sqlx::query_as(COLUMNS).bind(name).fetch_all(pool).await.map_err(failed)?;
        if cols.is_empty() {
            continue;
        }
        let columns = cols
            .into_iter()
            .filter(|(.., generated)| !generated)
            .map(|(name, ty, nullable, _)| LiveColumn { name, ty, nullable })
            .collect();
        let keys: Vec<(String, bool, String)> =
            sqlx::query_as(INDEXES).bind(name).fetch_all(pool).await.map_err(failed)?;
        let mut indexes: Vec<LiveIndex> = Vec::new();
        for (index, unique, column) in keys {
            let (column, rows) = match column.strip_prefix("live_") {
                Some(base) => (base.to_string(), Ok(IndexRows::Live)),
                None => (column, Ok(IndexRows::All)),
            };
            match indexes.last_mut().filter(|i| i.name == index) {
                Some(i) => i.columns.push(column),
                None => indexes.push(LiveIndex { name: index, columns: vec![column], unique, rows, members: false }),
            }
        }
        tables.push(LiveTable { name: name.to_string(), columns, indexes });
    }
    Ok(LiveSchema { tables, column_type: Some(mysql_type), index_form: mysql_index })
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn the_condition_is_the_text_after_where() {
        assert_eq!(where_clause("CREATE INDEX a ON t (x) WHERE deleted_at IS NULL"), Some("deleted_at IS NULL"));
        assert_eq!(where_clause("CREATE INDEX a ON t (x)"), None);
    }
}
