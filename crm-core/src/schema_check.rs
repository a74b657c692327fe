//! Does a database hold the shape crm-core declares? A backend reports what it has
//! ([`LiveSchema`], from `PRAGMA table_info`/`index_list`, `pg_attribute`/`pg_index`,
//! MongoDB's `listIndexes`) and [`differences`] names every column and index that
//! disagrees with the kinds' declarations (`crate::registry`). The conformance case
//! `schema_agrees` runs it on every backend, so a migration that forgets a column or an
//! index fails the suite.

use crate::schema::{Column, EntityKind, Index, IndexRows};

/// The schema a database holds.
#[derive(Debug, Clone)]
pub struct LiveSchema {
    /// One entry per table (collection) found.
    pub tables: Vec<LiveTable>,
    /// The backend's type for a declared column (its type, and for MariaDB its
    /// [`Column::max_chars`]); `None`: columns are not typed (MongoDB), so only indexes
    /// are compared.
    pub column_type: Option<fn(&Column) -> String>,
    /// How a declared index appears on this backend; `None`: the backend keeps no such
    /// index (SQLite has no membership indexes).
    pub index_form: fn(&Index) -> Option<Index>,
}

/// One table as the database holds it.
#[derive(Debug, Clone)]
pub struct LiveTable {
    /// Its name.
    pub name: String,
    /// Its columns in order, with their native types; empty for an untyped collection.
    pub columns: Vec<LiveColumn>,
    /// Its indexes besides the primary key.
    pub indexes: Vec<LiveIndex>,
}

/// One column as the database holds it.
#[derive(Debug, Clone)]
pub struct LiveColumn {
    /// Its name.
    pub name: String,
    /// Its native type as the database spells it (`BLOB`, `text COLLATE "C"`).
    pub ty: String,
    /// May it hold NULL?
    pub nullable: bool,
}

/// One index as the database holds it.
#[derive(Debug, Clone)]
pub struct LiveIndex {
    /// Its name.
    pub name: String,
    /// Its key columns in order (storage names; MongoDB's `_id` as `id`).
    pub columns: Vec<String>,
    /// Unique?
    pub unique: bool,
    /// The rows it covers, or the condition as the database spells it when it is none
    /// of the declared ones.
    pub rows: Result<IndexRows, String>,
    /// Over the elements of a list column?
    pub members: bool,
}

/// Every difference between the database and the declarations, one line each
/// (`contacts.email: missing`); empty when they agree.
pub fn differences(live: &LiveSchema) -> Vec<String> {
    let mut out = Vec::new();
    for kind in EntityKind::ALL {
        let table = kind.table();
        let Some(found) = live.tables.iter().find(|t| t.name == table) else {
            out.push(format!("{table}: table missing"));
            continue;
        };
        if let Some(column_type) = live.column_type {
            compare_columns(kind, found, column_type, &mut out);
        }
        compare_indexes(kind, found, live.index_form, &mut out);
    }
    out
}

fn compare_columns(kind: EntityKind, found: &LiveTable, column_type: fn(&Column) -> String, out: &mut Vec<String>) {
    let table = kind.table();
    for (i, col) in kind.columns().iter().enumerate() {
        let Some(at) = found.columns.iter().position(|c| c.name == col.name) else {
            out.push(format!("{table}.{}: column missing", col.name));
            continue;
        };
        let live = &found.columns[at];
        if at != i {
            out.push(format!("{table}.{}: column {} of the table, declared as column {}", col.name, at + 1, i + 1));
        }
        let want = column_type(col);
        if !live.ty.eq_ignore_ascii_case(&want) {
            out.push(format!("{table}.{}: type {}, declared {:?} ({want})", col.name, live.ty, col.ty));
        }
        if live.nullable != col.nullable {
            let says = |n: bool| if n { "nullable" } else { "NOT NULL" };
            out.push(format!("{table}.{}: {}, declared {}", col.name, says(live.nullable), says(col.nullable)));
        }
    }
    for live in &found.columns {
        if kind.column(&live.name).is_none() {
            out.push(format!("{table}.{}: column not declared", live.name));
        }
    }
}

