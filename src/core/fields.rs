//! Record kinds declared field by field. A record type is a plain struct
//! whose fields carry `#[field(...)]` attributes, and `#[derive(Record)]`
//! (the `clientele-macros` crate) turns that one declaration into
//! everything a field needs elsewhere: its patch type, how a PATCH applies
//! it, how a body is read into it (every error with its path), its shape in
//! the OpenAPI document, and how a view shows it. This module is the
//! runtime those generated pieces call:
//!
//! - [`Check`]: a rule a value must satisfy, with the [`Shape`] it states in
//!   the document; [`Text`], [`Integer`], [`List`], … and each kind's own.
//! - [`Dialect`]: what a surface decides for every kind it serves (its
//!   [`Words`], the wire names and format of a record's id and times).
//! - [`Declared`] (generated) and [`Rules`] (written by hand, for what
//!   involves several fields of one record).
//! - [`View`]: a record as a surface shows it, serialised straight from the
//!   stored value.
//!
//! The attributes: `check = EXPR` (a [`Check`] whose value is the field's
//! type, or the `T` of an `Option<T>`), `required` (a create must send it),
//! `default = EXPR` (what a create that omits it gets; else
//! `Default::default()`), `nullable` (a non-`Option` field that `null`
//! resets to its default; `Option` fields are always nullable),
//! `nullable_on_create`, `merge` (RFC 7396, for maps), `apply = PATH` (a
//! function `fn(&mut Record, patch value)` for a field whose change touches
//! others), `read_only` (set by the server: refused in bodies, shown in
//! views), `example = EXPR`. A field's doc comment is its description in
//! the document. At the struct: `#[record(id_after = FIELD, times_after =
//! FIELD)]` place the surface's id and times among the fields of a view
//! (default: id first, times last), and `#[record(patch_needs_a_field)]`
//! refuses a PATCH that names no writable field.

use std::marker::PhantomData;
use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::error::{DomainError, FieldError, FieldPath};
use super::input::{Fields, FreeFormLimits, Reader, Words, ZodWords};
use super::records::Record;
use super::shape::{self, Shape};

pub use clientele_macros::Record;

/// Whether a body creates a record or patches one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Patch,
}

/// A rule a field's value must satisfy, and the shape it states.
pub trait Check {
    /// What a valid value becomes.
    type Value;

    /// Reads `value` (which may be `null`: a rule reports that as the type
    /// error it is, since only fields that may be cleared accept `null`, and
    /// they never pass it here). Returns `None` after recording errors.
    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Self::Value>;

    /// What the rule accepts, for the document.
    fn shape(&self) -> Shape;

    /// What views show of a value this rule accepted; the same shape
    /// unless a nested value has a component of its own in responses.
    fn view_shape(&self) -> Shape {
        self.shape()
    }
}

/// What a surface decides for every record kind it serves.
pub trait Dialect: 'static {
    /// How the surface words reader errors.
    const WORDS: &'static dyn Words = &ZodWords;
    /// The wire name of a record's id in views (a body may not set it).
    const ID_KEY: &'static str;
    /// The wire names of a record's creation and last-update times.
    const TIME_KEYS: [&'static str; 2];

    /// Writes a time as the surface does.
    fn serialize_time<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error>;

    /// The shape of the id in views.
    fn id_shape() -> Shape;

    /// The shape of a time in views.
    fn time_shape() -> Shape;
}

/// What `#[derive(Record)]` generates for a record type.
pub trait Declared: Sized + Send + Sync + 'static {
    /// A partial update: one field per writable field.
    type Patch: Send + 'static;

    /// The writable fields' wire names, in declaration order.
    const WRITABLE: &'static [&'static str];

    /// Reads a PATCH body.
    fn read_patch<D: Dialect>(body: &Value) -> Result<Self::Patch, DomainError>;

    /// Reads a create body into a new record.
    fn read_new<D: Dialect>(body: &Value) -> Result<Self, DomainError>;

    /// Applies a patch read by [`Declared::read_patch`] (its `apply`).
    fn apply_patch(patch: Self::Patch, target: &mut Self) -> Result<(), DomainError>;

    /// The shape of a create or PATCH body.
    fn request_shape(mode: Mode) -> Shape;

    /// The shape of a view of this record on surface `D`.
    fn view_shape<D: Dialect>() -> Shape;

    /// The keys a body may not set, in the order views show them.
    fn read_only_keys<D: Dialect>() -> Vec<&'static str>;

    /// Writes the view's entries into `map`.
    fn write_view<D: Dialect, M: SerializeMap>(
        record: &Record<Self>,
        map: &mut M,
    ) -> Result<(), M::Error>;
}

