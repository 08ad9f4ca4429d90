//! Ocamba Hood records: contact profiles, the profile lists they belong to,
//! and suppressions (emails and numbers that unsubscribed and may not start
//! a new profile). This module owns every Hood rule — which fields a PATCH
//! may touch, how email and phone numbers are checked and normalised, how
//! `country_code` follows the phone number, how `custom_properties` merge
//! and how large they may grow — and the list query (filters, sort, page).
//! The Hood surface reads bodies and query strings into these types.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{DomainError, FieldError, FieldPath, RecordKind};
use super::fields::{Check, List, Mode, Record, Refine, Rules, Text};
use super::input::{Expected, Fields, Reader, json_type_name};
use super::patch::Patch;
use super::records::{Document, IdScheme, Record, WriteSession};
use super::shape::{self, Additional, JsonType, Shape};
use crate::store::query::{Column, Compare, Condition, Operand, RecordQuery};

pub const EMAIL_CHARS: std::ops::RangeInclusive<usize> = 3..=254;
/// Numeric-string ids: `organization_id`, list ids.
pub const NUMERIC_ID_CHARS: std::ops::RangeInclusive<usize> = 1..=19;
/// At most 100 custom properties *(vendor)*, counted after the merge.
pub const MAX_CUSTOM_PROPERTIES: usize = 100;
pub const CUSTOM_PROPERTY_KEY_CHARS: std::ops::RangeInclusive<usize> = 1..=100;
pub const CUSTOM_PROPERTY_VALUE_CHARS: usize = 1_000;
/// Hood ids look like `1000102`; numbering starts there.
pub const FIRST_ID: i64 = 1_000_000;

/// A contact profile. A PATCH may name the seven writable fields *(the
/// seed)*, at least one of them; the others are set by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(patch_needs_a_field)]
pub struct Profile {
    #[field(check = Email, example = "john.doe@example.com")]
    pub email: Option<String>,
    /// A valid number in E.164 form (the number must exist in its country's plan).
    #[field(check = Phone, value = PhoneNumber, apply = apply_phone, example = "+49658245684")]
    pub mobile_phone_number: Option<String>,
    /// ISO 3166 alpha-2 region, derived from `mobile_phone_number`.
    #[field(read_only)]
    pub country_code: Option<String>,
    #[field(check = Text(0..=255), example = "John Doe")]
    pub full_name: Option<String>,
    #[field(check = OrganizationId)]
    pub organization_id: Option<String>,
    /// Ids of existing profile lists.
    #[field(check = List(NumericId, 0..=100))]
    pub lists: Vec<String>,
    #[field(check = Text(0..=5_000))]
    pub comment: Option<String>,
    // Merged key by key; described by its check.
    #[field(check = CustomProperties, merge, nullable_on_create)]
    pub custom_properties: Map<String, Value>,
    #[field(read_only)]
    pub unsubscribed: bool,
    #[field(read_only)]
    pub unsubscribe_time: Option<DateTime<Utc>>,
}

/// A profile list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(patch_needs_a_field)]
pub struct ProfileList {
    #[field(check = Text(1..=255), required)]
    pub name: String,
    #[field(check = Text(0..=1_000))]
    pub description: Option<String>,
    /// `#rrggbb`.
    #[field(check = Color, example = "#33aaff")]
    pub color: Option<String>,
}

/// An unsubscribed email or phone number. Its id is [`suppression_key`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    pub profile_id: String,
}

#[async_trait]
impl Document for Profile {
    const KIND: RecordKind = RecordKind::HoodProfile;
    const ID_SCHEME: IdScheme = IdScheme::Sequence { start: FIRST_ID };

