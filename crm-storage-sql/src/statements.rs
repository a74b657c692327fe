//! Builds SQL with sea-query from crm-core's typed queries and writes. Table and column
//! names come only from crm-core's static schema; every value is a bound parameter.

use crm_core::query::{Cmp, Direction, Filter, Pattern, PatternPart, Predicate, StoreQuery};
use crm_core::schema::{Column, EntityKind, Row};
use crm_core::{Result, Value};
use sea_query::{
    Alias, Asterisk, Cond, Expr, Func, LikeExpr, MysqlQueryBuilder, NullOrdering, Order, PostgresQueryBuilder, Query,
    SelectStatement, SimpleExpr, SqliteQueryBuilder, Values,
};
use uuid::Uuid;

use crate::values::{into_sq, to_sq, Dialect};

fn col(c: &Column) -> Expr {
    Expr::col(Alias::new(c.name))
}

fn val(v: &Value, c: &Column, d: Dialect) -> SimpleExpr {
    Expr::val(to_sq(v, c.ty, d)).into()
}

fn build<Q: sea_query::QueryStatementBuilder>(q: &Q, d: Dialect) -> (String, Values) {
    match d {
        Dialect::Postgres => q.build_any(&PostgresQueryBuilder),
        Dialect::Sqlite => q.build_any(&SqliteQueryBuilder),
        Dialect::MySql => q.build_any(&MysqlQueryBuilder),
    }
}

/// How the dialect quotes a name in the statements written here by hand (MariaDB's
/// backticks; the standard's double quotes).
pub(crate) fn quoted(name: &str, d: Dialect) -> String {
    match d {
        Dialect::MySql => format!("`{name}`"),
        Dialect::Sqlite | Dialect::Postgres => format!("\"{name}\""),
    }
}

/// A custom SQL expression: each `{}` in `template` takes the next of `args`, as the
/// dialect's placeholder (`?` for SQLite and MariaDB, `$n` for PostgreSQL), so sea-query renders the
/// arguments (columns or bound values) in place.
fn custom(template: &str, args: Vec<SimpleExpr>, d: Dialect) -> SimpleExpr {
    let mut out = String::with_capacity(template.len() + 8);
    for (i, piece) in template.split("{}").enumerate() {
        if i > 0 {
            match d {
                Dialect::Sqlite | Dialect::MySql => out.push('?'),
                Dialect::Postgres => out.push_str(&format!("${i}")),
            }
        }
        out.push_str(piece);
    }
    Expr::cust_with_exprs(out, args)
}

/// A list element as it appears inside the stored JSON array.
fn element_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Uuid(u) => serde_json::Value::String(u.to_string()),
        Value::Text(s) => serde_json::Value::String(s.clone()),
        Value::Int(i) => serde_json::Value::from(*i),
        _ => serde_json::Value::Null,
    }
}

fn list_contains(c: &Column, v: &Value, d: Dialect) -> SimpleExpr {
    match d {
        Dialect::Postgres => custom(
            "{} @> {}",
            vec![
                col(c).into(),
                Expr::val(sea_query::Value::Json(Some(Box::new(serde_json::json!([element_json(v)]))))).into(),
            ],
            d,
        ),
        Dialect::Sqlite => {
            let elem = match element_json(v) {
                serde_json::Value::String(s) => sea_query::Value::String(Some(Box::new(s))),
                other => sea_query::Value::String(Some(Box::new(other.to_string()))),
            };
            custom(
                "EXISTS (SELECT 1 FROM json_each({}) WHERE json_each.value = {})",
                vec![col(c).into(), Expr::val(elem).into()],
                d,
            )
        }
        // The element as JSON text: a string is found only as a string.
        Dialect::MySql => custom(
            "JSON_CONTAINS({}, {})",
            vec![
                col(c).into(),
                Expr::val(sea_query::Value::String(Some(Box::new(element_json(v).to_string())))).into(),
            ],
            d,
        ),
    }
}

