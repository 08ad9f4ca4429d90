//! Ideal Customer Profiles: the record, its nested criteria, the rules each
//! value must satisfy, and how a partial update applies. The limits and
//! defaults here are the one place each ICP decision is made; the Lance
//! surface reads request bodies into these types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::auth::Principal;
use super::error::{FieldError, FieldPath, RecordKind};
use super::fields::{
    Check, Choice, Choose, Dialect, FreeObject, Integer, List, Mode, OneOf, Record, Refine, Rules,
    Text, ViewValue,
};
use super::input::{Fields, FreeFormLimits, Reader};
use super::records::Document;
use super::shape::{self, Shape};
use crate::view_as_stored;

/// Character bounds of `name`.
pub const NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=255;
/// Character bounds of `description`.
pub const DESCRIPTION_CHARS: std::ops::RangeInclusive<usize> = 0..=5_000;
/// How many users an ICP may list.
pub const USER_IDS_ITEMS: std::ops::RangeInclusive<usize> = 0..=1_000;
/// Character bounds of one user id.
pub const USER_ID_CHARS: std::ops::RangeInclusive<usize> = 1..=128;
/// `leadsPerList` range, and its default *(vendor)*.
pub const LEADS_PER_LIST: std::ops::RangeInclusive<i64> = 1..=10_000;
pub const DEFAULT_LEADS_PER_LIST: i64 = 10;
/// At least one lead provider criterion *(vendor)*.
pub const LEAD_PROVIDER_CRITERIA_ITEMS: std::ops::RangeInclusive<usize> = 1..=50;
pub const CUSTOM_FILTER_CRITERIA_ITEMS: std::ops::RangeInclusive<usize> = 0..=50;
/// Prompts given to the AI and website filters.
pub const PROMPT_CHARS: std::ops::RangeInclusive<usize> = 1..=10_000;
/// Optional prompts of the webscraping filter (may be empty).
pub const OPTIONAL_PROMPT_CHARS: std::ops::RangeInclusive<usize> = 0..=10_000;
/// Provider names of the website and webscraping filters.
pub const FILTER_PROVIDER_CHARS: std::ops::RangeInclusive<usize> = 1..=100;
pub const SEARCH_STRINGS_ITEMS: std::ops::RangeInclusive<usize> = 0..=100;
pub const SEARCH_STRING_CHARS: std::ops::RangeInclusive<usize> = 1..=500;
/// Field paths such as `company.headcount`.
pub const FIELD_PATH_CHARS: std::ops::RangeInclusive<usize> = 1..=200;
pub const REGEX_CHARS: std::ops::RangeInclusive<usize> = 1..=1_000;
/// Compiled size a `matchFieldWithRegex` pattern may reach; bigger ones
/// (e.g. `\w{1000}{1000}`) are refused rather than allowed to eat memory.
pub const REGEX_COMPILED_BYTES: usize = 256 * 1024;
/// What all the patterns of one body may compile to together: compiling
/// costs CPU in proportion to the size reached, and any member can send a
/// body, so a request's total is bounded too.
pub const REGEX_REQUEST_BYTES: usize = 1024 * 1024;
/// `matchFieldWithRegex` criteria an ICP may hold, counted before any is
/// compiled.
pub const MAX_REGEX_CRITERIA: usize = 10;
pub const MAX_PEOPLE_PER_COMPANY: std::ops::RangeInclusive<i64> = 1..=i64::MAX;
pub const MIN_DAYS_UNTIL_REUSE: std::ops::RangeInclusive<i64> = 0..=i64::MAX;
pub const MAX_PERCENT_FROM_CRM: std::ops::RangeInclusive<f64> = 0.0..=100.0;
pub const CRM_FILTERS_ITEMS: std::ops::RangeInclusive<usize> = 0..=50;
pub const CRM_TEXT_CHARS: std::ops::RangeInclusive<usize> = 0..=2_000;
pub const CRM_VALUE_CHARS: std::ops::RangeInclusive<usize> = 0..=1_000;
pub const CRM_IN_ITEMS: std::ops::RangeInclusive<usize> = 1..=500;

