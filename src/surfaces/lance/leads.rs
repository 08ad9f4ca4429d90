//! Lance's lead records at the vendor's paths: lead lists
//! (`/api/v1/entities/leadlists`, with add-prospects and add-companies),
//! the leads of a list (`/api/v1/entities/leads/list/{id}`), prospect
//! search and lookup (`/api/v1/entities/prospects/...`); and, where the
//! vendor is silent, Clientele's own additions in the same style: creating
//! and changing persons and companies (`/api/v1/entities/persons`,
//! `/api/v1/entities/companies`) and generating a list from an ICP
//! (`POST /api/v1/entities/icps/{id}/lead-lists`). The records and their
//! rules live in [`crate::core::leads`] and [`crate::core::prospecting`].

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::ETAG;
use axum::response::IntoResponse;
use chrono::{Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Lance, LanceError, LanceResult, record_reply, uuid_id};
use crate::core::error::{DomainError, FieldError, FieldPath};
use crate::core::fields::{Check, Declared, Mode, View};
use crate::core::icp::{EntityType, Icp, Rfc3339};
use crate::core::input::Reader;
use crate::core::leads::{
    Company, LIST_ITEMS, LeadList, Person, company_ids_shape, read_company_ids, read_prospect,
};
use crate::core::prospecting::{self, Funnel, Plan, Search};
use crate::core::records::{Document, Precondition, Record, Records, WriteSession};
use crate::core::shape::{self, Shape};
use crate::described;
use crate::http::AppState;
use crate::http::extract::{Caller, IfMatch, JsonBody, OptionalJsonBody, PathId, QueryPairs};
use crate::http::idempotency::{Idempotent, Reply, Started};

/// The POST routes that only read (searches): they take no
/// `Idempotency-Key`.
pub const SEARCH_PATHS: [&str; 2] = [
    "/api/v1/entities/prospects/person",
    "/api/v1/entities/prospects/company",
];

/// The routes of this module, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_lead_lists, create_lead_list))
        .routes(routes!(get_lead_list, update_lead_list, delete_lead_list))
        .routes(routes!(add_prospects))
        .routes(routes!(add_companies))
        .routes(routes!(leads_of_list))
        .routes(routes!(search_persons))
        .routes(routes!(search_companies))
        .routes(routes!(get_prospect_person))
        .routes(routes!(get_prospect_company))
        .routes(routes!(create_person))
        .routes(routes!(get_person, update_person, delete_person))
        .routes(routes!(create_company))
        .routes(routes!(get_company, update_company, delete_company))
        .routes(routes!(generate_lead_list))
        .routes(routes!(lead_list_history))
        .routes(routes!(person_history))
        .routes(routes!(company_history))
}

/// The audit trail of a lead list, as an ICP's reads.
#[utoipa::path(
    get,
    path = "/api/v1/entities/leadlists/{id}/history",
    tag = "Lance lead lists",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the list"), super::HistoryQuery),
    responses(
        (status = 200, description = "A page of the list's history, oldest first", body = super::wire::IcpHistoryPage),
        (status = 400, description = "Invalid paging", body = LanceError),
        (status = 403, description = "Caller is not among the list's users and not an admin", body = LanceError),
        (status = 404, description = "No such list (or history) in the caller's workspace", body = LanceError),
    )
)]
async fn lead_list_history(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    QueryPairs(pairs, ..): QueryPairs<Lance>,
) -> LanceResult {
    let id = uuid_id::<LeadList>(&id)?;
    super::history_page::<LeadList>(&app, &principal, &id, &pairs).await
}

/// The audit trail of a person.
#[utoipa::path(
    get,
    path = "/api/v1/entities/persons/{id}/history",
    tag = "Lance prospects",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the person"), super::HistoryQuery),
    responses(
        (status = 200, description = "A page of the person's history, oldest first", body = super::wire::IcpHistoryPage),
        (status = 400, description = "Invalid paging", body = LanceError),
        (status = 404, description = "No such person (or history) in the caller's workspace", body = LanceError),
    )
)]
async fn person_history(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    QueryPairs(pairs, ..): QueryPairs<Lance>,
) -> LanceResult {
    let id = uuid_id::<Person>(&id)?;
    super::history_page::<Person>(&app, &principal, &id, &pairs).await
}

/// The audit trail of a company.
#[utoipa::path(
    get,
    path = "/api/v1/entities/companies/{id}/history",
    tag = "Lance prospects",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the company"), super::HistoryQuery),
    responses(
        (status = 200, description = "A page of the company's history, oldest first", body = super::wire::IcpHistoryPage),
        (status = 400, description = "Invalid paging", body = LanceError),
        (status = 404, description = "No such company (or history) in the caller's workspace", body = LanceError),
    )
)]
async fn company_history(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    QueryPairs(pairs, ..): QueryPairs<Lance>,
) -> LanceResult {
    let id = uuid_id::<Company>(&id)?;
    super::history_page::<Company>(&app, &principal, &id, &pairs).await
}

// ---- wire schemas -----------------------------------------------------------

fn populated(list: Shape, persons: bool) -> Shape {
    let person = Person::view_shape::<Lance>().property(
        "company",
        Company::view_shape::<Lance>().or_null(),
        true,
    );
    if persons {
        list.property(
            "persons",
            shape::array(person, LIST_ITEMS)
                .describe("Person lists: the persons, in list order, each with its company"),
            false,
        )
    } else {
        list.property(
            "companies",
            shape::array(Company::view_shape::<Lance>(), LIST_ITEMS)
                .describe("Company lists: the companies, in list order"),
            false,
        )
    }
}

described!(
    /// A lead list as Lance returns it.
    LeadListView,
    "A lead list as Lance returns it.",
    LeadList::view_shape::<Lance>()
);

described!(
    /// A lead list with its persons or companies.
    PopulatedLeadListView,
    "A lead list with its members: `persons` on person lists, `companies` on company lists.",
    populated(populated(LeadList::view_shape::<Lance>(), true), false)
);

