//! Typed input from JSON, with every bad field named.
//!
//! serde stops at the first error and words it for Rust programmers ("invalid type:
//! floating point `12.5`, expected i64"). A client (and a form that shows each error
//! beside its input) needs the field's path in its own spelling (`products.2.quantity`),
//! a stable code and every bad field of the request at once. [`from_json`] gets there by
//! deserialising, recording the error at its path, repairing that one spot of a copy of
//! the input (dropping the value, else trying a placeholder of each JSON type), and
//! deserialising again, until the input fits or no repair helps. The repaired copy is
//! never used: any error means the whole input is refused.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, FieldError, Result};

/// The most errors (and so deserialisation passes) one input is examined for.
const MAX_ERRORS: usize = 50;

/// Placeholders tried, in order, in place of a bad or missing value so that the rest of
/// the input can be examined.
fn placeholders() -> [Value; 6] {
    [
        Value::String(String::new()),
        Value::from(0),
        Value::Bool(false),
        Value::Array(vec![]),
        Value::Object(Map::new()),
        Value::Null,
    ]
}

/// One step of a path into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Deserialises `T` from JSON; when it does not fit, the error ([`Error::Malformed`])
/// lists every field that is
/// missing (`required`), of the wrong JSON type (`invalid_type`), not among the allowed
/// values (`invalid_value`), out of range (`out_of_range`) or unknown (`unknown_field`),
/// each with its dotted path (`products.2.quantity`).
///
/// ```
/// use crm_core::decode::from_json;
/// use crm_core::service::NewDeal;
///
/// let e = from_json::<NewDeal>(serde_json::json!({"amount": 12.5, "stage": "won"})).unwrap_err();
/// let fields: Vec<_> = e.field_errors().iter().map(|f| (f.field.as_str(), f.code)).collect();
/// assert!(fields.contains(&("name", "required")));
/// assert!(fields.contains(&("amount", "invalid_type")));
/// assert!(fields.contains(&("stage", "invalid_value")));
/// ```
pub fn from_json<T: DeserializeOwned>(value: Value) -> Result<T> {
    let mut work = value;
    let mut errors: Vec<FieldError> = Vec::new();
    // Per bad spot: how many repairs were tried there.
    let mut repairs: Vec<(Vec<Step>, usize)> = Vec::new();
    loop {
        let err = match serde_path_to_error::deserialize::<_, T>(&work) {
            Ok(v) if errors.is_empty() => return Ok(v),
            Ok(_) => return Err(Error::Malformed(errors)),
            Err(e) => e,
        };
        let (mut path, code, mut message) = classify(err.path(), &err.inner().to_string());
        if code.2 {
            // The type's own words ("input is out of range") say more beside the value.
            if let Some(Value::String(given)) = at_mut(&mut work, &path) {
                message = format!("'{given}': {message}");
            }
        }
        if let Some(missing) = code.1 {
            path.push(Step::Key(missing));
        }
        let field = dotted(&path);
        if !errors.iter().any(|e| e.field == field) {
            errors.push(FieldError::new(field.clone(), code.0, message));
        }
        if errors.len() >= MAX_ERRORS {
            return Err(Error::Malformed(errors));
        }
        // The repairs of one spot: a member that is there is dropped first (a missing
        // optional member is fine); then each placeholder is tried in turn.
        let step = match repairs.iter_mut().find(|(p, _)| *p == path) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                let present =
                    matches!(path.split_last(), Some((Step::Key(_), _))) && at_mut(&mut work, &path).is_some();
                let first = if present { 0 } else { 1 };
                repairs.push((path.clone(), first));
                first
            }
        };
        if !repair(&mut work, &path, step) {
            return Err(Error::Malformed(errors));
        }
    }
}

/// Changes the value at `path`: step 0 drops it (an object member), step n puts the nth
/// placeholder there. False when nothing is left to try.
fn repair(root: &mut Value, path: &[Step], step: usize) -> bool {
    let Some((last, parent)) = path.split_last() else { return false };
    let Some(parent) = at_mut(root, parent) else { return false };
    let placeholder = match step.checked_sub(1) {
        Some(i) => match placeholders().into_iter().nth(i) {
            Some(p) => Some(p),
            None => return false,
        },
        None => None,
    };
    match (last, parent, placeholder) {
        (Step::Key(k), Value::Object(m), None) => m.remove(k).is_some(),
        (Step::Key(k), Value::Object(m), Some(p)) => {
            m.insert(k.clone(), p);
            true
        }
        (Step::Index(i), Value::Array(a), Some(p)) if *i < a.len() => {
            a[*i] = p;
            true
        }
        _ => false,
    }
}

fn at_mut<'a>(mut v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    for step in path {
        v = match (step, v) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

fn dotted(path: &[Step]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|s| match s {
            Step::Key(k) => k.clone(),
            Step::Index(i) => i.to_string(),
        })
        .collect();
    parts.join(".")
}

