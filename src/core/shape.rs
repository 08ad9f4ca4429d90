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

    /// One shape per JSON type of this one, each with only the keywords
    /// that apply to its type. A shape of at most one type is returned as is.
    fn split_types(self) -> Vec<Shape> {
        if self.types.len() <= 1 {
            return vec![self];
        }
        self.types
            .iter()
            .map(|&json_type| {
                let mut single = Shape {
                    types: vec![json_type],
                    description: self.description.clone(),
                    ..Shape::default()
                };
                match json_type {
                    JsonType::String => {
                        single.format = self.format;
                        single.min_length = self.min_length;
                        single.max_length = self.max_length;
                        single.pattern = self.pattern.clone();
                    }
                    JsonType::Integer | JsonType::Number => {
                        single.minimum = self.minimum;
                        single.maximum = self.maximum;
                    }
                    JsonType::Array => {
                        single.items = self.items.clone();
                        single.min_items = self.min_items;
                        single.max_items = self.max_items;
                    }
                    JsonType::Object => {
                        single.properties = self.properties.clone();
                        single.required = self.required.clone();
                        single.additional = self.additional.clone();
                        single.property_names = self.property_names.clone();
                        single.min_properties = self.min_properties;
                        single.max_properties = self.max_properties;
                    }
                    JsonType::Boolean | JsonType::Null => {}
                }
                single
            })
            .collect()
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

/// Any JSON object within `limits`. With the default limits its values are
/// [`free_value`]'s; with others only the key count is stated (they are the
/// object fields that use [`bounded_object`]).
pub fn free_object(limits: FreeFormLimits) -> Shape {
    let values = (limits == FreeFormLimits::DEFAULT).then(|| free_value(limits, 2));
    Shape {
        max_properties: Some(limits.max_entries),
        additional: values.map_or(Additional::Unstated, |values| {
            Additional::Of(Box::new(values))
        }),
        description: Some(format!(
            "Any JSON object: at most {} levels deep, {} entries per object or array, strings of at most {} characters",
            limits.max_depth, limits.max_entries, limits.max_string_chars
        )),
        ..Shape::of(&[JsonType::Object])
    }
}

/// Any JSON object within `limits`, every level stated (see
/// [`free_value`]).
pub fn bounded_object(limits: FreeFormLimits) -> Shape {
    Shape {
        max_properties: Some(limits.max_entries),
        additional: Additional::Of(Box::new(free_value(limits, 2))),
        ..Shape::of(&[JsonType::Object])
    }
}

/// Any JSON value at `level` of a free-form object within `limits` (the
/// object itself is level 1), with every nested string and key stated (the
/// document's request pass adds the no-U+0000 pattern to them).
///
/// A value states no type: its string keywords bind the strings, its
/// `items` the arrays, its `additionalProperties` the objects, and any type
/// is allowed. Not an `anyOf` of one branch per type, which says the same:
/// openapi-generator's Python models refuse every list of a union (`["CTO"]`
/// as a filter value was refused), and openapi-python-client drops a union
/// that refers to itself.
///
/// Shallow limits ([`bounded_object`]'s) are stated level by level, one
/// component per level (`FreeJsonLevel2Of4x50x1000` …), the last listing
/// only scalars, so the depth limit is exact as the readers count it (an
/// object or array down to `max_depth`, a scalar one level further). The
/// default limits, 16 levels deep, are one component that refers to itself
/// (`FreeJsonValue`) and the depth is in its description only: testers
/// inline references, and 16 levels each naming the next twice (`items`,
/// `additionalProperties`) grew to 2^15 copies, which kept Schemathesis
/// busy for over 15 minutes without a test case.
///
/// `items` is carried as an extra key (see `surfaces::schema`) and refers
/// to the component that `additionalProperties` holds, so passes over the
/// typed schema still reach it.
fn free_value(limits: FreeFormLimits, level: usize) -> Shape {
    let recursive = limits == FreeFormLimits::DEFAULT;
    let mut value = Shape {
        max_length: Some(limits.max_string_chars),
        ..Shape::default()
    };
    if !recursive && level > limits.max_depth {
        value.types = vec![
            JsonType::String,
            JsonType::Number,
            JsonType::Boolean,
            JsonType::Null,
        ];
    } else {
        let next = if recursive {
            reference(free_json_name(limits, level))
        } else {
            free_value(limits, level + 1)
        };
        value.items = Some(Box::new(reference(
            next.component
                .unwrap_or_else(|| free_json_name(limits, level + 1)),
        )));
        value.additional = Additional::Of(Box::new(next));
        value.max_items = Some(limits.max_entries);
        value.max_properties = Some(limits.max_entries);
    }
    let description = if recursive {
        format!(
            "Any JSON value within a free-form object: at most {} levels deep in all (the object is level 1), {} entries per object or array, strings of at most {} characters",
            limits.max_depth, limits.max_entries, limits.max_string_chars
        )
    } else {
        format!(
            "Any JSON value at level {level} of a free-form object (the object is level 1; at most {} levels, {} entries per object or array, strings of at most {} characters)",
            limits.max_depth, limits.max_entries, limits.max_string_chars
        )
    };
    value
        .describe(description)
        .named(free_json_name(limits, level))
}

/// The component name of [`free_value`] at `level` within `limits`:
/// `FreeJsonValue` for the default limits (one component for every level),
/// `FreeJsonLevel2Of4x50x1000` … (depth, entries, characters) for others.
/// Made once and kept for the process (component names are `'static`).
fn free_json_name(limits: FreeFormLimits, level: usize) -> &'static str {
    if limits == FreeFormLimits::DEFAULT {
        return "FreeJsonValue";
    }
    static NAMES: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<(FreeFormLimits, usize), &'static str>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    names.entry((limits, level)).or_insert_with(|| {
        let name = format!(
            "FreeJsonLevel{level}Of{}x{}x{}",
            limits.max_depth, limits.max_entries, limits.max_string_chars
        );
        Box::leak(name.into_boxed_str())
    })
}

