//! ClientSuccess clients: the record, every length, range and format its
//! fields must respect (the seed's numbers, gathered here as constants), the
//! partial-update model (which fields can be cleared, how `custom` merges,
//! how `clientTypeId` overrides `clientTypeTitle`) and the rules that
//! involve other clients (`parentClientId` must name a client of the same
//! workspace and must not close a cycle).

use std::ops::RangeInclusive;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{DomainError, FieldError, FieldPath, RecordKind};
use super::fields::{
    Boolean, BoundedObject, Check, Choice, Choose, Int32, Integer, Mode, Record, Refine, Rules,
    Text,
};
use super::input::{Expected, Fields, FreeFormLimits, Reader};
use super::patch::Patch;
use super::records::{Document, IdScheme, NewIds, WriteSession};
use super::shape::{self, Additional, JsonType, Shape};

// Limits that several fields share; a field's own limit is in its
// declaration below.

/// `zendeskId`, `freshdeskId`, `usageId`, `stripeId`, `externalStatusId`.
pub const INTEGRATION_ID_CHARS: RangeInclusive<usize> = 0..=200;
/// Every `…Id` field the seed types as int64 ≥ 0.
pub const SYSTEM_ID: RangeInclusive<i64> = 0..=i64::MAX;
/// `custom` holds at most this many keys after a merge *(ours)*.
pub const MAX_CUSTOM_KEYS: usize = 100;
pub const CUSTOM_KEY_CHARS: RangeInclusive<usize> = 1..=100;
/// A `custom` value is a scalar or an array of scalars (a multi-select
/// field); strings and arrays are bounded.
pub const CUSTOM_STRING_CHARS: RangeInclusive<usize> = 0..=10_000;
pub const CUSTOM_ARRAY_ITEMS: RangeInclusive<usize> = 0..=100;
/// `region` is any JSON object within these bounds (the seed gives no
/// shape), and so is each `accTeamingRoles` element.
pub const REGION_LIMITS: FreeFormLimits = FreeFormLimits {
    max_depth: 4,
    max_entries: 50,
    max_string_chars: 1_000,
};
pub const ACC_TEAMING_ROLE_LIMITS: FreeFormLimits = REGION_LIMITS;
pub const ACC_TEAMING_ROLES_ITEMS: RangeInclusive<usize> = 0..=100;
/// How many ancestors the cycle check walks; a deeper hierarchy is refused
/// so that the check stays bounded.
pub const MAX_PARENT_DEPTH: usize = 100;

/// A client's lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientStatus {
    Active,
    Inactive,
    Trial,
    Terminated,
}

impl Choice for ClientStatus {
    /// `status` values *(vendor)*.
    const NAMES: &'static [&'static str] = &["ACTIVE", "INACTIVE", "TRIAL", "TERMINATED"];
    const COMPONENT: Option<&'static str> = Some("ClientSuccessStatus");

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "ACTIVE" => Some(ClientStatus::Active),
            "INACTIVE" => Some(ClientStatus::Inactive),
            "TRIAL" => Some(ClientStatus::Trial),
            "TERMINATED" => Some(ClientStatus::Terminated),
            _ => None,
        }
    }
}

crate::view_as_stored! {
    ClientStatus => Choose::<ClientStatus>::new().shape(),
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Active => "ACTIVE",
            ClientStatus::Inactive => "INACTIVE",
            ClientStatus::Trial => "TRIAL",
            ClientStatus::Terminated => "TERMINATED",
        }
    }
}

