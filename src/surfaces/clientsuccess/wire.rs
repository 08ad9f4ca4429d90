//! ClientSuccess's wire format for clients: the response views and request
//! schemas (OpenAPI), the conversion of request bodies into the core's
//! client types with every invalid field reported by JSON pointer, and the
//! search query (paging and filters) with its page envelope.
//!
//! Messages are worded as Bean Validation words them ("size must be between
//! 0 and 255", "must not be null"), because the vendor is a Spring service
//! and its users know those messages.

use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::openapi::schema::{
    Array, KnownFormat, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::{IntoParams, ToSchema};

use crate::core::client::{
    self, Client, ClientFilter, ClientPatch, ClientStatus, MUST_NOT_BE_NULL,
};
use crate::core::error::{DomainError, FieldPath};
use crate::core::input::{Fields, FreeFormLimits, Nullable, Reader};
use crate::core::records::Record;
use crate::surfaces::schema;

/// ISO 8601 in UTC with milliseconds (`2024-01-25T09:15:00.000Z`).
pub fn timestamp(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A client's status.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientSuccessStatus {
    Active,
    Inactive,
    Trial,
    Terminated,
}

impl From<ClientStatus> for ClientSuccessStatus {
    fn from(status: ClientStatus) -> Self {
        match status {
            ClientStatus::Active => ClientSuccessStatus::Active,
            ClientStatus::Inactive => ClientSuccessStatus::Inactive,
            ClientStatus::Trial => ClientSuccessStatus::Trial,
            ClientStatus::Terminated => ClientSuccessStatus::Terminated,
        }
    }
}

/// A client as ClientSuccess returns it: every field, `null` when unset.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSuccessClient {
    /// ClientSuccess system id, assigned by the server.
    #[schema(minimum = 1)]
    pub id: i64,
    /// The id used in paths.
    #[schema(format = Uuid)]
    pub uuid: String,
    /// Custom field values by field name: strings, numbers, booleans or
    /// arrays of those.
    pub custom: Map<String, Value>,
    #[schema(max_length = 255)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub site_url: Option<String>,
    #[schema(max_length = 1024)]
    pub logo_url: Option<String>,
    pub status: ClientSuccessStatus,
    pub active: bool,
    /// `YYYY-MM-DD`.
    pub inception_date: Option<NaiveDate>,
    /// `YYYY-MM-DD`.
    pub terminated_date: Option<NaiveDate>,
    #[schema(max_length = 1024)]
    pub street: Option<String>,
    #[schema(max_length = 100)]
    pub city: Option<String>,
    #[schema(max_length = 100)]
    pub state: Option<String>,
    #[schema(max_length = 20)]
    pub zip: Option<String>,
    #[schema(max_length = 100)]
    pub country: Option<String>,
    /// Any JSON object (at most 4 levels, 50 entries per level).
    pub region: Option<Map<String, Value>>,
    /// A tz database name, e.g. `America/Denver`.
    #[schema(max_length = 60)]
    pub timezone: Option<String>,
    #[schema(max_length = 100)]
    pub external_id: Option<String>,
    #[schema(max_length = 18)]
    pub salesforce_account_id: Option<String>,
    #[schema(max_length = 200)]
    pub zendesk_id: Option<String>,
    #[schema(max_length = 200)]
    pub freshdesk_id: Option<String>,
    #[schema(max_length = 200)]
    pub usage_id: Option<String>,
    #[schema(max_length = 200)]
    pub stripe_id: Option<String>,
    #[schema(max_length = 200)]
    pub external_status_id: Option<String>,
    #[schema(minimum = -100, maximum = 100)]
    pub nps_score: Option<i32>,
    #[schema(max_length = 65535)]
    pub note: Option<String>,
    #[schema(minimum = 0)]
    pub created_by_employee_id: Option<i64>,
    #[schema(minimum = 0)]
    pub modified_by_employee_id: Option<i64>,
    #[schema(minimum = 0)]
    pub managed_by_employee_id: Option<i64>,
    #[schema(minimum = 0)]
    pub assigned_sales_rep_id: Option<i64>,
    #[schema(max_length = 45)]
    pub assigned_sales_rep: Option<String>,
    /// Set when the client type was named by id (the title is then null).
    #[schema(minimum = 0)]
    pub client_type_id: Option<i64>,
    /// Set when the client type was named by title (the id is then null).
    #[schema(max_length = 255)]
    pub client_type_title: Option<String>,
    #[schema(minimum = 0)]
    pub success_cycle_id: Option<i64>,
    #[schema(minimum = 0)]
    pub primary_contact_id: Option<i64>,
    /// The `id` of the parent client, in the same workspace.
    #[schema(minimum = 0)]
    pub parent_client_id: Option<i64>,
    /// Account teaming roles: JSON objects (at most 100, each at most 4
    /// levels and 50 entries per level).
    pub acc_teaming_roles: Vec<Map<String, Value>>,
    /// ISO 8601 UTC with milliseconds.
    #[schema(format = DateTime)]
    pub created_time: String,
    /// ISO 8601 UTC with milliseconds.
    #[schema(format = DateTime)]
    pub modified_time: String,
}