described!(
    /// The body of `POST /api/v1/entities/leadlists`.
    CreateLeadListRequest,
    "The body of `POST /api/v1/entities/leadlists`. The creator is always added to `userIds`.",
    LeadList::request_shape(Mode::Create)
);

described!(
    /// The body of `PATCH /api/v1/entities/leadlists/{id}`.
    UpdateLeadListRequest,
    "The body of `PATCH /api/v1/entities/leadlists/{id}`: only the fields sent change; `personIds` and `companyIds` replace the stored ids; `type` cannot change.",
    LeadList::request_shape(Mode::Patch)
);

described!(
    /// A person as Lance returns it.
    PersonView,
    "A person (lead) as Lance returns it.",
    Person::view_shape::<Lance>()
);

described!(
    /// A lead: a person with its company.
    LeadView,
    "A person with its company (`null` when it has none).",
    Person::view_shape::<Lance>().property("company", Company::view_shape::<Lance>().or_null(), true)
);

described!(
    /// A company as Lance returns it.
    CompanyView,
    "A company as Lance returns it.",
    Company::view_shape::<Lance>()
);

described!(
    /// The body of `POST /api/v1/entities/persons`.
    CreatePersonRequest,
    "The body of `POST /api/v1/entities/persons`.",
    Person::request_shape(Mode::Create)
);

described!(
    /// The body of `PATCH /api/v1/entities/persons/{id}`.
    UpdatePersonRequest,
    "The body of `PATCH /api/v1/entities/persons/{id}`: only the fields sent change.",
    Person::request_shape(Mode::Patch)
);

described!(
    /// The body of `POST /api/v1/entities/companies`.
    CreateCompanyRequest,
    "The body of `POST /api/v1/entities/companies`.",
    Company::request_shape(Mode::Create)
);

described!(
    /// The body of `PATCH /api/v1/entities/companies/{id}`.
    UpdateCompanyRequest,
    "The body of `PATCH /api/v1/entities/companies/{id}`: only the fields sent change.",
    Company::request_shape(Mode::Patch)
);

fn prospect_shape() -> Shape {
    Person::request_shape(Mode::Create).property(
        "id",
        shape::string()
            .format("uuid")
            .describe("The person's UUID: an existing person of the workspace is added as it is; a new one is created under this id"),
        false,
    )
    .named("Prospect")
}

described!(
    /// The body of add-prospects.
    AddProspectsRequest,
    "Either `prospects` (persons, created unless `id` names an existing one) or `selection` (the first `limit` results of a person search), not both.",
    shape::any_one_of(vec![
        shape::closed_object().property(
            "prospects",
            shape::array(prospect_shape(), 1..=*LIST_ITEMS.end()),
            true,
        ).named("AddProspectsDirect"),
        shape::closed_object().property(
            "selection",
            shape::closed_object()
                .property("search", prospecting::person_search_shape().describe("A person search body; its page and size are ignored"), true)
                .property("limit", shape::integer(1..=*LIST_ITEMS.end() as i64).describe("How many results to add, from the first (default 100)"), false),
            true,
        ).named("AddProspectsSelection"),
    ])
);

/// What add-prospects answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddedCount {
    /// Prospects newly added to the list (those already in it are skipped).
    pub added_count: u64,
}

described!(
    /// The body of add-companies.
    AddCompaniesRequest,
    "UUIDs of companies to add to a company list.",
    company_ids_shape()
);

described!(
    /// The body of a person search.
    PersonSearchRequest,
    "Filters on the person (`contact`) and its company (`account`), each `{all|any: {include|exclude}}`; paging in the body.",
    prospecting::person_search_shape()
);

described!(
    /// The body of a company search.
    CompanySearchRequest,
    "Filters on the company (`account`) and its URLs; paging in the body.",
    prospecting::company_search_shape()
);

fn page_shape(item: Shape) -> Shape {
    let count = || shape::integer(0..=i64::MAX);
    shape::closed_object()
        .property(
            "content",
            shape::array(item, 0..=100).describe("This page's results, in id order"),
            true,
        )
        .property("totalElements", count(), true)
        .property("totalPages", count(), true)
        .property(
            "number",
            count().describe("This page's number, from 0"),
            true,
        )
        .property("size", count(), true)
        .property("first", shape::boolean(), true)
        .property("last", shape::boolean(), true)
        .property("numberOfElements", count(), true)
        .property("empty", shape::boolean(), true)
}

described!(
    /// A page of persons found.
    PersonPage,
    "A page of persons (each with its company), as Spring pages them.",
    page_shape(Person::view_shape::<Lance>().property("company", Company::view_shape::<Lance>().or_null(), true))
);

described!(
    /// A page of companies found.
    CompanyPage,
    "A page of companies, as Spring pages them.",
    page_shape(Company::view_shape::<Lance>())
);

/// A page of search results, as Spring pages them *(vendor)*.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProspectPage<T> {
    /// The results of this page, in id order.
    pub content: Vec<T>,
    pub total_elements: u64,
    pub total_pages: u64,
    /// This page's number (0-indexed).
    pub number: u64,
    pub size: u64,
    pub first: bool,
    pub last: bool,
    pub number_of_elements: u64,
    pub empty: bool,
}

impl<T> ProspectPage<T> {
    fn of(content: Vec<T>, total: u64, search: &Search) -> Self {
        let total_pages = if search.size == 0 {
            0
        } else {
            total.div_ceil(search.size)
        };
        Self {
            number_of_elements: content.len() as u64,
            empty: content.is_empty(),
            content,
            total_elements: total,
            total_pages,
            number: search.page,
            size: search.size,
            first: search.page == 0,
            last: search.page + 1 >= total_pages,
        }
    }
}

