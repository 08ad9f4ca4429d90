//! Field-by-field conversion of a JSON body into typed values, collecting
//! every error with its path.
//!
//! serde stops at the first type error, so a derive cannot report all the
//! invalid fields of a body at once. Surfaces therefore parse the body to a
//! [`serde_json::Value`] first and then walk it with a [`Reader`], which
//! records an error for each bad field and keeps going. Each surface words
//! the errors its own way ([`Words`]); the default is the Lance seed's style
//! ("Expected number, received string").

use std::ops::RangeInclusive;

use serde_json::{Map, Value};

use super::error::{DomainError, FieldError, FieldPath};
use super::fields::Check;
use super::patch::Patch;

/// Bounds on free-form JSON (objects the core stores without interpreting):
/// nesting depth, keys per object, elements per array and string length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FreeFormLimits {
    pub max_depth: usize,
    pub max_entries: usize,
    pub max_string_chars: usize,
}

impl FreeFormLimits {
    /// The bounds used unless a field says otherwise.
    pub const DEFAULT: FreeFormLimits = FreeFormLimits {
        max_depth: 16,
        max_entries: 1_000,
        max_string_chars: 10_000,
    };
}

/// The JSON type of a value, in the words the error messages use.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses a request body as JSON, refusing what `serde_json::Value` would
/// silently accept: a key repeated within one object (which of the two
/// values would win is an accident of the parser) and trailing data.
/// Depth (128 levels) and number range are serde_json's own checks.
pub fn parse_json_strictly(bytes: &[u8]) -> Result<Value, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let StrictValue(value) =
        serde::Deserialize::deserialize(&mut deserializer).map_err(|error| error.to_string())?;
    deserializer.end().map_err(|error| error.to_string())?;
    Ok(value)
}

struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(StrictValue(value)) = items.next_element()? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key \"{key}\"")));
            }
            let StrictValue(value) = entries.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// The fields of one JSON object and where that object sits in the body.
#[derive(Clone, Copy)]
pub struct Fields<'v, 'p> {
    map: &'v Map<String, Value>,
    path: &'p FieldPath,
}

impl<'v> Fields<'v, '_> {
    /// The value of `key` if present (a present `null` is `Some(Null)`).
    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key)
    }

    /// The path of `key` in this object.
    pub fn path_of(&self, key: &str) -> FieldPath {
        self.path.key(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The JSON type a rule expected, for the words of a type error. `OneOf`
/// carries the allowed strings (some surfaces name them instead of the type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    String,
    /// A JSON number with no fraction.
    Integer,
    Number,
    Boolean,
    Array,
    /// An array whose elements are objects.
    ArrayOfObjects,
    Object,
    OneOf(&'static [&'static str]),
}

/// How a surface words the reader's errors. The defaults are the words the
/// Lance seed uses (Zod's: "Expected number, received string"); a surface
/// whose vendor speaks otherwise overrides what differs. Messages that
/// belong to one rule (an email, a time zone) live with that rule instead.
pub trait Words: Sync {
    /// A value of another JSON type than `expected`.
    fn wrong_type(&self, expected: Expected, received: &Value) -> String {
        let expected = match expected {
            Expected::String | Expected::OneOf(_) => "string",
            Expected::Integer | Expected::Number => "number",
            Expected::Boolean => "boolean",
            Expected::Array | Expected::ArrayOfObjects => "array",
            Expected::Object => "object",
        };
        format!("Expected {expected}, received {}", json_type_name(received))
    }

    /// `null` where a value of type `expected` is needed.
    fn null_value(&self, expected: Expected) -> String {
        self.wrong_type(expected, &Value::Null)
    }

    /// A required field that is absent.
    fn required(&self) -> String {
        "Required".to_owned()
    }

    /// Whether absent required fields are reported after every other
    /// error (as a Bean Validation pass over the built object would) rather
    /// than in their place among the fields.
    fn required_last(&self) -> bool {
        false
    }

    /// The body (or a nested value) is not an object.
    fn body_not_object(&self, received: &Value) -> String {
        self.wrong_type(Expected::Object, received)
    }

    fn unknown_key(&self, key: &str) -> String {
        format!("Unrecognized key: \"{key}\"")
    }

