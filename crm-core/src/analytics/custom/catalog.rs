//! The catalog a spec is checked against: each analytics table's columns, the joins a
//! source allows, and the names a spec's fields resolve to.

use crate::query::FieldSet;
use crate::schema::Column;

/// The columns of an analytics table, as its kind declares them.
pub(super) fn columns(table: &str) -> Option<impl Iterator<Item = &'static Column> + Clone> {
    let kind = super::super::KINDS.iter().find(|k| k.table() == table)?;
    Some(kind.analytics().iter().map(|e| &e.column))
}

/// The joins a source allows: (table, the source's reference column).
pub(super) fn joins_of(source: &str) -> &'static [(&'static str, &'static str)] {
    match source {
        "deals" => &[("companies", "company_id"), ("contacts", "contact_id")],
        "contacts" => &[("companies", "company_id")],
        "interactions" => &[("contacts", "contact_id")],
        "deal_stage_history" => &[("deals", "deal_id")],
        _ => &[],
    }
}

/// The parent whose deletion removes a source's rows: (table, reference column).
pub(super) fn parent_of(source: &str) -> Option<(&'static str, &'static str)> {
    match source {
        "deal_stage_history" => Some(("deals", "deal_id")),
        "interactions" => Some(("contacts", "contact_id")),
        _ => None,
    }
}

/// A source with its joins: resolves `field` and `table.field` names.
pub(super) struct Scope<'a> {
    pub(super) source: &'a str,
    pub(super) joins: Vec<&'static str>,
}

impl Scope<'_> {
    /// The table and column a field name stands for.
    pub(super) fn resolve(&self, field: &str) -> Option<(&str, &'static Column)> {
        let (table, name) = match field.split_once('.') {
            Some((t, n)) if t == self.source || self.joins.contains(&t) => (t, n),
            Some(_) => return None,
            None => (self.source, field),
        };
        let column = columns(table)?.find(|c| c.name == name && c.name != "deleted_at")?;
        let table =
            if table == self.source { self.source } else { self.joins.iter().copied().find(|j| *j == table)? };
        Some((table, column))
    }

    /// The frame column a resolved column is found under.
    pub(super) fn frame_name(&self, table: &str, column: &Column) -> String {
        if table == self.source {
            column.name.to_string()
        } else {
            format!("{table}.{}", column.name)
        }
    }

    /// The frame column of a column the filter parser handed back (found by identity:
    /// each table's columns are a static array of their own).
    pub(super) fn locate(&self, column: &'static Column) -> Option<String> {
        std::iter::once(self.source)
            .chain(self.joins.iter().copied())
            .find_map(|t| columns(t)?.any(|c| std::ptr::eq(c, column)).then(|| self.frame_name(t, column)))
    }

    fn field_list(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        for t in std::iter::once(self.source).chain(self.joins.iter().copied()) {
            for c in columns(t).into_iter().flatten().filter(|c| c.name != "deleted_at") {
                out.push(self.frame_name(t, c));
            }
        }
        out.join(", ")
    }
}

impl FieldSet for Scope<'_> {
    fn lookup(&self, field: &str) -> Option<&'static Column> {
        self.resolve(field).map(|(_, c)| c)
    }
    fn owner(&self) -> String {
        format!("the {} report (fields: {})", self.source, self.field_list())
    }
}

/// An output column name: letters, digits, `_`, `.`; at most 64 bytes.
pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// One field a custom report may name, as [`describe`] lists it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogField {
    /// The name a spec uses (`amount_cents`; joined tables' fields are `table.field`).
    pub name: String,
    /// `text`, `integer`, `boolean`, `timestamp`, `date`, `json` or `list` (ids are text).
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// May be NULL.
    pub nullable: bool,
    /// The values a text field takes, when they are a fixed set (stages, priorities).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub choices: Vec<&'static str>,
}

/// A table a custom report may start from, with its fields and the tables it may join.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSource {
    /// The table (`deals`).
    pub name: &'static str,
    /// Its fields, in the table's order.
    pub fields: Vec<CatalogField>,
    /// The tables `join` may name; their fields are listed under their own source.
    pub joins: Vec<&'static str>,
}

fn type_name(ty: crate::schema::ColumnType) -> &'static str {
    use crate::schema::ColumnType as T;
    match ty {
        T::Uuid | T::Text => "text",
        T::Int => "integer",
        T::Bool => "boolean",
        T::Timestamp => "timestamp",
        T::Date => "date",
        T::Json => "json",
        T::UuidList | T::TextList => "list",
    }
}

/// Every source table with the fields reports may group, aggregate, filter and list: what
/// a report builder offers. Read from the kinds' declarations, as specs are checked.
pub fn describe() -> Vec<CatalogSource> {
    super::super::TABLES
        .iter()
        .map(|&table| CatalogSource {
            name: table,
            fields: columns(table)
                .into_iter()
                .flatten()
                .filter(|c| c.name != "deleted_at")
                .map(|c| CatalogField {
                    name: c.name.to_string(),
                    ty: type_name(c.ty),
                    nullable: c.nullable,
                    choices: c.choices.to_vec(),
                })
                .collect(),
            joins: joins_of(table).iter().map(|(t, _)| *t).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_lists_what_specs_may_name() {
        let all = describe();
        let deals = all.iter().find(|s| s.name == "deals").unwrap_or_else(|| panic!("no deals"));
        assert_eq!(deals.joins, ["companies", "contacts"]);
        let amount =
            deals.fields.iter().find(|f| f.name == "amount_cents").unwrap_or_else(|| panic!("no amount_cents"));
        assert_eq!((amount.ty, amount.nullable), ("integer", true));
        let stage =
            deals.fields.iter().find(|f| f.name == "pipeline_stage").unwrap_or_else(|| panic!("no pipeline_stage"));
        assert!(stage.choices.contains(&"closed_won"), "{stage:?}");
        assert!(all.iter().all(|s| s.fields.iter().all(|f| f.name != "deleted_at")));
        // Every listed field resolves the way a spec's would.
        for s in &all {
            let scope = Scope { source: s.name, joins: s.joins.clone() };
            for f in &s.fields {
                assert!(scope.resolve(&f.name).is_some(), "{}.{}", s.name, f.name);
            }
        }
    }
}
