//! What a JSON value may look like, as the OpenAPI document states it: a
//! small subset of JSON Schema that the core declares beside each rule it
//! checks, so the document and the validation come from one place. The
//! core only describes; the HTTP surfaces render a [`Shape`] as OpenAPI
//! (`crate::surfaces::schema`), and nothing here knows that format's types.
//!
//! The builders mirror the readers in [`super::fields`]: [`text`] is what a
//! [`super::fields::Text`] check accepts, [`integer`] what an
//! [`super::fields::Integer`] check accepts, and so on.

use std::ops::RangeInclusive;

use serde_json::Value;

use super::input::FreeFormLimits;

/// A JSON type, as JSON Schema's `type` keyword names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
    Null,
}

/// A numeric bound, kept as the kind of number it bounds (an int64 bound
/// must not turn into a float on the way to the document).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Integer(i64),
    Float(f64),
}

/// `additionalProperties` of an object shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Additional {
    /// Not stated: any other key is allowed.
    #[default]
    Unstated,
    /// No other key is allowed (`false`).
    Refused,
    /// Other keys hold values of this shape.
    Of(Box<Shape>),
}

/// A value's shape: the JSON Schema keywords the document uses, each
/// `None` or empty when not stated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    /// Empty for shapes made only of `oneOf`/`allOf`/`anyOf`.
    pub types: Vec<JsonType>,
    /// `date-time`, `date`, `email`, `uuid`, `int64`, `double`, `regex`, …
    pub format: Option<&'static str>,
    pub description: Option<String>,
    pub examples: Vec<Value>,
    pub enum_values: Option<Vec<Value>>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub pattern: Option<String>,
    pub minimum: Option<Bound>,
    pub maximum: Option<Bound>,
    pub items: Option<Box<Shape>>,
    pub min_items: Option<usize>,
    pub max_items: Option<usize>,
    /// Properties in declaration order (the document may sort them).
    pub properties: Vec<(String, Shape)>,
    pub required: Vec<String>,
    pub additional: Additional,
    pub property_names: Option<Box<Shape>>,
    pub min_properties: Option<usize>,
    pub max_properties: Option<usize>,
    pub one_of: Vec<Shape>,
    pub all_of: Vec<Shape>,
    pub any_of: Vec<Shape>,
    /// A component name: the document lists the shape once under this name
    /// and refers to it wherever it is used.
    pub component: Option<&'static str>,
}

impl Shape {
    /// A shape of the given JSON types.
    pub fn of(types: &[JsonType]) -> Self {
        Shape {
            types: types.to_vec(),
            ..Shape::default()
        }
    }

    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds `text` to the description, after what is there.
    pub fn describe_more(mut self, text: &str) -> Self {
        self.description = Some(match self.description.take() {
            Some(existing) if !existing.is_empty() => format!("{existing} {text}"),
            _ => text.to_owned(),
        });
        self
    }

    pub fn example(mut self, example: impl Into<Value>) -> Self {
        self.examples.push(example.into());
        self
    }

    pub fn format(mut self, format: &'static str) -> Self {
        self.format = Some(format);
        self
    }

    pub fn pattern(mut self, pattern: &str) -> Self {
        self.pattern = Some(pattern.to_owned());
        self
    }

    pub fn named(mut self, component: &'static str) -> Self {
        self.component = Some(component);
        self
    }

    /// Adds a property; `required` lists it among the object's required keys.
    pub fn property(mut self, name: &str, shape: Shape, required: bool) -> Self {
        if required {
            self.required.push(name.to_owned());
        }
        self.properties.push((name.to_owned(), shape));
        self
    }

    pub fn min_properties(mut self, count: usize) -> Self {
        self.min_properties = Some(count);
        self
    }

    /// The same shape, or `null`. An enumeration also lists `null`; a shape
    /// with no type of its own (a `oneOf`, a reference) becomes a `oneOf`
    /// of itself and `null`.
    pub fn or_null(mut self) -> Self {
        if self.types.is_empty() || self.component.is_some() {
            return Shape {
                one_of: vec![self, Shape::of(&[JsonType::Null])],
                ..Shape::default()
            };
        }
        if !self.types.contains(&JsonType::Null) {
            self.types.push(JsonType::Null);
            if let Some(values) = self.enum_values.as_mut() {
                values.push(Value::Null);
            }
        }
        self
    }

    /// Whether `null` is among the values this shape allows.
    pub fn allows_null(&self) -> bool {
        self.types.contains(&JsonType::Null)
            || self
                .one_of
                .iter()
                .any(|shape| shape.types == [JsonType::Null])
    }
}

/// A string of `chars` characters (code points, as JSON Schema counts).
pub fn text(chars: RangeInclusive<usize>) -> Shape {
    Shape {
        min_length: (*chars.start() > 0).then_some(*chars.start()),
        max_length: (*chars.end() < usize::MAX).then_some(*chars.end()),
        ..Shape::of(&[JsonType::String])
    }
}

/// Any string.
pub fn string() -> Shape {
    Shape::of(&[JsonType::String])
}

/// An int64 in `range`.
pub fn integer(range: RangeInclusive<i64>) -> Shape {
    Shape {
        format: Some("int64"),
        minimum: Some(Bound::Integer(*range.start())),
        maximum: Some(Bound::Integer(*range.end())),
        ..Shape::of(&[JsonType::Integer])
    }
}

