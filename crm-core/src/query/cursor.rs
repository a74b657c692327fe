//! Opaque keyset cursors: the sort they belong to and the last row's sort values,
//! as base64url JSON. A cursor from another sort, or a damaged one, is a validation error.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::SortKey;
use crate::error::{Error, Result};
use crate::schema::{json_to_value, value_to_json, Value};

const MAX_CURSOR: usize = 4096;

fn signature(sort: &[SortKey]) -> String {
    sort.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(",")
}

fn bad(why: &str) -> Error {
    Error::invalid("after", "invalid_cursor", format!("the cursor is not valid: {why}"))
}

/// Encodes the position of a row (its values of the sort keys, in order).
pub fn encode_cursor(sort: &[SortKey], values: &[Value]) -> String {
    let json = serde_json::json!({
        "s": signature(sort),
        "v": values.iter().cloned().map(value_to_json).collect::<Vec<_>>(),
    });
    URL_SAFE_NO_PAD.encode(json.to_string())
}

/// Decodes a cursor made by [`encode_cursor`] for the same sort.
pub fn decode_cursor(sort: &[SortKey], cursor: &str) -> Result<Vec<Value>> {
    if cursor.len() > MAX_CURSOR {
        return Err(bad("too long"));
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad("not base64url"))?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad("not JSON"))?;
    if json.get("s").and_then(|s| s.as_str()) != Some(signature(sort).as_str()) {
        return Err(bad("it belongs to another sort order"));
    }
    let vals = json.get("v").and_then(|v| v.as_array()).ok_or_else(|| bad("no values"))?;
    if vals.len() != sort.len() {
        return Err(bad("wrong number of values"));
    }
    sort.iter()
        .zip(vals)
        .map(|(k, v)| {
            if v.is_null() {
                if k.column.nullable {
                    Ok(Value::Null)
                } else {
                    Err(bad("a required value is null"))
                }
            } else {
                json_to_value(k.column, v).ok_or_else(|| bad("a value has the wrong type"))
            }
        })
        .collect()
}
