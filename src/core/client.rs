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
use super::input::FreeFormLimits;
use super::patch::{Patch, merge_map};
use super::records::{Document, IdScheme, WriteSession};

// ---- limits: the seed's, in the order the seed lists the fields ----------

/// `name` *(seed: "length between 0 and 255")*.
pub const NAME_CHARS: RangeInclusive<usize> = 0..=255;
pub const SITE_URL_CHARS: RangeInclusive<usize> = 0..=1024;
pub const LOGO_URL_CHARS: RangeInclusive<usize> = 0..=1024;
pub const STREET_CHARS: RangeInclusive<usize> = 0..=1024;
pub const CITY_CHARS: RangeInclusive<usize> = 0..=100;
pub const STATE_CHARS: RangeInclusive<usize> = 0..=100;
pub const ZIP_CHARS: RangeInclusive<usize> = 0..=20;
pub const COUNTRY_CHARS: RangeInclusive<usize> = 0..=100;
pub const TIMEZONE_CHARS: RangeInclusive<usize> = 0..=60;
pub const EXTERNAL_ID_CHARS: RangeInclusive<usize> = 0..=100;
/// Salesforce account ids are 15 or 18 characters; the seed allows 0..=18.
pub const SALESFORCE_ACCOUNT_ID_CHARS: RangeInclusive<usize> = 0..=18;
/// `zendeskId`, `freshdeskId`, `usageId`, `stripeId`, `externalStatusId`.
pub const INTEGRATION_ID_CHARS: RangeInclusive<usize> = 0..=200;
/// `npsScore` is an int32 from −100 to 100.
pub const NPS_SCORE: RangeInclusive<i64> = -100..=100;
/// Every `…Id` field the seed types as int64 ≥ 0.
pub const SYSTEM_ID: RangeInclusive<i64> = 0..=i64::MAX;
pub const ASSIGNED_SALES_REP_CHARS: RangeInclusive<usize> = 0..=45;

// ---- limits the seed leaves open (ours) ----------------------------------

/// `note` has no length in the seed; 65,535 is the size of the text column
/// such notes usually live in, and well inside the 1 MiB body limit.
pub const NOTE_CHARS: RangeInclusive<usize> = 0..=65_535;
/// `clientTypeTitle` has no length in the seed; a title is a short name.
pub const CLIENT_TYPE_TITLE_CHARS: RangeInclusive<usize> = 0..=255;
/// `custom` holds at most this many keys after a merge.
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

/// The message for a `null` (or missing) value of a field that needs one,
/// in Bean Validation's words as a Spring service would answer.
pub const MUST_NOT_BE_NULL: &str = "must not be null";

/// `status` values *(vendor)*.
pub const STATUSES: [&str; 4] = ["ACTIVE", "INACTIVE", "TRIAL", "TERMINATED"];

/// A client's lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientStatus {
    Active,
    Inactive,
    Trial,
    Terminated,
}

impl ClientStatus {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ACTIVE" => Some(ClientStatus::Active),
            "INACTIVE" => Some(ClientStatus::Inactive),
            "TRIAL" => Some(ClientStatus::Trial),
            "TERMINATED" => Some(ClientStatus::Terminated),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Active => "ACTIVE",
            ClientStatus::Inactive => "INACTIVE",
            ClientStatus::Trial => "TRIAL",
            ClientStatus::Terminated => "TERMINATED",
        }
    }
}

