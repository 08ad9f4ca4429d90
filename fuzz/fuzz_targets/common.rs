#![allow(dead_code)] // each target uses part of it

//! What every target shares: a record around a document, and the checks
//! that a patch's fields read back and that maps merged key by key.

use chrono::{TimeZone, Utc};
use clientele::core::records::Record;
use serde_json::{Map, Value};

/// Wraps `data` as a stored record at version 1.
pub fn record<T>(id: &str, data: T) -> Record<T> {
    let at = Utc.timestamp_millis_opt(1_700_000_000_000).single().unwrap_or_default();
    Record {
        id: id.to_owned(),
        version: 1,
        created_at: at,
        updated_at: at,
        data,
    }
}

/// Numbers compare by value (`50` and `50.0` are one number).
pub fn same(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(key, x)| b.get(key).is_some_and(|y| same(x, y)))
        }
        _ => left == right,
    }
}

/// The fields of an accepted patch that are stored exactly as sent must
/// read back exactly (null included).
pub fn assert_plain_fields_read_back(patch: &Map<String, Value>, view: &Value, plain: &[&str]) {
    for key in plain {
        if let Some(sent) = patch.get(*key) {
            assert!(same(&view[*key], sent), "{key}: sent {sent}, read back {}", view[*key]);
        }
    }
}

/// A free-form map patched key by key: a key sent as null is gone, any
/// other key holds what was sent, and keys not sent keep their old value.
pub fn assert_merged(before: &Value, sent: &Value, after: &Value, name: &str) {
    let (Some(sent), Some(after)) = (sent.as_object(), after.as_object()) else {
        return;
    };
    for (key, value) in sent {
        if value.is_null() {
            assert!(after.get(key).is_none(), "{name}.{key} was removed but is still there");
        } else {
            assert!(after.get(key).is_some_and(|kept| same(kept, value)), "{name}.{key} not merged");
        }
    }
    if let Some(before) = before.as_object() {
        for (key, value) in before {
            if !sent.contains_key(key) {
                assert_eq!(after.get(key), Some(value), "{name}.{key} not sent but changed");
            }
        }
    }
}