described!(
    /// The body of a list generation.
    GenerateRequest,
    "Every field is optional; the body may be left out.",
    shape::closed_object()
        .property("name", shape::text(crate::core::leads::NAME_CHARS).describe("Default: the ICP's name and the time"), false)
        .property("startDate", Rfc3339.shape().describe("Default: now"), false)
        .property("endDate", Rfc3339.shape().describe("Default: the ICP's activeUntil, or 30 days after startDate"), false)
);

/// What a list generation answers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Generation<'a> {
    pub dry_run: bool,
    /// The new list (null on a dry run).
    pub lead_list: Option<View<'a, LeadList, Lance>>,
    /// The persons chosen, in order.
    pub person_ids: &'a [String],
    pub funnel: &'a Funnel,
}

described!(
    /// What a list generation answers.
    GenerationView,
    "The new list (null on a dry run), the persons chosen in order, and the funnel: how many persons matched leadProviderCriteria, how many were examined in id order, and what each later stage kept and dropped.",
    shape::closed_object()
        .property("dryRun", shape::boolean(), true)
        .property("leadList", LeadList::view_shape::<Lance>().or_null(), true)
        .property("personIds", shape::array(shape::string().format("uuid"), LIST_ITEMS), true)
        .property("funnel", shape::object(), true)
);

// ---- helpers ----------------------------------------------------------------

/// The records a list's view shows: its persons (in list order) and
/// their companies, or its companies.
#[derive(Default)]
struct Members {
    persons: Vec<Record<Person>>,
    companies: Vec<Record<Company>>,
}

/// Records of `ids` in the order of `ids` (absent ones left out).
fn in_order<T>(ids: &[String], found: Vec<Record<T>>) -> Vec<Record<T>> {
    let mut found: HashMap<String, Record<T>> = found
        .into_iter()
        .map(|record| (record.id.clone(), record))
        .collect();
    ids.iter().filter_map(|id| found.remove(id)).collect()
}

fn company_ids_of(persons: &[Record<Person>]) -> Vec<String> {
    persons
        .iter()
        .filter_map(|person| person.data.company_id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect()
}

/// Persons with their companies, read from the store.
async fn read_leads(
    records: &Records,
    principal: &crate::core::auth::Principal,
    person_ids: &[String],
) -> Result<Members, DomainError> {
    let persons = in_order(
        person_ids,
        records.get_many::<Person>(principal, person_ids).await?,
    );
    let companies = records
        .get_many::<Company>(principal, &company_ids_of(&persons))
        .await?;
    Ok(Members { persons, companies })
}

/// A list's members, read from the store.
async fn read_members(
    records: &Records,
    principal: &crate::core::auth::Principal,
    list: &LeadList,
) -> Result<Members, DomainError> {
    match list.list_type {
        EntityType::Person => read_leads(records, principal, &list.person_ids).await,
        EntityType::Company => Ok(Members {
            persons: Vec::new(),
            companies: in_order(
                &list.company_ids,
                records
                    .get_many::<Company>(principal, &list.company_ids)
                    .await?,
            ),
        }),
    }
}

/// A list's members, read in a write session (for a response kept with
/// the write).
async fn members_in_session(
    session: &mut WriteSession,
    list: &LeadList,
) -> Result<Members, DomainError> {
    match list.list_type {
        EntityType::Person => {
            let persons = in_order(
                &list.person_ids,
                session.get_many::<Person>(&list.person_ids).await?,
            );
            let companies = session
                .get_many::<Company>(&company_ids_of(&persons))
                .await?;
            Ok(Members { persons, companies })
        }
        EntityType::Company => Ok(Members {
            persons: Vec::new(),
            companies: in_order(
                &list.company_ids,
                session.get_many::<Company>(&list.company_ids).await?,
            ),
        }),
    }
}

/// A person with its company's view (or null), keys in the view's order.
struct Lead<'a> {
    person: &'a Record<Person>,
    company: Option<&'a Record<Company>>,
}

impl Serialize for Lead<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        Person::write_view::<Lance, _>(self.person, &mut map)?;
        map.serialize_entry("company", &self.company.map(View::<Company, Lance>::of))?;
        map.end()
    }
}

/// Persons as leads, each with its company.
fn leads(members: &Members) -> Vec<Lead<'_>> {
    let companies: HashMap<&str, &Record<Company>> = members
        .companies
        .iter()
        .map(|company| (company.id.as_str(), company))
        .collect();
    members
        .persons
        .iter()
        .map(|person| Lead {
            person,
            company: person
                .data
                .company_id
                .as_deref()
                .and_then(|id| companies.get(id).copied()),
        })
        .collect()
}

/// A list's view with its members (`persons` or `companies`).
struct Populated<'a> {
    list: &'a Record<LeadList>,
    members: &'a Members,
}

impl Serialize for Populated<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        LeadList::write_view::<Lance, _>(self.list, &mut map)?;
        match self.list.data.list_type {
            EntityType::Person => map.serialize_entry("persons", &leads(self.members))?,
            EntityType::Company => map.serialize_entry(
                "companies",
                &self
                    .members
                    .companies
                    .iter()
                    .map(View::<Company, Lance>::of)
                    .collect::<Vec<_>>(),
            )?,
        }
        map.end()
    }
}

/// A list with its members, as a write answers it.
fn populated_reply(list: &Record<LeadList>, members: &Members) -> Reply {
    Reply::json(StatusCode::OK, &Populated { list, members }).with_header(ETAG, &list.etag())
}

/// `dryRun` of a query string: absent, `true` or `false`.
fn read_dry_run(pairs: &[(String, String)]) -> Result<bool, DomainError> {
    let mut values = pairs.iter().filter(|(key, _)| key == "dryRun");
    match (values.next(), values.next()) {
        (None, _) => Ok(false),
        (Some(_), Some(_)) => Err(DomainError::invalid_parameter(
            "dryRun",
            "Must be given at most once",
        )),
        (Some((_, value)), None) => match value.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(DomainError::invalid_parameter(
                "dryRun",
                "Expected true or false",
            )),
        },
    }
}