fn compare_indexes(
    kind: EntityKind,
    found: &LiveTable,
    index_form: fn(&Index) -> Option<Index>,
    out: &mut Vec<String>,
) {
    let table = kind.table();
    let expected: Vec<Index> = kind.indexes().iter().filter_map(index_form).collect();
    for want in &expected {
        let Some(live) = found.indexes.iter().find(|i| i.name == want.name) else {
            out.push(format!("{table}: index {} missing", want.name));
            continue;
        };
        if live.columns.iter().map(String::as_str).ne(want.columns.iter().copied()) {
            out.push(format!(
                "{table}: index {} is on ({}), declared ({})",
                want.name,
                live.columns.join(", "),
                want.columns.join(", ")
            ));
        }
        if live.unique != want.unique {
            let says = |u: bool| if u { "unique" } else { "not unique" };
            out.push(format!("{table}: index {} is {}, declared {}", want.name, says(live.unique), says(want.unique)));
        }
        if live.rows.as_ref() != Ok(&want.rows) {
            out.push(format!("{table}: index {} covers {:?}, declared {:?}", want.name, live.rows, want.rows));
        }
        if live.members != want.members {
            out.push(format!("{table}: index {} members {}, declared {}", want.name, live.members, want.members));
        }
    }
    for live in &found.indexes {
        if !expected.iter().any(|i| i.name == live.name) {
            out.push(format!("{table}: index {} not declared", live.name));
        }
    }
}

/// Reads a SQL index condition (`deleted_at IS NULL`, any case and parentheses).
pub fn rows_of_condition(condition: Option<&str>) -> Result<IndexRows, String> {
    let Some(text) = condition else {
        return Ok(IndexRows::All);
    };
    let norm = text.trim().trim_start_matches('(').trim_end_matches(')').trim().to_ascii_lowercase();
    match norm.split_whitespace().collect::<Vec<_>>().join(" ").as_str() {
        "deleted_at is null" => Ok(IndexRows::Live),
        "deleted_at is not null" => Ok(IndexRows::Deleted),
        "delivered_at is null" => Ok(IndexRows::Undelivered),
        _ => Err(text.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn agreeing() -> LiveSchema {
        let tables = EntityKind::ALL
            .iter()
            .map(|k| LiveTable {
                name: k.table().to_string(),
                columns: k
                    .columns()
                    .iter()
                    .map(|c| LiveColumn { name: c.name.to_string(), ty: "T".into(), nullable: c.nullable })
                    .collect(),
                indexes: k
                    .indexes()
                    .iter()
                    .map(|i| LiveIndex {
                        name: i.name.to_string(),
                        columns: i.columns.iter().map(|c| c.to_string()).collect(),
                        unique: i.unique,
                        rows: Ok(i.rows),
                        members: i.members,
                    })
                    .collect(),
            })
            .collect();
        LiveSchema { tables, column_type: Some(|_| "t".into()), index_form: |i| Some(*i) }
    }

    #[test]
    fn the_declaration_agrees_with_itself_and_each_change_is_named() {
        let mut live = agreeing();
        assert_eq!(differences(&live), Vec::<String>::new());
        let contacts = live.tables.iter_mut().find(|t| t.name == "contacts").unwrap();
        contacts.columns.retain(|c| c.name != "job_title");
        contacts.indexes.retain(|i| i.name != "contacts_email_key");
        contacts.indexes[0].rows = Ok(IndexRows::All);
        let diff = differences(&live);
        assert!(diff.iter().any(|d| d == "contacts.job_title: column missing"), "{diff:?}");
        assert!(diff.iter().any(|d| d == "contacts: index contacts_email_key missing"), "{diff:?}");
        assert!(diff.iter().any(|d| d.starts_with("contacts: index contacts_created_idx covers")), "{diff:?}");
    }

    #[test]
    fn conditions_read_in_any_spelling() {
        assert_eq!(rows_of_condition(Some("(deleted_at IS NULL)")), Ok(IndexRows::Live));
        assert_eq!(rows_of_condition(Some("deleted_at  is not null")), Ok(IndexRows::Deleted));
        assert_eq!(rows_of_condition(None), Ok(IndexRows::All));
        assert!(rows_of_condition(Some("x > 1")).is_err());
    }
}