/// An integer with no stated bounds, as the response views show counts.
pub fn int64() -> Shape {
    Shape {
        format: Some("int64"),
        ..Shape::of(&[JsonType::Integer])
    }
}

/// A finite number in `range`.
pub fn number(range: RangeInclusive<f64>) -> Shape {
    Shape {
        format: Some("double"),
        minimum: Some(Bound::Float(*range.start())),
        maximum: Some(Bound::Float(*range.end())),
        ..Shape::of(&[JsonType::Number])
    }
}

/// A number with no stated bounds.
pub fn double() -> Shape {
    Shape {
        format: Some("double"),
        ..Shape::of(&[JsonType::Number])
    }
}

pub fn boolean() -> Shape {
    Shape::of(&[JsonType::Boolean])
}

/// One of `values`, exactly as spelled.
pub fn one_of<S: AsRef<str>>(values: &[S]) -> Shape {
    Shape {
        enum_values: Some(
            values
                .iter()
                .map(|value| Value::from(value.as_ref()))
                .collect(),
        ),
        ..Shape::of(&[JsonType::String])
    }
}

/// An object with only the properties then listed.
pub fn closed_object() -> Shape {
    Shape {
        additional: Additional::Refused,
        ..Shape::of(&[JsonType::Object])
    }
}

/// An object whose properties are then listed, other keys not stated.
pub fn object() -> Shape {
    Shape::of(&[JsonType::Object])
}

/// Any JSON object within `limits` (only the key count is expressible in
/// JSON Schema; the description states the rest).
pub fn free_object(limits: FreeFormLimits) -> Shape {
    Shape {
        max_properties: Some(limits.max_entries),
        description: Some(format!(
            "Any JSON object: at most {} levels deep, {} entries per object or array, strings of at most {} characters",
            limits.max_depth, limits.max_entries, limits.max_string_chars
        )),
        ..Shape::of(&[JsonType::Object])
    }
}

/// Any JSON object within `limits`, with the limits spelled out level by
/// level so that generated data respects them too: a scalar may sit at any
/// depth, an object or array only down to `max_depth` (the object itself is
/// level 1), as the readers count. Only for shallow limits: the shape
/// doubles with each level.
pub fn bounded_object(limits: FreeFormLimits) -> Shape {
    Shape {
        max_properties: Some(limits.max_entries),
        additional: Additional::Of(Box::new(bounded_value(limits, 2))),
        ..Shape::of(&[JsonType::Object])
    }
}

fn bounded_value(limits: FreeFormLimits, depth: usize) -> Shape {
    let scalar = Shape {
        max_length: Some(limits.max_string_chars),
        ..Shape::of(&[
            JsonType::String,
            JsonType::Number,
            JsonType::Boolean,
            JsonType::Null,
        ])
    };
    if depth > limits.max_depth {
        return scalar;
    }
    let object = Shape {
        max_properties: Some(limits.max_entries),
        additional: Additional::Of(Box::new(bounded_value(limits, depth + 1))),
        ..Shape::of(&[JsonType::Object])
    };
    let array = Shape {
        items: Some(Box::new(bounded_value(limits, depth + 1))),
        max_items: Some(limits.max_entries),
        ..Shape::of(&[JsonType::Array])
    };
    any_one_of(vec![scalar, object, array])
}

/// An array of `items`, with a count in `count`.
pub fn array(items: Shape, count: RangeInclusive<usize>) -> Shape {
    Shape {
        items: Some(Box::new(items)),
        min_items: (*count.start() > 0).then_some(*count.start()),
        max_items: (*count.end() < usize::MAX).then_some(*count.end()),
        ..Shape::of(&[JsonType::Array])
    }
}

/// Exactly one of `shapes`.
pub fn any_one_of(shapes: Vec<Shape>) -> Shape {
    Shape {
        one_of: shapes,
        ..Shape::default()
    }
}

/// Every one of `shapes`.
pub fn all_of(shapes: Vec<Shape>) -> Shape {
    Shape {
        all_of: shapes,
        ..Shape::default()
    }
}

/// At least one of `shapes`.
pub fn any_of(shapes: Vec<Shape>) -> Shape {
    Shape {
        any_of: shapes,
        ..Shape::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn or_null_widens_the_type_or_wraps_a_reference() {
        let nullable = one_of(&["a"]).or_null();
        assert_eq!(nullable.types, vec![JsonType::String, JsonType::Null]);
        assert_eq!(
            nullable.enum_values,
            Some(vec![Value::from("a"), Value::Null])
        );
        assert!(nullable.allows_null());
        let wrapped = closed_object().named("Thing").or_null();
        assert_eq!(wrapped.one_of.len(), 2);
        assert!(wrapped.allows_null());
        assert!(!text(0..=3).allows_null());
    }

    #[test]
    fn text_states_only_the_bounds_that_bind() {
        let shape = text(0..=usize::MAX);
        assert_eq!((shape.min_length, shape.max_length), (None, None));
        let shape = text(1..=9);
        assert_eq!((shape.min_length, shape.max_length), (Some(1), Some(9)));
    }
}