/// The only lead provider the vendor documents.
pub const LEAD_PROVIDERS: [&str; 1] = ["baseProvider"];
/// The only CRM the vendor documents.
pub const CRM_PROVIDERS: [&str; 1] = ["bullhorn"];
pub const ENTITY_TYPES: [&str; 2] = ["person", "company"];
pub const CUSTOM_FILTER_TYPES: [&str; 7] = [
    "website",
    "webscraping",
    "ai",
    "maxPeoplePerCompany",
    "maxPercentFromCRM",
    "minDaysUntilReuse",
    "matchFieldWithRegex",
];
pub const CRM_MATCH_MODES: [&str; 3] = ["equals", "in", "startsWith"];
pub const DEFAULT_WEBSITE_PROVIDER: &str = "browserUse";
pub const DEFAULT_WEBSCRAPING_PROVIDER: &str = "firecrawl";

/// An Ideal Customer Profile as stored (metadata lives in the record).
/// Each field is declared here once: its rule, whether a create needs it,
/// what it defaults to, and (from its type) whether `null` clears it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[serde(rename_all = "camelCase")]
#[record(times_after = description)]
pub struct Icp {
    #[field(check = Text(NAME_CHARS), required)]
    pub name: String,
    #[field(check = Text(DESCRIPTION_CHARS))]
    pub description: Option<String>,
    /// Clerk user ids with access to the ICP.
    #[field(check = List(Text(USER_ID_CHARS), USER_IDS_ITEMS))]
    pub user_ids: Vec<String>,
    /// How many leads a list generated from this ICP holds; default 10.
    #[field(check = Integer(LEADS_PER_LIST), default = DEFAULT_LEADS_PER_LIST)]
    pub leads_per_list: i64,
    /// When the ICP expires, in RFC 3339 (e.g. 2024-12-31T23:59:59.000Z);
    /// `null` for never.
    #[field(check = Rfc3339)]
    pub active_until: Option<DateTime<Utc>>,
    #[field(check = List(LeadProviderCriterionRule, LEAD_PROVIDER_CRITERIA_ITEMS), required)]
    pub lead_provider_criteria: Vec<LeadProviderCriterion>,
    #[field(check = CustomFiltersRule)]
    pub custom_filter_criteria: Vec<CustomFilter>,
    #[field(check = CrmFiltersRule)]
    pub crm_filters: Option<CrmFilters>,
}

/// Whether a search or filter concerns people or companies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EntityType {
    Person,
    Company,
}

impl Choice for EntityType {
    const NAMES: &'static [&'static str] = &ENTITY_TYPES;

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "person" => Some(EntityType::Person),
            "company" => Some(EntityType::Company),
            _ => None,
        }
    }
}

/// One search a lead provider runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadProviderCriterion {
    pub provider: String,
    /// Defaults to `person` *(vendor: legacy behaviour)*.
    #[serde(rename = "type")]
    pub search_type: EntityType,
    /// Provider-specific filters, stored as given within the size bounds.
    pub filters: Map<String, Value>,
}

/// A rule applied to leads after retrieval, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum CustomFilter {
    Website {
        provider: String,
        prompt: String,
    },
    Webscraping {
        provider: String,
        extraction_prompt: Option<String>,
        page_finding_prompt: Option<String>,
        include_search_strings: Option<Vec<String>>,
        exclude_search_strings: Option<Vec<String>>,
    },
    Ai {
        entity_type: EntityType,
        prompt: String,
    },
    MaxPeoplePerCompany {
        value: i64,
    },
    #[serde(rename = "maxPercentFromCRM")]
    MaxPercentFromCrm {
        value: f64,
    },
    MinDaysUntilReuse {
        value: i64,
    },
    MatchFieldWithRegex {
        field: String,
        regex: String,
    },
}