// ---- lead lists ---------------------------------------------------------------

/// List the lead lists the caller can access (all of the workspace for admins).
#[utoipa::path(
    get,
    path = "/api/v1/entities/leadlists",
    tag = "Lance lead lists",
    security(("bearer" = [])),
    responses((status = 200, description = "The lead lists the caller can access, oldest first", body = Vec<LeadListView>))
)]
async fn list_lead_lists(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
) -> LanceResult {
    let lists = app.records.list::<LeadList>(&principal).await?;
    let views: Vec<View<LeadList, Lance>> = lists.iter().map(View::of).collect();
    Ok(Json(views).into_response())
}

/// Create a lead list; the caller is always added to `userIds`.
#[utoipa::path(
    post,
    path = "/api/v1/entities/leadlists",
    tag = "Lance lead lists",
    security(("bearer" = [])),
    request_body(content = CreateLeadListRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new lead list", body = LeadListView,
            headers(("ETag" = String, description = "Version of the list"))),
        (status = 400, description = "Invalid body (every invalid field is listed), including ids of records the workspace does not have", body = LanceError),
        (status = 413, description = "Body over 1 MiB", body = LanceError),
        (status = 415, description = "Body is not JSON", body = LanceError),
    )
)]
async fn create_lead_list(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    idempotent: Idempotent<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    let creator = principal.clone();
    create_record::<LeadList>(app, principal, idempotent, body, move |list| {
        list.created_by(&creator)
    })
    .await
}

/// Get a lead list with its persons or companies.
#[utoipa::path(
    get,
    path = "/api/v1/entities/leadlists/{id}",
    tag = "Lance lead lists",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the list")),
    responses(
        (status = 200, description = "The list with its members", body = PopulatedLeadListView,
            headers(("ETag" = String, description = "Version of the list"))),
        (status = 403, description = "Caller is not among the list's users and not an admin", body = LanceError),
        (status = 404, description = "No such list in the caller's workspace", body = LanceError),
    )
)]
async fn get_lead_list(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
) -> LanceResult {
    let id = uuid_id::<LeadList>(&id)?;
    let list = app.records.get::<LeadList>(&principal, &id).await?;
    let members = read_members(&app.records, &principal, &list.data).await?;
    Ok(populated_reply(&list, &members).into_response())
}

/// Update a lead list partially.
#[utoipa::path(
    patch,
    path = "/api/v1/entities/leadlists/{id}",
    tag = "Lance lead lists",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "UUID of the list"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the list's ETag is still this one"),
    ),
    request_body(content = UpdateLeadListRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated list with its members", body = PopulatedLeadListView,
            headers(("ETag" = String, description = "New version of the list"))),
        (status = 400, description = "Invalid body; every invalid field is listed", body = LanceError),
        (status = 403, description = "Caller is not among the list's users and not an admin", body = LanceError),
        (status = 404, description = "No such list in the caller's workspace", body = LanceError),
        (status = 412, description = "If-Match does not match the current ETag", body = LanceError),
    )
)]
async fn update_lead_list(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let id = uuid_id::<LeadList>(&id)?;
    let patch = app
        .records
        .read_patch::<LeadList, Lance>(&principal, &id, &body)
        .await?;
    let keeper = writing
        .keeper(|(list, members): &(Record<LeadList>, Members)| populated_reply(list, members));
    let (list, members) = app
        .records
        .transact(&principal, move |session| {
            Box::pin(async move {
                let list = session
                    .get_accessible::<LeadList>(&id, &precondition)
                    .await?;
                let list = session
                    .update(list, |list| list.apply_patch_keeping_type(patch))
                    .await?;
                let members = members_in_session(session, &list.data).await?;
                let written = (list, members);
                if let Some(keeper) = keeper {
                    session.keep(keeper, &written).await?;
                }
                Ok(written)
            })
        })
        .await?;
    Ok(writing.respond(populated_reply(&list, &members)))
}

/// Delete a lead list; its persons and companies stay.
#[utoipa::path(
    delete,
    path = "/api/v1/entities/leadlists/{id}",
    tag = "Lance lead lists",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "UUID of the list"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the list's ETag is still this one"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Caller is not among the list's users and not an admin", body = LanceError),
        (status = 404, description = "No such list in the caller's workspace", body = LanceError),
        (status = 412, description = "If-Match does not match the current ETag", body = LanceError),
    )
)]
async fn delete_lead_list(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Lance>,
) -> LanceResult {
    delete_record::<LeadList>(app, principal, id, precondition, idempotent).await
}

/// Reads add-prospects' body: direct persons or a search selection.
enum Prospects {
    Direct(Vec<(Option<String>, Person)>),
    Selection(Search, u64),
}

fn read_prospects(body: &Value) -> Result<Prospects, DomainError> {
    let mut reader = Reader::new();
    let root = FieldPath::root();
    let read = (|| {
        let fields = reader.object(body, &root, &["prospects", "selection"])?;
        match (fields.contains("prospects"), fields.contains("selection")) {
            (true, true) | (false, false) => {
                reader.error(
                    &root,
                    "Send either prospects (persons to add) or selection (a search whose results to add), not both",
                );
                None
            }
            (true, false) => reader
                .required(&fields, "prospects", |reader, value, path| {
                    reader.array(value, path, 1..=*LIST_ITEMS.end(), read_prospect::<Lance>)
                })
                .map(Prospects::Direct),
            (false, true) => reader.required(&fields, "selection", |reader, value, path| {
                let selection = reader.object(value, path, &["search", "limit"])?;
                let limit = reader.optional(&selection, "limit", |reader, value, path| {
                    reader.integer(value, path, 1..=*LIST_ITEMS.end() as i64)
                });
                let search = reader.required(&selection, "search", |reader, value, path| {
                    match prospecting::read_person_search(value) {
                        Ok(search) => Some(search),
                        Err(DomainError::Invalid(errors)) => {
                            for error in errors {
                                reader.error(&path.join(&error.path), error.message);
                            }
                            None
                        }
                        Err(other) => {
                            reader.error(path, other.to_string());
                            None
                        }
                    }
                });
                Some(Prospects::Selection(search?, limit?.unwrap_or(100) as u64))
            }),
        }
    })();
    match read {
        Some(prospects) if !reader.has_errors() => Ok(prospects),
        _ => Err(reader.into_error()),
    }
}