impl From<&Record<Client>> for ClientSuccessClient {
    fn from(record: &Record<Client>) -> Self {
        let client = record.data.clone();
        ClientSuccessClient {
            id: client.id,
            uuid: record.id.clone(),
            custom: client.custom,
            name: client.name,
            site_url: client.site_url,
            logo_url: client.logo_url,
            status: client.status.into(),
            active: client.active,
            inception_date: client.inception_date,
            terminated_date: client.terminated_date,
            street: client.street,
            city: client.city,
            state: client.state,
            zip: client.zip,
            country: client.country,
            region: client.region,
            timezone: client.timezone,
            external_id: client.external_id,
            salesforce_account_id: client.salesforce_account_id,
            zendesk_id: client.zendesk_id,
            freshdesk_id: client.freshdesk_id,
            usage_id: client.usage_id,
            stripe_id: client.stripe_id,
            external_status_id: client.external_status_id,
            nps_score: client.nps_score,
            note: client.note,
            created_by_employee_id: client.created_by_employee_id,
            modified_by_employee_id: client.modified_by_employee_id,
            managed_by_employee_id: client.managed_by_employee_id,
            assigned_sales_rep_id: client.assigned_sales_rep_id,
            assigned_sales_rep: client.assigned_sales_rep,
            client_type_id: client.client_type_id,
            client_type_title: client.client_type_title,
            success_cycle_id: client.success_cycle_id,
            primary_contact_id: client.primary_contact_id,
            parent_client_id: client.parent_client_id,
            acc_teaming_roles: client.acc_teaming_roles,
            created_time: timestamp(&record.created_at),
            modified_time: timestamp(&record.updated_at),
        }
    }
}

/// The body of `POST /v2/client`. `name`, `status` and `active` are
/// required; `null` on any other field means "no value".
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSuccessCreateRequest {
    /// Merged into an empty map; keys whose value is `null` are dropped.
    /// At most 100 keys of 1 to 100 characters.
    #[schema(schema_with = custom_schema)]
    pub custom: Option<Map<String, Value>>,
    #[schema(max_length = 255)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub site_url: Option<String>,
    #[schema(max_length = 1024)]
    pub logo_url: Option<String>,
    pub status: ClientSuccessStatus,
    pub active: bool,
    /// `YYYY-MM-DD`, a real calendar date.
    #[schema(schema_with = date_schema)]
    pub inception_date: Option<NaiveDate>,
    /// `YYYY-MM-DD`, a real calendar date.
    #[schema(schema_with = date_schema)]
    pub terminated_date: Option<NaiveDate>,
    #[schema(max_length = 1024)]
    pub street: Option<String>,
    #[schema(max_length = 100)]
    pub city: Option<String>,
    #[schema(max_length = 100)]
    pub state: Option<String>,
    #[schema(max_length = 20)]
    pub zip: Option<String>,
    #[schema(max_length = 100)]
    pub country: Option<String>,
    #[schema(schema_with = region_schema)]
    pub region: Option<Map<String, Value>>,
    /// A tz database name.
    #[schema(schema_with = timezone_schema)]
    pub timezone: Option<String>,
    #[schema(max_length = 100)]
    pub external_id: Option<String>,
    #[schema(max_length = 18)]
    pub salesforce_account_id: Option<String>,
    #[schema(max_length = 200)]
    pub zendesk_id: Option<String>,
    #[schema(max_length = 200)]
    pub freshdesk_id: Option<String>,
    #[schema(max_length = 200)]
    pub usage_id: Option<String>,
    #[schema(max_length = 200)]
    pub stripe_id: Option<String>,
    #[schema(max_length = 200)]
    pub external_status_id: Option<String>,
    #[schema(minimum = -100, maximum = 100)]
    pub nps_score: Option<i32>,
    #[schema(max_length = 65535)]
    pub note: Option<String>,
    #[schema(minimum = 0)]
    pub created_by_employee_id: Option<i64>,
    #[schema(minimum = 0)]
    pub modified_by_employee_id: Option<i64>,
    #[schema(minimum = 0)]
    pub managed_by_employee_id: Option<i64>,
    #[schema(minimum = 0)]
    pub assigned_sales_rep_id: Option<i64>,
    #[schema(max_length = 45)]
    pub assigned_sales_rep: Option<String>,
    /// Overrides `clientTypeTitle` when both are sent.
    #[schema(minimum = 0)]
    pub client_type_id: Option<i64>,
    /// Ignored when `clientTypeId` is sent.
    #[schema(max_length = 255)]
    pub client_type_title: Option<String>,
    #[schema(minimum = 0)]
    pub success_cycle_id: Option<i64>,
    #[schema(minimum = 0)]
    pub primary_contact_id: Option<i64>,
    /// The `id` of a client of the same workspace; no cycles.
    #[schema(minimum = 0)]
    pub parent_client_id: Option<i64>,
    /// At most 100 JSON objects.
    #[schema(schema_with = teaming_roles_schema)]
    pub acc_teaming_roles: Option<Vec<Map<String, Value>>>,
}