    async fn check_relations(
        &self,
        _id: &str,
        previous: Option<&Self>,
        session: &mut WriteSession,
    ) -> Result<(), DomainError> {
        let mut errors = Vec::new();
        if previous.is_none_or(|previous| previous.lists != self.lists) {
            for (index, list) in self.lists.iter().enumerate() {
                if session.get::<ProfileList>(list).await?.is_none() {
                    errors.push(FieldError {
                        path: FieldPath::root().key("lists").index(index),
                        message: format!("Profile list {list} does not exist"),
                    });
                }
            }
        }
        if previous.is_none() {
            for (field, contact) in [
                ("email", self.email.as_deref()),
                ("mobile_phone_number", self.mobile_phone_number.as_deref()),
            ] {
                let Some(contact) = contact else { continue };
                if session
                    .get::<Suppression>(&suppression_key(contact))
                    .await?
                    .is_some()
                {
                    errors.push(FieldError {
                        path: FieldPath::root().key(field),
                        message: format!(
                            "{contact} has unsubscribed and cannot be used for a new profile"
                        ),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(errors))
        }
    }
}

impl Document for ProfileList {
    const KIND: RecordKind = RecordKind::HoodProfileList;
    const ID_SCHEME: IdScheme = IdScheme::Sequence { start: FIRST_ID };
}

impl Document for Suppression {
    const KIND: RecordKind = RecordKind::HoodSuppression;
}

/// The suppression id of an email or E.164 number (emails compare without
/// case, so `John@X.com` and `john@x.com` are one address).
pub fn suppression_key(contact: &str) -> String {
    if contact.contains('@') {
        format!("email:{}", contact.to_lowercase())
    } else {
        format!("phone:{contact}")
    }
}

/// An email address as stored, or why it is not one.
pub fn normalize_email(text: &str) -> Result<String, String> {
    let count = text.chars().count();
    if !EMAIL_CHARS.contains(&count) || !email_address::EmailAddress::is_valid(text) {
        return Err("Must be a valid email address".to_owned());
    }
    Ok(text.to_owned())
}

/// A phone number in E.164 form with its region, or why it is not one.
/// Any valid number type passes (the seed's own `+49658245684` is a German
/// fixed-line number).
pub fn normalize_phone(text: &str) -> Result<(String, Option<String>), String> {
    const MESSAGE: &str = "Must be a valid phone number in E.164 format, e.g. +14155552671";
    if !text.starts_with('+') || text.len() > 16 {
        return Err(MESSAGE.to_owned());
    }
    let number = phonenumber::parse(None, text).map_err(|_| MESSAGE.to_owned())?;
    if !number.is_valid() {
        return Err(MESSAGE.to_owned());
    }
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    let region = number
        .country()
        .id()
        .map(|id| AsRef::<str>::as_ref(&id).to_owned());
    Ok((e164, region))
}

impl Profile {
    /// `lists` is a set: keep the first occurrence of each id.
    fn normalize(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.lists.retain(|list| seen.insert(list.clone()));
    }
}

/// A phone number as read from a body: E.164, and its region.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneNumber {
    pub e164: String,
    pub region: Option<String>,
}

/// The number and the region it belongs to change together.
fn apply_phone(profile: &mut Profile, patch: Patch<PhoneNumber>) {
    match patch {
        Patch::Absent => {}
        Patch::Null => {
            profile.mobile_phone_number = None;
            profile.country_code = None;
        }
        Patch::Value(number) => {
            profile.mobile_phone_number = Some(number.e164);
            profile.country_code = number.region;
        }
    }
}

impl Rules for Profile {
    /// A new profile needs a way to reach the contact, and at most the
    /// vendor's number of custom properties. (A PATCH is checked once
    /// applied, against what it leaves.)
    fn after_read(
        mode: Mode,
        fields: &Fields<'_, '_>,
        patch: &mut ProfilePatch,
        reader: &mut Reader,
    ) {
        if mode != Mode::Create {
            return;
        }
        let absent_or_null = |key: &str| fields.get(key).is_none_or(Value::is_null);
        if absent_or_null("email") && absent_or_null("mobile_phone_number") {
            reader.error(
                &fields.path_of("email"),
                "Required: a profile needs an email or a mobile_phone_number",
            );
        }
        if let Patch::Value(properties) = &patch.custom_properties {
            // Merged into an empty map, `null` entries add nothing.
            let kept = properties.values().filter(|value| !value.is_null()).count();
            if kept > MAX_CUSTOM_PROPERTIES {
                reader.error(
                    &fields.path_of("custom_properties"),
                    format!("A profile holds at most {MAX_CUSTOM_PROPERTIES} custom properties"),
                );
            }
        }
    }

    /// After a PATCH a way to reach the contact remains, and the merged
    /// `custom_properties` stay within bounds.
    fn after_apply(&mut self, mode: Mode) -> Result<(), Vec<FieldError>> {
        self.normalize();
        if mode == Mode::Create {
            return Ok(());
        }
        let mut errors = Vec::new();
        if self.email.is_none() && self.mobile_phone_number.is_none() {
            errors.push(FieldError {
                path: FieldPath::root().key("email"),
                message: "A profile needs an email or a mobile_phone_number; both would be empty"
                    .to_owned(),
            });
        }
        if self.custom_properties.len() > MAX_CUSTOM_PROPERTIES {
            errors.push(FieldError {
                path: FieldPath::root().key("custom_properties"),
                message: format!(
                    "A profile holds at most {MAX_CUSTOM_PROPERTIES} custom properties; this update would make {}",
                    self.custom_properties.len()
                ),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    // A new profile names an email or a number. The schema says so in its
    // description only: stated as `allOf` + `anyOf` (required email, or
    // required number), generators merged the branches into "both
    // required" (openapi-generator) and refused valid bodies.
}

impl Rules for ProfileList {}

// ---- the rules of Hood's values -------------------------------------------

/// An email address (as the `email_address` crate judges it).
pub struct Email;

impl Check for Email {
    type Value = String;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
        Refine(Text(0..=usize::MAX), |text: String| normalize_email(&text))
            .read(reader, value, path)
    }

    fn shape(&self) -> Shape {
        shape::text(EMAIL_CHARS).format("email")
    }
}

/// A phone number in E.164 form.
pub struct Phone;

impl Check for Phone {
    type Value = PhoneNumber;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<PhoneNumber> {
        Refine(Text(0..=usize::MAX), |text: String| {
            normalize_phone(&text).map(|(e164, region)| PhoneNumber { e164, region })
        })
        .read(reader, value, path)
    }

    fn shape(&self) -> Shape {
        shape::string().pattern(r"^\+[1-9][0-9]{1,14}$")
    }
}

/// A numeric string id (`organization_id`, list ids).
pub struct NumericId;

impl Check for NumericId {
    type Value = String;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
        Refine(Text(NUMERIC_ID_CHARS), |text: String| {
            if text.bytes().all(|byte| byte.is_ascii_digit()) {
                Ok(text)
            } else {
                Err("Must be a numeric string, e.g. \"1000\"".to_owned())
            }
        })
        .read(reader, value, path)
    }

    fn shape(&self) -> Shape {
        shape::text(NUMERIC_ID_CHARS)
            .pattern("^[0-9]+$")
            .example("1000")
    }
}

/// `organization_id`: a numeric string that list filters compare as a
/// number, so it must fit in an int64 (a larger one would compare as the
/// largest int64 on SQLite, and match filters it should not).
pub struct OrganizationId;

impl Check for OrganizationId {
    type Value = String;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
        Refine(NumericId, |text: String| match text.parse::<i64>() {
            Ok(_) => Ok(text),
            Err(_) => Err(format!(
                "Must be at most {} (organization ids compare as 64-bit numbers)",
                i64::MAX
            )),
        })
        .read(reader, value, path)
    }

    fn shape(&self) -> Shape {
        NumericId
            .shape()
            .pattern(&digits_at_most(&i64::MAX.to_string()))
            .describe(format!("A numeric string of at most {}", i64::MAX))
    }
}

/// A regular expression for the digit strings whose value is at most
/// `max` (itself digits), leading zeros allowed up to `max`'s length: what
/// `OrganizationId` accepts, stated in the schema so that a client (or a
/// property-based tester) can tell a valid id from its pattern alone.
fn digits_at_most(max: &str) -> String {
    let length = max.len();
    // Shorter strings are always smaller; one of `max`'s length is smaller
    // or equal exactly when it is so lexicographically: it shares a prefix
    // with `max`, then has a smaller digit (anything after), or is `max`.
    let mut branches = vec![format!("[0-9]{{1,{}}}", length - 1)];
    for (position, digit) in max.bytes().enumerate() {
        if digit > b'0' {
            let rest = length - position - 1;
            let smaller = if digit == b'1' {
                "0".to_owned()
            } else {
                format!("[0-{}]", char::from(digit - 1))
            };
            let tail = if rest == 0 {
                String::new()
            } else {
                format!("[0-9]{{{rest}}}")
            };
            branches.push(format!("{}{smaller}{tail}", &max[..position]));
        }
    }
    branches.push(max.to_owned());
    format!("^({})$", branches.join("|"))
}

/// A list's `#rrggbb` color, kept in lower case.
pub struct Color;

impl Check for Color {
    type Value = String;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
        Refine(Text(7..=7), |text: String| {
            let valid =
                text.starts_with('#') && text[1..].bytes().all(|byte| byte.is_ascii_hexdigit());
            if valid {
                Ok(text.to_ascii_lowercase())
            } else {
                Err("Must be a color like #33aaff".to_owned())
            }
        })
        .read(reader, value, path)
    }

    fn shape(&self) -> Shape {
        shape::string().pattern("^#[0-9A-Fa-f]{6}$")
    }
}

/// `custom_properties`: names and scalar values, `null` removing a key.
pub struct CustomProperties;

impl Check for CustomProperties {
    type Value = Map<String, Value>;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Self::Value> {
        let Value::Object(map) = value else {
            reader.type_error(path, Expected::Object, value);
            return None;
        };
        // A patch may remove as many keys as it adds, hence twice the bound.
        if map.len() > 2 * MAX_CUSTOM_PROPERTIES {
            let message = reader.words().too_many_keys(2 * MAX_CUSTOM_PROPERTIES);
            reader.error(path, message);
            return None;
        }
        let mut failed = false;
        for (key, item) in map {
            let item_path = path.key(key);
            if !CUSTOM_PROPERTY_KEY_CHARS.contains(&key.chars().count()) {
                reader.error(&item_path, "Property names have 1 to 100 characters");
                failed = true;
            }
            match item {
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
                Value::String(text) if text.chars().count() <= CUSTOM_PROPERTY_VALUE_CHARS => {}
                Value::String(text) => {
                    let message = reader
                        .words()
                        .text_length(&(0..=CUSTOM_PROPERTY_VALUE_CHARS), text.chars().count());
                    reader.error(&item_path, message);
                    failed = true;
                }
                other => {
                    reader.error(
                        &item_path,
                        format!(
                            "Expected string, number, boolean or null, received {}",
                            json_type_name(other)
                        ),
                    );
                    failed = true;
                }
            }
        }
        (!failed).then(|| map.clone())
    }

    fn shape(&self) -> Shape {
        let value = Shape {
            max_length: Some(CUSTOM_PROPERTY_VALUE_CHARS),
            ..Shape::of(&[
                JsonType::String,
                JsonType::Number,
                JsonType::Boolean,
                JsonType::Null,
            ])
        };
        Shape {
            additional: Additional::Of(Box::new(value)),
            property_names: Some(Box::new(shape::text(CUSTOM_PROPERTY_KEY_CHARS))),
            // The reader takes up to twice the bound in one body, since
            // `null` entries remove keys; the merged result is checked
            // against the bound.
            max_properties: Some(2 * MAX_CUSTOM_PROPERTIES),
            ..shape::object()
        }
        .describe(format!(
            "String (≤ {CUSTOM_PROPERTY_VALUE_CHARS} characters), number, boolean or null values; `null` removes a key. At most {MAX_CUSTOM_PROPERTIES} keys once merged into the stored ones."
        ))
    }

    fn view_shape(&self) -> Shape {
        shape::object().describe("At most 100 keys with scalar values.")
    }
}

/// Marks the profile unsubscribed and suppresses its email and number, in
/// one transaction. Unsubscribing twice is harmless.
pub async fn unsubscribe(
    session: &mut WriteSession,
    record: Record<Profile>,
) -> Result<Record<Profile>, DomainError> {
    let contacts: Vec<String> = [
        record.data.email.clone(),
        record.data.mobile_phone_number.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let profile_id = record.id.clone();
    let record = if record.data.unsubscribed {
        record
    } else {
        session
            .update(record, |profile| {
                profile.unsubscribed = true;
                profile.unsubscribe_time = Some(Utc::now());
                Ok(())
            })
            .await?
    };
    for contact in contacts {
        let key = suppression_key(&contact);
        if session.get::<Suppression>(&key).await?.is_none() {
            session
                .insert_with_id(
                    key,
                    Suppression {
                        profile_id: profile_id.clone(),
                    },
                )
                .await?;
        }
    }
    Ok(record)
}

// ---------------------------------------------------------------------------
// Listing: filters, sort and paging over profiles.

/// Fields a profile list query may filter and sort on.
pub const QUERYABLE_FIELDS: [&str; 10] = [
    "id",
    "email",
    "mobile_phone_number",
    "country_code",
    "full_name",
    "organization_id",
    "lists",
    "unsubscribed",
    "create_time",
    "update_time",
];

/// A comparison of a filter *(vendor list conventions)*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
}

impl FilterOp {
    pub const NAMES: [&'static str; 8] = ["eq", "neq", "gt", "gte", "lt", "lte", "in", "nin"];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "eq" => FilterOp::Eq,
            "neq" => FilterOp::Neq,
            "gt" => FilterOp::Gt,
            "gte" => FilterOp::Gte,
            "lt" => FilterOp::Lt,
            "lte" => FilterOp::Lte,
            "in" => FilterOp::In,
            "nin" => FilterOp::Nin,
            _ => return None,
        })
    }
}

