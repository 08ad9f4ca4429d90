//! ClientSuccess's wire format for clients: what the surface decides for
//! the records it serves (its words for errors, the names and format of
//! ids and times: the [`Dialect`]), the schemas of client bodies and views
//! as the document names them, the search query (paging and filters) with
//! its page envelope, and the history views. The client's fields and rules
//! are declared once, in [`crate::core::client`].
//!
//! Messages are worded as Bean Validation words them ("size must be between
//! 0 and 255", "must not be null"), because the vendor is a Spring service
//! and its users know those messages.

use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::ClientSuccess;
use crate::core::client::{Client, ClientFilter, ClientStatus};
use crate::core::fields::{Check, Choice, Choose, Declared, Dialect, Mode, View};
use crate::core::input::{Expected, Words};
use crate::core::records::Record;
use crate::core::shape::{self, Shape};
use crate::described;
use crate::surfaces::{iso_millis, iso_millis_shape};

/// The message for a `null` (or missing) value of a field that needs one.
pub const MUST_NOT_BE_NULL: &str = "must not be null";

/// Bean Validation's words, as a Spring service answers.
pub struct BeanValidationWords;

impl Words for BeanValidationWords {
    fn wrong_type(&self, expected: Expected, _received: &Value) -> String {
        match expected {
            Expected::String => "must be a string".to_owned(),
            Expected::Integer => "must be an integer".to_owned(),
            Expected::Number => "must be a number".to_owned(),
            Expected::Boolean => "must be a boolean".to_owned(),
            Expected::Array => "must be an array".to_owned(),
            Expected::ArrayOfObjects => "must be an array of objects".to_owned(),
            Expected::Object => "must be an object".to_owned(),
            Expected::OneOf(names) => format!("must be one of {}", names.join(", ")),
        }
    }

    fn null_value(&self, _expected: Expected) -> String {
        MUST_NOT_BE_NULL.to_owned()
    }

    fn required(&self) -> String {
        MUST_NOT_BE_NULL.to_owned()
    }

    fn required_last(&self) -> bool {
        true
    }

    fn body_not_object(&self, _received: &Value) -> String {
        "the body must be a JSON object".to_owned()
    }

    fn unknown_key(&self, key: &str) -> String {
        format!("unknown field {key}")
    }

    fn read_only(&self, key: &str) -> Option<String> {
        Some(format!("{key} is read-only and cannot be set"))
    }

    fn text_length(&self, chars: &RangeInclusive<usize>, _length: usize) -> String {
        size_message(chars)
    }

    fn not_one_of(&self, allowed: &[&str], _received: &str) -> String {
        format!("must be one of {}", allowed.join(", "))
    }

    fn not_whole(&self) -> String {
        "must be an integer".to_owned()
    }

    fn integer_range(&self, range: &RangeInclusive<i64>) -> String {
        // Open-ended ranges are the int64 ids; naming the type covers
        // numbers past i64::MAX too.
        if *range.end() == i64::MAX {
            format!(
                "must be an int64 greater than or equal to {}",
                range.start()
            )
        } else {
            format!("must be between {} and {}", range.start(), range.end())
        }
    }

    fn item_count(&self, count: &RangeInclusive<usize>, _length: usize) -> String {
        size_message(count)
    }

    fn too_many_keys(&self, max: usize) -> String {
        size_message(&(0..=max))
    }

    fn nested_too_deep(&self, max_depth: usize) -> String {
        format!("must not nest deeper than {max_depth} levels")
    }
}

fn size_message(range: &RangeInclusive<usize>) -> String {
    format!("size must be between {} and {}", range.start(), range.end())
}

/// Ids are UUIDs in paths (`uuid`; the record's own `id` is its int64),
/// times ISO 8601 with milliseconds.
impl Dialect for ClientSuccess {
    const WORDS: &'static dyn Words = &BeanValidationWords;
    const ID_KEY: &'static str = "uuid";
    const TIME_KEYS: [&'static str; 2] = ["createdTime", "modifiedTime"];

    fn serialize_time<S: serde::Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&iso_millis(time))
    }

    fn id_shape() -> Shape {
        shape::string()
            .format("uuid")
            .describe("The id used in paths.")
    }

    fn time_shape() -> Shape {
        iso_millis_shape()
    }
}