/// The body of `PATCH /v2/client/{uuid}`: only the fields sent change.
/// `null` clears a field, except `name`, `status` and `active`. `custom`
/// merges key by key (a key set to `null` is removed; `custom: null`
/// removes every key); `region` and `accTeamingRoles` are replaced whole.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSuccessPatchRequest {
    #[schema(schema_with = custom_schema)]
    pub custom: Option<Map<String, Value>>,
    #[schema(nullable = false, max_length = 255)]
    pub name: Option<String>,
    #[schema(max_length = 1024)]
    pub site_url: Option<String>,
    #[schema(max_length = 1024)]
    pub logo_url: Option<String>,
    #[schema(nullable = false)]
    pub status: Option<ClientSuccessStatus>,
    #[schema(nullable = false)]
    pub active: Option<bool>,
    #[schema(schema_with = date_schema)]
    pub inception_date: Option<NaiveDate>,
    #[schema(schema_with = date_schema)]
    pub terminated_date: Option<NaiveDate>,
    #[schema(max_length = 1024)]
    pub street: Option<String>,
    #[schema(max_length = 100)]
    pub city: Option<String>,
    #[schema(max_length = 100)]
    pub state: Option<String>,
    #[schema(max_length = 20)]
    pub zip: Option<String>,
    #[schema(max_length = 100)]
    pub country: Option<String>,
    #[schema(schema_with = region_schema)]
    pub region: Option<Map<String, Value>>,
    #[schema(schema_with = timezone_schema)]
    pub timezone: Option<String>,
    #[schema(max_length = 100)]
    pub external_id: Option<String>,
    #[schema(max_length = 18)]
    pub salesforce_account_id: Option<String>,
    #[schema(max_length = 200)]
    pub zendesk_id: Option<String>,
    #[schema(max_length = 200)]
    pub freshdesk_id: Option<String>,
    #[schema(max_length = 200)]
    pub usage_id: Option<String>,
    #[schema(max_length = 200)]
    pub stripe_id: Option<String>,
    #[schema(max_length = 200)]
    pub external_status_id: Option<String>,
    #[schema(minimum = -100, maximum = 100)]
    pub nps_score: Option<i32>,
    #[schema(max_length = 65535)]
    pub note: Option<String>,
    #[schema(minimum = 0)]
    pub created_by_employee_id: Option<i64>,
    #[schema(minimum = 0)]
    pub modified_by_employee_id: Option<i64>,
    #[schema(minimum = 0)]
    pub managed_by_employee_id: Option<i64>,
    #[schema(minimum = 0)]
    pub assigned_sales_rep_id: Option<i64>,
    #[schema(max_length = 45)]
    pub assigned_sales_rep: Option<String>,
    /// Overrides `clientTypeTitle`: when sent, the title in the same request
    /// is ignored and the stored title is cleared.
    #[schema(minimum = 0)]
    pub client_type_id: Option<i64>,
    /// When sent without `clientTypeId`, replaces the client type and
    /// clears the stored `clientTypeId`.
    #[schema(max_length = 255)]
    pub client_type_title: Option<String>,
    #[schema(minimum = 0)]
    pub success_cycle_id: Option<i64>,
    #[schema(minimum = 0)]
    pub primary_contact_id: Option<i64>,
    #[schema(minimum = 0)]
    pub parent_client_id: Option<i64>,
    #[schema(schema_with = teaming_roles_schema)]
    pub acc_teaming_roles: Option<Vec<Map<String, Value>>>,
}

/// `custom`: custom field values by name, each a scalar or an array of
/// scalars; `null` removes the key. At most 100 keys once merged, which
/// depends on the stored client, so the count is stated, not enforced.
fn custom_schema() -> Object {
    let scalar = || {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([
                Type::String,
                Type::Number,
                Type::Boolean,
            ]))
            .max_length(Some(*client::CUSTOM_STRING_CHARS.end()))
    };
    let value: Schema = OneOfBuilder::new()
        .item(scalar())
        .item(schema::array(scalar(), client::CUSTOM_ARRAY_ITEMS))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into();
    schema::nullable(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(schema::text(client::CUSTOM_KEY_CHARS)))
            .additional_properties(Some(value))
            .description(Some(format!(
                "Custom field values by field name: a string, number or boolean, or an array of those; `null` removes the key. At most {} keys once merged into the stored ones.",
                client::MAX_CUSTOM_KEYS
            ))),
    )
}

fn region_schema() -> Object {
    schema::nullable(schema::bounded_object(client::REGION_LIMITS))
}

fn teaming_roles_schema() -> Array {
    schema::nullable_array(schema::array(
        schema::bounded_object(client::ACC_TEAMING_ROLE_LIMITS),
        client::ACC_TEAMING_ROLES_ITEMS,
    ))
}

/// A real calendar date as `YYYY-MM-DD` (the pattern knows month lengths
/// and leap years, as the reader does).
fn date_schema() -> Object {
    schema::nullable(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .pattern(Some(CALENDAR_DATE_PATTERN))
            .description(Some("`YYYY-MM-DD`, a real calendar date")),
    )
}

/// `YYYY-MM-DD` for the days that exist: 1–28 in every month, 29–30 in
/// all but February, 31 in the long months, and 29 February in leap years.
pub const CALENDAR_DATE_PATTERN: &str = concat!(
    "^(?:[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])",
    "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)",
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)$"
);