/// One `field=[op:]value` filter; `in`/`nin` values are comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: String,
    pub op: FilterOp,
    pub values: Vec<String>,
}

/// A list query: filters (all must hold), sort keys (`-` for descending),
/// and a 1-based page of `size` items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileQuery {
    pub filters: Vec<Filter>,
    pub sort: Vec<(String, bool)>,
    pub page: usize,
    pub size: usize,
}

pub const DEFAULT_PAGE_SIZE: usize = 20;
/// How many values the filters of one list query may hold together (an
/// `in:` list counts each of its values).
pub const MAX_FILTER_VALUES: usize = 1_000;
pub const MAX_PAGE_SIZE: usize = 1_000;

/// How a queryable field is stored, for the database to compare it.
fn column(field: &str) -> Option<Column> {
    Some(match field {
        "id" => Column::NumericId,
        "email" => Column::Text("email"),
        "mobile_phone_number" => Column::Text("mobile_phone_number"),
        "country_code" => Column::Text("country_code"),
        "full_name" => Column::Text("full_name"),
        "organization_id" => Column::Number("organization_id"),
        "lists" => Column::Members("lists"),
        "unsubscribed" => Column::Bool("unsubscribed"),
        "create_time" => Column::CreatedAt,
        "update_time" => Column::UpdatedAt,
        _ => return None,
    })
}

