//! Property tests of the parsers and codecs: the filter grammar, keyset cursors, money.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{DateTime, NaiveDate};
use crm_core::query::{decode_cursor, encode_cursor, parse_filter, Direction, Filter, SortKey};
use crm_core::schema::{Column, ColumnType};
use crm_core::{EntityKind, Money, Percent, Value};
use proptest::prelude::*;
use uuid::Uuid;

const KINDS: [EntityKind; 4] = [EntityKind::Contact, EntityKind::Company, EntityKind::Deal, EntityKind::Task];

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Text users type: any printable character, quotes, `%`, `_`, backslashes, emoji.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![r#"[a-zA-Z0-9 '"%_\\,()\[\]:.@-]{1,20}"#, "\\PC{1,12}", Just("Émile 😀 O'Brien".to_string())]
}

fn millis() -> impl Strategy<Value = i64> {
    // 1970 to 2100.
    0i64..4_102_444_800_000
}

fn day(d: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(d)
}

/// A literal of the column's type, as the filter grammar writes it.
fn literal(c: &'static Column) -> BoxedStrategy<String> {
    let ty = c.ty.element().unwrap_or(c.ty);
    match ty {
        ColumnType::Uuid => any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()).boxed(),
        ColumnType::Int => any::<i64>().prop_map(|n| n.to_string()).boxed(),
        ColumnType::Bool => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        ColumnType::Timestamp => {
            millis().prop_map(|ms| quoted(&DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339())).boxed()
        }
        ColumnType::Date => (0i64..60_000).prop_map(|d| day(d).to_string()).boxed(),
        ColumnType::Text if !c.choices.is_empty() => {
            proptest::sample::select(c.choices).prop_map(str::to_string).boxed()
        }
        ColumnType::Text if c.lowercase => "[a-z0-9.@-]{1,20}".prop_map(|s| quoted(&s)).boxed(),
        _ => text().prop_map(|s| quoted(&s)).boxed(),
    }
}

/// One comparison on a filterable column of `kind`, with an operator that applies to it.
fn comparison(kind: EntityKind) -> BoxedStrategy<String> {
    let columns: Vec<&'static Column> = kind.columns().iter().filter(|c| c.filterable).collect();
    proptest::sample::select(columns)
        .prop_flat_map(|c| {
            let list = c.ty.element().is_some();
            let free_text = c.ty == ColumnType::Text && c.choices.is_empty();
            let mut ops = vec!["eq", "neq", "in"];
            if !list && c.ty != ColumnType::Bool && c.ty != ColumnType::Uuid {
                ops.extend(["gt", "gte", "lt", "lte"]);
            }
            if free_text {
                ops.extend(["startsWith", "like", "ilike"]);
            }
            if c.nullable || list {
                ops.extend(["is:null", "is:notnull"]);
            }
            (Just(c), proptest::sample::select(ops), proptest::collection::vec(literal(c), 1..4))
        })
        .prop_map(|(c, op, vals)| match op {
            "is:null" => format!("{}[is]:null", c.field),
            "is:notnull" => format!("{}[is]:notnull", c.field),
            "in" => format!("{}[in]:[{}]", c.field, vals.join(",")),
            _ => format!("{}[{op}]:{}", c.field, vals[0]),
        })
        .boxed()
}

/// A filter tree of comparisons under and/or/not.
fn filter_text(kind: EntityKind) -> impl Strategy<Value = String> {
    comparison(kind).prop_recursive(4, 24, 4, |inner| {
        (proptest::sample::select(vec!["and", "or", "not"]), proptest::collection::vec(inner, 1..4))
            .prop_map(|(op, parts)| format!("{op}({})", parts.join(",")))
    })
}

fn kind() -> impl Strategy<Value = EntityKind> {
    proptest::sample::select(KINDS.to_vec())
}

/// A sort of 1–3 sortable columns of a kind plus the id, and values for each.
fn sort_and_values() -> impl Strategy<Value = (Vec<SortKey>, Vec<Value>)> {
    kind()
        .prop_flat_map(|k| {
            let sortable: Vec<&'static Column> = k.columns().iter().filter(|c| c.sortable && c.name != "id").collect();
            let id = k.column("id").unwrap();
            (proptest::sample::subsequence(sortable, 1..=3), any::<bool>(), Just(id))
        })
        .prop_flat_map(|(mut cols, desc, id)| {
            cols.push(id);
            let direction = if desc { Direction::Desc } else { Direction::Asc };
            let sort: Vec<SortKey> = cols.iter().map(|c| SortKey { column: c, direction }).collect();
            let values: Vec<BoxedStrategy<Value>> = cols.iter().map(|c| value(c)).collect();
            (Just(sort), values)
        })
}