/// A tz database name, exactly as the database spells it.
fn timezone_schema() -> Object {
    let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    schema::nullable(
        schema::one_of(&names).description(Some("A tz database name, e.g. `America/Denver`")),
    )
}

// ---- request bodies -------------------------------------------------------

/// The writable fields, in the seed's order.
pub const CLIENT_FIELDS: [&str; 35] = [
    "custom",
    "name",
    "siteUrl",
    "logoUrl",
    "status",
    "active",
    "inceptionDate",
    "terminatedDate",
    "street",
    "city",
    "state",
    "zip",
    "country",
    "region",
    "timezone",
    "externalId",
    "salesforceAccountId",
    "zendeskId",
    "freshdeskId",
    "usageId",
    "stripeId",
    "externalStatusId",
    "npsScore",
    "note",
    "createdByEmployeeId",
    "modifiedByEmployeeId",
    "managedByEmployeeId",
    "assignedSalesRepId",
    "assignedSalesRep",
    "clientTypeId",
    "clientTypeTitle",
    "successCycleId",
    "primaryContactId",
    "parentClientId",
    "accTeamingRoles",
];

/// Fields the server sets; a body that sends them is refused.
pub const READ_ONLY_FIELDS: [&str; 4] = ["id", "uuid", "createdTime", "modifiedTime"];

/// Fields a new client must have.
pub const REQUIRED_FIELDS: [&str; 3] = ["name", "status", "active"];

/// Reads the body of `POST /v2/client` into a new client (without its id).
pub fn read_new_client(body: &Value) -> Result<Client, DomainError> {
    let root = FieldPath::root();
    let mut reader = Reader::new();
    let Some(fields) = read_object(&mut reader, body, &root) else {
        return Err(reader.into_error());
    };
    let patch = read_fields(&mut reader, &fields);
    for key in REQUIRED_FIELDS {
        if !fields.contains(key) {
            reader.error(&fields.path_of(key), MUST_NOT_BE_NULL);
        }
    }
    Client::create(reader.finish(patch)?)
}

/// Reads the body of `PATCH /v2/client/{uuid}`.
pub fn read_client_patch(body: &Value) -> Result<ClientPatch, DomainError> {
    let root = FieldPath::root();
    let mut reader = Reader::new();
    let Some(fields) = read_object(&mut reader, body, &root) else {
        return Err(reader.into_error());
    };
    let patch = read_fields(&mut reader, &fields);
    reader.finish(patch)
}

/// The body's object, after reporting each unknown and each read-only key.
fn read_object<'v, 'p>(
    reader: &mut Reader,
    body: &'v Value,
    root: &'p FieldPath,
) -> Option<Fields<'v, 'p>> {
    let Value::Object(map) = body else {
        reader.error(root, "the body must be a JSON object");
        return None;
    };
    for key in map.keys() {
        if READ_ONLY_FIELDS.contains(&key.as_str()) {
            reader.error(
                &root.key(key),
                format!("{key} is read-only and cannot be set"),
            );
        } else if !CLIENT_FIELDS.contains(&key.as_str()) {
            reader.error(&root.key(key), format!("unknown field {key}"));
        }
    }
    // Every key was judged above, in this surface's words; the core reader
    // is asked only for the field accessor.
    let present: Vec<&str> = map.keys().map(String::as_str).collect();
    reader.object(body, root, &present)
}