/// A client as stored. The record key is the UUID used in paths; `id` is
/// the int64 the server assigns, kept in the body so other clients can name
/// it as their `parentClientId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    pub id: i64,
    pub custom: Map<String, Value>,
    pub name: String,
    pub site_url: Option<String>,
    pub logo_url: Option<String>,
    pub status: ClientStatus,
    pub active: bool,
    pub inception_date: Option<NaiveDate>,
    pub terminated_date: Option<NaiveDate>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
    pub region: Option<Map<String, Value>>,
    /// A tz database name, checked by [`check_timezone`].
    pub timezone: Option<String>,
    pub external_id: Option<String>,
    pub salesforce_account_id: Option<String>,
    pub zendesk_id: Option<String>,
    pub freshdesk_id: Option<String>,
    pub usage_id: Option<String>,
    pub stripe_id: Option<String>,
    pub external_status_id: Option<String>,
    pub nps_score: Option<i32>,
    pub note: Option<String>,
    pub created_by_employee_id: Option<i64>,
    pub modified_by_employee_id: Option<i64>,
    pub managed_by_employee_id: Option<i64>,
    pub assigned_sales_rep_id: Option<i64>,
    pub assigned_sales_rep: Option<String>,
    /// The client type is one value, named either by id or by title: at
    /// most one of `client_type_id` and `client_type_title` is set (see
    /// [`ClientPatch::apply`]).
    pub client_type_id: Option<i64>,
    pub client_type_title: Option<String>,
    pub success_cycle_id: Option<i64>,
    pub primary_contact_id: Option<i64>,
    pub parent_client_id: Option<i64>,
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
        return Err("must be a date in the format YYYY-MM-DD".to_owned());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text} is not a date on the calendar"))
}

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

#[async_trait::async_trait]
impl Document for Client {
    const KIND: RecordKind = RecordKind::Client;
    const ID_SCHEME: IdScheme = IdScheme::UuidAndSequence { start: 1 };

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

/// A partial update of a client, or (through [`Client::create`]) the body
/// of a new one. `Null` clears; `name`, `status` and `active` cannot be
/// cleared. `custom` merges key by key (a `null` value removes the key);
/// `custom: null` removes every key. `region` and `accTeamingRoles` are
/// replaced whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientPatch {
    pub custom: Patch<Map<String, Value>>,
    pub name: Patch<String>,
    pub site_url: Patch<String>,
    pub logo_url: Patch<String>,
    pub status: Patch<ClientStatus>,
    pub active: Patch<bool>,
    pub inception_date: Patch<NaiveDate>,
    pub terminated_date: Patch<NaiveDate>,
    pub street: Patch<String>,
    pub city: Patch<String>,
    pub state: Patch<String>,
    pub zip: Patch<String>,
    pub country: Patch<String>,
    pub region: Patch<Map<String, Value>>,
    pub timezone: Patch<String>,
    pub external_id: Patch<String>,
    pub salesforce_account_id: Patch<String>,
    pub zendesk_id: Patch<String>,
    pub freshdesk_id: Patch<String>,
    pub usage_id: Patch<String>,
    pub stripe_id: Patch<String>,
    pub external_status_id: Patch<String>,
    pub nps_score: Patch<i32>,
    pub note: Patch<String>,
    pub created_by_employee_id: Patch<i64>,
    pub modified_by_employee_id: Patch<i64>,
    pub managed_by_employee_id: Patch<i64>,
    pub assigned_sales_rep_id: Patch<i64>,
    pub assigned_sales_rep: Patch<String>,
    pub client_type_id: Patch<i64>,
    pub client_type_title: Patch<String>,
    pub success_cycle_id: Patch<i64>,
    pub primary_contact_id: Patch<i64>,
    pub parent_client_id: Patch<i64>,
    pub acc_teaming_roles: Patch<Vec<Map<String, Value>>>,
}

fn null_error(errors: &mut Vec<FieldError>, key: &str) {
    errors.push(FieldError {
        path: FieldPath::root().key(key),
        message: MUST_NOT_BE_NULL.to_owned(),
    });
}

/// The value of a field that must have one, or an error at `key`.
fn required<T>(errors: &mut Vec<FieldError>, key: &str, patch: Patch<T>) -> Option<T> {
    match patch {
        Patch::Value(value) => Some(value),
        Patch::Absent | Patch::Null => {
            null_error(errors, key);
            None
        }
    }
}

