//! Hood's wire format: profile and profile-list views with their OpenAPI
//! schemas, the conversion of request bodies into the core's Hood types
//! (every invalid field reported with its path), and the list query
//! string (`page=N,M`, `sort=-a,b`, `field=[op:]value`).

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};

use crate::core::error::{DomainError, FieldPath};
use crate::core::hood::{
    self, Filter, FilterOp, NewProfile, Profile, ProfileList, ProfileListPatch, ProfilePatch,
    ProfileQuery, hood_time,
};
use crate::core::input::{Nullable, Reader};
use crate::core::records::Record;
use crate::surfaces::schema;

/// A profile as Hood returns it. Ids are numeric strings; times are
/// `YYYY-MM-DD HH:MM:SS` in UTC.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoodProfileView {
    #[schema(example = "1000102")]
    pub id: String,
    pub email: Option<String>,
    /// E.164, e.g. `+49658245684`.
    pub mobile_phone_number: Option<String>,
    /// ISO 3166 alpha-2 region, derived from `mobile_phone_number`.
    pub country_code: Option<String>,
    pub full_name: Option<String>,
    pub organization_id: Option<String>,
    /// Ids of the profile lists the profile belongs to.
    pub lists: Vec<String>,
    pub comment: Option<String>,
    /// At most 100 keys with scalar values.
    #[schema(value_type = Object)]
    pub custom_properties: Map<String, Value>,
    pub unsubscribed: bool,
    #[schema(example = "2024-01-25 09:15:00")]
    pub unsubscribe_time: Option<String>,
    #[schema(example = "2024-01-15 10:30:00")]
    pub create_time: String,
    #[schema(example = "2024-01-25 09:15:00")]
    pub update_time: String,
}

impl From<&Record<Profile>> for HoodProfileView {
    fn from(record: &Record<Profile>) -> Self {
        let profile = &record.data;
        Self {
            id: record.id.clone(),
            email: profile.email.clone(),
            mobile_phone_number: profile.mobile_phone_number.clone(),
            country_code: profile.country_code.clone(),
            full_name: profile.full_name.clone(),
            organization_id: profile.organization_id.clone(),
            lists: profile.lists.clone(),
            comment: profile.comment.clone(),
            custom_properties: profile.custom_properties.clone(),
            unsubscribed: profile.unsubscribed,
            unsubscribe_time: profile.unsubscribe_time.map(hood_time),
            create_time: hood_time(record.created_at),
            update_time: hood_time(record.updated_at),
        }
    }
}

/// A page of profiles.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoodProfilePage {
    /// How many profiles match the filters (over all pages).
    pub total: u64,
    pub items: Vec<HoodProfileView>,
}

/// A profile list.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoodProfileListView {
    #[schema(example = "1000102")]
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// `#rrggbb`.
    pub color: Option<String>,
    pub create_time: String,
    pub update_time: String,
}

impl From<&Record<ProfileList>> for HoodProfileListView {
    fn from(record: &Record<ProfileList>) -> Self {
        Self {
            id: record.id.clone(),
            name: record.data.name.clone(),
            description: record.data.description.clone(),
            color: record.data.color.clone(),
            create_time: hood_time(record.created_at),
            update_time: hood_time(record.updated_at),
        }
    }
}

/// A page of profile lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoodProfileListPage {
    pub total: usize,
    pub items: Vec<HoodProfileListView>,
}

/// Body of `POST /v1/hood/profiles`: `email` or `mobile_phone_number` is
/// required. Its schema is built from the bounds the reader checks.
pub struct CreateHoodProfileRequest;

/// Body of `PATCH /v1/hood/profiles/{id}`: at least one of these fields and
/// nothing else. `custom_properties` merges key by key; `null` removes a key.
pub struct UpdateHoodProfileRequest;

/// Body of `POST /v1/hood/profile-lists`.
pub struct HoodProfileListRequest;

/// Body of `PATCH /v1/hood/profile-lists/{id}`: at least one field.
pub struct HoodProfileListPatchRequest;