/// A time operand: `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`, UTC, as Unix ms.
fn hood_time_millis(text: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
        })
        .map(|time| time.and_utc().timestamp_millis())
}

fn compare_of(op: FilterOp) -> Compare {
    match op {
        FilterOp::Eq => Compare::Eq,
        FilterOp::Neq => Compare::Neq,
        FilterOp::Gt => Compare::Gt,
        FilterOp::Gte => Compare::Gte,
        FilterOp::Lt => Compare::Lt,
        FilterOp::Lte => Compare::Lte,
        FilterOp::In => Compare::In,
        FilterOp::Nin => Compare::Nin,
    }
}

/// Turns a list query into the database query that runs it. Values that do
/// not fit their field (a non-number for `id`, a bad time) are 400s at the
/// parameter's name. Times have second resolution, as Hood writes them.
pub fn record_query(query: &ProfileQuery) -> Result<RecordQuery, DomainError> {
    let mut errors = Vec::new();
    let mut conditions = Vec::new();
    for filter in &query.filters {
        let path = FieldPath::root().key(&filter.field);
        let Some(column) = column(&filter.field) else {
            errors.push(FieldError {
                path,
                message: "Cannot filter on this field".to_owned(),
            });
            continue;
        };
        let mut operands = Vec::new();
        for value in &filter.values {
            let operand = match &column {
                Column::NumericId | Column::Number(_) => value.parse().ok().map(Operand::Integer),
                Column::Bool(_) => match value.as_str() {
                    "true" => Some(Operand::Bool(true)),
                    "false" => Some(Operand::Bool(false)),
                    _ => None,
                },
                Column::CreatedAt | Column::UpdatedAt => {
                    hood_time_millis(value).map(Operand::Integer)
                }
                // List ids are numeric strings.
                Column::Members(_) => (!value.is_empty()
                    && value.len() <= 19
                    && value.bytes().all(|byte| byte.is_ascii_digit()))
                .then(|| Operand::Text(value.clone())),
                Column::Text(_) => Some(Operand::Text(value.clone())),
            };
            match operand {
                Some(operand) => operands.push(operand),
                None => errors.push(FieldError {
                    path: path.clone(),
                    message: format!("\"{value}\" is not a valid value for {}", filter.field),
                }),
            }
        }
        if operands.len() != filter.values.len() {
            continue;
        }
        match (&column, filter.op) {
            (Column::CreatedAt | Column::UpdatedAt, op) => {
                let Some(Operand::Integer(second)) = operands.first().cloned() else {
                    continue;
                };
                let next = second + 1_000;
                let bounds: &[(Compare, i64)] = match op {
                    FilterOp::Eq => &[(Compare::Gte, second), (Compare::Lt, next)],
                    FilterOp::Gt => &[(Compare::Gte, next)],
                    FilterOp::Gte => &[(Compare::Gte, second)],
                    FilterOp::Lt => &[(Compare::Lt, second)],
                    FilterOp::Lte => &[(Compare::Lt, next)],
                    _ => {
                        errors.push(FieldError {
                            path,
                            message: "Times take eq, gt, gte, lt or lte".to_owned(),
                        });
                        continue;
                    }
                };
                for (compare, bound) in bounds {
                    conditions.push(Condition {
                        column: column.clone(),
                        compare: *compare,
                        operands: vec![Operand::Integer(*bound)],
                    });
                }
            }
            (Column::Members(_), FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte) => {
                errors.push(FieldError {
                    path,
                    message: "lists takes eq, neq, in or nin".to_owned(),
                });
            }
            (_, op) => conditions.push(Condition {
                column,
                compare: compare_of(op),
                operands,
            }),
        }
    }
    let order = query
        .sort
        .iter()
        .filter_map(|(field, descending)| column(field).map(|column| (column, *descending)))
        .collect();
    let record_query = RecordQuery {
        conditions,
        order,
        offset: (query.page.saturating_sub(1) as u64).saturating_mul(query.size as u64),
        limit: query.size as u64,
    };
    if errors.is_empty() {
        Ok(record_query)
    } else {
        Err(DomainError::Invalid(errors))
    }
}