/// Every writable field, in the seed's order (so errors come in that order).
fn read_fields(reader: &mut Reader, fields: &Fields<'_, '_>) -> ClientPatch {
    use Nullable::{No, Yes};
    ClientPatch {
        custom: reader.patch(fields, "custom", Yes, read_custom),
        name: reader.patch(fields, "name", No, text(client::NAME_CHARS)),
        site_url: reader.patch(fields, "siteUrl", Yes, text(client::SITE_URL_CHARS)),
        logo_url: reader.patch(fields, "logoUrl", Yes, text(client::LOGO_URL_CHARS)),
        status: reader.patch(fields, "status", No, read_status),
        active: reader.patch(fields, "active", No, read_boolean),
        inception_date: reader.patch(fields, "inceptionDate", Yes, read_date),
        terminated_date: reader.patch(fields, "terminatedDate", Yes, read_date),
        street: reader.patch(fields, "street", Yes, text(client::STREET_CHARS)),
        city: reader.patch(fields, "city", Yes, text(client::CITY_CHARS)),
        state: reader.patch(fields, "state", Yes, text(client::STATE_CHARS)),
        zip: reader.patch(fields, "zip", Yes, text(client::ZIP_CHARS)),
        country: reader.patch(fields, "country", Yes, text(client::COUNTRY_CHARS)),
        region: reader.patch(fields, "region", Yes, |reader, value, path| {
            free_object(reader, value, path, client::REGION_LIMITS)
        }),
        timezone: reader.patch(fields, "timezone", Yes, read_timezone),
        external_id: reader.patch(fields, "externalId", Yes, text(client::EXTERNAL_ID_CHARS)),
        salesforce_account_id: reader.patch(
            fields,
            "salesforceAccountId",
            Yes,
            text(client::SALESFORCE_ACCOUNT_ID_CHARS),
        ),
        zendesk_id: reader.patch(fields, "zendeskId", Yes, text(client::INTEGRATION_ID_CHARS)),
        freshdesk_id: reader.patch(
            fields,
            "freshdeskId",
            Yes,
            text(client::INTEGRATION_ID_CHARS),
        ),
        usage_id: reader.patch(fields, "usageId", Yes, text(client::INTEGRATION_ID_CHARS)),
        stripe_id: reader.patch(fields, "stripeId", Yes, text(client::INTEGRATION_ID_CHARS)),
        external_status_id: reader.patch(
            fields,
            "externalStatusId",
            Yes,
            text(client::INTEGRATION_ID_CHARS),
        ),
        nps_score: reader.patch(fields, "npsScore", Yes, |reader, value, path| {
            integer(client::NPS_SCORE)(reader, value, path)
                .and_then(|score| i32::try_from(score).ok())
        }),
        note: reader.patch(fields, "note", Yes, text(client::NOTE_CHARS)),
        created_by_employee_id: reader.patch(fields, "createdByEmployeeId", Yes, system_id()),
        modified_by_employee_id: reader.patch(fields, "modifiedByEmployeeId", Yes, system_id()),
        managed_by_employee_id: reader.patch(fields, "managedByEmployeeId", Yes, system_id()),
        assigned_sales_rep_id: reader.patch(fields, "assignedSalesRepId", Yes, system_id()),
        assigned_sales_rep: reader.patch(
            fields,
            "assignedSalesRep",
            Yes,
            text(client::ASSIGNED_SALES_REP_CHARS),
        ),
        client_type_id: reader.patch(fields, "clientTypeId", Yes, system_id()),
        client_type_title: reader.patch(
            fields,
            "clientTypeTitle",
            Yes,
            text(client::CLIENT_TYPE_TITLE_CHARS),
        ),
        success_cycle_id: reader.patch(fields, "successCycleId", Yes, system_id()),
        primary_contact_id: reader.patch(fields, "primaryContactId", Yes, system_id()),
        parent_client_id: reader.patch(fields, "parentClientId", Yes, system_id()),
        acc_teaming_roles: reader.patch(fields, "accTeamingRoles", Yes, read_teaming_roles),
    }
}

/// The value, unless it is `null` (which only reaches a converter for a
/// field that cannot be cleared, or inside a nested value).
fn present<'v>(reader: &mut Reader, value: &'v Value, path: &FieldPath) -> Option<&'v Value> {
    if value.is_null() {
        reader.error(path, MUST_NOT_BE_NULL);
        None
    } else {
        Some(value)
    }
}

fn size_message(range: &RangeInclusive<usize>) -> String {
    format!("size must be between {} and {}", range.start(), range.end())
}

/// A string whose length in characters lies in `chars`.
fn text(
    chars: RangeInclusive<usize>,
) -> impl Fn(&mut Reader, &Value, &FieldPath) -> Option<String> {
    move |reader, value, path| {
        let Value::String(text) = present(reader, value, path)? else {
            reader.error(path, "must be a string");
            return None;
        };
        if chars.contains(&text.chars().count()) {
            Some(text.clone())
        } else {
            reader.error(path, size_message(&chars));
            None
        }
    }
}

/// An integer in `range`. `5.0` is an integer (JSON does not tell them
/// apart); `5.5` and `"5"` are not.
fn integer(range: RangeInclusive<i64>) -> impl Fn(&mut Reader, &Value, &FieldPath) -> Option<i64> {
    move |reader, value, path| {
        let Value::Number(number) = present(reader, value, path)? else {
            reader.error(path, "must be an integer");
            return None;
        };
        let integer = if let Some(integer) = number.as_i64() {
            Some(integer)
        } else if number.is_u64() {
            None // above i64::MAX, so out of every range
        } else {
            match number.as_f64() {
                Some(float) if float.fract() != 0.0 => {
                    reader.error(path, "must be an integer");
                    return None;
                }
                // Integral floats this small convert exactly enough for a range check.
                Some(float) if float.abs() < 9.2e18 => Some(float as i64),
                _ => None,
            }
        };
        match integer {
            Some(integer) if range.contains(&integer) => Some(integer),
            // Open-ended ranges are the int64 ids; naming the type covers
            // numbers past i64::MAX too.
            _ if *range.end() == i64::MAX => {
                reader.error(
                    path,
                    format!(
                        "must be an int64 greater than or equal to {}",
                        range.start()
                    ),
                );
                None
            }
            _ => {
                reader.error(
                    path,
                    format!("must be between {} and {}", range.start(), range.end()),
                );
                None
            }
        }
    }
}

/// An int64 ≥ 0, as the seed types every ClientSuccess system id.
fn system_id() -> impl Fn(&mut Reader, &Value, &FieldPath) -> Option<i64> {
    integer(client::SYSTEM_ID)
}