/// A client as stored, declared field by field in the seed's order. The
/// record key is the UUID used in paths; `id` is the int64 the server
/// assigns, kept in the body so other clients can name it as their
/// `parentClientId`. A create is a patch applied to an empty client: `null`
/// means "no value", and only `name`, `status` and `active` are required
/// (and cannot be cleared).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[serde(rename_all = "camelCase")]
#[record(id_after = id)]
pub struct Client {
    /// ClientSuccess system id, assigned by the server.
    #[field(read_only)]
    pub id: i64,
    // Described by its check: the request and the view say different things.
    #[field(check = CustomValues, nullable, merge)]
    pub custom: Map<String, Value>,
    /// Up to 255 characters, empty allowed *(seed)*.
    #[field(check = Text(0..=255), required)]
    pub name: String,
    #[field(check = Text(0..=1024))]
    pub site_url: Option<String>,
    #[field(check = Text(0..=1024))]
    pub logo_url: Option<String>,
    #[field(check = Choose::<ClientStatus>::new(), required)]
    pub status: ClientStatus,
    #[field(check = Boolean, required)]
    pub active: bool,
    #[field(check = CalendarDate)]
    pub inception_date: Option<NaiveDate>,
    #[field(check = CalendarDate)]
    pub terminated_date: Option<NaiveDate>,
    #[field(check = Text(0..=1024))]
    pub street: Option<String>,
    #[field(check = Text(0..=100))]
    pub city: Option<String>,
    #[field(check = Text(0..=100))]
    pub state: Option<String>,
    #[field(check = Text(0..=20))]
    pub zip: Option<String>,
    #[field(check = Text(0..=100))]
    pub country: Option<String>,
    /// Any JSON object (at most 4 levels, 50 entries per level), replaced whole.
    #[field(check = BoundedObject(REGION_LIMITS))]
    pub region: Option<Map<String, Value>>,
    #[field(check = TimeZone)]
    pub timezone: Option<String>,
    #[field(check = Text(0..=100))]
    pub external_id: Option<String>,
    /// Salesforce account ids are 15 or 18 characters.
    #[field(check = Text(0..=18))]
    pub salesforce_account_id: Option<String>,
    #[field(check = Text(INTEGRATION_ID_CHARS))]
    pub zendesk_id: Option<String>,
    #[field(check = Text(INTEGRATION_ID_CHARS))]
    pub freshdesk_id: Option<String>,
    #[field(check = Text(INTEGRATION_ID_CHARS))]
    pub usage_id: Option<String>,
    #[field(check = Text(INTEGRATION_ID_CHARS))]
    pub stripe_id: Option<String>,
    #[field(check = Text(INTEGRATION_ID_CHARS))]
    pub external_status_id: Option<String>,
    #[field(check = Int32(-100..=100))]
    pub nps_score: Option<i32>,
    /// Up to 65,535 characters (the seed gives no bound).
    #[field(check = Text(0..=65_535))]
    pub note: Option<String>,
    #[field(check = Integer(SYSTEM_ID))]
    pub created_by_employee_id: Option<i64>,
    #[field(check = Integer(SYSTEM_ID))]
    pub modified_by_employee_id: Option<i64>,
    #[field(check = Integer(SYSTEM_ID))]
    pub managed_by_employee_id: Option<i64>,
    #[field(check = Integer(SYSTEM_ID))]
    pub assigned_sales_rep_id: Option<i64>,
    #[field(check = Text(0..=45))]
    pub assigned_sales_rep: Option<String>,
    /// The client type by id; overrides `clientTypeTitle` when both are
    /// sent, and clears the stored title.
    #[field(check = Integer(SYSTEM_ID), apply = apply_client_type_id)]
    pub client_type_id: Option<i64>,
    /// The client type by title (up to 255 characters); when sent without
    /// `clientTypeId`, clears the stored id.
    #[field(check = Text(0..=255), apply = apply_client_type_title)]
    pub client_type_title: Option<String>,
    #[field(check = Integer(SYSTEM_ID))]
    pub success_cycle_id: Option<i64>,
    #[field(check = Integer(SYSTEM_ID))]
    pub primary_contact_id: Option<i64>,
    /// The `id` of a client of the same workspace; no cycles.
    #[field(check = Integer(SYSTEM_ID))]
    pub parent_client_id: Option<i64>,
    /// Account teaming roles: JSON objects (at most 100, each at most 4
    /// levels and 50 entries per level), replaced whole.
    #[field(check = TeamingRoles, nullable)]
    pub acc_teaming_roles: Vec<Map<String, Value>>,
}

