//! The patch model shared by every surface: a field of a partial update is
//! absent (unchanged), null (cleared) or a value (replaced), and free-form
//! maps merge key by key as in RFC 7396.

use serde_json::{Map, Value};

/// One field of a partial update.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    /// Not named in the body: leave the field as it is.
    #[default]
    Absent,
    /// Explicitly `null`: clear the field (only for nullable fields; the
    /// input reader refuses `null` for the others).
    Null,
    /// A new value that replaces the old one.
    Value(T),
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    /// Applies this patch to a nullable field.
    pub fn apply_to_option(self, target: &mut Option<T>) {
        match self {
            Patch::Absent => {}
            Patch::Null => *target = None,
            Patch::Value(value) => *target = Some(value),
        }
    }

    /// Applies this patch to a non-nullable field. `Null` never reaches here
    /// for such fields (the reader rejects it), so it is treated as absent.
    pub fn apply_to(self, target: &mut T) {
        if let Patch::Value(value) = self {
            *target = value;
        }
    }
}

/// Merges `patch` into `target` key by key, as RFC 7396 does for objects:
/// a key whose patch value is `null` is removed, a nested object merges
/// recursively, anything else replaces.
pub fn merge_map(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(nested_patch) => {
                let entry = target
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(nested_target) = entry {
                    merge_map(nested_target, nested_patch);
                } else {
                    let mut fresh = Map::new();
                    merge_map(&mut fresh, nested_patch);
                    *entry = Value::Object(fresh);
                }
            }
            other => {
                target.insert(key, other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn absent_leaves_null_clears_value_replaces() {
        let mut field = Some(1);
        Patch::Absent.apply_to_option(&mut field);
        assert_eq!(field, Some(1));
        Patch::Value(2).apply_to_option(&mut field);
        assert_eq!(field, Some(2));
        Patch::Null.apply_to_option(&mut field);
        assert_eq!(field, None);

        let mut required = 5;
        Patch::<i32>::Null.apply_to(&mut required);
        assert_eq!(required, 5);
        Patch::Value(7).apply_to(&mut required);
        assert_eq!(required, 7);
    }

    #[test]
    fn merge_follows_rfc_7396_examples() {
        // The examples of RFC 7396 appendix A that concern objects.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (original, patch, expected) in cases {
            let mut target = object(original);
            merge_map(&mut target, object(patch));
            assert_eq!(Value::Object(target), expected);
        }
    }
}