/// Hood's timestamp format, `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn hood_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

impl crate::core::import::Importable for Profile {
    /// Profiles are upserted by their contact details *(ours)*.
    const MATCH_FIELDS: &'static [&'static str] = &["email", "mobile_phone_number"];

    fn match_value(field: &str, value: &serde_json::Value) -> Result<String, String> {
        let text = value.as_str().ok_or("must be a string")?;
        match field {
            "mobile_phone_number" => normalize_phone(text).map(|(e164, _)| e164),
            _ => normalize_email(text),
        }
    }
}

impl crate::core::import::Importable for ProfileList {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_organization_id_pattern_accepts_exactly_what_fits_in_an_int64() {
        let pattern = regex::Regex::new(&digits_at_most(&i64::MAX.to_string()))
            .expect("the pattern compiles");
        let fits = |text: &str| text.len() <= 19 && text.parse::<i64>().is_ok();
        let mut cases: Vec<String> = [
            "0",
            "7",
            "1000",
            "999999999999999999",
            "9223372036854775807",
            "9223372036854775808",
            "9223372036854775799",
            "9223372036854775810",
            "9223372036854775900",
            "9323472094588923833",
            "9999999999999999999",
            "0000000000000000001",
            "10000000000000000000",
            "",
            "12a",
        ]
        .iter()
        .map(|case| (*case).to_owned())
        .collect();
        // Every number one step either side of each digit of the maximum.
        let max = i64::MAX.to_string();
        for position in 0..max.len() {
            for digit in b'0'..=b'9' {
                let mut bytes = max.clone().into_bytes();
                bytes[position] = digit;
                cases.push(String::from_utf8(bytes).expect("digits"));
            }
        }
        for case in cases {
            assert_eq!(pattern.is_match(&case), fits(&case), "{case:?}");
        }
    }