impl Client {
    /// A new client from a create body: `name`, `status` and `active` must
    /// be values; every other field follows the patch rules applied to an
    /// empty client (so `null` means "no value"). `id` is 0 until the store
    /// assigns one ([`Client::with_id`]).
    pub fn create(mut fields: ClientPatch) -> Result<Client, DomainError> {
        let mut errors = Vec::new();
        let name = required(&mut errors, "name", std::mem::take(&mut fields.name));
        let status = required(&mut errors, "status", std::mem::take(&mut fields.status));
        let active = required(&mut errors, "active", std::mem::take(&mut fields.active));
        let (Some(name), Some(status), Some(active)) = (name, status, active) else {
            return Err(DomainError::Invalid(errors));
        };
        let mut client = Client {
            id: 0,
            custom: Map::new(),
            name,
            site_url: None,
            logo_url: None,
            status,
            active,
            inception_date: None,
            terminated_date: None,
            street: None,
            city: None,
            state: None,
            zip: None,
            country: None,
            region: None,
            timezone: None,
            external_id: None,
            salesforce_account_id: None,
            zendesk_id: None,
            freshdesk_id: None,
            usage_id: None,
            stripe_id: None,
            external_status_id: None,
            nps_score: None,
            note: None,
            created_by_employee_id: None,
            modified_by_employee_id: None,
            managed_by_employee_id: None,
            assigned_sales_rep_id: None,
            assigned_sales_rep: None,
            client_type_id: None,
            client_type_title: None,
            success_cycle_id: None,
            primary_contact_id: None,
            parent_client_id: None,
            acc_teaming_roles: Vec::new(),
        };
        fields.apply(&mut client)?;
        Ok(client)
    }

    /// This client with the int64 id the store assigned.
    pub fn with_id(mut self, id: i64) -> Client {
        self.id = id;
        self
    }
}