/// A reference to the component `name`, whose shape is given elsewhere in
/// the same document (a renderer never defines a component from it).
pub fn reference(name: &'static str) -> Shape {
    Shape {
        component: Some(name),
        ..Shape::default()
    }
}

/// Whether this shape is only a [`reference`].
pub fn is_reference(shape: &Shape) -> bool {
    shape.component.is_some()
        && Shape {
            component: None,
            ..shape.clone()
        } == Shape::default()
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

/// A value of one of several JSON types, as an `anyOf` with one branch per
/// type and `null` last. A branch of several types is split into one per
/// type, each keeping only the keywords that apply to it (`maxLength` to the
/// string, `items` to the array, …).
///
/// Why not `oneOf` of multi-type branches, which says the same: code
/// generators model each branch as a class and match a value against all of
/// them. openapi-generator's TypeScript client did not compile from it, and
/// its Python client refused `null` ("multiple matches", since every
/// branch's generated model is optional). With single-typed branches both
/// generate and round-trip; the branches are disjoint by type, so `anyOf`
/// and `oneOf` accept the same values.
pub fn by_type(branches: Vec<Shape>) -> Shape {
    let mut split: Vec<Shape> = branches.into_iter().flat_map(Shape::split_types).collect();
    split.sort_by_key(|branch| branch.types.first() == Some(&JsonType::Null));
    split.dedup_by(|later, earlier| {
        later.types == [JsonType::Null] && earlier.types == [JsonType::Null]
    });
    any_of(split)
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
    fn by_type_gives_each_type_its_own_branch_and_null_last() {
        let shape = by_type(vec![
            Shape {
                max_length: Some(5),
                ..Shape::of(&[JsonType::String, JsonType::Null, JsonType::Number])
            },
            array(text(0..=5), 0..=3),
            Shape::of(&[JsonType::Null]),
        ]);
        let types: Vec<_> = shape
            .any_of
            .iter()
            .map(|branch| branch.types.clone())
            .collect();
        assert_eq!(
            types,
            [
                vec![JsonType::String],
                vec![JsonType::Number],
                vec![JsonType::Array],
                vec![JsonType::Null],
            ]
        );
        assert_eq!(shape.any_of[0].max_length, Some(5));
        assert_eq!(shape.any_of[1].max_length, None);
        assert_eq!(shape.any_of[2].max_items, Some(3));
    }

    /// Bounded free-form levels allow exactly the nesting the reader
    /// accepts.
    #[test]
    fn bounded_levels_end_where_the_reader_does() {
        use super::super::error::FieldPath;
        use super::super::input::Reader;
        let limits = crate::core::client::REGION_LIMITS;
        // How many objects deep (the free-form object being the first) the
        // shape lets a value nest, following `additionalProperties`.
        let mut deepest = 1;
        let mut level = match bounded_object(limits).additional {
            Additional::Of(values) => *values,
            other => panic!("the object states its values: {other:?}"),
        };
        loop {
            assert_eq!(level.max_length, Some(limits.max_string_chars));
            let Additional::Of(next) = &level.additional else {
                assert_eq!(level.items, None, "arrays end where objects do");
                break;
            };
            let items = level
                .items
                .as_ref()
                .expect("arrays nest as deep as objects");
            assert_eq!(items.component, next.component, "items name the next level");
            deepest += 1;
            level = (**next).clone();
        }
        assert_eq!(deepest, limits.max_depth);
        let nested = |objects: usize| {
            (1..objects).fold(
                serde_json::json!({ "k": "leaf" }),
                |inner, _| serde_json::json!({ "k": inner }),
            )
        };
        let accepts = |value: &Value| {
            Reader::new()
                .free_object(value, &FieldPath::root(), limits)
                .is_some()
        };
        assert!(accepts(&nested(deepest)));
        assert!(!accepts(&nested(deepest + 1)));
    }

    /// The default limits' values are one component that names itself for
    /// what it nests.
    #[test]
    fn default_free_values_refer_to_themselves() {
        let Additional::Of(value) = free_object(FreeFormLimits::DEFAULT).additional else {
            panic!("the default free object states its values");
        };
        assert_eq!(value.component, Some("FreeJsonValue"));
        assert_eq!(
            value.max_length,
            Some(FreeFormLimits::DEFAULT.max_string_chars)
        );
        let Additional::Of(nested) = &value.additional else {
            panic!("objects nest");
        };
        assert!(is_reference(nested) && nested.component == Some("FreeJsonValue"));
        let items = value.items.as_ref().expect("arrays nest");
        assert!(is_reference(items) && items.component == Some("FreeJsonValue"));
    }

    #[test]
    fn text_states_only_the_bounds_that_bind() {
        let shape = text(0..=usize::MAX);
        assert_eq!((shape.min_length, shape.max_length), (None, None));
        let shape = text(1..=9);
        assert_eq!((shape.min_length, shape.max_length), (Some(1), Some(9)));
    }
}