fn list_empty(c: &Column, d: Dialect) -> SimpleExpr {
    let f = match d {
        Dialect::Postgres => "jsonb_array_length({}) = 0",
        Dialect::Sqlite => "json_array_length({}) = 0",
        Dialect::MySql => "JSON_LENGTH({}) = 0",
    };
    custom(f, vec![col(c).into()], d)
}

/// A SQLite GLOB pattern: `*` and `?` wildcards, literal metacharacters in brackets.
fn glob(p: &Pattern) -> String {
    let mut out = String::new();
    for part in &p.0 {
        match part {
            PatternPart::AnyMany => out.push('*'),
            PatternPart::AnyOne => out.push('?'),
            PatternPart::Lit(s) => {
                for ch in s.chars() {
                    match ch {
                        '*' | '?' | '[' => {
                            out.push('[');
                            out.push(ch);
                            out.push(']');
                        }
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out
}

/// The smallest string greater than every string starting with `p`, if any.
fn prefix_successor(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn cmp(c: &Cmp, d: Dialect) -> SimpleExpr {
    let column = c.column;
    let is_list = column.ty.element().is_some();
    match &c.pred {
        Predicate::Eq(v) if is_list => list_contains(column, v, d),
        Predicate::Neq(v) if is_list => list_contains(column, v, d).not(),
        Predicate::In(vs) if is_list => {
            vs.iter().fold(Cond::any(), |acc, v| acc.add(list_contains(column, v, d))).into()
        }
        Predicate::IsNull if is_list => list_empty(column, d),
        Predicate::IsNotNull if is_list => list_empty(column, d).not(),
        Predicate::Eq(v) => col(column).eq(val(v, column, d)),
        Predicate::Neq(v) if column.nullable => {
            Cond::any().add(col(column).ne(val(v, column, d))).add(col(column).is_null()).into()
        }
        Predicate::Neq(v) => col(column).ne(val(v, column, d)),
        Predicate::In(vs) => col(column).is_in(vs.iter().map(|v| val(v, column, d))),
        Predicate::Gt(v) => col(column).gt(val(v, column, d)),
        Predicate::Gte(v) => col(column).gte(val(v, column, d)),
        Predicate::Lt(v) => col(column).lt(val(v, column, d)),
        Predicate::Lte(v) => col(column).lte(val(v, column, d)),
        Predicate::StartsWith(p) if p.is_empty() => col(column).is_not_null(),
        Predicate::StartsWith(p) => {
            let lo = col(column).gte(val(&Value::Text(p.clone()), column, d));
            match prefix_successor(p) {
                Some(hi) => lo.and(col(column).lt(val(&Value::Text(hi), column, d))),
                None => lo,
            }
        }
        Predicate::Like(p) => match d {
            // MariaDB's columns compare by code point (utf8mb4_nopad_bin): LIKE is exact.
            Dialect::Postgres | Dialect::MySql => col(column).like(LikeExpr::new(p.to_like()).escape('\\')),
            Dialect::Sqlite => custom("{} GLOB {}", vec![col(column).into(), val(&Value::Text(glob(p)), column, d)], d),
        },
        Predicate::ILike(p) => match d {
            // The columns sort by bytes ("C"), whose ILIKE folds ASCII only; `crm_fold` (see
            // the migration) folds all of Unicode. (sea-query's own ILIKE ... ESCAPE is
            // parenthesised in a way PostgreSQL rejects.)
            Dialect::Postgres => custom(
                "({} COLLATE crm_fold) ILIKE {} ESCAPE E'\\\\'",
                vec![col(column).into(), val(&Value::Text(p.to_like()), column, d)],
                d,
            ),
            // SQLite's LIKE folds ASCII letters only; REGEXP (the regex crate, registered
            // on every connection) folds all of Unicode, as PostgreSQL's ILIKE does.
            Dialect::Sqlite => {
                custom("{} REGEXP {}", vec![col(column).into(), val(&Value::Text(p.to_regex(true)), column, d)], d)
            }
            // Both sides lower-cased by MariaDB's Unicode case mapping (the column's
            // binary collation keeps LIKE itself exact).
            Dialect::MySql => custom(
                "LOWER({}) LIKE LOWER({}) ESCAPE '\\\\'",
                vec![col(column).into(), val(&Value::Text(p.to_like()), column, d)],
                d,
            ),
        },
        Predicate::IsNull => col(column).is_null(),
        Predicate::IsNotNull => col(column).is_not_null(),
    }
}

/// Translates a filter tree.
pub(crate) fn filter(f: &Filter, d: Dialect) -> SimpleExpr {
    match f {
        Filter::And(parts) => parts.iter().fold(Cond::all(), |acc, p| acc.add(filter(p, d))).into(),
        Filter::Or(parts) => parts.iter().fold(Cond::any(), |acc, p| acc.add(filter(p, d))).into(),
        Filter::Not(inner) => filter(inner, d).not(),
        Filter::Cmp(c) => cmp(c, d),
    }
}

fn where_clause(kind: EntityKind, f: Option<&Filter>, include_deleted: bool, d: Dialect) -> Cond {
    let mut cond = Cond::all();
    if !include_deleted && kind.soft_deletes() {
        cond = cond.add(Expr::col(Alias::new("deleted_at")).is_null());
    }
    if let Some(f) = f {
        cond = cond.add(filter(f, d));
    }
    cond
}

fn all_columns(kind: EntityKind) -> Vec<Alias> {
    kind.columns().iter().map(|c| Alias::new(c.name)).collect()
}

/// `SELECT <columns> FROM <table> WHERE id = ?`.
pub(crate) fn get(kind: EntityKind, id: Uuid, d: Dialect) -> (String, Values) {
    let id_col = &kind.columns()[0];
    let q = Query::select()
        .columns(all_columns(kind))
        .from(Alias::new(kind.table()))
        .and_where(col(id_col).eq(val(&Value::Uuid(id), id_col, d)))
        .to_owned();
    build(&q, d)
}

/// The list query.
pub(crate) fn list(kind: EntityKind, q: &StoreQuery, d: Dialect) -> (String, Values) {
    list_of(kind, kind.columns(), q, d)
}

/// The list query, selecting these columns.
pub(crate) fn list_of(kind: EntityKind, columns: &[Column], q: &StoreQuery, d: Dialect) -> (String, Values) {
    build(&select_of(kind, columns, q, d), d)
}

/// `UPDATE … SET lease = ?, count = count + 1, version = version + 1`: what a claim does
/// to the rows it takes (the caller adds which).
fn claim_set(c: &crm_core::Claim, d: Dialect) -> Result<sea_query::UpdateStatement> {
    let kind = c.kind;
    let lease = kind.require_column(c.lease_column)?;
    let version = kind.require_column("version")?;
    let mut q = Query::update();
    q.table(Alias::new(kind.table()))
        .value(Alias::new(lease.name), val(&Value::Timestamp(c.until), lease, d))
        .value(Alias::new(version.name), col(version).add(1));
    if let Some(name) = c.count_column {
        let count = kind.require_column(name)?;
        q.value(Alias::new(count.name), col(count).add(1));
    }
    Ok(q)
}

/// [`claim_set`] `WHERE id IN (the claim's query, rows locked by another claim skipped on
/// PostgreSQL) RETURNING *`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn claim(c: &crm_core::Claim, d: Dialect) -> Result<(String, Values)> {
    let kind = c.kind;
    let id = &kind.columns()[0];
    let mut sub = select_of(kind, std::slice::from_ref(id), &c.query, d);
    if d == Dialect::Postgres {
        sub.lock_with_behavior(sea_query::LockType::Update, sea_query::LockBehavior::SkipLocked);
    }
    let mut q = claim_set(c, d)?;
    q.and_where(col(id).in_subquery(sub)).returning(Query::returning().columns(all_columns(kind)));
    Ok(build(&q, d))
}

/// MariaDB's claim, whose `UPDATE` can neither return rows nor read its own table in a
/// subquery: the ids of the claim's query, locked (rows another claim holds skipped).
/// Run it, then [`claim_update`] and [`by_ids`], in one transaction.
#[cfg(feature = "mysql")]
pub(crate) fn claim_select(c: &crm_core::Claim, d: Dialect) -> (String, Values) {
    let id = &c.kind.columns()[0];
    let mut sub = select_of(c.kind, std::slice::from_ref(id), &c.query, d);
    sub.lock_with_behavior(sea_query::LockType::Update, sea_query::LockBehavior::SkipLocked);
    build(&sub, d)
}

/// [`claim_set`] on the rows [`claim_select`] locked.
#[cfg(feature = "mysql")]
pub(crate) fn claim_update(c: &crm_core::Claim, ids: &[Uuid], d: Dialect) -> Result<(String, Values)> {
    let id = &c.kind.columns()[0];
    let mut q = claim_set(c, d)?;
    q.and_where(col(id).is_in(ids.iter().map(|i| val(&Value::Uuid(*i), id, d))));
    Ok(build(&q, d))
}

/// Every column of the rows with these ids, in id order.
#[cfg(feature = "mysql")]
pub(crate) fn by_ids(kind: EntityKind, ids: &[Uuid], d: Dialect) -> (String, Values) {
    let id = &kind.columns()[0];
    let q = Query::select()
        .columns(all_columns(kind))
        .from(Alias::new(kind.table()))
        .and_where(col(id).is_in(ids.iter().map(|i| val(&Value::Uuid(*i), id, d))))
        .order_by(Alias::new(id.name), Order::Asc)
        .to_owned();
    build(&q, d)
}

fn select_of(kind: EntityKind, columns: &[Column], q: &StoreQuery, d: Dialect) -> SelectStatement {
    let mut sel = Query::select();
    sel.columns(columns.iter().map(|c| Alias::new(c.name)))
        .from(Alias::new(kind.table()))
        .cond_where(where_clause(kind, q.filter.as_ref(), q.include_deleted, d))
        .limit(u64::from(q.limit));
    for key in &q.sort {
        let order = match key.direction {
            Direction::Asc => Order::Asc,
            Direction::Desc => Order::Desc,
        };
        // NULL is the smallest value on every backend; PostgreSQL needs telling.
        if key.column.nullable && d == Dialect::Postgres {
            let nulls = match key.direction {
                Direction::Asc => NullOrdering::First,
                Direction::Desc => NullOrdering::Last,
            };
            sel.order_by_with_nulls(Alias::new(key.column.name), order, nulls);
        } else {
            sel.order_by(Alias::new(key.column.name), order);
        }
    }
    sel
}

/// The bulk read of the analytics snapshot: `columns` of every matching row, in id order.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn scan(
    kind: EntityKind,
    columns: &[Column],
    f: Option<&Filter>,
    include_deleted: bool,
    d: Dialect,
) -> SelectStatement {
    let mut sel = Query::select();
    sel.columns(columns.iter().map(|c| Alias::new(c.name)))
        .from(Alias::new(kind.table()))
        .cond_where(where_clause(kind, f, include_deleted, d))
        .order_by(Alias::new(kind.columns()[0].name), Order::Asc);
    sel
}

#[cfg(feature = "postgres")]
/// [`scan`] for PostgreSQL with its values inline (for `COPY`, which takes no
/// parameters), quoted by sea-query.
pub(crate) fn scan_inline_pg(
    kind: EntityKind,
    columns: &[Column],
    f: Option<&Filter>,
    include_deleted: bool,
) -> String {
    scan(kind, columns, f, include_deleted, Dialect::Postgres).to_string(PostgresQueryBuilder)
}

/// [`scan`] for SQLite, with its parameters.
#[cfg(feature = "sqlite")]
pub(crate) fn scan_sqlite(
    kind: EntityKind,
    columns: &[Column],
    f: Option<&Filter>,
    include_deleted: bool,
) -> (String, Values) {
    build(&scan(kind, columns, f, include_deleted, Dialect::Sqlite), Dialect::Sqlite)
}

/// The count query.
pub(crate) fn count(kind: EntityKind, f: Option<&Filter>, include_deleted: bool, d: Dialect) -> (String, Values) {
    let q = Query::select()
        .expr(Func::count(Expr::col(Asterisk)))
        .from(Alias::new(kind.table()))
        .cond_where(where_clause(kind, f, include_deleted, d))
        .to_owned();
    build(&q, d)
}

/// `INSERT INTO … (every column) VALUES (…), (…)`: the statement's text comes from
/// [`insert_sql`] (kept per row count, so a single-row insert is not built again for
/// every write), the rows' values are bound as they are.
pub(crate) fn insert(kind: EntityKind, rows: Vec<Row>, d: Dialect) -> Result<(String, Values)> {
    let cols = kind.columns();
    let mut values = Vec::with_capacity(rows.len() * cols.len());
    let n = rows.len();
    for row in rows {
        check_row(kind, &row)?;
        values.extend(cols.iter().zip(row).map(|(c, v)| into_sq(v, c.ty, d)));
    }
    Ok((insert_sql(kind, n, d), Values(values)))
}

/// A row to insert must hold one value per column of its kind, in the kind's order.
pub(crate) fn check_row(kind: EntityKind, row: &Row) -> Result<()> {
    let columns = kind.columns().len();
    if row.len() == columns {
        return Ok(());
    }
    Err(crm_core::Error::internal_msg(format!("{} row: {} values for {columns} columns", kind.name(), row.len())))
}

/// The text of an insert of `n` rows of `kind`. Single-row inserts, the common case,
/// are built once per kind and dialect.
pub(crate) fn insert_sql(kind: EntityKind, n: usize, d: Dialect) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SINGLE: OnceLock<Mutex<HashMap<(EntityKind, Dialect), String>>> = OnceLock::new();
    if n == 1 {
        let cache = SINGLE.get_or_init(Default::default);
        let mut cache = cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        return cache.entry((kind, d)).or_insert_with(|| build_insert_sql(kind, 1, d)).clone();
    }
    build_insert_sql(kind, n, d)
}

fn build_insert_sql(kind: EntityKind, n: usize, d: Dialect) -> String {
    use std::fmt::Write as _;
    let cols = kind.columns();
    let mut sql = String::with_capacity(64 + cols.len() * (16 + 6 * n));
    let _ = write!(sql, "INSERT INTO {} (", quoted(kind.table(), d));
    for (i, c) in cols.iter().enumerate() {
        let _ = write!(sql, "{}{}", if i == 0 { "" } else { ", " }, quoted(c.name, d));
    }
    sql.push_str(") VALUES ");
    let mut p = 0usize;
    for r in 0..n {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for i in 0..cols.len() {
            p += 1;
            if i > 0 {
                sql.push_str(", ");
            }
            match d {
                Dialect::Postgres => {
                    let _ = write!(sql, "${p}");
                }
                Dialect::Sqlite | Dialect::MySql => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// `UPDATE … SET every column WHERE id = ? AND version = ?`. The statement's text is
/// built once per kind and dialect; the row's values are bound as they are.
pub(crate) fn update(kind: EntityKind, row: Row, expected_version: i64, d: Dialect) -> (String, Values) {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SQL: OnceLock<Mutex<HashMap<(EntityKind, Dialect), String>>> = OnceLock::new();
    let cols = kind.columns();
    let sql = {
        let cache = SQL.get_or_init(Default::default);
        let mut cache = cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.entry((kind, d)).or_insert_with(|| update_sql(kind, d)).clone()
    };
    let mut values = Vec::with_capacity(cols.len() + 1);
    let mut row = row.into_iter();
    let id = row.next().unwrap_or(Value::Null);
    values.extend(cols.iter().skip(1).zip(row).map(|(c, v)| into_sq(v, c.ty, d)));
    values.push(into_sq(id, cols[0].ty, d));
    if kind.column("version").is_some() {
        values.push(into_sq(Value::Int(expected_version), crm_core::schema::ColumnType::Int, d));
    }
    (sql, Values(values))
}

fn update_sql(kind: EntityKind, d: Dialect) -> String {
    use std::fmt::Write as _;
    let cols = kind.columns();
    let mut p = 0usize;
    let mut next = |sql: &mut String| {
        p += 1;
        match d {
            Dialect::Postgres => {
                let _ = write!(sql, "${p}");
            }
            Dialect::Sqlite | Dialect::MySql => sql.push('?'),
        }
    };
    let mut sql = format!("UPDATE {} SET ", quoted(kind.table(), d));
    for (i, c) in cols.iter().enumerate().skip(1) {
        let _ = write!(sql, "{}{} = ", if i == 1 { "" } else { ", " }, quoted(c.name, d));
        next(&mut sql);
    }
    let _ = write!(sql, " WHERE {} = ", quoted(cols[0].name, d));
    next(&mut sql);
    if kind.column("version").is_some() {
        let _ = write!(sql, " AND {} = ", quoted("version", d));
        next(&mut sql);
    }
    sql
}

/// `SELECT version FROM … WHERE id = ?`.
pub(crate) fn current_version(kind: EntityKind, id: &Value, d: Dialect) -> (String, Values) {
    let id_col = &kind.columns()[0];
    let q = Query::select()
        .column(Alias::new("version"))
        .from(Alias::new(kind.table()))
        .and_where(col(id_col).eq(val(id, id_col, d)))
        .to_owned();
    build(&q, d)
}

/// `SELECT 1 FROM … LIMIT 1`: is there any row at all?
pub(crate) fn any_row(kind: EntityKind, d: Dialect) -> (String, Values) {
    let q = Query::select().expr(Expr::val(1i64)).from(Alias::new(kind.table())).limit(1).to_owned();
    build(&q, d)
}

/// `DELETE FROM … WHERE column = ?`.
pub(crate) fn purge(kind: EntityKind, column: &str, id: Uuid, d: Dialect) -> Result<(String, Values)> {
    let c = kind.require_column(column)?;
    let q = Query::delete()
        .from_table(Alias::new(kind.table()))
        .and_where(col(c).eq(val(&Value::Uuid(id), c, d)))
        .to_owned();
    Ok(build(&q, d))
}

/// `DELETE FROM … WHERE column < ?` (a timestamp column).
pub(crate) fn purge_expired(
    kind: EntityKind,
    column: &str,
    before: chrono::DateTime<chrono::Utc>,
    d: Dialect,
) -> Result<(String, Values)> {
    let c = kind.require_column(column)?;
    let q = Query::delete()
        .from_table(Alias::new(kind.table()))
        .and_where(col(c).lt(val(&Value::Timestamp(before), c, d)))
        .to_owned();
    Ok(build(&q, d))
}

/// `UPDATE … SET column = NULL, version = version + 1, updated_at = ? WHERE column = ?`.
pub(crate) fn clear_reference(
    kind: EntityKind,
    column: &str,
    id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
    d: Dialect,
) -> Result<(String, Values)> {
    set_where(kind, column, id, &Value::Null, at, d)
}

/// `UPDATE … SET column = to, version = version + 1, updated_at = at WHERE column = from`.
pub(crate) fn reassign(
    kind: EntityKind,
    column: &str,
    from: Uuid,
    to: Uuid,
    at: chrono::DateTime<chrono::Utc>,
    d: Dialect,
) -> Result<(String, Values)> {
    set_where(kind, column, from, &Value::Uuid(to), at, d)
}

fn set_where(
    kind: EntityKind,
    column: &str,
    id: Uuid,
    to: &Value,
    at: chrono::DateTime<chrono::Utc>,
    d: Dialect,
) -> Result<(String, Values)> {
    let c = kind.require_column(column)?;
    let mut q = Query::update();
    q.table(Alias::new(kind.table())).value(Alias::new(c.name), val(to, c, d)).and_where(col(c).eq(val(
        &Value::Uuid(id),
        c,
        d,
    )));
    if let Some(v) = kind.column("version") {
        q.value(Alias::new(v.name), col(v).add(1));
    }
    if let Some(u) = kind.column("updated_at") {
        q.value(Alias::new(u.name), val(&Value::Timestamp(at), u, d));
    }
    Ok(build(&q, d))
}

/// The largest number of rows in one multi-row insert of `kind`, under both dialects'
/// parameter limits (SQLite 32,766; PostgreSQL and MariaDB 65,535).
pub(crate) fn insert_batch_rows(kind: EntityKind) -> usize {
    (30_000 / kind.columns().len().max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The insert statement sea-query builds, which [`insert`] must match.
    fn sea_query_insert(kind: EntityKind, rows: Vec<Row>, d: Dialect) -> (String, Values) {
        let mut q = Query::insert();
        q.into_table(Alias::new(kind.table())).columns(all_columns(kind));
        for row in rows {
            let values = kind.columns().iter().zip(row).map(|(c, v)| Expr::val(into_sq(v, c.ty, d)).into());
            q.values_panic(values.collect::<Vec<SimpleExpr>>());
        }
        build(&q, d)
    }

    /// The update statement sea-query builds, which [`update`] must match.
    fn sea_query_update(kind: EntityKind, row: &[Value], expected_version: i64, d: Dialect) -> (String, Values) {
        let cols = kind.columns();
        let mut q = Query::update();
        q.table(Alias::new(kind.table()));
        q.values(cols.iter().zip(row).skip(1).map(|(c, v)| (Alias::new(c.name), val(v, c, d))).collect::<Vec<_>>());
        let id = &cols[0];
        q.and_where(col(id).eq(val(&row[0], id, d)));
        if let Some(vc) = kind.column("version") {
            q.and_where(col(vc).eq(val(&Value::Int(expected_version), vc, d)));
        }
        build(&q, d)
    }

    #[test]
    fn updates_match_what_sea_query_builds() {
        for kind in [EntityKind::Task, EntityKind::Contact] {
            let row: Row = kind
                .columns()
                .iter()
                .enumerate()
                .map(|(i, c)| match c.ty {
                    crm_core::schema::ColumnType::Uuid => Value::Uuid(Uuid::from_u128(i as u128)),
                    crm_core::schema::ColumnType::Int => Value::Int(i as i64),
                    crm_core::schema::ColumnType::Text => Value::Text(format!("t{i}")),
                    _ => Value::Null,
                })
                .collect();
            for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql, Dialect::Sqlite] {
                assert_eq!(update(kind, row.clone(), 7, d), sea_query_update(kind, &row, 7, d), "{kind:?} {d:?}");
            }
        }
    }

    #[test]
    fn inserts_match_what_sea_query_builds() {
        let kind = EntityKind::Task;
        let row = |i: u128| -> Row {
            kind.columns()
                .iter()
                .map(|c| match c.ty {
                    crm_core::schema::ColumnType::Uuid => Value::Uuid(Uuid::from_u128(i)),
                    crm_core::schema::ColumnType::Int => Value::Int(i as i64),
                    _ => Value::Null,
                })
                .collect()
        };
        for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql] {
            for n in [1, 3, 1] {
                let rows: Vec<Row> = (0..n).map(row).collect();
                let ours = insert(kind, rows.clone(), d).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(ours, sea_query_insert(kind, rows, d), "{d:?}, {n} rows");
            }
        }
        assert!(insert(kind, vec![vec![Value::Null]], Dialect::Sqlite).is_err());
    }

    #[test]
    fn successor_of_prefix() {
        assert_eq!(prefix_successor("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
    }

    #[test]
    fn glob_escapes_metacharacters() {
        assert_eq!(glob(&Pattern::parse("a*b?%_[x")), "a[*]b[?]*?[[]x");
    }
}