/// A date of the form `YYYY-MM-DD` that exists on the calendar
/// (`2025-02-29` does not). Four-digit years only, zero-padded month and
/// day, nothing around it: chrono alone would also take `2025-2-3`.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes
            .iter()
            .enumerate()
            .all(|(position, byte)| match position {
                4 | 7 => *byte == b'-',
                _ => byte.is_ascii_digit(),
            });
    if !shaped {
        return Err(DATE_FORMAT_MESSAGE.to_owned());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text} is not a date on the calendar"))
}

const DATE_FORMAT_MESSAGE: &str = "must be a date in the format YYYY-MM-DD";

/// `YYYY-MM-DD` for the days that exist: 1–28 in every month, 29–30 in
/// all but February, 31 in the long months, and 29 February in leap years.
pub const CALENDAR_DATE_PATTERN: &str = concat!(
    "^(?:[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])",
    "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)",
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)$"
);

/// A time zone name of the tz database (`America/Denver`, `UTC`), exactly
/// as the database spells it.
pub fn check_timezone(name: &str) -> Result<(), String> {
    name.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| format!("{name} is not a tz database time zone name, e.g. America/Denver"))
}

/// One value of `custom`: a string, number or boolean, or an array of those
/// (a multi-select field), within bounds. `null` is not a value: in a body
/// it removes the key.
pub fn check_custom_value(value: &Value) -> Result<(), String> {
    let scalar = |value: &Value| match value {
        Value::String(text) if text.chars().count() > *CUSTOM_STRING_CHARS.end() => Err(format!(
            "size must be between 0 and {}",
            CUSTOM_STRING_CHARS.end()
        )),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        _ => Err("must be a string, number, boolean or an array of those".to_owned()),
    };
    match value {
        Value::Array(items) if items.len() > *CUSTOM_ARRAY_ITEMS.end() => Err(format!(
            "size must be between 0 and {}",
            CUSTOM_ARRAY_ITEMS.end()
        )),
        Value::Array(items) => items.iter().try_for_each(scalar),
        other => scalar(other),
    }
}

// ---- the rules of the values that are more than a type and a length ------

/// `inceptionDate`, `terminatedDate`: a real calendar date.
pub struct CalendarDate;

impl Check for CalendarDate {
    type Value = NaiveDate;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<NaiveDate> {
        let text = match value {
            Value::Null => {
                reader.type_error(path, Expected::String, value);
                return None;
            }
            Value::String(text) => text,
            _ => {
                reader.error(path, DATE_FORMAT_MESSAGE);
                return None;
            }
        };
        parse_date(text)
            .map_err(|message| reader.error(path, message))
            .ok()
    }

    fn shape(&self) -> Shape {
        shape::string()
            .format("date")
            .pattern(CALENDAR_DATE_PATTERN)
            .describe("`YYYY-MM-DD`, a real calendar date")
    }
}

/// `timezone`: a tz database name, exactly as the database spells it.
pub struct TimeZone;

/// The characters of a tz database name, by its own rules (letters,
/// digits, `_`, `+`, `-`, parts joined by `/`).
const TIMEZONE_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$";

fn timezone_shape() -> Shape {
    shape::text(0..=60)
        .pattern(TIMEZONE_PATTERN)
        .example("America/Denver")
        .describe(
            "A time zone name of the IANA tz database, spelled as the database \
             spells it (case matters), e.g. `America/Denver` or `UTC`; any other \
             name is refused",
        )
}

impl Check for TimeZone {
    type Value = String;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
        Refine(Text(0..=60), |name: String| {
            check_timezone(&name).map(|()| name)
        })
        .read(reader, value, path)
    }

    /// A plain string, not an enum of the database's ~600 names: names
    /// such as `GMT+0`, `GMT-0` and `GMT0` become the same identifier in
    /// generated clients (openapi-python-client refused the document), and
    /// a client's enum would go stale with every tz database release. The
    /// pattern states the characters a name is made of.
    fn shape(&self) -> Shape {
        timezone_shape()
    }

    fn view_shape(&self) -> Shape {
        timezone_shape()
    }
}

