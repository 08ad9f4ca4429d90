//! Finding leads: Lance's prospect search (`all`/`any` filters with
//! `include`/`exclude`, read into a term search the database runs), and
//! lead-list generation from an ICP: its `leadProviderCriteria` choose the
//! candidates, its `customFilterCriteria` and `crmFilters` then narrow
//! them, in id order, until the list holds `leadsPerList` persons. Every
//! stage counts what it kept and dropped (the funnel a dry run returns).
//!
//! What each filter means where the vendor's pages are silent is decided
//! here and in `docs/leadlists.md`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::auth::Principal;
use super::error::{DomainError, FieldError, FieldPath};
use super::icp::{CrmCondition, CrmFilters, CustomFilter, EntityType, Icp};
use super::input::Reader;
use super::leads::{Company, LeadList, Person, normalize, words};
use super::records::{Record, Records};
use super::shape::{self, Shape};
use crate::store::search::{Condition, TermMatch, TermQuery, TermTest, Via};

/// Results per page of a prospect search: `size` *(vendor)*.
pub const PAGE_SIZE: std::ops::RangeInclusive<i64> = 0..=100;
pub const DEFAULT_PAGE_SIZE: i64 = 10;
/// The last page a search may ask for: with at most 100 results a page,
/// at most 100,100 results deep (deeper pages cost the database a walk
/// over every skipped record).
pub const MAX_PAGE: i64 = 1_000;
/// Values one filter may list.
pub const FILTER_VALUES: std::ops::RangeInclusive<usize> = 0..=100;
pub const FILTER_VALUE_CHARS: std::ops::RangeInclusive<usize> = 1..=255;
/// The text-match modes *(vendor)*: see [`TextMode`].
pub const TEXT_MODES: [&str; 3] = ["SMART", "WORD", "STRICT"];
/// Candidates read per round while a list fills.
const CANDIDATE_BATCH: u64 = 500;

/// How a text filter's words must appear in a field *(ours: the vendor
/// names the modes only)*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    /// Every word of the text starts a word of the field ("eng man"
    /// matches "Engineering Manager"). The default.
    Smart,
    /// Every word of the text is a word of the field.
    Word,
    /// The whole field equals the text (case and spacing aside).
    Strict,
}

/// A page of a prospect search: the condition and the page asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub condition: Option<Condition>,
    pub page: u64,
    pub size: u64,
}

impl Search {
    /// The term query of the first `limit` results (paging aside).
    pub fn first(&self, limit: u64) -> TermQuery {
        TermQuery {
            condition: self.condition.clone(),
            after: None,
            offset: 0,
            limit,
        }
    }

    /// The term query of this page.
    pub fn query(&self) -> TermQuery {
        TermQuery {
            condition: self.condition.clone(),
            after: None,
            offset: self.page * self.size,
            limit: self.size,
        }
    }
}

/// Where a filter looks: the searched record's own terms, or those of the
/// person's company.
#[derive(Clone, Copy)]
enum Target {
    Own,
    Company,
}

impl Target {
    fn via(self) -> Option<Via> {
        match self {
            Target::Own => None,
            Target::Company => Some(Via {
                link: "company",
                kind: "company",
            }),
        }
    }
}

/// The term fields a text filter tests: the whole value, and its words.
#[derive(Clone, Copy)]
struct TextFields {
    whole: &'static [&'static str],
    word: &'static str,
}

/// One filter key of a search body and what it tests.
#[derive(Clone, Copy)]
enum FilterKind {
    /// `{all|any: {include|exclude: [values]}}` against whole values.
    Values(Target, &'static [&'static str]),
    /// `{all|any: {include|exclude: {mode, content}}}`.
    Text(Target, TextFields),
}

fn test(target: Target, field: &'static str, matches: Vec<TermMatch>) -> Condition {
    Condition::Test(TermTest {
        via: target.via(),
        field,
        matches,
    })
}