impl utoipa::PartialSchema for CreateHoodProfileRequest {
    fn schema() -> RefOr<Schema> {
        // A contact is a non-null email or number; `null` counts as absent.
        let contact = |field: &str| {
            ObjectBuilder::new()
                .property(field, ObjectBuilder::new().schema_type(Type::String))
                .required(field)
        };
        let fields = profile_fields(true).description(Some(
            "Body of `POST /v1/hood/profiles`: `email` or `mobile_phone_number` is required.",
        ));
        AllOfBuilder::new()
            .item(fields)
            .item(
                AnyOfBuilder::new()
                    .item(contact("email"))
                    .item(contact("mobile_phone_number")),
            )
            .into()
    }
}

impl ToSchema for CreateHoodProfileRequest {}

impl utoipa::PartialSchema for UpdateHoodProfileRequest {
    fn schema() -> RefOr<Schema> {
        profile_fields(false)
            .min_properties(Some(1))
            .description(Some(
                "Body of `PATCH /v1/hood/profiles/{id}`: at least one of these fields and nothing else. `custom_properties` merges key by key; `null` removes a key. The profile must keep an email or a number.",
            ))
            .into()
    }
}

impl ToSchema for UpdateHoodProfileRequest {}

impl utoipa::PartialSchema for HoodProfileListRequest {
    fn schema() -> RefOr<Schema> {
        list_fields()
            .required("name")
            .description(Some("Body of `POST /v1/hood/profile-lists`."))
            .into()
    }
}

impl ToSchema for HoodProfileListRequest {}

impl utoipa::PartialSchema for HoodProfileListPatchRequest {
    fn schema() -> RefOr<Schema> {
        list_fields()
            .min_properties(Some(1))
            .description(Some(
                "Body of `PATCH /v1/hood/profile-lists/{id}`: at least one field.",
            ))
            .into()
    }
}

impl ToSchema for HoodProfileListPatchRequest {}

/// Numeric-string ids (`organization_id`, list ids).
fn numeric_id_schema() -> ObjectBuilder {
    schema::text(hood::NUMERIC_ID_CHARS)
        .pattern(Some("^[0-9]+$"))
        .examples(["1000"])
}

/// The profile fields as [`read_new_profile`] and [`read_profile_patch`]
/// read them. On create `lists` may be absent but not null; on a PATCH
/// neither `lists` nor `custom_properties` may be null.
fn profile_fields(create: bool) -> ObjectBuilder {
    let value = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::String,
            Type::Number,
            Type::Boolean,
            Type::Null,
        ]))
        .max_length(Some(hood::CUSTOM_PROPERTY_VALUE_CHARS));
    let names = schema::text(hood::CUSTOM_PROPERTY_KEY_CHARS);
    // The reader takes up to twice the bound in one body, since `null`
    // entries remove keys; the merged result is checked against the bound.
    let max_keys = 2 * hood::MAX_CUSTOM_PROPERTIES;
    let mut properties = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(value))
        .property_names(Some(names))
        .max_properties(Some(max_keys))
        .description(Some(format!(
            "String (≤ {1} characters), number, boolean or null values; `null` removes a key. At most {0} keys once merged into the stored ones.",
            hood::MAX_CUSTOM_PROPERTIES,
            hood::CUSTOM_PROPERTY_VALUE_CHARS
        )))
        .build();
    if create {
        properties.schema_type = SchemaType::from_iter([Type::Object, Type::Null]);
    }
    schema::closed_object()
        .property(
            "email",
            schema::nullable(
                schema::text(hood::EMAIL_CHARS)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                    .examples(["john.doe@example.com"]),
            ),
        )
        .property(
            "mobile_phone_number",
            schema::nullable(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\+[1-9][0-9]{1,14}$"))
                    .description(Some(
                        "A valid number in E.164 form (the number must exist in its country's plan)",
                    ))
                    .examples(["+49658245684"]),
            ),
        )
        .property(
            "full_name",
            schema::nullable(schema::text(hood::FULL_NAME_CHARS).examples(["John Doe"])),
        )
        .property("organization_id", schema::nullable(numeric_id_schema()))
        .property(
            "lists",
            schema::array(numeric_id_schema(), hood::LISTS_ITEMS)
                .description(Some("Ids of existing profile lists")),
        )
        .property("comment", schema::nullable(schema::text(hood::COMMENT_CHARS)))
        .property("custom_properties", properties)
}