/// The path, the code (and the name of a missing member), and a message for people.
/// The third member of the code says whether the message is the type's own (it does not
/// show the value).
#[allow(clippy::type_complexity)]
fn classify(
    path: &serde_path_to_error::Path,
    inner: &str,
) -> (Vec<Step>, (&'static str, Option<String>, bool), String) {
    use serde_path_to_error::Segment;
    let mut steps: Vec<Step> = path
        .iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Enum { variant } => Some(Step::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect();
    let quoted = |s: &str| s.split('`').nth(1).map(str::to_string);
    if let Some(rest) = inner.strip_prefix("missing field ") {
        let name = quoted(rest).unwrap_or_default();
        return (steps, ("required", Some(name.clone()), false), format!("{name} is required"));
    }
    if let Some(rest) = inner.strip_prefix("unknown field ") {
        let name = quoted(rest).unwrap_or_default();
        if steps.last() != Some(&Step::Key(name.clone())) {
            steps.push(Step::Key(name.clone()));
        }
        let allowed = rest.split_once("expected ").map(|(_, e)| format!("; expected {}", e.replace('`', "")));
        return (steps, ("unknown_field", None, false), format!("unknown field {name}{}", allowed.unwrap_or_default()));
    }
    if let Some(rest) = inner.strip_prefix("unknown variant ") {
        let got = quoted(rest).unwrap_or_default();
        let allowed = rest.split_once("expected ").map(|(_, e)| e.replace('`', "")).unwrap_or_default();
        return (steps, ("invalid_value", None, false), format!("'{got}' is not allowed; expected {allowed}"));
    }
    if let Some(rest) = inner.strip_prefix("invalid type: ") {
        let (got, want) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
        return (
            steps,
            ("invalid_type", None, false),
            format!("expected {}, got {}", json_type(want), got.replace('`', "")),
        );
    }
    if let Some(rest) = inner.strip_prefix("invalid value: ") {
        let (got, want) = rest.split_once(", expected ").unwrap_or((rest, "another value"));
        let code = if got.starts_with("integer") { "out_of_range" } else { "invalid_value" };
        return (steps, (code, None, false), format!("{} is not {}", got.replace('`', ""), want.replace('`', "")));
    }
    if inner.starts_with("invalid length ") {
        return (steps, ("invalid_value", None, false), inner.replace('`', ""));
    }
    let lower = inner.to_ascii_lowercase();
    let code =
        if lower.contains("out of range") || lower.contains("overflow") { "out_of_range" } else { "invalid_value" };
    (steps, (code, None, !inner.contains('\'')), inner.to_string())
}

/// serde's name of an expected type, in JSON words.
fn json_type(want: &str) -> String {
    let w = want.trim();
    let named = match w {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a boolean" | "bool" => "true or false",
        "a string" | "string" | "a borrowed string" | "char" => "a string",
        "a sequence" => "an array",
        "a map" => "an object",
        "a UUID string" | "UUID" => "a UUID string",
        _ if w.starts_with("struct ") || w.starts_with("a map") => "an object",
        _ if w.starts_with("a formatted date and time string") => "an RFC 3339 time",
        _ if w.starts_with("a formatted date string") => "a date (YYYY-MM-DD)",
        _ => "",
    };
    if named.is_empty() {
        w.replace('`', "")
    } else {
        named.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Line {
        name: String,
        quantity: i64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Small,
        Large,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        amount: Option<i64>,
        #[serde(default)]
        kind: Option<Kind>,
        #[serde(default)]
        products: Vec<Line>,
        #[serde(default)]
        size: Option<u8>,
    }

    fn fields(v: Value) -> Vec<(String, &'static str)> {
        let e = from_json::<Body>(v).unwrap_err();
        let mut f: Vec<_> = e.field_errors().iter().map(|f| (f.field.clone(), f.code)).collect();
        f.sort();
        f
    }

    #[test]
    fn every_bad_field_is_named_with_its_path_and_code() {
        let got = fields(json!({
            "amount": 12.5,
            "kind": "huge",
            "hacked": true,
            "size": 300,
            "products": [{"name": "a", "quantity": 1}, {"name": 3, "quantity": "x"}, {"name": "c", "quantity": 1, "extra": 1}]
        }));
        let want: Vec<(String, &str)> = vec![
            ("amount".into(), "invalid_type"),
            ("hacked".into(), "unknown_field"),
            ("kind".into(), "invalid_value"),
            ("name".into(), "required"),
            ("products.1.name".into(), "invalid_type"),
            ("products.1.quantity".into(), "invalid_type"),
            ("products.2.extra".into(), "unknown_field"),
            ("size".into(), "out_of_range"),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_fitting_input_decodes_and_a_wrong_top_level_type_is_one_error() {
        let b: Body = from_json(json!({"name": "x", "kind": "small"})).unwrap();
        assert!(matches!(b.kind, Some(Kind::Small)));
        let e = from_json::<Body>(json!([1, 2])).unwrap_err();
        assert_eq!(e.field_errors().len(), 1);
        assert_eq!(e.field_errors()[0].code, "invalid_type");
    }

    #[test]
    fn messages_speak_json() {
        let e = from_json::<Body>(json!({"name": "x", "amount": "12"})).unwrap_err();
        assert_eq!(e.field_errors()[0].message, "expected an integer, got string \"12\"");
    }
}