    #[test]
    fn the_seeds_german_number_is_valid_and_gives_its_country() {
        assert_eq!(
            normalize_phone("+49658245684"),
            Ok(("+49658245684".to_owned(), Some("DE".to_owned())))
        );
        assert!(normalize_phone("49658245684").is_err());
        assert!(normalize_phone("+1 not a number").is_err());
        assert!(normalize_phone("+999123").is_err());
    }

    #[test]
    fn the_seeds_hidden_email_is_not_an_address() {
        assert!(normalize_email("[email protected]").is_err());
        assert_eq!(
            normalize_email("john.doe@example.com"),
            Ok("john.doe@example.com".to_owned())
        );
    }

    #[test]
    fn suppression_keys_ignore_email_case() {
        assert_eq!(suppression_key("John@X.com"), suppression_key("john@x.com"));
        assert_eq!(suppression_key("+49658245684"), "phone:+49658245684");
    }

    fn profile() -> Profile {
        Profile::build(ProfilePatch {
            email: Patch::Value("a@example.com".into()),
            lists: Some(vec!["7".into(), "7".into()]),
            ..ProfilePatch::default()
        })
        .expect("a valid profile")
    }

    #[test]
    fn a_phone_number_brings_its_country_and_lists_are_a_set() {
        let mut profile = profile();
        assert_eq!(profile.lists, vec!["7".to_owned()]);
        ProfilePatch {
            mobile_phone_number: Patch::Value(PhoneNumber {
                e164: "+49658245684".into(),
                region: Some("DE".into()),
            }),
            ..ProfilePatch::default()
        }
        .apply(&mut profile)
        .expect("valid");
        assert_eq!(profile.country_code.as_deref(), Some("DE"));
        ProfilePatch {
            mobile_phone_number: Patch::Null,
            ..ProfilePatch::default()
        }
        .apply(&mut profile)
        .expect("valid");
        assert_eq!(profile.country_code, None);
    }