fn list_fields() -> ObjectBuilder {
    schema::closed_object()
        .property("name", schema::text(hood::LIST_NAME_CHARS))
        .property(
            "description",
            schema::nullable(schema::text(hood::LIST_DESCRIPTION_CHARS)),
        )
        .property(
            "color",
            schema::nullable(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^#[0-9A-Fa-f]{6}$"))
                    .examples(["#33aaff"]),
            ),
        )
}

const LIST_FIELDS: [&str; 3] = ["name", "description", "color"];
const LIST_READ_ONLY: [&str; 3] = ["id", "create_time", "update_time"];

fn all_profile_fields() -> Vec<&'static str> {
    hood::UPDATABLE_PROFILE_FIELDS
        .iter()
        .chain(hood::READ_ONLY_PROFILE_FIELDS.iter())
        .copied()
        .collect()
}

fn reject_read_only(
    reader: &mut Reader,
    fields: &crate::core::input::Fields<'_, '_>,
    read_only: &[&str],
) {
    for key in read_only {
        if fields.contains(key) {
            reader.error(
                &fields.path_of(key),
                format!("\"{key}\" is read-only and cannot be set"),
            );
        }
    }
}

/// Reads the body of a profile creation.
pub fn read_new_profile(body: &Value) -> Result<NewProfile, DomainError> {
    let root = FieldPath::root();
    let mut reader = Reader::new();
    let all = all_profile_fields();
    let Some(fields) = reader.object(body, &root, &all) else {
        return Err(reader.into_error());
    };
    reject_read_only(&mut reader, &fields, &hood::READ_ONLY_PROFILE_FIELDS);
    let email = reader.nullable(&fields, "email", read_email).flatten();
    let phone = reader
        .nullable(&fields, "mobile_phone_number", read_phone)
        .flatten();
    let new = NewProfile {
        email: email.clone(),
        country_code: phone.as_ref().and_then(|(_, region)| region.clone()),
        mobile_phone_number: phone.map(|(number, _)| number),
        full_name: reader
            .nullable(&fields, "full_name", read_full_name)
            .flatten(),
        organization_id: reader
            .nullable(&fields, "organization_id", read_numeric_id)
            .flatten(),
        lists: reader
            .optional(&fields, "lists", read_lists)
            .flatten()
            .unwrap_or_default(),
        comment: reader.nullable(&fields, "comment", read_comment).flatten(),
        custom_properties: {
            let mut properties = Map::new();
            if let Some(Some(changes)) =
                reader.nullable(&fields, "custom_properties", read_custom_properties)
            {
                crate::core::patch::merge_map(&mut properties, changes);
            }
            properties
        },
    };
    let absent_or_null = |key: &str| fields.get(key).is_none_or(Value::is_null);
    let no_contact = absent_or_null("email") && absent_or_null("mobile_phone_number");
    if no_contact {
        reader.error(
            &root.key("email"),
            "Required: a profile needs an email or a mobile_phone_number",
        );
    }
    if new.custom_properties.len() > hood::MAX_CUSTOM_PROPERTIES {
        reader.error(
            &root.key("custom_properties"),
            format!(
                "A profile holds at most {} custom properties",
                hood::MAX_CUSTOM_PROPERTIES
            ),
        );
    }
    reader.finish(new)
}