/// `custom`: custom field names and their values (or `null`, removing the
/// key).
pub struct CustomValues;

impl Check for CustomValues {
    type Value = Map<String, Value>;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Self::Value> {
        let Value::Object(map) = value else {
            reader.type_error(path, Expected::Object, value);
            return None;
        };
        let mut valid = true;
        for (key, value) in map {
            let key_path = path.key(key);
            if !CUSTOM_KEY_CHARS.contains(&key.chars().count()) {
                reader.error(
                    &key_path,
                    format!(
                        "custom field names must have {} to {} characters",
                        CUSTOM_KEY_CHARS.start(),
                        CUSTOM_KEY_CHARS.end()
                    ),
                );
                valid = false;
            } else if !value.is_null()
                && let Err(message) = check_custom_value(value)
            {
                reader.error(&key_path, message);
                valid = false;
            }
        }
        valid.then(|| map.clone())
    }

    fn shape(&self) -> Shape {
        let scalar = || Shape {
            max_length: Some(*CUSTOM_STRING_CHARS.end()),
            ..Shape::of(&[JsonType::String, JsonType::Number, JsonType::Boolean])
        };
        let value = shape::by_type(vec![
            scalar(),
            shape::array(scalar(), CUSTOM_ARRAY_ITEMS),
            Shape::of(&[JsonType::Null]),
        ]);
        Shape {
            property_names: Some(Box::new(shape::text(CUSTOM_KEY_CHARS))),
            additional: Additional::Of(Box::new(value)),
            ..shape::object()
        }
        .describe(format!(
            "Custom field values by field name: a string, number or boolean, or an array of those; `null` removes the key. At most {MAX_CUSTOM_KEYS} keys once merged into the stored ones."
        ))
    }

    fn view_shape(&self) -> Shape {
        shape::object().describe(
            "Custom field values by field name: strings, numbers, booleans or arrays of those.",
        )
    }
}

/// `accTeamingRoles`: JSON objects within bounds.
pub struct TeamingRoles;

impl Check for TeamingRoles {
    type Value = Vec<Map<String, Value>>;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Self::Value> {
        reader.array_of(
            value,
            path,
            ACC_TEAMING_ROLES_ITEMS,
            Expected::ArrayOfObjects,
            |reader, item, path| reader.free_object(item, path, ACC_TEAMING_ROLE_LIMITS),
        )
    }

    fn shape(&self) -> Shape {
        shape::array(
            shape::bounded_object(ACC_TEAMING_ROLE_LIMITS),
            ACC_TEAMING_ROLES_ITEMS,
        )
    }
}

fn apply_client_type_id(client: &mut Client, patch: Patch<i64>) {
    match patch {
        Patch::Absent => {}
        Patch::Null => client.client_type_id = None,
        Patch::Value(id) => {
            client.client_type_id = Some(id);
            client.client_type_title = None;
        }
    }
}

fn apply_client_type_title(client: &mut Client, patch: Patch<String>) {
    match patch {
        Patch::Absent => {}
        Patch::Null => client.client_type_title = None,
        Patch::Value(title) => {
            client.client_type_title = Some(title);
            client.client_type_id = None;
        }
    }
}

impl Rules for Client {
    /// One client type, named by id or by title. The seed says the id
    /// overrides the title, so an id in the request wins and a title beside
    /// it is ignored; either one then replaces the other (see the `apply`
    /// functions), because a kept title could contradict a new id.
    fn after_read(
        _mode: Mode,
        _fields: &Fields<'_, '_>,
        patch: &mut ClientPatch,
        _reader: &mut Reader,
    ) {
        if matches!(patch.client_type_id, Patch::Value(_)) {
            patch.client_type_title = Patch::Absent;
        }
    }