/// The list, if it is a person list the session's caller may change.
async fn person_list(
    session: &mut WriteSession,
    id: &str,
    wanted: EntityType,
) -> Result<Record<LeadList>, DomainError> {
    let list = session
        .get_accessible::<LeadList>(id, &Precondition::None)
        .await?;
    if list.data.list_type != wanted {
        let message = match wanted {
            EntityType::Person => {
                "Prospects can only be added to person lists; this list's type is company"
            }
            EntityType::Company => {
                "Companies can only be added to company lists; this list's type is person"
            }
        };
        return Err(DomainError::invalid(FieldPath::root(), message));
    }
    Ok(list)
}

/// Add persons to a person list: new ones are created, existing ones (by
/// `id`) added as they are, those already in the list skipped.
#[utoipa::path(
    post,
    path = "/api/v1/entities/leadlists/{id}/add-prospects",
    tag = "Lance lead lists",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of a person list")),
    request_body(content = AddProspectsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "How many were added", body = AddedCount),
        (status = 400, description = "Invalid body (every invalid field is listed), a company list, or a list that would pass 10,000 persons", body = LanceError),
        (status = 403, description = "Caller is not among the list's users and not an admin", body = LanceError),
        (status = 404, description = "No such list in the caller's workspace", body = LanceError),
        (status = 413, description = "Body over 1 MiB", body = LanceError),
    )
)]
async fn add_prospects(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    idempotent: Idempotent<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let id = uuid_id::<LeadList>(&id)?;
    let prospects = match read_prospects(&body)? {
        Prospects::Direct(prospects) => prospects,
        Prospects::Selection(search, limit) => {
            let (found, _) = app
                .records
                .search::<Person>(&principal, &search.first(limit), false)
                .await?;
            found
                .into_iter()
                .map(|record| (Some(record.id), record.data))
                .collect()
        }
    };
    let keeper = writing.keeper(|added: &u64| {
        Reply::json(
            StatusCode::OK,
            &AddedCount {
                added_count: *added,
            },
        )
    });
    let added = app
        .records
        .transact(&principal, move |session| {
            Box::pin(async move {
                let list = person_list(session, &id, EntityType::Person).await?;
                // Persons that exist are added as they are; the companies
                // of the others are checked before any is written, so each
                // missing one is reported at its path.
                let given: Vec<String> =
                    prospects.iter().filter_map(|(id, _)| id.clone()).collect();
                let mut existing = session.existing_ids::<Person>(&given).await?;
                let is_new =
                    |id: &Option<String>| id.as_ref().is_none_or(|id| !existing.contains(id));
                let companies: Vec<String> = prospects
                    .iter()
                    .filter(|(id, _)| is_new(id))
                    .filter_map(|(_, person)| person.company_id.clone())
                    .collect();
                let found = session.existing_ids::<Company>(&companies).await?;
                let errors: Vec<FieldError> = prospects
                    .iter()
                    .enumerate()
                    .filter(|(_, (id, _))| is_new(id))
                    .filter_map(|(index, (_, person))| {
                        let company = person.company_id.as_ref()?;
                        (!found.contains(company)).then(|| FieldError {
                            path: FieldPath::root()
                                .key("prospects")
                                .index(index)
                                .key("companyId"),
                            message: format!("Company {company} not found"),
                        })
                    })
                    .collect();
                if !errors.is_empty() {
                    return Err(DomainError::Invalid(errors));
                }
                let mut present: HashSet<String> = list.data.person_ids.iter().cloned().collect();
                let mut ids = list.data.person_ids.clone();
                for (given, person) in prospects {
                    let id = match given {
                        Some(id) if existing.contains(&id) => id,
                        Some(id) => {
                            // A new id repeated in the request is one person.
                            existing.insert(id.clone());
                            let ids = crate::core::records::NewIds {
                                key: id,
                                number: None,
                            };
                            session.insert_given(ids, person).await?.id
                        }
                        None => session.insert(|_| person).await?.id,
                    };
                    if present.insert(id.clone()) {
                        ids.push(id);
                    }
                }
                let added = (ids.len() - list.data.person_ids.len()) as u64;
                if ids.len() > *LIST_ITEMS.end() {
                    return Err(DomainError::invalid(
                        FieldPath::root().key("prospects"),
                        format!(
                            "The list would hold {} persons; a list holds at most {}",
                            ids.len(),
                            LIST_ITEMS.end()
                        ),
                    ));
                }
                if added > 0 {
                    session
                        .update(list, move |list| {
                            list.person_ids = ids;
                            Ok(())
                        })
                        .await?;
                }
                if let Some(keeper) = keeper {
                    session.keep(keeper, &added).await?;
                }
                Ok(added)
            })
        })
        .await?;
    Ok(writing.respond(Reply::json(
        StatusCode::OK,
        &AddedCount { added_count: added },
    )))
}