/// Reads the body of a profile PATCH: at least one updatable field, and
/// nothing else.
pub fn read_profile_patch(body: &Value) -> Result<ProfilePatch, DomainError> {
    let root = FieldPath::root();
    let mut reader = Reader::new();
    let all = all_profile_fields();
    let Some(fields) = reader.object(body, &root, &all) else {
        return Err(reader.into_error());
    };
    reject_read_only(&mut reader, &fields, &hood::READ_ONLY_PROFILE_FIELDS);
    reader.at_least_one_of(&fields, &hood::UPDATABLE_PROFILE_FIELDS);
    let patch = ProfilePatch {
        email: reader.patch(&fields, "email", Nullable::Yes, read_email),
        mobile_phone_number: reader.patch(
            &fields,
            "mobile_phone_number",
            Nullable::Yes,
            read_phone,
        ),
        full_name: reader.patch(&fields, "full_name", Nullable::Yes, read_full_name),
        organization_id: reader.patch(&fields, "organization_id", Nullable::Yes, read_numeric_id),
        lists: reader.patch(&fields, "lists", Nullable::No, read_lists),
        comment: reader.patch(&fields, "comment", Nullable::Yes, read_comment),
        custom_properties: reader.patch(
            &fields,
            "custom_properties",
            Nullable::No,
            read_custom_properties,
        ),
    };
    reader.finish(patch)
}

/// Reads the body of a profile-list creation.
pub fn read_new_list(body: &Value) -> Result<ProfileList, DomainError> {
    let root = FieldPath::root();
    let mut reader = Reader::new();
    let all: Vec<&str> = LIST_FIELDS
        .iter()
        .chain(LIST_READ_ONLY.iter())
        .copied()
        .collect();
    let Some(fields) = reader.object(body, &root, &all) else {
        return Err(reader.into_error());
    };
    reject_read_only(&mut reader, &fields, &LIST_READ_ONLY);
    let name = reader.required(&fields, "name", read_list_name);
    let description = reader.nullable(&fields, "description", read_list_description);
    let color = reader.nullable(&fields, "color", read_color);
    match (name, description, color) {
        (Some(name), Some(description), Some(color)) if !reader.has_errors() => Ok(ProfileList {
            name,
            description,
            color,
        }),
        _ => Err(reader.into_error()),
    }
}

/// Reads the body of a profile-list PATCH.
pub fn read_list_patch(body: &Value) -> Result<ProfileListPatch, DomainError> {
    let root = FieldPath::root();
    let mut reader = Reader::new();
    let all: Vec<&str> = LIST_FIELDS
        .iter()
        .chain(LIST_READ_ONLY.iter())
        .copied()
        .collect();
    let Some(fields) = reader.object(body, &root, &all) else {
        return Err(reader.into_error());
    };
    reject_read_only(&mut reader, &fields, &LIST_READ_ONLY);
    reader.at_least_one_of(&fields, &LIST_FIELDS);
    let patch = ProfileListPatch {
        name: reader.patch(&fields, "name", Nullable::No, read_list_name),
        description: reader.patch(&fields, "description", Nullable::Yes, read_list_description),
        color: reader.patch(&fields, "color", Nullable::Yes, read_color),
    };
    reader.finish(patch)
}

fn read_email(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    let text = reader.string(value, path, 0..=usize::MAX)?;
    match hood::normalize_email(&text) {
        Ok(email) => Some(email),
        Err(message) => {
            reader.error(path, message);
            None
        }
    }
}

fn read_phone(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
) -> Option<(String, Option<String>)> {
    let text = reader.string(value, path, 0..=usize::MAX)?;
    match hood::normalize_phone(&text) {
        Ok(phone) => Some(phone),
        Err(message) => {
            reader.error(path, message);
            None
        }
    }
}

fn read_full_name(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    reader.string(value, path, hood::FULL_NAME_CHARS)
}

fn read_comment(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    reader.string(value, path, hood::COMMENT_CHARS)
}

fn read_numeric_id(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    let text = reader.string(value, path, hood::NUMERIC_ID_CHARS)?;
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        Some(text)
    } else {
        reader.error(path, "Must be a numeric string, e.g. \"1000\"");
        None
    }
}