    fn after_apply(&mut self, _mode: Mode) -> Result<(), Vec<FieldError>> {
        if self.custom.len() > MAX_CUSTOM_KEYS {
            return Err(vec![FieldError {
                path: FieldPath::root().key("custom"),
                message: format!(
                    "must hold at most {MAX_CUSTOM_KEYS} keys; this update would make {}",
                    self.custom.len()
                ),
            }]);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Document for Client {
    const KIND: RecordKind = RecordKind::Client;
    const ID_SCHEME: IdScheme = IdScheme::UuidAndSequence { start: 1 };

    /// The int64 id the store assigned (`UuidAndSequence` always gives one).
    fn with_ids(self, ids: &NewIds) -> Self {
        self.with_id(ids.number.unwrap_or_default())
    }

    /// Parents are named by the int64 id, so that id is the lookup key.
    fn lookup_key(&self) -> Option<String> {
        Some(self.id.to_string())
    }

    async fn check_relations(
        &self,
        _id: &str,
        previous: Option<&Self>,
        session: &mut WriteSession,
    ) -> Result<(), DomainError> {
        let Some(parent) = self.parent_client_id else {
            return Ok(());
        };
        // An unchanged parent was checked when it was set; re-checking it
        // would make an unrelated PATCH fail once that parent is deleted.
        if previous.is_some_and(|previous| previous.parent_client_id == Some(parent)) {
            return Ok(());
        }
        let path = FieldPath::root().key("parentClientId");
        let mut ancestor = parent;
        for depth in 0..MAX_PARENT_DEPTH {
            if ancestor == self.id {
                let message = if depth == 0 {
                    "a client cannot be its own parent".to_owned()
                } else {
                    format!(
                        "client {parent} is a descendant of this client; that would make a cycle"
                    )
                };
                return Err(DomainError::invalid(path, message));
            }
            let Some(record) = session
                .get_by_lookup::<Client>(&ancestor.to_string())
                .await?
            else {
                if depth == 0 {
                    return Err(DomainError::invalid(
                        path,
                        format!("no client with id {parent} in this workspace"),
                    ));
                }
                // A deleted ancestor ends the chain: ids are never reused,
                // so it cannot lead back here.
                return Ok(());
            };
            match record.data.parent_client_id {
                None => return Ok(()),
                Some(next) => ancestor = next,
            }
        }
        Err(DomainError::invalid(
            path,
            format!("the parent hierarchy would be deeper than {MAX_PARENT_DEPTH} levels"),
        ))
    }
}

impl Client {
    /// The client with the int64 id the store assigned.
    pub fn with_id(mut self, id: i64) -> Client {
        self.id = id;
        self
    }
}

/// The filters of a client search. `name` matches any client whose name
/// contains it, ignoring case (a search box); the others match exactly.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientFilter {
    pub name: Option<String>,
    pub status: Option<ClientStatus>,
    pub active: Option<bool>,
    pub external_id: Option<String>,
}

impl ClientFilter {
    pub fn matches(&self, client: &Client) -> bool {
        self.name
            .as_ref()
            .is_none_or(|needle| client.name.to_lowercase().contains(&needle.to_lowercase()))
            && self.status.is_none_or(|status| client.status == status)
            && self.active.is_none_or(|active| client.active == active)
            && self
                .external_id
                .as_ref()
                .is_none_or(|external_id| client.external_id.as_ref() == Some(external_id))
    }
}

impl crate::core::import::Importable for Client {
    /// The id of the client in the system it came from *(ours)*.
    const MATCH_FIELDS: &'static [&'static str] = &["externalId"];

    /// An exported client keeps its int64 `id` where it is free.
    fn given_number(row: &Map<String, Value>) -> Option<i64> {
        match row.get("id")? {
            Value::Number(number) => number.as_i64(),
            Value::String(text) => text.parse().ok(),
            _ => None,
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

    fn paths(result: Result<(), DomainError>) -> Vec<(String, String)> {
        match result {
            Err(DomainError::Invalid(errors)) => errors
                .into_iter()
                .map(|error| (error.path.to_json_pointer(), error.message))
                .collect(),
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    fn client() -> Client {
        Client::build(ClientPatch {
            name: Some("Acme".into()),
            status: Some(ClientStatus::Active),
            active: Some(true),
            note: Patch::Value("first note".into()),
            custom: Patch::Value(object(json!({"tier": "gold", "seats": 10, "gone": null}))),
            ..ClientPatch::default()
        })
        .expect("a valid client")
        .with_id(7)
    }

    #[test]
    fn a_new_client_is_a_patch_of_an_empty_one_and_drops_null_custom_keys() {
        let client = client();
        assert_eq!(client.id, 7);
        assert_eq!(client.lookup_key().as_deref(), Some("7"));
        assert_eq!(
            Value::Object(client.custom),
            json!({"tier": "gold", "seats": 10})
        );
        assert!(client.acc_teaming_roles.is_empty());
        assert!(
            Client::build(ClientPatch::default()).is_err(),
            "name, status and active are required"
        );
    }

    #[test]
    fn patch_touches_only_named_fields_and_null_clears() {
        let mut client = client();
        let before = client.clone();
        ClientPatch {
            note: Patch::Null,
            nps_score: Patch::Value(-100),
            ..ClientPatch::default()
        }
        .apply(&mut client)
        .expect("applies");
        assert_eq!(client.note, None);
        assert_eq!(client.nps_score, Some(-100));
        assert_eq!(client.name, before.name);
        assert_eq!(client.custom, before.custom);
    }

    #[test]
    fn custom_merges_key_by_key_and_stays_bounded() {
        let mut client = client();
        ClientPatch {
            custom: Patch::Value(object(json!({"tier": null, "region": "EMEA"}))),
            ..ClientPatch::default()
        }
        .apply(&mut client)
        .expect("applies");
        assert_eq!(
            Value::Object(client.custom.clone()),
            json!({"seats": 10, "region": "EMEA"})
        );

        let many: Map<String, Value> = (0..MAX_CUSTOM_KEYS)
            .map(|index| (format!("k{index}"), json!(index)))
            .collect();
        let result = ClientPatch {
            custom: Patch::Value(many),
            ..ClientPatch::default()
        }
        .apply(&mut client);
        assert_eq!(
            paths(result),
            vec![(
                "/custom".into(),
                "must hold at most 100 keys; this update would make 102".into()
            )]
        );

        ClientPatch {
            custom: Patch::Null,
            ..ClientPatch::default()
        }
        .apply(&mut client)
        .expect("applies");
        assert!(client.custom.is_empty());
    }

    #[test]
    fn client_type_id_overrides_title() {
        let mut client = client();
        let mut both = ClientPatch {
            client_type_id: Patch::Value(3),
            client_type_title: Patch::Value("Enterprise".into()),
            ..ClientPatch::default()
        };
        let body = json!({});
        let root = FieldPath::root();
        let mut reader = Reader::new();
        let fields = reader.object(&body, &root, &[]).expect("object");
        Client::after_read(Mode::Patch, &fields, &mut both, &mut reader);
        both.apply(&mut client).expect("applies");
        assert_eq!(
            (client.client_type_id, client.client_type_title.as_deref()),
            (Some(3), None)
        );

        ClientPatch {
            client_type_title: Patch::Value("SMB".into()),
            ..ClientPatch::default()
        }
        .apply(&mut client)
        .expect("applies");
        assert_eq!(
            (client.client_type_id, client.client_type_title.as_deref()),
            (None, Some("SMB"))
        );

        ClientPatch {
            client_type_title: Patch::Null,
            ..ClientPatch::default()
        }
        .apply(&mut client)
        .expect("applies");
        assert_eq!(
            (client.client_type_id, client.client_type_title),
            (None, None)
        );
    }

    #[test]
    fn teaming_roles_are_replaced_whole_and_null_empties_them() {
        let mut client = client();
        let roles = vec![object(json!({"role": "CSM", "employeeId": 4}))];
        ClientPatch {
            acc_teaming_roles: Patch::Value(roles.clone()),
            ..ClientPatch::default()
        }
        .apply(&mut client)
        .expect("applies");
        assert_eq!(client.acc_teaming_roles, roles);
        ClientPatch {
            acc_teaming_roles: Patch::Null,
            ..ClientPatch::default()
        }
        .apply(&mut client)
        .expect("applies");
        assert!(client.acc_teaming_roles.is_empty());
    }

    #[test]
    fn dates_must_be_real_and_strictly_shaped() {
        assert_eq!(
            parse_date("2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29).ok_or_else(String::new)
        );
        assert_eq!(
            parse_date("2025-02-29"),
            Err("2025-02-29 is not a date on the calendar".into())
        );
        for malformed in [
            "2025-2-3",
            "2025-02-03T00:00:00Z",
            "25-02-03",
            "+2025-02-0",
            "",
        ] {
            assert_eq!(
                parse_date(malformed),
                Err("must be a date in the format YYYY-MM-DD".into()),
                "{malformed}"
            );
        }
    }

    #[test]
    fn time_zones_come_from_the_tz_database() {
        assert!(check_timezone("America/Denver").is_ok());
        assert!(check_timezone("UTC").is_ok());
        assert!(check_timezone("Mars/Olympus").is_err());
        assert!(check_timezone("america/denver").is_err());
        // Every name the server accepts fits the schema's pattern.
        let pattern = regex::Regex::new(TIMEZONE_PATTERN).expect("the pattern compiles");
        for zone in chrono_tz::TZ_VARIANTS {
            assert!(pattern.is_match(zone.name()), "{}", zone.name());
            assert!(zone.name().len() <= 60, "{}", zone.name());
        }
    }

    #[test]
    fn custom_values_are_scalars_or_arrays_of_scalars() {
        assert!(check_custom_value(&json!("x")).is_ok());
        assert!(check_custom_value(&json!(1.5)).is_ok());
        assert!(check_custom_value(&json!(false)).is_ok());
        assert!(check_custom_value(&json!(["a", 1])).is_ok());
        assert!(check_custom_value(&json!({"a": 1})).is_err());
        assert!(check_custom_value(&json!([["nested"]])).is_err());
        assert!(check_custom_value(&json!("x".repeat(10_001))).is_err());
        assert!(check_custom_value(&Value::Array(vec![json!(1); 101])).is_err());
    }

    #[test]
    fn stored_form_uses_vendor_names_and_iso_dates() {
        let mut client = client();
        client.inception_date = NaiveDate::from_ymd_opt(2024, 1, 15);
        let stored = serde_json::to_value(&client).unwrap_or_default();
        assert_eq!(stored["status"], json!("ACTIVE"));
        assert_eq!(stored["inceptionDate"], json!("2024-01-15"));
        let back: Client = serde_json::from_value(stored).expect("decodes");
        assert_eq!(back, client);
    }

    #[test]
    fn filters_match_name_loosely_and_the_rest_exactly() {
        let mut client = client();
        client.external_id = Some("ext-1".into());
        let all = ClientFilter::default();
        assert!(all.matches(&client));
        let by_name = ClientFilter {
            name: Some("cM".into()),
            ..ClientFilter::default()
        };
        assert!(by_name.matches(&client));
        let everything = ClientFilter {
            name: Some("acme".into()),
            status: Some(ClientStatus::Active),
            active: Some(true),
            external_id: Some("ext-1".into()),
        };
        assert!(everything.matches(&client));
        for miss in [
            ClientFilter {
                status: Some(ClientStatus::Trial),
                ..ClientFilter::default()
            },
            ClientFilter {
                active: Some(false),
                ..ClientFilter::default()
            },
            ClientFilter {
                external_id: Some("ext".into()),
                ..ClientFilter::default()
            },
        ] {
            assert!(!miss.matches(&client), "{miss:?}");
        }
    }
}