/// Which contacts of the connected CRM count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmFilters {
    pub provider: String,
    pub text_search: Option<String>,
    pub query: Option<String>,
    pub filters: Vec<CrmFilter>,
}

/// One structured CRM condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmFilter {
    pub path: String,
    pub condition: CrmCondition,
    pub exclude: bool,
}

/// A CRM match mode with the value kind that mode takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "value", rename_all = "camelCase")]
pub enum CrmCondition {
    Equals(String),
    In(Vec<String>),
    StartsWith(String),
}

/// Checks that a `matchFieldWithRegex` pattern compiles within the size
/// bound; the error text says why not.
pub fn check_regex(pattern: &str) -> Result<(), String> {
    compile_regex(pattern, REGEX_COMPILED_BYTES).map(|_| ())
}

/// Compiles `pattern` as the `regex` crate does, within `budget` bytes (at
/// most [`REGEX_COMPILED_BYTES`]), and returns the bytes it took. Compiled
/// through `regex-automata` (the engine inside `regex`) because only it
/// reports the memory a compiled pattern uses, which the request's budget
/// is counted in; errors are worded as `regex` words them.
pub fn compile_regex(pattern: &str, budget: usize) -> Result<usize, String> {
    use regex_automata::meta;
    let limit = budget.min(REGEX_COMPILED_BYTES);
    let config = meta::Config::new()
        .nfa_size_limit(Some(limit))
        .hybrid_cache_capacity(limit)
        .match_kind(regex_automata::MatchKind::LeftmostFirst)
        .utf8_empty(true);
    let syntax = regex_automata::util::syntax::Config::new().utf8(true);
    match meta::Builder::new()
        .configure(config)
        .syntax(syntax)
        .build(pattern)
    {
        Ok(regex) => Ok(regex.memory_usage()),
        Err(error) if error.size_limit().is_some() && limit < REGEX_COMPILED_BYTES => Err(format!(
            "Invalid regular expression: the patterns of this request would compile to more than {REGEX_REQUEST_BYTES} bytes in all"
        )),
        Err(error) if error.size_limit().is_some() => Err(format!(
            "Invalid regular expression: compiles to more than {REGEX_COMPILED_BYTES} bytes"
        )),
        Err(error) => match error.syntax_error() {
            Some(syntax) => Err(format!("Invalid regular expression: {syntax}")),
            None => Err(format!("Invalid regular expression: {error}")),
        },
    }
}

/// Whether `body` (a create or PATCH body) carries regular expressions to
/// compile, which is the CPU-heavy part of reading it.
pub fn has_regex_criteria(body: &Value) -> bool {
    body.get("customFilterCriteria")
        .and_then(Value::as_array)
        .is_some_and(|criteria| criteria.iter().any(is_regex_criterion))
}

fn is_regex_criterion(criterion: &Value) -> bool {
    criterion.get("type").and_then(Value::as_str) == Some("matchFieldWithRegex")
}

impl Icp {
    /// The ICP as its creator made it: the creator is always among its
    /// users *(vendor)*.
    pub fn created_by(mut self, creator: &Principal) -> Self {
        self.user_ids.push(creator.user_id.clone());
        self.normalize();
        self
    }

    /// `userIds` is a set: keep the first occurrence of each id, in order.
    fn normalize(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.user_ids.retain(|user| seen.insert(user.clone()));
    }
}

impl Rules for Icp {
    fn after_apply(&mut self, _mode: Mode) -> Result<(), Vec<FieldError>> {
        self.normalize();
        Ok(())
    }
}

#[async_trait::async_trait]
impl Document for Icp {
    const KIND: RecordKind = RecordKind::Icp;
    const PER_RECORD_ACCESS: bool = true;

    fn accessible_by(&self, principal: &Principal) -> bool {
        self.user_ids.contains(&principal.user_id)
    }