    /// A key the server sets (an id, a timestamp, a derived field); `None`
    /// reports it as an unknown key.
    fn read_only(&self, _key: &str) -> Option<String> {
        None
    }

    /// Whether unknown keys are all reported before the read-only ones
    /// (else each key in the body's order).
    fn unknown_keys_first(&self) -> bool {
        false
    }

    /// A string whose length in characters is `length`, outside `chars`.
    fn text_length(&self, chars: &RangeInclusive<usize>, length: usize) -> String {
        if length < *chars.start() {
            if *chars.start() == 1 {
                "String must not be empty".to_owned()
            } else {
                format!(
                    "String must contain at least {} character(s)",
                    chars.start()
                )
            }
        } else {
            format!("String must contain at most {} character(s)", chars.end())
        }
    }

    /// A string that is none of `allowed`.
    fn not_one_of(&self, allowed: &[&str], received: &str) -> String {
        let options = allowed
            .iter()
            .map(|option| format!("'{option}'"))
            .collect::<Vec<_>>()
            .join(" | ");
        format!("Invalid enum value. Expected {options}, received '{received}'")
    }

    /// A number with a fraction where an integer is needed.
    fn not_whole(&self) -> String {
        "Expected integer, received float".to_owned()
    }

    fn integer_range(&self, range: &RangeInclusive<i64>) -> String {
        range_message(range.start(), range.end())
    }

    fn number_range(&self, range: &RangeInclusive<f64>) -> String {
        range_message(range.start(), range.end())
    }

    /// An array of `length` elements, outside `count`.
    fn item_count(&self, count: &RangeInclusive<usize>, length: usize) -> String {
        if length < *count.start() {
            format!("Array must contain at least {} element(s)", count.start())
        } else {
            format!("Array must contain at most {} element(s)", count.end())
        }
    }

    /// An object of more than `max` keys.
    fn too_many_keys(&self, max: usize) -> String {
        format!("Object must contain at most {max} key(s)")
    }

    fn nested_too_deep(&self, max_depth: usize) -> String {
        format!("Nesting deeper than {max_depth} levels")
    }

    /// A partial update that names none of `updatable`.
    fn needs_a_field(&self, updatable: &[&str]) -> String {
        format!(
            "At least one of the updatable fields must be sent: {}",
            updatable.join(", ")
        )
    }
}

/// The default words (Zod's, as the Lance seed shows them).
pub struct ZodWords;

impl Words for ZodWords {}

fn range_message<N: std::fmt::Display + Bounded>(min: &N, max: &N) -> String {
    if max.is_max() {
        format!("Number must be greater than or equal to {min}")
    } else if min.is_min() {
        format!("Number must be less than or equal to {max}")
    } else {
        format!("Number must be between {min} and {max}")
    }
}

/// Collects field errors while converting a body. Each method returns
/// `None` after recording an error, so a caller can go on to the next field.
pub struct Reader {
    errors: Vec<FieldError>,
    words: &'static dyn Words,
    /// Required fields found absent, when the words report them last.
    missing: Vec<FieldPath>,
}

impl Default for Reader {
    fn default() -> Self {
        Self::speaking(&ZodWords)
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// A reader with the default words.
    pub fn new() -> Self {
        Self::default()
    }

    /// A reader that words its errors as `words` does.
    pub fn speaking(words: &'static dyn Words) -> Self {
        Self {
            errors: Vec::new(),
            words,
            missing: Vec::new(),
        }
    }

    pub fn words(&self) -> &'static dyn Words {
        self.words
    }

    /// Records an error at `path`.
    pub fn error(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.clone(),
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || !self.missing.is_empty()
    }