/// Add companies to a company list; duplicates and companies already in
/// it are skipped.
#[utoipa::path(
    post,
    path = "/api/v1/entities/leadlists/{id}/add-companies",
    tag = "Lance lead lists",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of a company list")),
    request_body(content = AddCompaniesRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated list with its companies", body = PopulatedLeadListView),
        (status = 400, description = "Invalid body (every invalid id is listed), unknown companies, or a person list", body = LanceError),
        (status = 403, description = "Caller is not among the list's users and not an admin", body = LanceError),
        (status = 404, description = "No such list in the caller's workspace", body = LanceError),
    )
)]
async fn add_companies(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    idempotent: Idempotent<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let id = uuid_id::<LeadList>(&id)?;
    let wanted = read_company_ids(&body)?;
    let keeper = writing
        .keeper(|(list, members): &(Record<LeadList>, Members)| populated_reply(list, members));
    let (list, members) = app
        .records
        .transact(&principal, move |session| {
            Box::pin(async move {
                let list = person_list(session, &id, EntityType::Company).await?;
                let found = session.existing_ids::<Company>(&wanted).await?;
                let errors: Vec<FieldError> = wanted
                    .iter()
                    .enumerate()
                    .filter(|(_, company)| !found.contains(*company))
                    .map(|(index, company)| FieldError {
                        path: FieldPath::root().key("companyIds").index(index),
                        message: format!("Company {company} not found"),
                    })
                    .collect();
                if !errors.is_empty() {
                    return Err(DomainError::Invalid(errors));
                }
                let mut ids = list.data.company_ids.clone();
                let mut present: HashSet<String> = ids.iter().cloned().collect();
                ids.extend(wanted.into_iter().filter(|id| present.insert(id.clone())));
                if ids.len() > *LIST_ITEMS.end() {
                    return Err(DomainError::invalid(
                        FieldPath::root().key("companyIds"),
                        format!(
                            "The list would hold {} companies; a list holds at most {}",
                            ids.len(),
                            LIST_ITEMS.end()
                        ),
                    ));
                }
                let list = if ids.len() == list.data.company_ids.len() {
                    list
                } else {
                    session
                        .update(list, move |list| {
                            list.company_ids = ids;
                            Ok(())
                        })
                        .await?
                };
                let members = members_in_session(session, &list.data).await?;
                let written = (list, members);
                if let Some(keeper) = keeper {
                    session.keep(keeper, &written).await?;
                }
                Ok(written)
            })
        })
        .await?;
    Ok(writing.respond(populated_reply(&list, &members)))
}

/// The leads of a list: its persons with their companies (persons whose
/// company has no name are left out *(vendor)*), or its companies.
#[utoipa::path(
    get,
    path = "/api/v1/entities/leads/list/{id}",
    tag = "Lance lead lists",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the list")),
    responses(
        (status = 200, description = "Person lists: the persons whose company has a name, each with its company, in list order. Company lists: the companies.", body = Vec<LeadView>),
        (status = 403, description = "Caller is not among the list's users and not an admin", body = LanceError),
        (status = 404, description = "No such list in the caller's workspace", body = LanceError),
    )
)]
async fn leads_of_list(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
) -> LanceResult {
    let id = uuid_id::<LeadList>(&id)?;
    let list = app.records.get::<LeadList>(&principal, &id).await?;
    let members = read_members(&app.records, &principal, &list.data).await?;
    Ok(match list.data.list_type {
        EntityType::Person => {
            let named: Vec<Lead> = leads(&members)
                .into_iter()
                .filter(|lead| {
                    lead.company
                        .is_some_and(|company| !company.data.name.trim().is_empty())
                })
                .collect();
            Json(named).into_response()
        }
        EntityType::Company => {
            let companies: Vec<View<Company, Lance>> =
                members.companies.iter().map(View::of).collect();
            Json(companies).into_response()
        }
    })
}

// ---- prospect search and lookup -------------------------------------------------

/// Search the workspace's persons.
#[utoipa::path(
    post,
    path = "/api/v1/entities/prospects/person",
    tag = "Lance prospects",
    security(("bearer" = [])),
    request_body(content = PersonSearchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A page of persons (with their companies), in id order", body = PersonPage),
        (status = 400, description = "Invalid filters or paging; every invalid field is listed", body = LanceError),
    )
)]
async fn search_persons(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    let search = prospecting::read_person_search(&body)?;
    let (persons, total) = app
        .records
        .search::<Person>(&principal, &search.query(), true)
        .await?;
    let companies = app
        .records
        .get_many::<Company>(&principal, &company_ids_of(&persons))
        .await?;
    let members = Members { persons, companies };
    let content = leads(&members);
    Ok(Json(ProspectPage::of(content, total.unwrap_or(0), &search)).into_response())
}

/// Search the workspace's companies.
#[utoipa::path(
    post,
    path = "/api/v1/entities/prospects/company",
    tag = "Lance prospects",
    security(("bearer" = [])),
    request_body(content = CompanySearchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A page of companies, in id order", body = CompanyPage),
        (status = 400, description = "Invalid filters or paging; every invalid field is listed", body = LanceError),
    )
)]
async fn search_companies(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    let search = prospecting::read_company_search(&body)?;
    let (companies, total) = app
        .records
        .search::<Company>(&principal, &search.query(), true)
        .await?;
    let content: Vec<View<Company, Lance>> = companies.iter().map(View::of).collect();
    Ok(Json(ProspectPage::of(content, total.unwrap_or(0), &search)).into_response())
}

/// Get one person of the workspace (the vendor's prospect lookup).
#[utoipa::path(
    get,
    path = "/api/v1/entities/prospects/person/{id}",
    tag = "Lance prospects",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the person")),
    responses(
        (status = 200, description = "The person", body = PersonView),
        (status = 404, description = "No such person in the caller's workspace", body = LanceError),
    )
)]
async fn get_prospect_person(
    state: State<AppState>,
    caller: Caller<Lance>,
    id: PathId<Lance>,
) -> LanceResult {
    get_record::<Person>(state, caller, id).await
}