described!(
    /// A client's status, as a search parameter.
    ClientSuccessStatus,
    "A client's status.",
    Choose::<ClientStatus>::new().shape()
);

described!(
    /// A client as ClientSuccess returns it: every field, `null` when unset.
    ClientSuccessClient,
    "A client as ClientSuccess returns it: every field, `null` when unset.",
    Client::view_shape::<ClientSuccess>()
);

described!(
    /// The body of `POST /v2/client`.
    ClientSuccessCreateRequest,
    "The body of `POST /v2/client`. `name`, `status` and `active` are required; `null` on any other field means \"no value\".",
    Client::request_shape(Mode::Create)
);

described!(
    /// The body of `PATCH /v2/client/{uuid}`.
    ClientSuccessPatchRequest,
    "The body of `PATCH /v2/client/{uuid}`: only the fields sent change. `null` clears a field, except `name`, `status` and `active`. `custom` merges key by key (a key set to `null` is removed; `custom: null` removes every key); `region` and `accTeamingRoles` are replaced whole.",
    Client::request_shape(Mode::Patch)
);

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
        let status = ClientStatus::from_name(text);
        if status.is_none() {
            error(
                "status",
                format!("must be one of {}", ClientStatus::NAMES.join(", ")),
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
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSuccessPage<'a> {
    #[schema(value_type = Vec<ClientSuccessClient>)]
    pub data: Vec<View<'a, Client, ClientSuccess>>,
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
pub fn page_of<'a>(records: &'a [Record<Client>], query: &SearchQuery) -> ClientSuccessPage<'a> {
    let mut matching: Vec<&Record<Client>> = records
        .iter()
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
            .map(|record| View::of(record))
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

    use serde_json::Map;

    use crate::core::client::ClientPatch;
    use crate::core::error::DomainError;

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
            messages(Client::read_patch::<ClientSuccess>(&body)),
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
        let patch = Client::read_patch::<ClientSuccess>(&json!({"note": null, "npsScore": -100.0}))
            .expect("a valid patch");
        assert_eq!(patch.note, crate::core::patch::Patch::Null);
        assert_eq!(patch.nps_score, crate::core::patch::Patch::Value(-100));
        assert_eq!(
            messages(Client::read_patch::<ClientSuccess>(
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
        match Client::read_new::<ClientSuccess>(&json!({"note": "n"})) {
            Err(DomainError::Invalid(errors)) => assert_eq!(
                errors
                    .iter()
                    .map(|error| error.path.to_json_pointer())
                    .collect::<Vec<_>>(),
                vec!["/name", "/status", "/active"]
            ),
            other => panic!("expected validation errors, got {other:?}"),
        }
        let client = Client::read_new::<ClientSuccess>(
            &json!({"name": "", "status": "TRIAL", "active": false}),
        )
        .expect("the seed allows an empty name");
        assert_eq!(client.status, ClientStatus::Trial);
    }

    #[test]
    fn free_form_values_are_bounded() {
        // The region itself is level 1.
        let deep = json!({"a": {"b": {"c": {"d": {"e": 1}}}}});
        let wide: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(
            messages(Client::read_patch::<ClientSuccess>(
                &json!({"region": deep})
            )),
            vec![(
                "/region/a/b/c/d".into(),
                "must not nest deeper than 4 levels".into()
            )]
        );
        assert_eq!(
            messages(Client::read_patch::<ClientSuccess>(
                &json!({"region": wide})
            )),
            vec![("/region".into(), "size must be between 0 and 50".into())]
        );
        assert!(
            Client::read_patch::<ClientSuccess>(&json!({"region": {"a": {"b": {"c": {"d": 1}}}}}))
                .is_ok()
        );
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
    /// The server's id of the request that made the change (that
    /// response's `X-Request-Id`; the logs' `request_id`). Entries written
    /// before `clientRequestId` existed may hold the id the client sent.
    pub request_id: String,
    /// The `X-Request-Id` the client sent with that request, kept for
    /// tracing; null when none was sent. The client chose it: it proves
    /// nothing about which request made the change.
    pub client_request_id: Option<String>,
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
            client_request_id: entry.client_request_id.clone(),
            at: iso_millis(&entry.at),
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