/// The rules of a record kind that involve more than one field, written by
/// hand beside its declaration; each has a default that does nothing.
pub trait Rules: Declared {
    /// Runs after the fields of a body are read, before it is applied:
    /// rules about which fields a body names together.
    fn after_read(
        _mode: Mode,
        _fields: &Fields<'_, '_>,
        _patch: &mut Self::Patch,
        _reader: &mut Reader,
    ) {
    }

    /// Runs after a create or patch has been applied: normalising (sets
    /// keep their first occurrence) and checking the whole record.
    fn after_apply(&mut self, _mode: Mode) -> Result<(), Vec<FieldError>> {
        Ok(())
    }

    /// Adds to a body's shape what the fields alone do not state.
    fn request_shape_extra(_mode: Mode, shape: Shape) -> Shape {
        shape
    }
}

/// A record as surface `D` shows it.
pub struct View<'a, T, D> {
    record: &'a Record<T>,
    dialect: PhantomData<D>,
}

impl<'a, T, D> View<'a, T, D> {
    pub fn of(record: &'a Record<T>) -> Self {
        Self {
            record,
            dialect: PhantomData,
        }
    }
}

impl<T: Declared, D: Dialect> Serialize for View<'_, T, D> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        T::write_view::<D, _>(self.record, &mut map)?;
        map.end()
    }
}

/// Writes the record's id as surface `D` names it (generated views call it).
pub fn write_id<D: Dialect, M: SerializeMap>(id: &str, map: &mut M) -> Result<(), M::Error> {
    map.serialize_entry(D::ID_KEY, id)
}

/// Writes the record's creation and update times as surface `D` does.
pub fn write_times<D: Dialect, M: SerializeMap, T>(
    record: &Record<T>,
    map: &mut M,
) -> Result<(), M::Error> {
    map.serialize_entry(D::TIME_KEYS[0], &Time::<D>::of(&record.created_at))?;
    map.serialize_entry(D::TIME_KEYS[1], &Time::<D>::of(&record.updated_at))
}

/// A field's value as surface `D` shows it.
pub struct ViewOf<'a, D, T: ?Sized> {
    value: &'a T,
    dialect: PhantomData<D>,
}

impl<'a, D, T: ?Sized> ViewOf<'a, D, T> {
    pub fn of(value: &'a T) -> Self {
        Self {
            value,
            dialect: PhantomData,
        }
    }
}

impl<D: Dialect, T: ViewValue + ?Sized> Serialize for ViewOf<'_, D, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize_view::<D, S>(serializer)
    }
}

struct Time<'a, D> {
    time: &'a DateTime<Utc>,
    dialect: PhantomData<D>,
}

impl<'a, D> Time<'a, D> {
    fn of(time: &'a DateTime<Utc>) -> Self {
        Self {
            time,
            dialect: PhantomData,
        }
    }
}

impl<D: Dialect> Serialize for Time<'_, D> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        D::serialize_time(self.time, serializer)
    }
}

/// How a stored value appears in a view. Most values appear as stored;
/// times take the surface's format, and a kind may show a nested value in
/// another shape than it stores it.
pub trait ViewValue {
    fn serialize_view<D: Dialect, S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;

    /// The value's shape in views, for fields that have no check (the
    /// read-only ones); writable fields state their check's shape.
    fn view_shape<D: Dialect>() -> Shape {
        Shape::default()
    }
}

/// Implements [`ViewValue`] for types whose view is their stored form.
#[macro_export]
macro_rules! view_as_stored {
    ($($type:ty => $shape:expr),* $(,)?) => {
        $(
            impl $crate::core::fields::ViewValue for $type {
                fn serialize_view<D: $crate::core::fields::Dialect, S: serde::Serializer>(
                    &self,
                    serializer: S,
                ) -> Result<S::Ok, S::Error> {
                    serde::Serialize::serialize(self, serializer)
                }

                fn view_shape<D: $crate::core::fields::Dialect>() -> $crate::core::shape::Shape {
                    $shape
                }
            }
        )*
    };
}