/// Get one company of the workspace (the vendor's prospect lookup).
#[utoipa::path(
    get,
    path = "/api/v1/entities/prospects/company/{id}",
    tag = "Lance prospects",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the company")),
    responses(
        (status = 200, description = "The company", body = CompanyView),
        (status = 404, description = "No such company in the caller's workspace", body = LanceError),
    )
)]
async fn get_prospect_company(
    state: State<AppState>,
    caller: Caller<Lance>,
    id: PathId<Lance>,
) -> LanceResult {
    get_record::<Company>(state, caller, id).await
}

// ---- persons and companies (ours) -------------------------------------------------

async fn get_record<T: Declared + Document>(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
) -> LanceResult {
    let id = uuid_id::<T>(&id)?;
    let record = app.records.get::<T>(&principal, &id).await?;
    Ok(record_reply(StatusCode::OK, &record).into_response())
}

/// Creates a record of kind `T` from a create body, completed by
/// `complete` (e.g. the creator joins its users).
async fn create_record<T: Declared + Document + Clone>(
    app: AppState,
    principal: crate::core::auth::Principal,
    idempotent: Idempotent<Lance>,
    body: Value,
    complete: impl FnOnce(T) -> T,
) -> LanceResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let data = app.records.read_new::<T, Lance>(&principal, &body).await?;
    let data = complete(data);
    let keeper = writing.keeper(|record| record_reply(StatusCode::CREATED, record));
    let record = app
        .records
        .create_keeping(&principal, |_| data, keeper)
        .await?;
    Ok(writing.respond(record_reply(StatusCode::CREATED, &record)))
}

async fn update_record<T: Declared + Document + Clone>(
    app: AppState,
    principal: crate::core::auth::Principal,
    id: String,
    precondition: Precondition,
    idempotent: Idempotent<Lance>,
    body: Value,
) -> LanceResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let id = uuid_id::<T>(&id)?;
    let patch = app
        .records
        .read_patch::<T, Lance>(&principal, &id, &body)
        .await?;
    let keeper = writing.keeper(|record| record_reply(StatusCode::OK, record));
    let record = app
        .records
        .update_keeping::<T>(
            &principal,
            &id,
            &precondition,
            |data| T::apply_patch(patch, data),
            keeper,
        )
        .await?;
    Ok(writing.respond(record_reply(StatusCode::OK, &record)))
}

async fn delete_record<T: Document>(
    app: AppState,
    principal: crate::core::auth::Principal,
    id: String,
    precondition: Precondition,
    idempotent: Idempotent<Lance>,
) -> LanceResult {
    let writing = match idempotent.begin(&app, &principal, None).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let id = uuid_id::<T>(&id)?;
    let keeper = writing.keeper(|()| Reply::empty(StatusCode::NO_CONTENT));
    app.records
        .delete_keeping::<T>(&principal, &id, &precondition, keeper)
        .await?;
    Ok(writing.respond(Reply::empty(StatusCode::NO_CONTENT)))
}

/// Create a person of the workspace.
#[utoipa::path(
    post,
    path = "/api/v1/entities/persons",
    tag = "Lance prospects",
    security(("bearer" = [])),
    request_body(content = CreatePersonRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new person", body = PersonView),
        (status = 400, description = "Invalid body; every invalid field is listed", body = LanceError),
    )
)]
async fn create_person(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    idempotent: Idempotent<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    create_record::<Person>(app, principal, idempotent, body, |person| person).await
}

/// Get a person.
#[utoipa::path(
    get,
    path = "/api/v1/entities/persons/{id}",
    tag = "Lance prospects",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the person")),
    responses(
        (status = 200, description = "The person", body = PersonView),
        (status = 404, description = "No such person in the caller's workspace", body = LanceError),
    )
)]
async fn get_person(
    state: State<AppState>,
    caller: Caller<Lance>,
    id: PathId<Lance>,
) -> LanceResult {
    get_record::<Person>(state, caller, id).await
}

/// Update a person partially.
#[utoipa::path(
    patch,
    path = "/api/v1/entities/persons/{id}",
    tag = "Lance prospects",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "UUID of the person"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the person's ETag is still this one"),
    ),
    request_body(content = UpdatePersonRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated person", body = PersonView),
        (status = 400, description = "Invalid body; every invalid field is listed", body = LanceError),
        (status = 404, description = "No such person in the caller's workspace", body = LanceError),
        (status = 412, description = "If-Match does not match the current ETag", body = LanceError),
    )
)]
async fn update_person(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    update_record::<Person>(app, principal, id, precondition, idempotent, body).await
}

/// Delete a person (lists naming it keep its id; their leads leave it out).
#[utoipa::path(
    delete,
    path = "/api/v1/entities/persons/{id}",
    tag = "Lance prospects",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "UUID of the person"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the person's ETag is still this one"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such person in the caller's workspace", body = LanceError),
        (status = 412, description = "If-Match does not match the current ETag", body = LanceError),
    )
)]
async fn delete_person(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Lance>,
) -> LanceResult {
    delete_record::<Person>(app, principal, id, precondition, idempotent).await
}

/// Create a company of the workspace.
#[utoipa::path(
    post,
    path = "/api/v1/entities/companies",
    tag = "Lance prospects",
    security(("bearer" = [])),
    request_body(content = CreateCompanyRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new company", body = CompanyView),
        (status = 400, description = "Invalid body; every invalid field is listed", body = LanceError),
    )
)]
async fn create_company(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    idempotent: Idempotent<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    create_record::<Company>(app, principal, idempotent, body, |company| company).await
}

/// Get a company.
#[utoipa::path(
    get,
    path = "/api/v1/entities/companies/{id}",
    tag = "Lance prospects",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the company")),
    responses(
        (status = 200, description = "The company", body = CompanyView),
        (status = 404, description = "No such company in the caller's workspace", body = LanceError),
    )
)]
async fn get_company(
    state: State<AppState>,
    caller: Caller<Lance>,
    id: PathId<Lance>,
) -> LanceResult {
    get_record::<Company>(state, caller, id).await
}