    /// The ICP's lead lists remain, no longer linked to it *(vendor)*.
    async fn before_delete(
        &self,
        id: &str,
        session: &mut super::records::WriteSession,
    ) -> Result<(), super::error::DomainError> {
        loop {
            let lists = session
                .search::<super::leads::LeadList>(&super::leads::lists_of_icp(id, None, 500))
                .await?;
            if lists.is_empty() {
                return Ok(());
            }
            for list in lists {
                session
                    .update(list, |list| {
                        list.icp_id = None;
                        Ok(())
                    })
                    .await?;
            }
        }
    }
}

// ---- the rules of the nested values ----------------------------------------

/// `activeUntil`: an RFC 3339 time.
pub struct Rfc3339;

impl Check for Rfc3339 {
    type Value = DateTime<Utc>;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<DateTime<Utc>> {
        reader.date_time(
            value,
            path,
            "Invalid datetime: expected RFC 3339, e.g. 2024-12-31T23:59:59.000Z",
        )
    }

    fn shape(&self) -> Shape {
        shape::text(1..=64)
            .format("date-time")
            .describe("RFC 3339, e.g. 2024-12-31T23:59:59.000Z")
    }
}

/// One `leadProviderCriteria` element.
pub struct LeadProviderCriterionRule;

impl Check for LeadProviderCriterionRule {
    type Value = LeadProviderCriterion;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Self::Value> {
        let fields = reader.object(value, path, &["provider", "type", "filters"])?;
        let provider = reader.required(&fields, "provider", |reader, value, path| {
            OneOf(&LEAD_PROVIDERS).read(reader, value, path)
        });
        let search_type = reader.optional(&fields, "type", |reader, value, path| {
            Choose::<EntityType>::new().read(reader, value, path)
        });
        let filters = reader.required(&fields, "filters", |reader, value, path| {
            FreeObject(FreeFormLimits::DEFAULT).read(reader, value, path)
        });
        Some(LeadProviderCriterion {
            provider: provider?,
            search_type: search_type?.unwrap_or(EntityType::Person),
            filters: filters?,
        })
    }

    fn shape(&self) -> Shape {
        shape::closed_object()
            .property("provider", shape::one_of(&LEAD_PROVIDERS), true)
            .property(
                "type",
                shape::one_of(&ENTITY_TYPES).describe("Default `person`"),
                false,
            )
            .property(
                "filters",
                shape::free_object(FreeFormLimits::DEFAULT).describe("Provider-specific filters"),
                true,
            )
    }

    fn view_shape(&self) -> Shape {
        self.shape().named("LeadProviderCriterionView")
    }
}

/// `customFilterCriteria`: at most [`MAX_REGEX_CRITERIA`] regular
/// expressions (counted before any is compiled), compiling to at most
/// [`REGEX_REQUEST_BYTES`] together.
pub struct CustomFiltersRule;

impl Check for CustomFiltersRule {
    type Value = Vec<CustomFilter>;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Self::Value> {
        if let Value::Array(criteria) = value {
            let regexes = criteria
                .iter()
                .filter(|item| is_regex_criterion(item))
                .count();
            if regexes > MAX_REGEX_CRITERIA {
                reader.error(
                    path,
                    format!(
                        "At most {MAX_REGEX_CRITERIA} matchFieldWithRegex criteria; this list has {regexes}"
                    ),
                );
                return None;
            }
        }
        let element = CustomFilterRule {
            regex_budget: std::cell::Cell::new(REGEX_REQUEST_BYTES),
        };
        List(element, CUSTOM_FILTER_CRITERIA_ITEMS).read(reader, value, path)
    }

    fn shape(&self) -> Shape {
        shape::array(CustomFilterRule::shape_of(), CUSTOM_FILTER_CRITERIA_ITEMS).describe(format!(
            "At most {MAX_REGEX_CRITERIA} of them `matchFieldWithRegex`, compiling to at most {REGEX_REQUEST_BYTES} bytes together."
        ))
    }

    fn view_shape(&self) -> Shape {
        shape::array(
            CustomFilterRule::shape_of().named("CustomFilterView"),
            CUSTOM_FILTER_CRITERIA_ITEMS,
        )
    }
}