    #[test]
    fn custom_properties_merge_and_stay_bounded() {
        let mut profile = profile();
        let mut first = Map::new();
        first.insert("clicker".into(), Value::from("1"));
        first.insert("plan".into(), Value::from("pro"));
        ProfilePatch {
            custom_properties: Patch::Value(first),
            ..ProfilePatch::default()
        }
        .apply(&mut profile)
        .expect("valid");
        let mut second = Map::new();
        second.insert("plan".into(), Value::Null);
        ProfilePatch {
            custom_properties: Patch::Value(second),
            ..ProfilePatch::default()
        }
        .apply(&mut profile)
        .expect("valid");
        assert_eq!(
            Value::Object(profile.custom_properties.clone()),
            serde_json::json!({"clicker": "1"})
        );

        let many: Map<String, Value> = (0..MAX_CUSTOM_PROPERTIES)
            .map(|index| (format!("k{index}"), Value::from(index)))
            .collect();
        let result = ProfilePatch {
            custom_properties: Patch::Value(many),
            ..ProfilePatch::default()
        }
        .apply(&mut profile);
        assert!(matches!(result, Err(DomainError::Invalid(_))), "101 keys");
    }

    #[test]
    fn clearing_both_contacts_is_refused() {
        let mut profile = profile();
        let result = ProfilePatch {
            email: Patch::Null,
            ..ProfilePatch::default()
        }
        .apply(&mut profile);
        assert!(matches!(result, Err(DomainError::Invalid(_))));
    }

    #[test]
    fn list_queries_become_typed_database_conditions() {
        let query = ProfileQuery {
            filters: vec![
                Filter {
                    field: "create_time".into(),
                    op: FilterOp::Eq,
                    values: vec!["2024-01-25 09:15:00".into()],
                },
                Filter {
                    field: "id".into(),
                    op: FilterOp::In,
                    values: vec!["9".into(), "10".into()],
                },
            ],
            sort: vec![("email".into(), true)],
            page: 3,
            size: 20,
        };
        let rendered = record_query(&query).expect("valid");
        assert_eq!(
            rendered.conditions.len(),
            3,
            "eq on a time is a one-second range"
        );
        assert_eq!(
            rendered.conditions[2].operands,
            vec![Operand::Integer(9), Operand::Integer(10)]
        );
        assert_eq!((rendered.offset, rendered.limit), (40, 20));
        let bad = ProfileQuery {
            filters: vec![Filter {
                field: "id".into(),
                op: FilterOp::Eq,
                values: vec!["abc".into()],
            }],
            ..query
        };
        assert!(record_query(&bad).is_err());
    }
}