view_as_stored! {
    String => shape::string(),
    i64 => shape::int64(),
    i32 => Shape { format: Some("int32"), ..shape::Shape::of(&[shape::JsonType::Integer]) },
    f64 => shape::double(),
    bool => shape::boolean(),
    Map<String, Value> => shape::object(),
    NaiveDate => shape::string().format("date"),
}

impl ViewValue for DateTime<Utc> {
    fn serialize_view<D: Dialect, S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        D::serialize_time(self, serializer)
    }

    fn view_shape<D: Dialect>() -> Shape {
        D::time_shape()
    }
}

impl<T: ViewValue> ViewValue for Option<T> {
    fn serialize_view<D: Dialect, S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(value) => value.serialize_view::<D, S>(serializer),
            None => serializer.serialize_none(),
        }
    }

    fn view_shape<D: Dialect>() -> Shape {
        T::view_shape::<D>().or_null()
    }
}

impl<T: ViewValue> ViewValue for Vec<T> {
    fn serialize_view<D: Dialect, S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(ViewOf::<D, T>::of))
    }

    fn view_shape<D: Dialect>() -> Shape {
        shape::array(T::view_shape::<D>(), 0..=usize::MAX)
    }
}

// ---- the rules every kind uses ---------------------------------------------

/// A string of `chars` characters.
#[derive(Debug, Clone)]
pub struct Text(pub RangeInclusive<usize>);

impl Check for Text {
    type Value = String;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
        reader.string(value, path, self.0.clone())
    }

    fn shape(&self) -> Shape {
        shape::text(self.0.clone())
    }
}

/// One of a fixed set of strings, kept as the string.
#[derive(Debug, Clone, Copy)]
pub struct OneOf(pub &'static [&'static str]);

impl Check for OneOf {
    type Value = String;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
        reader.one_of(value, path, self.0)
    }

    fn shape(&self) -> Shape {
        shape::one_of(self.0)
    }
}

/// A closed set of names, each standing for a value of an enum.
pub trait Choice: Copy + Sized + 'static {
    /// Every name, in the order the document lists them.
    const NAMES: &'static [&'static str];
    /// The document's component for the set, if it has one.
    const COMPONENT: Option<&'static str> = None;

    fn from_name(name: &str) -> Option<Self>;
}

/// One of the names of the enum `T`.
pub struct Choose<T>(PhantomData<T>);

impl<T> Choose<T> {
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T> Default for Choose<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Choice> Check for Choose<T> {
    type Value = T;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<T> {
        reader
            .one_of(value, path, T::NAMES)
            .and_then(|name| T::from_name(&name))
    }

    fn shape(&self) -> Shape {
        let names = shape::one_of(T::NAMES);
        match T::COMPONENT {
            Some(component) => names.named(component),
            None => names,
        }
    }
}

/// An integer in a range (`5.0` counts; `5.5` and `"5"` do not).
#[derive(Debug, Clone)]
pub struct Integer(pub RangeInclusive<i64>);

impl Check for Integer {
    type Value = i64;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<i64> {
        reader.integer(value, path, self.0.clone())
    }

    fn shape(&self) -> Shape {
        shape::integer(self.0.clone())
    }
}

/// An int32 in a range.
#[derive(Debug, Clone)]
pub struct Int32(pub RangeInclusive<i32>);

impl Check for Int32 {
    type Value = i32;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<i32> {
        let range = i64::from(*self.0.start())..=i64::from(*self.0.end());
        reader
            .integer(value, path, range)
            .and_then(|integer| i32::try_from(integer).ok())
    }

    fn shape(&self) -> Shape {
        shape::integer(i64::from(*self.0.start())..=i64::from(*self.0.end())).format("int32")
    }
}

/// A finite number in a range.
#[derive(Debug, Clone)]
pub struct Number(pub RangeInclusive<f64>);

impl Check for Number {
    type Value = f64;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<f64> {
        reader.number(value, path, self.0.clone())
    }