/// One `customFilterCriteria` element: `type` picks the variant, and the
/// variant decides which other keys are allowed. Patterns are charged to
/// the budget of the list they are in.
pub struct CustomFilterRule {
    regex_budget: std::cell::Cell<usize>,
}

impl CustomFilterRule {
    fn provider(reader: &mut Reader, fields: &Fields<'_, '_>, default: &str) -> Option<String> {
        reader
            .optional(fields, "provider", |reader, value, path| {
                Text(FILTER_PROVIDER_CHARS).read(reader, value, path)
            })
            .map(|provider| provider.unwrap_or_else(|| default.to_owned()))
    }

    fn search_strings() -> List<Text> {
        List(Text(SEARCH_STRING_CHARS), SEARCH_STRINGS_ITEMS)
    }
}

impl CustomFilterRule {
    fn website(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<CustomFilter> {
        let fields = reader.object(value, path, &["type", "provider", "prompt"])?;
        let provider = Self::provider(reader, &fields, DEFAULT_WEBSITE_PROVIDER);
        let prompt = reader.required(&fields, "prompt", |reader, value, path| {
            Text(PROMPT_CHARS).read(reader, value, path)
        });
        Some(CustomFilter::Website {
            provider: provider?,
            prompt: prompt?,
        })
    }

    fn webscraping(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<CustomFilter> {
        let fields = reader.object(
            value,
            path,
            &[
                "type",
                "provider",
                "extractionPrompt",
                "pageFindingPrompt",
                "includeSearchStrings",
                "excludeSearchStrings",
            ],
        )?;
        let provider = Self::provider(reader, &fields, DEFAULT_WEBSCRAPING_PROVIDER);
        let prompt = |reader: &mut Reader, key: &str| {
            reader.nullable(&fields, key, |reader, value, path| {
                Text(OPTIONAL_PROMPT_CHARS).read(reader, value, path)
            })
        };
        let extraction_prompt = prompt(reader, "extractionPrompt");
        let page_finding_prompt = prompt(reader, "pageFindingPrompt");
        let strings = |reader: &mut Reader, key: &str| {
            reader.nullable(&fields, key, |reader, value, path| {
                Self::search_strings().read(reader, value, path)
            })
        };
        let include = strings(reader, "includeSearchStrings");
        let exclude = strings(reader, "excludeSearchStrings");
        Some(CustomFilter::Webscraping {
            provider: provider?,
            extraction_prompt: extraction_prompt?,
            page_finding_prompt: page_finding_prompt?,
            include_search_strings: include?,
            exclude_search_strings: exclude?,
        })
    }

    fn ai(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<CustomFilter> {
        let fields = reader.object(value, path, &["type", "entityType", "prompt"])?;
        let entity_type = reader.required(&fields, "entityType", |reader, value, path| {
            Choose::<EntityType>::new().read(reader, value, path)
        });
        let prompt = reader.required(&fields, "prompt", |reader, value, path| {
            Text(PROMPT_CHARS).read(reader, value, path)
        });
        Some(CustomFilter::Ai {
            entity_type: entity_type?,
            prompt: prompt?,
        })
    }

    /// The pattern is compiled within what is left of the list's budget.
    fn match_field_with_regex(
        &self,
        reader: &mut Reader,
        value: &Value,
        path: &FieldPath,
    ) -> Option<CustomFilter> {
        let fields = reader.object(value, path, &["type", "field", "regex"])?;
        let field = reader.required(&fields, "field", |reader, value, path| {
            Text(FIELD_PATH_CHARS).read(reader, value, path)
        });
        let regex = reader.required(&fields, "regex", |reader, value, path| {
            Refine(Text(REGEX_CHARS), |pattern: String| {
                let budget = self.regex_budget.get();
                let used = compile_regex(&pattern, budget);
                // A refused pattern may have used all it was allowed.
                let spent = used
                    .as_ref()
                    .map_or(budget.min(REGEX_COMPILED_BYTES), |used| *used);
                self.regex_budget.set(budget.saturating_sub(spent));
                used.map(|_| pattern)
            })
            .read(reader, value, path)
        });
        Some(CustomFilter::MatchFieldWithRegex {
            field: field?,
            regex: regex?,
        })
    }
}

impl Check for CustomFilterRule {
    type Value = CustomFilter;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<CustomFilter> {
        let Value::Object(map) = value else {
            reader.object(value, path, &[]);
            return None;
        };
        let type_path = path.key("type");
        let Some(filter_type) = map.get("type") else {
            reader.error(&type_path, reader.words().required());
            return None;
        };
        let filter_type = reader.one_of(filter_type, &type_path, &CUSTOM_FILTER_TYPES)?;
        let integer = |reader: &mut Reader, range| {
            let fields = reader.object(value, path, &["type", "value"])?;
            reader.required(&fields, "value", |reader, value, path| {
                reader.integer(value, path, range)
            })
        };
        match filter_type.as_str() {
            "website" => Self::website(reader, value, path),
            "webscraping" => Self::webscraping(reader, value, path),
            "ai" => Self::ai(reader, value, path),
            "maxPeoplePerCompany" => integer(reader, MAX_PEOPLE_PER_COMPANY)
                .map(|value| CustomFilter::MaxPeoplePerCompany { value }),
            "minDaysUntilReuse" => integer(reader, MIN_DAYS_UNTIL_REUSE)
                .map(|value| CustomFilter::MinDaysUntilReuse { value }),
            "maxPercentFromCRM" => {
                let fields = reader.object(value, path, &["type", "value"])?;
                reader
                    .required(&fields, "value", |reader, value, path| {
                        reader.number(value, path, MAX_PERCENT_FROM_CRM)
                    })
                    .map(|value| CustomFilter::MaxPercentFromCrm { value })
            }
            "matchFieldWithRegex" => self.match_field_with_regex(reader, value, path),
            _ => None, // one_of has already refused any other type
        }
    }

    fn shape(&self) -> Shape {
        Self::shape_of()
    }
}

impl CustomFilterRule {
    fn shape_of() -> Shape {
        let variant =
            |name: &str| shape::closed_object().property("type", shape::one_of(&[name]), true);
        let prompt = || Text(PROMPT_CHARS).shape();
        let optional_prompt = || Text(OPTIONAL_PROMPT_CHARS).shape().or_null();
        let search_strings = || Self::search_strings().shape().or_null();
        let provider = |default: &str| {
            Text(FILTER_PROVIDER_CHARS)
                .shape()
                .describe(format!("Default `{default}`"))
        };
        shape::any_one_of(vec![
            variant("website")
                .property("provider", provider(DEFAULT_WEBSITE_PROVIDER), false)
                .property("prompt", prompt(), true),
            variant("webscraping")
                .property("provider", provider(DEFAULT_WEBSCRAPING_PROVIDER), false)
                .property("extractionPrompt", optional_prompt(), false)
                .property("pageFindingPrompt", optional_prompt(), false)
                .property("includeSearchStrings", search_strings(), false)
                .property("excludeSearchStrings", search_strings(), false),
            variant("ai")
                .property("entityType", shape::one_of(&ENTITY_TYPES), true)
                .property("prompt", prompt(), true),
            variant("maxPeoplePerCompany")
                .property("value", shape::integer(MAX_PEOPLE_PER_COMPANY), true),
            variant("maxPercentFromCRM")
                .property("value", shape::number(MAX_PERCENT_FROM_CRM), true),
            variant("minDaysUntilReuse")
                .property("value", shape::integer(MIN_DAYS_UNTIL_REUSE), true),
            variant("matchFieldWithRegex")
                .property("field", Text(FIELD_PATH_CHARS).shape(), true)
                .property(
                    "regex",
                    Text(REGEX_CHARS).shape().format("regex").describe(format!(
                        "A pattern in the Rust `regex` crate's syntax (no look-around or backreferences), compiling to at most {REGEX_COMPILED_BYTES} bytes"
                    )),
                    true,
                ),
        ])
        .describe("A custom filtering rule, tagged by `type`")
    }
}

/// `crmFilters`: the CRM's name, free-text searches and conditions.
pub struct CrmFiltersRule;

impl CrmFiltersRule {
    fn filter(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<CrmFilter> {
        let fields = reader.object(value, path, &["path", "mode", "value", "exclude"])?;
        let field_path = reader.required(&fields, "path", |reader, value, path| {
            Text(FIELD_PATH_CHARS).read(reader, value, path)
        });
        let mode = reader.required(&fields, "mode", |reader, value, path| {
            reader.one_of(value, path, &CRM_MATCH_MODES)
        });
        let exclude = reader.optional(&fields, "exclude", |reader, value, path| {
            reader.boolean(value, path)
        });
        let text = Text(CRM_VALUE_CHARS);
        // The value's kind depends on the mode; without a valid mode there is
        // nothing to check it against, but a missing value is still reported.
        let condition = match mode.as_deref() {
            Some("in") => reader.required(&fields, "value", |reader, value, path| {
                List(Text(CRM_VALUE_CHARS), CRM_IN_ITEMS)
                    .read(reader, value, path)
                    .map(CrmCondition::In)
            }),
            Some(mode) => {
                let equals = mode == "equals";
                reader.required(&fields, "value", |reader, value, path| {
                    text.read(reader, value, path).map(|text| {
                        if equals {
                            CrmCondition::Equals(text)
                        } else {
                            CrmCondition::StartsWith(text)
                        }
                    })
                })
            }
            None => {
                if !fields.contains("value") {
                    reader.error(&fields.path_of("value"), reader.words().required());
                }
                None
            }
        };
        Some(CrmFilter {
            path: field_path?,
            condition: condition?,
            exclude: exclude?.unwrap_or(false),
        })
    }
}

impl Check for CrmFiltersRule {
    type Value = CrmFilters;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<CrmFilters> {
        let fields = reader.object(value, path, &["provider", "textSearch", "query", "filters"])?;
        let text = Text(CRM_TEXT_CHARS);
        let provider = reader.required(&fields, "provider", |reader, value, path| {
            OneOf(&CRM_PROVIDERS).read(reader, value, path)
        });
        let text_search = reader.nullable(&fields, "textSearch", |reader, value, path| {
            text.read(reader, value, path)
        });
        let query = reader.nullable(&fields, "query", |reader, value, path| {
            text.read(reader, value, path)
        });
        let filters = reader.optional(&fields, "filters", |reader, value, path| {
            reader.array(value, path, CRM_FILTERS_ITEMS, Self::filter)
        });
        Some(CrmFilters {
            provider: provider?,
            text_search: text_search?,
            query: query?,
            filters: filters?.unwrap_or_default(),
        })
    }

    fn shape(&self) -> Shape {
        let text = || Text(CRM_TEXT_CHARS).shape().or_null();
        let condition = |modes: &[&str], value: Shape| {
            shape::closed_object()
                .property("path", Text(FIELD_PATH_CHARS).shape(), true)
                .property("mode", shape::one_of(modes), true)
                .property("value", value, true)
                .property("exclude", shape::boolean().describe("Default false"), false)
        };
        let filter = shape::any_one_of(vec![
            condition(&["equals", "startsWith"], Text(CRM_VALUE_CHARS).shape()),
            condition(&["in"], List(Text(CRM_VALUE_CHARS), CRM_IN_ITEMS).shape()),
        ]);
        shape::closed_object()
            .property("provider", shape::one_of(&CRM_PROVIDERS), true)
            .property("textSearch", text(), false)
            .property("query", text(), false)
            .property("filters", shape::array(filter, CRM_FILTERS_ITEMS), false)
    }

    fn view_shape(&self) -> Shape {
        self.shape().named("CrmFiltersView")
    }
}

view_as_stored! {
    LeadProviderCriterion => Shape::default(),
    CustomFilter => Shape::default(),
}

/// Views show a condition's mode and value beside its path, as requests
/// send them (`{"path","mode","value","exclude"}`); storage nests them.
impl ViewValue for CrmFilters {
    fn serialize_view<D: Dialect, S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct FiltersView<'a> {
            provider: &'a str,
            text_search: &'a Option<String>,
            query: &'a Option<String>,
            filters: Vec<FilterView<'a>>,
        }
        #[derive(Serialize)]
        struct FilterView<'a> {
            path: &'a str,
            mode: &'static str,
            value: ConditionValue<'a>,
            exclude: bool,
        }
        #[derive(Serialize)]
        #[serde(untagged)]
        enum ConditionValue<'a> {
            One(&'a str),
            Many(&'a [String]),
        }
        FiltersView {
            provider: &self.provider,
            text_search: &self.text_search,
            query: &self.query,
            filters: self
                .filters
                .iter()
                .map(|filter| {
                    let (mode, value) = match &filter.condition {
                        CrmCondition::Equals(text) => ("equals", ConditionValue::One(text)),
                        CrmCondition::StartsWith(text) => ("startsWith", ConditionValue::One(text)),
                        CrmCondition::In(values) => ("in", ConditionValue::Many(values)),
                    };
                    FilterView {
                        path: &filter.path,
                        mode,
                        value,
                        exclude: filter.exclude,
                    }
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

impl crate::core::import::Importable for Icp {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::auth::{Role, WorkspaceId};

    fn creator() -> Principal {
        Principal {
            workspace: WorkspaceId::new("w"),
            user_id: "user_me".into(),
            role: Role::Member,
            key_id: None,
            request_id: String::new(),
            client_request_id: None,
        }
    }

    fn new_icp() -> Icp {
        Icp {
            name: "n".into(),
            description: None,
            user_ids: vec!["user_a".into(), "user_me".into()],
            leads_per_list: DEFAULT_LEADS_PER_LIST,
            active_until: None,
            lead_provider_criteria: vec![],
            custom_filter_criteria: vec![],
            crm_filters: None,
        }
    }

    #[test]
    fn creator_is_added_once() {
        let icp = new_icp().created_by(&creator());
        assert_eq!(
            icp.user_ids,
            vec!["user_a".to_owned(), "user_me".to_owned()]
        );
        assert!(icp.accessible_by(&creator()));
    }

    #[test]
    fn patch_touches_only_named_fields() {
        let mut icp = new_icp().created_by(&creator());
        icp.description = Some("d".into());
        let before = icp.clone();
        IcpPatch {
            name: Some("m".into()),
            description: crate::core::patch::Patch::Null,
            user_ids: Some(vec!["user_b".into(), "user_b".into()]),
            ..IcpPatch::default()
        }
        .apply(&mut icp)
        .expect("an ICP patch always applies");
        assert_eq!(icp.name, "m");
        assert_eq!(icp.description, None);
        assert_eq!(icp.user_ids, vec!["user_b".to_owned()], "a set");
        assert_eq!(icp.leads_per_list, before.leads_per_list);
    }

    #[test]
    fn stored_custom_filters_use_the_vendor_tags() {
        let filter = CustomFilter::MaxPercentFromCrm { value: 20.0 };
        assert_eq!(
            serde_json::to_value(&filter).ok(),
            Some(serde_json::json!({"type": "maxPercentFromCRM", "value": 20.0}))
        );
    }

    #[test]
    fn regexes_must_compile_within_bounds() {
        assert!(check_regex("^CTO|VP").is_ok());
        assert!(check_regex("(unclosed").is_err());
        let too_big = check_regex(r"\w{1000}{1000}").err().unwrap_or_default();
        assert!(too_big.contains("compiles to more than"), "{too_big}");
    }
}