fn read_boolean(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<bool> {
    match present(reader, value, path)? {
        Value::Bool(flag) => Some(*flag),
        _ => {
            reader.error(path, "must be a boolean");
            None
        }
    }
}

fn read_status(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<ClientStatus> {
    let status = match present(reader, value, path)? {
        Value::String(text) => ClientStatus::parse(text),
        _ => None,
    };
    if status.is_none() {
        reader.error(
            path,
            format!("must be one of {}", client::STATUSES.join(", ")),
        );
    }
    status
}

fn read_date(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<NaiveDate> {
    let Value::String(text) = present(reader, value, path)? else {
        reader.error(path, "must be a date in the format YYYY-MM-DD");
        return None;
    };
    client::parse_date(text)
        .map_err(|message| reader.error(path, message))
        .ok()
}

fn read_timezone(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    let name = text(client::TIMEZONE_CHARS)(reader, value, path)?;
    client::check_timezone(&name)
        .map_err(|message| reader.error(path, message))
        .ok()?;
    Some(name)
}

/// `custom`: an object whose keys are custom field names and whose values
/// are scalars, arrays of scalars, or `null` (remove the key).
fn read_custom(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Map<String, Value>> {
    let Value::Object(map) = present(reader, value, path)? else {
        reader.error(path, "must be an object");
        return None;
    };
    let mut valid = true;
    for (key, value) in map {
        let key_path = path.key(key);
        if !client::CUSTOM_KEY_CHARS.contains(&key.chars().count()) {
            reader.error(
                &key_path,
                format!(
                    "custom field names must have {} to {} characters",
                    client::CUSTOM_KEY_CHARS.start(),
                    client::CUSTOM_KEY_CHARS.end()
                ),
            );
            valid = false;
        } else if !value.is_null()
            && let Err(message) = client::check_custom_value(value)
        {
            reader.error(&key_path, message);
            valid = false;
        }
    }
    valid.then(|| map.clone())
}

fn read_teaming_roles(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
) -> Option<Vec<Map<String, Value>>> {
    let Value::Array(items) = present(reader, value, path)? else {
        reader.error(path, "must be an array of objects");
        return None;
    };
    if !client::ACC_TEAMING_ROLES_ITEMS.contains(&items.len()) {
        reader.error(path, size_message(&client::ACC_TEAMING_ROLES_ITEMS));
        return None;
    }
    let mut roles = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        match free_object(
            reader,
            item,
            &path.index(index),
            client::ACC_TEAMING_ROLE_LIMITS,
        ) {
            Some(role) => roles.push(role),
            None => valid = false,
        }
    }
    valid.then_some(roles)
}

/// Any JSON object within `limits`, stored as given.
fn free_object(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
    limits: FreeFormLimits,
) -> Option<Map<String, Value>> {
    let Value::Object(map) = present(reader, value, path)? else {
        reader.error(path, "must be an object");
        return None;
    };
    bounded(reader, value, path, limits, 1).then(|| map.clone())
}

/// Whether a free-form value keeps within `limits`; reports where not.
fn bounded(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
    limits: FreeFormLimits,
    depth: usize,
) -> bool {
    let entries = match value {
        Value::Object(map) => map.len(),
        Value::Array(items) => items.len(),
        Value::String(text) => {
            let fits = text.chars().count() <= limits.max_string_chars;
            if !fits {
                reader.error(path, size_message(&(0..=limits.max_string_chars)));
            }
            return fits;
        }
        _ => return true,
    };
    if depth > limits.max_depth {
        reader.error(
            path,
            format!("must not nest deeper than {} levels", limits.max_depth),
        );
        return false;
    }
    if entries > limits.max_entries {
        reader.error(path, size_message(&(0..=limits.max_entries)));
        return false;
    }
    let mut fits = true;
    match value {
        Value::Object(map) => {
            for (key, nested) in map {
                fits &= bounded(reader, nested, &path.key(key), limits, depth + 1);
            }
        }
        Value::Array(items) => {
            for (index, nested) in items.iter().enumerate() {
                fits &= bounded(reader, nested, &path.index(index), limits, depth + 1);
            }
        }
        _ => {}
    }
    fits
}

// ---- search ---------------------------------------------------------------

/// Page size when `size` is not given (Spring Data's default).
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// `size` bounds: a page of at most 100 clients keeps responses small.
pub const PAGE_SIZE: RangeInclusive<i64> = 1..=100;
/// `page` is zero-based, as in Spring Data; the upper bound is int32's.
pub const PAGE: RangeInclusive<i64> = 0..=i32::MAX as i64;
/// The search's query parameters.
pub const SEARCH_PARAMETERS: [&str; 6] = ["page", "size", "name", "status", "active", "externalId"];

/// The query parameters of `GET /v2/client/search` (documentation; the
/// handler reads them with [`read_search_query`] to report each bad one).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ClientSuccessSearchParams {
    /// Zero-based page number; default 0.
    #[param(minimum = 0, maximum = 2147483647)]
    pub page: Option<i64>,
    /// Clients per page, 1 to 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
    /// Clients whose name contains this text, ignoring case.
    pub name: Option<String>,
    /// Clients with this status.
    #[param(inline)]
    pub status: Option<ClientSuccessStatus>,
    /// `true` or `false`.
    pub active: Option<bool>,
    /// Clients with exactly this external id.
    pub external_id: Option<String>,
}

/// A search: which page, and which clients.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub page: i64,
    pub size: i64,
    pub filter: ClientFilter,
}

/// One bad query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterError {
    pub parameter: String,
    pub detail: String,
}

