//! Validation helpers for the per-action input types. Each records its errors in an
//! [`Errors`] collector, so one answer names every bad field.

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Errors};
use crate::model::JsonObject;
use crate::values::{check_text, Domain, Email, Phone};

/// Deserialises a field that may be absent (`None`), null (`Some(None)`) or set.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Moves a value-type error onto the field it was given for.
fn on_field(errs: &mut Errors, field: &str, e: Error) {
    match e {
        Error::Validation(list) => {
            for fe in list {
                errs.add(field, fe.code, fe.message);
            }
        }
        other => errs.add(field, other.code(), other.to_string()),
    }
}

/// A required single-line text: trimmed, non-empty, at most `max` characters.
pub(crate) fn required(errs: &mut Errors, field: &str, value: &str, max: usize) -> String {
    let v = value.trim();
    if v.is_empty() {
        errs.add(field, "required", format!("{field} is required"));
    } else if let Err(e) = check_text(field, v, max, false) {
        on_field(errs, field, e);
    }
    v.to_string()
}

/// An optional text: trimmed; empty means absent.
pub(crate) fn text(
    errs: &mut Errors,
    field: &str,
    value: Option<String>,
    max: usize,
    multiline: bool,
) -> Option<String> {
    let v = value?;
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    if let Err(e) = check_text(field, v, max, multiline) {
        on_field(errs, field, e);
    }
    Some(v.to_string())
}

/// An optional email address.
pub(crate) fn email(errs: &mut Errors, field: &str, value: Option<String>) -> Option<Email> {
    let v = value.filter(|v| !v.trim().is_empty())?;
    match Email::parse(&v) {
        Ok(e) => Some(e),
        Err(e) => {
            on_field(errs, field, e);
            None
        }
    }
}

/// An optional phone number, normalised to E.164.
pub(crate) fn phone(errs: &mut Errors, field: &str, value: Option<String>, region: Option<&str>) -> Option<Phone> {
    let v = value.filter(|v| !v.trim().is_empty())?;
    match Phone::parse(&v, region) {
        Ok(p) => Some(p),
        Err(e) => {
            on_field(errs, field, e);
            None
        }
    }
}

/// An optional domain.
pub(crate) fn domain(errs: &mut Errors, field: &str, value: Option<String>) -> Option<Domain> {
    let v = value.filter(|v| !v.trim().is_empty())?;
    match Domain::parse(&v) {
        Ok(d) => Some(d),
        Err(e) => {
            on_field(errs, field, e);
            None
        }
    }
}

/// Tags: trimmed, de-duplicated (first spelling wins), at most 50 of at most 50 characters.
pub(crate) fn tags(errs: &mut Errors, field: &str, value: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in value {
        let t = t.trim().to_string();
        if t.is_empty() {
            continue;
        }
        if let Err(e) = check_text(field, &t, 50, false) {
            on_field(errs, field, e);
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > 50 {
        errs.add(field, "too_long", "at most 50 tags");
    }
    out
}

/// The largest free-form object, serialised.
const MAX_OBJECT_BYTES: usize = 16 * 1024;

/// A free-form object: at most 16 KiB, keys non-empty, without `$` prefixes or dots (so
/// every backend stores them as plain data), no NUL anywhere.
pub(crate) fn object(errs: &mut Errors, field: &str, value: JsonObject) -> JsonObject {
    fn walk(errs: &mut Errors, field: &str, v: &serde_json::Value, depth: usize) {
        if depth > 8 {
            errs.add(field, "too_deep", "objects nest at most 8 deep");
            return;
        }
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if k.is_empty() || k.starts_with('$') || k.contains('.') || k.contains('\0') {
                        errs.add(
                            format!("{field}.{k}"),
                            "invalid_key",
                            "keys may not be empty, start with $ or hold a dot",
                        );
                    }
                    walk(errs, field, v, depth + 1);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(errs, field, v, depth + 1)),
            serde_json::Value::String(s) if s.contains('\0') => errs.add(field, "invalid_value", "NUL is not allowed"),
            _ => {}
        }
    }
    let as_value = serde_json::Value::Object(value);
    if as_value.to_string().len() > MAX_OBJECT_BYTES {
        errs.add(field, "too_long", format!("at most {MAX_OBJECT_BYTES} bytes"));
    }
    walk(errs, field, &as_value, 0);
    match as_value {
        serde_json::Value::Object(m) => m,
        _ => JsonObject::new(),
    }
}