    fn shape(&self) -> Shape {
        shape::number(self.0.clone())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Boolean;

impl Check for Boolean {
    type Value = bool;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<bool> {
        reader.boolean(value, path)
    }

    fn shape(&self) -> Shape {
        shape::boolean()
    }
}

/// An array of `count` elements, each checked by the inner rule; errors
/// in several elements are all reported.
#[derive(Debug, Clone)]
pub struct List<C>(pub C, pub RangeInclusive<usize>);

impl<C: Check> Check for List<C> {
    type Value = Vec<C::Value>;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Self::Value> {
        reader.array(value, path, self.1.clone(), |reader, item, path| {
            self.0.read(reader, item, path)
        })
    }

    fn shape(&self) -> Shape {
        shape::array(self.0.shape(), self.1.clone())
    }

    fn view_shape(&self) -> Shape {
        shape::array(self.0.view_shape(), self.1.clone())
    }
}

/// Any JSON object within limits, stored as given; the document states
/// only the key count (see [`shape::free_object`]).
#[derive(Debug, Clone, Copy)]
pub struct FreeObject(pub FreeFormLimits);

impl Check for FreeObject {
    type Value = Map<String, Value>;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Self::Value> {
        reader.free_object(value, path, self.0)
    }

    fn shape(&self) -> Shape {
        shape::free_object(self.0)
    }
}

/// [`FreeObject`] for shallow limits, spelled out level by level in the
/// document (see [`shape::bounded_object`]).
#[derive(Debug, Clone, Copy)]
pub struct BoundedObject(pub FreeFormLimits);

impl Check for BoundedObject {
    type Value = Map<String, Value>;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Self::Value> {
        reader.free_object(value, path, self.0)
    }

    fn shape(&self) -> Shape {
        shape::bounded_object(self.0)
    }
}

/// Another rule's value, kept only if `accept` agrees; it returns the
/// message for a value it refuses. The shape is the inner rule's.
pub struct Refine<C, F>(pub C, pub F);

impl<C, F, T> Check for Refine<C, F>
where
    C: Check,
    F: Fn(C::Value) -> Result<T, String>,
{
    type Value = T;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<T> {
        let inner = self.0.read(reader, value, path)?;
        match (self.1)(inner) {
            Ok(accepted) => Some(accepted),
            Err(message) => {
                reader.error(path, message);
                None
            }
        }
    }

    fn shape(&self) -> Shape {
        self.0.shape()
    }
}

/// Applies a nullable patch value to a non-`Option` field: `null` resets
/// it to its default (an empty collection).
pub fn apply_or_default<T: Default>(patch: super::patch::Patch<T>, target: &mut T) {
    match patch {
        super::patch::Patch::Absent => {}
        super::patch::Patch::Null => *target = T::default(),
        super::patch::Patch::Value(value) => *target = value,
    }
}

/// Applies an RFC 7396 patch to a map field: `null` empties it, an object
/// merges key by key.
pub fn apply_merge(
    patch: super::patch::Patch<Map<String, Value>>,
    target: &mut Map<String, Value>,
) {
    match patch {
        super::patch::Patch::Absent => {}
        super::patch::Patch::Null => target.clear(),
        super::patch::Patch::Value(changes) => super::patch::merge_map(target, changes),
    }
}

/// The error a generated builder gives when a required value is missing
/// although the reader reported nothing: a bug, never the caller's fault.
pub fn missing_value(key: &str) -> DomainError {
    DomainError::Internal(format!("required field {key} was read but holds no value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_report_each_bad_element_and_refine_adds_its_message() {
        let even = Refine(Integer(0..=100), |n: i64| {
            if n % 2 == 0 {
                Ok(n)
            } else {
                Err("must be even".to_owned())
            }
        });
        let list = List(even, 0..=3);
        let mut reader = Reader::new();
        let root = FieldPath::root();
        assert_eq!(
            list.read(&mut reader, &json!([2, 4]), &root),
            Some(vec![2, 4])
        );
        assert_eq!(list.read(&mut reader, &json!([1, "x", 200]), &root), None);
        assert_eq!(list.read(&mut reader, &json!([2, 2, 2, 2]), &root), None);
        let messages: Vec<String> = match reader.finish(()) {
            Err(DomainError::Invalid(errors)) => errors
                .into_iter()
                .map(|error| format!("{}: {}", error.path, error.message))
                .collect(),
            other => panic!("expected errors, got {other:?}"),
        };
        assert_eq!(
            messages,
            vec![
                "[0]: must be even",
                "[1]: Expected number, received string",
                "[2]: Number must be between 0 and 100",
                "(body): Array must contain at most 3 element(s)",
            ]
        );
        assert_eq!(list.shape().max_items, Some(3));
    }
}