/// Reads the search's query parameters, reporting every bad one: unknown
/// names (so a typo does not silently widen the search), repeats, and
/// values that do not parse.
pub fn read_search_query(pairs: &[(String, String)]) -> Result<SearchQuery, Vec<ParameterError>> {
    let mut errors = Vec::new();
    let mut error = |parameter: &str, detail: String| {
        errors.push(ParameterError {
            parameter: parameter.to_owned(),
            detail,
        })
    };
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in pairs {
        if !SEARCH_PARAMETERS.contains(&name.as_str()) {
            error(
                name,
                format!(
                    "unknown query parameter {name}; known: {}",
                    SEARCH_PARAMETERS.join(", ")
                ),
            );
        } else if seen.contains(&name.as_str()) {
            error(name, "must be given at most once".to_owned());
        } else {
            seen.push(name);
        }
    }
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let mut number = |name: &str, range: RangeInclusive<i64>, default: i64| match value(name) {
        None => default,
        Some(text) => match text.parse::<i64>() {
            Ok(number) if range.contains(&number) => number,
            _ => {
                error(
                    name,
                    format!(
                        "must be an integer between {} and {}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        },
    };
    let page = number("page", PAGE, 0);
    let size = number("size", PAGE_SIZE, DEFAULT_PAGE_SIZE);
    let status = value("status").and_then(|text| {
        let status = ClientStatus::parse(text);
        if status.is_none() {
            error(
                "status",
                format!("must be one of {}", client::STATUSES.join(", ")),
            );
        }
        status
    });
    let active = value("active").and_then(|text| match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            error("active", "must be true or false".to_owned());
            None
        }
    });
    let query = SearchQuery {
        page,
        size,
        filter: ClientFilter {
            name: value("name").map(str::to_owned),
            status,
            active,
            external_id: value("externalId").map(str::to_owned),
        },
    };
    if errors.is_empty() {
        Ok(query)
    } else {
        Err(errors)
    }
}

/// One page of search results *(vendor envelope)*.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSuccessPage {
    pub data: Vec<ClientSuccessClient>,
    /// Whether this is the first page (page 0).
    pub first: bool,
    /// Whether no page follows this one.
    pub last: bool,
    /// Zero-based page number, as requested.
    pub page: i64,
    /// Page size, as requested (or the default 20).
    pub size: i64,
    pub total_pages: i64,
    pub total_elements: i64,
}

/// The requested page of the clients that match, ordered by `id`.
pub fn page_of(records: Vec<Record<Client>>, query: &SearchQuery) -> ClientSuccessPage {
    let mut matching: Vec<Record<Client>> = records
        .into_iter()
        .filter(|record| query.filter.matches(&record.data))
        .collect();
    matching.sort_by_key(|record| record.data.id);
    let total_elements = i64::try_from(matching.len()).unwrap_or(i64::MAX);
    let total_pages = (total_elements + query.size - 1) / query.size;
    // page ≤ i32::MAX and size ≤ 100, so the product fits.
    let skip = usize::try_from(query.page * query.size).unwrap_or(usize::MAX);
    let take = usize::try_from(query.size).unwrap_or(usize::MAX);
    ClientSuccessPage {
        data: matching
            .iter()
            .skip(skip)
            .take(take)
            .map(ClientSuccessClient::from)
            .collect(),
        first: query.page == 0,
        last: query.page + 1 >= total_pages,
        page: query.page,
        size: query.size,
        total_pages,
        total_elements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(result: Result<ClientPatch, DomainError>) -> Vec<(String, String)> {
        match result {
            Err(DomainError::Invalid(errors)) => errors
                .into_iter()
                .map(|error| (error.path.to_json_pointer(), error.message))
                .collect(),
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn every_invalid_field_is_reported_in_seed_order() {
        let body = json!({
            "id": 5,
            "nickname": "x",
            "name": null,
            "status": "GONE",
            "npsScore": 101,
            "zip": "x".repeat(21),
            "inceptionDate": "2025-02-29",
            "timezone": "Mars/Olympus",
            "parentClientId": -1,
            "custom": {"": 1, "nested": {"a": 1}},
            "accTeamingRoles": [{"role": "CSM"}, "CSM"],
        });
        assert_eq!(
            messages(read_client_patch(&body)),
            vec![
                ("/id".into(), "id is read-only and cannot be set".into()),
                ("/nickname".into(), "unknown field nickname".into()),
                (
                    "/custom/".into(),
                    "custom field names must have 1 to 100 characters".into()
                ),
                (
                    "/custom/nested".into(),
                    "must be a string, number, boolean or an array of those".into()
                ),
                ("/name".into(), "must not be null".into()),
                (
                    "/status".into(),
                    "must be one of ACTIVE, INACTIVE, TRIAL, TERMINATED".into()
                ),
                (
                    "/inceptionDate".into(),
                    "2025-02-29 is not a date on the calendar".into()
                ),
                ("/zip".into(), "size must be between 0 and 20".into()),
                (
                    "/timezone".into(),
                    "Mars/Olympus is not a tz database time zone name, e.g. America/Denver".into()
                ),
                ("/npsScore".into(), "must be between -100 and 100".into()),
                (
                    "/parentClientId".into(),
                    "must be an int64 greater than or equal to 0".into()
                ),
                ("/accTeamingRoles/1".into(), "must be an object".into()),
            ]
        );
    }

    #[test]
    fn nullable_fields_accept_null_and_integers_reject_fractions() {
        let patch =
            read_client_patch(&json!({"note": null, "npsScore": -100.0})).expect("a valid patch");
        assert_eq!(patch.note, crate::core::patch::Patch::Null);
        assert_eq!(patch.nps_score, crate::core::patch::Patch::Value(-100));
        assert_eq!(
            messages(read_client_patch(
                &json!({"npsScore": 5.5, "successCycleId": "5"})
            )),
            vec![
                ("/npsScore".into(), "must be an integer".into()),
                ("/successCycleId".into(), "must be an integer".into()),
            ]
        );
    }

    #[test]
    fn a_new_client_needs_name_status_and_active() {
        match read_new_client(&json!({"note": "n"})) {
            Err(DomainError::Invalid(errors)) => assert_eq!(
                errors
                    .iter()
                    .map(|error| error.path.to_json_pointer())
                    .collect::<Vec<_>>(),
                vec!["/name", "/status", "/active"]
            ),
            other => panic!("expected validation errors, got {other:?}"),
        }
        let client = read_new_client(&json!({"name": "", "status": "TRIAL", "active": false}))
            .expect("the seed allows an empty name");
        assert_eq!(client.status, ClientStatus::Trial);
    }

    #[test]
    fn free_form_values_are_bounded() {
        // The region itself is level 1.
        let deep = json!({"a": {"b": {"c": {"d": {"e": 1}}}}});
        let wide: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(
            messages(read_client_patch(&json!({"region": deep}))),
            vec![(
                "/region/a/b/c/d".into(),
                "must not nest deeper than 4 levels".into()
            )]
        );
        assert_eq!(
            messages(read_client_patch(&json!({"region": wide}))),
            vec![("/region".into(), "size must be between 0 and 50".into())]
        );
        assert!(read_client_patch(&json!({"region": {"a": {"b": {"c": {"d": 1}}}}})).is_ok());
    }

    #[test]
    fn search_parameters_are_checked() {
        assert_eq!(
            read_search_query(&[]),
            Ok(SearchQuery {
                page: 0,
                size: DEFAULT_PAGE_SIZE,
                filter: ClientFilter::default()
            })
        );
        let query = read_search_query(&pairs(&[
            ("page", "2"),
            ("size", "100"),
            ("status", "TRIAL"),
            ("active", "false"),
            ("externalId", "e"),
            ("name", "ac"),
        ]))
        .expect("valid");
        assert_eq!((query.page, query.size), (2, 100));
        assert_eq!(query.filter.status, Some(ClientStatus::Trial));
        assert_eq!(query.filter.active, Some(false));
        let errors = read_search_query(&pairs(&[
            ("page", "-1"),
            ("size", "101"),
            ("status", "gone"),
            ("active", "yes"),
            ("sort", "name"),
            ("name", "a"),
            ("name", "b"),
        ]))
        .err()
        .unwrap_or_default();
        assert_eq!(
            errors
                .iter()
                .map(|error| error.parameter.as_str())
                .collect::<Vec<_>>(),
            vec!["sort", "name", "page", "size", "status", "active"]
        );
    }
}

/// Reads a history request's `page` and `size` (nothing else).
pub fn read_history_query(pairs: &[(String, String)]) -> Result<(i64, i64), Vec<ParameterError>> {
    let is_paging = |name: &str| name == "page" || name == "size";
    let mut errors: Vec<ParameterError> = pairs
        .iter()
        .filter(|(name, _)| !is_paging(name))
        .map(|(name, _)| ParameterError {
            parameter: name.clone(),
            detail: format!("unknown query parameter {name}; known: page, size"),
        })
        .collect();
    let paging: Vec<(String, String)> = pairs
        .iter()
        .filter(|(name, _)| is_paging(name))
        .cloned()
        .collect();
    match read_search_query(&paging) {
        Ok(query) if errors.is_empty() => Ok((query.page, query.size)),
        Ok(_) => Err(errors),
        Err(mut more) => {
            errors.append(&mut more);
            Err(errors)
        }
    }
}

/// One create, update or delete of a client.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSuccessHistoryEntry {
    /// The client's version after the change.
    pub version: i64,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub user_id: String,
    /// The API key used; null for JWT callers.
    pub key_id: Option<String>,
    pub request_id: String,
    /// ISO 8601 UTC with milliseconds.
    pub at: String,
    pub changes: Vec<crate::surfaces::FieldChange>,
}

impl From<&crate::core::records::HistoryEntry> for ClientSuccessHistoryEntry {
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
            request_id: entry.request_id.clone(),
            at: timestamp(&entry.at),
            changes,
        }
    }
}

/// A page of a client's history, oldest first, in the search page's shape.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSuccessHistoryPage {
    pub data: Vec<ClientSuccessHistoryEntry>,
    pub first: bool,
    pub last: bool,
    pub page: i64,
    pub size: i64,
    pub total_pages: i64,
    pub total_elements: i64,
}