    /// How many errors have been recorded so far (a converter compares
    /// counts to learn whether a nested value failed).
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// `Ok(value)` if no error was recorded, else every recorded error.
    pub fn finish<T>(mut self, value: T) -> Result<T, DomainError> {
        self.report_missing();
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(DomainError::Invalid(self.errors))
        }
    }

    /// The errors recorded so far, for a caller that cannot go on. Only
    /// called after a conversion failed, which always records an error.
    pub fn into_error(mut self) -> DomainError {
        self.report_missing();
        debug_assert!(!self.errors.is_empty());
        DomainError::Invalid(self.errors)
    }

    fn report_missing(&mut self) {
        for path in std::mem::take(&mut self.missing) {
            let message = self.words.required();
            self.error(&path, message);
        }
    }

    /// A value of another type than `expected` (or `null`).
    pub fn type_error(&mut self, path: &FieldPath, expected: Expected, value: &Value) {
        let message = if value.is_null() {
            self.words.null_value(expected)
        } else {
            self.words.wrong_type(expected, value)
        };
        self.error(path, message);
    }

    /// An object whose keys must all be in `allowed`; each other key is an
    /// error at that key's path.
    pub fn object<'v, 'p>(
        &mut self,
        value: &'v Value,
        path: &'p FieldPath,
        allowed: &[&str],
    ) -> Option<Fields<'v, 'p>> {
        let Value::Object(map) = value else {
            self.type_error(path, Expected::Object, value);
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                let message = self.words.unknown_key(key);
                self.error(&path.key(key), message);
            }
        }
        Some(Fields { map, path })
    }

    /// The object of a record's body: each key that is not `writable` is
    /// reported as read-only (when it is in `read_only` and the words say
    /// so) or unknown; a partial update that `needs_a_field` must name one
    /// of `writable`.
    pub fn record_body<'v, 'p>(
        &mut self,
        body: &'v Value,
        root: &'p FieldPath,
        writable: &[&str],
        read_only: &[&str],
        needs_a_field: bool,
    ) -> Option<Fields<'v, 'p>> {
        let Value::Object(map) = body else {
            let message = self.words.body_not_object(body);
            self.error(root, message);
            return None;
        };
        let refused = |key: &str| -> Option<String> {
            read_only
                .contains(&key)
                .then(|| self.words.read_only(key))
                .flatten()
        };
        let mut read_only_found = Vec::new();
        for key in map.keys() {
            if writable.contains(&key.as_str()) {
                continue;
            }
            match refused(key) {
                Some(message) if self.words.unknown_keys_first() => {
                    read_only_found.push((key.as_str(), message));
                }
                Some(message) => self.error(&root.key(key), message),
                None => {
                    let message = self.words.unknown_key(key);
                    self.error(&root.key(key), message);
                }
            }
        }
        // Read-only keys come in the order the record shows them.
        read_only_found.sort_by_key(|(key, _)| read_only.iter().position(|known| known == key));
        for (key, message) in read_only_found {
            self.error(&root.key(key), message);
        }
        let fields = Fields { map, path: root };
        if needs_a_field && !writable.iter().any(|key| fields.contains(key)) {
            let message = self.words.needs_a_field(writable);
            self.error(root, message);
        }
        Some(fields)
    }

    /// A field of a body that is never `null`: absent (`None`, and an
    /// error when `required`), or a value read by `check` (which reports a
    /// `null` as the type error it is).
    pub fn value_field<C: Check + ?Sized>(
        &mut self,
        fields: &Fields<'_, '_>,
        key: &str,
        check: &C,
        required: bool,
    ) -> Option<C::Value> {
        match fields.get(key) {
            None => {
                if required {
                    self.missing(fields.path_of(key));
                }
                None
            }
            Some(value) => check.read(self, value, &fields.path_of(key)),
        }
    }

    /// A field of a body that may be `null`: absent, null, or a value read
    /// by `check`. An invalid value is recorded and reads as absent.
    pub fn nullable_field<C: Check + ?Sized>(
        &mut self,
        fields: &Fields<'_, '_>,
        key: &str,
        check: &C,
        required: bool,
    ) -> Patch<C::Value> {
        match fields.get(key) {
            None => {
                if required {
                    self.missing(fields.path_of(key));
                }
                Patch::Absent
            }
            Some(Value::Null) => Patch::Null,
            Some(value) => match check.read(self, value, &fields.path_of(key)) {
                Some(converted) => Patch::Value(converted),
                None => Patch::Absent,
            },
        }
    }

    fn missing(&mut self, path: FieldPath) {
        if self.words.required_last() {
            self.missing.push(path);
        } else {
            let message = self.words.required();
            self.error(&path, message);
        }
    }

    /// A string whose length in characters lies in `chars`.
    pub fn string(
        &mut self,
        value: &Value,
        path: &FieldPath,
        chars: RangeInclusive<usize>,
    ) -> Option<String> {
        let Value::String(text) = value else {
            self.type_error(path, Expected::String, value);
            return None;
        };
        let length = text.chars().count();
        if !chars.contains(&length) {
            let message = self.words.text_length(&chars, length);
            self.error(path, message);
            return None;
        }
        Some(text.clone())
    }

    /// One of a fixed set of strings.
    pub fn one_of(
        &mut self,
        value: &Value,
        path: &FieldPath,
        allowed: &'static [&'static str],
    ) -> Option<String> {
        let Value::String(text) = value else {
            self.type_error(path, Expected::OneOf(allowed), value);
            return None;
        };
        if allowed.contains(&text.as_str()) {
            Some(text.clone())
        } else {
            let message = self.words.not_one_of(allowed, text);
            self.error(path, message);
            None
        }
    }

    /// An integer in `range`. `50.0` counts as an integer (JSON does not
    /// distinguish); `50.5` and `"50"` do not.
    pub fn integer(
        &mut self,
        value: &Value,
        path: &FieldPath,
        range: RangeInclusive<i64>,
    ) -> Option<i64> {
        let Value::Number(number) = value else {
            self.type_error(path, Expected::Integer, value);
            return None;
        };
        let integer = if let Some(integer) = number.as_i64() {
            Some(integer)
        } else if number.is_u64() {
            None // above i64::MAX: out of any range we accept
        } else {
            match number.as_f64() {
                Some(float) if float.fract() != 0.0 => {
                    let message = self.words.not_whole();
                    self.error(path, message);
                    return None;
                }
                // Integral floats within i64 convert exactly enough for range checks.
                Some(float) if float.abs() < 9.2e18 => Some(float as i64),
                _ => None,
            }
        };
        match integer {
            Some(integer) if range.contains(&integer) => Some(integer),
            _ => {
                let message = self.words.integer_range(&range);
                self.error(path, message);
                None
            }
        }
    }

    /// A finite number in `range`.
    pub fn number(
        &mut self,
        value: &Value,
        path: &FieldPath,
        range: RangeInclusive<f64>,
    ) -> Option<f64> {
        let Value::Number(number) = value else {
            self.type_error(path, Expected::Number, value);
            return None;
        };
        match number.as_f64() {
            Some(float) if float.is_finite() && range.contains(&float) => Some(float),
            _ => {
                let message = self.words.number_range(&range);
                self.error(path, message);
                None
            }
        }
    }

    /// An RFC 3339 date-time string, as UTC; otherwise `message` at `path`
    /// (each surface words it its own way).
    pub fn date_time(
        &mut self,
        value: &Value,
        path: &FieldPath,
        message: &str,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let text = self.string(value, path, 1..=64)?;
        match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(time) => Some(time.with_timezone(&chrono::Utc)),
            Err(_) => {
                self.error(path, message);
                None
            }
        }
    }

    pub fn boolean(&mut self, value: &Value, path: &FieldPath) -> Option<bool> {
        match value {
            Value::Bool(flag) => Some(*flag),
            other => {
                self.type_error(path, Expected::Boolean, other);
                None
            }
        }
    }

    /// An array of `items` elements, each converted by `element`. Every
    /// element is visited, so errors in several elements are all reported.
    pub fn array<T>(
        &mut self,
        value: &Value,
        path: &FieldPath,
        items: RangeInclusive<usize>,
        element: impl FnMut(&mut Self, &Value, &FieldPath) -> Option<T>,
    ) -> Option<Vec<T>> {
        self.array_of(value, path, items, Expected::Array, element)
    }

    /// [`Reader::array`], naming what a value of another type should have
    /// been.
    pub fn array_of<T>(
        &mut self,
        value: &Value,
        path: &FieldPath,
        items: RangeInclusive<usize>,
        expected: Expected,
        mut element: impl FnMut(&mut Self, &Value, &FieldPath) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Value::Array(values) = value else {
            self.type_error(path, expected, value);
            return None;
        };
        if !items.contains(&values.len()) {
            let message = self.words.item_count(&items, values.len());
            self.error(path, message);
            return None;
        }
        let errors_before = self.errors.len();
        let converted: Vec<T> = values
            .iter()
            .enumerate()
            .filter_map(|(index, item)| element(self, item, &path.index(index)))
            .collect();
        (self.errors.len() == errors_before).then_some(converted)
    }

    /// Any JSON object, stored as given, within `limits`.
    pub fn free_object(
        &mut self,
        value: &Value,
        path: &FieldPath,
        limits: FreeFormLimits,
    ) -> Option<Map<String, Value>> {
        let Value::Object(map) = value else {
            self.type_error(path, Expected::Object, value);
            return None;
        };
        let errors_before = self.errors.len();
        self.check_free_form(value, path, limits, 1);
        (self.errors.len() == errors_before).then(|| map.clone())
    }

    fn check_free_form(
        &mut self,
        value: &Value,
        path: &FieldPath,
        limits: FreeFormLimits,
        depth: usize,
    ) {
        let entries = match value {
            Value::Object(map) => map.len(),
            Value::Array(items) => items.len(),
            Value::String(text) => {
                let length = text.chars().count();
                if length > limits.max_string_chars {
                    let message = self
                        .words
                        .text_length(&(0..=limits.max_string_chars), length);
                    self.error(path, message);
                }
                return;
            }
            _ => return,
        };
        if depth > limits.max_depth {
            let message = self.words.nested_too_deep(limits.max_depth);
            self.error(path, message);
            return;
        }
        match value {
            Value::Object(map) if entries > limits.max_entries => {
                let message = self.words.too_many_keys(limits.max_entries);
                self.error(path, message);
            }
            Value::Object(map) => {
                for (key, nested) in map {
                    self.check_free_form(nested, &path.key(key), limits, depth + 1);
                }
            }
            Value::Array(_) if entries > limits.max_entries => {
                let message = self.words.item_count(&(0..=limits.max_entries), entries);
                self.error(path, message);
            }
            Value::Array(items) => {
                for (index, nested) in items.iter().enumerate() {
                    self.check_free_form(nested, &path.index(index), limits, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// A partial update must name at least one of `updatable`; otherwise
    /// one error at the object's own path lists them. Returns whether the
    /// rule held.
    pub fn at_least_one_of(&mut self, fields: &Fields<'_, '_>, updatable: &[&str]) -> bool {
        if updatable.iter().any(|key| fields.contains(key)) {
            return true;
        }
        let message = self.words.needs_a_field(updatable);
        self.error(fields.path, message);
        false
    }

    /// A field that must be present (a `null` goes to `convert`).
    pub fn required<T>(
        &mut self,
        fields: &Fields<'_, '_>,
        key: &str,
        convert: impl FnOnce(&mut Self, &Value, &FieldPath) -> Option<T>,
    ) -> Option<T> {
        let path = fields.path_of(key);
        match fields.get(key) {
            None => {
                let message = self.words.required();
                self.error(&path, message);
                None
            }
            Some(value) => convert(self, value, &path),
        }
    }

    /// A field that may be absent (`Some(None)`) but not null.
    pub fn optional<T>(
        &mut self,
        fields: &Fields<'_, '_>,
        key: &str,
        convert: impl FnOnce(&mut Self, &Value, &FieldPath) -> Option<T>,
    ) -> Option<Option<T>> {
        match fields.get(key) {
            None => Some(None),
            Some(value) => convert(self, value, &fields.path_of(key)).map(Some),
        }
    }

    /// A field that may be absent or null (both meaning "no value").
    pub fn nullable<T>(
        &mut self,
        fields: &Fields<'_, '_>,
        key: &str,
        convert: impl FnOnce(&mut Self, &Value, &FieldPath) -> Option<T>,
    ) -> Option<Option<T>> {
        match fields.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(value) => convert(self, value, &fields.path_of(key)).map(Some),
        }
    }
}

/// Lets range messages say "greater than or equal to" when a range is
/// open-ended.
trait Bounded {
    fn is_min(&self) -> bool;
    fn is_max(&self) -> bool;
}

impl Bounded for i64 {
    fn is_min(&self) -> bool {
        *self == i64::MIN
    }
    fn is_max(&self) -> bool {
        *self == i64::MAX
    }
}

impl Bounded for f64 {
    fn is_min(&self) -> bool {
        *self == f64::MIN
    }
    fn is_max(&self) -> bool {
        *self == f64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(result: Result<(), DomainError>) -> Vec<(String, String)> {
        match result {
            Err(DomainError::Invalid(errors)) => errors
                .into_iter()
                .map(|error| (error.path.to_string(), error.message))
                .collect(),
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    #[test]
    fn collects_every_error_not_only_the_first() {
        let body = json!({"name": 5, "count": "7", "tags": ["a", 3, "b", false], "extra": 1});
        let root = FieldPath::root();
        let mut reader = Reader::new();
        let fields = reader
            .object(&body, &root, &["name", "count", "tags"])
            .expect("an object");
        reader.required(&fields, "name", |r, v, p| r.string(v, p, 1..=10));
        reader.required(&fields, "count", |r, v, p| r.integer(v, p, 0..=10));
        reader.required(&fields, "tags", |r, v, p| {
            r.array(v, p, 0..=10, |r, v, p| r.string(v, p, 0..=5))
        });
        reader.required(&fields, "missing", |r, v, p| r.boolean(v, p));
        assert_eq!(
            messages(reader.finish(())),
            vec![
                ("extra".into(), "Unrecognized key: \"extra\"".into()),
                ("name".into(), "Expected string, received number".into()),
                ("count".into(), "Expected number, received string".into()),
                ("tags[1]".into(), "Expected string, received number".into()),
                ("tags[3]".into(), "Expected string, received boolean".into()),
                ("missing".into(), "Required".into()),
            ]
        );
    }

    #[test]
    fn integers_reject_fractions_and_respect_ranges() {
        let root = FieldPath::root();
        let mut reader = Reader::new();
        assert_eq!(reader.integer(&json!(50), &root, 1..=100), Some(50));
        assert_eq!(reader.integer(&json!(50.0), &root, 1..=100), Some(50));
        assert_eq!(reader.integer(&json!(50.5), &root, 1..=100), None);
        assert_eq!(reader.integer(&json!(0), &root, 1..=100), None);
        assert_eq!(reader.integer(&json!(u64::MAX), &root, 1..=100), None);
        assert_eq!(reader.integer(&json!(1e300), &root, 1..=100), None);
        assert_eq!(reader.integer(&json!(5), &root, 0..=i64::MAX), Some(5));
        assert_eq!(
            messages(reader.finish(())),
            vec![
                ("(body)".into(), "Expected integer, received float".into()),
                ("(body)".into(), "Number must be between 1 and 100".into()),
                ("(body)".into(), "Number must be between 1 and 100".into()),
                ("(body)".into(), "Number must be between 1 and 100".into()),
            ]
        );
    }

    #[test]
    fn strings_count_characters_not_bytes() {
        let root = FieldPath::root();
        let mut reader = Reader::new();
        assert_eq!(
            reader.string(&json!("ééé"), &root, 0..=3),
            Some("ééé".into())
        );
        assert_eq!(reader.string(&json!("éééé"), &root, 0..=3), None);
        assert_eq!(reader.string(&json!(""), &root, 1..=3), None);
        assert_eq!(
            messages(reader.finish(())),
            vec![
                (
                    "(body)".into(),
                    "String must contain at most 3 character(s)".into()
                ),
                ("(body)".into(), "String must not be empty".into()),
            ]
        );
    }

    #[test]
    fn fields_distinguish_absent_null_and_value() {
        let body = json!({"a": null, "b": "x", "c": null});
        let root = FieldPath::root();
        let mut reader = Reader::new();
        let fields = reader
            .object(&body, &root, &["a", "b", "c"])
            .expect("object");
        let text = crate::core::fields::Text(0..=10);
        assert_eq!(
            reader.nullable_field(&fields, "a", &text, false),
            Patch::Null
        );
        assert_eq!(
            reader.nullable_field(&fields, "b", &text, false),
            Patch::Value("x".to_owned())
        );
        assert_eq!(
            reader.nullable_field(&fields, "z", &text, false),
            Patch::Absent
        );
        assert_eq!(reader.value_field(&fields, "c", &text, false), None);
        assert_eq!(reader.value_field(&fields, "z", &text, true), None);
        assert_eq!(
            messages(reader.finish(())),
            vec![
                ("c".into(), "Expected string, received null".into()),
                ("z".into(), "Required".into()),
            ]
        );
    }

    struct LastWords;

    impl Words for LastWords {
        fn required(&self) -> String {
            "must not be null".into()
        }
        fn required_last(&self) -> bool {
            true
        }
        fn read_only(&self, key: &str) -> Option<String> {
            Some(format!("{key} is read-only"))
        }
        fn unknown_keys_first(&self) -> bool {
            true
        }
    }

    #[test]
    fn surfaces_choose_the_words_and_where_missing_fields_go() {
        let body = json!({"id": 1, "x": 2, "b": 5});
        let root = FieldPath::root();
        let mut reader = Reader::speaking(&LastWords);
        let fields = reader
            .record_body(&body, &root, &["a", "b"], &["id"], false)
            .expect("object");
        let text = crate::core::fields::Text(0..=10);
        reader.value_field(&fields, "a", &text, true);
        reader.value_field(&fields, "b", &text, true);
        assert_eq!(
            messages(reader.finish(())),
            vec![
                ("x".into(), "Unrecognized key: \"x\"".into()),
                ("id".into(), "id is read-only".into()),
                ("b".into(), "Expected string, received number".into()),
                ("a".into(), "must not be null".into()),
            ]
        );
    }

    #[test]
    fn free_objects_are_bounded() {
        let root = FieldPath::root();
        let limits = FreeFormLimits {
            max_depth: 2,
            max_entries: 2,
            max_string_chars: 3,
        };
        let mut reader = Reader::new();
        assert!(
            reader
                .free_object(&json!({"a": {"b": 1}}), &root, limits)
                .is_some()
        );
        assert!(
            reader
                .free_object(&json!({"a": {"b": {"c": 1}}}), &root, limits)
                .is_none()
        );
        assert!(
            reader
                .free_object(&json!({"a": [1, 2, 3]}), &root, limits)
                .is_none()
        );
        assert!(
            reader
                .free_object(&json!({"a": "long"}), &root, limits)
                .is_none()
        );
        assert!(reader.free_object(&json!([1]), &root, limits).is_none());
        assert_eq!(
            messages(reader.finish(())),
            vec![
                ("a.b".into(), "Nesting deeper than 2 levels".into()),
                ("a".into(), "Array must contain at most 2 element(s)".into()),
                (
                    "a".into(),
                    "String must contain at most 3 character(s)".into()
                ),
                ("(body)".into(), "Expected object, received array".into()),
            ]
        );
    }

    #[test]
    fn enum_values_list_the_allowed_options() {
        let root = FieldPath::root();
        let mut reader = Reader::new();
        assert_eq!(
            reader.one_of(&json!("b"), &root, &["a", "b"]),
            Some("b".into())
        );
        assert_eq!(reader.one_of(&json!("c"), &root, &["a", "b"]), None);
        assert_eq!(
            messages(reader.finish(())),
            vec![(
                "(body)".into(),
                "Invalid enum value. Expected 'a' | 'b', received 'c'".into()
            )]
        );
    }

    #[test]
    fn a_patch_must_name_an_updatable_field() {
        let mut reader = Reader::new();
        let root = FieldPath::root();
        let body = serde_json::json!({"id": "1"});
        let fields = reader
            .object(&body, &root, &["id", "a", "b"])
            .expect("object");
        assert!(!reader.at_least_one_of(&fields, &["a", "b"]));
        assert_eq!(
            reader.finish(()),
            Err(DomainError::invalid(
                FieldPath::root(),
                "At least one of the updatable fields must be sent: a, b"
            ))
        );
        let mut reader = Reader::new();
        let body = serde_json::json!({"b": null});
        let fields = reader.object(&body, &root, &["a", "b"]).expect("object");
        assert!(reader.at_least_one_of(&fields, &["a", "b"]));
    }

    #[test]
    fn strict_json_refuses_duplicate_keys_and_trailing_data() {
        assert_eq!(
            parse_json_strictly(br#"{"a": {"b": 1, "c": [1.5, null, "x"]}}"#),
            Ok(json!({"a": {"b": 1, "c": [1.5, null, "x"]}}))
        );
        let duplicate = parse_json_strictly(br#"{"a": 1, "a": 2}"#).expect_err("a duplicate key");
        assert!(duplicate.contains("duplicate key \"a\""), "{duplicate}");
        assert!(parse_json_strictly(br#"{"a": {"b": 1, "b": 1}}"#).is_err());
        assert!(parse_json_strictly(b"{} {}").is_err());
        assert!(parse_json_strictly(b"1e400").is_err());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse_json_strictly(deep.as_bytes()).is_err());
    }
}