/// Update a company partially.
#[utoipa::path(
    patch,
    path = "/api/v1/entities/companies/{id}",
    tag = "Lance prospects",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "UUID of the company"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the company's ETag is still this one"),
    ),
    request_body(content = UpdateCompanyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated company", body = CompanyView),
        (status = 400, description = "Invalid body; every invalid field is listed", body = LanceError),
        (status = 404, description = "No such company in the caller's workspace", body = LanceError),
        (status = 412, description = "If-Match does not match the current ETag", body = LanceError),
    )
)]
async fn update_company(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    update_record::<Company>(app, principal, id, precondition, idempotent, body).await
}

/// Delete a company (its persons keep their `companyId`; leads without a
/// company are left out of a list's leads).
#[utoipa::path(
    delete,
    path = "/api/v1/entities/companies/{id}",
    tag = "Lance prospects",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "UUID of the company"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the company's ETag is still this one"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such company in the caller's workspace", body = LanceError),
        (status = 412, description = "If-Match does not match the current ETag", body = LanceError),
    )
)]
async fn delete_company(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Lance>,
) -> LanceResult {
    delete_record::<Company>(app, principal, id, precondition, idempotent).await
}

// ---- generation (ours) -----------------------------------------------------------

/// Optional fields of a generation's body.
struct GenerateBody {
    name: Option<String>,
    start: Option<chrono::DateTime<Utc>>,
    end: Option<chrono::DateTime<Utc>>,
}

fn read_generate_body(body: &Value) -> Result<GenerateBody, DomainError> {
    let mut reader = Reader::new();
    let root = FieldPath::root();
    let read = (|| {
        let fields = reader.object(body, &root, &["name", "startDate", "endDate"])?;
        let name = reader.optional(&fields, "name", |reader, value, path| {
            reader.string(value, path, crate::core::leads::NAME_CHARS)
        });
        let start = reader.optional(&fields, "startDate", |reader, value, path| {
            Rfc3339.read(reader, value, path)
        });
        let end = reader.optional(&fields, "endDate", |reader, value, path| {
            Rfc3339.read(reader, value, path)
        });
        Some(GenerateBody {
            name: name?,
            start: start?,
            end: end?,
        })
    })();
    match read {
        Some(body) if !reader.has_errors() => Ok(body),
        _ => Err(reader.into_error()),
    }
}

/// Generate a person lead list from an ICP: its `leadProviderCriteria`
/// choose candidates from the workspace's persons (in id order), its
/// `customFilterCriteria` and `crmFilters` narrow them, up to
/// `leadsPerList`. `?dryRun=true` writes nothing and shows the funnel.
#[utoipa::path(
    post,
    path = "/api/v1/entities/icps/{id}/lead-lists",
    tag = "Lance lead lists",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "UUID of the ICP"),
        ("dryRun" = Option<bool>, Query, description = "true: choose the persons and show the funnel, write nothing"),
    ),
    request_body(content = GenerateRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Dry run: the persons that would be listed and the funnel", body = GenerationView),
        (status = 201, description = "The new list, its persons and the funnel", body = GenerationView),
        (status = 400, description = "Invalid body or query", body = LanceError),
        (status = 403, description = "Caller is not among the ICP's users and not an admin", body = LanceError),
        (status = 404, description = "No such ICP in the caller's workspace", body = LanceError),
        (status = 409, description = "The ICP's activeUntil has passed", body = LanceError),
        (status = 422, description = "A criterion Clientele cannot apply (an AI, website or webscraping filter without an evaluator; an unknown baseProvider filter), each at its path", body = LanceError),
    )
)]
async fn generate_lead_list(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    QueryPairs(pairs, ..): QueryPairs<Lance>,
    idempotent: Idempotent<Lance>,
    OptionalJsonBody(body, ..): OptionalJsonBody<Lance>,
) -> LanceResult {
    let dry_run = read_dry_run(&pairs)?;
    let options = read_generate_body(&body)?;
    let id = uuid_id::<Icp>(&id)?;
    let icp = app.records.get::<Icp>(&principal, &id).await?;
    let now = Utc::now();
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let plan = Plan::of(&icp.data, now)?;
    let generated =
        prospecting::generate(&app.records, &principal, &icp, &plan, now, dry_run).await?;
    if dry_run {
        // Nothing written, nothing kept: the key's claim ends here.
        drop(writing);
        return Ok(Json(Generation {
            dry_run: true,
            lead_list: None,
            person_ids: &generated.person_ids,
            funnel: &generated.funnel,
        })
        .into_response());
    }
    let start = options.start.unwrap_or(now);
    let end = options
        .end
        .or(icp.data.active_until)
        .unwrap_or(start + Duration::days(30))
        .max(start);
    let name = options
        .name
        .unwrap_or_else(|| prospecting::generated_name(&icp.data, now));
    let list = prospecting::generated_list(
        &icp,
        generated.person_ids.clone(),
        name,
        start,
        end,
        &principal,
    );
    let funnel = generated.funnel;
    let reply_of = move |record: &Record<LeadList>| {
        Reply::json(
            StatusCode::CREATED,
            &Generation {
                dry_run: false,
                lead_list: Some(View::of(record)),
                person_ids: &record.data.person_ids,
                funnel: &funnel,
            },
        )
        .with_header(ETAG, &record.etag())
    };
    let keeper = writing.keeper(reply_of.clone());
    // The list, its persons and the ICP link in one transaction; the
    // ICP must still be there and readable when it commits.
    let icp_id = icp.id.clone();
    let record = app
        .records
        .transact(&principal, move |session| {
            Box::pin(async move {
                session
                    .get_accessible::<Icp>(&icp_id, &Precondition::None)
                    .await?;
                let record = session.insert(|_| list).await?;
                if let Some(keeper) = keeper {
                    session.keep(keeper, &record).await?;
                }
                Ok(record)
            })
        })
        .await?;
    Ok(writing.respond(reply_of(&record)))
}
