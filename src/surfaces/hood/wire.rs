//! Hood's wire format: what the surface decides for the records it serves
//! (its words for errors, the names and format of ids and times: the
//! [`Dialect`]), the schemas of profile and profile-list bodies and views
//! as the document names them, the list query string (`page=N,M`,
//! `sort=-a,b`, `field=[op:]value`) and the history views. The records'
//! fields and rules are declared once, in [`crate::core::hood`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Hood;
use crate::core::error::{DomainError, FieldPath};
use crate::core::fields::{Declared, Dialect, Mode, View};
use crate::core::hood::{self, Filter, FilterOp, Profile, ProfileList, ProfileQuery, hood_time};
use crate::core::input::{Reader, Words};
use crate::core::shape::{self, Shape};
use crate::described;

/// Hood's errors use the core's default words, and name the fields the
/// server sets (before them, any unknown key).
pub struct HoodWords;

impl Words for HoodWords {
    fn read_only(&self, key: &str) -> Option<String> {
        Some(format!("\"{key}\" is read-only and cannot be set"))
    }

    fn unknown_keys_first(&self) -> bool {
        true
    }
}

/// Ids are numeric strings; times are `YYYY-MM-DD HH:MM:SS` in UTC.
impl Dialect for Hood {
    const WORDS: &'static dyn Words = &HoodWords;
    const ID_KEY: &'static str = "id";
    const TIME_KEYS: [&'static str; 2] = ["create_time", "update_time"];

    fn serialize_time<S: serde::Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hood_time(*time))
    }

    fn id_shape() -> Shape {
        shape::string().example("1000102")
    }

    fn time_shape() -> Shape {
        shape::string().example("2024-01-15 10:30:00")
    }
}

described!(
    /// A profile as Hood returns it.
    HoodProfileView,
    "A profile as Hood returns it. Ids are numeric strings; times are `YYYY-MM-DD HH:MM:SS` in UTC.",
    Profile::view_shape::<Hood>()
);

described!(
    /// A profile list as Hood returns it.
    HoodProfileListView,
    "A profile list.",
    ProfileList::view_shape::<Hood>()
);

described!(
    /// Body of `POST /v1/hood/profiles`.
    CreateHoodProfileRequest,
    "Body of `POST /v1/hood/profiles`: `email` or `mobile_phone_number` is required \
     (one of them, or both; a body with neither is a 400 at `email`).",
    Profile::request_shape(Mode::Create)
);

described!(
    /// Body of `PATCH /v1/hood/profiles/{id}`.
    UpdateHoodProfileRequest,
    "Body of `PATCH /v1/hood/profiles/{id}`: at least one of these fields and nothing else. `custom_properties` merges key by key; `null` removes a key. The profile must keep an email or a number.",
    Profile::request_shape(Mode::Patch)
);

described!(
    /// Body of `POST /v1/hood/profile-lists`.
    HoodProfileListRequest,
    "Body of `POST /v1/hood/profile-lists`.",
    ProfileList::request_shape(Mode::Create)
);

described!(
    /// Body of `PATCH /v1/hood/profile-lists/{id}`.
    HoodProfileListPatchRequest,
    "Body of `PATCH /v1/hood/profile-lists/{id}`: at least one field.",
    ProfileList::request_shape(Mode::Patch)
);

/// A page of profiles.
#[derive(Serialize, ToSchema)]
pub struct HoodProfilePage<'a> {
    /// How many profiles match the filters (over all pages).
    pub total: u64,
    #[schema(value_type = Vec<HoodProfileView>)]
    pub items: Vec<View<'a, Profile, Hood>>,
}

/// A page of profile lists.
#[derive(Serialize, ToSchema)]
pub struct HoodProfileListPage<'a> {
    pub total: usize,
    #[schema(value_type = Vec<HoodProfileListView>)]
    pub items: Vec<View<'a, ProfileList, Hood>>,
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
    // Each value becomes a parameter of the SQL statement, and databases
    // bound those (SQLite at 32,766); the query's own bound is far below.
    let mut values_in_all = 0usize;
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
                    // A second key on the same field cannot change the order;
                    // keeping the first bounds the sort by the field count.
                    if query.sort.iter().any(|(known, _)| known == field) {
                        continue;
                    }
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
                let values: Vec<String> = if matches!(op, FilterOp::In | FilterOp::Nin) {
                    operand.split(',').map(str::to_owned).collect()
                } else {
                    vec![operand.to_owned()]
                };
                values_in_all = values_in_all.saturating_add(values.len());
                if values_in_all > hood::MAX_FILTER_VALUES {
                    reader.error(
                        &path,
                        format!(
                            "A query's filters take at most {} values in all; with this one they have {values_in_all}",
                            hood::MAX_FILTER_VALUES
                        ),
                    );
                    continue;
                }
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
    reader.finish(query).map_err(DomainError::in_query)
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
    /// The server's id of the request that made the change (that
    /// response's `X-Request-Id` and error `trace_id`; the logs'
    /// `request_id`). Entries written before `client_trace_id` existed may
    /// hold the id the client sent.
    pub trace_id: String,
    /// The `X-Request-Id` the client sent with that request, kept for
    /// tracing; null when none was sent. The client chose it: it proves
    /// nothing about which request made the change.
    pub client_trace_id: Option<String>,
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
            client_trace_id: entry.client_request_id.clone(),
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
    reader.finish(page).map_err(DomainError::in_query)
}