fn read_lists(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Vec<String>> {
    reader.array(value, path, hood::LISTS_ITEMS, read_numeric_id)
}

fn read_custom_properties(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
) -> Option<Map<String, Value>> {
    let Value::Object(map) = value else {
        reader.error(
            path,
            format!(
                "Expected object, received {}",
                crate::core::input::json_type_name(value)
            ),
        );
        return None;
    };
    // A patch may remove as many keys as it adds, hence twice the bound.
    if map.len() > 2 * hood::MAX_CUSTOM_PROPERTIES {
        reader.error(
            path,
            format!(
                "Object must contain at most {} key(s)",
                2 * hood::MAX_CUSTOM_PROPERTIES
            ),
        );
        return None;
    }
    let mut failed = false;
    for (key, item) in map {
        let item_path = path.key(key);
        if !hood::CUSTOM_PROPERTY_KEY_CHARS.contains(&key.chars().count()) {
            reader.error(&item_path, "Property names have 1 to 100 characters");
            failed = true;
        }
        match item {
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
            Value::String(text) if text.chars().count() <= hood::CUSTOM_PROPERTY_VALUE_CHARS => {}
            Value::String(_) => {
                reader.error(
                    &item_path,
                    format!(
                        "String must contain at most {} character(s)",
                        hood::CUSTOM_PROPERTY_VALUE_CHARS
                    ),
                );
                failed = true;
            }
            other => {
                reader.error(
                    &item_path,
                    format!(
                        "Expected string, number, boolean or null, received {}",
                        crate::core::input::json_type_name(other)
                    ),
                );
                failed = true;
            }
        }
    }
    (!failed).then(|| map.clone())
}

fn read_list_name(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    reader.string(value, path, hood::LIST_NAME_CHARS)
}

fn read_list_description(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    reader.string(value, path, hood::LIST_DESCRIPTION_CHARS)
}

fn read_color(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    let text = reader.string(value, path, 7..=7)?;
    let valid = text.starts_with('#') && text[1..].bytes().all(|byte| byte.is_ascii_hexdigit());
    if valid {
        Some(text.to_ascii_lowercase())
    } else {
        reader.error(path, "Must be a color like #33aaff");
        None
    }
}

/// Reads a list query. Every problem is reported at the parameter's name.
pub fn read_profile_query(pairs: &[(String, String)]) -> Result<ProfileQuery, DomainError> {
    let mut reader = Reader::new();
    let mut query = ProfileQuery {
        filters: Vec::new(),
        sort: Vec::new(),
        page: 1,
        size: hood::DEFAULT_PAGE_SIZE,
    };
    for (name, value) in pairs {
        let path = FieldPath::root().key(name);
        match name.as_str() {
            "page" => match read_page(value) {
                Some((page, size)) => {
                    query.page = page;
                    query.size = size;
                }
                None => reader.error(
                    &path,
                    format!(
                        "Expected page=N or page=N,M with N ≥ 1 and 1 ≤ M ≤ {}",
                        hood::MAX_PAGE_SIZE
                    ),
                ),
            },
            "sort" => {
                for key in value.split(',').filter(|key| !key.is_empty()) {
                    let (field, descending) = match key.strip_prefix('-') {
                        Some(field) => (field, true),
                        None => (key.strip_prefix('+').unwrap_or(key), false),
                    };
                    if hood::QUERYABLE_FIELDS.contains(&field) {
                        query.sort.push((field.to_owned(), descending));
                    } else {
                        reader.error(
                            &path,
                            format!(
                                "Cannot sort by \"{field}\"; expected one of: {}",
                                hood::QUERYABLE_FIELDS.join(", ")
                            ),
                        );
                    }
                }
            }
            // An empty value (`email=`, as forms send unused fields) is no
            // filter at all.
            field if hood::QUERYABLE_FIELDS.contains(&field) && value.is_empty() => {}
            field if hood::QUERYABLE_FIELDS.contains(&field) => {
                let (op, operand) = match value.split_once(':') {
                    Some((op, operand)) => match FilterOp::parse(op) {
                        Some(op) => (op, operand),
                        None => (FilterOp::Eq, value.as_str()),
                    },
                    None => (FilterOp::Eq, value.as_str()),
                };
                let values = if matches!(op, FilterOp::In | FilterOp::Nin) {
                    operand.split(',').map(str::to_owned).collect()
                } else {
                    vec![operand.to_owned()]
                };
                query.filters.push(Filter {
                    field: field.to_owned(),
                    op,
                    values,
                });
            }
            other => reader.error(
                &path,
                format!(
                    "Unknown query parameter \"{other}\"; filter on one of: {}",
                    hood::QUERYABLE_FIELDS.join(", ")
                ),
            ),
        }
    }
    reader.finish(query)
}

fn read_page(value: &str) -> Option<(usize, usize)> {
    let (page, size) = match value.split_once(',') {
        Some((page, size)) => (page.trim().parse().ok()?, size.trim().parse().ok()?),
        None => (value.trim().parse().ok()?, hood::DEFAULT_PAGE_SIZE),
    };
    (page >= 1 && (1..=hood::MAX_PAGE_SIZE).contains(&size)).then_some((page, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    #[test]
    fn queries_read_page_sort_and_filters() {
        let query = read_profile_query(&pairs(
            "page=2,50&sort=-create_time,email&email=eq:a@b.c&lists=in:1,2&full_name=Ann",
        ))
        .expect("valid");
        assert_eq!((query.page, query.size), (2, 50));
        assert_eq!(
            query.sort,
            vec![
                ("create_time".to_owned(), true),
                ("email".to_owned(), false)
            ]
        );
        assert_eq!(query.filters.len(), 3);
        assert_eq!(query.filters[1].values, vec!["1", "2"]);
        assert_eq!(query.filters[2].op, FilterOp::Eq);
        assert!(read_profile_query(&pairs("page=0,10")).is_err());
        let empty = read_profile_query(&pairs("id=&create_time=&email=")).expect("valid");
        assert!(empty.filters.is_empty(), "empty values filter nothing");
        assert!(read_profile_query(&pairs("sort=password")).is_err());
        assert!(read_profile_query(&pairs("password=x")).is_err());
    }
}

/// One create, update or delete of a profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoodHistoryEntry {
    /// The profile's version after the change.
    pub version: i64,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub user_id: String,
    /// The API key used; null for JWT callers.
    pub key_id: Option<String>,
    pub trace_id: String,
    #[schema(example = "2024-01-25 09:15:00")]
    pub time: String,
    pub changes: Vec<crate::surfaces::FieldChange>,
}

/// A page of a profile's history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoodHistoryPage {
    pub total: u64,
    pub items: Vec<HoodHistoryEntry>,
}

impl From<&crate::core::records::HistoryEntry> for HoodHistoryEntry {
    fn from(entry: &crate::core::records::HistoryEntry) -> Self {
        let changes = entry
            .changes
            .iter()
            .map(crate::surfaces::FieldChange::from)
            .collect();
        Self {
            version: entry.version,
            action: entry.action.clone(),
            user_id: entry.user_id.clone(),
            key_id: entry.key_id.clone(),
            trace_id: entry.request_id.clone(),
            time: hood_time(entry.at),
            changes,
        }
    }
}

/// Reads `page=N,M` alone (history takes no filters).
pub fn read_history_page(pairs: &[(String, String)]) -> Result<(usize, usize), DomainError> {
    let mut reader = Reader::new();
    let mut page = (1, hood::DEFAULT_PAGE_SIZE);
    for (name, value) in pairs {
        let path = FieldPath::root().key(name);
        match (name.as_str(), read_page(value)) {
            ("page", Some(parsed)) => page = parsed,
            ("page", None) => reader.error(&path, "Expected page=N or page=N,M"),
            _ => reader.error(&path, format!("Unknown query parameter \"{name}\"")),
        }
    }
    reader.finish(page)
}