/// A stored value of a column (NULL sometimes, where allowed).
fn value(c: &'static Column) -> BoxedStrategy<Value> {
    let v: BoxedStrategy<Value> = match c.ty {
        ColumnType::Uuid => any::<u128>().prop_map(|n| Value::Uuid(Uuid::from_u128(n))).boxed(),
        ColumnType::Int => any::<i64>().prop_map(Value::Int).boxed(),
        ColumnType::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        ColumnType::Timestamp => {
            millis().prop_map(|ms| Value::Timestamp(DateTime::from_timestamp_millis(ms).unwrap())).boxed()
        }
        ColumnType::Date => (0i64..60_000).prop_map(|d| Value::Date(day(d))).boxed(),
        _ => text().prop_map(Value::Text).boxed(),
    };
    if c.nullable {
        prop_oneof![1 => Just(Value::Null), 4 => v].boxed()
    } else {
        v
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every well-typed filter parses, and printing it gives text that parses back to it.
    #[test]
    fn filters_round_trip((k, f) in kind().prop_flat_map(|k| (Just(k), filter_text(k)))) {
        let parsed = parse_filter(k, &f).map_err(|e| TestCaseError::fail(format!("{f}: {e}")))?;
        let printed = parsed.to_string();
        let again = parse_filter(k, &printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(again, parsed);
    }

    /// Any input at all gives a filter or a validation error on `filter`, never a panic.
    #[test]
    fn arbitrary_filters_never_panic(k in kind(), s in "\\PC{0,80}|[a-zA-Z\\[\\]():,\"\\\\ ]{0,80}") {
        if let Err(e) = parse_filter(k, &s) {
            prop_assert_eq!(e.code(), "validation_failed");
            prop_assert!(e.field_errors().iter().all(|f| f.field == "filter"));
        }
    }

    /// An unknown field is named in the error.
    #[test]
    fn unknown_fields_are_named(k in kind(), field in "[a-z]{3,12}Zz") {
        let e = parse_filter(k, &format!("{field}[eq]:1")).unwrap_err();
        prop_assert!(e.to_string().contains(&field), "{}", e);
    }

    /// A cursor decodes to the values it was made from, for its own sort only.
    #[test]
    fn cursors_round_trip((sort, values) in sort_and_values()) {
        let cursor = encode_cursor(&sort, &values);
        prop_assert_eq!(decode_cursor(&sort, &cursor).unwrap(), values);
        let mut other = sort.clone();
        other[0].direction = match other[0].direction { Direction::Asc => Direction::Desc, Direction::Desc => Direction::Asc };
        prop_assert!(decode_cursor(&other, &cursor).is_err());
    }

    /// Damaged or forged cursors are validation errors on `after`, never a panic.
    #[test]
    fn damaged_cursors_are_rejected((sort, values) in sort_and_values(), cut in 0usize..64, junk in "\\PC{0,40}") {
        let cursor = encode_cursor(&sort, &values);
        let cut = cut.min(cursor.len());
        for bad in [format!("{}{junk}", &cursor[..cut]), junk.clone()] {
            if bad == cursor { continue; }
            if let Err(e) = decode_cursor(&sort, &bad) {
                prop_assert_eq!(e.field_errors()[0].field.as_str(), "after");
            }
        }
    }

    /// A percentage of any amount fits, stays within the amount and keeps its sign.
    #[test]
    fn percent_of_amount(minor in any::<i64>(), bp in 0u32..=10_000) {
        let p = Percent::from_basis_points(bp).unwrap();
        let part = p.of(minor).expect("a share of an i64 fits an i64");
        prop_assert!(part.unsigned_abs() <= minor.unsigned_abs());
        prop_assert!(part == 0 || part.signum() == minor.signum());
    }

    /// Sums of money in one currency are exact or refused, never wrapped; currencies
    /// never mix; the display shows every digit.
    #[test]
    fn money_adds_exactly(a in any::<i64>(), b in any::<i64>()) {
        let eur = crm_core::Currency::parse("EUR").unwrap();
        let usd = crm_core::Currency::parse("USD").unwrap();
        let sum = Money::new(a, eur).checked_add(Money::new(b, eur));
        prop_assert_eq!(sum.map(|m| m.minor), a.checked_add(b));
        prop_assert!(Money::new(a, eur).checked_add(Money::new(b, usd)).is_none());
        let shown = Money::new(a, eur).to_string();
        prop_assert!(shown.ends_with(" EUR"));
        let digits: String = shown.chars().filter(|c| c.is_ascii_digit()).collect();
        let expected = a.unsigned_abs().to_string();
        prop_assert_eq!(digits.trim_start_matches('0'), expected.trim_start_matches('0'));
    }
}

#[test]
fn filter_display_is_the_grammar() {
    let f = parse_filter(EntityKind::Contact, r#"or(name[eq]:"a,b",email[ilike]:"%@ACME.com")"#).unwrap();
    assert!(matches!(f, Filter::Or(_)));
    assert_eq!(f.to_string(), r#"or(name[eq]:"a,b",email[ilike]:"%@ACME.com")"#);
}
