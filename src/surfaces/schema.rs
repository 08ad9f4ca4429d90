//! Builders for the OpenAPI schemas of request bodies and parameters.
//!
//! Request bodies are read field by field (see [`crate::core::input`]), so
//! their schemas are not derived from Rust types: each surface builds them
//! here from the same constants its readers check, which keeps the document
//! and the validation from drifting apart. Every body schema is closed
//! (`additionalProperties: false`) because the readers refuse unknown keys.

use std::ops::RangeInclusive;

use serde_json::Value;
use utoipa::openapi::schema::{
    AdditionalProperties, Array, ArrayBuilder, KnownFormat, Object, ObjectBuilder, OneOfBuilder,
    Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};

use crate::core::input::FreeFormLimits;

/// A string of `chars` characters (code points, as JSON Schema counts).
pub fn text(chars: RangeInclusive<usize>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length((*chars.start() > 0).then_some(*chars.start()))
        .max_length((*chars.end() < usize::MAX).then_some(*chars.end()))
}

/// An int64 in `range`.
pub fn integer(range: RangeInclusive<i64>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(*range.start()))
        .maximum(Some(*range.end()))
}

/// A finite number in `range`.
pub fn number(range: RangeInclusive<f64>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .minimum(Some(*range.start()))
        .maximum(Some(*range.end()))
}

pub fn boolean() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Boolean)
}

/// One of `values`, exactly as spelled.
pub fn one_of<S: AsRef<str>>(values: &[S]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().map(|value| value.as_ref().to_owned())))
}

/// An object with only the properties the builder then lists.
pub fn closed_object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// Any JSON object within `limits` (only the key count is expressible in
/// JSON Schema; the description states the rest).
pub fn free_object(limits: FreeFormLimits) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(limits.max_entries))
        .description(Some(format!(
            "Any JSON object: at most {} levels deep, {} entries per object or array, strings of at most {} characters",
            limits.max_depth, limits.max_entries, limits.max_string_chars
        )))
}

/// Any JSON object within `limits`, with the limits spelled out level by
/// level so that generated data respects them too: a scalar may sit at any
/// depth, an object or array only down to `max_depth` (the object itself is
/// level 1), as the readers count. Only for shallow limits: the schema
/// doubles with each level.
pub fn bounded_object(limits: FreeFormLimits) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(limits.max_entries))
        .additional_properties(Some(bounded_value(limits, 2)))
}

fn bounded_value(limits: FreeFormLimits, depth: usize) -> Schema {
    let scalar = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::String,
            Type::Number,
            Type::Boolean,
            Type::Null,
        ]))
        .max_length(Some(limits.max_string_chars));
    if depth > limits.max_depth {
        return scalar.into();
    }
    let object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(limits.max_entries))
        .additional_properties(Some(bounded_value(limits, depth + 1)));
    let array = ArrayBuilder::new()
        .items(RefOr::T(bounded_value(limits, depth + 1)))
        .max_items(Some(limits.max_entries));
    OneOfBuilder::new()
        .item(scalar)
        .item(object)
        .item(array)
        .into()
}

/// An array of `items`, with a count in `count`.
pub fn array(items: impl Into<RefOr<Schema>>, count: RangeInclusive<usize>) -> ArrayBuilder {
    ArrayBuilder::new()
        .items(items.into())
        .min_items((*count.start() > 0).then_some(*count.start()))
        .max_items((*count.end() < usize::MAX).then_some(*count.end()))
}

/// `schema`, or `null`.
pub fn nullable(schema: ObjectBuilder) -> Object {
    let mut object = schema.build();
    object.schema_type = with_null(object.schema_type);
    if let Some(values) = object.enum_values.as_mut() {
        values.push(Value::Null);
    }
    object
}

/// An array, or `null`.
pub fn nullable_array(schema: ArrayBuilder) -> Array {
    let mut array = schema.build();
    array.schema_type = with_null(array.schema_type);
    array
}

fn with_null(schema_type: SchemaType) -> SchemaType {
    match schema_type {
        SchemaType::Type(single) => SchemaType::from_iter([single, Type::Null]),
        SchemaType::Array(mut types) => {
            types.push(Type::Null);
            SchemaType::Array(types)
        }
        SchemaType::AnyValue => SchemaType::AnyValue,
    }
}

/// A reference to the component `name`.
pub fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// The component `name`, or `null`.
pub fn nullable_reference(name: &str) -> Schema {
    OneOfBuilder::new()
        .item(reference(name))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}
