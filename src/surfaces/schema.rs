//! The OpenAPI side of the core's shapes: renders a
//! [`crate::core::shape::Shape`] as a utoipa schema. Request bodies and
//! views are read and written field by field from each kind's declaration
//! (see [`crate::core::fields`]), so their schemas come from the same
//! declaration rather than from Rust types; [`crate::described`] lets a
//! surface name such a schema in the document.

use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder,
    OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};

use crate::core::shape::{self, Additional, Bound, JsonType, Shape};

/// The components a rendered schema refers to, by name.
pub type Components = Vec<(String, RefOr<Schema>)>;

/// Renders `shape`, collecting the named shapes it contains into
/// `components` (each once) and referring to them.
pub fn render(shape: &Shape, components: &mut Components) -> RefOr<Schema> {
    if let Some(name) = shape.component {
        if !shape::is_reference(shape) && !components.iter().any(|(known, _)| known == name) {
            let unnamed = Shape {
                component: None,
                ..shape.clone()
            };
            // Reserve the name first, so a shape that contains itself ends.
            components.push((name.to_owned(), RefOr::T(Schema::default())));
            let rendered = render(&unnamed, components);
            if let Some(entry) = components.iter_mut().find(|(known, _)| known == name) {
                entry.1 = rendered;
            }
        }
        return reference(name);
    }
    RefOr::T(render_inline(shape, components))
}

/// Renders `shape` itself, even when it is named (for a component's own
/// definition).
pub fn render_inline(shape: &Shape, components: &mut Components) -> Schema {
    let many = |shapes: &[Shape], components: &mut Components| -> Vec<RefOr<Schema>> {
        shapes
            .iter()
            .map(|shape| render(shape, components))
            .collect()
    };
    if !shape.one_of.is_empty() {
        let mut builder = OneOfBuilder::new().description(shape.description.clone());
        for item in many(&shape.one_of, components) {
            builder = builder.item(item);
        }
        return builder.into();
    }
    if !shape.all_of.is_empty() {
        let mut builder = AllOfBuilder::new().description(shape.description.clone());
        for item in many(&shape.all_of, components) {
            builder = builder.item(item);
        }
        return builder.into();
    }
    if !shape.any_of.is_empty() {
        let mut builder = AnyOfBuilder::new().description(shape.description.clone());
        for item in many(&shape.any_of, components) {
            builder = builder.item(item);
        }
        return builder.into();
    }
    if let Some(items) = shape.items.as_ref().filter(|_| !shape.types.is_empty()) {
        let items = render(items, components);
        return ArrayBuilder::new()
            .schema_type(schema_type(&shape.types))
            .items(items)
            .description(shape.description.clone())
            .examples(shape.examples.clone())
            .min_items(shape.min_items)
            .max_items(shape.max_items)
            .into();
    }
    let mut object = ObjectBuilder::new()
        .schema_type(schema_type(&shape.types))
        .format(shape.format.map(format))
        .description(shape.description.clone())
        .examples(shape.examples.clone())
        .enum_values(shape.enum_values.clone())
        .min_length(shape.min_length)
        .max_length(shape.max_length)
        .pattern(shape.pattern.clone())
        .minimum(shape.minimum.map(number))
        .maximum(shape.maximum.map(number))
        .min_properties(shape.min_properties)
        .max_properties(shape.max_properties);
    for (name, property) in &shape.properties {
        object = object.property(name, render(property, components));
    }
    for name in &shape.required {
        object = object.required(name);
    }
    object = match &shape.additional {
        Additional::Unstated => object,
        Additional::Refused => {
            object.additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
        }
        Additional::Of(values) => {
            // Through `render`, so that named values become references
            // (a value that contains itself can only be stated so).
            object.additional_properties(Some(AdditionalProperties::RefOr(render(
                values, components,
            ))))
        }
    };
    if let Some(names) = &shape.property_names {
        object = object.property_names(Some(render_inline(names, components)));
    }
    // A shape of no one type that states arrays' keywords beside the
    // others' (a free-form level, `shape::free_value`): utoipa's object
    // schema has no `items`, its array schema no `pattern` or
    // `additionalProperties`, so the array keywords go in as extra keys,
    // which the document prints as they are. The items are a reference
    // that `additionalProperties` also holds, so passes over the typed
    // schema (the request pass) still reach what they name.
    if shape.types.is_empty()
        && let Some(items) = &shape.items
    {
        let mut extra = vec![(
            "items".to_owned(),
            serde_json::to_value(render(items, components)).unwrap_or_default(),
        )];
        extra.extend(
            shape
                .min_items
                .map(|count| ("minItems".to_owned(), count.into())),
        );
        extra.extend(
            shape
                .max_items
                .map(|count| ("maxItems".to_owned(), count.into())),
        );
        object = object.extensions(Some(extra.into_iter().collect()));
    }
    object.into()
}

fn schema_type(types: &[JsonType]) -> SchemaType {
    let convert = |json: &JsonType| match json {
        JsonType::String => Type::String,
        JsonType::Integer => Type::Integer,
        JsonType::Number => Type::Number,
        JsonType::Boolean => Type::Boolean,
        JsonType::Array => Type::Array,
        JsonType::Object => Type::Object,
        JsonType::Null => Type::Null,
    };
    match types {
        [] => SchemaType::AnyValue,
        [single] => SchemaType::Type(convert(single)),
        several => SchemaType::from_iter(several.iter().map(convert)),
    }
}

fn format(name: &'static str) -> SchemaFormat {
    SchemaFormat::KnownFormat(match name {
        "date-time" => KnownFormat::DateTime,
        "date" => KnownFormat::Date,
        "email" => KnownFormat::Email,
        "uuid" => KnownFormat::Uuid,
        "int32" => KnownFormat::Int32,
        "int64" => KnownFormat::Int64,
        "double" => KnownFormat::Double,
        other => return SchemaFormat::Custom(other.to_owned()),
    })
}

fn number(bound: Bound) -> utoipa::Number {
    match bound {
        Bound::Integer(integer) => utoipa::Number::from(integer),
        Bound::Float(float) => utoipa::Number::from(float),
    }
}

/// A reference to the component `name`.
pub fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// A shape with the description a surface gives the schema that holds it
/// (a request body's, a view's), as a document component.
pub fn component(shape: Shape, description: &str) -> (Schema, Components) {
    let mut components = Components::new();
    let shape = Shape {
        description: Some(description.to_owned()),
        component: None,
        ..shape
    };
    let schema = render_inline(&shape, &mut components);
    (schema, components)
}

/// Implements utoipa's schema traits for a unit struct that names a
/// declared shape in the document: `described!(IcpView, "An ICP as Lance
/// returns it.", Icp::view_shape::<Lance>())`.
#[macro_export]
macro_rules! described {
    ($(#[$meta:meta])* $name:ident, $description:expr, $shape:expr) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::surfaces::schema::component($shape, $description).0.into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn schemas(
                schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
            ) {
                for named in $crate::surfaces::schema::component($shape, $description).1 {
                    if !schemas.iter().any(|(known, _)| *known == named.0) {
                        schemas.push(named);
                    }
                }
            }
        }
    };
}