impl ClientPatch {
    /// Applies the patch, then checks the rules that concern the whole
    /// client. On error the client may be half-changed; the caller discards
    /// it (the store writes nothing when the change fails).
    pub fn apply(self, client: &mut Client) -> Result<(), DomainError> {
        let mut errors = Vec::new();
        // The reader already refuses these nulls; the rule is restated here
        // so that no other caller can clear them either.
        for (key, cleared) in [
            ("name", matches!(self.name, Patch::Null)),
            ("status", matches!(self.status, Patch::Null)),
            ("active", matches!(self.active, Patch::Null)),
        ] {
            if cleared {
                null_error(&mut errors, key);
            }
        }
        match self.custom {
            Patch::Absent => {}
            Patch::Null => client.custom.clear(),
            Patch::Value(changes) => merge_map(&mut client.custom, changes),
        }
        if client.custom.len() > MAX_CUSTOM_KEYS {
            errors.push(FieldError {
                path: FieldPath::root().key("custom"),
                message: format!(
                    "must hold at most {MAX_CUSTOM_KEYS} keys; this update would make {}",
                    client.custom.len()
                ),
            });
        }
        self.name.apply_to(&mut client.name);
        self.site_url.apply_to_option(&mut client.site_url);
        self.logo_url.apply_to_option(&mut client.logo_url);
        self.status.apply_to(&mut client.status);
        self.active.apply_to(&mut client.active);
        self.inception_date
            .apply_to_option(&mut client.inception_date);
        self.terminated_date
            .apply_to_option(&mut client.terminated_date);
        self.street.apply_to_option(&mut client.street);
        self.city.apply_to_option(&mut client.city);
        self.state.apply_to_option(&mut client.state);
        self.zip.apply_to_option(&mut client.zip);
        self.country.apply_to_option(&mut client.country);
        self.region.apply_to_option(&mut client.region);
        self.timezone.apply_to_option(&mut client.timezone);
        self.external_id.apply_to_option(&mut client.external_id);
        self.salesforce_account_id
            .apply_to_option(&mut client.salesforce_account_id);
        self.zendesk_id.apply_to_option(&mut client.zendesk_id);
        self.freshdesk_id.apply_to_option(&mut client.freshdesk_id);
        self.usage_id.apply_to_option(&mut client.usage_id);
        self.stripe_id.apply_to_option(&mut client.stripe_id);
        self.external_status_id
            .apply_to_option(&mut client.external_status_id);
        self.nps_score.apply_to_option(&mut client.nps_score);
        self.note.apply_to_option(&mut client.note);
        self.created_by_employee_id
            .apply_to_option(&mut client.created_by_employee_id);
        self.modified_by_employee_id
            .apply_to_option(&mut client.modified_by_employee_id);
        self.managed_by_employee_id
            .apply_to_option(&mut client.managed_by_employee_id);
        self.assigned_sales_rep_id
            .apply_to_option(&mut client.assigned_sales_rep_id);
        self.assigned_sales_rep
            .apply_to_option(&mut client.assigned_sales_rep);
        // One client type, named by id or by title. The seed says the id
        // overrides the title, so an id in the request wins and the title
        // beside it is ignored; either one replaces the other, because a
        // kept title could contradict a new id (and vice versa).
        match (self.client_type_id, self.client_type_title) {
            (Patch::Value(id), _) => {
                client.client_type_id = Some(id);
                client.client_type_title = None;
            }
            (_, Patch::Value(title)) => {
                client.client_type_title = Some(title);
                client.client_type_id = None;
            }
            (id, title) => {
                id.apply_to_option(&mut client.client_type_id);
                title.apply_to_option(&mut client.client_type_title);
            }
        }
        self.success_cycle_id
            .apply_to_option(&mut client.success_cycle_id);
        self.primary_contact_id
            .apply_to_option(&mut client.primary_contact_id);
        self.parent_client_id
            .apply_to_option(&mut client.parent_client_id);
        match self.acc_teaming_roles {
            Patch::Absent => {}
            Patch::Null => client.acc_teaming_roles.clear(),
            Patch::Value(roles) => client.acc_teaming_roles = roles,
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(errors))
        }
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
        Client::create(ClientPatch {
            name: Patch::Value("Acme".into()),
            status: Patch::Value(ClientStatus::Active),
            active: Patch::Value(true),
            note: Patch::Value("first note".into()),
            custom: Patch::Value(object(json!({"tier": "gold", "seats": 10, "gone": null}))),
            ..ClientPatch::default()
        })
        .expect("a valid client")
        .with_id(7)
    }

    #[test]
    fn create_needs_name_status_and_active() {
        let result = Client::create(ClientPatch {
            status: Patch::Null,
            ..ClientPatch::default()
        })
        .map(|_| ());
        assert_eq!(
            paths(result),
            vec![
                ("/name".into(), MUST_NOT_BE_NULL.into()),
                ("/status".into(), MUST_NOT_BE_NULL.into()),
                ("/active".into(), MUST_NOT_BE_NULL.into()),
            ]
        );
    }

    #[test]
    fn create_treats_null_as_no_value_and_drops_null_custom_keys() {
        let client = client();
        assert_eq!(client.id, 7);
        assert_eq!(client.lookup_key().as_deref(), Some("7"));
        assert_eq!(
            Value::Object(client.custom),
            json!({"tier": "gold", "seats": 10})
        );
        assert!(client.acc_teaming_roles.is_empty());
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
    fn name_status_and_active_cannot_be_cleared() {
        let mut client = client();
        let result = ClientPatch {
            name: Patch::Null,
            status: Patch::Null,
            active: Patch::Null,
            ..ClientPatch::default()
        }
        .apply(&mut client);
        assert_eq!(
            paths(result),
            vec![
                ("/name".into(), MUST_NOT_BE_NULL.into()),
                ("/status".into(), MUST_NOT_BE_NULL.into()),
                ("/active".into(), MUST_NOT_BE_NULL.into()),
            ]
        );
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
        ClientPatch {
            client_type_id: Patch::Value(3),
            client_type_title: Patch::Value("Enterprise".into()),
            ..ClientPatch::default()
        }
        .apply(&mut client)
        .expect("applies");
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