/// A value matched against whole values of any of `fields`.
fn value_test(target: Target, fields: &[&'static str], value: &str) -> Condition {
    let term = normalize(value);
    Condition::Any(
        fields
            .iter()
            .map(|field| test(target, field, vec![TermMatch::Exact(term.clone())]))
            .collect(),
    )
}

/// A text matched as `mode` says.
fn text_test(target: Target, fields: TextFields, mode: TextMode, text: &str) -> Condition {
    match mode {
        TextMode::Strict => value_test(target, fields.whole, text),
        TextMode::Word | TextMode::Smart => {
            let parts: Vec<Condition> = words(text)
                .into_iter()
                .map(|word| {
                    let matched = if mode == TextMode::Smart {
                        TermMatch::Prefix(word)
                    } else {
                        TermMatch::Exact(word)
                    };
                    test(target, fields.word, vec![matched])
                })
                .collect();
            if parts.is_empty() {
                // A text with no word matches nothing rather than all.
                Condition::Any(Vec::new())
            } else {
                Condition::All(parts)
            }
        }
    }
}

/// Combines one side of a filter: `all` needs every value, `any` one of
/// them; `include` keeps the matches, `exclude` drops them.
fn combine(all: bool, include: bool, tests: Vec<Condition>) -> Option<Condition> {
    if tests.is_empty() {
        return None;
    }
    let combined = if all {
        Condition::All(tests)
    } else {
        Condition::Any(tests)
    };
    Some(if include {
        combined
    } else {
        Condition::Not(Box::new(combined))
    })
}

/// Reads `{"all": {...}, "any": {...}}` of one filter into its condition.
fn read_filter(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
    kind: FilterKind,
) -> Option<Condition> {
    let fields = reader.object(value, path, &["all", "any"])?;
    let mut parts = Vec::new();
    for side in ["all", "any"] {
        let all = side == "all";
        let read = reader.optional(&fields, side, |reader, value, path| {
            let sides = reader.object(value, path, &["include", "exclude"])?;
            let mut found = Vec::new();
            for direction in ["include", "exclude"] {
                let include = direction == "include";
                let tests = reader.optional(&sides, direction, |reader, value, path| {
                    read_values(reader, value, path, kind)
                })?;
                if let Some(condition) = tests.and_then(|tests| combine(all, include, tests)) {
                    found.push(condition);
                }
            }
            Some(found)
        });
        if let Some(Some(found)) = read {
            parts.extend(found);
        }
    }
    Some(Condition::All(parts))
}

/// The tests of one `include` or `exclude`.
fn read_values(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
    kind: FilterKind,
) -> Option<Vec<Condition>> {
    let strings = |reader: &mut Reader, value: &Value, path: &FieldPath| {
        reader.array(value, path, FILTER_VALUES, |reader, value, path| {
            reader.string(value, path, FILTER_VALUE_CHARS)
        })
    };
    match kind {
        FilterKind::Values(target, fields) => Some(
            strings(reader, value, path)?
                .iter()
                .map(|value| value_test(target, fields, value))
                .collect(),
        ),
        FilterKind::Text(target, text_fields) => {
            let fields = reader.object(value, path, &["mode", "content"])?;
            let mode = reader.optional(&fields, "mode", |reader, value, path| {
                reader.one_of(value, path, &TEXT_MODES)
            });
            let content = reader.required(&fields, "content", strings);
            let mode = match mode?.as_deref() {
                Some("WORD") => TextMode::Word,
                Some("STRICT") => TextMode::Strict,
                _ => TextMode::Smart,
            };
            Some(
                content?
                    .iter()
                    .map(|text| text_test(target, text_fields, mode, text))
                    .collect(),
            )
        }
    }
}

const NAME: TextFields = TextFields {
    whole: &["full_name"],
    word: "name",
};
const TITLE: TextFields = TextFields {
    whole: &["title"],
    word: "title_word",
};
const SKILL: TextFields = TextFields {
    whole: &["skill"],
    word: "skill_word",
};
const KEYWORD: TextFields = TextFields {
    whole: &["keyword"],
    word: "keyword",
};
const COMPANY_NAME: TextFields = TextFields {
    whole: &["name", "domain"],
    word: "name_word",
};

/// The `contact` filters of a person search and what each tests.
const CONTACT_FILTERS: [(&str, FilterKind); 8] = [
    ("fullName", FilterKind::Text(Target::Own, NAME)),
    ("jobTitle", FilterKind::Text(Target::Own, TITLE)),
    ("seniority", FilterKind::Values(Target::Own, &["seniority"])),
    ("location", FilterKind::Values(Target::Own, &["location"])),
    (
        "departmentAndFunction",
        FilterKind::Values(Target::Own, &["department"]),
    ),
    ("skill", FilterKind::Text(Target::Own, SKILL)),
    ("keyword", FilterKind::Text(Target::Own, KEYWORD)),
    (
        "socialMediaLink",
        FilterKind::Values(Target::Own, &["linkedin"]),
    ),
];

/// The `account` filters (of the person's company, in a person search).
fn account_filters(target: Target) -> [(&'static str, FilterKind); 5] {
    [
        ("nameOrDomain", FilterKind::Text(target, COMPANY_NAME)),
        ("industry", FilterKind::Values(target, &["industry"])),
        ("location", FilterKind::Values(target, &["location"])),
        ("headcount", FilterKind::Values(target, &["headcount"])),
        ("keyword", FilterKind::Text(target, KEYWORD)),
    ]
}

/// Reads an object of named filters into the conjunction of their
/// conditions.
fn read_filters(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
    filters: &[(&'static str, FilterKind)],
    extra: &[&str],
) -> Option<(Vec<Condition>, Map<String, Value>)> {
    let mut allowed: Vec<&str> = filters.iter().map(|(name, _)| *name).collect();
    allowed.extend_from_slice(extra);
    let fields = reader.object(value, path, &allowed)?;
    let mut conditions = Vec::new();
    for (name, kind) in filters {
        if let Some(Some(condition)) = reader.optional(&fields, name, |reader, value, path| {
            read_filter(reader, value, path, *kind)
        }) {
            conditions.push(condition);
        }
    }
    let rest = match value {
        Value::Object(map) => map
            .iter()
            .filter(|(key, _)| extra.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        _ => Map::new(),
    };
    Some((conditions, rest))
}

/// `page` and `size` of a search body.
fn read_paging(reader: &mut Reader, fields: &super::input::Fields<'_, '_>) -> Option<(u64, u64)> {
    let page = reader.optional(fields, "page", |reader, value, path| {
        reader.integer(value, path, 0..=MAX_PAGE)
    });
    let size = reader.optional(fields, "size", |reader, value, path| {
        reader.integer(value, path, PAGE_SIZE)
    });
    let (page, size) = (page?.unwrap_or(0), size?.unwrap_or(DEFAULT_PAGE_SIZE));
    Some((page as u64, size as u64))
}

fn conjunction(conditions: Vec<Condition>) -> Option<Condition> {
    (!conditions.is_empty()).then(|| Condition::All(conditions).simplified())
}

/// Reads the body of `POST /api/v1/entities/prospects/person`.
pub fn read_person_search(body: &Value) -> Result<Search, DomainError> {
    let mut reader = Reader::new();
    let root = FieldPath::root();
    let search = read_person_search_at(&mut reader, body, &root);
    match search {
        Some(search) if !reader.has_errors() => Ok(search),
        _ => Err(reader.into_error()),
    }
}

fn read_person_search_at(reader: &mut Reader, body: &Value, root: &FieldPath) -> Option<Search> {
    let fields = reader.object(body, root, &["page", "size", "contact", "account"])?;
    let paging = read_paging(reader, &fields);
    let contact = reader.optional(&fields, "contact", |reader, value, path| {
        let (mut conditions, rest) =
            read_filters(reader, value, path, &CONTACT_FILTERS, &["company"])?;
        if let Some(company) = rest.get("company") {
            let path = path.key("company");
            let sides = reader.object(company, &path, &["current", "previous"])?;
            if sides.contains("previous") {
                reader.error(
                    &sides.path_of("previous"),
                    "Clientele keeps no work history: only `current` companies can be searched",
                );
            }
            if let Some(Some(condition)) =
                reader.optional(&sides, "current", |reader, value, path| {
                    read_filter(
                        reader,
                        value,
                        path,
                        FilterKind::Values(Target::Company, &["name", "domain"]),
                    )
                })
            {
                conditions.push(condition);
            }
        }
        Some(conditions)
    });
    let account = reader.optional(&fields, "account", |reader, value, path| {
        read_filters(reader, value, path, &account_filters(Target::Company), &[])
            .map(|(conditions, _)| conditions)
    });
    let (page, size) = paging?;
    let mut conditions = contact?.unwrap_or_default();
    conditions.extend(account?.unwrap_or_default());
    Some(Search {
        condition: conjunction(conditions),
        page,
        size,
    })
}

/// Reads the body of `POST /api/v1/entities/prospects/company`.
pub fn read_company_search(body: &Value) -> Result<Search, DomainError> {
    let mut reader = Reader::new();
    let root = FieldPath::root();
    let search = (|| {
        let fields = reader.object(body, &root, &["url", "page", "size", "account"])?;
        let paging = read_paging(&mut reader, &fields);
        let urls = reader.optional(&fields, "url", |reader, value, path| {
            reader.array(value, path, FILTER_VALUES, |reader, value, path| {
                reader.string(value, path, 1..=2_048)
            })
        });
        let account = reader.optional(&fields, "account", |reader, value, path| {
            read_filters(reader, value, path, &account_filters(Target::Own), &[])
                .map(|(conditions, _)| conditions)
        });
        let (page, size) = paging?;
        let mut conditions = account?.unwrap_or_default();
        if let Some(urls) = urls?
            && !urls.is_empty()
        {
            {
                conditions.push(Condition::Any(
                    urls.iter()
                        .flat_map(|url| {
                            [
                                value_test(Target::Own, &["linkedin"], url),
                                value_test(Target::Own, &["domain"], &domain_of(url)),
                            ]
                        })
                        .collect(),
                ));
            }
        }
        Some(Search {
            condition: conjunction(conditions),
            page,
            size,
        })
    })();
    match search {
        Some(search) if !reader.has_errors() => Ok(search),
        _ => Err(reader.into_error()),
    }
}

/// The host of a URL without `www.` (or the text itself if it has none).
fn domain_of(url: &str) -> String {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned());
    host.trim_start_matches("www.").to_owned()
}

/// A filter's shape: `{all, any}` each with `include`/`exclude`. Both are
/// named components (`filter` and `side`): inlined, every field of every
/// search repeated them, and generators made a model per copy (and
/// openapi-python-client refused the duplicates).
fn filter_shape(value: Shape, filter: &'static str, side: &'static str) -> Shape {
    let side = shape::closed_object()
        .property("include", value.clone(), false)
        .property("exclude", value, false)
        .named(side);
    shape::closed_object()
        .property("all", side.clone(), false)
        .property("any", side, false)
        .describe("`all`: every value must match; `any`: at least one value must match")
        .named(filter)
}

fn values_shape() -> Shape {
    filter_shape(
        shape::array(shape::text(FILTER_VALUE_CHARS), FILTER_VALUES),
        "ProspectValuesFilter",
        "ProspectValues",
    )
}

fn text_shape() -> Shape {
    filter_shape(
        shape::closed_object()
            .property(
                "mode",
                shape::one_of(&TEXT_MODES).describe(
                    "SMART (default): every word starts a word of the field; WORD: every word is a word of the field; STRICT: the whole field equals the text",
                ),
                false,
            )
            .property(
                "content",
                shape::array(shape::text(FILTER_VALUE_CHARS), FILTER_VALUES),
                true,
            ),
        "ProspectTextFilter",
        "ProspectTextValues",
    )
}

fn filters_shape(filters: &[(&'static str, FilterKind)]) -> Shape {
    filters
        .iter()
        .fold(shape::closed_object(), |object, (name, kind)| {
            let filter = match kind {
                FilterKind::Values(..) => values_shape(),
                FilterKind::Text(..) => text_shape(),
            };
            object.property(name, filter, false)
        })
}

fn paging_shape(object: Shape) -> Shape {
    object
        .property(
            "page",
            shape::integer(0..=MAX_PAGE).describe("0-indexed page (default 0), at most 1000"),
            false,
        )
        .property(
            "size",
            shape::integer(PAGE_SIZE).describe("Results per page, 0 to 100 (default 10)"),
            false,
        )
}

/// The shape of a person search body. Its parts are named components,
/// as the add-prospects selection repeats the whole search.
pub fn person_search_shape() -> Shape {
    let company = shape::closed_object()
        .property("current", values_shape(), false)
        .describe("`current`: names or domains of the person's current company")
        .named("PersonSearchCompany");
    paging_shape(shape::closed_object())
        .property(
            "contact",
            filters_shape(&CONTACT_FILTERS)
                .property("company", company, false)
                .describe("Filters on the person")
                .named("PersonSearchContact"),
            false,
        )
        .property(
            "account",
            filters_shape(&account_filters(Target::Company))
                .describe("Filters on the person's company")
                .named("PersonSearchAccount"),
            false,
        )
}

/// The shape of a company search body.
pub fn company_search_shape() -> Shape {
    paging_shape(shape::closed_object())
        .property(
            "url",
            shape::array(shape::text(1..=2_048), FILTER_VALUES)
                .describe("LinkedIn or website URLs of the companies"),
            false,
        )
        .property(
            "account",
            filters_shape(&account_filters(Target::Own))
                .describe("Filters on the company")
                .named("CompanySearchAccount"),
            false,
        )
}

// ---- generation -------------------------------------------------------------

/// The `baseProvider` filter keys generation applies *(ours: the vendor
/// calls the filters provider-specific)*, each a list of strings, and what
/// each tests for a person criterion; in a company criterion every key
/// tests the company.
const PROVIDER_FILTERS: [&str; 11] = [
    "job_titles",
    "seniorities",
    "departments",
    "skills",
    "keywords",
    "locations",
    "industries",
    "company_size",
    "company_locations",
    "company_names",
    "company_domains",
];

fn provider_test(key: &str, entity: EntityType, value: &str) -> Option<Condition> {
    let own = match entity {
        EntityType::Person => Target::Own,
        EntityType::Company => Target::Company,
    };
    let company = Target::Company;
    Some(match (key, entity) {
        ("job_titles", EntityType::Person) => text_test(own, TITLE, TextMode::Word, value),
        ("seniorities", EntityType::Person) => value_test(own, &["seniority"], value),
        ("departments", EntityType::Person) => value_test(own, &["department"], value),
        ("skills", EntityType::Person) => value_test(own, &["skill"], value),
        ("keywords", _) => text_test(own, KEYWORD, TextMode::Word, value),
        ("locations", _) => value_test(own, &["location"], value),
        ("industries", EntityType::Person) => Condition::Any(vec![
            value_test(Target::Own, &["industry"], value),
            value_test(company, &["industry"], value),
        ]),
        ("industries", EntityType::Company) => value_test(company, &["industry"], value),
        ("company_size", _) => value_test(company, &["headcount"], value),
        ("company_locations", _) => value_test(company, &["location"], value),
        ("company_names", _) => value_test(company, &["name"], value),
        ("company_domains", _) => value_test(company, &["domain"], value),
        _ => return None,
    })
}

/// What an ICP's criteria select, read once: the candidate condition and
/// the filters to apply after it. Refuses (422, every criterion at its
/// path) what Clientele cannot apply.
pub struct Plan {
    pub candidates: Condition,
    steps: Vec<Step>,
    crm: Option<CrmFilters>,
    leads: u64,
}

/// One custom filter, as generation applies it.
enum Step {
    MaxPeoplePerCompany(u64),
    MaxPercentFromCrm(f64),
    MinDaysUntilReuse(i64),
    MatchFieldWithRegex { field: String, regex: regex::Regex },
}

impl Plan {
    pub fn of(icp: &Icp, now: DateTime<Utc>) -> Result<Self, DomainError> {
        if let Some(until) = icp.active_until
            && until <= now
        {
            return Err(DomainError::Conflict(format!(
                "This ICP expired at {} (activeUntil); set activeUntil to a later time or null to generate lists from it",
                until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            )));
        }
        let mut errors = Vec::new();
        let mut alternatives = Vec::new();
        for (index, criterion) in icp.lead_provider_criteria.iter().enumerate() {
            let path = FieldPath::root()
                .key("leadProviderCriteria")
                .index(index)
                .key("filters");
            let mut parts = Vec::new();
            for (key, values) in &criterion.filters {
                let key_path = path.key(key);
                let Some(values) = values.as_array().and_then(|values| {
                    values
                        .iter()
                        .map(Value::as_str)
                        .collect::<Option<Vec<&str>>>()
                }) else {
                    errors.push(FieldError {
                        path: key_path,
                        message: "Generation reads each baseProvider filter as a list of strings"
                            .into(),
                    });
                    continue;
                };
                let tests: Option<Vec<Condition>> = values
                    .iter()
                    .map(|value| provider_test(key, criterion.search_type, value))
                    .collect();
                match tests {
                    Some(tests) if !tests.is_empty() => parts.push(Condition::Any(tests)),
                    Some(_) => {}
                    None => errors.push(FieldError {
                        path: key_path,
                        message: format!(
                            "Clientele cannot apply the baseProvider filter {key:?} to a {} criterion; it applies: {}",
                            match criterion.search_type {
                                EntityType::Person => "person",
                                EntityType::Company => "company",
                            },
                            PROVIDER_FILTERS.join(", ")
                        ),
                    }),
                }
            }
            alternatives.push(Condition::All(parts));
        }
        let mut steps = Vec::new();
        for (index, filter) in icp.custom_filter_criteria.iter().enumerate() {
            let path = FieldPath::root().key("customFilterCriteria").index(index);
            let evaluator = |name: &str| FieldError {
                path: path.clone(),
                message: format!(
                    "The {name} filter needs an external evaluator, and this server has none configured; remove the criterion or generate the list where one is"
                ),
            };
            match filter {
                CustomFilter::Ai { .. } => errors.push(evaluator("ai")),
                CustomFilter::Website { .. } => errors.push(evaluator("website")),
                CustomFilter::Webscraping { .. } => errors.push(evaluator("webscraping")),
                CustomFilter::MaxPeoplePerCompany { value } => steps.push(
                    Step::MaxPeoplePerCompany(u64::try_from(*value).unwrap_or(0)),
                ),
                CustomFilter::MaxPercentFromCrm { value } => {
                    steps.push(Step::MaxPercentFromCrm(*value))
                }
                CustomFilter::MinDaysUntilReuse { value } => {
                    steps.push(Step::MinDaysUntilReuse(*value))
                }
                CustomFilter::MatchFieldWithRegex { field, regex } => {
                    match regex::RegexBuilder::new(regex)
                        .size_limit(super::icp::REGEX_COMPILED_BYTES)
                        .build()
                    {
                        Ok(regex) => steps.push(Step::MatchFieldWithRegex {
                            field: field.clone(),
                            regex,
                        }),
                        Err(error) => errors.push(FieldError {
                            path: path.key("regex"),
                            message: format!("Invalid regular expression: {error}"),
                        }),
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(DomainError::Unprocessable(errors));
        }
        Ok(Plan {
            candidates: Condition::Any(alternatives).simplified(),
            steps,
            crm: icp.crm_filters.clone(),
            leads: u64::try_from(icp.leads_per_list).unwrap_or(0),
        })
    }
}

/// One stage of the funnel: how many candidates it saw, kept and dropped,
/// and why it drops.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub stage: String,
    pub rule: String,
    pub seen: u64,
    pub kept: u64,
    pub dropped: u64,
}

/// What generation found: the persons chosen, in order, and the funnel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Funnel {
    /// Persons matching `leadProviderCriteria` in all: counted on a dry
    /// run, null otherwise.
    pub candidates: Option<u64>,
    /// Of those, how many were read (in id order) before the list was full
    /// or the candidates ran out; the stages count these.
    pub examined: u64,
    pub stages: Vec<Stage>,
    pub leads_per_list: u64,
    pub selected: u64,
}

/// A generation's outcome.
pub struct Generated {
    pub person_ids: Vec<String>,
    pub funnel: Funnel,
}

/// A person with its company, as filters see it.
fn person_view(person: &Person, company: Option<&Company>) -> Value {
    let mut value = serde_json::to_value(person).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert(
            "company".into(),
            company
                .and_then(|company| serde_json::to_value(company).ok())
                .unwrap_or(Value::Null),
        );
    }
    value
}

/// The strings at a dot path (arrays give each of their strings).
fn strings_at<'v>(value: &'v Value, path: &str) -> Vec<&'v str> {
    let mut current = vec![value];
    for key in path.split('.') {
        current = current
            .into_iter()
            .flat_map(|value| match value {
                Value::Object(map) => map.get(key).into_iter().collect::<Vec<_>>(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(|item| item.get(key))
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            })
            .collect();
    }
    current
        .into_iter()
        .flat_map(|value| match value {
            Value::String(text) => vec![text.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// Whether a CRM-linked person passes the ICP's `crmFilters`: its
/// `textSearch` (and legacy `query`: terms joined by `OR`, a trailing `*`
/// a prefix) against the CRM occupation or else the job title, and each
/// condition against the CRM contact's fields.
fn passes_crm(person: &Person, filters: &CrmFilters) -> bool {
    let crm = person.crm.clone().map(Value::Object).unwrap_or(Value::Null);
    for search in [&filters.text_search, &filters.query].into_iter().flatten() {
        let occupation = strings_at(&crm, "occupation")
            .first()
            .map(|text| text.to_string())
            .or_else(|| person.job_title.clone())
            .unwrap_or_default();
        let title_words = words(&occupation);
        let matched = search
            .split(" OR ")
            .map(str::trim)
            .filter(|term| !term.is_empty())
            .any(|term| match term.strip_suffix('*') {
                Some(prefix) => {
                    let prefix = normalize(prefix);
                    title_words.iter().any(|word| word.starts_with(&prefix))
                }
                None => {
                    let wanted = words(term);
                    !wanted.is_empty()
                        && title_words
                            .windows(wanted.len())
                            .any(|window| window == wanted.as_slice())
                }
            });
        if !matched {
            return false;
        }
    }
    filters.filters.iter().all(|filter| {
        let values = strings_at(&crm, &filter.path);
        let matches = values.iter().any(|value| match &filter.condition {
            CrmCondition::Equals(expected) => value == expected,
            CrmCondition::In(expected) => expected.iter().any(|candidate| candidate == value),
            CrmCondition::StartsWith(prefix) => value.starts_with(prefix.as_str()),
        });
        matches != filter.exclude
    })
}

/// Generates the persons of a new list of the ICP `icp` (already checked
/// readable by the caller): candidates in id order, each stage applied in
/// the order the ICP lists it, until `leadsPerList` are chosen.
pub async fn generate(
    records: &Records,
    principal: &Principal,
    icp: &Record<Icp>,
    plan: &Plan,
    now: DateTime<Utc>,
    count: bool,
) -> Result<Generated, DomainError> {
    // Counting every candidate costs more than choosing the first ones, so
    // only a dry run (whose point is the funnel) counts them.
    let candidates = if count {
        records
            .search::<Person>(
                principal,
                &TermQuery {
                    condition: Some(plan.candidates.clone()),
                    after: None,
                    offset: 0,
                    limit: 0,
                },
                true,
            )
            .await?
            .1
    } else {
        None
    };
    let mut reused: HashSet<String> = HashSet::new();
    for step in &plan.steps {
        if let Step::MinDaysUntilReuse(days) = step {
            let since = now - Duration::days((*days).min(365_000));
            let mut after = None;
            loop {
                let (lists, _) = records
                    .search_regardless_of_access::<LeadList>(
                        principal,
                        &super::leads::lists_of_icp(&icp.id, after.clone(), 500),
                        false,
                    )
                    .await?;
                let Some(last) = lists.last() else { break };
                after = Some(last.id.clone());
                for list in lists {
                    if list.created_at >= since {
                        reused.extend(list.data.person_ids);
                    }
                }
            }
        }
    }
    let mut stages: Vec<Stage> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| Stage {
            stage: format!("customFilterCriteria[{index}]"),
            rule: match step {
                Step::MaxPeoplePerCompany(value) => {
                    format!("maxPeoplePerCompany: at most {value} per company")
                }
                Step::MaxPercentFromCrm(value) => {
                    format!("maxPercentFromCRM: at most {value}% of leadsPerList from the CRM")
                }
                Step::MinDaysUntilReuse(value) => format!(
                    "minDaysUntilReuse: not in a list of this ICP created in the last {value} days"
                ),
                Step::MatchFieldWithRegex { field, regex } => {
                    format!("matchFieldWithRegex: {field} matches {}", regex.as_str())
                }
            },
            seen: 0,
            kept: 0,
            dropped: 0,
        })
        .collect();
    let mut crm_stage = plan.crm.as_ref().map(|_| Stage {
        stage: "crmFilters".into(),
        rule: "CRM contacts must match crmFilters; others pass".into(),
        seen: 0,
        kept: 0,
        dropped: 0,
    });
    let mut chosen = Vec::new();
    let mut per_company: HashMap<String, u64> = HashMap::new();
    let mut from_crm = 0u64;
    let mut examined = 0u64;
    let mut after: Option<String> = None;
    let mut companies: HashMap<String, Option<Company>> = HashMap::new();
    // A first round about the list's size (filters drop some), then larger.
    let mut batch_size = (plan.leads * 2).clamp(20, CANDIDATE_BATCH);
    'filling: while (chosen.len() as u64) < plan.leads {
        let (batch, _) = records
            .search::<Person>(
                principal,
                &TermQuery {
                    condition: Some(plan.candidates.clone()),
                    after: after.clone(),
                    offset: 0,
                    limit: batch_size,
                },
                false,
            )
            .await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id.clone());
        let wanted: Vec<String> = batch
            .iter()
            .filter_map(|person| person.data.company_id.clone())
            .filter(|company| !companies.contains_key(company))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if plan
            .steps
            .iter()
            .any(|step| matches!(step, Step::MatchFieldWithRegex { .. }))
            && !wanted.is_empty()
        {
            let found = records.get_many::<Company>(principal, &wanted).await?;
            for id in wanted {
                companies.insert(id, None);
            }
            for company in found {
                companies.insert(company.id.clone(), Some(company.data));
            }
        }
        for person in &batch {
            if (chosen.len() as u64) >= plan.leads {
                break 'filling;
            }
            examined += 1;
            let mut kept = true;
            for (step, stage) in plan.steps.iter().zip(stages.iter_mut()) {
                stage.seen += 1;
                let passes = match step {
                    Step::MaxPeoplePerCompany(limit) => match &person.data.company_id {
                        Some(company) => per_company.get(company).copied().unwrap_or(0) < *limit,
                        None => true,
                    },
                    Step::MaxPercentFromCrm(percent) => {
                        !person.data.in_crm()
                            || ((from_crm + 1) as f64) <= percent / 100.0 * plan.leads as f64
                    }
                    Step::MinDaysUntilReuse(_) => !reused.contains(&person.id),
                    Step::MatchFieldWithRegex { field, regex } => {
                        let company = person
                            .data
                            .company_id
                            .as_ref()
                            .and_then(|id| companies.get(id))
                            .and_then(Option::as_ref);
                        let view = person_view(&person.data, company);
                        strings_at(&view, field)
                            .iter()
                            .any(|value| regex.is_match(value))
                    }
                };
                if passes {
                    stage.kept += 1;
                } else {
                    stage.dropped += 1;
                    kept = false;
                    break;
                }
            }
            if kept && let (Some(filters), Some(stage)) = (&plan.crm, crm_stage.as_mut()) {
                stage.seen += 1;
                if !person.data.in_crm() || passes_crm(&person.data, filters) {
                    stage.kept += 1;
                } else {
                    stage.dropped += 1;
                    kept = false;
                }
            }
            if kept {
                if let Some(company) = &person.data.company_id {
                    *per_company.entry(company.clone()).or_default() += 1;
                }
                if person.data.in_crm() {
                    from_crm += 1;
                }
                chosen.push(person.id.clone());
            }
        }
        if (batch.len() as u64) < batch_size {
            break;
        }
        batch_size = (batch_size * 2).min(CANDIDATE_BATCH);
    }
    stages.extend(crm_stage);
    let selected = chosen.len() as u64;
    Ok(Generated {
        person_ids: chosen,
        funnel: Funnel {
            candidates,
            examined,
            stages,
            leads_per_list: plan.leads,
            selected,
        },
    })
}

/// The default name of a list generated now from an ICP.
pub fn generated_name(icp: &Icp, now: DateTime<Utc>) -> String {
    let stamp = now.format("%Y-%m-%d %H:%M UTC");
    let name = format!("{} — {stamp}", icp.name);
    name.chars().take(*super::leads::NAME_CHARS.end()).collect()
}

/// The list a generation writes: linked to the ICP, its persons, the
/// caller among its users.
pub fn generated_list(
    icp: &Record<Icp>,
    person_ids: Vec<String>,
    name: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    creator: &Principal,
) -> LeadList {
    LeadList {
        name,
        list_type: EntityType::Person,
        icp_id: Some(icp.id.clone()),
        start_date: start,
        end_date: end,
        person_ids,
        company_ids: Vec::new(),
        user_ids: Vec::new(),
    }
    .created_by(creator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_search_reads_into_a_term_condition() {
        let search = read_person_search(&serde_json::json!({
            "page": 1, "size": 5,
            "contact": {
                "seniority": {"any": {"include": ["VP", "Director"]}},
                "jobTitle": {"all": {"include": {"mode": "WORD", "content": ["head of sales"]}}},
                "location": {"any": {"exclude": ["Germany"]}}
            },
            "account": {"industry": {"any": {"include": ["Software"]}}}
        }))
        .expect("valid");
        assert_eq!((search.page, search.size), (1, 5));
        let query = search.query();
        assert_eq!((query.offset, query.limit), (5, 5));
        let Some(Condition::All(parts)) = &search.condition else {
            panic!("a conjunction: {:?}", search.condition);
        };
        // Flattened: three title words, the seniorities merged into one
        // test, the excluded country, the company's industry.
        assert_eq!(parts.len(), 6, "{parts:?}");
        assert!(parts.contains(&Condition::Test(TermTest {
            via: None,
            field: "seniority",
            matches: vec![
                TermMatch::Exact("vp".into()),
                TermMatch::Exact("director".into())
            ],
        })));
    }

    #[test]
    fn every_bad_filter_is_reported_at_its_path() {
        let Err(DomainError::Invalid(errors)) = read_person_search(&serde_json::json!({
            "size": 101,
            "contact": {
                "seniority": {"any": {"include": "VP"}},
                "skill": {"all": {"include": {"mode": "FUZZY", "content": ["x"]}}},
                "company": {"previous": {"any": {"include": ["Acme"]}}},
                "education": {}
            }
        })) else {
            panic!("refused");
        };
        let paths: Vec<String> = errors.iter().map(|error| error.path.to_string()).collect();
        for expected in [
            "size",
            "contact.seniority.any.include",
            "contact.skill.all.include.mode",
            "contact.company.previous",
            "contact.education",
        ] {
            assert!(
                paths.iter().any(|path| path == expected),
                "{expected} in {paths:?}"
            );
        }
    }

    #[test]
    fn crm_text_search_takes_or_and_trailing_stars() {
        let person = |title: &str| Person {
            first_name: "A".into(),
            last_name: "B".into(),
            job_title: Some(title.into()),
            seniority: None,
            departments: vec![],
            sub_departments: vec![],
            functions: vec![],
            skills: vec![],
            industry: None,
            city: None,
            postal_code: None,
            country: None,
            linkedin_url: None,
            emails: vec![],
            phones: vec![],
            company_id: None,
            base_provider_id: None,
            bullhorn_id: Some(1),
            crm_id: None,
            lead_owner_id: None,
            crm: None,
        };
        let filters = CrmFilters {
            provider: "bullhorn".into(),
            text_search: Some("Head OR Leit* OR Direktor".into()),
            query: None,
            filters: vec![],
        };
        assert!(passes_crm(&person("Head of Sales"), &filters));
        assert!(passes_crm(&person("Leiterin Vertrieb"), &filters));
        assert!(!passes_crm(&person("Sales Manager"), &filters));
        let mut with_status = person("Head of Sales");
        with_status.crm = Some(
            serde_json::json!({"status": "Active", "address": {"zip": "10115"}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let conditions = CrmFilters {
            text_search: None,
            filters: vec![
                super::super::icp::CrmFilter {
                    path: "address.zip".into(),
                    condition: CrmCondition::StartsWith("101".into()),
                    exclude: false,
                },
                super::super::icp::CrmFilter {
                    path: "status".into(),
                    condition: CrmCondition::In(vec!["Archived".into()]),
                    exclude: true,
                },
            ],
            ..filters
        };
        assert!(passes_crm(&with_status, &conditions));
    }
}
